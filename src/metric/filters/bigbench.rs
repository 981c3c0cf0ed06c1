//! `bigbench_postprocess`: BIG-bench's treatment of generated text before it
//! is compared with the targets (`postprocess_output` in
//! bigbench/models/model_utils.py), as a filter step so that `task.json`
//! tasks score what BIG-bench scores.
//!
//! It differs from lm-eval's `regex` filter on purpose: the text is first
//! cut after the first `stop_string` (kept, and only when it is not at the
//! very start), then replaced by the first `re.findall` match of
//! `output_regex`, unstripped, or by the empty string when nothing matches.
//! BIG-bench's `max_length` truncation is the model's business and is left
//! to the backend's `max_gen_toks`.

use super::Kwargs;
use crate::metric::MetricError;
use crate::python::re::{Found, PyRegex};

#[derive(Debug, Clone)]
pub struct PostprocessFilter {
    stop_string: Option<String>,
    output_regex: Option<PyRegex>,
}

impl PostprocessFilter {
    pub(super) const KWARGS: &'static [&'static str] = &["stop_string", "output_regex"];

    pub(super) fn from_kwargs(args: &Kwargs<'_>) -> Result<PostprocessFilter, MetricError> {
        // BIG-bench tests both for truthiness: an empty string means "none".
        let stop_string = args.string("stop_string")?.filter(|s| !s.is_empty());
        let output_regex = match args.string("output_regex")?.filter(|s| !s.is_empty()) {
            None => None,
            Some(pattern) => {
                let regex = PyRegex::new(&pattern)?;
                if regex.group_count() > 1 {
                    return Err(MetricError::InvalidRegex {
                        pattern,
                        reason: "BIG-bench's output_regex may have at most one group; \
                                 write the others as non-capturing groups (?:...)"
                            .into(),
                    });
                }
                Some(regex)
            }
        };
        Ok(PostprocessFilter {
            stop_string,
            output_regex,
        })
    }

    /// The post-processed form of one response.
    pub(super) fn apply(&self, response: &str) -> Result<String, MetricError> {
        let mut text = response;
        if let Some(stop) = &self.stop_string {
            if let Some(index) = text.find(stop.as_str()).filter(|&i| i > 0) {
                text = &text[..index + stop.len()];
            }
        }
        let Some(regex) = &self.output_regex else {
            return Ok(text.to_string());
        };
        Ok(match regex.findall(text)?.into_iter().next() {
            Some(Found::Text(t)) => t,
            // Ruled out when the filter is built.
            Some(Found::Tuple(_)) => unreachable!("output_regex has at most one group"),
            None => String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map, Value};

    fn filter(kwargs: Value) -> Result<PostprocessFilter, MetricError> {
        let map: Map<String, Value> = kwargs.as_object().unwrap().clone();
        PostprocessFilter::from_kwargs(&Kwargs::new("bigbench_postprocess", &map))
    }

    /// Expected values from `postprocess_output(text, 0, stop_string,
    /// output_regex)`, with json_task's default regex `[^\.\?\!\;\n]+` when
    /// a task sets neither.
    #[test]
    fn postprocesses_like_big_bench() {
        let default = filter(json!({"output_regex": r"[^\.\?\!\;\n]+"})).unwrap();
        assert_eq!(default.apply(" Paris. It is").unwrap(), " Paris");
        assert_eq!(default.apply("\n\nParis\n").unwrap(), "Paris");
        assert_eq!(default.apply("...").unwrap(), "");
        let stop = filter(json!({"stop_string": "."})).unwrap();
        assert_eq!(stop.apply("The apple. What is").unwrap(), "The apple.");
        assert_eq!(stop.apply(".leading. dot").unwrap(), ".leading. dot");
        assert_eq!(stop.apply("none").unwrap(), "none");
        let both = filter(json!({"stop_string": "\n", "output_regex": r"\d+"})).unwrap();
        assert_eq!(both.apply("= 42. 7*7 =\n49").unwrap(), "42");
        assert_eq!(both.apply("x\n42").unwrap(), "");
        let group = filter(json!({"output_regex": r"is (\w+)"})).unwrap();
        assert_eq!(group.apply("it is red, is blue").unwrap(), "red");
        let none = filter(json!({"stop_string": "", "output_regex": ""})).unwrap();
        assert_eq!(none.apply(" as is ").unwrap(), " as is ");
    }

    #[test]
    fn several_groups_are_refused() {
        let e = filter(json!({"output_regex": "(a)(b)"})).unwrap_err();
        assert!(e.to_string().contains("(?:...)"), "{e}");
    }
}
