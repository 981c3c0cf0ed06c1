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

pub mod command;
pub mod policy;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::ErrorKind;
use crate::results::{self, MetricKey};
use crate::stats::paired::{self, PairedDifference};
pub use policy::{Policy, TaskPolicy, Underpowered};

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
    pub baseline: RunLabel,
    pub candidate: RunLabel,
    pub alpha: f64,
    pub tasks: Vec<TaskOutcome>,
    /// The mean of the task differences, when the policy requires it.
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
    pub mean: f64,
    pub stderr: f64,
    pub margin: f64,
    pub lower: f64,
    pub verdict: Verdict,
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

/// Gates `candidate` against `baseline` under `policy`.
pub fn gate(
    baseline: &GateRun,
    candidate: &GateRun,
    policy: &Policy,
) -> Result<GateReport, GateError> {
    let candidate_tasks = tasks(candidate);
    let tasks: Vec<String> = tasks(baseline)
        .into_iter()
        .filter(|t| candidate_tasks.contains(t))
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
        if baseline.config_hash(task) != candidate.config_hash(task) {
            return Err(GateError::Input(format!(
                "task {task}: the task config differs between the runs (config hash {} vs {}); \
                 score both with the same config",
                baseline.config_hash(task).unwrap_or("none"),
                candidate.config_hash(task).unwrap_or("none")
            )));
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
        let (b, c) = (read(baseline)?, read(candidate)?);
        let paired = pair_task(task, &b, &c, policy.default.min_overlap)?;
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
        pairs.push(TaskPairs {
            task: task.clone(),
            metric,
            filter,
            rules,
            baseline: paired.baseline,
            candidate: paired.candidate,
            ids: paired.ids,
            clusters,
            same_model: same_model(baseline, candidate),
        });
    }
    let judged = judge(pairs, policy)?;
    let label = |r: &GateRun| RunLabel {
        variant: r.variant().unwrap_or_default().to_string(),
        run_id: r.run_id().to_string(),
        dir: r.dir.display().to_string(),
    };
    Ok(GateReport {
        verdict: judged.verdict,
        baseline: label(baseline),
        candidate: label(candidate),
        alpha: policy.default.alpha,
        tasks: judged.tasks,
        average: judged.average,
        reason: judged.reason,
    })
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
    // Per task: the difference and both one-sided p-values.
    struct Raw {
        diff: PairedDifference,
        margin: f64,
        p_ok: f64,
        p_bad: f64,
    }
    let raws: Vec<Raw> = pairs
        .iter()
        .map(|p| {
            let diff = paired::paired_difference(&p.baseline, &p.candidate, p.clusters.as_deref())
                .ok_or_else(|| {
                    GateError::Input(format!("task {}: fewer than two paired documents", p.task))
                })?;
            let margin = p.rules.margin / 100.0;
            let wald = |shift: f64| {
                let mean = diff.mean + shift;
                if diff.stderr > 0.0 {
                    (mean + margin) / diff.stderr
                } else if mean + margin > 0.0 {
                    f64::INFINITY
                } else {
                    f64::NEG_INFINITY
                }
            };
            // 0/1 metrics on independent documents: the score test at the
            // margin, continuity-corrected towards "no decision"; others: Wald.
            // The same model answering the same prompts alike on every
            // document is no sample of a difference: there is none.
            let identical = p.same_model && p.baseline == p.candidate;
            let (z_ok, z_bad) = match (diff.discordant, &p.clusters) {
                _ if identical => (f64::INFINITY, f64::NEG_INFINITY),
                (Some((lost, gained)), None) => {
                    let n = diff.documents as u64;
                    (
                        paired::paired_binary_score(lost, gained, n, margin, -1.0),
                        paired::paired_binary_score(lost, gained, n, margin, 1.0),
                    )
                }
                _ => (wald(0.0), wald(0.0)),
            };
            Ok(Raw {
                diff,
                margin,
                p_ok: 1.0 - paired::normal_cdf(z_ok),
                p_bad: paired::normal_cdf(z_bad),
            })
        })
        .collect::<Result<_, GateError>>()?;
    let alpha = policy.default.alpha;
    let ok_adjusted = paired::holm(&raws.iter().map(|r| r.p_ok).collect::<Vec<_>>());
    let bad_adjusted = paired::holm(&raws.iter().map(|r| r.p_bad).collect::<Vec<_>>());
    let z = paired::normal_quantile(1.0 - alpha / raws.len() as f64);
    let mut outcomes = Vec::new();
    for (i, (p, raw)) in pairs.into_iter().zip(&raws).enumerate() {
        let TaskPairs {
            task,
            metric,
            filter,
            rules,
            baseline: b,
            candidate: c,
            ids,
            ..
        } = p;
        let d = raw.diff;
        let mde = paired::minimum_detectable_effect(d.stderr, alpha, policy.default.power);
        let underpowered = mde > raw.margin;
        let mut verdict = if ok_adjusted[i] <= alpha {
            Verdict::Pass
        } else if bad_adjusted[i] <= alpha {
            Verdict::Fail
        } else {
            Verdict::Inconclusive
        };
        if verdict == Verdict::Inconclusive && underpowered {
            verdict = match rules.underpowered {
                Underpowered::Pass => Verdict::Pass,
                Underpowered::Fail => Verdict::Fail,
                Underpowered::Warn => Verdict::Inconclusive,
            };
        }
        let binary = d.discordant.is_some();
        let diffs: Vec<f64> = c.iter().zip(&b).map(|(x, y)| x - y).collect();
        let flips = |from: f64, to: f64| -> Vec<u32> {
            ids.iter()
                .zip(b.iter().zip(&c))
                .filter(|(_, (x, y))| **x == from && **y == to)
                .map(|(id, _)| *id)
                .collect()
        };
        outcomes.push(TaskOutcome {
            metric,
            filter,
            required: rules.required,
            margin: rules.margin,
            lower: d.mean - z * d.stderr,
            upper: d.mean + z * d.stderr,
            mcnemar_p: d.discordant.map(|(l, g)| paired::mcnemar_exact(l, g)),
            bootstrap: (!binary).then(|| paired::paired_bootstrap(&diffs, 2000, 0.95, 1234)),
            p_non_inferior: ok_adjusted[i],
            p_regression: bad_adjusted[i],
            minimum_detectable_effect: mde,
            underpowered,
            verdict,
            flipped_to_wrong: if binary { flips(1.0, 0.0) } else { Vec::new() },
            flipped_to_right: if binary { flips(0.0, 1.0) } else { Vec::new() },
            difference: d.into(),
            task,
        });
    }
    let average = policy.default.average.then(|| {
        let k = raws.len() as f64;
        let mean = raws.iter().map(|r| r.diff.mean).sum::<f64>() / k;
        let stderr = raws
            .iter()
            .map(|r| r.diff.stderr.powi(2))
            .sum::<f64>()
            .sqrt()
            / k;
        let margin = policy.default.margin / 100.0;
        let zq = paired::normal_quantile(1.0 - alpha);
        let verdict = if mean - zq * stderr > -margin {
            Verdict::Pass
        } else if mean + zq * stderr < -margin {
            Verdict::Fail
        } else {
            Verdict::Inconclusive
        };
        AverageOutcome {
            mean,
            stderr,
            margin: policy.default.margin,
            lower: mean - zq * stderr,
            verdict,
        }
    });
    let required: Vec<&TaskOutcome> = outcomes.iter().filter(|t| t.required).collect();
    let failed: Vec<&str> = required
        .iter()
        .filter(|t| t.verdict == Verdict::Fail)
        .map(|t| t.task.as_str())
        .collect();
    let open: Vec<&str> = required
        .iter()
        .filter(|t| t.verdict == Verdict::Inconclusive)
        .map(|t| t.task.as_str())
        .collect();
    let average_verdict = average.as_ref().map(|a| a.verdict);
    let (verdict, reason) = if !failed.is_empty() {
        (
            Verdict::Fail,
            format!(
                "a regression beyond the margin is established on {}",
                failed.join(", ")
            ),
        )
    } else if average_verdict == Some(Verdict::Fail) {
        (
            Verdict::Fail,
            "the average regresses beyond the margin".into(),
        )
    } else if !open.is_empty() {
        (
            Verdict::Inconclusive,
            format!(
                "not enough evidence either way on {} (more documents would decide)",
                open.join(", ")
            ),
        )
    } else if average_verdict == Some(Verdict::Inconclusive) {
        (
            Verdict::Inconclusive,
            "the average is not shown to hold within the margin".into(),
        )
    } else {
        (
            Verdict::Pass,
            "no required task regresses by the margin or more".into(),
        )
    };
    Ok(Judgement {
        verdict,
        tasks: outcomes,
        average,
        reason,
    })
}

