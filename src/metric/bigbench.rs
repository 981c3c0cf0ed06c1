//! BIG-bench's two per-example metrics for `task.json` tasks, as defined in
//! bigbench/api/task_metrics.py: `exact_str_match` for generative examples
//! and `multiple_choice_grade` for multiple-choice ones. Both are averaged
//! over examples (the `mean` aggregation).
//!
//! BIG-bench breaks ties between equally likely choices pseudo-randomly but
//! deterministically, by hashing the log-probabilities; that is reproduced,
//! so the caller must pass the log-probabilities BIG-bench would score (its
//! normalised conditional log-probabilities, from [`normalized_log_probs`],
//! unless the task sets `absolute_normalization`), as float64.

use sha2::{Digest, Sha256};

use super::MetricError;

/// 1.0 if `prediction` equals one of `targets` exactly (no normalisation:
/// BIG-bench compares the post-processed response with `in`), else 0.0.
pub fn exact_str_match(targets: &[String], prediction: &str) -> f64 {
    if targets.iter().any(|t| t == prediction) {
        1.0
    } else {
        0.0
    }
}

/// The target score of the choice with the highest log-probability. Target
/// scores may be fractional; a tie between maxima is broken as BIG-bench
/// does: the choice at position `sha256(log_probs as float64 bytes) mod
/// (number of tied choices)` among the tied ones.
pub fn multiple_choice_grade(log_probs: &[f64], target_scores: &[f64]) -> Result<f64, MetricError> {
    if log_probs.len() != target_scores.len() {
        return Err(MetricError::ChoiceCountMismatch {
            log_probs: log_probs.len(),
            target_scores: target_scores.len(),
        });
    }
    let choice = tie_broken_argmax(log_probs).ok_or_else(|| MetricError::NoMaximum {
        log_probs: log_probs.to_vec(),
    })?;
    Ok(target_scores[choice])
}

/// BIG-bench's normalised log-probabilities of a set of choices:
/// `np.array(x) - scipy.special.logsumexp(x)`, so they sum to one as
/// probabilities. The log-sum-exp is scipy's classic formula (before 1.15,
/// as BIG-bench's published runs had it): `log(sum(exp(x - max))) + max`,
/// the sum in numpy's pairwise order. Only tie-breaking depends on the last
/// bits this reproduces.
pub fn normalized_log_probs(absolute: &[f64]) -> Vec<f64> {
    let mut max = absolute.iter().copied().fold(f64::NEG_INFINITY, |m, x| {
        // np.amax propagates NaN.
        if m.is_nan() || x.is_nan() {
            f64::NAN
        } else {
            m.max(x)
        }
    });
    if !max.is_finite() {
        max = 0.0;
    }
    let exps: Vec<f64> = absolute.iter().map(|x| (x - max).exp()).collect();
    let lse = pairwise_sum(&exps).ln() + max;
    absolute.iter().map(|x| x - lse).collect()
}

