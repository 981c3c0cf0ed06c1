//! The merge gate: does a candidate run regress against a baseline run?
//!
//! Both runs answered the same documents, so the gate pairs them per task by
//! `doc_hash` and tests the mean per-document difference, which is far
//! tighter than comparing two scores. Each task gets a non-inferiority test
//! against the policy's margin: PASS when a regression as large as the
//! margin is ruled out, FAIL when a regression beyond it is established,
//! INCONCLUSIVE otherwise; Holm's correction keeps the chance of a wrong
//! verdict on any task of one gate at alpha. Runs that did not see the same
//! prompts or task configs are refused, not compared.

pub mod average;
pub mod command;
mod per_task;
pub mod policy;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::ErrorKind;
use crate::results::{self, MetricKey};
use crate::stats::paired::{self, PairedDifference};
pub use policy::{Mode, Policy, TaskPolicy, Underpowered};

/// Why two runs cannot be gated, or a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The runs, the policy or a flag is wrong.
    #[error("{0}")]
    Input(String),
    /// A report could not be written.
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl GateError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            GateError::Input(_) => ErrorKind::Input,
            GateError::Write { .. } => ErrorKind::NotFinished,
        }
    }
}

/// A gate's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "INCONCLUSIVE",
        }
    }
}

/// A run as the gate reads it.
pub type GateRun = results::FoundRun;

/// A run folder, or a variant's latest complete run under `runs`.
pub fn find_run(spec: &str, runs: &Path) -> Result<GateRun, GateError> {
    let given = PathBuf::from(spec);
    let run = if given.join("run.json").is_file() {
        results::read_run(&given).map_err(|e| GateError::Input(e.to_string()))?
    } else {
        let folder = runs.join(spec);
        if !folder.is_dir() {
            return Err(GateError::Input(format!(
                "{spec}: neither a run folder (with run.json) nor a variant with runs under {}",
                runs.display()
            )));
        }
        results::latest_complete_run(&folder)
            .map_err(|e| GateError::Input(e.to_string()))?
            .ok_or_else(|| {
                GateError::Input(format!("{spec}: no complete run in {}", folder.display()))
            })?
    };
    if !run.is_complete() {
        return Err(GateError::Input(format!(
            "{}: the run is not complete or is one shard; finish it (the same command resumes) or `assay merge` its shards first",
            run.dir.join("run.json").display()
        )));
    }
    Ok(run)
}

/// The tasks the run scored (not its groups).
fn tasks(run: &GateRun) -> Vec<String> {
    run.run.assay.tasks.keys().cloned().collect()
}

/// The document field a task's config names as its cluster
/// (`metadata.cluster`): documents sharing it are not independent.
fn cluster_field(run: &GateRun, task: &str) -> Option<String> {
    run.run
        .configs
        .get(task)?
        .get("metadata")?
        .get("cluster")?
        .as_str()
        .map(str::to_string)
}

/// The metric and filter the gate compares on for `task`: the policy's,
/// else the first of acc, exact_match, or whatever the task reports.
fn metric(run: &GateRun, task: &str, policy: &TaskPolicy) -> Option<(String, String)> {
    let block = run.run.results.get(task)?;
    let keys: Vec<(&str, &str)> = block
        .scores
        .keys()
        .filter_map(|k| k.split_once(','))
        .collect();
    let pick = |metric: &str| {
        keys.iter()
            .find(|(m, f)| *m == metric && policy.filter.as_deref().is_none_or(|p| p == *f))
            .map(|(m, f)| (m.to_string(), f.to_string()))
    };
    match &policy.metric {
        Some(m) => pick(m),
        None => pick("acc")
            .or_else(|| pick("exact_match"))
            .or_else(|| keys.first().map(|(m, f)| (m.to_string(), f.to_string()))),
    }
}

