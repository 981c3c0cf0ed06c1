//! BIG-bench `task.json` files: what a file says about itself ([`Header`])
//! and its examples as documents ([`read`]).
//!
//! BIG-bench formats an example when it loads the task, before any prompt
//! is built (`default_format_fn` in bigbench/api/json_task.py), and so does
//! this source: each document carries the formatted input next to the raw
//! fields, so that a task config can use it as a column and the prompt layer
//! stays BIG-bench agnostic. A document has
//!
//! - `idx`: the example's position among the distinct examples,
//! - `input`: the example's input as written,
//! - `formatted_input`: `example_input_prefix + input [+ choice_prefix +
//!   choices] + example_output_prefix`, the choices listed in the order
//!   BIG-bench lists them (sorted, then permuted by `RandomState(42)`),
//! - `choices` and `target_scores`: the keys and values of the example's
//!   `target_scores`, in file order (the order BIG-bench scores them in),
//! - `targets`: the acceptable targets (`target` as a list, or the first
//!   choice with the highest score),
//! - `task_prefix`, when the task has one, so a config can name it as the
//!   description without passing it through Jinja.
//!
//! Duplicate examples are dropped as BIG-bench drops them (by their JSON
//! text). Reading the header skips over the examples' contents, so deciding
//! what kind of task a large file holds stays cheap.

use std::path::Path;

use std::collections::HashMap;
use std::fmt;

use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::Doc;
use crate::python::random::NpRandomState;

/// `random_seed` of BIG-bench's `JsonTask`: it formats choices and draws
/// few-shot examples with `np.random.RandomState(42)` unless told otherwise.
pub const BIG_BENCH_SEED: u32 = 42;

/// The metrics BIG-bench scores by comparing generated text with `target`
/// (`GENERATIVE_METRICS` in json_task.py).
pub const GENERATIVE_METRICS: &[&str] = &[
    "bleu",
    "bleurt",
    "exact_str_match",
    "case_insensitive_str_match",
    "sequence_f1",
    "numeric_match_with_0_1_relative_error",
    "rouge",
];

/// The metrics BIG-bench scores from the log-probabilities of the choices
/// in `target_scores` (`MULTIPLE_CHOICE_METRICS`).
pub const MULTIPLE_CHOICE_METRICS: &[&str] = &[
    "multiple_choice_grade",
    "calibration_multiple_choice_brier_score",
    "expected_calibration_error",
    "weighted_log_probabilities",
    "weighted_probabilities",
    "macro_f1",
];

/// Which answer fields one example has (`key in example`, as json_task.py
/// asks); their contents are skipped.
#[derive(Debug, Default)]
struct ExampleFields {
    input: bool,
    target: bool,
    target_scores: bool,
}

impl<'de> Deserialize<'de> for ExampleFields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = ExampleFields;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an example object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExampleFields, A::Error> {
                let mut fields = ExampleFields::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "input" => fields.input = true,
                        "target" => fields.target = true,
                        "target_scores" => fields.target_scores = true,
                        _ => {}
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

/// A `task.json` read shallowly: the task-level fields as values (a repeated
/// key keeps its last value, as Python's `json` does) and, if present, which
/// answer fields each example has.
struct Shallow {
    fields: Map<String, Value>,
    examples: Option<Vec<ExampleFields>>,
}

impl<'de> Deserialize<'de> for Shallow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> Visitor<'de> for Top {
            type Value = Shallow;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shallow, A::Error> {
                let mut shallow = Shallow {
                    fields: Map::new(),
                    examples: None,
                };
                while let Some(key) = map.next_key::<String>()? {
                    if key == "examples" {
                        shallow.examples = Some(map.next_value()?);
                    } else {
                        shallow.fields.insert(key, map.next_value()?);
                    }
                }
                Ok(shallow)
            }
        }
        deserializer.deserialize_map(Top)
    }
}

/// The task-level fields of a `task.json`, with json_task.py's defaults.
#[derive(Debug, Deserialize)]
pub struct Header {
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub metrics: Vec<String>,
    pub preferred_score: Option<String>,
    #[serde(default)]
    pub task_prefix: String,
    #[serde(default = "default_input_prefix")]
    pub example_input_prefix: String,
    #[serde(default = "default_output_prefix")]
    pub example_output_prefix: String,
    #[serde(default = "default_choice_prefix")]
    pub choice_prefix: String,
    /// Truthiness as Python's: several real tasks write `"false"`, a
    /// non-empty string, so BIG-bench appends their choices anyway.
    #[serde(default = "default_true", deserialize_with = "python_truth")]
    pub append_choices_to_input: bool,
    #[serde(default = "default_separator")]
    pub few_shot_example_separator: String,
    pub output_regex: Option<String>,
    pub stop_string: Option<String>,
    #[serde(default, deserialize_with = "python_truth")]
    pub absolute_normalization: bool,
    #[serde(skip)]
    examples: Option<Vec<ExampleFields>>,
}

