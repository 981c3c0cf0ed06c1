//! Hugging Face Hub datasets: `dataset_path: owner/name` with `dataset_name`
//! (the config) and the splits a task reads.
//!
//! Resolution asks the Hub's API for the revision's commit and files
//! (`/api/datasets/{repo}/revision/{rev}?blobs=true`), takes the config's
//! `data_files` from the dataset card's `configs` (or the conventional file
//! names when the card has none), and falls back to the Hub's own parquet
//! conversion (`refs/convert/parquet`) for datasets that ship a loading
//! script. Files are downloaded once into the cache, verified against the
//! size and LFS SHA-256 the Hub reports, and read from there afterwards:
//!
//! ```text
//! <cache>/<owner>--<name>/refs/<revision>              commit the revision resolved to
//! <cache>/<owner>--<name>/resolved/<commit>/<config>.json  the config's files per split
//! <cache>/<owner>--<name>/files/<commit>/<path>        the data files
//! ```
//!
//! A download goes to `<path>.part` and is renamed only once complete and
//! verified, so a file under its own name is always whole; an interrupted
//! download resumes from the `.part` with an HTTP range request.
//!
//! The environment follows `huggingface_hub`: `HF_ENDPOINT` (a mirror),
//! `HF_TOKEN` (gated or private datasets; sent as a bearer token, never
//! written or shown), `HF_HUB_OFFLINE=1` (cache only). `ASSAY_DATASETS_CACHE`
//! moves the cache.

use std::collections::BTreeMap;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorKind;

const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
const PARQUET_BRANCH: &str = "refs/convert/parquet";
/// File types assay reads from a dataset repository.
const DATA_EXTENSIONS: [&str; 4] = [".parquet", ".jsonl", ".json", ".csv"];

/// A token for the Hub that never prints itself.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<hidden>)")
    }
}

/// Where the Hub is and how assay may use it.
#[derive(Debug, Clone)]
pub struct HubSettings {
    pub endpoint: String,
    pub token: Option<Token>,
    pub offline: bool,
    pub cache: PathBuf,
    pub progress: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn truthy(name: &str) -> bool {
    env(name).is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

impl HubSettings {
    /// The settings of `huggingface_hub`'s environment variables.
    pub fn from_env() -> HubSettings {
        let token = env("HF_TOKEN")
            .or_else(|| env("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let file = env("HF_TOKEN_PATH").map(PathBuf::from).or_else(|| {
                    env("HF_HOME")
                        .map(PathBuf::from)
                        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".cache/huggingface")))
                        .map(|d| d.join("token"))
                })?;
                let text = std::fs::read_to_string(file).ok()?;
                Some(text.trim().to_string()).filter(|t| !t.is_empty())
            })
            .map(Token);
        HubSettings {
            endpoint: env("HF_ENDPOINT")
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
                .trim_end_matches('/')
                .to_string(),
            token,
            offline: truthy("HF_HUB_OFFLINE") || truthy("HF_DATASETS_OFFLINE"),
            cache: default_cache(),
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }
}

/// `$ASSAY_DATASETS_CACHE`, else `datasets/` in assay's cache folder.
pub fn default_cache() -> PathBuf {
    env("ASSAY_DATASETS_CACHE")
        .map(PathBuf::from)
        .or_else(|| crate::cache::cache_dir().map(|d| d.join("datasets")))
        .unwrap_or_else(|| PathBuf::from(".assay-datasets"))
}

/// Which dataset, config and revision a task asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct HubRef {
    pub repo: String,
    pub config: Option<String>,
    pub revision: String,
}

impl HubRef {
    fn config_name(&self) -> &str {
        self.config.as_deref().unwrap_or("default")
    }

    fn describe(&self) -> String {
        format!(
            "dataset `{}` (config `{}`, revision `{}`)",
            self.repo,
            self.config_name(),
            self.revision
        )
    }
}

/// One data file of a resolved config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HubFile {
    /// Path inside the repository.
    pub path: String,
    /// The commit the file is read at (the parquet conversion has its own).
    pub commit: String,
    pub size: Option<u64>,
    /// From the Hub's LFS metadata, when the file is stored in LFS.
    pub sha256: Option<String>,
}

/// A config resolved to files: what the cache's `resolved/` holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Resolved {
    pub repo: String,
    pub config: String,
    pub revision: String,
    pub commit: String,
    pub splits: BTreeMap<String, Vec<HubFile>>,
}

/// Why a dataset could not be had from the Hub or the cache: something the
/// user must fix (access, names, offline without the files), or something a
/// retry may fix (network, server, disk).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HubError {
    pub message: String,
    pub kind: ErrorKind,
}

impl HubError {
    /// The user must change something (a name, a token, HF_HUB_OFFLINE).
    fn input(message: impl Into<String>) -> HubError {
        HubError {
            message: message.into(),
            kind: ErrorKind::Input,
        }
    }

