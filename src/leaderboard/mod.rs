//! Leaderboard tables: every variant's latest complete run of a suite, as
//! polars tables (`leaderboard.parquet` and `.csv`, one row per variant;
//! `per_task.parquet`, one row per variant and task).
//!
//! Scores are normalized by each task's random-chance baseline, as the
//! suite declares it: (score - baseline) / (1 - baseline). The average of the
//! normalized scores ranks the variants; variants whose average is not
//! separable from a group's leader at 95% share its tie group. A variant's
//! delta to its base is paired: both runs answered the same documents, so
//! per-document differences (matched by `doc_hash`) give the difference and
//! its standard error.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use crate::results::{self, MetricKey};
use crate::variant::{self, Variant};

/// Why the tables could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct LeaderboardError {
    pub path: PathBuf,
    pub message: String,
}

fn error(path: &Path, message: impl std::fmt::Display) -> LeaderboardError {
    LeaderboardError {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// What counts for one task of a suite.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SuiteTask {
    pub metric: String,
    #[serde(default = "none_filter")]
    pub filter: String,
    #[serde(default)]
    pub baseline: f64,
}

fn none_filter() -> String {
    "none".into()
}

#[derive(Deserialize)]
struct SuiteFile {
    #[serde(default)]
    metadata: SuiteMetadata,
}

#[derive(Deserialize, Default)]
struct SuiteMetadata {
    #[serde(default)]
    leaderboard: BTreeMap<String, SuiteTask>,
}

/// Reads the tasks that count from a suite file (`metadata.leaderboard`).
pub fn read_suite(path: &Path) -> Result<BTreeMap<String, SuiteTask>, LeaderboardError> {
    let text = std::fs::read_to_string(path).map_err(|e| error(path, e))?;
    let suite: SuiteFile = serde_saphyr::from_str(&text).map_err(|e| error(path, e))?;
    if suite.metadata.leaderboard.is_empty() {
        return Err(error(
            path,
            "metadata.leaderboard names no task; list each task's metric, filter and baseline",
        ));
    }
    for (task, spec) in &suite.metadata.leaderboard {
        if !(0.0..1.0).contains(&spec.baseline) {
            return Err(error(
                path,
                format!("task {task}: baseline {} is not in [0, 1)", spec.baseline),
            ));
        }
    }
    Ok(suite.metadata.leaderboard)
}

/// One run folder, as the tables need it.
#[derive(Debug, Clone)]
struct RunRecord {
    dir: PathBuf,
    run: Value,
    created: String,
    run_id: String,
}

/// Every variant's latest complete run under `runs`, by variant name.
fn latest_runs(runs: &Path) -> Result<BTreeMap<String, RunRecord>, LeaderboardError> {
    let mut latest: BTreeMap<String, RunRecord> = BTreeMap::new();
    let variants = std::fs::read_dir(runs).map_err(|e| {
        error(
            runs,
            format!(
                "cannot read the runs folder ({e}); score a variant first or give --results DIR"
            ),
        )
    })?;
    for variant_dir in variants.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        let Ok(entries) = std::fs::read_dir(&variant_dir) else {
            continue;
        };
        for dir in entries.flatten().map(|e| e.path()) {
            let path = dir.join("run.json");
            // Hidden folders are runs still being written.
            let hidden = dir
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden || !path.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| error(&path, e))?;
            let run: Value = serde_json::from_str(&text)
                .map_err(|e| error(&path, format!("not valid JSON ({e})")))?;
            if run["assay"]["complete"] != true || !run["assay"]["shard"].is_null() {
                continue;
            }
            let Some(name) = run["assay"]["variant"].as_str().map(str::to_string) else {
                continue;
            };
            let record = RunRecord {
                created: run["assay"]["created_at"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                run_id: run["assay"]["run_id"].as_str().unwrap_or("").to_string(),
                dir,
                run,
            };
            let newer = latest
                .get(&name)
                .is_none_or(|r| (&record.created, &record.run_id) > (&r.created, &r.run_id));
            if newer {
                latest.insert(name, record);
            }
        }
    }
    Ok(latest)
}

/// A task's score in a run.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TaskScore {
    score: f64,
    stderr: Option<f64>,
    normalized: f64,
    normalized_stderr: Option<f64>,
}