/// For `--plan`: per task of the baseline, the documents needed to detect a
/// regression of `margin` points with the policy's power, from the
/// baseline's own per-document variance (a difference of two runs that
/// disagree independently has twice one run's variance, the worst case).
pub fn plan(
    baseline: &GateRun,
    policy: &Policy,
    margin: f64,
) -> Result<BTreeMap<String, (usize, u64)>, GateError> {
    let mut out = BTreeMap::new();
    for task in tasks(baseline) {
        let rules = policy.task(&task);
        let Some((metric, filter)) = metric(baseline, &task, &rules) else {
            continue;
        };
        let key = MetricKey {
            task: task.clone(),
            filter,
            metric,
        };
        let path = baseline.dir.join("samples.parquet");
        let rows = results::read_documents(&path, std::slice::from_ref(&key), false)
            .map_err(|e| GateError::Input(format!("{}: {e}", path.display())))?
            .remove(&key)
            .unwrap_or_default();
        let values: Vec<f64> = rows.iter().filter_map(|r| r.value).collect();
        if values.len() < 2 {
            continue;
        }
        let sd = crate::stats::sample_stddev(&values) * std::f64::consts::SQRT_2;
        let needed = paired::documents_needed(
            sd,
            margin / 100.0,
            policy.default.alpha,
            policy.default.power,
        );
        out.insert(task, (values.len(), needed));
    }
    Ok(out)
}
