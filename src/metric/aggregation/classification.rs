//! Classification aggregations over whole tasks: sklearn's `f1_score` and
//! `matthews_corrcoef` on (gold, pred) pairs, and lm-eval's numpy
//! `brier_score` on (gold, probabilities) pairs.
//!
//! These cannot be averaged per document, which is why lm-eval passes the
//! pairs through and computes them here. sklearn's validation is reproduced
//! as errors, and its zero-division cases return 0.0 as sklearn does (with a
//! warning there).

use std::collections::BTreeSet;

use super::numpy_sum;
use crate::metric::MetricError;

/// `f1_score(golds, preds)` with sklearn's defaults: `average="binary"`,
/// `pos_label=1`, `zero_division="warn"` (0.0).
pub(super) fn f1(pairs: &[(i64, i64)]) -> Result<f64, MetricError> {
    let labels: BTreeSet<i64> = pairs.iter().flat_map(|&(g, p)| [g, p]).collect();
    // More than two labels is "multiclass"; two labels without 1 make
    // pos_label=1 invalid. A single label, whatever it is, is accepted.
    if labels.len() > 2 || (labels.len() == 2 && !labels.contains(&1)) {
        return Err(MetricError::F1NotBinary {
            labels: labels.into_iter().collect(),
        });
    }
    let true_sum = pairs.iter().filter(|&&(g, _)| g == 1).count();
    let pred_sum = pairs.iter().filter(|&&(_, p)| p == 1).count();
    let tp = pairs.iter().filter(|&&(g, p)| g == 1 && p == 1).count();
    // sklearn: (1 + beta²)·tp / (beta²·true_sum + pred_sum), beta = 1.
    let denominator = true_sum as f64 + pred_sum as f64;
    if denominator == 0.0 {
        return Ok(0.0);
    }
    Ok(2.0 * tp as f64 / denominator)
}

/// `matthews_corrcoef(golds, preds)`, multi-class by the confusion matrix;
/// 0.0 when either marginal is constant.
pub(super) fn matthews_corrcoef(pairs: &[(i64, i64)]) -> f64 {
    let labels: Vec<i64> = pairs
        .iter()
        .flat_map(|&(g, p)| [g, p])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index = |label: i64| labels.binary_search(&label).unwrap_or(0);
    let mut t_sum = vec![0.0; labels.len()];
    let mut p_sum = vec![0.0; labels.len()];
    let mut n_correct = 0.0;
    for &(g, p) in pairs {
        t_sum[index(g)] += 1.0;
        p_sum[index(p)] += 1.0;
        if g == p {
            n_correct += 1.0;
        }
    }
    let n_samples: f64 = p_sum.iter().sum();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let cov_ytyp = n_correct * n_samples - dot(&t_sum, &p_sum);
    let cov_ypyp = n_samples * n_samples - dot(&p_sum, &p_sum);
    let cov_ytyt = n_samples * n_samples - dot(&t_sum, &t_sum);
    let cov_ypyp_ytyt = cov_ypyp * cov_ytyt;
    if cov_ypyp_ytyt == 0.0 {
        return 0.0;
    }
    cov_ytyp / cov_ypyp_ytyt.sqrt()
}

/// lm-eval's `brier_score`:
/// `np.mean(np.sum((probs - np.eye(num_class)[gold]) ** 2, axis=1))`.
/// A negative gold indexes from the end, as numpy does.
pub(super) fn brier_score(items: &[(i64, &[f64])]) -> Result<f64, MetricError> {
    let num_class = items[0].1.len();
    let mut row_sums = Vec::with_capacity(items.len());
    for &(gold, probs) in items {
        if probs.len() != num_class {
            return Err(MetricError::RaggedProbabilities {
                first: num_class,
                other: probs.len(),
            });
        }
        let classes = num_class as i64;
        let hot = if (0..classes).contains(&gold) {
            gold
        } else if (-classes..0).contains(&gold) {
            gold + classes
        } else {
            return Err(MetricError::GoldOutOfRange {
                gold,
                choices: num_class,
            });
        };
        let squares: Vec<f64> = probs
            .iter()
            .enumerate()
            .map(|(j, &p)| {
                let d = p - if j as i64 == hot { 1.0 } else { 0.0 };
                d * d
            })
            .collect();
        row_sums.push(numpy_sum(&squares));
    }
    Ok(numpy_sum(&row_sums) / row_sums.len() as f64)
}
