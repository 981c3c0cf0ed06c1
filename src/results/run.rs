//! `run.json` as a type: the one writer and the one reader of the format.
//!
//! The lm-eval block (`results`, `groups`, `configs`, ...) keeps lm-eval's
//! key names and shapes, so tools that read lm-eval output read assay's;
//! `assay` holds the provenance. Maps keep the order they were built in
//! (groups first, then tasks in plan order), as lm-eval writes them. Every
//! field has a default, so runs written by older versions still read.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::backend::ModelIdentity;
use crate::data::HubSource;
use crate::engine::{RequestCounts, SkippedDocument};
use crate::invocation::Invocation;
use crate::stats::Score;

/// One run as `run.json` holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Run {
    /// Every task's and group's metrics.
    pub results: IndexMap<String, MetricBlock>,
    /// The groups' metrics again, as lm-eval lists them.
    pub groups: IndexMap<String, MetricBlock>,
    /// Each group's tasks; a task outside any group has an empty list.
    pub group_subtasks: IndexMap<String, Vec<String>>,
    /// Each task's merged config, with the shot count it ran with.
    pub configs: IndexMap<String, Map<String, Value>>,
    pub versions: IndexMap<String, Value>,
    #[serde(rename = "n-shot")]
    pub n_shot: IndexMap<String, usize>,
    /// Per task: metric -> whether higher is better.
    pub higher_is_better: IndexMap<String, IndexMap<String, bool>>,
    #[serde(rename = "n-samples")]
    pub n_samples: IndexMap<String, SampleCounts>,
    pub config: RunConfig,
    pub assay: Provenance,
}

/// A task's or group's metrics: `"acc,none"` -> score, written as lm-eval
/// writes them (`"alias"`, `"acc,none": 0.5`, `"acc_stderr,none": 0.05` or
/// `"N/A"`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricBlock {
    pub alias: String,
    pub scores: IndexMap<String, Score>,
}

/// lm-eval's `n-samples`: documents in the split, and those scored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SampleCounts {
    pub original: usize,
    pub effective: usize,
}

/// lm-eval's `config` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    /// The backend spec.
    pub model: String,
    pub model_args: BTreeMap<String, String>,
    /// `--limit` as given.
    pub limit: Option<String>,
    pub fewshot_seed: u64,
    pub bootstrap_iters: u64,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            model: String::new(),
            model_args: BTreeMap::new(),
            limit: None,
            fewshot_seed: 0,
            bootstrap_iters: BOOTSTRAP_ITERS,
        }
    }
}

/// The bootstrap iterations lm-eval records (assay's standard errors are
/// closed-form where lm-eval's are, and bootstrapped with this many draws
/// where lm-eval bootstraps).
pub const BOOTSTRAP_ITERS: u64 = 100_000;

/// assay's provenance of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Provenance {
    pub version: String,
    pub git_revision: String,
    pub run_id: String,
    /// The variant the run was filed under.
    pub variant: Option<String>,
    /// UTC, RFC 3339, seconds.
    pub created_at: String,
    /// Written last: a run without it is not one to read.
    pub complete: bool,
    /// Set on one shard of a run (`--shard K/N`).
    pub shard: Option<ShardRecord>,
    pub model: Option<ModelIdentity>,
    pub tasks: IndexMap<String, TaskRecord>,
    pub requests: RequestCounts,
    /// Documents left out because a request did not fit the context.
    pub skipped_documents: Vec<SkippedDocument>,
    /// What was asked for, so the run can be planned again.
    pub invocation: Invocation,
    /// The run ids of the shards this run was merged from.
    pub merged_from: Vec<String>,
    pub timings: Timings,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub index: usize,
    pub count: usize,
}

/// Where one task's config and data came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskRecord {
    pub config_path: String,
    /// SHA-256 of the canonical merged config.
    pub config_hash: String,
    /// Data file -> SHA-256.
    pub data_files: BTreeMap<String, String>,
    /// A Hub dataset: hub, repo, config, revision, commit.
    pub dataset: Option<HubSource>,
    pub output_type: String,
    /// Which prompts the task asked (see `prompts_hash`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompts_hash: Option<String>,
    /// The task's `!function` hooks and how each was run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookRecord>,
}

