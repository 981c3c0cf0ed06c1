//! Variant manifests: `variants/<name>.toml`, one per submitted variant of a
//! model, saying what it is (its relation to a base variant), who made it,
//! and how to score it (a backend spec and the expected SHA-256 of its
//! weights).
//!
//! Validation reports every problem of every manifest, one message each:
//! TOML errors, unknown or missing fields, names that are not safe as file
//! names, bases that do not exist, lineage cycles, and weights whose hash
//! does not match.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How a variant came from its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    Original,
    FineTune,
    Quantization,
    Merge,
    Adapter,
}

impl Relation {
    pub const NAMES: &'static [&'static str] =
        &["original", "fine-tune", "quantization", "merge", "adapter"];

    pub fn name(self) -> &'static str {
        match self {
            Relation::Original => "original",
            Relation::FineTune => "fine-tune",
            Relation::Quantization => "quantization",
            Relation::Merge => "merge",
            Relation::Adapter => "adapter",
        }
    }
}

/// How to score a variant.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSpec {
    /// `kind:target`, e.g. `llama:models/x.gguf`; a relative GGUF path is
    /// relative to the manifest's folder's parent (the repository root).
    pub spec: String,
    /// `--model-arg`s.
    #[serde(default)]
    pub args: BTreeMap<String, String>,
}

/// One manifest.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    pub display_name: Option<String>,
    /// The parent variant's name; none for an original.
    pub base: Option<String>,
    pub relation: Relation,
    pub contributor: Option<String>,
    pub license: Option<String>,
    /// Parameter count.
    pub parameters: Option<u64>,
    /// Precision or quantization, e.g. `bf16`, `Q4_K_M`.
    pub precision: Option<String>,
    /// Bits per weight, for the size plot.
    pub bits_per_weight: Option<f64>,
    /// The expected SHA-256 (hex) of the weights file, checked before scoring.
    pub weights_sha256: Option<String>,
    /// Render prompts with the model's chat template.
    #[serde(default)]
    pub chat_template: bool,
    #[serde(default)]
    pub notes: String,
    pub backend: BackendSpec,
    /// Where the manifest was read from.
    #[serde(skip)]
    pub path: PathBuf,
    /// The fields read from the weights file because the manifest left
    /// them out (see [`fill_from_file`]).
    #[serde(skip)]
    pub from_file: Vec<&'static str>,
}

/// One problem with one manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// Whether `name` is safe as a file and folder name everywhere: letters,
/// digits, `.`, `_`, `-`, not starting with `.` or `-`, at most 100 chars.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.starts_with(['.', '-'])
}

/// Reads one manifest; a syntax or field error is one problem.
pub fn read(path: &Path) -> Result<Variant, Problem> {
    let problem = |message: String| Problem {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| problem(format!("cannot read: {e}")))?;
    let mut variant: Variant = toml::from_str(&text).map_err(|e| {
        let message = e.message().to_string();
        let place = e
            .span()
            .map(|span| {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                format!("line {line}: ")
            })
            .unwrap_or_default();
        let hint = if message.contains("unknown field") {
            ""
        } else if message.contains("unknown variant") {
            " (relation is one of original, fine-tune, quantization, merge, adapter)"
        } else {
            ""
        };
        problem(format!("{place}{message}{hint}"))
    })?;
    variant.path = path.to_path_buf();
    Ok(variant)
}

/// The weights file a variant's backend reads, if it is a local file.
pub fn weights_file(variant: &Variant) -> Option<PathBuf> {
    let (kind, target) = variant.backend.spec.split_once(':')?;
    // Hub files are fetched when the backend opens them.
    if kind != "llama" || target.starts_with("hf://") {
        return None;
    }
    Some(resolve(&variant.path, target))
}

/// A path from a manifest: absolute, or relative to the folder that holds
/// the `variants/` folder.
pub fn resolve(manifest: &Path, target: &str) -> PathBuf {
    let target = Path::new(target);
    if target.is_absolute() {
        return target.to_path_buf();
    }
    let root = manifest
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    root.join(target)
}

