//! lm-evaluation-harness's aggregate statistics: means, standard errors and
//! the arithmetic that folds subtask scores into a group score.
//!
//! Each function mirrors one in `lm_eval/api/metrics.py` (0.4.13), down to
//! the order of floating-point operations, so assay's reported scores and
//! error bars equal lm-eval's to the last bit or close to it. The bootstrap
//! reuses lm-eval's seeding scheme through [`PyRandom`], which is what makes
//! its "random" error bars reproducible across the two tools.
//!
//! Where Python raises (`ZeroDivisionError` for a stderr of one item, an
//! `AssertionError` for mismatched lengths) these return `f64::NAN`. lm-eval
//! itself never reports such values; it writes "N/A", and callers should do
//! the same when a result is NaN.

use crate::python::random::PyRandom;

pub mod paired;

/// A score with its standard error (None where lm-eval prints N/A).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub value: f64,
    pub stderr: Option<f64>,
}

/// lm-eval's bootstrap runs in chunks of this many resamples, each chunk with
/// its own generator seeded by the chunk's index.
const BOOTSTRAP_CHUNK: usize = 1000;

/// Python's `sum(xs)`: a plain left-to-right sum (CPython 3.11 does not use
/// compensated summation; 3.12 does, which would change the last bits).
fn python_sum(xs: impl IntoIterator<Item = f64>) -> f64 {
    xs.into_iter().fold(0.0, |acc, x| acc + x)
}

/// `mean`: `sum(arr) / len(arr)`. NaN when empty.
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    python_sum(xs.iter().copied()) / xs.len() as f64
}

/// Sample variance with Bessel's correction (ddof = 1), computed as
/// lm-eval's `sample_stddev` does before its square root. NaN below two items.
pub fn sample_variance(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return f64::NAN;
    }
    let mu = mean(xs);
    python_sum(xs.iter().map(|x| (x - mu) * (x - mu))) / (xs.len() - 1) as f64
}

/// `sample_stddev`: square root of [`sample_variance`]. NaN below two items.
pub fn sample_stddev(xs: &[f64]) -> f64 {
    sample_variance(xs).sqrt()
}

/// `mean_stderr`: the closed-form standard error lm-eval reports for any
/// metric aggregated by `mean` (accuracy and friends). NaN below two items.
pub fn mean_stderr(xs: &[f64]) -> f64 {
    sample_stddev(xs) / (xs.len() as f64).sqrt()
}

/// `bootstrap_stderr`: the standard error of `statistic(items)` estimated
/// from resamples with replacement, for aggregations without a closed form
/// (median, perplexity, F1, BLEU...).
///
/// The scheme is lm-eval's, step for step: `chunk = min(1000, iters)`, then
/// `iters / chunk` chunks (integer division, so 2500 iterations run 2000
/// resamples), chunk `i` drawing from `Random(i)` with
/// `choices(items, k=len(items))` per resample. The result is the sample
/// standard deviation of the statistics. NaN for no items or no iterations.
pub fn bootstrap_stderr<T: Clone>(
    items: &[T],
    statistic: &dyn Fn(&[T]) -> f64,
    iters: usize,
) -> f64 {
    if items.is_empty() || iters == 0 {
        return f64::NAN;
    }
    let chunk = BOOTSTRAP_CHUNK.min(iters);
    let mut replicates = Vec::with_capacity(iters / chunk * chunk);
    let mut resample: Vec<T> = Vec::with_capacity(items.len());
    let mut rng = PyRandom::new(0);
    for chunk_index in 0..iters / chunk {
        rng.seed(chunk_index as u64);
        for _ in 0..chunk {
            // Cannot fail: items is non-empty and a slice is far below 2**53.
            let Ok(indices) = rng.choices_indices(items.len(), items.len()) else {
                return f64::NAN;
            };
            resample.clear();
            resample.extend(indices.into_iter().map(|i| items[i].clone()));
            replicates.push(statistic(&resample));
        }
    }
    sample_stddev(&replicates)
}

/// `pooled_sample_stderr`: the stderr of a group score that is the
/// size-weighted mean of its subtasks (lm-eval's default,
/// `weight_by_size: true`), from each subtask's stderr and size.
///
/// NaN when lengths differ, or when the sizes sum to no more than their count
/// (Python divides by zero there).
pub fn pooled_sample_stderr(stderrs: &[f64], sizes: &[usize]) -> f64 {
    if stderrs.len() != sizes.len() {
        return f64::NAN;
    }
    let total: usize = sizes.iter().sum();
    // Python: sum(sizes) - len(sizes) on ints, which may go negative.
    let dof = total as f64 - sizes.len() as f64;
    if dof == 0.0 || total == 0 {
        return f64::NAN;
    }
    let pooled_variance = python_sum(
        sizes
            .iter()
            .zip(stderrs)
            .map(|(&size, se)| (size as f64 - 1.0) * (se * se) * size as f64),
    ) / dof;
    (pooled_variance / total as f64).sqrt()
}

