//! Filters: lm-eval's post-processing of generated text before it is scored
//! (a task's `filter_list`), as named pipelines of steps.
//!
//! Each step works on every document's list of responses at once, as in
//! lm-eval, because `repeats` gives a document several responses and steps
//! like `majority_vote` choose among them. The steps are a closed set chosen
//! by name in [`Filter::from_config`]; their code lives by lm-eval's file
//! layout: `extraction` (regex, multi_choice_regex, remove_whitespace),
//! `selection` (take_first, take_first_k, majority_vote) and `transformation`
//! (lowercase, uppercase, map). One step is assay's own: `bigbench_postprocess`
//! (in `bigbench`), BIG-bench's post-processing for `task.json` tasks.

mod bigbench;
mod extraction;
mod selection;
mod transformation;

use std::sync::Arc;

use serde_json::{Map, Value};

use super::MetricError;
pub use bigbench::PostprocessFilter;
pub use extraction::{MultiChoiceRegexFilter, RegexFilter};
pub use transformation::MapFilter;

/// One step of a filter pipeline.
#[derive(Debug, Clone)]
pub enum Filter {
    /// `regex`: the `group_select`-th `re.findall` match of each response.
    Regex(RegexFilter),
    /// `multi_choice_regex`: `regex`, falling back to finding a choice's text
    /// or a bare letter; reads each document's `choices`.
    MultiChoiceRegex(MultiChoiceRegexFilter),
    /// `remove_whitespace`: `str.strip()` of each response (both ends).
    RemoveWhitespace,
    /// `take_first`: the first response of each document.
    TakeFirst,
    /// `take_first_k`: the first `k` responses (a Python slice `[:k]`).
    TakeFirstK { k: i64 },
    /// `majority_vote`: the most common response, the first seen on a tie.
    MajorityVote,
    /// `lowercase`: `str.lower()` of each response.
    Lowercase,
    /// `uppercase`: `str.upper()` of each response.
    Uppercase,
    /// `map`: each response looked up in `mapping_dict`.
    Map(MapFilter),
    /// `bigbench_postprocess`: BIG-bench's `stop_string` and `output_regex`.
    BigBenchPostprocess(PostprocessFilter),
    /// A filter class a task defines in Python (`--python-hooks`).
    External(Arc<dyn ExternalFilter>),
}

/// A filter step computed outside assay: every document's responses in (a
/// list of texts, or the one text `take_first` left), the same shapes out.
pub trait ExternalFilter: std::fmt::Debug + Send + Sync {
    fn apply(&self, responses: Vec<Value>, docs: &[Value]) -> Result<Vec<Value>, String>;
}

/// Filter functions lm-eval registers that assay does not run, and why.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("custom", "it calls a Python function"),
    (
        "regex_pos",
        "it produces lists of part-of-speech tags, not text",
    ),
    ("format_span", "it is specific to lm-eval's NER task code"),
    ("decontaminate", "lm-eval's own implementation is a stub"),
];

const KNOWN: &[&str] = &[
    "regex",
    "multi_choice_regex",
    "remove_whitespace",
    "take_first",
    "take_first_k",
    "majority_vote",
    "lowercase",
    "uppercase",
    "map",
    "bigbench_postprocess",
];

impl Filter {
    /// The step lm-eval registers as `function`, with the task config's
    /// keyword arguments. An unknown function or argument is an error naming
    /// it.
    pub fn from_config(function: &str, kwargs: &Map<String, Value>) -> Result<Filter, MetricError> {
        let args = Kwargs::new(function, kwargs);
        let filter = match function {
            "regex" => Filter::Regex(RegexFilter::from_kwargs(&args)?),
            "multi_choice_regex" => {
                Filter::MultiChoiceRegex(MultiChoiceRegexFilter::from_kwargs(&args)?)
            }
            "remove_whitespace" => Filter::RemoveWhitespace,
            "take_first" => Filter::TakeFirst,
            "take_first_k" => Filter::TakeFirstK {
                k: args.int("k")?.ok_or_else(|| args.missing("k"))?,
            },
            "majority_vote" => Filter::MajorityVote,
            "lowercase" => Filter::Lowercase,
            "uppercase" => Filter::Uppercase,
            "map" => Filter::Map(MapFilter::from_kwargs(&args)?),
            "bigbench_postprocess" => {
                Filter::BigBenchPostprocess(PostprocessFilter::from_kwargs(&args)?)
            }
            _ => {
                if let Some((_, reason)) = UNSUPPORTED.iter().find(|(n, _)| *n == function) {
                    return Err(MetricError::UnsupportedFilter {
                        name: function.to_string(),
                        reason,
                    });
                }
                return Err(MetricError::UnknownFilter {
                    name: function.to_string(),
                    known: KNOWN.join(", "),
                });
            }
        };
        args.check_all_used(filter.allowed_kwargs())?;
        Ok(filter)
    }