/// One `!function` hook of a task: a native port, or the Python function
/// itself (`--python-hooks`), with what computed it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HookRecord {
    /// The config field, e.g. `process_docs` or `metric_list[0].metric`.
    pub field: String,
    /// `module.function` as the config names it.
    pub function: String,
    /// `native` or `python`.
    pub implementation: String,
    /// The Python file and its SHA-256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Python, lm-eval, and the packages the hook's module imported.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Timings {
    pub planning_seconds: f64,
    pub inference_seconds: f64,
}

impl Run {
    /// Whether the run finished and is not one shard of several.
    pub fn is_complete(&self) -> bool {
        self.assay.complete && self.assay.shard.is_none()
    }

    /// The config hash the run recorded for `task`.
    pub fn config_hash(&self, task: &str) -> Option<&str> {
        self.assay
            .tasks
            .get(task)
            .map(|t| t.config_hash.as_str())
            .filter(|h| !h.is_empty())
    }

    /// The model's fingerprint, empty if the run records none.
    pub fn fingerprint(&self) -> &str {
        self.assay
            .model
            .as_ref()
            .map_or("", |m| m.fingerprint.as_str())
    }

    /// `"metric,filter"`'s score for a task or group.
    pub fn score(&self, name: &str, key: &str) -> Option<Score> {
        self.results.get(name)?.scores.get(key).copied()
    }
}

impl Serialize for MetricBlock {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1 + 2 * self.scores.len()))?;
        map.serialize_entry("alias", &self.alias)?;
        for (key, score) in &self.scores {
            let (metric, filter) = key.split_once(',').unwrap_or((key, "none"));
            map.serialize_entry(key, &score.value)?;
            let stderr = format!("{metric}_stderr,{filter}");
            match score.stderr {
                Some(s) => map.serialize_entry(&stderr, &s)?,
                None => map.serialize_entry(&stderr, "N/A")?,
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for MetricBlock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Map::<String, Value>::deserialize(deserializer)?;
        let mut block = MetricBlock {
            alias: raw
                .get("alias")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            scores: IndexMap::new(),
        };
        for (key, value) in &raw {
            let Some((metric, filter)) = key.split_once(',') else {
                continue;
            };
            if metric.ends_with("_stderr") {
                continue;
            }
            // lm-eval writes a non-finite value as null (serde_json's NaN).
            let value = match value {
                Value::Null => f64::NAN,
                v => match v.as_f64() {
                    Some(x) => x,
                    None => continue,
                },
            };
            let stderr = raw
                .get(&format!("{metric}_stderr,{filter}"))
                .and_then(Value::as_f64);
            block.scores.insert(key.clone(), Score { value, stderr });
        }
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_block_reads_back_what_it_wrote_including_na_and_nan() {
        let mut block = MetricBlock {
            alias: "t".into(),
            scores: IndexMap::new(),
        };
        block.scores.insert(
            "acc,none".into(),
            Score {
                value: 0.5,
                stderr: Some(0.1),
            },
        );
        block.scores.insert(
            "f1,strict".into(),
            Score {
                value: 0.25,
                stderr: None,
            },
        );
        let text = serde_json::to_string(&block).unwrap();
        assert_eq!(
            text,
            r#"{"alias":"t","acc,none":0.5,"acc_stderr,none":0.1,"f1,strict":0.25,"f1_stderr,strict":"N/A"}"#
        );
        assert_eq!(serde_json::from_str::<MetricBlock>(&text).unwrap(), block);
        let nan: MetricBlock =
            serde_json::from_str(r#"{"alias":"t","ppl,none":null,"ppl_stderr,none":"N/A"}"#)
                .unwrap();
        assert!(nan.scores["ppl,none"].value.is_nan());
    }
}
