//! Scoring: lm-eval's `process_results` for each output type, then
//! aggregation and standard errors per (metric, filter), then groups.
//!
//! Per-document values keep lm-eval's shapes ([`ItemValue`]) so that
//! aggregations like perplexity or F1 are computed over the whole task, not
//! averaged per document.

use std::collections::BTreeMap;

use serde_json::Value;

use super::plan::PlannedTask;
use super::Error;
use crate::engine::Answers;
use crate::metric::{self, Evidence, ItemValue, MultipleChoice};
use crate::ports::python::{self, HookError, PyHook};
use crate::prompt::Prepared;
use crate::python::value::py_str;
use crate::request::{OutputType, Response};
use crate::stats;
use crate::task::config::{AggregateMetric, GroupConfig};
use crate::task::ports::{ProcessResults, ResultsPort};
use crate::task::registry::Node;

/// One document's outcome under one filter.
#[derive(Debug, Clone)]
pub struct Sample {
    pub doc_id: usize,
    pub filter: String,
    /// The raw responses, one per request (JSON: `[logprob, is_greedy]`,
    /// `[logprob]` or the generated text), repeats flattened.
    pub resps: Vec<Value>,
    /// The filtered response(s) the metrics saw.
    pub filtered: Value,
    /// Per metric: the value this document contributes (1/0 for accuracy,
    /// the log-likelihood for perplexities, 1/0 for gold == prediction for
    /// F1 and MCC).
    pub metrics: BTreeMap<String, f64>,
}

pub use crate::stats::Score;

/// The scores of one task.
#[derive(Debug, Clone)]
pub struct TaskScores {
    pub task: String,
    /// `"metric,filter"` -> score, in lm-eval's key style.
    pub scores: BTreeMap<String, Score>,
    pub samples: Vec<Sample>,
    pub n_samples: usize,
}

/// The scores of one group.
#[derive(Debug, Clone)]
pub struct GroupScores {
    pub group: String,
    pub alias: String,
    pub scores: BTreeMap<String, Score>,
    pub subtasks: Vec<String>,
    pub n_samples: usize,
}

const BOOTSTRAP_ITERS: usize = 100_000;

fn scoring_error(task: &PlannedTask, message: impl Into<String>) -> Error {
    Error::Scoring {
        task: task.config.task.clone(),
        message: message.into(),
    }
}