/// How the weights of a variant compare with its manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum WeightsCheck {
    Matches,
    /// No expected hash, or not a local file: nothing to check.
    Unchecked,
    /// The file is not there (yet).
    Missing(PathBuf),
    Mismatch {
        path: PathBuf,
        actual: String,
    },
}

/// Checks a variant's weights file against `weights_sha256`.
pub fn check_weights(variant: &Variant) -> WeightsCheck {
    let (Some(expected), Some(path)) = (&variant.weights_sha256, weights_file(variant)) else {
        return WeightsCheck::Unchecked;
    };
    if !path.is_file() {
        return WeightsCheck::Missing(path);
    }
    match crate::cache::file_sha256(&path) {
        Ok(actual) if actual.eq_ignore_ascii_case(expected) => WeightsCheck::Matches,
        Ok(actual) => WeightsCheck::Mismatch { path, actual },
        Err(_) => WeightsCheck::Missing(path),
    }
}

/// The Hub file a variant's backend reads, if its spec names one.
pub fn hub_weights(variant: &Variant) -> Option<Result<crate::data::hub::ModelRef, String>> {
    let (kind, target) = variant.backend.spec.split_once(':')?;
    (kind == "llama")
        .then(|| crate::data::hub::ModelRef::parse(target))
        .flatten()
}

/// Why a variant's weights are not at hand: the manifest's path, what is
/// wrong, and whether the user must fix it or a retry may.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct WeightsError {
    pub path: PathBuf,
    pub message: String,
    pub kind: crate::error::ErrorKind,
}

impl WeightsError {
    pub fn kind(&self) -> crate::error::ErrorKind {
        self.kind
    }
}

/// Makes sure a variant's weights are at hand: a Hub file is fetched into
/// the cache (and checked against `weights_sha256`), a local file must be
/// there and match. Says where they are.
pub fn fetch_weights(variant: &Variant) -> Result<String, WeightsError> {
    let problem = |message: String| WeightsError {
        path: variant.path.clone(),
        message,
        kind: crate::error::ErrorKind::Input,
    };
    if let Some(r) = hub_weights(variant) {
        let r = r.map_err(|e| problem(format!("backend.spec: {e}")))?;
        let (files, local, _) =
            crate::data::hub::model_file(&r, false).map_err(|e| WeightsError {
                kind: e.kind(),
                ..problem(e.to_string())
            })?;
        if let Some(expected) = &variant.weights_sha256 {
            let actual = crate::cache::file_sha256(&local)
                .map_err(|e| problem(format!("{}: {e}", local.display())))?;
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(problem(format!(
                    "the weights {} have SHA-256 {actual}, not the manifest's weights_sha256",
                    r.path
                )));
            }
        }
        return Ok(format!(
            "{}@{}: {} file(s) in {}",
            files.repo,
            files.commit,
            files.files.len(),
            local.parent().unwrap_or(&local).display()
        ));
    }
    match check_weights(variant) {
        WeightsCheck::Missing(path) => Err(problem(format!(
            "the weights file {} is not there; put it there, or name a Hub file (llama:hf://OWNER/NAME@COMMIT/FILE.gguf)",
            path.display()
        ))),
        WeightsCheck::Mismatch { path, actual } => Err(problem(format!(
            "the weights {} have SHA-256 {actual}, not the manifest's",
            path.display()
        ))),
        WeightsCheck::Matches | WeightsCheck::Unchecked => Ok(match weights_file(variant) {
            Some(path) => format!("local file {}", path.display()),
            None => format!("served by {}", variant.backend.spec),
        }),
    }
}

/// What is allowed but worth saying: a Hub revision that is a branch or tag
/// (its scores can move when the branch does).
pub fn warnings(variants: &[Variant]) -> Vec<Problem> {
    variants
        .iter()
        .filter_map(|v| {
            let message = match hub_weights(v) {
                Some(r) => {
                    let r = r.ok()?;
                    (!r.is_pinned()).then(|| format!(
                        "backend.spec names revision `{}` of {}, not a commit: pin a 40-digit commit id so the variant's scores cannot move",
                        r.revision, r.repo
                    ))?
                }
                None => unpinned_lm_eval_model(v)?,
            };
            Some(Problem {
                path: v.path.clone(),
                message,
            })
        })
        .collect()
}

