//! Extraction filters: pulling the answer out of free text with a regular
//! expression (`regex`), and `multi_choice_regex`, which falls back to
//! recognising a choice's text or a bare letter when the pattern misses.
//!
//! Both follow lm_eval/filters/extraction.py step by step, including what
//! happens to patterns with several groups (the first non-empty group wins)
//! and that `group_select` indexes the list of matches Python-style, so -1 is
//! the last match and an index past the end is an error.

use serde_json::Value;

use super::Kwargs;
use crate::metric::MetricError;
use crate::python::re::{python_escaped_len, Found, PyRegex};
use crate::python::text::strip;

const DEFAULT_PATTERN: &str = r"#### (\-?[0-9\.\,]+)";
const DEFAULT_FALLBACK: &str = "[invalid]";

/// lm-eval's `RegexFilter`.
#[derive(Debug, Clone)]
pub struct RegexFilter {
    regex: PyRegex,
    group_select: i64,
    fallback: String,
}

impl RegexFilter {
    pub(super) const KWARGS: &'static [&'static str] =
        &["regex_pattern", "group_select", "fallback"];

    pub(super) fn from_kwargs(args: &Kwargs<'_>) -> Result<RegexFilter, MetricError> {
        let pattern = args.string("regex_pattern")?;
        Ok(RegexFilter {
            regex: PyRegex::new(pattern.as_deref().unwrap_or(DEFAULT_PATTERN))?,
            group_select: args.int("group_select")?.unwrap_or(0),
            fallback: args
                .string("fallback")?
                .unwrap_or_else(|| DEFAULT_FALLBACK.to_string()),
        })
    }

    /// The filtered form of one response.
    pub(super) fn extract(&self, response: &str) -> Result<String, MetricError> {
        let found = self.regex.findall(response)?;
        if found.is_empty() {
            return Ok(self.fallback.clone());
        }
        let chosen = select(&found, self.group_select, "regex", response)?;
        // A tuple whose groups are all empty yields the fallback, which is
        // then stripped like a match (the no-match fallback above is not).
        let text = match chosen {
            Found::Text(t) => t.as_str(),
            Found::Tuple(groups) => groups
                .iter()
                .find(|g| !g.is_empty())
                .map_or(self.fallback.as_str(), String::as_str),
        };
        Ok(strip(text).to_string())
    }
}

/// `matches[group_select]` with Python's indexing.
fn select<'f>(
    found: &'f [Found],
    group_select: i64,
    filter: &'static str,
    response: &str,
) -> Result<&'f Found, MetricError> {
    let len = found.len() as i64;
    let index = if group_select < 0 {
        group_select + len
    } else {
        group_select
    };
    if (0..len).contains(&index) {
        Ok(&found[index as usize])
    } else {
        // Model responses can be long; the start is enough to find it.
        let mut shown: String = response.chars().take(200).collect();
        if shown.len() < response.len() {
            shown.push('…');
        }
        Err(MetricError::GroupSelectOutOfRange {
            filter,
            group_select,
            matches: found.len(),
            response: shown,
        })
    }
}

/// lm-eval's `MultiChoiceRegexFilter`, for answers given as `(A)`, as the
/// text of a choice, or as `: A`.
#[derive(Debug, Clone)]
pub struct MultiChoiceRegexFilter {
    regex: PyRegex,
    group_select: i64,
    fallback: String,
    ignore_case: bool,
    ignore_punctuation: bool,
    regexes_to_ignore: Vec<PyRegex>,
}