    /// The network, the Hub or the disk failed; running again may work.
    fn retry(message: impl Into<String>) -> HubError {
        HubError {
            message: message.into(),
            kind: ErrorKind::NotFinished,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T, HubError> {
    Err(HubError::input(message))
}

fn fail_retry<T>(message: impl Into<String>) -> Result<T, HubError> {
    Err(HubError::retry(message))
}

/// How much of a config the cache holds, without asking the Hub.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CacheState {
    /// Every file of the wanted splits is present and complete.
    Complete,
    /// Resolved before, but some files are missing.
    Partial,
    Absent,
}

fn repo_dir(settings: &HubSettings, repo: &str) -> PathBuf {
    settings.cache.join(repo.replace('/', "--"))
}

/// Where the commit a revision resolved to is remembered.
fn ref_file(settings: &HubSettings, repo: &str, revision: &str) -> PathBuf {
    repo_dir(settings, repo)
        .join("refs")
        .join(revision.replace('/', "%2F"))
}

/// Where a resolution (of a dataset config, or of a model file) at a commit
/// is remembered.
fn manifest_file(settings: &HubSettings, repo: &str, commit: &str, name: &str) -> PathBuf {
    repo_dir(settings, repo)
        .join("resolved")
        .join(commit)
        .join(format!("{}.json", name.replace('/', "%2F")))
}

/// The remembered resolution `name` of `repo` at `revision`: a pinned
/// commit's directly, a branch's through the commit it last resolved to.
fn cached_manifest<T: serde::de::DeserializeOwned>(
    settings: &HubSettings,
    repo: &str,
    revision: &str,
    name: &str,
) -> Option<T> {
    let commit = if is_commit(revision) {
        revision.to_ascii_lowercase()
    } else {
        std::fs::read_to_string(ref_file(settings, repo, revision))
            .ok()?
            .trim()
            .to_string()
    };
    let text = std::fs::read_to_string(manifest_file(settings, repo, &commit, name)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Where a file of the repository lives in the cache.
pub fn local_path(settings: &HubSettings, repo: &str, file: &HubFile) -> PathBuf {
    let mut p = repo_dir(settings, repo).join("files").join(&file.commit);
    for part in file.path.split('/').filter(|s| !s.is_empty() && *s != "..") {
        p.push(part);
    }
    p
}

fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The cached resolution of `r`, if there is one.
fn cached_resolution(settings: &HubSettings, r: &HubRef) -> Option<Resolved> {
    cached_manifest(settings, &r.repo, &r.revision, r.config_name())
}

/// Whether `path` holds all of `file` (a downloaded file only gets its name
/// once verified, so its size is the check that remains).
fn is_whole(path: &Path, file: &HubFile) -> bool {
    std::fs::metadata(path).is_ok_and(|m| file.size.is_none_or(|s| s == m.len()))
}

fn complete(settings: &HubSettings, resolved: &Resolved, splits: &[String]) -> bool {
    wanted_files(resolved, splits)
        .iter()
        .all(|f| is_whole(&local_path(settings, &resolved.repo, f), f))
}

fn wanted_files<'a>(resolved: &'a Resolved, splits: &[String]) -> Vec<&'a HubFile> {
    resolved
        .splits
        .iter()
        .filter(|(s, _)| splits.is_empty() || splits.contains(s))
        .flat_map(|(_, files)| files)
        .collect()
}

/// What the cache holds for `r` (the `splits` named; all if empty).
pub fn cache_state(settings: &HubSettings, r: &HubRef, splits: &[String]) -> CacheState {
    match cached_resolution(settings, r) {
        None => CacheState::Absent,
        Some(res) if complete(settings, &res, splits) => CacheState::Complete,
        Some(_) => CacheState::Partial,
    }
}

/// Resolves `r` and makes sure the files of `splits` (all if empty) are in
/// the cache, downloading what is missing. Returns the resolution; the files
/// are at [`local_path`].
pub fn fetch(settings: &HubSettings, r: &HubRef, splits: &[String]) -> Result<Resolved, HubError> {
    if settings.offline {
        return match cached_resolution(settings, r) {
            Some(res) if complete(settings, &res, splits) => Ok(res),
            found => fail(format!(
                "{} is {} in the cache ({}) and HF_HUB_OFFLINE=1 forbids downloading it: \
                 run `assay tasks fetch` for the task once with network access (without HF_HUB_OFFLINE)",
                r.describe(),
                if found.is_some() { "only partly" } else { "not" },
                settings.cache.display()
            )),
        };
    }
    // A pinned commit that is already cached needs no network at all.
    if is_commit(&r.revision) {
        if let Some(res) = cached_resolution(settings, r) {
            if complete(settings, &res, splits) {
                return Ok(res);
            }
        }
    }
    let client = Client::new(settings, RepoKind::Dataset)?;
    let resolved = client.resolve(r)?;
    let manifest = manifest_file(settings, &r.repo, &resolved.commit, &resolved.config);
    write_atomic(
        &manifest,
        serde_json::to_string_pretty(&resolved)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    write_atomic(
        &ref_file(settings, &r.repo, &r.revision),
        resolved.commit.as_bytes(),
    )?;
    for file in wanted_files(&resolved, splits) {
        let dest = local_path(settings, &r.repo, file);
        if is_whole(&dest, file) {
            continue;
        }
        client.download(&r.repo, file, &dest)?;
    }
    Ok(resolved)
}

/// A file of a model repository: `hf://OWNER/NAME@REVISION/PATH` (the
/// revision defaults to `main`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRef {
    pub repo: String,
    pub revision: String,
    pub path: String,
}

impl ModelRef {
    /// None when `uri` is not an `hf://` address; an error saying what is
    /// wrong with a malformed one.
    pub fn parse(uri: &str) -> Option<Result<ModelRef, String>> {
        let rest = uri.strip_prefix("hf://")?;
        let malformed = || {
            format!("{uri}: write hf://OWNER/NAME@REVISION/PATH, e.g. hf://org/model@0123abcd.../model.gguf")
        };
        let mut parts = rest.splitn(3, '/');
        let (Some(owner), Some(name_rev), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Some(Err(malformed()));
        };
        let (name, revision) = name_rev.split_once('@').unwrap_or((name_rev, "main"));
        let bad_path = path
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
        if owner.is_empty() || name.is_empty() || revision.is_empty() || bad_path {
            return Some(Err(malformed()));
        }
        Some(Ok(ModelRef {
            repo: format!("{owner}/{name}"),
            revision: revision.to_string(),
            path: path.to_string(),
        }))
    }

    /// Whether the revision is a commit (a branch or tag can move).
    pub fn is_pinned(&self) -> bool {
        is_commit(&self.revision)
    }

    fn describe(&self) -> String {
        format!(
            "model `{}` file `{}` (revision `{}`)",
            self.repo, self.path, self.revision
        )
    }
}

/// A model file in the cache, with every part of a split GGUF: what
/// `models/<owner>--<name>/resolved/` remembers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelFiles {
    pub repo: String,
    pub revision: String,
    pub commit: String,
    /// The file asked for first, then the other parts of a split file.
    pub files: Vec<HubFile>,
}

/// `$ASSAY_MODELS_CACHE`, else `models/` in assay's cache folder.
pub fn default_models_cache() -> PathBuf {
    env("ASSAY_MODELS_CACHE")
        .map(PathBuf::from)
        .or_else(|| crate::cache::cache_dir().map(|d| d.join("models")))
        .unwrap_or_else(|| PathBuf::from(".assay-models"))
}

/// The Hub settings for model files: the same environment, the models cache.
pub fn model_settings() -> HubSettings {
    HubSettings {
        cache: default_models_cache(),
        ..HubSettings::from_env()
    }
}

fn cached_model(settings: &HubSettings, r: &ModelRef) -> Option<ModelFiles> {
    let files: ModelFiles = cached_manifest(settings, &r.repo, &r.revision, &r.path)?;
    files
        .files
        .iter()
        .all(|f| is_whole(&local_path(settings, &files.repo, f), f))
        .then_some(files)
}

/// The parts of a split GGUF (`NAME-00001-of-00003.gguf`) that `path` names,
/// in order, or just `path`.
fn model_parts(path: &str) -> Vec<String> {
    let split = path.strip_suffix(".gguf").and_then(|stem| {
        let (head, of) = stem.rsplit_once("-of-")?;
        let (name, index) = head.rsplit_once('-')?;
        let digits = |t: &str| t.len() == 5 && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(index) || !digits(of) {
            return None;
        }
        Some((name.to_string(), of.parse::<usize>().ok()?))
    });
    match split {
        Some((name, count)) if count > 0 => (1..=count)
            .map(|i| format!("{name}-{i:05}-of-{count:05}.gguf"))
            .collect(),
        _ => vec![path.to_string()],
    }
}

/// A Hub model file at hand, with the settings it came through: fetched
/// (downloading what is missing) unless `cache_only`, in which case only
/// the cache is read. The path is the file to load (a split file's first
/// part).
pub fn model_file(
    r: &ModelRef,
    cache_only: bool,
) -> Result<(ModelFiles, PathBuf, HubSettings), HubError> {
    let mut settings = model_settings();
    settings.offline |= cache_only;
    let files = fetch_model(&settings, r)?;
    let first = files
        .files
        .first()
        .ok_or_else(|| HubError::input(format!("{}: no file to load", r.describe())))?;
    let path = local_path(&settings, &files.repo, first);
    Ok((files, path, settings))
}

/// Resolves `r` to a commit and makes sure its file (and every part of a
/// split file) is in the cache, downloading what is missing with the same
/// guarantees as dataset files. The path to load is [`local_path`] of the
/// first file.
pub fn fetch_model(settings: &HubSettings, r: &ModelRef) -> Result<ModelFiles, HubError> {
    if let Some(files) = cached_model(settings, r) {
        if settings.offline || is_commit(&r.revision) {
            return Ok(files);
        }
    }
    if settings.offline {
        return fail(format!(
            "{} is not in the cache ({}) and HF_HUB_OFFLINE=1 forbids downloading it: \
             run `assay run` (or `assay score`) once with network access",
            r.describe(),
            settings.cache.display()
        ));
    }
    let client = Client::new(settings, RepoKind::Model)?;
    let info = client.info(&r.repo, &r.revision)?;
    if !is_commit(&info.sha) {
        return fail_retry(format!(
            "{}: the Hub answered the commit id {:?}, which is not a 40-digit hex id",
            r.describe(),
            info.sha
        ));
    }
    let mut files = Vec::new();
    for part in model_parts(&r.path) {
        let Some(sibling) = info.siblings.iter().find(|s| s.rfilename == part) else {
            let mut names: Vec<&str> = info
                .siblings
                .iter()
                .map(|s| s.rfilename.as_str())
                .filter(|n| n.ends_with(".gguf"))
                .take(8)
                .collect();
            if names.is_empty() {
                names.push("no .gguf file");
            }
            return fail(format!(
                "{}: the repository at commit {} has no file `{part}` (it has: {})",
                r.describe(),
                info.sha,
                names.join(", ")
            ));
        };
        files.push(HubFile {
            path: part,
            commit: info.sha.clone(),
            size: sibling.lfs.as_ref().and_then(|l| l.size).or(sibling.size),
            sha256: sibling.lfs.as_ref().and_then(|l| l.sha256.clone()),
        });
    }
    let resolved = ModelFiles {
        repo: r.repo.clone(),
        revision: r.revision.clone(),
        commit: info.sha.clone(),
        files,
    };
    write_atomic(
        &manifest_file(settings, &r.repo, &resolved.commit, &r.path),
        serde_json::to_string_pretty(&resolved)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    write_atomic(
        &ref_file(settings, &r.repo, &r.revision),
        resolved.commit.as_bytes(),
    )?;
    for file in &resolved.files {
        let dest = local_path(settings, &r.repo, file);
        if !is_whole(&dest, file) {
            client.download(&r.repo, file, &dest)?;
        }
    }
    Ok(resolved)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HubError> {
    let io = |e: std::io::Error| HubError::retry(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Percent-encodes one path segment (RFC 3986 unreserved characters pass).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// The revision's metadata, as `/api/datasets/{repo}/revision/{rev}` gives it.
#[derive(Debug, Deserialize)]
struct RepoInfo {
    sha: String,
    #[serde(default, rename = "cardData")]
    card_data: Option<Value>,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Debug, Deserialize)]
struct Sibling {
    rfilename: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    lfs: Option<Lfs>,
}

#[derive(Debug, Deserialize)]
struct Lfs {
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    size: Option<u64>,
}

/// Which kind of repository a client reads: they differ in their routes and
/// in how they are named in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    Dataset,
    Model,
}

impl RepoKind {
    fn word(self) -> &'static str {
        match self {
            RepoKind::Dataset => "dataset",
            RepoKind::Model => "model",
        }
    }

    /// `/api/{segment}/...`
    fn api_segment(self) -> &'static str {
        match self {
            RepoKind::Dataset => "datasets",
            RepoKind::Model => "models",
        }
    }

    /// Files download from `{endpoint}{prefix}/{repo}/resolve/...`.
    fn resolve_prefix(self) -> &'static str {
        match self {
            RepoKind::Dataset => "/datasets",
            RepoKind::Model => "",
        }
    }

