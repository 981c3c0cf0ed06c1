//! lm-eval's `process_results` for each output type: one document's
//! responses in, each listed metric's per-document value out.
//!
//! The scorer (`run::score`) gathers what a document's responses say (the
//! [`Evidence`]); what each metric makes of it is decided here, beside the
//! metric's registration, so a metric is defined in this module only.

use serde_json::{Map, Value};

use super::{
    count_words, exact_match, exact_str_match, multiple_choice_grade, normalized_log_probs,
    ExactMatchOptions, ItemValue, MetricError,
};

/// What one document's responses say, by output type.
pub enum Evidence<'a> {
    /// `loglikelihood`: the continuation's log-likelihood, and whether it is
    /// the greedy continuation.
    Loglikelihood {
        ll: f64,
        greedy: bool,
    },
    /// `loglikelihood_rolling`: the text's log-likelihood.
    Rolling {
        ll: f64,
        text: &'a str,
    },
    MultipleChoice(MultipleChoice<'a>),
    /// `generate_until`: the references and the filtered prediction.
    Generated {
        golds: &'a [String],
        prediction: &'a str,
    },
}

/// A multiple-choice document's responses and target.
#[derive(Clone, Copy)]
pub struct MultipleChoice<'a> {
    pub choices: &'a [String],
    /// Each choice's log-likelihood and whether it is greedy.
    pub lls: &'a [f64],
    pub greedy: &'a [bool],
    /// The choices' log-likelihoods without the context (acc_mutual_info).
    pub unconditional: Option<&'a [f64]>,
    /// What `doc_to_target` gave (or, for multiple-input tasks, the gold
    /// input): an index, a choice's text, or a list of them.
    pub target: &'a Value,
    /// The task's `multiple_target`: a list target names several golds.
    pub multiple_target: bool,
    /// The document, for metrics that read its columns (BIG-bench's
    /// `target_scores`).
    pub doc: &'a Map<String, Value>,
}

/// The value `metric` (with its `metric_list` kwargs) takes from one
/// document's `evidence`, or None where the metric has none for this output
/// type (the planner accepts only [`computed_metrics`](super::computed_metrics)).
pub fn document_value(
    metric: &str,
    kwargs: &Map<String, Value>,
    evidence: &Evidence,
) -> Result<Option<ItemValue>, MetricError> {
    let score = |x: f64| Ok(Some(ItemValue::Score(x)));
    let hit = |b: bool| f64::from(u8::from(b));
    match evidence {
        Evidence::Loglikelihood { ll, greedy } => match metric {
            "perplexity" => score(*ll),
            "acc" => score(hit(*greedy)),
            _ => Ok(None),
        },
        Evidence::Rolling { ll, text } => {
            let weight = match metric {
                "word_perplexity" => count_words(text) as f64,
                "byte_perplexity" | "bits_per_byte" => text.len() as f64,
                _ => return Ok(None),
            };
            Ok(Some(ItemValue::Weighted {
                loglikelihood: *ll,
                weight,
            }))
        }
        Evidence::Generated { golds, prediction } => match metric {
            "exact_match" => {
                let options = ExactMatchOptions::from_kwargs(kwargs)?;
                score(exact_match(golds, prediction, &options)?)
            }
            "exact_str_match" => score(exact_str_match(golds, prediction)),
            _ => Ok(None),
        },
        Evidence::MultipleChoice(mc) => multiple_choice(metric, kwargs, mc),
    }
}

fn multiple_choice(
    metric: &str,
    kwargs: &Map<String, Value>,
    mc: &MultipleChoice,
) -> Result<Option<ItemValue>, MetricError> {
    let golds = mc.golds();
    // lm-eval only warns here, then scores the document as wrong; a target
    // that names no choice is a broken document or config, so it is refused.
    if golds.is_empty() || golds.contains(&-100) {
        return Err(MetricError::MissingInput(format!(
            "the target {} names none of the document's {} choices (give an index from 0 to {}, or a choice's text)",
            mc.target,
            mc.choices.len(),
            mc.choices.len().saturating_sub(1)
        )));
    }
    let hit = |p: i64| f64::from(u8::from(golds.contains(&p)));
    let lls = mc.lls;
    let pred = || argmax(lls.iter().copied());
    let gold = golds.first().copied().unwrap_or(-100);
    let value = match metric {
        "acc" => ItemValue::Score(hit(pred())),
        "acc_norm" => ItemValue::Score(hit(argmax(
            lls.iter()
                .zip(mc.choices)
                .map(|(l, c)| l / c.chars().count() as f64),
        ))),
        "acc_bytes" => ItemValue::Score(hit(argmax(
            lls.iter().zip(mc.choices).map(|(l, c)| l / c.len() as f64),
        ))),
        "exact_match" => ItemValue::Score(f64::from(u8::from(mc.exact(&golds)))),
        "f1" | "mcc" => ItemValue::GoldPred { gold, pred: pred() },
        "brier_score" => ItemValue::GoldProbs {
            gold,
            probs: softmax(lls),
        },
        "acc_mutual_info" => {
            let unconditional = mc.unconditional.ok_or_else(|| {
                MetricError::MissingInput(
                    "acc_mutual_info needs the unconditional log-likelihoods".into(),
                )
            })?;
            let mi = lls.iter().zip(unconditional).map(|(c, u)| c - u);
            ItemValue::Score(f64::from(u8::from(argmax(mi) == gold)))
        }
        "multiple_choice_grade" => {
            let scores = target_scores(mc.doc, mc.choices.len()).ok_or_else(|| {
                MetricError::MissingInput(
                    "multiple_choice_grade needs a `target_scores` column with one score per choice"
                        .into(),
                )
            })?;
            // BIG-bench grades its normalised log-probabilities unless a
            // task asks for `absolute_normalization`; the argmax is the
            // same, its tie-break hash is not.
            let absolute = kwargs
                .get("absolute_normalization")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let log_probs = if absolute {
                lls.to_vec()
            } else {
                normalized_log_probs(lls)
            };
            ItemValue::Score(multiple_choice_grade(&log_probs, &scores)?)
        }
        _ => return Ok(None),
    };
    Ok(Some(value))
}

