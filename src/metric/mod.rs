//! Scoring: the filters that post-process generated text, the per-document
//! metrics, the aggregations that turn per-document values into a task
//! score, the stderr reported beside it, and the registry of metric defaults,
//! all as lm-evaluation-harness 0.4 defines them.
//!
//! The module never sees a backend or a task config. The engine computes each
//! document's [`ItemValue`]s by lm-eval's `process_results` rules (calling
//! [`exact_match`] and friends for generation tasks), then asks an
//! [`Aggregation`] for the score and [`stderr`] for its error. Python regex
//! patterns from task configs are run with Python's semantics (see
//! `python::re`), and numeric formulas follow the Python (and numpy,
//! sklearn) code they replace closely enough to agree digit for digit.

mod aggregation;
mod bigbench;
pub mod document;
mod error;
mod exact_match;
pub mod filters;
mod registry;
mod stderr;
pub mod text_overlap;

pub(crate) use aggregation::{count_words, numpy_sum};
pub use aggregation::{Aggregation, ItemValue};
pub use bigbench::{exact_str_match, multiple_choice_grade, normalized_log_probs};
pub use document::{document_value, Evidence, MultipleChoice};
pub use error::MetricError;
pub use exact_match::{exact_match, ExactMatchOptions};
pub use filters::{ExternalFilter, Filter, FilterPipeline};
pub use registry::{
    computed_metrics, default_metrics, metric_info, reads_unconditional, MetricInfo, METRICS,
};
pub use stderr::{stderr, stderr_method, StderrMethod};
