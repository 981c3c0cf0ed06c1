//! Leaderboards: every variant's latest complete run of a suite, as polars
//! tables (`leaderboard.parquet` and `.csv`, one row per variant;
//! `per_task.parquet`, one row per variant and task) and as a static site
//! (`index.html` and a page per variant; see `site`).
//!
//! Scores are normalized by each task's random-chance baseline, as the
//! suite declares it: (score - baseline) / (1 - baseline). The average of the
//! normalized scores ranks the variants; variants whose average is not
//! separable from a group's leader at 95% share its tie group. A variant's
//! delta to its base is paired: both runs answered the same documents, so
//! per-document differences (matched by `doc_hash`) give the difference and
//! its standard error. A run whose task configs no longer hash as the
//! suite's do is stale: it is shown, flagged, and left out of the ranking.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ErrorKind;
use crate::results::{self, MetricKey, Run};
use crate::task::registry::Node;
use crate::task::{Registry, TaskError};
use crate::variant::{self, Variant};

mod site;
mod table;

/// The page of a variant in the site, relative to its root.
pub fn variant_page(name: &str) -> String {
    format!("variants/{}.html", site::file_name(name))
}

/// Why the leaderboard could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct LeaderboardError {
    pub path: PathBuf,
    pub message: String,
    pub kind: ErrorKind,
}

impl LeaderboardError {
    /// Bad inputs, or outputs that could not be written.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

fn error(path: &Path, message: impl std::fmt::Display) -> LeaderboardError {
    LeaderboardError {
        path: path.to_path_buf(),
        message: message.to_string(),
        kind: ErrorKind::Input,
    }
}

fn write_error(path: &Path, message: impl std::fmt::Display) -> LeaderboardError {
    LeaderboardError {
        kind: ErrorKind::NotFinished,
        ..error(path, message)
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
    /// For a group whose tasks have different random baselines (BBH's and
    /// MuSR's option counts differ): each task's baseline. The group's
    /// normalized score is then the mean of its documents' values, each
    /// normalized by its own task's baseline.
    #[serde(default)]
    pub subtasks: BTreeMap<String, f64>,
}

impl SuiteTask {
    /// The random baseline of `leaf`, one of the entry's tasks.
    pub fn baseline_of(&self, leaf: &str) -> f64 {
        self.subtasks.get(leaf).copied().unwrap_or(self.baseline)
    }
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
        let baselines = std::iter::once((task, &spec.baseline)).chain(&spec.subtasks);
        for (name, baseline) in baselines {
            if !(0.0..1.0).contains(baseline) {
                return Err(error(
                    path,
                    format!("task {name}: baseline {baseline} is not in [0, 1)"),
                ));
            }
        }
    }
    Ok(suite.metadata.leaderboard)
}

/// One run folder, as the tables need it.
pub type RunRecord = results::FoundRun;

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
        let found =
            results::latest_complete_run(&variant_dir).map_err(|e| error(&e.path, e.message))?;
        let Some((name, run)) = found.and_then(|r| Some((r.variant()?.to_string(), r))) else {
            continue;
        };
        // Two folders may file runs under one name: the newer counts.
        let newer = latest
            .get(&name)
            .is_none_or(|r| (run.created(), run.run_id()) > (r.created(), r.run_id()));
        if newer {
            latest.insert(name, run);
        }
    }
    Ok(latest)
}

/// A task's score in a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskScore {
    pub score: f64,
    pub stderr: Option<f64>,
    pub normalized: f64,
    pub normalized_stderr: Option<f64>,
}

fn task_score(run: &Run, task: &str, spec: &SuiteTask) -> Option<TaskScore> {
    if !spec.subtasks.is_empty() {
        return pooled_score(run, task, spec);
    }
    let found = run.score(task, &format!("{},{}", spec.metric, spec.filter))?;
    let score = Some(found.value).filter(|v| !v.is_nan())?;
    let stderr = found.stderr;
    let scale = 1.0 - spec.baseline;
    Some(TaskScore {
        score,
        stderr,
        normalized: (score - spec.baseline) / scale,
        normalized_stderr: stderr.map(|s| s / scale),
    })
}