/// numpy's `pairwise_sum_DOUBLE`: eight running sums over blocks of up to
/// 128 items, halved recursively above that.
fn pairwise_sum(xs: &[f64]) -> f64 {
    let n = xs.len();
    if n < 8 {
        xs.iter().fold(0.0, |acc, x| acc + x)
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&xs[..8]);
        let whole = n - n % 8;
        for block in xs[8..whole].chunks_exact(8) {
            for (acc, x) in r.iter_mut().zip(block) {
                *acc += x;
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for x in &xs[whole..] {
            res += x;
        }
        res
    } else {
        let mut half = n / 2;
        half -= half % 8;
        pairwise_sum(&xs[..half]) + pairwise_sum(&xs[half..])
    }
}

/// BIG-bench's `argmax` with "deterministic pseudorandom tie breaking".
fn tie_broken_argmax(values: &[f64]) -> Option<usize> {
    // np.max propagates NaN, and then nothing equals the maximum.
    if values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let max = values.iter().copied().reduce(f64::max)?;
    let tied: Vec<usize> = (0..values.len()).filter(|&i| values[i] == max).collect();
    let mut hasher = Sha256::new();
    for v in values {
        hasher.update(v.to_le_bytes());
    }
    // int(hexdigest, 16) % len(tied), one byte at a time.
    let modulus = tied.len() as u128;
    let index = hasher
        .finalize()
        .iter()
        .fold(0u128, |acc, &byte| (acc * 256 + u128::from(byte)) % modulus);
    Some(tied[index as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_str_match_needs_an_identical_target() {
        let targets = vec!["Paris".to_string(), "paris".to_string()];
        assert_eq!(exact_str_match(&targets, "paris"), 1.0);
        assert_eq!(exact_str_match(&targets, "Paris "), 0.0);
        assert_eq!(exact_str_match(&[], ""), 0.0);
    }

    #[test]
    fn grade_is_the_target_score_of_the_argmax() {
        let scores = [0.0, 0.5, 1.0];
        assert_eq!(
            multiple_choice_grade(&[-3.0, -0.5, -1.0], &scores).unwrap(),
            0.5
        );
        assert_eq!(
            multiple_choice_grade(&[-3.0, -2.5, -1.0], &scores).unwrap(),
            1.0
        );
    }

    /// Expected choices from BIG-bench's argmax, run as
    /// `int(hashlib.sha256(np.asarray(a).tobytes()).hexdigest(), 16) % len(max_indices)`.
    #[test]
    fn ties_break_like_big_bench() {
        use std::f64::consts::LN_2;
        let cases: &[(&[f64], usize)] = &[
            (&[-1.0, -1.0], 0),
            (&[-1.0, -1.0, -1.0], 2),
            (&[0.0, 0.0, 0.0, 0.0], 1),
            (&[-2.5, -0.5, -0.5, -7.0, -0.5], 2),
            (&[-LN_2, -LN_2], 1),
            (
                &[
                    -1.0986122886681098,
                    -1.0986122886681098,
                    -1.0986122886681098,
                ],
                1,
            ),
            (&[-1.2, -0.3, -0.3], 2),
            (&[-5.0; 7], 6),
        ];
        for (log_probs, expected) in cases {
            assert_eq!(
                tie_broken_argmax(log_probs),
                Some(*expected),
                "{log_probs:?}"
            );
        }
    }

    /// `(np.array(x) - logsumexp(x)).tolist()` with the classic formula,
    /// printed by numpy 2.4.
    #[test]
    fn normalization_matches_numpy() {
        let check = |x: Vec<f64>, first: [f64; 3], last: f64| {
            let got = normalized_log_probs(&x);
            assert_eq!(got[..3], first, "{x:?}");
            assert_eq!(got[got.len() - 1], last, "{x:?}");
        };
        check(
            vec![-1.0, -2.0, -3.5],
            [
                -0.3715390318526828,
                -1.3715390318526828,
                -2.8715390318526826,
            ],
            -2.8715390318526826,
        );
        check(vec![-0.1; 3], [-1.0986122886681098; 3], -1.0986122886681098);
        check(
            (0..9).map(|i| -20.0 + f64::from(i) * 2.375).collect(),
            [
                -19.097628803347398,
                -16.722628803347398,
                -14.347628803347398,
            ],
            -0.09762880334739865,
        );
        check(
            (0..150).map(|i| -300.0 + f64::from(i) * 2.0).collect(),
            [
                -298.14541345786887,
                -296.14541345786887,
                -294.14541345786887,
            ],
            -0.14541345786885906,
        );
        assert_eq!(
            normalized_log_probs(&[f64::NEG_INFINITY, -1.0]),
            [f64::NEG_INFINITY, 0.0]
        );
    }

    #[test]
    fn mismatched_or_nan_inputs_are_errors() {
        assert!(multiple_choice_grade(&[0.0, 1.0], &[1.0]).is_err());
        assert!(multiple_choice_grade(&[f64::NAN, 1.0], &[1.0, 0.0]).is_err());
        assert!(multiple_choice_grade(&[], &[]).is_err());
    }
}