    fn not_found_hint(self) -> &'static str {
        match self {
            RepoKind::Dataset => "check dataset_path, dataset_name and dataset_kwargs.revision",
            RepoKind::Model => "check the hf:// address: owner/name, revision and file path",
        }
    }
}

struct Client<'a> {
    settings: &'a HubSettings,
    kind: RepoKind,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl<'a> Client<'a> {
    fn new(settings: &'a HubSettings, kind: RepoKind) -> Result<Client<'a>, HubError> {
        let (http, runtime) = crate::http::client_and_runtime(|b| {
            b.connect_timeout(Duration::from_secs(30))
                .read_timeout(Duration::from_secs(120))
        })
        .map_err(HubError::retry)?;
        Ok(Client {
            settings,
            kind,
            http,
            runtime,
        })
    }

    fn get(&self, url: &str, range_from: u64) -> reqwest::RequestBuilder {
        let mut request = self.http.get(url);
        if let Some(Token(token)) = &self.settings.token {
            request = request.bearer_auth(token);
        }
        if range_from > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={range_from}-"));
        }
        request
    }

    /// A refusal in words: what the status means for this dataset and what
    /// to do. The token itself is never part of it.
    fn refusal(&self, status: reqwest::StatusCode, what: &str, repo: &str, body: &str) -> HubError {
        let token_hint = if self.settings.token.is_some() {
            "the token in HF_TOKEN was refused or has no access: check it can read this repository and that its terms are accepted on its Hub page"
        } else {
            "it may be gated or private: accept its terms on its Hub page and set HF_TOKEN to a token with read access"
        };
        let detail = crate::http::excerpt(body.as_bytes());
        let kind = match status.as_u16() {
            401 | 403 | 404 => ErrorKind::Input,
            _ => ErrorKind::NotFinished,
        };
        let message = match status.as_u16() {
            401 | 403 => format!(
                "{what}: the Hub at {} refused access to {} `{repo}` ({status}); {token_hint}",
                self.settings.endpoint,
                self.kind.word()
            ),
            404 => format!(
                "{what}: not found at {} ({status}: {detail}); {}",
                self.settings.endpoint,
                self.kind.not_found_hint()
            ),
            _ => format!(
                "{what}: the Hub at {} answered {status}: {detail}",
                self.settings.endpoint
            ),
        };
        HubError { message, kind }
    }

    fn unreachable(&self, what: &str, e: &reqwest::Error) -> HubError {
        HubError::retry(format!(
            "{what}: cannot reach the Hub at {} ({}); set HF_HUB_OFFLINE=1 to use only the cache, or HF_ENDPOINT for a mirror",
            self.settings.endpoint,
            crate::http::describe(e)
        ))
    }

    fn info(&self, repo: &str, revision: &str) -> Result<RepoInfo, HubError> {
        let url = format!(
            "{}/api/{}/{}/revision/{}?blobs=true",
            self.settings.endpoint,
            self.kind.api_segment(),
            encode_path(repo),
            encode_segment(revision)
        );
        let what = format!("{} `{repo}` at revision `{revision}`", self.kind.word());
        self.runtime.block_on(async {
            let response = self
                .get(&url, 0)
                .send()
                .await
                .map_err(|e| self.unreachable(&what, &e))?;
            let status = response.status();
            let body = response
                .text()
                .await
                .map_err(|e| self.unreachable(&what, &e))?;
            if !status.is_success() {
                return Err(self.refusal(status, &what, repo, &body));
            }
            serde_json::from_str(&body).map_err(|e| {
                HubError::retry(format!(
                    "{what}: the Hub's answer is not the expected JSON ({e})"
                ))
            })
        })
    }

    fn resolve(&self, r: &HubRef) -> Result<Resolved, HubError> {
        let info = self.info(&r.repo, &r.revision)?;
        // The commit names a cache folder: it must be a plain name.
        if !is_commit(&info.sha) {
            return fail_retry(format!(
                "{}: the Hub answered the commit id {:?}, which is not a 40-digit hex id",
                r.describe(),
                info.sha
            ));
        }
        let config = r.config_name().to_string();
        let mut splits = card_splits(&info, r.config.as_deref())
            .or_else(|| conventional_splits(&info, r.config.as_deref()))
            .map(|s| owned(s, &info.sha))
            .unwrap_or_default();
        let known = card_config_names(&info);
        let hint = if known.is_empty() {
            "check dataset_name".to_string()
        } else {
            format!("its configs are: {}; check dataset_name", known.join(", "))
        };
        if splits.is_empty() {
            let converted = self.info(&r.repo, PARQUET_BRANCH).map_err(|e| HubError {
                message: format!(
                    "{}: no data files for this config ({hint}), and no parquet conversion either ({e})",
                    r.describe()
                ),
                kind: e.kind,
            })?;
            if !is_commit(&converted.sha) {
                return fail_retry(format!(
                    "{}: the Hub answered the commit id {:?} for its parquet conversion, which is not a 40-digit hex id",
                    r.describe(),
                    converted.sha
                ));
            }
            splits = owned(converted_splits(&converted, &config), &converted.sha);
        }
        if splits.is_empty() {
            return fail(format!(
                "{}: no parquet, JSON or CSV files for this config ({hint})",
                r.describe()
            ));
        }
        Ok(Resolved {
            repo: r.repo.clone(),
            config,
            revision: r.revision.clone(),
            commit: info.sha,
            splits,
        })
    }

    /// Downloads one file to `dest` through `dest.part`, resuming a partial
    /// download, and verifies it before giving it its name.
    fn download(&self, repo: &str, file: &HubFile, dest: &Path) -> Result<(), HubError> {
        let part = PathBuf::from(format!("{}.part", dest.display()));
        let io =
            |e: std::io::Error| HubError::retry(format!("cannot write {}: {e}", part.display()));
        if let Some(dir) = part.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let url = format!(
            "{}{}/{}/resolve/{}/{}",
            self.settings.endpoint,
            self.kind.resolve_prefix(),
            encode_path(repo),
            encode_segment(&file.commit),
            encode_path(&file.path)
        );
        let what = format!("{} `{repo}` file `{}`", self.kind.word(), file.path);
        // One process downloads a file at a time (shards of a run started
        // together share the cache); the others wait, then find it done.
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&part)
            .map_err(io)?;
        lock_exclusive(&out).map_err(io)?;
        if is_whole(dest, file) {
            if out.metadata().is_ok_and(|m| m.len() == 0) {
                let _ = std::fs::remove_file(&part);
            }
            return Ok(());
        }
        let have = out.metadata().map_or(0, |m| m.len());
        let have = if file.size.is_some_and(|s| have > s) {
            0
        } else {
            have
        };
        let bar = byte_progress(self.settings.progress, file.size.unwrap_or(0), &file.path);
        let received = self.runtime.block_on(async {
            let mut response = self
                .get(&url, have)
                .send()
                .await
                .map_err(|e| self.unreachable(&what, &e))?;
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(self.refusal(status, &what, repo, &body));
            }
            let resumed = status == reqwest::StatusCode::PARTIAL_CONTENT && have > 0;
            if resumed {
                out.seek(std::io::SeekFrom::End(0)).map_err(io)?;
            } else {
                out.set_len(0).map_err(io)?;
                out.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
            }
            let mut received = if resumed { have } else { 0 };
            bar.set_position(received);
            let expected_body = response.content_length();
            let mut body_bytes = 0u64;
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        out.write_all(&chunk).map_err(io)?;
                        received += chunk.len() as u64;
                        body_bytes += chunk.len() as u64;
                        bar.set_position(received);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        out.flush().map_err(io)?;
                        return Err(HubError::retry(format!(
                            "{what}: the download stopped after {received} bytes ({}); \
                             run the command again to resume it",
                            crate::http::describe(&e)
                        )));
                    }
                }
            }
            out.flush().map_err(io)?;
            if let Some(n) = expected_body.filter(|n| *n != body_bytes) {
                return fail_retry(format!(
                    "{what}: the download stopped after {body_bytes} of {n} bytes; run the command again to resume it"
                ));
            }
            Ok(received)
        });
        bar.finish_and_clear();
        let received = received?;
        if let Some(size) = file.size.filter(|s| *s != received) {
            if received > size {
                let _ = std::fs::remove_file(&part);
            }
            return fail_retry(format!(
                "{what}: got {received} of {size} bytes; run the command again to resume the download"
            ));
        }
        if let Some(expected) = &file.sha256 {
            let actual = crate::hash::sha256_file(&part).map_err(io)?;
            if !actual.eq_ignore_ascii_case(expected) {
                let _ = std::fs::remove_file(&part);
                return fail_retry(format!(
                    "{what}: SHA-256 mismatch (the Hub says {expected}, the download is {actual}); \
                     the download was removed: run the command again, and if this repeats, check HF_ENDPOINT"
                ));
            }
        }
        std::fs::rename(&part, dest).map_err(io)
    }
}