impl MultipleChoice<'_> {
    /// The gold indices, as lm-eval reads a target: an index, a choice's
    /// text, a boolean, or (with `multiple_target`) a list of them; -100
    /// where it names no choice.
    fn golds(&self) -> Vec<i64> {
        let n = self.choices.len() as i64;
        let to_index = |v: &Value| -> i64 {
            match v {
                Value::Number(x) => x.as_i64().map_or(-100, |i| if i < n { i } else { -100 }),
                Value::Bool(b) => i64::from(*b),
                Value::String(s) => self
                    .choices
                    .iter()
                    .position(|c| c == s)
                    .map_or(-100, |i| i as i64),
                _ => -100,
            }
        };
        match self.target {
            Value::Array(items) if self.multiple_target => items.iter().map(to_index).collect(),
            other => vec![to_index(other)],
        }
    }

    /// lm-eval's `exact_match` for multiple choice: the gold continuation is
    /// the greedy one (any gold's, with several).
    fn exact(&self, golds: &[i64]) -> bool {
        let greedy_at = |g: i64| -> bool {
            let idx = if g < 0 {
                self.greedy.len() as i64 + g
            } else {
                g
            };
            usize::try_from(idx)
                .ok()
                .and_then(|i| self.greedy.get(i))
                .copied()
                .unwrap_or(false)
        };
        if self.multiple_target {
            golds.iter().any(|&g| g != -100 && greedy_at(g))
        } else {
            golds[0] != -100 && greedy_at(golds[0])
        }
    }
}

/// numpy's `argmax`: the first maximum, or the first NaN if there is one.
pub fn argmax(xs: impl Iterator<Item = f64>) -> i64 {
    let mut best = (-1i64, f64::NEG_INFINITY);
    for (i, x) in xs.enumerate() {
        if x.is_nan() {
            return i as i64;
        }
        if best.0 < 0 || x > best.1 {
            best = (i as i64, x);
        }
    }
    best.0
}

fn target_scores(doc: &Map<String, Value>, n: usize) -> Option<Vec<f64>> {
    let v = doc.get("target_scores")?;
    let scores: Vec<f64> = match v {
        Value::Array(items) => items.iter().map(Value::as_f64).collect::<Option<_>>()?,
        Value::Object(m) => m.values().map(Value::as_f64).collect::<Option<_>>()?,
        _ => return None,
    };
    (scores.len() == n).then_some(scores)
}

fn softmax(xs: &[f64]) -> Vec<f64> {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = xs.iter().map(|x| (x - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax([1.0, 3.0, 3.0].into_iter()), 1);
        assert_eq!(argmax([f64::NEG_INFINITY].into_iter()), 0);
    }

    #[test]
    fn multiple_choice_accuracies_read_the_target_as_lm_eval_does() {
        let choices = ["a".to_string(), "bbbb".to_string()];
        let doc = Map::new();
        let target = json!("bbbb");
        let mc = MultipleChoice {
            choices: &choices,
            lls: &[-1.0, -2.0],
            greedy: &[true, false],
            unconditional: None,
            target: &target,
            multiple_target: false,
            doc: &doc,
        };
        let value = |m: &str| match document_value(m, &Map::new(), &Evidence::MultipleChoice(mc)) {
            Ok(Some(ItemValue::Score(x))) => x,
            other => panic!("{m}: {other:?}"),
        };
        // The target names choice 1 by its text; the raw argmax is 0, the
        // length-normalised one 1 (-2/4 > -1/1).
        assert_eq!(value("acc"), 0.0);
        assert_eq!(value("acc_norm"), 1.0);
        assert_eq!(value("exact_match"), 0.0);
        let seven = json!(7);
        let out_of_range = MultipleChoice {
            target: &seven,
            ..mc
        };
        let err = document_value("acc", &Map::new(), &Evidence::MultipleChoice(out_of_range))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("target 7") && err.contains("2 choices"),
            "{err}"
        );
        assert!(matches!(
            document_value(
                "acc_mutual_info",
                &Map::new(),
                &Evidence::MultipleChoice(mc)
            ),
            Err(MetricError::MissingInput(_))
        ));
        assert!(
            document_value("bits_per_byte", &Map::new(), &Evidence::MultipleChoice(mc))
                .unwrap()
                .is_none()
        );
    }
}