/// One task's comparison.
#[derive(Debug, Clone, Serialize)]
pub struct TaskOutcome {
    pub task: String,
    pub metric: String,
    pub filter: String,
    pub required: bool,
    pub margin: f64,
    pub difference: PairedDifferenceView,
    /// One-sided (1 - alpha) bounds of the difference, Holm-adjusted alpha.
    pub lower: f64,
    pub upper: f64,
    /// McNemar's exact p-value (0/1 metrics).
    pub mcnemar_p: Option<f64>,
    /// Paired bootstrap 95% interval (other metrics).
    pub bootstrap: Option<(f64, f64)>,
    pub p_non_inferior: f64,
    pub p_regression: f64,
    pub minimum_detectable_effect: f64,
    pub underpowered: bool,
    pub verdict: Verdict,
    /// Mode average: the task's weight in the average, and its share of
    /// the average's variance (where more documents would help most).
    pub weight: Option<f64>,
    pub variance_share: Option<f64>,
    /// Documents right in the baseline and wrong in the candidate (0/1).
    pub flipped_to_wrong: Vec<u32>,
    pub flipped_to_right: Vec<u32>,
}

/// [`PairedDifference`] as reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct PairedDifferenceView {
    pub documents: usize,
    pub baseline: f64,
    pub candidate: f64,
    pub mean: f64,
    pub stderr: f64,
    pub discordant: Option<(u64, u64)>,
}

impl From<PairedDifference> for PairedDifferenceView {
    fn from(d: PairedDifference) -> Self {
        PairedDifferenceView {
            documents: d.documents,
            baseline: d.baseline_mean,
            candidate: d.candidate_mean,
            mean: d.mean,
            stderr: d.stderr,
            discordant: d.discordant,
        }
    }
}

/// The whole gate.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    pub verdict: Verdict,
    pub mode: Mode,
    pub baseline: RunLabel,
    pub candidate: RunLabel,
    pub alpha: f64,
    pub tasks: Vec<TaskOutcome>,
    /// The average's decision (mode average), or the mean of the task
    /// differences when a per-task policy asks for it.
    pub average: Option<AverageOutcome>,
    /// What decided the verdict, in a sentence.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunLabel {
    pub variant: String,
    pub run_id: String,
    pub dir: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AverageOutcome {
    /// The average's paired difference, and its standard error.
    pub mean: f64,
    pub stderr: f64,
    /// In points.
    pub margin: f64,
    /// One-sided (1 - alpha) bounds.
    pub lower: f64,
    pub upper: f64,
    pub verdict: Verdict,
    /// Differences normalised by the suite's random-chance baselines (as
    /// the leaderboard ranks), else raw points of each metric.
    pub normalised: bool,
    /// The tasks it counts and their paired documents.
    pub tasks: usize,
    pub documents: usize,
    pub p_non_inferior: f64,
    pub p_regression: f64,
    pub minimum_detectable_effect: f64,
    pub underpowered: bool,
    /// At the same difference, how many times each task's documents the
    /// average would need for a PASS; none when more would not help.
    pub documents_factor: Option<f64>,
}

/// One task's shared documents: baseline values, candidate values, and each
/// document's id and key.
struct Paired {
    baseline: Vec<f64>,
    candidate: Vec<f64>,
    ids: Vec<u32>,
    keys: Vec<u64>,
}

