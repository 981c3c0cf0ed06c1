//! The default decision (`mode = "average"`): one primary test on the
//! suite's average, pooled over every paired document, plus a guard per
//! task that catches a large regression on any one of them.
//!
//! The average weighs tasks as the leaderboard ranks them: each suite entry
//! counts alike, a group entry pools its tasks' documents, and with a
//! suite's random-chance baselines each difference is normalised by
//! `1 - baseline`. Its standard error is the square root of the weighted
//! sum of the tasks' paired variances (cluster-robust where a task names
//! clusters): tasks share no documents, so their differences are
//! independent. PASS needs the average non-inferior at the margin; FAIL
//! comes from an average regression beyond the margin, or from any task
//! whose regression beyond its guard is established (Holm across tasks);
//! anything else is INCONCLUSIVE.

use std::collections::BTreeMap;

use super::per_task::{outcome, test_task, underpowered_verdict, Shown, TaskTest};
use super::{AverageOutcome, GateError, Judgement, Policy, TaskPairs, Verdict};
use crate::stats::paired;

/// Each counted task's weight in the average: entries count alike, a
/// group entry's tasks by their share of its documents, each scaled by its
/// normalisation. Tasks that do not count weigh nothing.
pub fn weights(pairs: &[TaskPairs]) -> Vec<f64> {
    let mut entry_documents: BTreeMap<&str, usize> = BTreeMap::new();
    for p in pairs.iter().filter(|p| p.rules.required) {
        *entry_documents.entry(p.entry.as_str()).or_default() += p.baseline.len();
    }
    let entries = entry_documents.len() as f64;
    pairs
        .iter()
        .map(|p| match entry_documents.get(p.entry.as_str()) {
            Some(&n) if p.rules.required => p.baseline.len() as f64 / n as f64 * p.scale / entries,
            _ => 0.0,
        })
        .collect()
}

/// The average's difference, and its standard error at the boundary of
/// the test (the average exactly at `-margin`). A 0/1 task on independent
/// documents contributes its variance at that boundary (restricted maximum
/// likelihood, as Tango's test takes it), each task shifted alike; so a
/// handful of documents that happen to agree is not read as certainty.
/// Other tasks contribute their paired (cluster-robust) standard error; the
/// same model answering alike contributes nothing.
fn pooled(pairs: &[TaskPairs], weights: &[f64], tests: &[TaskTest], margin: f64) -> (f64, f64) {
    let mean = weights
        .iter()
        .zip(tests)
        .map(|(w, t)| w * t.diff.mean)
        .sum();
    let total: f64 = weights.iter().sum();
    let shift = if total > 0.0 { margin / total } else { margin };
    let variance: f64 = pairs
        .iter()
        .zip(weights)
        .zip(tests)
        .map(|((p, w), t)| {
            let variance_of_mean = match (t.diff.discordant, &p.clusters) {
                _ if p.identical() => 0.0,
                (Some((lost, gained)), None) => {
                    let n = t.diff.documents as u64;
                    paired::paired_binary_boundary_variance(lost, gained, n, shift).max(0.0)
                        / n as f64
                }
                _ => t.diff.stderr.powi(2),
            };
            w * w * variance_of_mean
        })
        .sum();
    (mean, variance.sqrt())
}

/// At the same difference, how many times every task's documents the
/// average needs to pass: the smallest `f` with
/// `distance - correction / f > spread / sqrt(f)` (the standard error
/// shrinks with the square root of the documents, the continuity
/// correction with their number). None
/// when the measured average is at or beyond the margin.
fn documents_factor(distance: f64, spread: f64, correction: f64) -> Option<f64> {
    if distance <= 0.0 {
        return None;
    }
    // With x = 1 / sqrt(f): correction x^2 + spread x - distance < 0.
    let x = if correction > 0.0 {
        (-spread + (spread * spread + 4.0 * correction * distance).sqrt()) / (2.0 * correction)
    } else {
        distance / spread
    };
    let factor = (1.0 / x).powi(2);
    (factor.is_finite() && factor > 1.0).then_some(factor)
}