fn default_input_prefix() -> String {
    "\nQ: ".into()
}
fn default_output_prefix() -> String {
    "\nA: ".into()
}
fn default_choice_prefix() -> String {
    "\n  choice: ".into()
}
fn default_separator() -> String {
    "\n".into()
}
fn default_true() -> bool {
    true
}

/// `bool(value)` in Python, for flags json_task.py only tests with `if`.
fn python_truth<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Null => false,
        Value::Bool(b) => b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(m) => !m.is_empty(),
    })
}

/// Which answers a task's examples lack: the first example without
/// `target_scores` (so not multiple choice) and without `target` (so not
/// generation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answers {
    pub without_target_scores: Option<usize>,
    pub without_target: Option<usize>,
}

impl Header {
    /// Reads the task-level fields of the file at `path`.
    pub fn read(path: &Path) -> Result<Header, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
        let shallow: Shallow =
            serde_json::from_slice(&bytes).map_err(|e| format!("invalid task.json: {e}"))?;
        Header::from_shallow(shallow)
    }

    fn from_shallow(shallow: Shallow) -> Result<Header, String> {
        let mut header = Header::deserialize(Value::Object(shallow.fields))
            .map_err(|e| format!("invalid task.json: {e}"))?;
        header.examples = shallow.examples;
        Ok(header)
    }

    /// Whether the file lists examples (a task) or leaves them to subfolders
    /// (a task with subtasks).
    pub fn has_examples(&self) -> bool {
        self.examples.is_some()
    }

    /// Checks that every example has an input and something to score it
    /// against, as json_task.py does, and says which answers some lack.
    pub fn answers(&self) -> Result<Answers, String> {
        let examples = self.examples.as_deref().ok_or(
            "has no `examples` list (a task with subtasks keeps them in subfolders, each with its own task.json)",
        )?;
        if examples.is_empty() {
            return Err("`examples` is empty".into());
        }
        let mut answers = Answers {
            without_target_scores: None,
            without_target: None,
        };
        for (i, e) in examples.iter().enumerate() {
            if !e.input {
                return Err(format!("examples[{i}] has no `input`"));
            }
            if !e.target && !e.target_scores {
                return Err(format!(
                    "examples[{i}] has neither `target` nor `target_scores`"
                ));
            }
            if !e.target {
                answers.without_target.get_or_insert(i);
            }
            if !e.target_scores {
                answers.without_target_scores.get_or_insert(i);
            }
        }
        Ok(answers)
    }
}

/// The documents of a `task.json` file's bytes, formatted as BIG-bench
/// formats them.
pub fn read(bytes: &[u8]) -> Result<Vec<Doc>, String> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid task.json: {e}"))?;
    let header = Header::from_shallow(
        Shallow::deserialize(&value).map_err(|e| format!("invalid task.json: {e}"))?,
    )?;
    header.answers()?;
    let Some(Value::Array(examples)) = value.get("examples") else {
        unreachable!("answers() checked that there are examples");
    };
    let mut seen = std::collections::HashSet::new();
    // A fresh RandomState(42) per example permutes n choices the same way
    // every time, so each permutation is drawn once.
    let mut orders = HashMap::new();
    let mut docs = Vec::with_capacity(examples.len());
    for (i, example) in examples.iter().enumerate() {
        // json_task.py keeps the first of examples whose `json.dumps` agree.
        if !seen.insert(example.to_string()) {
            continue;
        }
        let doc = format_example(example, &header, docs.len(), &mut orders)
            .map_err(|m| format!("examples[{i}]: {m}"))?;
        docs.push(doc);
    }
    Ok(docs)
}