/// Scores one task from the run's answers.
pub fn score_task(task: &PlannedTask, answers: &Answers) -> Result<TaskScores, Error> {
    let responses: Vec<Vec<&Response>> = task
        .docs
        .iter()
        .map(|d| {
            d.requests
                .iter()
                .map(|r| {
                    answers.by_hash.get(&r.hash()).ok_or_else(|| {
                        scoring_error(
                            task,
                            format!("document {} has an unanswered request", d.doc_id),
                        )
                    })
                })
                .collect()
        })
        .collect::<Result<_, _>>()?;
    let mut samples = Vec::new();
    let mut items: BTreeMap<(String, String), Vec<ItemValue>> = BTreeMap::new();
    if task.config.output_type == OutputType::GenerateUntil {
        for pipeline in &task.filters {
            let texts: Vec<Vec<String>> = responses
                .iter()
                .map(|rs| {
                    rs.iter()
                        .flat_map(|r| match r {
                            Response::Generate { text } => vec![text.clone(); task.config.repeats],
                            _ => vec![],
                        })
                        .collect()
                })
                .collect();
            let docs: Vec<Value> = if pipeline.needs_docs() {
                task.docs
                    .iter()
                    .map(|d| Value::Object(d.doc.clone()))
                    .collect()
            } else {
                vec![]
            };
            let filtered = pipeline
                .apply(texts.clone(), &docs)
                .map_err(|e| scoring_error(task, e.to_string()))?;
            let predictions: Vec<String> = filtered
                .iter()
                .map(|out| out.first().cloned().unwrap_or_default())
                .collect();
            let per_doc = all_generation_values(task, &predictions)?;
            for (((doc, raw), prediction), values) in
                task.docs.iter().zip(texts).zip(predictions).zip(per_doc)
            {
                samples.push(sample(
                    doc,
                    pipeline.name(),
                    raw.into_iter().map(Value::String).collect(),
                    Value::String(prediction),
                    &values,
                ));
                for (name, v) in values {
                    items
                        .entry((name, pipeline.name().to_string()))
                        .or_default()
                        .push(v);
                }
            }
        }
    } else {
        let python_values = match task.ports.python_results() {
            Some(hook) => {
                let items = task
                    .docs
                    .iter()
                    .zip(&responses)
                    .map(|(doc, rs)| {
                        (
                            Value::Object(doc.doc.clone()),
                            loglikelihood_results(task.config.output_type, rs),
                        )
                    })
                    .collect();
                Some(python_results(task, hook, items)?)
            }
            _ => None,
        };
        let mut python_values = python_values.map(Vec::into_iter);
        for (doc, rs) in task.docs.iter().zip(&responses) {
            let values = match python_values.as_mut().and_then(Iterator::next) {
                Some(values) => values,
                None => loglikelihood_values(task, doc, rs)?,
            };
            let raw: Vec<Value> = rs
                .iter()
                .map(|r| match r {
                    Response::Loglikelihood { logprob, is_greedy } => {
                        serde_json::json!([logprob, is_greedy])
                    }
                    Response::Rolling { logprob } => serde_json::json!([logprob]),
                    Response::Generate { text } => Value::String(text.clone()),
                })
                .collect();
            let filtered = Value::Array(raw.clone());
            samples.push(sample(doc, "none", raw, filtered, &values));
            for (name, v) in values {
                items.entry((name, "none".to_string())).or_default().push(v);
            }
        }
    }
    let mut scores = BTreeMap::new();
    for ((name, filter), values) in &items {
        let spec = task
            .metrics
            .iter()
            .find(|m| &m.name == name)
            .expect("values only for listed metrics");
        let (value, stderr) = match &spec.python_aggregation {
            // lm-eval has no standard error for an aggregation it does not
            // know.
            Some(hook) => (
                hook.aggregate(values.iter().map(to_python).collect())
                    .map_err(|e| scoring_error(task, format!("metric `{name}`: {e}")))?,
                None,
            ),
            None => (
                spec.aggregation
                    .aggregate(values)
                    .map_err(|e| scoring_error(task, e.to_string()))?,
                metric::stderr(name, spec.aggregation, values, BOOTSTRAP_ITERS)
                    .filter(|s| s.is_finite()),
            ),
        };
        scores.insert(format!("{name},{filter}"), Score { value, stderr });
    }
    Ok(TaskScores {
        task: task.config.task.clone(),
        scores,
        n_samples: task.docs.len(),
        samples,
    })
}

fn sample(
    doc: &Prepared,
    filter: &str,
    resps: Vec<Value>,
    filtered: Value,
    values: &[(String, ItemValue)],
) -> Sample {
    Sample {
        doc_id: doc.doc_id,
        filter: filter.to_string(),
        resps,
        filtered,
        metrics: values
            .iter()
            .map(|(k, v)| {
                let x = match v {
                    ItemValue::Score(x) => *x,
                    ItemValue::Weighted { loglikelihood, .. } => *loglikelihood,
                    ItemValue::GoldPred { gold, pred } => f64::from(u8::from(gold == pred)),
                    ItemValue::GoldProbs { gold, probs } => usize::try_from(*gold)
                        .ok()
                        .and_then(|g| probs.get(g))
                        .copied()
                        .unwrap_or(f64::NAN),
                    ItemValue::Python(v) => python::number(v).unwrap_or(f64::NAN),
                };
                (k.clone(), x)
            })
            .collect(),
    }
}