/// A group's score when its tasks have baselines of their own: each task's
/// score normalized by its baseline, weighted by its documents (the mean
/// of the documents' normalized values, as the group's raw score is the
/// mean of their raw values).
fn pooled_score(run: &Run, entry: &str, spec: &SuiteTask) -> Option<TaskScore> {
    let key = format!("{},{}", spec.metric, spec.filter);
    let mut parts = Vec::new();
    for leaf in leaves(run, entry) {
        let found = run.score(&leaf, &key)?;
        let n = run.n_samples.get(&leaf).map_or(0, |c| c.effective) as f64;
        parts.push((found, n, spec.baseline_of(&leaf)));
    }
    let total: f64 = parts.iter().map(|(_, n, _)| n).sum();
    if total == 0.0 || parts.iter().any(|(f, _, _)| f.value.is_nan()) {
        return None;
    }
    let normalized = parts
        .iter()
        .map(|(f, n, b)| n / total * (f.value - b) / (1.0 - b))
        .sum();
    let normalized_stderr = parts
        .iter()
        .map(|(f, n, b)| f.stderr.map(|s| (n / total * s / (1.0 - b)).powi(2)))
        .sum::<Option<f64>>()
        .map(f64::sqrt);
    let own = run.score(entry, &key);
    Some(TaskScore {
        score: own.map_or_else(
            || parts.iter().map(|(f, n, _)| n / total * f.value).sum(),
            |s| s.value,
        ),
        stderr: own.and_then(|s| s.stderr),
        normalized,
        normalized_stderr,
    })
}

/// A paired difference candidate - base over the documents both answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delta {
    pub mean: f64,
    pub stderr: f64,
    pub documents: usize,
}

impl Delta {
    /// The 95% confidence interval.
    pub fn interval(&self) -> (f64, f64) {
        (self.mean - Z95 * self.stderr, self.mean + Z95 * self.stderr)
    }
}

/// Per-document values of one metric, sorted by document key.
type Values = Vec<(u64, f64)>;

/// What reading one run gave: its values per suite metric, if it is paired.
type RunValues = Result<Option<Vec<Values>>, LeaderboardError>;

/// The paired difference over the documents both value lists have.
fn paired_difference(candidate: &Values, base: &Values) -> Option<Delta> {
    let mut diffs = Vec::with_capacity(candidate.len().min(base.len()));
    let (mut i, mut j) = (0, 0);
    while i < candidate.len() && j < base.len() {
        match candidate[i].0.cmp(&base[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                diffs.push(candidate[i].1 - base[j].1);
                i += 1;
                j += 1;
            }
        }
    }
    let n = diffs.len();
    if n < 2 {
        return None;
    }
    let mean = diffs.iter().sum::<f64>() / n as f64;
    let var = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Some(Delta {
        mean,
        stderr: (var / n as f64).sqrt(),
        documents: n,
    })
}

/// The z value of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// One variant's row.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub manifest: Option<Variant>,
    pub run: RunRecord,
    pub tasks: BTreeMap<String, Option<TaskScore>>,
    /// The mean of the normalized task scores, and its standard error.
    pub average: Option<f64>,
    pub average_stderr: Option<f64>,
    /// 1 for the best ranked variant; none for stale or incomplete runs.
    pub rank: Option<u32>,
    /// Variants not separable at 95% from the leader of their group share
    /// its group number.
    pub tie_group: Option<u32>,
    /// Suite tasks whose config changed since the run.
    pub stale_tasks: Vec<String>,
    /// The paired delta of the average to the base's run (normalized).
    pub delta: Option<Delta>,
    /// Per task, the paired delta of the raw score to the base's.
    pub task_deltas: BTreeMap<String, Delta>,
    /// Why there is no delta, when there is a base.
    pub delta_note: Option<String>,
}