/// One example as `default_format_fn` leaves it.
fn format_example(
    example: &Value,
    header: &Header,
    idx: usize,
    orders: &mut HashMap<usize, Vec<usize>>,
) -> Result<Doc, String> {
    let Value::Object(example) = example else {
        return Err("is not a JSON object".into());
    };
    let input = match example.get("input") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err("`input` must be a string".into()),
    };
    let mut shown = input.clone();
    let mut doc = Map::new();
    doc.insert("idx".into(), Value::from(idx));
    doc.insert("input".into(), Value::String(input));
    let mut targets = match example.get("target") {
        None => None,
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|t| t.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or("`target` must be a string or a list of strings")?,
        ),
        Some(_) => return Err("`target` must be a string or a list of strings".into()),
    };
    if let Some(scores) = example.get("target_scores") {
        let Value::Object(scores) = scores else {
            return Err("`target_scores` must map each choice to a number".into());
        };
        let choices: Vec<String> = scores.keys().cloned().collect();
        let values: Vec<f64> = scores
            .values()
            .map(Value::as_f64)
            .collect::<Option<_>>()
            .ok_or("`target_scores` must map each choice to a number")?;
        if choices.is_empty() {
            return Err("`target_scores` is empty".into());
        }
        if header.append_choices_to_input {
            let mut sorted = choices.clone();
            sorted.sort();
            let order = orders
                .entry(sorted.len())
                .or_insert_with(|| NpRandomState::new(BIG_BENCH_SEED).permutation(sorted.len()));
            for &i in order.iter() {
                shown.push_str(&header.choice_prefix);
                shown.push_str(&sorted[i]);
            }
        }
        if targets.is_none() {
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            if (values.len() == 1 && max == 0.0) || (values.len() > 1 && max <= min) {
                return Err(
                    "no correct choice: one choice of `target_scores` must score higher than the others"
                        .into(),
                );
            }
            let best = values.iter().position(|v| *v == max).unwrap_or(0);
            targets = Some(vec![choices[best].clone()]);
        }
        doc.insert("choices".into(), Value::from(choices));
        doc.insert(
            "target_scores".into(),
            Value::Array(scores.values().cloned().collect()),
        );
    }
    let formatted = format!(
        "{}{shown}{}",
        header.example_input_prefix, header.example_output_prefix
    );
    doc.insert("formatted_input".into(), Value::String(formatted));
    doc.insert(
        "targets".into(),
        Value::from(targets.ok_or("has neither `target` nor `target_scores`")?),
    );
    if !header.task_prefix.is_empty() {
        doc.insert(
            "task_prefix".into(),
            Value::String(header.task_prefix.clone()),
        );
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn docs(task: Value) -> Result<Vec<Doc>, String> {
        read(task.to_string().as_bytes())
    }

    /// Expected text from json_task.default_format_fn: choices are sorted
    /// (["a", "b", "c", "d"]) and permuted by RandomState(42).permutation(4)
    /// = [1, 3, 0, 2].
    #[test]
    fn formats_like_default_format_fn() {
        let d = docs(json!({"examples": [
            {"input": "Pick.", "target_scores": {"d": 0, "c": 0.5, "b": 1, "a": 0}}
        ]}))
        .unwrap();
        assert_eq!(
            d[0]["formatted_input"],
            "\nQ: Pick.\n  choice: b\n  choice: d\n  choice: a\n  choice: c\nA: "
        );
        assert_eq!(d[0]["choices"], json!(["d", "c", "b", "a"]));
        assert_eq!(d[0]["target_scores"], json!([0, 0.5, 1, 0]));
        assert_eq!(d[0]["targets"], json!(["b"]));
    }

    #[test]
    fn prefixes_targets_and_duplicates_follow_the_task() {
        let d = docs(json!({
            "example_input_prefix": "In: ", "example_output_prefix": " Out:",
            "append_choices_to_input": false, "task_prefix": "Solve.\n",
            "examples": [
                {"input": "1+1", "target": ["2", "two"]},
                {"input": "1+1", "target": ["2", "two"]},
                {"input": "x", "target": "y", "target_scores": {"y": 1, "z": 1}}
            ]
        }))
        .unwrap();
        assert_eq!(d.len(), 2, "the duplicate example is dropped");
        assert_eq!(d[0]["formatted_input"], "In: 1+1 Out:");
        assert_eq!(d[0]["targets"], json!(["2", "two"]));
        assert_eq!(d[0]["task_prefix"], "Solve.\n");
        assert_eq!(d[1]["idx"], 1);
        assert_eq!(d[1]["formatted_input"], "In: x Out:");
        assert_eq!(d[1]["targets"], json!(["y"]), "a given target wins");
        // As in Python, the string "false" is true.
        let d = docs(json!({"append_choices_to_input": "false", "examples": [
            {"input": "x", "target_scores": {"y": 1, "z": 0}}
        ]}))
        .unwrap();
        assert_eq!(
            d[0]["formatted_input"],
            "\nQ: x\n  choice: z\n  choice: y\nA: "
        );
    }

    #[test]
    fn bad_examples_are_named() {
        let err = |task: Value| docs(task).unwrap_err();
        assert!(err(json!({"name": "t"})).contains("no `examples`"));
        let e = err(json!({"examples": [{"input": "a", "target": "b"}, {"target": "b"}]}));
        assert!(e.contains("examples[1] has no `input`"), "{e}");
        let e = err(json!({"examples": [{"input": "a"}]}));
        assert!(e.contains("neither `target` nor `target_scores`"), "{e}");
        let e = err(json!({"examples": [{"input": "a", "target_scores": {"x": 0, "y": 0}}]}));
        assert!(e.contains("examples[0]: no correct choice"), "{e}");
        let e = err(json!({"examples": [{"input": 3, "target": "b"}]}));
        assert!(e.contains("`input` must be a string"), "{e}");
    }

    /// Python's `json` keeps the last of repeated keys (a real task repeats
    /// `append_choices_to_input`).
    #[test]
    fn repeated_keys_keep_the_last_value() {
        let text = r#"{"append_choices_to_input": true, "append_choices_to_input": false,
            "examples": [{"input": "a", "input": "b", "target_scores": {"y": 1, "z": 0}}]}"#;
        let d = read(text.as_bytes()).unwrap();
        assert_eq!(d[0]["formatted_input"], "\nQ: b\nA: ");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task.json");
        std::fs::write(&path, text).unwrap();
        let header = Header::read(&path).unwrap();
        assert!(!header.append_choices_to_input);
        assert_eq!(header.answers().unwrap().without_target, Some(0));
    }
}
