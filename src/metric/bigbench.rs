//! BIG-bench's two per-example metrics for `task.json` tasks, as defined in
//! bigbench/api/task_metrics.py: `exact_str_match` for generative examples
//! and `multiple_choice_grade` for multiple-choice ones. Both are averaged
//! over examples (the `mean` aggregation).
//!
//! BIG-bench breaks ties between equally likely choices pseudo-randomly but
//! deterministically, by hashing the log-probabilities; that is reproduced,
//! so the caller must pass the log-probabilities BIG-bench would score (its
//! normalised conditional log-probabilities), as float64.

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

    #[test]
    fn mismatched_or_nan_inputs_are_errors() {
        assert!(multiple_choice_grade(&[0.0, 1.0], &[1.0]).is_err());
        assert!(multiple_choice_grade(&[f64::NAN, 1.0], &[1.0, 0.0]).is_err());
        assert!(multiple_choice_grade(&[], &[]).is_err());
    }
}
