//! Selection filters: choosing among a document's repeated responses
//! (`take_first`, `take_first_k`, `majority_vote`), as in
//! lm_eval/filters/selection.py.
//!
//! `take_first` is what every task without a `filter_list` ends with, and what
//! most pipelines end with; its result per document is a single string.

use std::collections::HashMap;

use super::DocResponses;
use crate::metric::MetricError;

/// `r[0]`: the first response, or the first character of a single string.
pub(super) fn take_first(responses: Vec<DocResponses>) -> Result<Vec<DocResponses>, MetricError> {
    responses
        .into_iter()
        .enumerate()
        .map(|(doc, rs)| {
            rs.items()
                .into_iter()
                .next()
                .map(DocResponses::Single)
                .ok_or(MetricError::NoResponses {
                    filter: "take_first",
                    doc,
                })
        })
        .collect()
}

/// `r[:k]` for every document, after lm-eval's check that the first
/// document has at least `k` responses (only the first is checked). A single
/// string is sliced by characters and stays a single string.
pub(super) fn take_first_k(
    responses: Vec<DocResponses>,
    k: i64,
) -> Result<Vec<DocResponses>, MetricError> {
    let count = |rs: &DocResponses| match rs {
        DocResponses::List(items) => items.len(),
        DocResponses::Single(s) => s.chars().count(),
    };
    if let Some(first) = responses.first() {
        if (count(first) as i64) < k {
            return Err(MetricError::TooFewResponses {
                k,
                found: count(first),
            });
        }
    }
    Ok(responses
        .into_iter()
        .map(|rs| {
            let keep = python_prefix_len(count(&rs), k);
            match rs {
                DocResponses::List(mut items) => {
                    items.truncate(keep);
                    DocResponses::List(items)
                }
                DocResponses::Single(s) => DocResponses::Single(s.chars().take(keep).collect()),
            }
        })
        .collect())
}

/// How many items `xs[:k]` keeps of `len`, negative `k` counting from the end.
fn python_prefix_len(len: usize, k: i64) -> usize {
    if k >= 0 {
        len.min(k as usize)
    } else {
        len.saturating_sub(k.unsigned_abs() as usize)
    }
}

/// `[Counter(r).most_common(1)[0][0]]`: the most frequent response; among
/// equally frequent ones, the one seen first.
pub(super) fn majority_vote(
    responses: Vec<DocResponses>,
) -> Result<Vec<DocResponses>, MetricError> {
    responses
        .into_iter()
        .enumerate()
        .map(|(doc, rs)| {
            let items = rs.items();
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for item in &items {
                *counts.entry(item).or_default() += 1;
            }
            // Strictly greater, scanning in order of first appearance, keeps
            // the earliest of the tied maxima, as max() over a Counter does.
            let mut best: Option<(&str, usize)> = None;
            for item in &items {
                let n = counts[item.as_str()];
                if best.is_none_or(|(_, m)| n > m) {
                    best = Some((item, n));
                }
            }
            best.map(|(vote, _)| DocResponses::List(vec![vote.to_string()]))
                .ok_or(MetricError::NoResponses {
                    filter: "majority_vote",
                    doc,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(xs: &[&[&str]]) -> Vec<DocResponses> {
        xs.iter()
            .map(|rs| DocResponses::List(rs.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    /// Expected values from lm_eval.filters.selection.MajorityVoteFilter.
    #[test]
    fn majority_vote_breaks_ties_by_first_seen() {
        let voted = majority_vote(lists(&[
            &["7", "8", "8", "7"],
            &["b", "a", "a", "b", "c", "c"],
            &["x"],
            &["1", "2", "2", "3", "3", "3"],
        ]))
        .unwrap();
        assert_eq!(voted, lists(&[&["7"], &["b"], &["x"], &["3"]]));
    }

    #[test]
    fn majority_vote_of_nothing_is_an_error() {
        assert!(majority_vote(lists(&[&["a"], &[]])).is_err());
    }

    #[test]
    fn take_first_k_slices_like_python_and_checks_only_the_first_document() {
        let taken = take_first_k(lists(&[&["a", "b", "c"], &["d"]]), 2).unwrap();
        assert_eq!(taken, lists(&[&["a", "b"], &["d"]]));
        let err = take_first_k(lists(&[&["a"], &["b", "c"]]), 2).unwrap_err();
        assert!(err.to_string().contains("at least 2"), "{err}");
        let negative = take_first_k(lists(&[&["a", "b", "c"]]), -1).unwrap();
        assert_eq!(negative, lists(&[&["a", "b"]]));
    }

    #[test]
    fn take_first_leaves_one_string() {
        let taken = take_first(lists(&[&["a", "b"], &["c"]])).unwrap();
        assert_eq!(
            taken,
            vec![
                DocResponses::Single("a".into()),
                DocResponses::Single("c".into())
            ]
        );
        assert!(take_first(lists(&[&[]])).is_err());
    }
}