    /// lm-eval's registry name.
    pub fn name(&self) -> &'static str {
        match self {
            Filter::Regex(_) => "regex",
            Filter::MultiChoiceRegex(_) => "multi_choice_regex",
            Filter::RemoveWhitespace => "remove_whitespace",
            Filter::TakeFirst => "take_first",
            Filter::TakeFirstK { .. } => "take_first_k",
            Filter::MajorityVote => "majority_vote",
            Filter::Lowercase => "lowercase",
            Filter::Uppercase => "uppercase",
            Filter::Map(_) => "map",
            Filter::BigBenchPostprocess(_) => "bigbench_postprocess",
            Filter::External(_) => "python",
        }
    }

    fn allowed_kwargs(&self) -> &'static [&'static str] {
        match self {
            Filter::Regex(_) => RegexFilter::KWARGS,
            Filter::MultiChoiceRegex(_) => MultiChoiceRegexFilter::KWARGS,
            Filter::TakeFirstK { .. } => &["k"],
            Filter::Map(_) => MapFilter::KWARGS,
            Filter::BigBenchPostprocess(_) => PostprocessFilter::KWARGS,
            _ => &[],
        }
    }

    /// Whether the step reads the documents (and so needs them passed to
    /// [`FilterPipeline::apply`]).
    pub fn needs_docs(&self) -> bool {
        matches!(self, Filter::MultiChoiceRegex(_) | Filter::External(_))
    }

    fn apply(
        &self,
        responses: Vec<DocResponses>,
        docs: &[Value],
    ) -> Result<Vec<DocResponses>, MetricError> {
        match self {
            Filter::Regex(f) => each_response(responses, |r| f.extract(&r)),
            Filter::MultiChoiceRegex(f) => {
                if docs.len() != responses.len() {
                    return Err(MetricError::DocCountMismatch {
                        docs: docs.len(),
                        responses: responses.len(),
                    });
                }
                responses
                    .into_iter()
                    .zip(docs)
                    .enumerate()
                    .map(|(i, (rs, doc))| f.apply_doc(rs.items(), doc, i).map(DocResponses::List))
                    .collect()
            }
            Filter::RemoveWhitespace => {
                each_response(
                    responses,
                    |r| Ok(crate::python::text::strip(&r).to_string()),
                )
            }
            Filter::TakeFirst => selection::take_first(responses),
            Filter::TakeFirstK { k } => selection::take_first_k(responses, *k),
            Filter::MajorityVote => selection::majority_vote(responses),
            Filter::Lowercase => each_response(responses, |r| Ok(r.to_lowercase())),
            Filter::Uppercase => each_response(responses, |r| Ok(r.to_uppercase())),
            Filter::Map(f) => each_response(responses, |r| Ok(f.lookup(&r))),
            Filter::BigBenchPostprocess(f) => each_response(responses, |r| f.apply(&r)),
            Filter::External(f) => {
                let n = responses.len();
                let values = responses
                    .into_iter()
                    .map(|rs| match rs {
                        DocResponses::List(items) => {
                            Value::Array(items.into_iter().map(Value::String).collect())
                        }
                        DocResponses::Single(s) => Value::String(s),
                    })
                    .collect();
                let out = f.apply(values, docs).map_err(MetricError::MissingInput)?;
                if out.len() != n {
                    return Err(MetricError::MissingInput(format!(
                        "a Python filter returned {} entries for {n} documents",
                        out.len()
                    )));
                }
                out.into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(DocResponses::Single(s)),
                        Value::Array(items) => items
                            .into_iter()
                            .map(|i| match i {
                                Value::String(s) => Ok(s),
                                other => Err(other),
                            })
                            .collect::<Result<Vec<_>, _>>()
                            .map(DocResponses::List),
                        other => Err(other),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|v| {
                        MetricError::MissingInput(format!(
                            "a Python filter returned {v}, not text or a list of texts"
                        ))
                    })
            }
        }
    }
}

