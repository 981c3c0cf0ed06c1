//! The perplexity family: perplexity over per-document log-likelihoods, and
//! the weighted forms over (log-likelihood, words | bytes) pairs that
//! word_perplexity, byte_perplexity and bits_per_byte use.
//!
//! The weighted forms divide the summed log-likelihood by the summed weight
//! (a corpus-level rate), not the mean of per-document rates, as lm-eval does.

use super::central::mean;
use crate::metric::MetricError;

/// `exp(-mean(lls))`.
pub(super) fn perplexity(lls: &[f64]) -> f64 {
    (-mean(lls)).exp()
}

/// `exp(-sum(lls) / sum(weights))`.
pub(super) fn weighted_perplexity(items: &[(f64, f64)]) -> Result<f64, MetricError> {
    Ok((-weighted_mean(items, "weighted_perplexity")?).exp())
}

/// `-sum(lls) / sum(bytes) / ln 2`.
pub(super) fn bits_per_byte(items: &[(f64, f64)]) -> Result<f64, MetricError> {
    Ok(-weighted_mean(items, "bits_per_byte")? / std::f64::consts::LN_2)
}

/// lm-eval's `weighted_mean`: both sums left to right, as Python's `sum`.
fn weighted_mean(items: &[(f64, f64)], aggregation: &'static str) -> Result<f64, MetricError> {
    let mut lls = 0.0;
    let mut weights = 0.0;
    for (ll, weight) in items {
        lls += ll;
        weights += weight;
    }
    if weights == 0.0 {
        return Err(MetricError::ZeroTotalWeight { aggregation });
    }
    Ok(lls / weights)
}
