//! Each task on its own: the paired test of one task against a margin
//! (shared by both modes), and the `mode = "per-task"` decision: every
//! required task non-inferior at its margin, Holm across tasks.

use super::{
    AverageOutcome, GateError, Judgement, Policy, TaskOutcome, TaskPairs, Underpowered, Verdict,
};
use crate::stats::paired::{self, PairedDifference};

/// One task's paired difference and its one-sided p-values against a
/// regression of `margin`.
pub(super) struct TaskTest {
    pub diff: PairedDifference,
    /// As a fraction of the metric's range.
    pub margin: f64,
    /// That the task loses less than the margin.
    pub p_ok: f64,
    /// That it loses more than the margin.
    pub p_bad: f64,
}

/// Tests `p` against a regression of `margin_points`.
pub(super) fn test_task(p: &TaskPairs, margin_points: f64) -> Result<TaskTest, GateError> {
    let diff = paired::paired_difference(&p.baseline, &p.candidate, p.clusters.as_deref())
        .ok_or_else(|| {
            GateError::Input(format!("task {}: fewer than two paired documents", p.task))
        })?;
    let margin = margin_points / 100.0;
    let wald = {
        let mean = diff.mean;
        if diff.stderr > 0.0 {
            (mean + margin) / diff.stderr
        } else if mean + margin > 0.0 {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        }
    };
    // 0/1 metrics on independent documents: the score test at the margin,
    // continuity-corrected towards "no decision"; others: Wald. The same
    // model answering the same prompts alike on every document is no
    // sample of a difference: there is none, so no regression either.
    let (z_ok, z_bad) = match (diff.discordant, &p.clusters) {
        _ if p.identical() => (f64::INFINITY, f64::INFINITY),
        (Some((lost, gained)), None) => {
            let n = diff.documents as u64;
            (
                paired::paired_binary_score(lost, gained, n, margin, -1.0),
                paired::paired_binary_score(lost, gained, n, margin, 1.0),
            )
        }
        _ => (wald, wald),
    };
    Ok(TaskTest {
        diff,
        margin,
        p_ok: 1.0 - paired::normal_cdf(z_ok),
        p_bad: paired::normal_cdf(z_bad),
    })
}

/// What a task's report shows besides its verdict.
pub(super) struct Shown {
    /// Holm-adjusted p-values (within the margin, beyond it).
    pub adjusted: (f64, f64),
    /// The one-sided quantile of the bounds.
    pub z: f64,
    pub minimum_detectable_effect: f64,
    pub underpowered: bool,
    pub verdict: Verdict,
    /// The task's weight in the average and its share of the average's
    /// variance (mode average).
    pub weight: Option<(f64, f64)>,
}

/// A task's report line.
pub(super) fn outcome(p: TaskPairs, test: &TaskTest, shown: Shown) -> TaskOutcome {
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
    let d = test.diff;
    let binary = d.discordant.is_some();
    let diffs: Vec<f64> = c.iter().zip(&b).map(|(x, y)| x - y).collect();
    let flips = |from: f64, to: f64| -> Vec<u32> {
        ids.iter()
            .zip(b.iter().zip(&c))
            .filter(|(_, (x, y))| **x == from && **y == to)
            .map(|(id, _)| *id)
            .collect()
    };
    TaskOutcome {
        metric,
        filter,
        required: rules.required,
        margin: 100.0 * test.margin,
        lower: d.mean - shown.z * d.stderr,
        upper: d.mean + shown.z * d.stderr,
        mcnemar_p: d.discordant.map(|(l, g)| paired::mcnemar_exact(l, g)),
        bootstrap: (!binary).then(|| paired::paired_bootstrap(&diffs, 2000, 0.95, 1234)),
        p_non_inferior: shown.adjusted.0,
        p_regression: shown.adjusted.1,
        minimum_detectable_effect: shown.minimum_detectable_effect,
        underpowered: shown.underpowered,
        verdict: shown.verdict,
        weight: shown.weight.map(|w| w.0),
        variance_share: shown.weight.map(|w| w.1),
        flipped_to_wrong: if binary { flips(1.0, 0.0) } else { Vec::new() },
        flipped_to_right: if binary { flips(0.0, 1.0) } else { Vec::new() },
        difference: d.into(),
        task,
    }
}

/// The `mode = "per-task"` decision.
pub(super) fn judge(pairs: Vec<TaskPairs>, policy: &Policy) -> Result<Judgement, GateError> {
    let tests: Vec<TaskTest> = pairs
        .iter()
        .map(|p| test_task(p, p.rules.margin))
        .collect::<Result<_, _>>()?;
    let alpha = policy.default.alpha;
    let ok_adjusted = paired::holm(&tests.iter().map(|t| t.p_ok).collect::<Vec<_>>());
    let bad_adjusted = paired::holm(&tests.iter().map(|t| t.p_bad).collect::<Vec<_>>());
    let z = paired::normal_quantile(1.0 - alpha / tests.len() as f64);
    let mut outcomes = Vec::new();
    for (i, (p, test)) in pairs.into_iter().zip(&tests).enumerate() {
        let mde = paired::minimum_detectable_effect(test.diff.stderr, alpha, policy.default.power);
        let underpowered = mde > test.margin;
        let mut verdict = if ok_adjusted[i] <= alpha {
            Verdict::Pass
        } else if bad_adjusted[i] <= alpha {
            Verdict::Fail
        } else {
            Verdict::Inconclusive
        };
        if verdict == Verdict::Inconclusive && underpowered {
            verdict = underpowered_verdict(p.rules.underpowered);
        }
        let shown = Shown {
            adjusted: (ok_adjusted[i], bad_adjusted[i]),
            z,
            minimum_detectable_effect: mde,
            underpowered,
            verdict,
            weight: None,
        };
        outcomes.push(outcome(p, test, shown));
    }
    let average = policy.default.average.then(|| {
        let k = tests.len() as f64;
        let mean = tests.iter().map(|t| t.diff.mean).sum::<f64>() / k;
        let stderr = tests
            .iter()
            .map(|t| t.diff.stderr.powi(2))
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
        let mde = paired::minimum_detectable_effect(stderr, alpha, policy.default.power);
        let z_margin = (mean + margin) / stderr;
        AverageOutcome {
            mean,
            stderr,
            margin: policy.default.margin,
            lower: mean - zq * stderr,
            upper: mean + zq * stderr,
            verdict,
            normalised: false,
            tasks: tests.len(),
            documents: tests.iter().map(|t| t.diff.documents).sum(),
            p_non_inferior: 1.0 - paired::normal_cdf(z_margin),
            p_regression: paired::normal_cdf(z_margin),
            minimum_detectable_effect: mde,
            underpowered: mde > margin,
            documents_factor: None,
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

/// What an inconclusive decision that could not have passed counts as.
pub(super) fn underpowered_verdict(rule: Underpowered) -> Verdict {
    match rule {
        Underpowered::Pass => Verdict::Pass,
        Underpowered::Fail => Verdict::Fail,
        Underpowered::Warn => Verdict::Inconclusive,
    }
}
