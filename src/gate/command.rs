//! `assay gate` as one call: read the policy and the runs, gate (or plan),
//! write the reports asked for, and say what to print and the exit code.

use std::path::PathBuf;

use super::policy::Inconclusive;
use super::{find_run, gate, plan, report, GateError, Policy, SuitePlace, Verdict};
use crate::error::exit;

/// A plan without a candidate assumes it answers half the documents anew:
/// the demo's Q2_K requantization measured 0.2 to 0.5 of its tasks'.
pub const DEFAULT_CHANGED: f64 = 0.5;

/// What `assay gate` was asked.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// A run folder or a variant name (its latest complete run).
    pub baseline: String,
    /// The same for the candidate; none with `plan`.
    pub candidate: Option<String>,
    pub policy: Option<PathBuf>,
    /// Overrides the policy's default margin (points).
    pub margin: Option<f64>,
    /// Variant names are looked up in `<results>/runs/<name>/`.
    pub results: PathBuf,
    /// Gate only this suite's tasks, each on the metric the suite ranks it
    /// by (a suite file, as the leaderboard reads it).
    pub suite: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub json: Option<PathBuf>,
    /// The published leaderboard, for links in the Markdown report.
    pub site_url: Option<String>,
    /// Add the Markdown to $GITHUB_STEP_SUMMARY and print annotations.
    pub github: bool,
    /// Say what the gate can resolve and how many documents each task
    /// needs, instead of gating.
    pub plan: bool,
    /// For a plan without a candidate: the share of documents a candidate
    /// is assumed to answer anew (default 0.5).
    pub changed: Option<f64>,
}

/// What the command prints and how it exits.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub stdout: String,
    pub exit_code: i32,
}

/// Runs `assay gate`.
pub fn run(request: &Request) -> Result<Outcome, GateError> {
    let mut policy = match &request.policy {
        Some(path) => Policy::read(path)?,
        None => Policy::default(),
    };
    if let Some(m) = request.margin {
        policy = policy.with_margin(m);
        policy
            .check()
            .map_err(|e| GateError::Input(format!("--margin: {e}")))?;
    }
    let runs = request.results.join("runs");
    let baseline = find_run(&request.baseline, &runs)?;
    let mut places = None;
    if let Some(suite) = &request.suite {
        let entries =
            crate::leaderboard::read_suite(suite).map_err(|e| GateError::Input(e.to_string()))?;
        let mut ranked = std::collections::BTreeMap::new();
        let mut placed = std::collections::BTreeMap::new();
        for (entry, spec) in &entries {
            for task in crate::leaderboard::leaves(&baseline.run, entry) {
                ranked.insert(task.clone(), (spec.metric.clone(), spec.filter.clone()));
                let place = SuitePlace {
                    entry: entry.clone(),
                    baseline: spec.baseline_of(&task),
                };
                placed.insert(task, place);
            }
        }
        policy = policy.for_suite(&ranked, baseline.run.assay.tasks.keys());
        places = Some(placed);
    }
    let candidate = match &request.candidate {
        Some(c) => Some(find_run(c, &runs)?),
        None => None,
    };
    if request.plan {
        let planned = plan(
            &baseline,
            candidate.as_ref(),
            &policy,
            places.as_ref(),
            request.changed.unwrap_or(DEFAULT_CHANGED),
        )?;
        return Ok(Outcome {
            stdout: report::plan(&planned),
            exit_code: exit::OK,
        });
    }
    let Some(candidate) = candidate else {
        return Err(GateError::Input(
            "give --candidate (the run to gate), or --plan".into(),
        ));
    };
    let result = gate(&baseline, &candidate, &policy, places.as_ref())?;
    let write = |path: &Option<PathBuf>, text: String| -> Result<(), GateError> {
        match path {
            Some(p) => std::fs::write(p, text).map_err(|source| GateError::Write {
                path: p.clone(),
                source,
            }),
            None => Ok(()),
        }
    };
    let markdown = report::markdown(&result, request.site_url.as_deref());
    write(&request.markdown, markdown.clone())?;
    write(&request.junit, report::junit(&result))?;
    write(
        &request.json,
        serde_json::to_string_pretty(&result).unwrap_or_default(),
    )?;
    let mut stdout = report::summary(&result);
    if request.github {
        if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
            use std::io::Write as _;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(markdown.as_bytes()))
                .map_err(|source| GateError::Write {
                    path: PathBuf::from(path),
                    source,
                })?;
        }
        stdout.push_str(&report::github_annotations(&result));
    }
    let exit_code = match result.verdict {
        Verdict::Pass => exit::OK,
        Verdict::Fail => exit::GATE_FAIL,
        Verdict::Inconclusive if policy.default.inconclusive == Inconclusive::Fail => {
            exit::GATE_INCONCLUSIVE
        }
        Verdict::Inconclusive => exit::OK,
    };
    Ok(Outcome { stdout, exit_code })
}