/// The `mode = "average"` decision.
pub(super) fn judge(pairs: Vec<TaskPairs>, policy: &Policy) -> Result<Judgement, GateError> {
    if !pairs.iter().any(|p| p.rules.required) {
        return Err(GateError::Input(
            "every task of the gate is `required = false`: nothing is left to decide; \
             require at least one task"
                .into(),
        ));
    }
    let alpha = policy.default.alpha;
    let power = policy.default.power;
    let tests: Vec<TaskTest> = pairs
        .iter()
        .map(|p| test_task(p, p.rules.guard))
        .collect::<Result<_, _>>()?;
    let weights = weights(&pairs);
    let margin = policy.default.margin / 100.0;
    let (mean, stderr) = pooled(&pairs, &weights, &tests, margin);
    // The same model answering alike on every task: no difference at all.
    let identical = pairs
        .iter()
        .filter(|p| p.rules.required)
        .all(|p| p.identical());
    // One document per task, weighted, towards "no decision": the Wald
    // statistic of a 0/1 mean runs a little over alpha at the margin
    // without it (bench/gate_simulation.rs).
    let correction: f64 = if identical {
        0.0
    } else {
        weights
            .iter()
            .zip(&tests)
            .map(|(w, t)| w / t.diff.documents as f64)
            .sum()
    };
    // Large values favour "within the margin".
    let z_at = |shift: f64| {
        let distance = mean + margin + shift;
        if identical {
            f64::INFINITY
        } else if stderr > 0.0 {
            distance / stderr
        } else if distance > 0.0 {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        }
    };
    let (z_ok, z_bad) = (z_at(-correction), z_at(correction));
    let p_ok = 1.0 - paired::normal_cdf(z_ok);
    let p_bad = paired::normal_cdf(z_bad);
    let mde = paired::minimum_detectable_effect(stderr, alpha, power);
    let underpowered = mde > margin && !identical;
    let mut verdict = if p_ok <= alpha {
        Verdict::Pass
    } else if p_bad <= alpha {
        Verdict::Fail
    } else {
        Verdict::Inconclusive
    };
    if verdict == Verdict::Inconclusive && underpowered {
        verdict = underpowered_verdict(policy.default.underpowered);
    }
    let zq = paired::normal_quantile(1.0 - alpha);
    let documents_factor = (verdict != Verdict::Pass)
        .then(|| documents_factor(mean + margin, zq * stderr, correction))
        .flatten();
    let normalised = pairs.iter().any(|p| p.scale != 1.0 || p.entry != p.task);
    let average = AverageOutcome {
        mean,
        stderr,
        margin: policy.default.margin,
        lower: mean - correction - zq * stderr,
        upper: mean + correction + zq * stderr,
        verdict,
        normalised,
        tasks: weights.iter().filter(|w| **w > 0.0).count(),
        documents: tests
            .iter()
            .zip(&weights)
            .filter(|(_, w)| **w > 0.0)
            .map(|(t, _)| t.diff.documents)
            .sum(),
        p_non_inferior: p_ok,
        p_regression: p_bad,
        minimum_detectable_effect: mde,
        underpowered,
        documents_factor,
    };

    // The guards.
    let ok_adjusted = paired::holm(&tests.iter().map(|t| t.p_ok).collect::<Vec<_>>());
    let bad_adjusted = paired::holm(&tests.iter().map(|t| t.p_bad).collect::<Vec<_>>());
    let z = paired::normal_quantile(1.0 - alpha / tests.len() as f64);
    let variance = stderr.powi(2);
    let mut outcomes = Vec::new();
    for (i, (p, test)) in pairs.into_iter().zip(&tests).enumerate() {
        let task_mde =
            paired::minimum_detectable_effect(test.diff.stderr, alpha / tests.len() as f64, power);
        let task_verdict = if bad_adjusted[i] <= alpha {
            Verdict::Fail
        } else if ok_adjusted[i] <= alpha {
            Verdict::Pass
        } else {
            Verdict::Inconclusive
        };
        let share = if variance > 0.0 {
            ((weights[i] * test.diff.stderr).powi(2) / variance).min(1.0)
        } else {
            0.0
        };
        let shown = Shown {
            adjusted: (ok_adjusted[i], bad_adjusted[i]),
            z,
            minimum_detectable_effect: task_mde,
            underpowered: task_mde > test.margin,
            verdict: task_verdict,
            weight: Some((weights[i], share)),
        };
        outcomes.push(outcome(p, test, shown));
    }
    let guarded: Vec<String> = outcomes
        .iter()
        .filter(|t| t.required && t.verdict == Verdict::Fail)
        .map(|t| format!("{} (guard -{})", t.task, t.margin))
        .collect();
    let points = |x: f64| format!("{:+.2}", 100.0 * x);
    let scale = if normalised { "normalised " } else { "" };
    let reason = if !guarded.is_empty() {
        format!(
            "a regression beyond the guard is established on {}",
            guarded.join(", ")
        )
    } else {
        match average.verdict {
            Verdict::Fail => format!(
                "the average regresses beyond the margin: {} {scale}points, upper bound {}, margin -{}",
                points(mean),
                points(average.upper),
                average.margin
            ),
            Verdict::Pass => format!(
                "the average holds within the margin ({} {scale}points, lower bound {}, margin -{}) \
                 and no task regresses beyond its guard",
                points(mean),
                points(average.lower),
                average.margin
            ),
            Verdict::Inconclusive => format!(
                "the average is not shown to hold within the margin ({} {scale}points, lower bound {}, \
                 margin -{}){}",
                points(mean),
                points(average.lower),
                average.margin,
                match documents_factor {
                    Some(f) => format!("; about {f:.1} times the documents would decide"),
                    None => "; more documents would not make it pass".into(),
                }
            ),
        }
    };
    let verdict = if guarded.is_empty() {
        average.verdict
    } else {
        Verdict::Fail
    };
    Ok(Judgement {
        verdict,
        tasks: outcomes,
        average: Some(average),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::documents_factor;

    #[test]
    fn the_factor_decides_at_the_same_difference() {
        // Without a correction: (spread / distance)^2.
        let f = documents_factor(0.01, 0.02, 0.0).unwrap();
        assert!((f - 4.0).abs() < 1e-12, "{f}");
        // With one, the grown documents just clear the bound.
        let (distance, spread, correction) = (0.0025, 0.012, 0.005);
        let f = documents_factor(distance, spread, correction).unwrap();
        let margin_left = distance - correction / f - spread / f.sqrt();
        assert!(margin_left.abs() < 1e-12, "{margin_left}");
        // At or beyond the margin, no number of documents passes.
        assert_eq!(documents_factor(-0.001, 0.01, 0.0), None);
        // Already enough: no factor.
        assert_eq!(documents_factor(0.05, 0.01, 0.001), None);
    }
}
