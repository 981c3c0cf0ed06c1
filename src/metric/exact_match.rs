//! lm-eval's `exact_match` generation metric (`exact_match_hf_evaluate`, a
//! port of Hugging Face evaluate's), with its task-config options.
//!
//! Both the prediction and each reference are normalised in a fixed order:
//! every `regexes_to_ignore` pattern removed (case-sensitively, before any
//! lowercasing), then `ignore_case`, then ASCII punctuation, then ASCII digits.
//! lm-eval runs this on numpy string arrays, which leaves two traces kept
//! here: lowercasing cannot make a string longer than the longest string of
//! its array (`İ` lowercases to `i`), and trailing NUL characters do not count.

use serde_json::{Map, Value};

use super::MetricError;
use crate::python::re::PyRegex;

/// `string.punctuation`.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// The metric-config keys lm-eval keeps for itself rather than passing to the
/// metric function.
const RESERVED: [&str; 4] = ["metric", "aggregation", "higher_is_better", "hf_evaluate"];
const OPTIONS: [&str; 4] = [
    "regexes_to_ignore",
    "ignore_case",
    "ignore_punctuation",
    "ignore_numbers",
];

/// The keyword arguments of lm-eval's `exact_match`.
#[derive(Debug, Clone, Default)]
pub struct ExactMatchOptions {
    /// `None` when not given; an empty list is not the same (see
    /// [`exact_match`]).
    regexes_to_ignore: Option<Vec<PyRegex>>,
    pub ignore_case: bool,
    pub ignore_punctuation: bool,
    pub ignore_numbers: bool,
}

impl ExactMatchOptions {
    /// Reads a `metric_list` entry's keyword arguments. The keys lm-eval
    /// reserves (`metric`, `aggregation`, `higher_is_better`, `hf_evaluate`)
    /// are skipped; any other unknown key is an error, as it is a TypeError in
    /// lm-eval.
    pub fn from_kwargs(kwargs: &Map<String, Value>) -> Result<ExactMatchOptions, MetricError> {
        let mut options = ExactMatchOptions::default();
        for (key, value) in kwargs {
            match key.as_str() {
                "regexes_to_ignore" => {
                    options.regexes_to_ignore = match regex_list(value)? {
                        None => None,
                        Some(patterns) => Some(
                            patterns
                                .iter()
                                .map(|p| PyRegex::new(p))
                                .collect::<Result<_, _>>()?,
                        ),
                    }
                }
                "ignore_case" => options.ignore_case = flag(key, value)?,
                "ignore_punctuation" => options.ignore_punctuation = flag(key, value)?,
                "ignore_numbers" => options.ignore_numbers = flag(key, value)?,
                k if RESERVED.contains(&k) => {}
                _ => {
                    return Err(MetricError::UnknownKwarg {
                        owner: "metric `exact_match`".to_string(),
                        key: key.clone(),
                        allowed: OPTIONS.join(", "),
                    })
                }
            }
        }
        Ok(options)
    }
}

/// `regexes_to_ignore`: a list of patterns, or null. A bare string is what
/// lm-eval iterates character by character, each character a pattern, so it
/// is read that way here too.
fn regex_list(value: &Value) -> Result<Option<Vec<String>>, MetricError> {
    let bad = |found: &Value| MetricError::BadKwarg {
        owner: "metric `exact_match`".to_string(),
        key: "regexes_to_ignore".to_string(),
        expected: "a list of regular expressions",
        found: found.to_string(),
    };
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.chars().map(String::from).collect())),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string).ok_or_else(|| bad(item)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        other => Err(bad(other)),
    }
}

/// A boolean option; null and integers read as Python's truthiness would.
fn flag(key: &str, value: &Value) -> Result<bool, MetricError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64() != Some(0)),
        other => Err(MetricError::BadKwarg {
            owner: "metric `exact_match`".to_string(),
            key: key.to_string(),
            expected: "true or false",
            found: other.to_string(),
        }),
    }
}