/// A progress bar in bytes, for one download.
fn byte_progress(show: bool, len: u64, label: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>24} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}

/// Waits for an exclusive lock on `file`; the system releases it when the
/// process ends, so a crashed download leaves no stale lock.
fn lock_exclusive(file: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        loop {
            // SAFETY: flock on a descriptor this function borrows open.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(());
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(())
    }
}

/// The files of each split, read at `commit`.
fn owned(splits: BTreeMap<String, Vec<&Sibling>>, commit: &str) -> BTreeMap<String, Vec<HubFile>> {
    splits
        .into_iter()
        .map(|(split, files)| {
            let files = files
                .into_iter()
                .map(|s| HubFile {
                    path: s.rfilename.clone(),
                    commit: commit.to_string(),
                    size: s.lfs.as_ref().and_then(|l| l.size).or(s.size),
                    sha256: s.lfs.as_ref().and_then(|l| l.sha256.clone()),
                })
                .collect();
            (split, files)
        })
        .collect()
}

fn is_data_file(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    DATA_EXTENSIONS.iter().any(|e| lower.ends_with(e))
}

/// The config names the dataset card lists.
fn card_config_names(info: &RepoInfo) -> Vec<String> {
    info.card_data
        .as_ref()
        .and_then(|c| c.get("configs"))
        .and_then(Value::as_array)
        .map(|configs| {
            configs
                .iter()
                .filter_map(|c| c.get("config_name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The config's splits from the dataset card's `configs` metadata.
fn card_splits<'i>(
    info: &'i RepoInfo,
    config: Option<&str>,
) -> Option<BTreeMap<String, Vec<&'i Sibling>>> {
    let configs = info.card_data.as_ref()?.get("configs")?.as_array()?;
    let name = config.unwrap_or("default");
    let entry = configs
        .iter()
        .find(|c| c.get("config_name").and_then(Value::as_str) == Some(name))
        .or_else(|| {
            // No dataset_name: the card's default config, or its only one.
            if config.is_some() {
                return None;
            }
            configs
                .iter()
                .find(|c| c.get("default") == Some(&Value::Bool(true)))
                .or(if configs.len() == 1 {
                    configs.first()
                } else {
                    None
                })
        })?;
    let patterns = data_file_patterns(entry.get("data_files")?)?;
    let mut out = BTreeMap::new();
    for (split, globs) in patterns {
        let matchers: Vec<Glob> = globs.iter().map(|g| Glob::new(g)).collect();
        let mut files: Vec<&Sibling> = info
            .siblings
            .iter()
            .filter(|s| matchers.iter().any(|m| m.matches(&s.rfilename)))
            .collect();
        files.sort_by(|a, b| a.rfilename.cmp(&b.rfilename));
        out.insert(split, files);
    }
    Some(out)
}

/// `data_files` as a card writes it: a pattern or list of patterns (the
/// `train` split), or a list of `{split, path}`.
fn data_file_patterns(value: &Value) -> Option<BTreeMap<String, Vec<String>>> {
    let strings = super::string_list;
    let mut out = BTreeMap::new();
    match value {
        Value::Array(items) if items.iter().all(Value::is_object) => {
            for item in items {
                let split = item.get("split").and_then(Value::as_str).unwrap_or("train");
                out.insert(split.to_string(), strings(item.get("path")?)?);
            }
        }
        Value::Object(m) => {
            for (split, v) in m {
                out.insert(split.clone(), strings(v)?);
            }
        }
        other => {
            out.insert("train".to_string(), strings(other)?);
        }
    }
    Some(out)
}

/// Split names and the words that name them in file and folder names, as
/// the `datasets` library's default patterns have them.
const SPLIT_WORDS: [(&str, &[&str]); 3] = [
    ("train", &["train", "training"]),
    ("validation", &["validation", "valid", "dev", "val"]),
    ("test", &["test", "testing", "eval", "evaluation"]),
];

/// The splits of a repository without `configs` metadata: data files whose
/// folder or file name starts with a split's word. Only for the default
/// config; a named config needs the card or the parquet conversion.
fn conventional_splits<'i>(
    info: &'i RepoInfo,
    config: Option<&str>,
) -> Option<BTreeMap<String, Vec<&'i Sibling>>> {
    if config.is_some_and(|c| c != "default") {
        return None;
    }
    let mut out: BTreeMap<String, Vec<&Sibling>> = BTreeMap::new();
    for s in info.siblings.iter().filter(|s| is_data_file(&s.rfilename)) {
        let parts: Vec<&str> = s.rfilename.split('/').collect();
        let split = SPLIT_WORDS.iter().find(|(_, words)| {
            parts.iter().any(|part| {
                let part = part.to_ascii_lowercase();
                words.iter().any(|w| {
                    part.strip_prefix(w)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '.', '_']))
                })
            })
        });
        if let Some((name, _)) = split {
            out.entry(name.to_string()).or_default().push(s);
        }
    }
    for files in out.values_mut() {
        files.sort_by(|a, b| a.rfilename.cmp(&b.rfilename));
    }
    Some(out).filter(|o| !o.is_empty())
}

