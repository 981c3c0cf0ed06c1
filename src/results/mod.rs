//! The on-disk run format: `run.json` and `samples.parquet` in
//! `<out>/<variant>/<run-id>/`.
//!
//! `run.json` carries lm-eval's result block (so tools that read lm-eval
//! output read assay's) plus assay's provenance. A run is written into a
//! hidden temporary folder and renamed into place, so a folder that looks
//! like a run is always complete.

mod pyjson;
mod samples;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::backend::ModelIdentity;
use crate::engine::score::{GroupScores, Score, TaskScores};
use crate::engine::{Plan, RequestCounts};
use crate::prompt::pyvalue::py_str;
use crate::request::sha256_hex;

pub use pyjson::dumps_indent2;
pub use samples::{
    chosen_option, hash_key, prompts_hash, read as read_samples, read_doc_field, read_documents,
    read_prompts, shown_text, visit_documents, Details, DocumentResult, DocumentRow, MetricKey,
    PromptRecord, SampleRecord,
};

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ResultsError {
    pub path: PathBuf,
    pub message: String,
}

/// What produced a run, beyond the plan and the scores.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub variant: String,
    pub model: ModelIdentity,
    pub model_args: BTreeMap<String, String>,
    pub fewshot_seed: u64,
    pub limit: Option<String>,
    pub shard: Option<(usize, usize)>,
    pub counts: RequestCounts,
    /// Documents left out because a request did not fit the context.
    pub skipped_documents: Vec<crate::engine::SkippedDocument>,
    /// What was asked for, so the run can be planned again.
    pub invocation: crate::engine::plan::Invocation,
    /// The run ids of the shards this run was merged from.
    pub merged_from: Vec<String>,
    pub seconds_planning: f64,
    pub seconds_inference: f64,
}

/// The lm-eval-shaped metrics of one task or group: `"acc,none": 0.5`,
/// `"acc_stderr,none": 0.05` (or `"N/A"`).
fn metric_block(alias: &str, scores: &BTreeMap<String, Score>) -> Value {
    let mut m = Map::new();
    m.insert("alias".into(), Value::String(alias.to_string()));
    for (key, score) in scores {
        let (metric, filter) = key.split_once(',').unwrap_or((key, "none"));
        m.insert(key.clone(), json!(score.value));
        m.insert(
            format!("{metric}_stderr,{filter}"),
            score
                .stderr
                .map_or(Value::String("N/A".into()), |s| json!(s)),
        );
    }
    Value::Object(m)
}

/// Builds `run.json`.
pub fn run_json(
    plan: &Plan,
    tasks: &[TaskScores],
    groups: &[GroupScores],
    info: &RunInfo,
    run_id: &str,
) -> Value {
    let mut results = Map::new();
    let mut groups_block = Map::new();
    let mut group_subtasks = Map::new();
    let mut configs = Map::new();
    let mut versions = Map::new();
    let mut n_shot = Map::new();
    let mut higher = Map::new();
    let mut n_samples = Map::new();
    let mut provenance_tasks = Map::new();
    for g in groups {
        let block = metric_block(&g.alias, &g.scores);
        results.insert(g.group.clone(), block.clone());
        groups_block.insert(g.group.clone(), block);
        group_subtasks.insert(g.group.clone(), json!(g.subtasks));
    }
    for (planned, scored) in plan.tasks.iter().zip(tasks) {
        let name = &planned.config.task;
        let alias = planned
            .config
            .task_alias
            .clone()
            .unwrap_or_else(|| name.clone());
        results.insert(name.clone(), metric_block(&alias, &scored.scores));
        if !group_subtasks
            .values()
            .any(|v| v.as_array().is_some_and(|a| a.contains(&json!(name))))
        {
            group_subtasks.insert(name.clone(), json!([]));
        }
        let mut cfg = planned.config.raw.clone();
        cfg.insert("num_fewshot".into(), json!(planned.num_fewshot));
        configs.insert(name.clone(), Value::Object(cfg));
        versions.insert(name.clone(), planned.config.version());
        n_shot.insert(name.clone(), json!(planned.num_fewshot));
        higher.insert(
            name.clone(),
            Value::Object(
                planned
                    .metrics
                    .iter()
                    .map(|m| (m.name.clone(), json!(m.higher_is_better)))
                    .collect(),
            ),
        );
        n_samples.insert(
            name.clone(),
            json!({"original": planned.total_docs, "effective": planned.docs.len()}),
        );
        provenance_tasks.insert(
            name.clone(),
            json!({
                "config_path": planned.config.source.display().to_string(),
                "config_hash": planned.config_hash,
                "data_files": planned.data_files,
                "dataset": planned.data_source,
                "output_type": planned.config.output_type.name(),
            }),
        );
    }
    json!({
        "results": results,
        "groups": groups_block,
        "group_subtasks": group_subtasks,
        "configs": configs,
        "versions": versions,
        "n-shot": n_shot,
        "higher_is_better": higher,
        "n-samples": n_samples,
        "config": {
            "model": info.model.spec,
            "model_args": info.model_args,
            "limit": info.limit,
            "fewshot_seed": info.fewshot_seed,
            "bootstrap_iters": 100000,
        },
        "assay": {
            "version": env!("CARGO_PKG_VERSION"),
            "git_revision": option_env!("ASSAY_GIT_REVISION").unwrap_or("unknown"),
            "run_id": run_id,
            "variant": info.variant,
            "created_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "complete": true,
            "shard": info.shard.map(|(k, n)| json!({"index": k, "count": n})),
            "model": info.model,
            "tasks": provenance_tasks,
            "requests": info.counts,
            "skipped_documents": info.skipped_documents,
            "invocation": info.invocation,
            "merged_from": info.merged_from,
            "timings": {"planning_seconds": info.seconds_planning, "inference_seconds": info.seconds_inference},
        },
    })
}