/// A named sequence of filter steps (one entry of a task's `filter_list`).
#[derive(Debug, Clone)]
pub struct FilterPipeline {
    name: String,
    steps: Vec<Filter>,
}

impl FilterPipeline {
    pub fn new(name: impl Into<String>, steps: Vec<Filter>) -> FilterPipeline {
        FilterPipeline {
            name: name.into(),
            steps,
        }
    }

    /// What lm-eval uses for a task without a `filter_list`: `take_first`,
    /// named "none" (the name appears in result keys such as `acc,none`).
    pub fn lm_eval_default() -> FilterPipeline {
        FilterPipeline::new("none", vec![Filter::TakeFirst])
    }

    /// One `filter_list` entry: `{"name": ..., "filter": [{"function": ...,
    /// <kwargs>}, ...]}`.
    pub fn from_config(entry: &Map<String, Value>) -> Result<FilterPipeline, MetricError> {
        let bad = |key: &str, expected: &'static str, found: &Value| MetricError::BadKwarg {
            owner: "a filter_list entry".to_string(),
            key: key.to_string(),
            expected,
            found: found.to_string(),
        };
        let name = match entry.get("name") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(bad("name", "a string", other)),
            None => {
                return Err(MetricError::MissingKwarg {
                    owner: "a filter_list entry".to_string(),
                    key: "name",
                })
            }
        };
        let owner = format!("filter pipeline `{name}`");
        let steps = match entry.get("filter") {
            Some(Value::Array(steps)) => steps,
            Some(other) => return Err(bad("filter", "a list of steps", other)),
            None => {
                return Err(MetricError::MissingKwarg {
                    owner,
                    key: "filter",
                })
            }
        };
        let steps = steps
            .iter()
            .map(|step| {
                let step = step
                    .as_object()
                    .ok_or_else(|| bad("filter", "a list of {function: ...} maps", step))?;
                let function = match step.get("function") {
                    Some(Value::String(f)) => f,
                    Some(other) => return Err(bad("function", "a filter name", other)),
                    None => {
                        return Err(MetricError::MissingKwarg {
                            owner: owner.clone(),
                            key: "function",
                        })
                    }
                };
                let mut kwargs = step.clone();
                kwargs.remove("function");
                Filter::from_config(function, &kwargs)
            })
            .collect::<Result<_, _>>()?;
        Ok(FilterPipeline { name, steps })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn steps(&self) -> &[Filter] {
        &self.steps
    }

    /// Whether some step reads the documents.
    pub fn needs_docs(&self) -> bool {
        self.steps.iter().any(Filter::needs_docs)
    }

    /// Runs the steps in order over every document's responses (one inner
    /// `Vec` per document, in document order). `docs` are the documents as
    /// JSON objects, in the same order; pass `&[]` when [`needs_docs`] is
    /// false.
    ///
    /// After `take_first` a document holds exactly one string. As in lm-eval,
    /// a per-response step after `take_first` sees that string's characters
    /// one by one (lm-eval iterates the string), which only matters for
    /// multi-character strings.
    ///
    /// [`needs_docs`]: FilterPipeline::needs_docs
    pub fn apply(
        &self,
        responses: Vec<Vec<String>>,
        docs: &[Value],
    ) -> Result<Vec<Vec<String>>, MetricError> {
        let mut state: Vec<DocResponses> = responses.into_iter().map(DocResponses::List).collect();
        for step in &self.steps {
            state = step.apply(state, docs)?;
        }
        Ok(state.into_iter().map(DocResponses::into_output).collect())
    }
}

/// One document's responses between steps: a list, or the single string
/// `take_first` leaves.
#[derive(Debug, Clone, PartialEq)]
enum DocResponses {
    List(Vec<String>),
    Single(String),
}