/// For an `lm-eval:` variant whose `pretrained` is a Hub repository (not
/// a local folder): why its revision does not pin the weights, if it does
/// not.
fn unpinned_lm_eval_model(v: &Variant) -> Option<String> {
    if !v.backend.spec.starts_with("lm-eval:") {
        return None;
    }
    let pretrained = v.backend.args.get("pretrained")?;
    if resolve(&v.path, pretrained).exists() {
        return None;
    }
    let revision = v.backend.args.get("revision");
    let pinned =
        revision.is_some_and(|r| r.len() == 40 && r.chars().all(|c| c.is_ascii_hexdigit()));
    (!pinned).then(|| {
        format!(
            "backend.args revision of {pretrained} is `{}`, not a commit: pin a 40-digit commit id \
             (revision = \"...\") so the variant's scores cannot move",
            revision.map_or("main (none given)", String::as_str)
        )
    })
}

/// The weights file at hand for a variant: its local file if it is there,
/// or its Hub file if the cache holds it (validation downloads nothing).
fn weights_at_hand(variant: &Variant) -> Option<PathBuf> {
    if let Some(r) = hub_weights(variant) {
        let (_, path, _) = crate::data::hub::model_file(&r.ok()?, true).ok()?;
        return Some(path);
    }
    weights_file(variant).filter(|p| p.is_file())
}

/// Fills the fields a manifest leaves out (parameters, precision, bits per
/// weight) from its weights file, when the file is at hand, and notes them
/// in `from_file`.
pub fn fill_from_file(variant: &mut Variant) {
    let Some(m) = weights_at_hand(variant).and_then(|p| crate::gguf::read(&p).ok()) else {
        return;
    };
    if variant.parameters.is_none() && m.parameters() > 0 {
        variant.parameters = Some(m.parameters());
        variant.from_file.push("parameters");
    }
    if variant.precision.is_none() {
        if let Some(p) = m.precision() {
            variant.precision = Some(p.to_string());
            variant.from_file.push("precision");
        }
    }
    if variant.bits_per_weight.is_none() && m.parameters() > 0 {
        variant.bits_per_weight = Some((m.bits_per_weight() * 100.0).round() / 100.0);
        variant.from_file.push("bits_per_weight");
    }
}

/// What the weights files say against what the manifests declare, one
/// problem each: a derived variant whose base has another architecture or
/// vocabulary; a quantization whose tensors are not its base's (names and
/// shapes); a parameter count, precision or bits per weight the file
/// contradicts. Only files at hand are read.
pub fn check_files(variants: &[Variant]) -> Vec<Problem> {
    let mut problems = Vec::new();
    // Each variant's file and what it says, read once.
    let mut meta: HashMap<&str, (PathBuf, crate::gguf::Metadata)> = HashMap::new();
    for v in variants {
        let Some(path) = weights_at_hand(v) else {
            continue;
        };
        match crate::gguf::read(&path) {
            Ok(m) => {
                meta.insert(v.name.as_str(), (path, m));
            }
            Err(why) => problems.push(Problem {
                path: v.path.clone(),
                message: format!(
                    "the weights {} cannot be read as GGUF: {why}",
                    path.display()
                ),
            }),
        }
    }
    for v in variants {
        let Some((path, m)) = meta.get(v.name.as_str()) else {
            continue;
        };
        let mut problem = |message: String| {
            problems.push(Problem {
                path: v.path.clone(),
                message,
            })
        };
        if let Some(declared) = v.parameters.filter(|p| *p != m.parameters()) {
            problem(format!(
                "parameters = {declared}, but the weights file has {} parameters",
                m.parameters()
            ));
        }
        if let (Some(declared), Some(actual)) = (&v.precision, m.precision()) {
            if !declared.eq_ignore_ascii_case(actual) {
                problem(format!(
                    "precision = {declared:?}, but the weights file is {actual}"
                ));
            }
        }
        if let Some(declared) = v.bits_per_weight {
            let actual = m.bits_per_weight();
            if (declared - actual).abs() > 0.02 {
                problem(format!(
                    "bits_per_weight = {declared}, but the weights file has {actual:.2}"
                ));
            }
        }
        let Some((base_name, (base_path, base_meta))) =
            v.base.as_deref().and_then(|b| meta.get(b).map(|m| (b, m)))
        else {
            continue;
        };
        if v.relation == Relation::Adapter {
            // An adapter applies over its base's weights, not others.
            let sha = |p: &Path| crate::cache::file_sha256(p).ok();
            if let (Some(own), Some(theirs)) = (sha(path), sha(base_path)) {
                if own != theirs {
                    problem(format!(
                        "an adapter of `{base_name}`, but the weights it applies over are not `{base_name}`'s (SHA-256 {own}, not {theirs})"
                    ));
                }
            }
        }
        if m.architecture != base_meta.architecture {
            problem(format!(
                "its base `{base_name}` is a `{}` model, but its weights are `{}`",
                base_meta.architecture, m.architecture
            ));
        } else if m.vocabulary.is_some()
            && base_meta.vocabulary.is_some()
            && m.vocabulary != base_meta.vocabulary
        {
            problem(format!(
                "its weights have another vocabulary than its base `{base_name}`'s"
            ));
        } else if v.relation == Relation::Quantization {
            let shapes = |m: &crate::gguf::Metadata| -> Vec<(String, Vec<u64>)> {
                m.tensors
                    .iter()
                    .map(|(n, (d, _))| (n.clone(), d.clone()))
                    .collect()
            };
            if shapes(m) != shapes(base_meta) {
                problem(format!(
                    "a quantization of `{base_name}`, but its tensors (names and shapes) are not its base's"
                ));
            }
        }
    }
    problems
}