fn wants(task: &PlannedTask, name: &str) -> bool {
    task.metrics.iter().any(|m| m.name == name)
}

/// Each listed metric's value from what a document's responses say.
fn listed_values(
    task: &PlannedTask,
    doc: &Prepared,
    evidence: &Evidence,
) -> Result<Vec<(String, ItemValue)>, Error> {
    let mut out = Vec::new();
    for spec in task.metrics.iter().filter(|m| m.python_metric.is_none()) {
        let value = metric::document_value(&spec.name, &spec.kwargs, evidence)
            .map_err(|e| scoring_error(task, format!("document {}: {e}", doc.doc_id)))?;
        if let Some(v) = value {
            out.push((spec.name.clone(), v));
        }
    }
    Ok(out)
}

fn loglikelihood_values(
    task: &PlannedTask,
    doc: &Prepared,
    rs: &[&Response],
) -> Result<Vec<(String, ItemValue)>, Error> {
    let ll_of = |r: &Response| match r {
        Response::Loglikelihood { logprob, is_greedy } => (*logprob, *is_greedy),
        Response::Rolling { logprob } => (*logprob, false),
        Response::Generate { .. } => (f64::NAN, false),
    };
    let pairs: Vec<(f64, bool)> = rs.iter().map(|r| ll_of(r)).collect();
    if let Some(port) = &task.ports.process_results {
        return hook_values(task, port, doc, HookInput::Loglikelihoods(&pairs));
    }
    match task.config.output_type {
        OutputType::Loglikelihood => {
            let (ll, greedy) = pairs[0];
            listed_values(task, doc, &Evidence::Loglikelihood { ll, greedy })
        }
        OutputType::LoglikelihoodRolling => {
            let text = py_str(&doc.target);
            let ll = pairs[0].0;
            listed_values(task, doc, &Evidence::Rolling { ll, text: &text })
        }
        OutputType::MultipleChoice => {
            let choices = doc.choices.clone().unwrap_or_default();
            let (mut lls, greedy): (Vec<f64>, Vec<bool>) = pairs.into_iter().unzip();
            let mut unconditional = None;
            let reads_unconditional = task
                .metrics
                .iter()
                .any(|m| metric::reads_unconditional(&m.name));
            if 2 * choices.len() == lls.len() && reads_unconditional {
                unconditional = Some(lls.split_off(choices.len()));
            }
            let evidence = Evidence::MultipleChoice(MultipleChoice {
                choices: &choices,
                lls: &lls,
                greedy: &greedy,
                unconditional: unconditional.as_deref(),
                target: doc.gold_input.as_ref().unwrap_or(&doc.target),
                multiple_target: task.multiple_target,
                doc: &doc.doc,
            });
            listed_values(task, doc, &evidence)
        }
        OutputType::GenerateUntil => unreachable!("generation is scored by generation_values"),
    }
}

