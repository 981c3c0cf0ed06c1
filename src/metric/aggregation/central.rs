//! Central-tendency aggregations: mean, median, nanmean, and bypass.
//!
//! `mean` is lm-eval's `sum(xs) / len(xs)` and is shared with the stats
//! module; `median` and `nanmean` keep lm-eval's exact definitions, which are
//! not the textbook ones in every case (see each function).

use super::numpy_sum;
use crate::stats;

/// What lm-eval's `bypass` aggregation returns for any input.
pub(super) const BYPASS: f64 = 999.0;

/// `sum(xs) / len(xs)`; the caller has checked `xs` is not empty.
pub(super) fn mean(xs: &[f64]) -> f64 {
    stats::mean(xs)
}

/// `sorted(xs)[len(xs) // 2]`: for an even count this is the upper of the two
/// middle values, where a textbook median would average them.
pub(super) fn median(xs: &[f64]) -> f64 {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// `np.nanmean(xs)`, and NaN for no values or all NaN (lm-eval checks that
/// first to avoid numpy's warning). numpy sums with NaNs replaced by zero, by
/// pairwise summation, then divides by the count of non-NaN values.
pub(super) fn nanmean(xs: &[f64]) -> f64 {
    let count = xs.iter().filter(|x| !x.is_nan()).count();
    if count == 0 {
        return f64::NAN;
    }
    let zeroed: Vec<f64> = xs
        .iter()
        .map(|&x| if x.is_nan() { 0.0 } else { x })
        .collect();
    numpy_sum(&zeroed) / count as f64
}