/// Validates `variants` together (bases are looked up among them): every
/// problem, in file order. Missing weights files are not problems (they may
/// not be downloaded yet); a hash that does not match is.
pub fn validate(variants: &[Variant]) -> Vec<Problem> {
    let mut problems = validate_fields(variants);
    problems.extend(check_files(variants));
    for v in variants {
        if let (true, WeightsCheck::Mismatch { path, actual }) = (has_hex_hash(v), check_weights(v))
        {
            problems.push(Problem {
                path: v.path.clone(),
                message: format!(
                    "the weights {} have SHA-256 {actual}, not the manifest's {}",
                    path.display(),
                    v.weights_sha256.as_deref().unwrap_or_default()
                ),
            });
        }
    }
    problems
}

/// An `lm-eval:` variant's `pretrained` and `revision`.
fn lm_eval_model(v: &Variant) -> Option<(Option<&String>, Option<&String>)> {
    v.backend.spec.starts_with("lm-eval:").then(|| {
        (
            v.backend.args.get("pretrained"),
            v.backend.args.get("revision"),
        )
    })
}

/// `pretrained@revision` as a message shows it.
fn shown_model((pretrained, revision): (Option<&String>, Option<&String>)) -> String {
    format!(
        "{}@{}",
        pretrained.map_or("?", String::as_str),
        revision.map_or("main", String::as_str)
    )
}

