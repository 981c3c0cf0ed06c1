//! Native ports of the Python functions lm-eval's standard tasks call
//! (`!function module.name`).
//!
//! A reference resolves in one of two ways:
//! - `<module>.py` exists beside the YAML (lm-eval's own task folders): the
//!   named function, and the helpers it calls, are read from that file and
//!   fingerprinted; the reference resolves to the port written for exactly
//!   that source. A file that differs from every ported version is refused,
//!   because assay cannot know what the changed Python does.
//! - No such file (assay's own configs in `tasks/`): the reference is a
//!   port's canonical name, e.g. `hellaswag.process_docs`. A few canonical
//!   names have no port and stand for a function of the installed lm-eval
//!   package, run only with `--python-hooks` (see [`lm_eval_source`]).
//!
//! A reference that resolves to nothing keeps the task engine's clear
//! `!function` error. One file per benchmark family holds its ports; the
//! task module resolves a task's hooks through a [`Resolver`] once, when
//! the task is planned (see `task::ports`).

mod bigbench;
mod hellaswag;
mod leaderboard;
mod math;
pub mod python;
mod truthfulqa;
mod wikitext;
mod winogrande;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::data::Doc;
use crate::metric::ItemValue;

/// Per-document metric values, by metric name.
pub type MetricValues = Vec<(String, ItemValue)>;

/// A `process_results` port: the document and its requests' (log-likelihood,
/// is-greedy) pairs in, metric values out.
pub type ResultsFn = fn(&Doc, &[(f64, bool)]) -> Result<MetricValues, String>;

/// What a port computes, by the hook field it stands in for.
#[derive(Debug, Clone, Copy)]
pub enum Native {
    /// `process_docs`: the documents of a split, transformed or filtered.
    Docs(fn(Vec<Doc>) -> Result<Vec<Doc>, String>),
    /// `doc_to_text`, `doc_to_target` or `doc_to_choice`.
    Value(fn(&Doc) -> Result<Value, String>),
    /// `process_results`: per-document metric values from the (log-likelihood,
    /// is-greedy) pairs of its requests.
    Results(ResultsFn),
    /// `process_results` of a generation task: metric values from the
    /// filtered responses.
    Generated(fn(&Doc, &[String]) -> Result<MetricValues, String>),
}

/// One native port.
#[derive(Debug)]
pub struct Port {
    /// The name assay's own configs use: `<family>.<function>`.
    pub canonical: &'static str,
    /// The Python function it replaces, and the file that defines it (its
    /// path under lm-eval's `lm_eval/tasks`).
    pub function: &'static str,
    pub file: &'static str,
    /// Functions of the same module that `function` calls (part of the
    /// fingerprint).
    pub helpers: &'static [&'static str],
    /// Fingerprints of the Python sources this port was written for (see
    /// [`fingerprint`]): lm-eval 0.4.13.
    pub fingerprints: &'static [&'static str],
    pub native: Native,
    /// For `process_results` ports: the metrics it gives values for.
    pub metrics: &'static [&'static str],
}

/// Why a hook reference did not resolve.
#[derive(Debug, Clone, PartialEq)]
pub enum Unresolved {
    /// No port has this function's name or canonical name.
    NoPort,
    /// The file is the one a port was written for (same folder and file
    /// name), but its source differs from every version the port knows.
    Differs { file: PathBuf, fingerprint: String },
}

/// Every port, family by family.
pub fn all() -> impl Iterator<Item = &'static Port> {
    [
        hellaswag::PORTS,
        winogrande::PORTS,
        truthfulqa::PORTS,
        wikitext::PORTS,
        bigbench::PORTS,
        leaderboard::PORTS,
        math::PORTS,
    ]
    .into_iter()
    .flatten()
}

/// Functions of lm-eval's that assay's own configs name but that have no
/// native port, because no port can be exact or because they hold
/// benchmark items this project does not copy: (canonical name, file under
/// `lm_eval/tasks`, function). They run only with `--python-hooks`, from
/// the installed lm-eval package.
const IN_PYTHON: &[(&str, &str, &str)] = &[
    // IFEval's instruction checkers: langdetect, NLTK's Punkt and Python's
    // Unicode semantics.
    (
        "ifeval.process_results",
        "leaderboard/ifeval/utils.py",
        "process_results",
    ),
    (
        "ifeval.agg_inst_level_acc",
        "leaderboard/ifeval/utils.py",
        "agg_inst_level_acc",
    ),
    // MATH's four few-shot examples (benchmark items) and its equivalence
    // through sympy and math-verify.
    (
        "math.list_fewshot_samples",
        "leaderboard/math/utils.py",
        "list_fewshot_samples",
    ),
    (
        "math.process_results",
        "leaderboard/math/utils.py",
        "process_results",
    ),
];