impl Row {
    pub fn base(&self) -> Option<&str> {
        self.manifest.as_ref().and_then(|m| m.base.as_deref())
    }

    pub fn is_stale(&self) -> bool {
        !self.stale_tasks.is_empty()
    }
}

/// Everything a leaderboard shows: the suite and one row per variant, best
/// first (stale and incomplete runs last).
#[derive(Debug)]
pub struct Board {
    pub suite: BTreeMap<String, SuiteTask>,
    pub rows: Vec<Row>,
    /// The tasks whose documents each suite entry counts, as
    /// (entry index, key): the entry itself, or a group's leaf tasks.
    pub documents: Vec<(usize, MetricKey)>,
}

/// The leaf tasks of `entry` in a run: a group's tasks through its
/// subgroups (`group_subtasks`), or the entry itself.
pub fn leaves(run: &Run, entry: &str) -> Vec<String> {
    fn walk(run: &Run, name: &str, depth: usize, out: &mut Vec<String>) {
        match run.group_subtasks.get(name) {
            // A task run on its own is listed with no subtasks.
            Some(children) if !children.is_empty() && depth < 16 => {
                for c in children {
                    walk(run, c, depth + 1, out);
                }
            }
            _ => out.push(name.to_string()),
        }
    }
    let mut out = Vec::new();
    walk(run, entry, 0, &mut out);
    out
}

/// One hash over the config hashes of a group's leaf tasks (by name).
pub fn combine_hashes<'a>(hashes: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = hashes.into_iter().collect();
    pairs.sort_unstable();
    let mut text = String::new();
    for (task, hash) in pairs {
        text.push_str(task);
        text.push('\t');
        text.push_str(hash);
        text.push('\n');
    }
    crate::hash::sha256_hex(text.as_bytes())
}

/// The config hash a run recorded for a suite entry: the task's, or for a
/// group the combination of its leaf tasks' ([`combine_hashes`]).
pub fn entry_hash(run: &RunRecord, entry: &str) -> Option<String> {
    let leaves = leaves(&run.run, entry);
    if leaves.len() == 1 && leaves[0] == entry {
        return run.config_hash(entry).map(str::to_string);
    }
    let hashes: Option<Vec<(&str, &str)>> = leaves
        .iter()
        .map(|t| run.config_hash(t).map(|h| (t.as_str(), h)))
        .collect();
    hashes.map(combine_hashes)
}

/// What [`build`] wrote.
#[derive(Debug)]
pub struct Written {
    pub variants: usize,
    pub stale: usize,
    pub files: Vec<PathBuf>,
}

/// Where the leaderboard's inputs are.
pub struct Inputs<'a> {
    /// The results folder; runs are read from `<results>/runs/`.
    pub results: &'a Path,
    /// The manifests (optional: a run without one still gets a row).
    pub variants: &'a Path,
    pub suite: &'a Path,
    /// Each suite task's config hash as it is now; none skips the check.
    pub config_hashes: Option<&'a BTreeMap<String, String>>,
}

