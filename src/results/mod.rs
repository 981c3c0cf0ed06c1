//! The on-disk run format: `run.json` and `samples.parquet` in
//! `<out>/<variant>/<run-id>/`.
//!
//! `run.json` carries lm-eval's result block (so tools that read lm-eval
//! output read assay's) plus assay's provenance. A run is written into a
//! hidden temporary folder and renamed into place, so a folder that looks
//! like a run is always complete.

mod run;
mod samples;
pub mod summary;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::ErrorKind;
use crate::hash::sha256_hex;
use crate::python::value::py_str;

pub use crate::python::json::dumps_indent2;
pub use run::{
    HookRecord, MetricBlock, Provenance, Run, RunConfig, SampleCounts, ShardRecord, TaskRecord,
    Timings, BOOTSTRAP_ITERS,
};
pub use samples::{
    chosen_option, hash_key, prompts_hash, read as read_samples, read_doc_field, read_documents,
    read_prompts, shown_text, visit_documents, Details, DocumentResult, DocumentRow, MetricKey,
    PromptRecord, SampleRecord, SampleRow,
};

/// A run folder that cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ResultsError {
    pub path: PathBuf,
    pub message: String,
    pub kind: ErrorKind,
}

impl ResultsError {
    fn reading(path: &Path, message: impl std::fmt::Display) -> ResultsError {
        ResultsError {
            path: path.to_path_buf(),
            message: message.to_string(),
            kind: ErrorKind::Input,
        }
    }

    fn writing(path: &Path, message: impl std::fmt::Display) -> ResultsError {
        ResultsError {
            path: path.to_path_buf(),
            message: message.to_string(),
            kind: ErrorKind::NotFinished,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// A run folder as readers find it: its run.json and what identifies it.
#[derive(Debug, Clone)]
pub struct FoundRun {
    pub dir: PathBuf,
    pub run: Run,
}

impl FoundRun {
    /// The variant the run was filed under, if it says.
    pub fn variant(&self) -> Option<&str> {
        self.run.assay.variant.as_deref()
    }

    pub fn run_id(&self) -> &str {
        &self.run.assay.run_id
    }

    pub fn created(&self) -> &str {
        &self.run.assay.created_at
    }

    /// Whether the run finished and is not one shard of several.
    pub fn is_complete(&self) -> bool {
        self.run.is_complete()
    }

    /// The config hash the run recorded for `task`.
    pub fn config_hash(&self, task: &str) -> Option<&str> {
        self.run.config_hash(task)
    }

    /// Newer runs sort last.
    fn age(&self) -> (&str, &str) {
        (self.created(), self.run_id())
    }
}

/// Reads the run in `dir` (its run.json).
pub fn read_run(dir: &Path) -> Result<FoundRun, ResultsError> {
    let path = dir.join("run.json");
    let text = std::fs::read_to_string(&path).map_err(|e| ResultsError::reading(&path, e))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| ResultsError::reading(&path, format!("not valid JSON ({e})")))?;
    let run: Run = serde_json::from_value(value).map_err(|e| {
        ResultsError::reading(&path, format!("not a run.json as assay writes it ({e})"))
    })?;
    Ok(FoundRun {
        dir: dir.to_path_buf(),
        run,
    })
}

/// The newest complete, unsharded run in a variant's folder of runs, if
/// any. Hidden folders are runs still being written; a run.json that cannot
/// be read is an error naming it.
pub fn latest_complete_run(variant_dir: &Path) -> Result<Option<FoundRun>, ResultsError> {
    let entries =
        std::fs::read_dir(variant_dir).map_err(|e| ResultsError::reading(variant_dir, e))?;
    let mut latest: Option<FoundRun> = None;
    for dir in entries.flatten().map(|e| e.path()) {
        let hidden = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden || !dir.join("run.json").is_file() {
            continue;
        }
        let run = read_run(&dir)?;
        if run.is_complete() && latest.as_ref().is_none_or(|l| run.age() > l.age()) {
            latest = Some(run);
        }
    }
    Ok(latest)
}

/// lm-eval's per-document hashes: `doc_hash`, `prompt_hash`, `target_hash`.
pub fn doc_hashes(
    doc: &Map<String, Value>,
    prompt: &str,
    target: &Value,
) -> (String, String, String) {
    (
        sha256_hex(dumps_indent2(&Value::Object(doc.clone())).as_bytes()),
        sha256_hex(prompt.as_bytes()),
        sha256_hex(py_str(target).as_bytes()),
    )
}

/// A fresh run id: UTC time plus a short hash of the plan, sortable by time.
pub fn new_run_id(seed: &str) -> String {
    let now = chrono::Utc::now();
    format!(
        "{}-{}",
        now.format("%Y%m%dT%H%M%SZ"),
        &sha256_hex(format!("{seed}{}", now.timestamp_nanos_opt().unwrap_or(0)).as_bytes())[..6]
    )
}

/// Writes `run.json` and `samples.parquet` into `dir` atomically: everything
/// goes to a hidden sibling folder first, which is renamed when complete.
pub fn write_run(dir: &Path, run: &Run, samples: &[SampleRow]) -> Result<(), ResultsError> {
    fn err(path: &Path, e: impl std::fmt::Display) -> ResultsError {
        ResultsError::writing(path, e)
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| err(parent, e))?;
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("run");
    let tmp = parent.join(format!(".{name}.partial"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| err(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| err(&tmp, e))?;
    samples::write(&tmp.join("samples.parquet"), samples).map_err(|e| err(&tmp, e))?;
    let text = serde_json::to_string_pretty(run).map_err(|e| err(dir, e))?;
    std::fs::write(tmp.join("run.json"), text).map_err(|e| err(&tmp, e))?;
    std::fs::rename(&tmp, dir).map_err(|e| err(dir, e))?;
    Ok(())
}