/// `unweighted_mean_stderr`: the stderr of a group score that is the plain
/// mean of its subtask scores (`weight_by_size: false`), treating subtask
/// means as independent: `sqrt(sum(se**2)) / k`. NaN when empty.
pub fn unweighted_mean_stderr(stderrs: &[f64]) -> f64 {
    if stderrs.is_empty() {
        return f64::NAN;
    }
    python_sum(stderrs.iter().map(|se| se * se)).sqrt() / stderrs.len() as f64
}

/// `combined_sample_stderr`: the pairwise variance-combining formula lm-eval
/// keeps but no longer uses for groups ("don't use this unless a statistician
/// has told you it's the right thing to do").
///
/// Reproduced with its quirk intact: the running size is never advanced
/// past `sizes[0]`, while the running score is updated before it is compared
/// with each subtask's score. NaN on empty or mismatched input, or where
/// Python would divide by zero.
pub fn combined_sample_stderr(stderrs: &[f64], sizes: &[usize], metrics: &[f64]) -> f64 {
    if stderrs.is_empty() || stderrs.len() != sizes.len() || sizes.len() != metrics.len() {
        return f64::NAN;
    }
    let mut variance = stderrs[0] * stderrs[0];
    let curr_size = sizes[0] as f64;
    let mut curr_score = metrics[0];
    for ((&stderr, &size), &score) in stderrs.iter().zip(sizes).zip(metrics).skip(1) {
        let size = size as f64;
        if curr_size + size == 0.0 || curr_size + size - 1.0 == 0.0 {
            return f64::NAN;
        }
        curr_score = (curr_score * curr_size + score * size) / (curr_size + size);
        let diff = curr_score - score;
        variance = ((curr_size - 1.0) * variance + (size - 1.0) * (stderr * stderr))
            / (curr_size + size - 1.0)
            + curr_size * size / ((curr_size + size) * (curr_size + size - 1.0)) * (diff * diff);
    }
    variance.sqrt()
}