/// Builds the tables and the site from every variant's latest run and
/// writes them into `out`.
pub fn build(inputs: &Inputs, out: &Path) -> Result<Written, LeaderboardError> {
    let suite = read_suite(inputs.suite)?;
    let runs = latest_runs(&inputs.results.join("runs"))?;
    let (manifests, problems) = if inputs.variants.is_dir() {
        variant::read_all(&[inputs.variants.to_path_buf()])
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
    let mut manifests = manifests;
    manifests.iter_mut().for_each(variant::fill_from_file);
    let mut board = score_rows(suite, runs, manifests, inputs.config_hashes);
    std::fs::create_dir_all(out).map_err(|e| write_error(out, e))?;
    let documents = site::Documents::new(out)?;
    let values = read_runs(&board, &documents)?;
    pair_with_bases(&mut board, &values);
    let mut files = table::write(&board, out)?;
    files.extend(site::write(&board, out, &documents)?);
    Ok(Written {
        variants: board.rows.len(),
        stale: board.rows.iter().filter(|r| r.is_stale()).count(),
        files,
    })
}

/// Rows with scores, averages, ranks and tie groups; deltas come later.
fn score_rows(
    suite: BTreeMap<String, SuiteTask>,
    runs: BTreeMap<String, RunRecord>,
    manifests: Vec<Variant>,
    config_hashes: Option<&BTreeMap<String, String>>,
) -> Board {
    let mut by_name: HashMap<String, Variant> =
        manifests.into_iter().map(|v| (v.name.clone(), v)).collect();
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
            let stale_tasks = match config_hashes {
                Some(current) => suite
                    .keys()
                    .filter(|task| {
                        let recorded = entry_hash(&run, task);
                        recorded.is_some() && recorded.as_ref() != current.get(task.as_str())
                    })
                    .cloned()
                    .collect(),
                None => Vec::new(),
            };
            Row {
                manifest: by_name.remove(&name),
                name,
                run,
                tasks,
                average,
                average_stderr,
                rank: None,
                tie_group: None,
                stale_tasks,
                delta: None,
                task_deltas: BTreeMap::new(),
                delta_note: None,
            }
        })
        .collect();
    // Ranked rows first, best first; stale and incomplete runs after.
    let ranked = |r: &Row| r.average.filter(|_| !r.is_stale());
    rows.sort_by(|a, b| {
        ranked(b)
            .is_some()
            .cmp(&ranked(a).is_some())
            .then(
                b.average
                    .unwrap_or(f64::NEG_INFINITY)
                    .total_cmp(&a.average.unwrap_or(f64::NEG_INFINITY)),
            )
            .then(a.name.cmp(&b.name))
    });
    // Tie groups: the best unassigned variant leads a group; everyone not
    // separable from it at 95% joins.
    let mut group = 0;
    for i in 0..rows.len() {
        let Some(a) = ranked(&rows[i]) else { break };
        rows[i].rank = Some(i as u32 + 1);
        if rows[i].tie_group.is_some() {
            continue;
        }
        group += 1;
        rows[i].tie_group = Some(group);
        let sa = rows[i].average_stderr.unwrap_or(0.0);
        for other in &mut rows[i + 1..] {
            let Some(b) = ranked(other) else { break };
            let sb = other.average_stderr.unwrap_or(0.0);
            if other.tie_group.is_none() && (a - b).abs() <= Z95 * (sa * sa + sb * sb).sqrt() {
                other.tie_group = Some(group);
            }
        }
    }
    let documents = document_keys(&suite, &rows);
    Board {
        suite,
        rows,
        documents,
    }
}

/// Every suite entry's document keys: its own, or its leaf tasks' in the
/// order the runs list them (all runs' leaves, each once).
fn document_keys(suite: &BTreeMap<String, SuiteTask>, rows: &[Row]) -> Vec<(usize, MetricKey)> {
    let mut out = Vec::new();
    for (i, (entry, spec)) in suite.iter().enumerate() {
        let mut tasks: Vec<String> = Vec::new();
        for row in rows {
            for leaf in leaves(&row.run.run, entry) {
                if !tasks.contains(&leaf) {
                    tasks.push(leaf);
                }
            }
        }
        if tasks.is_empty() {
            tasks.push(entry.clone());
        }
        for task in tasks {
            out.push((
                i,
                MetricKey {
                    task,
                    filter: spec.filter.clone(),
                    metric: spec.metric.clone(),
                },
            ));
        }
    }
    out
}