fn pair_task(
    task: &str,
    base: &[results::DocumentResult],
    cand: &[results::DocumentResult],
    min_overlap: f64,
) -> Result<Paired, GateError> {
    let by_key: HashMap<u64, &results::DocumentResult> =
        base.iter().map(|r| (r.doc_key, r)).collect();
    let mut paired = Paired {
        baseline: Vec::new(),
        candidate: Vec::new(),
        ids: Vec::new(),
        keys: Vec::new(),
    };
    let mut prompt_mismatch = Vec::new();
    for c in cand {
        let Some(b) = by_key.get(&c.doc_key) else {
            continue;
        };
        if b.prompt_hash != c.prompt_hash {
            prompt_mismatch.push(c.doc_id);
            continue;
        }
        if let (Some(bv), Some(cv)) = (b.value, c.value) {
            paired.baseline.push(bv);
            paired.candidate.push(cv);
            paired.ids.push(c.doc_id);
            paired.keys.push(c.doc_key);
        }
    }
    if !prompt_mismatch.is_empty() {
        return Err(GateError::Input(format!(
            "task {task}: {} document(s) were asked different prompts in the two runs \
             (first: doc {}); score both with the same task options and chat template",
            prompt_mismatch.len(),
            prompt_mismatch[0]
        )));
    }
    let needed = (base.len().min(cand.len()) as f64 * min_overlap).ceil() as usize;
    if paired.baseline.len() < needed.max(2) {
        return Err(GateError::Input(format!(
            "task {task}: only {} document(s) are in both runs ({} and {}); \
             at least {} are needed; score both on the same documents",
            paired.baseline.len(),
            base.len(),
            cand.len(),
            needed.max(2)
        )));
    }
    Ok(paired)
}

/// Gates `candidate` against `baseline` under `policy`; `suite` places
/// each task in a suite, so that the average weighs and normalises tasks
/// as the leaderboard does.
pub fn gate(
    baseline: &GateRun,
    candidate: &GateRun,
    policy: &Policy,
    suite: Option<&BTreeMap<String, SuitePlace>>,
) -> Result<GateReport, GateError> {
    let pairs = paired_tasks(baseline, Some(candidate), policy, suite)?;
    let judged = judge(pairs, policy)?;
    let label = |r: &GateRun| RunLabel {
        variant: r.variant().unwrap_or_default().to_string(),
        run_id: r.run_id().to_string(),
        dir: r.dir.display().to_string(),
    };
    Ok(GateReport {
        verdict: judged.verdict,
        mode: policy.default.mode,
        baseline: label(baseline),
        candidate: label(candidate),
        alpha: policy.default.alpha,
        tasks: judged.tasks,
        average: judged.average,
        reason: judged.reason,
    })
}

/// The gate's tasks, each with its paired documents. Without a candidate
/// (a plan), each task holds the baseline's values on both sides.
fn paired_tasks(
    baseline: &GateRun,
    candidate: Option<&GateRun>,
    policy: &Policy,
    suite: Option<&BTreeMap<String, SuitePlace>>,
) -> Result<Vec<TaskPairs>, GateError> {
    let candidate_tasks = candidate.map(tasks);
    let tasks: Vec<String> = tasks(baseline)
        .into_iter()
        .filter(|t| candidate_tasks.as_ref().is_none_or(|c| c.contains(t)))
        .filter(|t| policy.task(t).include)
        .collect();
    for required in policy.required_tasks() {
        if !tasks.contains(&required) {
            return Err(GateError::Input(format!(
                "the policy requires task {required}, but the two runs do not both have it"
            )));
        }
    }
    if tasks.is_empty() {
        return Err(GateError::Input(
            "the two runs have no task in common; gate runs of the same suite".into(),
        ));
    }
    let mut pairs = Vec::new();
    for task in &tasks {
        let rules = policy.task(task);
        if let Some(candidate) = candidate {
            if baseline.config_hash(task) != candidate.config_hash(task) {
                return Err(GateError::Input(format!(
                    "task {task}: the task config differs between the runs (config hash {} vs {}); \
                     score both with the same config",
                    baseline.config_hash(task).unwrap_or("none"),
                    candidate.config_hash(task).unwrap_or("none")
                )));
            }
        }
        let (metric, filter) = metric(baseline, task, &rules).ok_or_else(|| {
            GateError::Input(format!(
                "task {task}: the baseline run reports no {} metric",
                rules.metric.as_deref().unwrap_or("usable")
            ))
        })?;
        let key = MetricKey {
            task: task.clone(),
            filter: filter.clone(),
            metric: metric.clone(),
        };
        let read = |run: &GateRun| {
            let path = run.dir.join("samples.parquet");
            results::read_documents(&path, std::slice::from_ref(&key), true)
                .map_err(|e| GateError::Input(format!("{}: {e}", path.display())))
                .map(|mut m| m.remove(&key).unwrap_or_default())
        };
        let b = read(baseline)?;
        let paired = match candidate {
            Some(candidate) => pair_task(task, &b, &read(candidate)?, policy.default.min_overlap)?,
            None => pair_task(task, &b, &b, policy.default.min_overlap)?,
        };
        let clusters = match cluster_field(baseline, task) {
            Some(field) => {
                let path = baseline.dir.join("samples.parquet");
                let labels = results::read_doc_field(&path, task, &field)
                    .map_err(|e| GateError::Input(format!("{}: {e}", path.display())))?;
                let aligned: Option<Vec<String>> =
                    paired.keys.iter().map(|k| labels.get(k).cloned()).collect();
                Some(aligned.ok_or_else(|| {
                    GateError::Input(format!(
                        "task {task}: a document has no cluster field {field:?} (metadata.cluster)"
                    ))
                })?)
            }
            None => None,
        };
        let (entry, scale) = place(suite, task);
        pairs.push(TaskPairs {
            task: task.clone(),
            metric,
            filter,
            rules,
            baseline: paired.baseline,
            candidate: paired.candidate,
            ids: paired.ids,
            clusters,
            same_model: candidate.is_some_and(|c| same_model(baseline, c)),
            entry,
            scale,
        });
    }
    Ok(pairs)
}

