//! The standard error reported beside each metric, chosen as lm-eval chooses
//! it: closed form for `mean`, a bootstrap for the aggregations it lists as
//! bootstrappable, none otherwise.
//!
//! The choice is keyed by the aggregation, not the metric, with one exception
//! lm-eval makes by metric name: bleu, chrf, chrf++ and ter bootstrap at most
//! 100 times because their statistic is slow. A task of one document, or a
//! run with `bootstrap_iters` 0, gets no stderr ("N/A" in lm-eval's tables).

use super::aggregation::BootstrapInput;
use super::{Aggregation, ItemValue};
use crate::stats;

/// How the stderr of one metric is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StderrMethod {
    /// `sample_stddev(xs) / sqrt(len(xs))`.
    MeanStderr,
    /// Standard deviation of the statistic over `iters` bootstrap resamples.
    Bootstrap { iters: usize },
    /// lm-eval reports "N/A".
    None,
}

/// Metrics whose bootstrap lm-eval caps at 100 resamples.
const SLOW_METRICS: [&str; 4] = ["bleu", "chrf", "chrf++", "ter"];

/// lm-eval's `stderr_for_metric`, with the iteration cap
/// `_compute_task_aggregations` applies before calling it.
pub fn stderr_method(
    metric: &str,
    aggregation: Aggregation,
    bootstrap_iters: usize,
) -> StderrMethod {
    if bootstrap_iters == 0 {
        return StderrMethod::None;
    }
    let iters = if SLOW_METRICS.contains(&metric) {
        bootstrap_iters.min(100)
    } else {
        bootstrap_iters
    };
    match aggregation {
        Aggregation::Median
        | Aggregation::MatthewsCorrcoef
        | Aggregation::F1
        | Aggregation::Perplexity
        | Aggregation::NanMean => StderrMethod::Bootstrap { iters },
        Aggregation::Mean => StderrMethod::MeanStderr,
        Aggregation::WeightedPerplexity
        | Aggregation::BitsPerByte
        | Aggregation::BrierScore
        | Aggregation::Bypass => StderrMethod::None,
    }
}

/// The stderr lm-eval reports for `metric` aggregated by `aggregation` over
/// `items`, or `None` where it reports "N/A": no method, fewer than two
/// documents, or values the aggregation cannot use.
pub fn stderr(
    metric: &str,
    aggregation: Aggregation,
    items: &[ItemValue],
    bootstrap_iters: usize,
) -> Option<f64> {
    if items.len() <= 1 {
        return None;
    }
    match stderr_method(metric, aggregation, bootstrap_iters) {
        StderrMethod::None => None,
        StderrMethod::MeanStderr => {
            let scores: Option<Vec<f64>> = items
                .iter()
                .map(|item| match item {
                    ItemValue::Score(x) => Some(*x),
                    _ => None,
                })
                .collect();
            Some(stats::mean_stderr(&scores?))
        }
        StderrMethod::Bootstrap { iters } => {
            // A sample the aggregation rejects has no stderr either.
            aggregation.aggregate(items).ok()?;
            match aggregation.bootstrap_input(items)? {
                BootstrapInput::Scores(xs) => Some(stats::bootstrap_stderr(
                    &xs,
                    &|sample: &[f64]| aggregation.of_scores(sample),
                    iters,
                )),
                BootstrapInput::Pairs(pairs) => Some(stats::bootstrap_stderr(
                    &pairs,
                    &|sample: &[(i64, i64)]| aggregation.of_pairs(sample),
                    iters,
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_follows_stderr_for_metric() {
        use StderrMethod::*;
        let cases = [
            ("acc", Aggregation::Mean, 100000, MeanStderr),
            ("acc", Aggregation::Mean, 0, None),
            (
                "perplexity",
                Aggregation::Perplexity,
                100000,
                Bootstrap { iters: 100000 },
            ),
            (
                "mcc",
                Aggregation::MatthewsCorrcoef,
                1000,
                Bootstrap { iters: 1000 },
            ),
            ("f1", Aggregation::F1, 5, Bootstrap { iters: 5 }),
            ("x", Aggregation::Median, 7, Bootstrap { iters: 7 }),
            ("x", Aggregation::NanMean, 7, Bootstrap { iters: 7 }),
            (
                "word_perplexity",
                Aggregation::WeightedPerplexity,
                100000,
                None,
            ),
            ("bits_per_byte", Aggregation::BitsPerByte, 100000, None),
            ("brier_score", Aggregation::BrierScore, 100000, None),
            ("bypass", Aggregation::Bypass, 100000, None),
            // The cap is by metric name, whatever the aggregation.
            (
                "bleu",
                Aggregation::Median,
                100000,
                Bootstrap { iters: 100 },
            ),
            ("chrf++", Aggregation::Median, 40, Bootstrap { iters: 40 }),
            ("ter", Aggregation::Mean, 100000, MeanStderr),
        ];
        for (metric, aggregation, iters, expected) in cases {
            assert_eq!(
                stderr_method(metric, aggregation, iters),
                expected,
                "{metric} / {}",
                aggregation.name()
            );
        }
    }

    #[test]
    fn mean_stderr_matches_lm_eval() {
        // lm_eval.api.metrics.mean_stderr([1, 0, 1, 1, 0, 1, 1, 1])
        let items: Vec<ItemValue> = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0]
            .into_iter()
            .map(ItemValue::Score)
            .collect();
        assert_eq!(
            stderr("acc", Aggregation::Mean, &items, 100000),
            Some(0.16366341767699427)
        );
    }

    #[test]
    fn one_document_or_no_iterations_has_no_stderr() {
        let one = [ItemValue::Score(1.0)];
        assert_eq!(stderr("acc", Aggregation::Mean, &one, 100000), Option::None);
        let two = [ItemValue::Score(1.0), ItemValue::Score(0.0)];
        assert_eq!(stderr("acc", Aggregation::Mean, &two, 0), Option::None);
        assert!(stderr("acc", Aggregation::Mean, &two, 1).is_some());
    }

    /// Expected values from lm_eval.api.metrics.stderr_for_metric(agg, iters)(items)
    /// with DISABLE_MULTIPROC=1 (the same draws as the multiprocess path).
    #[test]
    fn bootstrap_matches_lm_eval() {
        let pairs: Vec<ItemValue> = [
            (1, 1),
            (0, 1),
            (1, 0),
            (0, 0),
            (1, 1),
            (1, 1),
            (0, 0),
            (1, 0),
            (0, 1),
            (1, 1),
            (0, 0),
            (1, 1),
        ]
        .into_iter()
        .map(|(gold, pred)| ItemValue::GoldPred { gold, pred })
        .collect();
        assert_eq!(
            stderr("f1", Aggregation::F1, &pairs, 1000),
            Some(0.15265394490368953)
        );
        assert_eq!(
            stderr("mcc", Aggregation::MatthewsCorrcoef, &pairs, 1000),
            Some(0.29263694829816644)
        );
        let lls: Vec<ItemValue> = [-1.25, -0.5, -3.0, -0.125, -2.2, -0.75, -1.5, -0.3]
            .into_iter()
            .map(ItemValue::Score)
            .collect();
        assert_eq!(
            stderr("perplexity", Aggregation::Perplexity, &lls, 2000),
            Some(1.229783901160055)
        );
        assert_eq!(
            stderr("x", Aggregation::Median, &lls, 100),
            Some(0.44320764623003506)
        );
    }
}
