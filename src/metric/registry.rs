//! The metrics assay knows by name, with the defaults lm-eval registers for
//! them (`@register_metric` in lm_eval/api/metrics.py) and the metrics each
//! output type gets when a task lists none (`DEFAULT_METRIC_REGISTRY`).
//!
//! A task's `metric_list` may override the aggregation and higher_is_better;
//! these are what applies when it does not. The two BIG-bench metrics are
//! here too, so one lookup serves both task formats.

use super::{Aggregation, MetricError};
use crate::request::OutputType::{
    self, GenerateUntil, Loglikelihood, LoglikelihoodRolling, MultipleChoice,
};

/// One registered metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricInfo {
    pub name: &'static str,
    /// The registry name of the default aggregation. A name rather than an
    /// [`Aggregation`] because some (bleu, chrf, ter) are registered by
    /// lm-eval but not computed by assay; [`MetricInfo::aggregation`] says so.
    pub aggregation: &'static str,
    pub higher_is_better: bool,
    /// The output types lm-eval declares the metric for. lm-eval itself does
    /// not enforce this; it documents which requests produce the values.
    pub output_types: &'static [OutputType],
    /// The output types whose `process_results` gives the metric a value
    /// ([`document_value`](super::document_value)); none for a metric only a
    /// task's own `process_results` hook produces.
    pub computed_for: &'static [OutputType],
    /// Reads each choice's log-likelihood without the context, which the
    /// prompt then asks for too (lm-eval's `acc_mutual_info`).
    pub reads_unconditional: bool,
}

impl MetricInfo {
    /// The default aggregation, or why assay cannot compute it.
    pub fn aggregation(&self) -> Result<Aggregation, MetricError> {
        Aggregation::from_name(self.aggregation)
    }
}

const fn metric(
    name: &'static str,
    aggregation: &'static str,
    higher_is_better: bool,
    output_types: &'static [OutputType],
) -> MetricInfo {
    MetricInfo {
        name,
        aggregation,
        higher_is_better,
        output_types,
        computed_for: &[],
        reads_unconditional: false,
    }
}

impl MetricInfo {
    /// The same metric, computed by assay for `output_types`.
    const fn computed(self, output_types: &'static [OutputType]) -> MetricInfo {
        MetricInfo {
            computed_for: output_types,
            ..self
        }
    }

    const fn unconditional(self) -> MetricInfo {
        MetricInfo {
            reads_unconditional: true,
            ..self
        }
    }
}

/// Whether the metric called `name` reads the unconditional
/// log-likelihoods of a multiple-choice document's options.
pub fn reads_unconditional(name: &str) -> bool {
    metric_info(name).is_some_and(|m| m.reads_unconditional)
}

/// lm-eval 0.4's registered metrics, then BIG-bench's.
pub const METRICS: &[MetricInfo] = &[
    metric("acc", "mean", true, &[Loglikelihood, MultipleChoice])
        .computed(&[Loglikelihood, MultipleChoice]),
    metric("acc_norm", "mean", true, &[Loglikelihood, MultipleChoice]).computed(&[MultipleChoice]),
    metric("acc_bytes", "mean", true, &[Loglikelihood, MultipleChoice]).computed(&[MultipleChoice]),
    metric("acc_mutual_info", "mean", true, &[MultipleChoice])
        .computed(&[MultipleChoice])
        .unconditional(),
    metric("acc_all", "mean", true, &[Loglikelihood]),
    metric("exact_match", "mean", true, &[GenerateUntil])
        .computed(&[MultipleChoice, GenerateUntil]),
    metric("perplexity", "perplexity", false, &[Loglikelihood]).computed(&[Loglikelihood]),
    metric("likelihood", "mean", true, &[MultipleChoice]),
    metric(
        "word_perplexity",
        "weighted_perplexity",
        false,
        &[LoglikelihoodRolling],
    )
    .computed(&[LoglikelihoodRolling]),
    metric(
        "byte_perplexity",
        "weighted_perplexity",
        false,
        &[LoglikelihoodRolling],
    )
    .computed(&[LoglikelihoodRolling]),
    metric(
        "bits_per_byte",
        "bits_per_byte",
        false,
        &[LoglikelihoodRolling],
    )
    .computed(&[LoglikelihoodRolling]),
    metric("brier_score", "brier_score", false, &[MultipleChoice]).computed(&[MultipleChoice]),
    metric("mcc", "matthews_corrcoef", true, &[MultipleChoice]).computed(&[MultipleChoice]),
    metric("f1", "f1", true, &[MultipleChoice]).computed(&[MultipleChoice]),
    metric("bleu", "bleu", true, &[GenerateUntil]),
    metric("chrf", "chrf", true, &[GenerateUntil]),
    metric("chrf++", "chrf++", true, &[GenerateUntil]),
    metric("ter", "ter", false, &[GenerateUntil]),
    metric(
        "bypass",
        "bypass",
        true,
        &[Loglikelihood, MultipleChoice, GenerateUntil],
    ),
    // BIG-bench (bigbench/api/task_metrics.py); both averaged over examples.
    metric("multiple_choice_grade", "mean", true, &[MultipleChoice]).computed(&[MultipleChoice]),
    metric("exact_str_match", "mean", true, &[GenerateUntil]).computed(&[GenerateUntil]),
];

/// The registered metric called `name`.
pub fn metric_info(name: &str) -> Option<&'static MetricInfo> {
    METRICS.iter().find(|m| m.name == name)
}

/// The metrics assay's `process_results` computes for `output_type`: what
/// a task of that type may list (unless a `process_results` hook of its own
/// gives other values).
pub fn computed_metrics(output_type: OutputType) -> Vec<&'static str> {
    METRICS
        .iter()
        .filter(|m| m.computed_for.contains(&output_type))
        .map(|m| m.name)
        .collect()
}

/// The metrics a task of `output_type` gets when its config lists none.
pub fn default_metrics(output_type: OutputType) -> &'static [&'static str] {
    match output_type {
        Loglikelihood => &["perplexity", "acc"],
        LoglikelihoodRolling => &["word_perplexity", "byte_perplexity", "bits_per_byte"],
        MultipleChoice => &["acc", "acc_norm"],
        GenerateUntil => &["exact_match"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_lm_eval() {
        let acc = metric_info("acc").unwrap();
        assert_eq!(acc.aggregation().unwrap(), Aggregation::Mean);
        assert!(acc.higher_is_better);
        let ppl = metric_info("word_perplexity").unwrap();
        assert_eq!(ppl.aggregation().unwrap(), Aggregation::WeightedPerplexity);
        assert!(!ppl.higher_is_better);
        assert_eq!(
            metric_info("mcc").unwrap().aggregation().unwrap(),
            Aggregation::MatthewsCorrcoef
        );
        assert!(!metric_info("ter").unwrap().higher_is_better);
        assert!(metric_info("bleu").unwrap().aggregation().is_err());
        assert!(metric_info("rouge").is_none());
    }

    #[test]
    fn every_default_metric_is_registered_and_computable() {
        for ot in [
            Loglikelihood,
            LoglikelihoodRolling,
            MultipleChoice,
            GenerateUntil,
        ] {
            for name in default_metrics(ot) {
                let info = metric_info(name).unwrap();
                assert!(info.aggregation().is_ok(), "{name}");
                assert!(
                    info.computed_for.contains(&ot),
                    "{name} computed for {}",
                    ot.name()
                );
                assert!(info.output_types.contains(&ot), "{name} for {}", ot.name());
            }
        }
    }
}