/// `aggregate_subtask_metrics`: a group's score from its subtasks' scores,
/// weighted by subtask size or, with `weight_by_size` false, equally.
/// NaN on mismatched lengths or when the weights sum to zero.
pub fn aggregate_subtask_metrics(metrics: &[f64], sizes: &[usize], weight_by_size: bool) -> f64 {
    if metrics.len() != sizes.len() {
        return f64::NAN;
    }
    let weight = |size: usize| if weight_by_size { size as f64 } else { 1.0 };
    let total = python_sum(sizes.iter().map(|&size| weight(size)));
    if total == 0.0 {
        return f64::NAN;
    }
    python_sum(
        metrics
            .iter()
            .zip(sizes)
            .map(|(metric, &size)| metric * weight(size)),
    ) / total
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values were printed by lm-eval 0.4.13's own functions under
    // CPython 3.11.7 (`from lm_eval.api.metrics import ...`), with the inputs
    // below drawn from `random.Random(123)`: ACC as
    // `int(r.random() < 0.6)` x 40, then LOGLIKELIHOODS as `-r.random() * 3`
    // x 50.
    const ACC: [f64; 40] = [
        1., 1., 1., 1., 0., 1., 1., 1., 0., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 0., 1., 1.,
        0., 1., 0., 1., 1., 0., 0., 1., 0., 1., 0., 1., 0., 1., 1., 0., 1.,
    ];
    const LOGLIKELIHOODS: [f64; 50] = [
        -2.054511655983018,
        -1.9150597929164963,
        -1.9999728932195429,
        -2.670295711610707,
        -1.458409410430692,
        -2.0054106657094413,
        -1.12356489546745,
        -0.09552392022330558,
        -2.2625195155766162,
        -0.5443947477451226,
        -2.4605705533014928,
        -2.7409377355926887,
        -1.974222472203238,
        -0.5103806630127247,
        -1.0107484583751185,
        -1.1735799212139082,
        -0.21987233437105969,
        -1.370301210604361,
        -1.7195055435315942,
        -1.008318297929502,
        -0.5671856087342294,
        -0.26447188477822814,
        -1.884952568192378,
        -0.03848732775784014,
        -1.0557410492946033,
        -0.6873892934408526,
        -1.5959924720452938,
        -2.170990053357724,
        -2.727459826910338,
        -1.916402517729304,
        -2.975379299255747,
        -2.8921775169116453,
        -1.889972129172737,
        -0.7001195522584788,
        -1.45143444792944,
        -0.5327691917217151,
        -2.975873318382651,
        -1.3334997604472223,
        -2.25495047408259,
        -0.13238956801933177,
        -0.40418280190990075,
        -0.579530910127061,
        -0.7690870418896275,
        -1.0561425913490285,
        -0.8157895569802548,
        -1.3028057508379614,
        -1.2610719502051622,
        -0.32586250344480494,
        -0.1878263244849505,
        -1.0651843407836372,
    ];

    /// lm-eval's `median` aggregation: the upper median, no averaging.
    fn median(xs: &[f64]) -> f64 {
        let mut sorted = xs.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }

    /// lm-eval's `perplexity` aggregation over per-document loglikelihoods.
    fn perplexity(xs: &[f64]) -> f64 {
        (-mean(xs)).exp()
    }

    #[track_caller]
    fn assert_close(got: f64, want: f64) {
        let scale = want.abs().max(f64::MIN_POSITIVE);
        assert!(
            ((got - want) / scale).abs() <= 1e-12,
            "got {got:e}, want {want:e}"
        );
    }

    #[test]
    fn closed_form_stderrs_match_lm_eval() {
        assert_close(mean(&ACC), 0.725);
        assert_close(sample_stddev(&ACC), 0.4522025867763025);
        assert_close(mean_stderr(&ACC), 0.07149950690165272);
        assert_close(mean(&LOGLIKELIHOODS), -1.3626644406290567);
        assert_close(sample_stddev(&LOGLIKELIHOODS), 0.8545491617611048);
        assert_close(mean_stderr(&LOGLIKELIHOODS), 0.12085150142771144);
    }

    #[test]
    fn bootstrap_matches_lm_eval_across_chunkings() {
        // (iters, median, perplexity, mean): 1000 is one full chunk, 2500 is
        // two chunks (the remainder is dropped), 300 is one short chunk.
        let expected = [
            (
                1000,
                0.18676212730725272,
                0.4794948623952006,
                0.12001954988707703,
            ),
            (
                2500,
                0.18860389740885583,
                0.4830334481722683,
                0.1219102465797646,
            ),
            (
                300,
                0.18778961693584797,
                0.4637640195792191,
                0.11594693802227338,
            ),
        ];
        for (iters, want_median, want_perplexity, want_mean) in expected {
            assert_close(
                bootstrap_stderr(&LOGLIKELIHOODS, &median, iters),
                want_median,
            );
            assert_close(
                bootstrap_stderr(&LOGLIKELIHOODS, &perplexity, iters),
                want_perplexity,
            );
            assert_close(bootstrap_stderr(&LOGLIKELIHOODS, &mean, iters), want_mean);
        }
        assert_close(bootstrap_stderr(&ACC, &mean, 1000), 0.07069475049639645);
    }

    #[test]
    fn group_aggregation_matches_lm_eval() {
        let stderrs = [0.0123, 0.0456, 0.031];
        let sizes = [1000, 250, 517];
        let metrics = [0.61, 0.44, 0.52];
        assert_close(pooled_sample_stderr(&stderrs, &sizes), 0.013124961819770898);
        assert_close(
            pooled_sample_stderr(&stderrs[..2], &sizes[..2]),
            0.013411124113958532,
        );
        assert_close(unweighted_mean_stderr(&stderrs), 0.018831563338655075);
        assert_close(
            combined_sample_stderr(&stderrs, &sizes, &metrics),
            0.05420372795107231,
        );
        assert_close(
            aggregate_subtask_metrics(&metrics, &sizes, true),
            0.5596151669496322,
        );
        assert_close(
            aggregate_subtask_metrics(&metrics, &sizes, false),
            0.5233333333333333,
        );
    }

    #[test]
    fn degenerate_input_is_nan_not_a_panic() {
        assert!(mean(&[]).is_nan());
        assert!(sample_stddev(&[0.5]).is_nan());
        assert!(mean_stderr(&[0.5]).is_nan());
        assert!(bootstrap_stderr::<f64>(&[], &mean, 1000).is_nan());
        assert!(bootstrap_stderr(&ACC, &mean, 0).is_nan());
        assert!(pooled_sample_stderr(&[0.1], &[1]).is_nan());
        assert!(pooled_sample_stderr(&[0.1, 0.2], &[3]).is_nan());
        assert!(unweighted_mean_stderr(&[]).is_nan());
        assert!(combined_sample_stderr(&[], &[], &[]).is_nan());
        assert!(aggregate_subtask_metrics(&[], &[], true).is_nan());
        assert!(aggregate_subtask_metrics(&[0.5], &[0], true).is_nan());
    }
}