impl DocResponses {
    /// What Python's `for resp in inst` visits: the list's strings, or a
    /// single string's characters.
    fn items(self) -> Vec<String> {
        match self {
            DocResponses::List(items) => items,
            DocResponses::Single(s) => s.chars().map(String::from).collect(),
        }
    }

    fn into_output(self) -> Vec<String> {
        match self {
            DocResponses::List(items) => items,
            DocResponses::Single(s) => vec![s],
        }
    }
}

/// Applies a per-response step to every response of every document.
fn each_response(
    responses: Vec<DocResponses>,
    mut f: impl FnMut(String) -> Result<String, MetricError>,
) -> Result<Vec<DocResponses>, MetricError> {
    responses
        .into_iter()
        .map(|rs| {
            rs.items()
                .into_iter()
                .map(&mut f)
                .collect::<Result<_, _>>()
                .map(DocResponses::List)
        })
        .collect()
}

/// A filter step's keyword arguments, read with the step's name in every
/// error.
pub(super) struct Kwargs<'a> {
    function: &'a str,
    map: &'a Map<String, Value>,
}

impl<'a> Kwargs<'a> {
    fn new(function: &'a str, map: &'a Map<String, Value>) -> Kwargs<'a> {
        Kwargs { function, map }
    }

    fn owner(&self) -> String {
        format!("filter `{}`", self.function)
    }

    /// The value of `key`; null counts as not given.
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(super) fn string(&self, key: &str) -> Result<Option<String>, MetricError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.bad(key, "a string", other)),
        }
    }

    pub(super) fn int(&self, key: &str) -> Result<Option<i64>, MetricError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(other) => Err(self.bad(key, "an integer", other)),
        }
    }

    pub(super) fn flag(&self, key: &str) -> Result<bool, MetricError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.bad(key, "true or false", other)),
        }
    }

    /// A list of strings, or `None` when not given.
    pub(super) fn strings(&self, key: &str) -> Result<Option<Vec<String>>, MetricError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| self.bad(key, "a list of strings", item))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.bad(key, "a list of strings", other)),
        }
    }

    pub(super) fn bad(&self, key: &str, expected: &'static str, found: &Value) -> MetricError {
        MetricError::BadKwarg {
            owner: self.owner(),
            key: key.to_string(),
            expected,
            found: found.to_string(),
        }
    }

    fn missing(&self, key: &'static str) -> MetricError {
        MetricError::MissingKwarg {
            owner: self.owner(),
            key,
        }
    }

    /// Every given key must be one the step takes.
    fn check_all_used(&self, allowed: &[&str]) -> Result<(), MetricError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            None => Ok(()),
            Some(key) => Err(MetricError::UnknownKwarg {
                owner: self.owner(),
                key: key.clone(),
                allowed: if allowed.is_empty() {
                    "no arguments".to_string()
                } else {
                    allowed.join(", ")
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owned(xs: &[&[&str]]) -> Vec<Vec<String>> {
        xs.iter()
            .map(|rs| rs.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    fn pipeline(steps: Value) -> Result<FilterPipeline, MetricError> {
        let entry = json!({"name": "test", "filter": steps});
        FilterPipeline::from_config(entry.as_object().unwrap())
    }

    /// (steps, responses per document, filtered responses per document)
    type PipelineCase = (
        Value,
        &'static [&'static [&'static str]],
        &'static [&'static [&'static str]],
    );

    /// Expected values from running lm-eval's registered filters in sequence,
    /// as FilterEnsemble.apply does, with str() of non-string results.
    #[test]
    fn pipelines_match_lm_eval() {
        #[rustfmt::skip]
        let cases: &[PipelineCase] = &[
            (json!([{"function": "take_first"}]), &[&["a", "b"], &["c"]], &[&["a"], &["c"]]),
            (json!([{"function": "regex", "regex_pattern": "The answer is (\\-?[0-9\\.\\,]*[0-9]+)"}, {"function": "majority_vote"}, {"function": "take_first"}]), &[&["The answer is 3.", "The answer is 4.", "The answer is 4.", "no idea"], &["no", "no", "The answer is 1,000"]], &[&["4"], &["[invalid]"]]),
            (json!([{"function": "take_first_k", "k": 3}, {"function": "regex", "regex_pattern": "The answer is (\\-?[0-9\\.\\,]*[0-9]+)"}, {"function": "majority_vote"}, {"function": "take_first"}]), &[&["The answer is 3.", "x", "y", "The answer is 4.", "The answer is 4."]], &[&["[invalid]"]]),
            (json!([{"function": "regex", "regex_pattern": "(\\b[ABCD]\\b)"}, {"function": "take_first"}, {"function": "map", "mapping_dict": {"A": 0, "B": 1, "C": 2, "D": 3}, "default_value": -1}, {"function": "take_first"}]), &[&["I choose B"], &["nothing"], &["A or C"]], &[&["1"], &["-1"], &["0"]]),
            (json!([{"function": "take_first"}, {"function": "lowercase"}]), &[&["AbC", "x"]], &[&["a", "b", "c"]]),
            (json!([{"function": "remove_whitespace"}, {"function": "uppercase"}, {"function": "take_first"}]), &[&["  yes\n", "no"], &["\tstraße "]], &[&["YES"], &["STRASSE"]]),
            (json!([{"function": "take_first"}, {"function": "map", "mapping_dict": {"A": "x", "AB": "y"}, "default_value": "z"}]), &[&["AB"]], &[&["x", "z"]]),
            (json!([{"function": "lowercase"}, {"function": "regex", "regex_pattern": "(?=(female|woman|man|male))"}, {"function": "take_first_k", "k": 2}]), &[&["The Woman", "A MAN", "nobody"]], &[&["woman", "man"]]),
            (json!([{"function": "take_first"}, {"function": "take_first"}]), &[&["hello"]], &[&["h"]]),
            (json!([{"function": "take_first"}, {"function": "majority_vote"}]), &[&["abca"]], &[&["a"]]),
        ];
        for (steps, responses, expected) in cases {
            let got = pipeline(steps.clone())
                .unwrap()
                .apply(owned(responses), &[])
                .unwrap();
            assert_eq!(got, owned(expected), "{steps}");
        }
    }

    #[test]
    fn default_pipeline_is_take_first_named_none() {
        let p = FilterPipeline::lm_eval_default();
        assert_eq!(p.name(), "none");
        let got = p.apply(owned(&[&["a", "b"]]), &[]).unwrap();
        assert_eq!(got, owned(&[&["a"]]));
    }

    #[test]
    fn config_errors_name_what_is_wrong() {
        let err = |steps: Value| pipeline(steps).unwrap_err().to_string();
        let e = err(json!([{"function": "regexp"}]));
        assert!(e.contains("`regexp`") && e.contains("take_first"), "{e}");
        let e = err(json!([{"function": "custom", "filter_fn": "x"}]));
        assert!(e.contains("`custom`") && e.contains("Python"), "{e}");
        let e = err(json!([{"function": "regex", "pattern": "x"}]));
        assert!(
            e.contains("`pattern`") && e.contains("regex_pattern"),
            "{e}"
        );
        let e = err(json!([{"function": "take_first", "k": 1}]));
        assert!(e.contains("`take_first`") && e.contains("`k`"), "{e}");
        let e = err(json!([{"function": "take_first_k"}]));
        assert!(e.contains("`k`"), "{e}");
        let e = err(json!([{"function": "regex", "group_select": "last"}]));
        assert!(e.contains("`group_select`") && e.contains("integer"), "{e}");
        let e = err(json!([{"regex_pattern": "x"}]));
        assert!(e.contains("`function`"), "{e}");
    }

    #[test]
    fn multi_choice_regex_reads_the_documents() {
        let p = pipeline(json!([
            {"function": "multi_choice_regex", "regex_pattern": "(\\([A-Z]\\))", "ignore_case": true},
            {"function": "take_first"}
        ]))
        .unwrap();
        assert!(p.needs_docs());
        let docs = [json!({"choices": ["red", "blue"]})];
        let got = p.apply(owned(&[&["It is Blue"]]), &docs).unwrap();
        assert_eq!(got, owned(&[&["(B)"]]));
        assert!(p.apply(owned(&[&["x"]]), &[]).is_err());
    }
}