/// A run folder as readers find it: its run.json and what identifies it.
#[derive(Debug, Clone)]
pub struct FoundRun {
    pub dir: PathBuf,
    pub run: Value,
    /// The variant the run was filed under, if it says.
    pub variant: Option<String>,
    pub created: String,
    pub run_id: String,
}

impl FoundRun {
    /// Whether the run finished and is not one shard of several.
    pub fn is_complete(&self) -> bool {
        self.run["assay"]["complete"] == true && self.run["assay"]["shard"].is_null()
    }

    /// The config hash the run recorded for `task`.
    pub fn config_hash(&self, task: &str) -> Option<&str> {
        self.run["assay"]["tasks"][task]["config_hash"].as_str()
    }

    /// Newer runs sort last.
    fn age(&self) -> (&str, &str) {
        (&self.created, &self.run_id)
    }
}

/// Reads the run in `dir` (its run.json).
pub fn read_run(dir: &Path) -> Result<FoundRun, ResultsError> {
    let path = dir.join("run.json");
    let err = |message: String| ResultsError {
        path: path.clone(),
        message,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
    let run: Value =
        serde_json::from_str(&text).map_err(|e| err(format!("not valid JSON ({e})")))?;
    let text_of = |v: &Value| v.as_str().unwrap_or("").to_string();
    Ok(FoundRun {
        dir: dir.to_path_buf(),
        variant: run["assay"]["variant"].as_str().map(str::to_string),
        created: text_of(&run["assay"]["created_at"]),
        run_id: text_of(&run["assay"]["run_id"]),
        run,
    })
}

/// The newest complete, unsharded run in a variant's folder of runs, if
/// any. Hidden folders are runs still being written; a run.json that cannot
/// be read is an error naming it.
pub fn latest_complete_run(variant_dir: &Path) -> Result<Option<FoundRun>, ResultsError> {
    let entries = std::fs::read_dir(variant_dir).map_err(|e| ResultsError {
        path: variant_dir.to_path_buf(),
        message: e.to_string(),
    })?;
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
pub fn write_run(
    dir: &Path,
    run: &Value,
    plan: &Plan,
    tasks: &[TaskScores],
) -> Result<(), ResultsError> {
    let err = |path: &Path, e: &dyn std::fmt::Display| ResultsError {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| err(parent, &e))?;
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("run");
    let tmp = parent.join(format!(".{name}.partial"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| err(&tmp, &e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| err(&tmp, &e))?;
    let prompt_sets =
        samples::write(&tmp.join("samples.parquet"), plan, tasks).map_err(|e| err(&tmp, &e))?;
    // Which prompts each task asked, so readers need not hash them again.
    let mut run = run.clone();
    for (task, hash) in prompt_sets {
        if let Some(entry) = run["assay"]["tasks"][&task].as_object_mut() {
            entry.insert("prompts_hash".into(), Value::String(hash));
        }
    }
    let text = serde_json::to_string_pretty(&run).map_err(|e| err(dir, &e))?;
    std::fs::write(tmp.join("run.json"), text).map_err(|e| err(&tmp, &e))?;
    std::fs::rename(&tmp, dir).map_err(|e| err(dir, &e))?;
    Ok(())
}