/// The splits of the Hub's parquet conversion of `config`:
/// `<config>/<split>/NNNN.parquet` (or `partial-<split>` for big ones).
fn converted_splits<'i>(info: &'i RepoInfo, config: &str) -> BTreeMap<String, Vec<&'i Sibling>> {
    let mut out: BTreeMap<String, Vec<&Sibling>> = BTreeMap::new();
    for s in &info.siblings {
        let parts: Vec<&str> = s.rfilename.split('/').collect();
        if let [c, split, file] = parts.as_slice() {
            if *c == config && file.ends_with(".parquet") {
                let split = split.strip_prefix("partial-").unwrap_or(split);
                out.entry(split.to_string()).or_default().push(s);
            }
        }
    }
    for files in out.values_mut() {
        files.sort_by(|a, b| a.rfilename.cmp(&b.rfilename));
    }
    out
}

/// A `data_files` glob as `fsspec` reads it: `*` and `?` stay inside one
/// path segment, `**` crosses segments, `[...]` is a character class.
struct Glob(Option<regex::Regex>);

impl Glob {
    fn new(pattern: &str) -> Glob {
        let mut re = String::from("^");
        let chars: Vec<char> = pattern.trim_start_matches("./").chars().collect();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    if chars.get(i + 2) == Some(&'/') {
                        re.push_str("(?:.*/)?");
                        i += 3;
                    } else {
                        re.push_str(".*");
                        i += 2;
                    }
                    continue;
                }
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                '[' => match chars[i..].iter().position(|c| *c == ']') {
                    Some(end) if end > 1 => {
                        let class: String = chars[i + 1..i + end].iter().collect();
                        let class = class
                            .strip_prefix('!')
                            .map_or(class.clone(), |c| format!("^{c}"));
                        re.push('[');
                        re.push_str(&class.replace('\\', "\\\\"));
                        re.push(']');
                        i += end + 1;
                        continue;
                    }
                    _ => re.push_str("\\["),
                },
                c => re.push_str(&regex::escape(&c.to_string())),
            }
            i += 1;
        }
        re.push('$');
        Glob(regex::Regex::new(&re).ok())
    }

    fn matches(&self, path: &str) -> bool {
        self.0.as_ref().is_some_and(|r| r.is_match(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_addresses_and_split_files_read_as_the_hub_names_them() {
        let r = ModelRef::parse("hf://org/model@abc/sub/m.gguf")
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.repo.as_str(), r.revision.as_str(), r.path.as_str()),
            ("org/model", "abc", "sub/m.gguf")
        );
        assert_eq!(
            ModelRef::parse("hf://org/model/m.gguf")
                .unwrap()
                .unwrap()
                .revision,
            "main"
        );
        assert!(ModelRef::parse("hf://org/model").unwrap().is_err());
        assert!(ModelRef::parse("hf://org/model@x/../m.gguf")
            .unwrap()
            .is_err());
        assert!(ModelRef::parse("models/m.gguf").is_none());
        assert_eq!(
            model_parts("q/m-00001-of-00003.gguf"),
            [
                "q/m-00001-of-00003.gguf",
                "q/m-00002-of-00003.gguf",
                "q/m-00003-of-00003.gguf"
            ]
        );
        assert_eq!(model_parts("m-1-of-3.gguf"), ["m-1-of-3.gguf"]);
    }

    #[test]
    fn globs_follow_fsspec() {
        assert!(Glob::new("ARC-Easy/train-*").matches("ARC-Easy/train-00000-of-00001.parquet"));
        assert!(!Glob::new("ARC-Easy/train-*").matches("ARC-Easy/sub/train-0.parquet"));
        assert!(Glob::new("data/**/*.parquet").matches("data/a/b/x.parquet"));
        assert!(Glob::new("data/**/*.parquet").matches("data/x.parquet"));
        assert!(Glob::new("test_?.json").matches("test_1.json"));
        assert!(Glob::new("x[0-9].csv").matches("x7.csv"));
        assert!(!Glob::new("x[!0-9].csv").matches("x7.csv"));
    }

    #[test]
    fn card_data_files_take_every_form() {
        let p = data_file_patterns(&serde_json::json!([
            {"split": "train", "path": "c/train-*"},
            {"split": "test", "path": ["c/test-*", "c/extra.parquet"]}
        ]))
        .unwrap();
        assert_eq!(p["test"], vec!["c/test-*", "c/extra.parquet"]);
        let p = data_file_patterns(&serde_json::json!("data/*.jsonl")).unwrap();
        assert_eq!(p["train"], vec!["data/*.jsonl"]);
    }

    #[test]
    fn conventional_names_find_splits() {
        let info: RepoInfo = serde_json::from_value(serde_json::json!({
            "sha": "0".repeat(40),
            "siblings": [
                {"rfilename": "README.md"},
                {"rfilename": "data/train-00000-of-00002.parquet"},
                {"rfilename": "data/train-00001-of-00002.parquet"},
                {"rfilename": "dev.jsonl"},
                {"rfilename": "test/0000.parquet"},
                {"rfilename": "contest.jsonl"}
            ]
        }))
        .unwrap();
        let s = conventional_splits(&info, None).unwrap();
        assert_eq!(s["train"].len(), 2);
        assert_eq!(s["validation"][0].rfilename, "dev.jsonl");
        assert_eq!(s["test"][0].rfilename, "test/0000.parquet");
        assert!(conventional_splits(&info, Some("other")).is_none());
    }

    #[test]
    fn the_token_never_prints() {
        let settings = HubSettings {
            endpoint: "http://x".into(),
            token: Some(Token("hf_secret".into())),
            offline: false,
            cache: PathBuf::from("c"),
            progress: false,
        };
        assert!(!format!("{settings:?}").contains("hf_secret"));
    }
}
