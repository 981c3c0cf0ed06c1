//! BIG-bench as lm-eval reads it from the Hub (`bigbench/utils.py`): only
//! documents with multiple-choice targets.

use serde_json::Value;

use super::{Native, Port};
use crate::data::Doc;

pub const PORTS: &[Port] = &[Port {
    canonical: "bigbench.filter_multiple_choice",
    function: "filter_multiple_choice",
    file: "bigbench/utils.py",
    helpers: &[],
    fingerprints: &["0da5ad2165e2c22d"],
    native: Native::Docs(filter_multiple_choice),
    metrics: &[],
}];

fn filter_multiple_choice(docs: Vec<Doc>) -> Result<Vec<Doc>, String> {
    Ok(docs
        .into_iter()
        .filter(|d| {
            d.get("multiple_choice_targets")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        })
        .collect())
}