/// What a `process_results` port is given.
enum HookInput<'a> {
    Loglikelihoods(&'a [(f64, bool)]),
    Generated(&'a [String]),
}

/// A document's metric values from the task's `process_results` port (the
/// metrics the task lists).
fn hook_values(
    task: &PlannedTask,
    port: &ProcessResults,
    doc: &Prepared,
    input: HookInput,
) -> Result<Vec<(String, ItemValue)>, Error> {
    let name = &port.call.name;
    let values = match (&port.call.run, input) {
        (ResultsPort::Loglikelihoods(f), HookInput::Loglikelihoods(pairs)) => f(&doc.doc, pairs),
        (ResultsPort::Generated(f), HookInput::Generated(texts)) => f(&doc.doc, texts),
        _ => {
            return Err(scoring_error(
                task,
                format!("`{name}` is not a port of this output type's process_results hook"),
            ))
        }
    }
    .map_err(|m| scoring_error(task, format!("document {}: {name}: {m}", doc.doc_id)))?;
    Ok(values
        .into_iter()
        .filter(|(name, _)| wants(task, name))
        .collect())
}

fn generation_values(
    task: &PlannedTask,
    doc: &Prepared,
    prediction: &str,
) -> Result<Vec<(String, ItemValue)>, Error> {
    if let Some(port) = &task.ports.process_results {
        let texts = [prediction.to_string()];
        return hook_values(task, port, doc, HookInput::Generated(&texts));
    }
    let golds = golds(task, doc)?;
    let evidence = Evidence::Generated {
        golds: &golds,
        prediction,
    };
    listed_values(task, doc, &evidence)
}

/// A generation document's gold answer(s) as lm-eval's default
/// `process_results` compares them: the chosen option's text, each target
/// of a multiple-target task, else the target as text.
fn golds(task: &PlannedTask, doc: &Prepared) -> Result<Vec<String>, Error> {
    Ok(if let Some(choices) = &doc.choices {
        let i = doc
            .target
            .as_i64()
            .and_then(|i| usize::try_from(i).ok())
            .filter(|i| *i < choices.len());
        vec![i.map(|i| choices[i].clone()).ok_or_else(|| {
            scoring_error(
                task,
                format!(
                    "document {}: the target is not a valid choice index",
                    doc.doc_id
                ),
            )
        })?]
    } else if task.multiple_target {
        match &doc.target {
            Value::Array(items) => items.iter().map(py_str).collect(),
            other => vec![py_str(other)],
        }
    } else {
        vec![py_str(&doc.target)]
    })
}

/// Every document's metric values for one filter's predictions: from the
/// task's `process_results` (every document in one call when it is Python),
/// else from the listed metrics, Python metric functions included.
fn all_generation_values(
    task: &PlannedTask,
    predictions: &[String],
) -> Result<Vec<Vec<(String, ItemValue)>>, Error> {
    if let Some(hook) = task.ports.python_results() {
        let items = task
            .docs
            .iter()
            .zip(predictions)
            .map(|(d, p)| (Value::Object(d.doc.clone()), serde_json::json!([p])))
            .collect();
        return python_results(task, hook, items);
    }
    let mut out = task
        .docs
        .iter()
        .zip(predictions)
        .map(|(doc, p)| generation_values(task, doc, p))
        .collect::<Result<Vec<_>, _>>()?;
    if task.ports.process_results.is_some() {
        return Ok(out);
    }
    for spec in &task.metrics {
        let Some(hook) = &spec.python_metric else {
            continue;
        };
        // Each (document, gold) pair is one item; a document with several
        // golds scores 1 when any does, as in lm-eval.
        let mut owners = Vec::new();
        let mut items = Vec::new();
        for (i, (doc, p)) in task.docs.iter().zip(predictions).enumerate() {
            for gold in golds(task, doc)? {
                owners.push(i);
                items.push((Value::String(gold), Value::String(p.clone())));
            }
        }
        let values = hook
            .metric(&spec.kwargs, items)
            .map_err(|e| hook_error(task, &owners, &spec.name, e))?;
        let mut per_doc: Vec<Vec<Value>> = vec![Vec::new(); task.docs.len()];
        for (owner, value) in owners.into_iter().zip(values) {
            let value = match value {
                mapping if python::is_mapping(&mapping) => {
                    mapping.get(&spec.name).cloned().ok_or_else(|| {
                        scoring_error(
                            task,
                            format!(
                                "metric `{}` returned a mapping without the key `{}`",
                                spec.name, spec.name
                            ),
                        )
                    })?
                }
                other => other,
            };
            per_doc[owner].push(value);
        }
        for (values, scores) in out.iter_mut().zip(per_doc) {
            let value = if task.multiple_target {
                let any = scores
                    .iter()
                    .any(|v| python::number(v).is_some_and(|x| x != 0.0));
                ItemValue::Score(f64::from(u8::from(any)))
            } else {
                scores
                    .into_iter()
                    .next()
                    .map_or(ItemValue::Score(f64::NAN), |v| from_python(v, spec))
            };
            values.push((spec.name.clone(), value));
        }
    }
    Ok(out)
}

/// What lm-eval hands `process_results` for a document's log-likelihood
/// requests: `(ll, is_greedy)` tuples, or the rolling log-likelihood.
fn loglikelihood_results(output_type: OutputType, rs: &[&Response]) -> Value {
    Value::Array(
        rs.iter()
            .map(|r| match r {
                Response::Loglikelihood { logprob, is_greedy }
                    if output_type != OutputType::LoglikelihoodRolling =>
                {
                    python::tuple(vec![python::float(*logprob), Value::Bool(*is_greedy)])
                }
                Response::Loglikelihood { logprob, .. } | Response::Rolling { logprob } => {
                    python::float(*logprob)
                }
                Response::Generate { text } => Value::String(text.clone()),
            })
            .collect(),
    )
}

/// A Python `process_results` over every document at once: the values of
/// the metrics the task lists.
fn python_results(
    task: &PlannedTask,
    hook: &PyHook,
    items: Vec<(Value, Value)>,
) -> Result<Vec<Vec<(String, ItemValue)>>, Error> {
    let owners: Vec<usize> = (0..items.len()).collect();
    let maps = hook
        .results(items)
        .map_err(|e| hook_error(task, &owners, "process_results", e))?;
    Ok(maps
        .into_iter()
        .map(|m| {
            task.metrics
                .iter()
                .filter_map(|spec| {
                    m.get(&spec.name)
                        .map(|v| (spec.name.clone(), from_python(v.clone(), spec)))
                })
                .collect()
        })
        .collect())
}

/// A hook's error, naming the document it raised on.
fn hook_error(task: &PlannedTask, owners: &[usize], what: &str, error: HookError) -> Error {
    match error {
        HookError::Raised {
            index: Some(i),
            message,
        } => {
            let doc = owners
                .get(i)
                .and_then(|o| task.docs.get(*o))
                .map_or(i, |d| d.doc_id);
            scoring_error(task, format!("document {doc}: {what}: {message}"))
        }
        other => scoring_error(task, format!("{what}: {other}")),
    }
}

/// A value a Python hook returned, as the metric's aggregation reads it.
fn from_python(value: Value, spec: &super::plan::MetricSpec) -> ItemValue {
    use crate::metric::Aggregation;
    if let Some(x) = python::number(&value) {
        return ItemValue::Score(x);
    }
    if spec.python_aggregation.is_some() {
        return ItemValue::Python(value);
    }
    let pair = match python::plain(value.clone()) {
        Value::Array(items) if items.len() == 2 => Some((items[0].clone(), items[1].clone())),
        _ => None,
    };
    match (spec.aggregation, pair) {
        (Aggregation::F1 | Aggregation::MatthewsCorrcoef, Some((g, p))) => {
            match (g.as_i64(), p.as_i64()) {
                (Some(gold), Some(pred)) => ItemValue::GoldPred { gold, pred },
                _ => ItemValue::Python(value),
            }
        }
        (Aggregation::WeightedPerplexity | Aggregation::BitsPerByte, Some((l, w))) => {
            match (python::number(&l), python::number(&w)) {
                (Some(loglikelihood), Some(weight)) => ItemValue::Weighted {
                    loglikelihood,
                    weight,
                },
                _ => ItemValue::Python(value),
            }
        }
        _ => ItemValue::Python(value),
    }
}

/// A document's value as a Python aggregation function receives it.
fn to_python(item: &ItemValue) -> Value {
    match item {
        ItemValue::Score(x) => python::float(*x),
        ItemValue::Weighted {
            loglikelihood,
            weight,
        } => python::tuple(vec![python::float(*loglikelihood), python::float(*weight)]),
        ItemValue::GoldPred { gold, pred } => python::tuple(vec![(*gold).into(), (*pred).into()]),
        ItemValue::GoldProbs { gold, probs } => python::tuple(vec![
            (*gold).into(),
            Value::Array(probs.iter().map(|p| python::float(*p)).collect()),
        ]),
        ItemValue::Python(v) => v.clone(),
    }
}

/// Aggregates groups bottom-up from their children's scores, as lm-eval's
/// `aggregate_metric_list` does (size-weighted or plain means, pooled errors).
pub fn score_groups(tree: &[Node], tasks: &[TaskScores]) -> Vec<GroupScores> {
    let mut out = Vec::new();
    for node in tree {
        group_scores(node, tasks, &mut out);
    }
    out
}

/// Returns (scores, size) for a node, pushing every group it contains.
fn group_scores(
    node: &Node,
    tasks: &[TaskScores],
    out: &mut Vec<GroupScores>,
) -> Option<(BTreeMap<String, Score>, usize)> {
    match node {
        Node::Skipped { .. } => None,
        Node::Task(config) => tasks
            .iter()
            .find(|t| t.task == config.task)
            .map(|t| (t.scores.clone(), t.n_samples)),
        Node::Group { config, children } => {
            let child_scores: Vec<(BTreeMap<String, Score>, usize)> = children
                .iter()
                .filter_map(|c| group_scores(c, tasks, out))
                .collect();
            let scores = aggregate_group(config, &child_scores);
            let n: usize = child_scores.iter().map(|(_, n)| n).sum();
            let mut subtasks = Vec::new();
            for c in children {
                match c {
                    Node::Task(t) => subtasks.push(t.task.clone()),
                    Node::Group { config, .. } => subtasks.push(config.group.clone()),
                    Node::Skipped { .. } => {}
                }
            }
            out.push(GroupScores {
                group: config.group.clone(),
                alias: config
                    .group_alias
                    .clone()
                    .unwrap_or_else(|| config.group.clone()),
                scores: scores.clone(),
                subtasks,
                n_samples: n,
            });
            Some((scores, n))
        }
    }
}

fn aggregate_group(
    config: &GroupConfig,
    children: &[(BTreeMap<String, Score>, usize)],
) -> BTreeMap<String, Score> {
    let mut out = BTreeMap::new();
    for AggregateMetric {
        metric,
        filter_list,
        weight_by_size,
    } in &config.aggregate_metric_list
    {
        let filters: Vec<String> = match filter_list {
            Some(f) => f.clone(),
            None => {
                let mut found: Vec<String> = children
                    .iter()
                    .flat_map(|(s, _)| s.keys())
                    .filter_map(|k| {
                        k.split_once(',')
                            .filter(|(m, _)| m == metric)
                            .map(|(_, f)| f.to_string())
                    })
                    .collect();
                found.sort();
                found.dedup();
                found
            }
        };
        for filter in filters {
            let key = format!("{metric},{filter}");
            let present: Vec<(&Score, usize)> = children
                .iter()
                .filter_map(|(s, n)| s.get(&key).map(|x| (x, *n)))
                .collect();
            if present.is_empty() {
                continue;
            }
            let values: Vec<f64> = present.iter().map(|(s, _)| s.value).collect();
            let sizes: Vec<usize> = present.iter().map(|(_, n)| *n).collect();
            let value = stats::aggregate_subtask_metrics(&values, &sizes, *weight_by_size);
            let stderr = present
                .iter()
                .map(|(s, _)| s.stderr)
                .collect::<Option<Vec<f64>>>()
                .map(|errs| {
                    if *weight_by_size {
                        stats::pooled_sample_stderr(&errs, &sizes)
                    } else {
                        stats::unweighted_mean_stderr(&errs)
                    }
                })
                .filter(|s| s.is_finite());
            out.insert(key, Score { value, stderr });
        }
    }
    out
}