fn task_score(run: &Value, task: &str, spec: &SuiteTask) -> Option<TaskScore> {
    let block = &run["results"][task];
    let score = block[format!("{},{}", spec.metric, spec.filter)].as_f64()?;
    let stderr = block[format!("{}_stderr,{}", spec.metric, spec.filter)].as_f64();
    let scale = 1.0 - spec.baseline;
    Some(TaskScore {
        score,
        stderr,
        normalized: (score - spec.baseline) / scale,
        normalized_stderr: stderr.map(|s| s / scale),
    })
}

/// Per-document values of every suite metric in a run, read once.
type DocumentValues = HashMap<MetricKey, HashMap<String, f64>>;

fn suite_keys(suite: &BTreeMap<String, SuiteTask>) -> Vec<MetricKey> {
    suite
        .iter()
        .map(|(task, spec)| MetricKey {
            task: task.clone(),
            filter: spec.filter.clone(),
            metric: spec.metric.clone(),
        })
        .collect()
}

fn document_values(dir: &Path, keys: &[MetricKey]) -> Result<DocumentValues, LeaderboardError> {
    let path = dir.join("samples.parquet");
    results::read_metric_values(&path, keys).map_err(|e| error(&path, e))
}

/// The paired difference candidate - base over shared documents: (mean,
/// standard error, documents).
fn paired_difference(
    candidate: &HashMap<String, f64>,
    base: &HashMap<String, f64>,
) -> Option<(f64, f64, usize)> {
    let diffs: Vec<f64> = candidate
        .iter()
        .filter_map(|(h, c)| base.get(h).map(|b| c - b))
        .collect();
    let n = diffs.len();
    if n < 2 {
        return None;
    }
    let mean = diffs.iter().sum::<f64>() / n as f64;
    let var = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Some((mean, (var / n as f64).sqrt(), n))
}

/// The z value of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// One variant's row before ranking.
struct Row {
    name: String,
    manifest: Option<Variant>,
    run: RunRecord,
    tasks: BTreeMap<String, Option<TaskScore>>,
    average: Option<f64>,
    average_stderr: Option<f64>,
}

/// A variant's row with one task of the suite, for `per_task`.
type Pair<'a> = (&'a Row, &'a String, &'a SuiteTask);

/// What [`build`] wrote.
#[derive(Debug)]
pub struct Written {
    pub variants: usize,
    pub files: Vec<PathBuf>,
}

