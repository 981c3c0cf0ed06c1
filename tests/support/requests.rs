//! Comparing assay's requests with lm-eval's: JSON lines sorted by (task,
//! doc_id, idx), numbers compared by value.

#![allow(dead_code)]

use serde_json::Value;

/// Numbers compare by value (lm-eval writes `0.0` where assay may write `0`).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Requests as JSON lines, sorted by (task, doc_id, idx).
pub fn sorted(lines: &str) -> Vec<Value> {
    let mut v: Vec<Value> = lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    v.sort_by_key(|r| {
        (
            r["task"].as_str().unwrap_or("").to_string(),
            r["doc_id"].as_u64(),
            r["idx"].as_u64(),
        )
    });
    v
}

/// The first way assay's requests differ from lm-eval's (both sorted), if
/// they do, worded for a failure list.
pub fn difference(name: &str, ours: &[Value], theirs: &[Value]) -> Option<String> {
    if ours.len() != theirs.len() {
        return Some(format!(
            "{name}: {} requests, lm-eval sent {}",
            ours.len(),
            theirs.len()
        ));
    }
    ours.iter()
        .zip(theirs)
        .find(|(a, b)| !same(a, b))
        .map(|(a, b)| format!("{name}: first difference\n  assay:   {a}\n  lm-eval: {b}"))
}