/// Reads what every run's samples are needed for, two runs at a time: the
/// per-document values of the runs a delta pairs (returned, by row), and the
/// drill-down files of runs the site has not written before.
fn read_runs(
    board: &Board,
    documents: &site::Documents,
) -> Result<Vec<Option<Vec<Values>>>, LeaderboardError> {
    let present: HashMap<&str, usize> = board
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.as_str(), i))
        .collect();
    let mut paired = vec![false; board.rows.len()];
    for (i, row) in board.rows.iter().enumerate() {
        if let Some(&b) = row.base().and_then(|b| present.get(b)) {
            paired[i] = true;
            paired[b] = true;
        }
    }
    let keys: Vec<MetricKey> = board.documents.iter().map(|(_, k)| k.clone()).collect();
    // A group's documents from different tasks may share ids and contents:
    // each task's keys are salted with its name.
    let salts: Vec<u64> = board
        .documents
        .iter()
        .map(|(e, k)| {
            let entry = board.suite.keys().nth(*e).map(String::as_str);
            if entry == Some(k.task.as_str()) {
                0
            } else {
                let h = crate::hash::sha256_hex(k.task.as_bytes());
                u64::from_str_radix(&h[..16], 16).unwrap_or(0)
            }
        })
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let read_one = |i: usize| -> RunValues {
        let row = &board.rows[i];
        let details = !documents.has_run(row);
        if !paired[i] && !details {
            return Ok(None);
        }
        let path = row.run.dir.join("samples.parquet");
        let mut values: Vec<Values> = vec![Vec::new(); board.suite.len()];
        // Runs that recorded which prompts each task asked need no prompt
        // hashes read.
        let recorded: Option<Vec<String>> = keys
            .iter()
            .map(|k| {
                row.run
                    .run
                    .assay
                    .tasks
                    .get(&k.task)
                    .and_then(|t| t.prompts_hash.as_deref())
                    .filter(|h| h.len() >= 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .map(str::to_string)
            })
            .collect();
        let mode = match (details, &recorded) {
            (false, _) => results::Details::None,
            (true, Some(_)) => results::Details::Responses,
            (true, None) => results::Details::Full,
        };
        let mut shown = details.then(|| site::RunDocuments::new(keys.len(), recorded));
        results::visit_documents(&path, &keys, mode, |k, doc| {
            if paired[i] {
                // In an entry whose tasks have baselines of their own, each
                // document's value is scaled by its task's (see
                // `pooled_score`); the entry's delta is then normalized.
                let spec = board.suite.values().nth(board.documents[k].0);
                let scale = spec
                    .filter(|s| !s.subtasks.is_empty())
                    .map_or(1.0, |s| 1.0 - s.baseline_of(&board.documents[k].1.task));
                if let Some(v) = doc.value.map(|v| v / scale) {
                    values[board.documents[k].0].push((doc.doc_key ^ salts[k], v));
                }
            }
            if let Some(shown) = shown.as_mut() {
                shown.add(k, doc);
            }
        })
        .map_err(|e| error(&path, e))?;
        if let Some(shown) = shown {
            documents.write_run(row, &keys, shown)?;
        }
        Ok(paired[i].then(|| {
            for v in &mut values {
                v.sort_unstable_by_key(|(k, _)| *k);
            }
            values
        }))
    };
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let results: Vec<Vec<(usize, RunValues)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= board.rows.len() {
                            break done;
                        }
                        done.push((i, read_one(i)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut values: Vec<Option<Vec<Values>>> = vec![None; board.rows.len()];
    for (i, result) in results.into_iter().flatten() {
        values[i] = result?;
    }
    Ok(values)
}

/// Paired deltas of every row to its base's run, per task and for the
/// normalized average; only over tasks whose configs are the same in both.
fn pair_with_bases(board: &mut Board, values: &[Option<Vec<Values>>]) {
    let index: HashMap<String, usize> = board
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.clone(), i))
        .collect();
    for i in 0..board.rows.len() {
        let Some(base_name) = board.rows[i].base().map(str::to_string) else {
            continue;
        };
        let Some(&b) = index.get(&base_name) else {
            board.rows[i].delta_note = Some(format!("{base_name} has no run"));
            continue;
        };
        let (Some(cand), Some(base)) = (&values[i], &values[b]) else {
            continue;
        };
        let mut task_deltas = BTreeMap::new();
        let mut differing = Vec::new();
        let (mut sum, mut var) = (0.0, 0.0);
        for (k, (task, spec)) in board.suite.iter().enumerate() {
            let (row, base_row) = (&board.rows[i], &board.rows[b]);
            if entry_hash(&row.run, task) != entry_hash(&base_row.run, task) {
                differing.push(task.clone());
                continue;
            }
            if let Some(d) = paired_difference(&cand[k], &base[k]) {
                // Already normalized per document where tasks have their
                // own baselines.
                let scale = match spec.subtasks.is_empty() {
                    true => 1.0 - spec.baseline,
                    false => 1.0,
                };
                sum += d.mean / scale;
                var += (d.stderr / scale).powi(2);
                task_deltas.insert(task.clone(), d);
            }
        }
        let n = board.suite.len();
        let row = &mut board.rows[i];
        if !differing.is_empty() {
            row.delta_note = Some(format!(
                "task configs differ from the base's run: {}",
                differing.join(", ")
            ));
        } else if task_deltas.len() < n {
            row.delta_note = Some("fewer than two shared documents in a task".into());
        } else {
            row.delta = Some(Delta {
                mean: sum / n as f64,
                stderr: var.sqrt() / n as f64,
                documents: task_deltas.values().map(|d| d.documents).sum(),
            });
        }
        row.task_deltas = task_deltas;
    }
}

