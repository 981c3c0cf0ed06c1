//! The errors of the metric module: bad metric or filter configuration, and
//! per-document values that an aggregation cannot use.
//!
//! Configuration errors name the metric, filter or kwarg at fault so a task
//! author can fix the YAML; value errors name the aggregation and what it
//! expected, since they usually mean a metric was paired with the wrong
//! aggregation.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum MetricError {
    /// A metric lacks what it reads (a column, the unconditional
    /// log-likelihoods).
    #[error("{0}")]
    MissingInput(String),

    #[error("unknown aggregation `{name}`; known aggregations: {known}")]
    UnknownAggregation { name: String, known: String },

    #[error("aggregation `{name}` is not supported by assay: {reason}")]
    UnsupportedAggregation { name: String, reason: &'static str },

    #[error("aggregation `{aggregation}` got no per-document values; at least one document must be scored")]
    NoItems { aggregation: &'static str },

    #[error("aggregation `{aggregation}` needs {expected} per document, but got {found}; is the metric paired with the right aggregation?")]
    WrongItemKind {
        aggregation: &'static str,
        expected: &'static str,
        found: &'static str,
    },

    #[error("aggregation `{aggregation}` divides by the total word or byte count, which is zero: every scored document has an empty target")]
    ZeroTotalWeight { aggregation: &'static str },

    #[error("aggregation `f1` scores binary labels with positive label 1 (sklearn's f1_score with average='binary'), but the golds and predictions hold the labels {labels:?}; use `mcc` or a mean metric for multi-class tasks")]
    F1NotBinary { labels: Vec<i64> },

    #[error("aggregation `brier_score` needs every document to have the same number of choice probabilities; found {first} and {other}")]
    RaggedProbabilities { first: usize, other: usize },

    #[error("aggregation `brier_score`: gold index {gold} is out of range for {choices} choices (the gold label was not found among the choices)")]
    GoldOutOfRange { gold: i64, choices: usize },

    #[error("unknown filter function `{name}`; known filters: {known}")]
    UnknownFilter { name: String, known: String },

    #[error("filter function `{name}` is not supported by assay: {reason}")]
    UnsupportedFilter { name: String, reason: &'static str },

    #[error("{owner} does not take the argument `{key}`; it takes: {allowed}")]
    UnknownKwarg {
        owner: String,
        key: String,
        allowed: String,
    },

    #[error("{owner} needs the argument `{key}`")]
    MissingKwarg { owner: String, key: &'static str },

    #[error("{owner}: argument `{key}` must be {expected}, got {found}")]
    BadKwarg {
        owner: String,
        key: String,
        expected: &'static str,
        found: String,
    },

    #[error("invalid regular expression {pattern:?}: {reason}")]
    InvalidRegex { pattern: String, reason: String },

    #[error(transparent)]
    Regex(#[from] crate::python::re::RegexError),

    #[error("filter `{filter}`: group_select {group_select} is out of range, the pattern matched only {matches} time(s) in the response {response:?} (lm-eval raises IndexError here too)")]
    GroupSelectOutOfRange {
        filter: &'static str,
        group_select: i64,
        matches: usize,
        response: String,
    },

    #[error("filter `{filter}` found no response for document {doc}; every document needs at least one response")]
    NoResponses { filter: &'static str, doc: usize },

    #[error("filter `take_first_k` needs at least {k} responses per document to take the first {k}, but the first document has {found}; increase the task's `repeats`")]
    TooFewResponses { k: i64, found: usize },

    #[error("filter `multi_choice_regex` needs the document's `choices` field as a list of strings, document {doc} {problem}")]
    MissingChoices { doc: usize, problem: String },

    #[error("filter `multi_choice_regex` needs one document per response list, got {docs} documents for {responses} response lists")]
    DocCountMismatch { docs: usize, responses: usize },

    #[error("multiple_choice_grade: {log_probs} log-probabilities but {target_scores} target scores; each choice needs both")]
    ChoiceCountMismatch {
        log_probs: usize,
        target_scores: usize,
    },

    #[error("multiple_choice_grade: the log-probabilities {log_probs:?} have no maximum (empty, or NaN)")]
    NoMaximum { log_probs: Vec<f64> },
}