/// The lm-eval function a canonical name stands for: its file under the
/// installed package's `lm_eval/tasks`, and its name. Every port's
/// canonical name has one (so `--python-hooks=all` can run lm-eval's code in
/// place of the port), and so does each name of [`IN_PYTHON`].
pub fn lm_eval_source(canonical: &str) -> Option<(&'static str, &'static str)> {
    lm_eval_sources()
        .find(|(name, _, _)| *name == canonical)
        .map(|(_, file, function)| (file, function))
}

/// Every canonical name with its lm-eval file and function.
pub fn lm_eval_sources() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    IN_PYTHON
        .iter()
        .copied()
        .chain(all().map(|p| (p.canonical, p.file, p.function)))
}

/// Resolves `!function` references to ports, each (folder, reference) once:
/// a task folder's Python file is read and fingerprinted the first time one
/// of its functions is named. One resolver serves one registry of tasks.
#[derive(Debug, Default)]
pub struct Resolver {
    seen: Mutex<HashMap<(PathBuf, String), Resolution>>,
    /// Whether hooks may run in Python (`--python-hooks`), and the worker.
    python: Option<(python::HookMode, Arc<python::PythonHooks>)>,
}

/// What one reference resolved to.
type Resolution = Result<&'static Port, Unresolved>;

impl Resolver {
    /// A resolver that runs hooks in Python as `mode` says.
    pub fn with_python(mode: python::HookMode, runtime: Arc<python::PythonHooks>) -> Resolver {
        Resolver {
            seen: Mutex::default(),
            python: (mode != python::HookMode::Native).then_some((mode, runtime)),
        }
    }

    /// The Python hooks' mode and worker, when hooks may run in Python.
    pub fn python(&self) -> Option<(python::HookMode, &Arc<python::PythonHooks>)> {
        self.python.as_ref().map(|(m, r)| (*m, r))
    }

    /// The port `reference` (`module.function`) names for a config in
    /// `folder`.
    pub fn resolve(&self, folder: &Path, reference: &str) -> Resolution {
        let key = (folder.to_path_buf(), reference.to_string());
        if let Some(found) = self.seen.lock().ok().and_then(|s| s.get(&key).cloned()) {
            return found;
        }
        let found = resolve(folder, reference);
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(key, found.clone());
        }
        found
    }
}

fn resolve(folder: &Path, reference: &str) -> Result<&'static Port, Unresolved> {
    let Some((module, function)) = reference.rsplit_once('.') else {
        return Err(Unresolved::NoPort);
    };
    let file = folder.join(format!("{}.py", module.replace('.', "/")));
    match std::fs::read_to_string(&file) {
        Ok(source) => {
            let mut last = None;
            // The file a port was written for: the same path under lm-eval's
            // task folder.
            let same_file = |p: &Port| file.ends_with(p.file);
            for port in all().filter(|p| p.function == function) {
                let names: Vec<&str> = std::iter::once(port.function)
                    .chain(port.helpers.iter().copied())
                    .collect();
                let print = fingerprint(&source, &names);
                if port.fingerprints.contains(&print.as_str()) {
                    return Ok(port);
                }
                if same_file(port) {
                    last = Some(print);
                }
            }
            match last {
                Some(fingerprint) => Err(Unresolved::Differs { file, fingerprint }),
                None => Err(Unresolved::NoPort),
            }
        }
        Err(_) => all()
            .find(|p| p.canonical == reference)
            .ok_or(Unresolved::NoPort),
    }
}

/// A fingerprint of the named top-level functions (or module-level
/// constants) of a Python module: the
/// first 16 hex digits of the SHA-256 of their source, with blank lines,
/// whole-line comments and trailing spaces removed ("missing" for a
/// function the module lacks).
pub fn fingerprint(source: &str, functions: &[&str]) -> String {
    let mut text = String::new();
    for name in functions {
        text.push_str(&function_source(source, name).unwrap_or_else(|| "missing".into()));
        text.push('\0');
    }
    crate::hash::sha256_hex(text.as_bytes())[..16].to_string()
}