/// Each suite entry's config hash as the task configs are now (runs that
/// recorded another are stale). The suite's group is found among the
/// built-in tasks and `include_paths`, else beside the suite file.
pub fn current_config_hashes(
    suite: &Path,
    include_paths: &[PathBuf],
) -> Result<BTreeMap<String, String>, LeaderboardError> {
    let entries = read_suite(suite)?;
    let task_error = |e: TaskError| error(suite, e);
    // The suite's tasks as the suite runs them (its per-entry overrides,
    // such as shot counts, are part of each task's config).
    let group = std::fs::read_to_string(suite)
        .ok()
        .and_then(|text| crate::task::yaml::parse(&text, suite).ok())
        .and_then(|v| v.get("group").and_then(|g| g.as_str()).map(str::to_string));
    // Tasks whose hooks run in Python count too: their configs hash alike,
    // and resolving a hook runs nothing.
    let registry_of = |paths: &[PathBuf]| {
        Registry::with_builtin(paths).map(|r| {
            r.with_python_hooks(
                crate::ports::python::HookMode::Missing,
                crate::ports::python::PythonHooks::new(),
            )
        })
    };
    let mut registry = registry_of(include_paths).map_err(task_error)?;
    if let (Some(name), Some(folder)) = (&group, suite.parent()) {
        if registry.get(name).is_none() {
            let mut paths = include_paths.to_vec();
            paths.push(folder.to_path_buf());
            registry = registry_of(&paths).map_err(task_error)?;
        }
    }
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    if let Some(name) = &group {
        if let Ok(tree) = registry.select(std::slice::from_ref(name)) {
            fn walk(node: &Node, found: &mut BTreeMap<String, String>) {
                match node {
                    Node::Task(t) => {
                        found.insert(t.task.clone(), t.config_hash());
                    }
                    Node::Group { config, children } => {
                        let hashes: Vec<(String, String)> = node
                            .tasks()
                            .iter()
                            .map(|t| (t.task.clone(), t.config_hash()))
                            .collect();
                        found.insert(
                            config.group.clone(),
                            combine_hashes(hashes.iter().map(|(a, b)| (a.as_str(), b.as_str()))),
                        );
                        children.iter().for_each(|c| walk(c, found));
                    }
                    Node::Skipped { .. } => {}
                }
            }
            tree.iter().for_each(|n| walk(n, &mut found));
        }
    }
    let mut hashes = BTreeMap::new();
    for entry in entries.keys() {
        if let Some(h) = found.get(entry) {
            hashes.insert(entry.clone(), h.clone());
            continue;
        }
        // An entry outside the suite's group: its own config.
        let selection = registry.select(std::slice::from_ref(entry)).map_err(|e| {
            error(
                suite,
                format!("suite task {entry}: {e}; give --include-path for its config"),
            )
        })?;
        if let Some(config) = selection
            .iter()
            .flat_map(|n| n.tasks())
            .find(|c| &c.task == entry)
        {
            hashes.insert(entry.clone(), config.config_hash());
        }
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_differences_by_document() {
        let c: Values = vec![(1, 1.0), (2, 1.0), (3, 0.0), (4, 1.0)];
        let b: Values = vec![(1, 1.0), (2, 0.0), (3, 0.0), (9, 1.0)];
        // Shared 1, 2, 3: differences 0, 1, 0 -> mean 1/3, sd sqrt(1/3), se 1/3.
        let d = paired_difference(&c, &b).unwrap();
        assert_eq!(d.documents, 3);
        assert!((d.mean - 1.0 / 3.0).abs() < 1e-12);
        assert!((d.stderr - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_group_with_baselines_per_task_normalizes_each_task_by_its_own() {
        let mut run = Run::default();
        run.group_subtasks
            .insert("g".into(), vec!["a".into(), "b".into()]);
        for (task, value, n) in [("a", 0.5, 10), ("b", 0.8, 30), ("g", 0.725, 40)] {
            let mut block = results::MetricBlock::default();
            block.scores.insert(
                "acc,none".into(),
                crate::stats::Score {
                    value,
                    stderr: Some(0.1),
                },
            );
            run.results.insert(task.into(), block);
            run.n_samples.insert(
                task.into(),
                results::SampleCounts {
                    original: n,
                    effective: n,
                },
            );
        }
        let spec = SuiteTask {
            metric: "acc".into(),
            filter: "none".into(),
            baseline: 0.0,
            subtasks: [("a".to_string(), 0.5), ("b".to_string(), 0.2)]
                .into_iter()
                .collect(),
        };
        let s = task_score(&run, "g", &spec).unwrap();
        // a: (0.5 - 0.5) / 0.5 = 0 on 10 documents; b: 0.6 / 0.8 = 0.75 on 30.
        assert!((s.normalized - 0.5625).abs() < 1e-12, "{s:?}");
        // The raw score is the group's own.
        assert_eq!(s.score, 0.725);
        let se = ((0.25_f64 * 0.1 / 0.5).powi(2) + (0.75_f64 * 0.1 / 0.8).powi(2)).sqrt();
        assert!((s.normalized_stderr.unwrap() - se).abs() < 1e-12);
        // Without the task's baselines, the group's score counts from 0.
        let plain = SuiteTask {
            subtasks: BTreeMap::new(),
            ..spec
        };
        assert!((task_score(&run, "g", &plain).unwrap().normalized - 0.725).abs() < 1e-12);
    }

    #[test]
    fn a_task_baseline_out_of_range_names_the_task() {
        let dir = tempfile::tempdir().unwrap();
        let suite = dir.path().join("s.yaml");
        std::fs::write(
            &suite,
            "group: s\ntask: [g]\nmetadata:\n  leaderboard:\n    g:\n      metric: acc\n      \
             subtasks: {a: 0.5, b: 1.0}\n",
        )
        .unwrap();
        let err = read_suite(&suite).unwrap_err().to_string();
        assert!(
            err.contains("s.yaml") && err.contains("task b: baseline 1 is not in [0, 1)"),
            "{err}"
        );
    }
}