/// lm-eval's per-document exact_match: 1.0 if the prediction equals any
/// reference after normalisation, else 0.0. With one reference this is
/// `exact_match_hf_evaluate(references=[gold], predictions=[pred])`; with
/// several it is lm-eval's multiple-target rule (score > 0 over the repeated
/// prediction).
///
/// One lm-eval quirk is kept: with `regexes_to_ignore: []` and no other
/// option, Python compares the two lists as a whole, so the score is 1.0 only
/// when the prediction equals every reference.
pub fn exact_match(
    references: &[String],
    prediction: &str,
    options: &ExactMatchOptions,
) -> Result<f64, MetricError> {
    let mut predictions = vec![prediction.to_string(); references.len()];
    let mut references = references.to_vec();
    for regex in options.regexes_to_ignore.iter().flatten() {
        for s in predictions.iter_mut().chain(references.iter_mut()) {
            *s = regex.remove_all(s)?;
        }
    }
    let plain_lists = options
        .regexes_to_ignore
        .as_ref()
        .is_some_and(Vec::is_empty)
        && !options.ignore_case
        && !options.ignore_punctuation
        && !options.ignore_numbers;
    if plain_lists {
        let all_equal = references.iter().all(|r| *r == prediction);
        return Ok(if all_equal { 1.0 } else { 0.0 });
    }
    if options.ignore_case {
        lowercase_array(&mut predictions);
        lowercase_array(&mut references);
    }
    for s in predictions.iter_mut().chain(references.iter_mut()) {
        if options.ignore_punctuation {
            s.retain(|c| !PUNCTUATION.contains(c));
        }
        if options.ignore_numbers {
            s.retain(|c| !c.is_ascii_digit());
        }
    }
    let unpadded = |s: &str| s.trim_end_matches('\0').to_string();
    let hit = predictions
        .iter()
        .zip(&references)
        .any(|(p, r)| unpadded(p) == unpadded(r));
    Ok(if hit { 1.0 } else { 0.0 })
}