impl MultiChoiceRegexFilter {
    pub(super) const KWARGS: &'static [&'static str] = &[
        "regex_pattern",
        "group_select",
        "fallback",
        "ignore_case",
        "ignore_punctuation",
        "regexes_to_ignore",
    ];

    pub(super) fn from_kwargs(args: &Kwargs<'_>) -> Result<MultiChoiceRegexFilter, MetricError> {
        let base = RegexFilter::from_kwargs(args)?;
        Ok(MultiChoiceRegexFilter {
            regex: base.regex,
            group_select: base.group_select,
            fallback: base.fallback,
            ignore_case: args.flag("ignore_case")?,
            ignore_punctuation: args.flag("ignore_punctuation")?,
            regexes_to_ignore: args
                .strings("regexes_to_ignore")?
                .unwrap_or_default()
                .iter()
                .map(|p| PyRegex::new(p))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Filters one document's responses; `doc_index` is for error messages.
    pub(super) fn apply_doc(
        &self,
        responses: Vec<String>,
        doc: &Value,
        doc_index: usize,
    ) -> Result<Vec<String>, MetricError> {
        let choices = doc_choices(doc, doc_index)?;
        // Choice text (normalised) -> "(A)", and letter -> "(A)". Letters
        // count on past Z as Python's chr(ord(c) + 1) does.
        let mut choice_to_alpha: Vec<(String, String)> = Vec::new();
        let mut letters = Vec::new();
        for (i, choice) in choices.iter().enumerate() {
            let letter = char::from_u32('A' as u32 + i as u32).unwrap_or('?');
            let key = self.normalise(strip(choice))?;
            let target = format!("({letter})");
            // A dict assignment: a repeated key keeps its last letter.
            match choice_to_alpha.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = target,
                None => choice_to_alpha.push((key.clone(), target)),
            }
            letters.push((key, letter));
        }
        // Longest escaped text first, so a choice that is a prefix of another
        // cannot shadow it (a stable sort, like Python's sorted).
        let mut by_length: Vec<&str> = letters.iter().map(|(k, _)| k.as_str()).collect();
        by_length.sort_by_key(|k| std::cmp::Reverse(python_escaped_len(k)));
        let choice_regex = PyRegex::literal_alternation(&by_length)?;
        let letter_alternation: Vec<String> = letters.iter().map(|(_, l)| l.to_string()).collect();
        let letter_regex = PyRegex::new(&format!(r":[\s]*({})", letter_alternation.join("|")))?;
        let letter_to_target: Vec<(String, String)> = letters
            .iter()
            .map(|(_, l)| (l.to_string(), format!("({l})")))
            .collect();

        responses
            .iter()
            .map(|response| {
                let mut answer = self.find(&self.regex, response, &[])?;
                if answer.is_empty() {
                    let normalised = self.normalise(response)?;
                    answer = self.find(&choice_regex, &normalised, &choice_to_alpha)?;
                    if answer.is_empty() {
                        answer = self.find(&letter_regex, response, &letter_to_target)?;
                    }
                }
                Ok(if answer.is_empty() {
                    self.fallback.clone()
                } else {
                    answer
                })
            })
            .collect()
    }

    /// lm-eval's `find_match`: the selected match, stripped and converted;
    /// empty when there is none.
    fn find(
        &self,
        regex: &PyRegex,
        response: &str,
        convert: &[(String, String)],
    ) -> Result<String, MetricError> {
        let found = regex.findall(response)?;
        if found.is_empty() {
            return Ok(String::new());
        }
        let text = match select(&found, self.group_select, "multi_choice_regex", response)? {
            Found::Text(t) => t.as_str(),
            Found::Tuple(groups) => match groups.iter().find(|g| !g.is_empty()) {
                Some(g) => g.as_str(),
                None => return Ok(String::new()),
            },
        };
        let text = strip(text);
        Ok(convert
            .iter()
            .find(|(from, _)| !text.is_empty() && from == text)
            .map_or(text, |(_, to)| to.as_str())
            .to_string())
    }

    /// lm-eval's `filter_ignores`: remove `regexes_to_ignore`, lowercase,
    /// remove Unicode punctuation (every category P* character).
    fn normalise(&self, text: &str) -> Result<String, MetricError> {
        let mut text = text.to_string();
        for regex in &self.regexes_to_ignore {
            text = regex.remove_all(&text)?;
        }
        if self.ignore_case {
            text = text.to_lowercase();
        }
        if self.ignore_punctuation {
            text = PyRegex::unicode_punctuation().remove_all(&text)?;
        }
        Ok(text)
    }
}

/// The document's `choices` field, which must be a list of strings.
fn doc_choices(doc: &Value, doc_index: usize) -> Result<Vec<&str>, MetricError> {
    let problem = |problem: &str| MetricError::MissingChoices {
        doc: doc_index,
        problem: problem.to_string(),
    };
    let list = match doc.get("choices") {
        Some(Value::Array(list)) => list,
        Some(other) => return Err(problem(&format!("has `choices` = {other}"))),
        None => return Err(problem("has no `choices` field")),
    };
    list.iter()
        .map(|c| {
            c.as_str()
                .ok_or_else(|| problem(&format!("has a non-string choice {c}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn regex_filter(kwargs: Value) -> RegexFilter {
        let map = kwargs.as_object().unwrap();
        RegexFilter::from_kwargs(&Kwargs::new("regex", map)).unwrap()
    }

    /// Expected values from lm_eval.filters.extraction.RegexFilter.
    #[test]
    fn regex_filter_matches_lm_eval() {
        #[rustfmt::skip]
        let cases: &[(Value, &str, &str)] = &[
            (json!({}), "Natalia sold 48/2 = 24 clips.\n#### 72", "72"),
            (json!({}), "no marker here", "[invalid]"),
            (json!({}), "#### 1,000.5 and #### 7", "1,000.5"),
            (json!({"group_select": -1}), "#### 1,000.5 and #### 7", "7"),
            (json!({"regex_pattern": "The answer is (\\-?[0-9\\.\\,]*[0-9]+)"}), "So The answer is 42.", "42"),
            (json!({"regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)", "group_select": -1}), "I had 5 then $12.50, final 17", "17"),
            (json!({"regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)", "group_select": 0}), "I had 5 then $12.50, final 17", "5"),
            (json!({"regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)", "group_select": -1}), "nothing", "[invalid]"),
            (json!({"regex_pattern": "(\\([A-Z]\\))", "fallback": "X"}), "The answer is (C).", "(C)"),
            (json!({"regex_pattern": "(\\([A-Z]\\))", "fallback": "  X  "}), "no letter", "  X  "),
            (json!({"regex_pattern": "(a)|(b)", "fallback": "  F  "}), "b", "b"),
            (json!({"regex_pattern": "(x)?(y)?", "fallback": "  F  "}), "zzz", "F"),
            (json!({"regex_pattern": "answer: (.*)"}), "answer:   spaced out  \n", "spaced out"),
            (json!({"regex_pattern": "\\b(Yes|No|yes|no)\\b", "group_select": 0}), "Well, yes. No?", "yes"),
            (json!({"regex_pattern": "((?<=The answer is )(.*)(?=.)|(?<=the answer is )(.*)(?=.))"}), "I think the answer is Paris.", "Paris"),
            (json!({"regex_pattern": "\\d+"}), "a 12 b 3", "12"),
            (json!({"regex_pattern": "(?=(female|woman|man|male))", "group_select": -1}), "a woman met a man", "man"),
        ];
        for (kwargs, response, expected) in cases {
            let got = regex_filter(kwargs.clone()).extract(response).unwrap();
            assert_eq!(got, *expected, "{kwargs} on {response:?}");
        }
    }

    #[test]
    fn group_select_past_the_matches_is_an_error() {
        let f = regex_filter(json!({"regex_pattern": r"(\d)", "group_select": 2}));
        let err = f.extract("1 2").unwrap_err().to_string();
        assert!(
            err.contains("group_select 2") && err.contains("2 time"),
            "{err}"
        );
    }

    /// Expected values from lm_eval.filters.extraction.MultiChoiceRegexFilter.
    #[test]
    fn multi_choice_regex_matches_lm_eval() {
        #[rustfmt::skip]
        let cases: &[(Value, &[&str], &str, &str)] = &[
            (json!({"regex_pattern": "(\\([A-Z]\\))", "ignore_case": true, "ignore_punctuation": true}), &["Guilty", "Guilty of Romance", "Not guilty"], "I'd say (B) honestly", "(B)"),
            (json!({"regex_pattern": "(\\([A-Z]\\))", "ignore_case": true, "ignore_punctuation": true}), &["Guilty", "Guilty of Romance", "Not guilty"], "It is guilty of romance!", "(B)"),
            (json!({"regex_pattern": "(\\([A-Z]\\))", "ignore_case": true, "ignore_punctuation": true}), &["Guilty", "Guilty of Romance", "Not guilty"], "It's GUILTY.", "(A)"),
            (json!({"regex_pattern": "(\\([A-Z]\\))"}), &["Guilty", "Guilty of Romance", "Not guilty"], "It's GUILTY.", "[invalid]"),
            (json!({"regex_pattern": "(\\([A-Z]\\))"}), &["yes", "no"], "Answer: B", "(B)"),
            (json!({"regex_pattern": "(\\([A-Z]\\))"}), &["yes", "no"], "Answer:A and then", "(A)"),
            (json!({"regex_pattern": "(\\([A-Z]\\))"}), &["yes", "no"], "I cannot tell", "(B)"),
            (json!({"regex_pattern": "(\\([A-Z]\\))", "group_select": -1}), &["x", "y"], "(A) no wait (B)", "(B)"),
            (json!({"regex_pattern": "(\\([A-Z]\\))", "ignore_case": true, "ignore_punctuation": true, "regexes_to_ignore": ["[Tt]he "]}), &["the cat.", "the dog!"], "THE DOG", "(B)"),
            (json!({"regex_pattern": "(\\([A-Z]\\))", "ignore_punctuation": true}), &["“quoted”", "plain"], "I pick quoted", "(A)"),
            (json!({"regex_pattern": "(\\([A-Z]\\))", "fallback": "?"}), &["a.b", "a+b"], "it is a+b", "(B)"),
            (json!({"regex_pattern": "(\\([A-Z]\\))"}), &["same", "same"], "same", "(B)"),
        ];
        for (kwargs, choices, response, expected) in cases {
            let map = kwargs.as_object().unwrap();
            let f = MultiChoiceRegexFilter::from_kwargs(&Kwargs::new("multi_choice_regex", map))
                .unwrap();
            let doc = json!({ "choices": choices });
            let got = f.apply_doc(vec![response.to_string()], &doc, 0).unwrap();
            assert_eq!(
                got,
                vec![expected.to_string()],
                "{kwargs} {choices:?} on {response:?}"
            );
        }
    }

    #[test]
    fn multi_choice_regex_needs_choices() {
        let f = MultiChoiceRegexFilter::from_kwargs(&Kwargs::new(
            "multi_choice_regex",
            &serde_json::Map::new(),
        ))
        .unwrap();
        let err = f
            .apply_doc(vec!["x".into()], &json!({"question": "?"}), 3)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("document 3") && err.contains("`choices`"),
            "{err}"
        );
    }
}