/// A task's suite entry and normalising factor (itself and 1 outside a
/// suite).
fn place(suite: Option<&BTreeMap<String, SuitePlace>>, task: &str) -> (String, f64) {
    match suite.and_then(|s| s.get(task)) {
        Some(p) => (p.entry.clone(), 1.0 / (1.0 - p.baseline)),
        None => (task.to_string(), 1.0),
    }
}

/// Whether two runs name the same model fingerprint (weights hash or
/// served model identity).
fn same_model(a: &GateRun, b: &GateRun) -> bool {
    !a.run.fingerprint().is_empty() && a.run.fingerprint() == b.run.fingerprint()
}

/// One task's paired documents, ready to judge.
#[derive(Debug, Clone)]
pub struct TaskPairs {
    pub task: String,
    pub metric: String,
    pub filter: String,
    pub rules: TaskPolicy,
    pub baseline: Vec<f64>,
    pub candidate: Vec<f64>,
    pub ids: Vec<u32>,
    /// One cluster label per document, when the task declares clusters.
    pub clusters: Option<Vec<String>>,
    /// Both runs came from the same model (same fingerprint): identical
    /// answers then mean no difference at all, not a small sample of one.
    pub same_model: bool,
    /// The suite entry the task counts under (itself, or its group), and
    /// the factor that normalises its differences (`1 / (1 - baseline)`);
    /// without a suite, the task and 1.
    pub entry: String,
    pub scale: f64,
}

impl TaskPairs {
    /// The same model gave the same values on every document.
    pub fn identical(&self) -> bool {
        self.same_model && self.baseline == self.candidate
    }
}

/// Where a task sits in a suite: its entry and the entry's random-chance
/// baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct SuitePlace {
    pub entry: String,
    pub baseline: f64,
}

/// What [`judge`] decided.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub verdict: Verdict,
    pub tasks: Vec<TaskOutcome>,
    pub average: Option<AverageOutcome>,
    pub reason: String,
}

/// The gate's statistics and decision over paired documents: everything
/// after reading the runs (the simulation in bench/ calls this directly).
pub fn judge(pairs: Vec<TaskPairs>, policy: &Policy) -> Result<Judgement, GateError> {
    match policy.default.mode {
        Mode::Average => average::judge(pairs, policy),
        Mode::PerTask => per_task::judge(pairs, policy),
    }
}