/// The source of the top-level function `name`, or of the module-level
/// assignment `name = ...` (a constant a function reads).
fn function_source(source: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = source.lines().collect();
    let start = lines
        .iter()
        .position(|l| {
            let l = l.strip_prefix("async ").unwrap_or(l);
            l.strip_prefix("def ")
                .and_then(|rest| rest.strip_prefix(name))
                .is_some_and(|rest| rest.trim_start().starts_with('('))
        })
        .or_else(|| {
            lines.iter().position(|l| {
                l.strip_prefix(name).is_some_and(|rest| {
                    let rest = rest.trim_start();
                    rest.starts_with('=') && !rest.starts_with("==")
                })
            })
        })?;
    let mut out = vec![lines[start].trim_end()];
    for line in &lines[start + 1..] {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with([' ', '\t']) && !trimmed.starts_with(')') {
            break;
        }
        out.push(line.trim_end());
    }
    Some(out.join("\n"))
}

fn text_field<'d>(doc: &'d Doc, field: &str) -> Result<&'d str, String> {
    match doc.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("field `{field}` is not text: {other}")),
        None => Err(format!("the document has no field `{field}`")),
    }
}

fn text_list<'d>(doc: &'d Doc, field: &str) -> Result<Vec<&'d str>, String> {
    doc.get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("the document has no list `{field}`"))?
        .iter()
        .map(|a| {
            a.as_str()
                .ok_or_else(|| format!("an entry of `{field}` is not text: {a}"))
        })
        .collect()
}

/// A document from JSON, for tests.
#[cfg(test)]
fn doc(v: Value) -> Doc {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

fn regex(pattern: &str) -> regex::Regex {
    regex::Regex::new(pattern).expect("a fixed pattern")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_sources_are_cut_at_the_next_top_level_line() {
        let src = "import re\n\n\ndef helper(x):\n    # a comment\n    return x\n\n\ndef main(doc):\n    y = helper(doc)\n\n    return y\nZ = 1\n";
        assert_eq!(
            function_source(src, "main").unwrap(),
            "def main(doc):\n    y = helper(doc)\n    return y"
        );
        assert_eq!(function_source(src, "mai"), None);
        // Comments and blank lines do not change a fingerprint; code does.
        let edited = src.replace("# a comment", "# another");
        assert_eq!(
            fingerprint(src, &["main", "helper"]),
            fingerprint(&edited, &["main", "helper"])
        );
        let changed = src.replace("return x", "return x + 1");
        assert_ne!(
            fingerprint(src, &["main", "helper"]),
            fingerprint(&changed, &["main", "helper"])
        );
    }

    #[test]
    fn canonical_names_resolve_without_a_python_file() {
        let nowhere = Path::new("/nonexistent");
        let resolver = Resolver::default();
        assert_eq!(
            resolver
                .resolve(nowhere, "winogrande.doc_to_choice")
                .unwrap()
                .canonical,
            "winogrande.doc_to_choice"
        );
        assert_eq!(
            resolver.resolve(nowhere, "utils.whatever").err(),
            Some(Unresolved::NoPort)
        );
        // A name that stands for lm-eval's Python has no port, but a source.
        assert_eq!(
            resolver.resolve(nowhere, "ifeval.process_results").err(),
            Some(Unresolved::NoPort)
        );
        assert_eq!(
            lm_eval_source("ifeval.process_results"),
            Some(("leaderboard/ifeval/utils.py", "process_results"))
        );
        assert_eq!(
            lm_eval_source("wikitext.detokenize"),
            Some(("wikitext/preprocess_wikitext.py", "wikitext_detokenizer"))
        );
        assert_eq!(lm_eval_source("utils.whatever"), None);
    }

    #[test]
    fn a_changed_python_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("hellaswag");
        std::fs::create_dir(&folder).unwrap();
        let changed = "def process_docs(dataset):\n    return dataset.filter(lambda d: False)\n";
        std::fs::write(folder.join("utils.py"), changed).unwrap();
        assert!(matches!(
            resolve(&folder, "utils.process_docs"),
            Err(Unresolved::Differs { .. })
        ));
        // The same function name in another task's file is simply not ported.
        let other = dir.path().join("other_task");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("utils.py"), changed).unwrap();
        assert_eq!(
            resolve(&other, "utils.process_docs").err(),
            Some(Unresolved::NoPort)
        );
    }
}