/// Builds the tables from the runs under `results/runs`, the manifests in
/// `variants` (optional: a run without a manifest still gets a row), and the
/// suite file; writes them into `out`.
pub fn build(
    results: &Path,
    variants_dir: &Path,
    suite_path: &Path,
    out: &Path,
) -> Result<Written, LeaderboardError> {
    let suite = read_suite(suite_path)?;
    let runs = latest_runs(&results.join("runs"))?;
    let (manifests, problems) = if variants_dir.is_dir() {
        variant::read_all(&[variants_dir.to_path_buf()])
    } else {
        (Vec::new(), Vec::new())
    };
    if let Some(p) = problems.first() {
        return Err(error(
            &p.path,
            format!(
                "{}; check the manifests with `assay variants validate`",
                p.message
            ),
        ));
    }
    let by_name: HashMap<&str, &Variant> = manifests.iter().map(|v| (v.name.as_str(), v)).collect();
    let mut rows: Vec<Row> = runs
        .into_iter()
        .map(|(name, run)| {
            let tasks: BTreeMap<String, Option<TaskScore>> = suite
                .iter()
                .map(|(task, spec)| (task.clone(), task_score(&run.run, task, spec)))
                .collect();
            let scores: Option<Vec<TaskScore>> = tasks.values().copied().collect();
            let (average, average_stderr) = match scores {
                Some(s) if !s.is_empty() => {
                    let n = s.len() as f64;
                    let avg = s.iter().map(|t| t.normalized).sum::<f64>() / n;
                    let se: Option<f64> = s
                        .iter()
                        .map(|t| t.normalized_stderr.map(|e| e * e))
                        .sum::<Option<f64>>()
                        .map(|v| v.sqrt() / n);
                    (Some(avg), se)
                }
                _ => (None, None),
            };
            Row {
                manifest: by_name.get(name.as_str()).map(|v| (*v).clone()),
                name,
                run,
                tasks,
                average,
                average_stderr,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.average
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.average.unwrap_or(f64::NEG_INFINITY))
            .then(a.name.cmp(&b.name))
    });
    // Tie groups: the best unassigned variant leads a group; everyone not
    // separable from it at 95% joins.
    let mut tie = vec![0usize; rows.len()];
    let mut group = 0;
    for i in 0..rows.len() {
        if tie[i] != 0 || rows[i].average.is_none() {
            continue;
        }
        group += 1;
        tie[i] = group;
        let (a, sa) = (
            rows[i].average.unwrap_or(0.0),
            rows[i].average_stderr.unwrap_or(0.0),
        );
        for j in i + 1..rows.len() {
            if tie[j] != 0 {
                continue;
            }
            if let (Some(b), sb) = (rows[j].average, rows[j].average_stderr.unwrap_or(0.0)) {
                if (a - b).abs() <= Z95 * (sa * sa + sb * sb).sqrt() {
                    tie[j] = group;
                }
            }
        }
    }
    // Paired deltas to each variant's base.
    let run_of: HashMap<&str, &RunRecord> =
        rows.iter().map(|r| (r.name.as_str(), &r.run)).collect();
    let mut deltas: Vec<(Option<f64>, Option<f64>)> = Vec::with_capacity(rows.len());
    // Each run's samples are read at most once, whatever its descendants.
    let keys = suite_keys(&suite);
    let mut values: HashMap<PathBuf, DocumentValues> = HashMap::new();
    for row in &rows {
        let base = row
            .manifest
            .as_ref()
            .and_then(|m| m.base.as_deref())
            .and_then(|b| run_of.get(b).copied());
        let Some(base) = base else {
            deltas.push((None, None));
            continue;
        };
        let mut sum = 0.0;
        let mut var = 0.0;
        let mut complete = true;
        for dir in [&row.run.dir, &base.dir] {
            if !values.contains_key(dir) {
                values.insert(dir.clone(), document_values(dir, &keys)?);
            }
        }
        let (c, b) = (&values[&row.run.dir], &values[&base.dir]);
        for (key, spec) in keys.iter().zip(suite.values()) {
            match paired_difference(&c[key], &b[key]) {
                Some((mean, se, _)) => {
                    let scale = 1.0 - spec.baseline;
                    sum += mean / scale;
                    var += (se / scale).powi(2);
                }
                None => complete = false,
            }
        }
        let n = suite.len() as f64;
        deltas.push(if complete {
            (Some(sum / n), Some(var.sqrt() / n))
        } else {
            (None, None)
        });
    }

    std::fs::create_dir_all(out).map_err(|e| error(out, e))?;
    let text = |f: &dyn Fn(&Row) -> Option<String>| -> Vec<Option<String>> {
        rows.iter().map(f).collect()
    };
    let manifest = |r: &Row| r.manifest.clone();
    let mut columns = vec![
        Column::new("rank".into(), (1..=rows.len() as u32).collect::<Vec<u32>>()),
        Column::new(
            "tie_group".into(),
            tie.iter()
                .map(|&g| (g > 0).then_some(g as u32))
                .collect::<Vec<Option<u32>>>(),
        ),
        Column::new(
            "variant".into(),
            rows.iter().map(|r| r.name.clone()).collect::<Vec<String>>(),
        ),
        Column::new(
            "display_name".into(),
            text(&|r| manifest(r).and_then(|m| m.display_name)),
        ),
        Column::new(
            "relation".into(),
            text(&|r| manifest(r).map(|m| m.relation.name().to_string())),
        ),
        Column::new("base".into(), text(&|r| manifest(r).and_then(|m| m.base))),
        Column::new(
            "precision".into(),
            text(&|r| manifest(r).and_then(|m| m.precision)),
        ),
        Column::new(
            "contributor".into(),
            text(&|r| manifest(r).and_then(|m| m.contributor)),
        ),
        Column::new(
            "license".into(),
            text(&|r| manifest(r).and_then(|m| m.license)),
        ),
        Column::new(
            "parameters".into(),
            rows.iter()
                .map(|r| manifest(r).and_then(|m| m.parameters))
                .collect::<Vec<Option<u64>>>(),
        ),
        Column::new(
            "bits_per_weight".into(),
            rows.iter()
                .map(|r| manifest(r).and_then(|m| m.bits_per_weight))
                .collect::<Vec<Option<f64>>>(),
        ),
        Column::new(
            "average".into(),
            rows.iter().map(|r| r.average).collect::<Vec<Option<f64>>>(),
        ),
        Column::new(
            "average_stderr".into(),
            rows.iter()
                .map(|r| r.average_stderr)
                .collect::<Vec<Option<f64>>>(),
        ),
        Column::new(
            "delta_to_base".into(),
            deltas.iter().map(|d| d.0).collect::<Vec<Option<f64>>>(),
        ),
        Column::new(
            "delta_ci_low".into(),
            deltas
                .iter()
                .map(|d| d.0.zip(d.1).map(|(m, s)| m - Z95 * s))
                .collect::<Vec<Option<f64>>>(),
        ),
        Column::new(
            "delta_ci_high".into(),
            deltas
                .iter()
                .map(|d| d.0.zip(d.1).map(|(m, s)| m + Z95 * s))
                .collect::<Vec<Option<f64>>>(),
        ),
    ];
    for task in suite.keys() {
        let pick = |f: fn(&TaskScore) -> Option<f64>| -> Vec<Option<f64>> {
            rows.iter()
                .map(|r| r.tasks[task].as_ref().and_then(f))
                .collect()
        };
        columns.push(Column::new(task.as_str().into(), pick(|t| Some(t.score))));
        columns.push(Column::new(
            format!("{task}_stderr").into(),
            pick(|t| t.stderr),
        ));
        columns.push(Column::new(
            format!("{task}_normalized").into(),
            pick(|t| Some(t.normalized)),
        ));
    }
    columns.push(Column::new(
        "run_id".into(),
        rows.iter()
            .map(|r| r.run.run_id.clone())
            .collect::<Vec<String>>(),
    ));
    columns.push(Column::new(
        "run_date".into(),
        rows.iter()
            .map(|r| r.run.created.clone())
            .collect::<Vec<String>>(),
    ));
    columns.push(Column::new(
        "model_fingerprint".into(),
        text(&|r| {
            r.run.run["assay"]["model"]["fingerprint"]
                .as_str()
                .map(str::to_string)
        }),
    ));
    columns.push(Column::new(
        "assay_version".into(),
        text(&|r| r.run.run["assay"]["version"].as_str().map(str::to_string)),
    ));
    let height = rows.len();
    let mut table = DataFrame::new(height, columns).map_err(|e| error(out, e))?;

    // per_task: one row per (variant, task).
    let pairs: Vec<Pair> = rows
        .iter()
        .flat_map(|row| suite.iter().map(move |(task, spec)| (row, task, spec)))
        .collect();
    let strings = |f: &dyn Fn(&Pair) -> String| -> Vec<String> { pairs.iter().map(f).collect() };
    let numbers =
        |f: &dyn Fn(&Pair) -> Option<f64>| -> Vec<Option<f64>> { pairs.iter().map(f).collect() };
    let mut tasks_table = DataFrame::new(
        pairs.len(),
        vec![
            Column::new("variant".into(), strings(&|p| p.0.name.clone())),
            Column::new("task".into(), strings(&|p| p.1.clone())),
            Column::new("metric".into(), strings(&|p| p.2.metric.clone())),
            Column::new("filter".into(), strings(&|p| p.2.filter.clone())),
            Column::new(
                "score".into(),
                numbers(&|p| p.0.tasks[p.1].map(|t| t.score)),
            ),
            Column::new(
                "stderr".into(),
                numbers(&|p| p.0.tasks[p.1].and_then(|t| t.stderr)),
            ),
            Column::new(
                "normalized".into(),
                numbers(&|p| p.0.tasks[p.1].map(|t| t.normalized)),
            ),
            Column::new("baseline".into(), numbers(&|p| Some(p.2.baseline))),
        ],
    )
    .map_err(|e| error(out, e))?;

    let files = vec![
        out.join("leaderboard.parquet"),
        out.join("leaderboard.csv"),
        out.join("per_task.parquet"),
    ];
    let create = |p: &Path| std::fs::File::create(p).map_err(|e| error(p, e));
    ParquetWriter::new(create(&files[0])?)
        .finish(&mut table)
        .map_err(|e| error(&files[0], e))?;
    CsvWriter::new(create(&files[1])?)
        .finish(&mut table)
        .map_err(|e| error(&files[1], e))?;
    ParquetWriter::new(create(&files[2])?)
        .finish(&mut tasks_table)
        .map_err(|e| error(&files[2], e))?;
    Ok(Written {
        variants: height,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_differences_by_document() {
        let c: HashMap<String, f64> = [("a", 1.0), ("b", 1.0), ("c", 0.0), ("d", 1.0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let b: HashMap<String, f64> = [("a", 1.0), ("b", 0.0), ("c", 0.0), ("x", 1.0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        // Shared a, b, c: differences 0, 1, 0 -> mean 1/3, sd sqrt(1/3), se 1/3.
        let (mean, se, n) = paired_difference(&c, &b).unwrap();
        assert_eq!(n, 3);
        assert!((mean - 1.0 / 3.0).abs() < 1e-12);
        assert!((se - 1.0 / 3.0).abs() < 1e-12);
    }
}