/// `np.char.lower` on an array: Python's `str.lower` of each string, cut to
/// the array's width (its longest string, in characters).
fn lowercase_array(strings: &mut [String]) {
    let width = strings.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    for s in strings {
        *s = s.to_lowercase().chars().take(width).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options(kwargs: Value) -> ExactMatchOptions {
        ExactMatchOptions::from_kwargs(kwargs.as_object().unwrap()).unwrap()
    }

    fn em(references: &[&str], prediction: &str, kwargs: Value) -> f64 {
        let references: Vec<String> = references.iter().map(|s| s.to_string()).collect();
        exact_match(&references, prediction, &options(kwargs)).unwrap()
    }

    /// Expected values from lm_eval.api.metrics.exact_match_hf_evaluate with
    /// references=[gold], predictions=[prediction].
    #[test]
    fn single_reference_matches_lm_eval() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, Value, f64)] = &[
            ("Paris", "Paris", json!({}), 1.0),
            ("Paris", "paris", json!({}), 0.0),
            ("Paris", "paris", json!({"ignore_case": true}), 1.0),
            ("Paris", " Paris", json!({}), 0.0),
            ("Paris", "Paris ", json!({}), 0.0),
            ("Hello, world!", "hello world", json!({"ignore_case": true}), 0.0),
            ("Hello, world!", "hello world", json!({"ignore_case": true, "ignore_punctuation": true}), 1.0),
            ("Hello, world!", "Hello world", json!({"ignore_punctuation": true}), 1.0),
            ("a-b_c", "abc", json!({"ignore_punctuation": true}), 1.0),
            ("“quoted”", "quoted", json!({"ignore_punctuation": true}), 0.0),
            ("Answer 42", "Answer ", json!({"ignore_numbers": true}), 1.0),
            ("Answer 42", "Answer", json!({"ignore_numbers": true}), 0.0),
            ("٤٢ apples", " apples", json!({"ignore_numbers": true}), 0.0),
            ("The answer is 42.", "42", json!({"regexes_to_ignore": ["The answer is ", "\\."]}), 1.0),
            ("the answer is 42.", "42", json!({"regexes_to_ignore": ["The answer is ", "\\."], "ignore_case": true}), 0.0),
            ("1,234", "1234", json!({"regexes_to_ignore": [","]}), 1.0),
            ("$1,234.00", "1234", json!({"regexes_to_ignore": ["\\$", ",", "\\.00$"]}), 1.0),
            ("  yes \n", "yes", json!({"regexes_to_ignore": ["^\\s+", "\\s+$"]}), 1.0),
            ("A.B", "ab", json!({"regexes_to_ignore": ["\\."], "ignore_case": true, "ignore_punctuation": true, "ignore_numbers": true}), 1.0),
            ("X1.", "x", json!({"ignore_case": true, "ignore_punctuation": true, "ignore_numbers": true}), 1.0),
            ("İ", "i", json!({"ignore_case": true}), 1.0),
            ("İ", "i̇", json!({"ignore_case": true}), 0.0),
            ("ΟΔΟΣ", "οδος", json!({"ignore_case": true}), 1.0),
            ("Straße", "STRASSE", json!({"ignore_case": true}), 0.0),
            ("a\u{0}", "a", json!({}), 1.0),
            ("a\u{0}", "a", json!({"ignore_case": true}), 1.0),
            ("abc", "abc", json!({"regexes_to_ignore": []}), 1.0),
            ("abc", "ABC", json!({"regexes_to_ignore": [], "ignore_case": true}), 1.0),
            ("a.b", "ab", json!({"regexes_to_ignore": "."}), 1.0),
        ];
        for (gold, prediction, kwargs, expected) in cases {
            assert_eq!(
                em(&[gold], prediction, kwargs.clone()),
                *expected,
                "gold {gold:?}, prediction {prediction:?}, {kwargs}"
            );
        }
    }

    /// lm-eval's multiple-target rule: 1.0 when any reference matches.
    #[test]
    fn several_references_match_any() {
        assert_eq!(
            em(
                &["Paris", "paris, France"],
                "paris",
                json!({"ignore_case": true})
            ),
            1.0
        );
        assert_eq!(em(&["Rome", "Lyon"], "Paris", json!({})), 0.0);
        assert_eq!(em(&[], "Paris", json!({})), 0.0);
        // The reference array is as wide as its longest string, so "İ" keeps
        // its combining dot there and no longer equals "i".
        assert_eq!(em(&["İ", "xy"], "i", json!({"ignore_case": true})), 0.0);
        // `regexes_to_ignore: []` compares whole lists in lm-eval.
        assert_eq!(em(&["a", "b"], "a", json!({"regexes_to_ignore": []})), 0.0);
        assert_eq!(em(&["a", "a"], "a", json!({"regexes_to_ignore": []})), 1.0);
    }

    #[test]
    fn options_reject_unknown_keys_and_bad_values() {
        let err =
            ExactMatchOptions::from_kwargs(json!({"ignore_cases": true}).as_object().unwrap())
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("`ignore_cases`") && err.contains("ignore_case"),
            "{err}"
        );
        let err =
            ExactMatchOptions::from_kwargs(json!({"ignore_case": "yes"}).as_object().unwrap())
                .unwrap_err()
                .to_string();
        assert!(err.contains("`ignore_case`"), "{err}");
        let err = ExactMatchOptions::from_kwargs(
            json!({"regexes_to_ignore": ["("]}).as_object().unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("\"(\""), "{err}");
        let reserved =
            json!({"metric": "exact_match", "aggregation": "mean", "higher_is_better": true});
        assert!(ExactMatchOptions::from_kwargs(reserved.as_object().unwrap()).is_ok());
    }
}