fn has_hex_hash(v: &Variant) -> bool {
    v.weights_sha256
        .as_deref()
        .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// [`validate`] without reading any weights: fields, names, bases and
/// lineage only.
pub fn validate_fields(variants: &[Variant]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let by_name: HashMap<&str, &Variant> = variants.iter().map(|v| (v.name.as_str(), v)).collect();
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for v in variants {
        let mut problem = |message: String| {
            problems.push(Problem {
                path: v.path.clone(),
                message,
            })
        };
        if !is_safe_name(&v.name) {
            problem(format!(
                "name {:?} is not safe as a file name: use letters, digits, '.', '_' and '-', \
                 not starting with '.' or '-'",
                v.name
            ));
        }
        let stem = v.path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if !stem.is_empty() && stem != v.name {
            problem(format!(
                "name {:?} differs from the file name; call the file {}.toml",
                v.name, v.name
            ));
        }
        if let Some(first) = seen.insert(v.name.as_str(), v.path.as_path()) {
            problem(format!(
                "name {:?} is also used by {}",
                v.name,
                first.display()
            ));
        }
        match (v.relation, &v.base) {
            (Relation::Original, Some(base)) => problem(format!(
                "relation is original but base is {base:?}; an original has no base"
            )),
            (Relation::Original, None) => {}
            (r, None) => problem(format!(
                "relation is {} but there is no base; name the variant it derives from",
                r.name()
            )),
            (_, Some(base)) if base == &v.name => problem("base names the variant itself".into()),
            (_, Some(base)) if !by_name.contains_key(base.as_str()) => problem(format!(
                "base {base:?} has no manifest (expected variants/{base}.toml)"
            )),
            _ => {}
        }
        match v.backend.spec.split_once(':') {
            None => problem(format!(
                "backend.spec {:?}: write kind:target, e.g. llama:models/x.gguf",
                v.backend.spec
            )),
            Some((kind, _)) if !crate::backend::KINDS.contains(&kind) => problem(format!(
                "backend.spec {:?}: unknown backend `{kind}` (known: {})",
                v.backend.spec,
                crate::backend::KINDS.join(", ")
            )),
            Some(_) => {}
        }
        if v.relation == Relation::Adapter {
            let (kind, arg) = match v.backend.spec.split_once(':') {
                Some(("lm-eval", _)) => ("lm-eval", "peft"),
                _ => ("llama", "lora"),
            };
            if !v.backend.args.contains_key(arg) {
                problem(format!(
                    "relation is adapter but backend.args names no adapter: give {arg} = \"...\" \
                     (the {kind} backend applies it over the base's weights)"
                ));
            }
            let base = v.base.as_deref().and_then(|b| by_name.get(b));
            if let (Some(own), Some(theirs)) =
                (lm_eval_model(v), base.and_then(|b| lm_eval_model(b)))
            {
                if own != theirs {
                    problem(format!(
                        "an adapter of `{}`, but its backend.args pretrained/revision ({}) are not its base's ({})",
                        v.base.as_deref().unwrap_or_default(),
                        shown_model(own),
                        shown_model(theirs)
                    ));
                }
            }
        }
        if let Some(hash) = v.weights_sha256.as_ref().filter(|_| !has_hex_hash(v)) {
            problem(format!(
                "weights_sha256 {hash:?} is not 64 hexadecimal digits"
            ));
        }
        if v.parameters == Some(0) {
            problem("parameters is 0; give the parameter count".into());
        }
        if let Some(bits) = v.bits_per_weight {
            if !(bits > 0.0 && bits <= 64.0) {
                problem(format!("bits_per_weight {bits} is not between 0 and 64"));
            }
        }
    }
    // Lineage cycles: follow bases from every variant.
    for v in variants {
        let mut path = vec![v.name.as_str()];
        let mut at = v;
        while let Some(base) = at.base.as_deref() {
            let Some(next) = by_name.get(base) else { break };
            if path.contains(&base) {
                if base == v.name {
                    path.push(base);
                    problems.push(Problem {
                        path: v.path.clone(),
                        message: format!("lineage cycle: {}", path.join(" -> ")),
                    });
                }
                break;
            }
            path.push(base);
            at = next;
        }
    }
    problems
}

/// Reads the manifests at `paths` (files, or folders of `*.toml`).
pub fn read_all(paths: &[PathBuf]) -> (Vec<Variant>, Vec<Problem>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => problems.push(Problem {
                    path: path.clone(),
                    message: format!("cannot read the folder: {e}"),
                }),
            }
        } else {
            files.push(path.clone());
        }
    }
    let mut variants = Vec::new();
    for file in files {
        match read(&file) {
            Ok(v) => variants.push(v),
            Err(p) => problems.push(p),
        }
    }
    (variants, problems)
}

/// The chain of bases of `name`, nearest first (cycles cut).
pub fn lineage<'a>(variants: &'a [Variant], name: &str) -> Vec<&'a Variant> {
    let by_name: HashMap<&str, &Variant> = variants.iter().map(|v| (v.name.as_str(), v)).collect();
    let mut out: Vec<&Variant> = Vec::new();
    let mut at = by_name.get(name).and_then(|v| v.base.as_deref());
    while let Some(base) = at {
        let Some(v) = by_name.get(base) else { break };
        if out.iter().any(|o| o.name == v.name) || v.name == name {
            break;
        }
        out.push(v);
        at = v.base.as_deref();
    }
    out
}