/// `assay gate --plan`: what the gate can resolve on this suite's
/// documents, and how many it would need.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub mode: Mode,
    pub alpha: f64,
    pub power: f64,
    /// The margin asked about (points).
    pub margin: f64,
    /// Without a candidate: the share of documents the candidate is assumed
    /// to answer anew, independently of the baseline.
    pub assumed_changed: Option<f64>,
    pub normalised: bool,
    /// The smallest margin the average resolves with the policy's power,
    /// and the factor on every task's documents to resolve `margin`.
    pub average_detectable: f64,
    pub average_factor: f64,
    pub tasks: Vec<PlannedTask>,
}

/// One task of a [`Plan`].
#[derive(Debug, Clone, Serialize)]
pub struct PlannedTask {
    pub task: String,
    pub documents: usize,
    pub required: bool,
    /// The task's margin (mode per-task) or guard (mode average), points.
    pub margin: f64,
    /// The smallest regression the task resolves alone with the policy's
    /// power (the guard's test is Holm's strictest step, alpha / tasks).
    pub detectable: f64,
    /// Documents for the task alone to resolve its margin or guard.
    pub needed_alone: u64,
    /// Documents for the average to resolve the margin, every task grown
    /// alike (mode average).
    pub needed_for_average: u64,
    pub weight: f64,
}

/// Plans the gate on `baseline`'s documents: with a `candidate`, from
/// their paired differences; else assuming the candidate answers a share
/// `changed` of the documents anew (its difference then has `2 * changed`
/// times one run's variance; 1 is an unrelated model, the worst case).
pub fn plan(
    baseline: &GateRun,
    candidate: Option<&GateRun>,
    policy: &Policy,
    suite: Option<&BTreeMap<String, SuitePlace>>,
    changed: f64,
) -> Result<Plan, GateError> {
    if !(changed > 0.0 && changed <= 1.0) {
        return Err(GateError::Input(format!(
            "--changed {changed}: give the share of documents a candidate answers anew, in (0, 1]"
        )));
    }
    let pairs = paired_tasks(baseline, candidate, policy, suite)?;
    let d = &policy.default;
    let stderrs: Vec<f64> = pairs
        .iter()
        .map(|p| match candidate {
            Some(_) => paired::paired_difference(&p.baseline, &p.candidate, p.clusters.as_deref())
                .map_or(f64::NAN, |d| d.stderr),
            None => {
                let sd = crate::stats::sample_stddev(&p.baseline) * (2.0 * changed).sqrt();
                sd / (p.baseline.len() as f64).sqrt()
            }
        })
        .collect();
    let weights = average::weights(&pairs);
    let average_stderr = weights
        .iter()
        .zip(&stderrs)
        .map(|(w, se)| (w * se).powi(2))
        .sum::<f64>()
        .sqrt();
    let average_detectable = paired::minimum_detectable_effect(average_stderr, d.alpha, d.power);
    let average_factor = (average_detectable / (d.margin / 100.0)).powi(2);
    let task_alpha = match d.mode {
        Mode::Average => d.alpha / pairs.len() as f64,
        Mode::PerTask => d.alpha,
    };
    let tasks = pairs
        .iter()
        .zip(&stderrs)
        .zip(&weights)
        .map(|((p, &se), &weight)| {
            let margin = match d.mode {
                Mode::Average => p.rules.guard,
                Mode::PerTask => p.rules.margin,
            };
            let n = p.baseline.len();
            let detectable = paired::minimum_detectable_effect(se, task_alpha, d.power);
            let grown = |factor: f64| (n as f64 * factor).ceil() as u64;
            PlannedTask {
                task: p.task.clone(),
                documents: n,
                required: p.rules.required,
                margin,
                detectable,
                needed_alone: grown((detectable / (margin / 100.0)).powi(2)),
                needed_for_average: if weight > 0.0 {
                    grown(average_factor)
                } else {
                    0
                },
                weight,
            }
        })
        .collect();
    Ok(Plan {
        mode: d.mode,
        alpha: d.alpha,
        power: d.power,
        margin: d.margin,
        assumed_changed: candidate.is_none().then_some(changed),
        normalised: pairs.iter().any(|p| p.scale != 1.0 || p.entry != p.task),
        average_detectable,
        average_factor,
        tasks,
    })
}
