//! From task names to prepared documents: load each selected task's data,
//! choose its splits as lm-eval does, and build every document's requests.
//!
//! Planning needs no model, so `assay requests` and `assay tasks validate`
//! run exactly this and stop.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::Error;
use crate::data::{self, Doc, HubSource};
use crate::engine::{Answers, OverlongRequest, SkippedDocument, TaskRequests};
use crate::invocation::Invocation;
use crate::metric::{self, Aggregation, FilterPipeline};
use crate::ports::python::{PyHook, PythonFilter};
use crate::prompt::chat::ChatTemplate;
use crate::prompt::{Prepared, PromptOptions, Prompter};
use crate::task::config::MetricConfig;
use crate::task::ports::{Call, DocsPort, TaskPorts};
use crate::task::registry::{Node, Selection};
use crate::task::{Registry, TaskConfig, TaskError};

/// How each task is prepared: the invocation's options, with its chat
/// template compiled once for all tasks.
pub struct Preparation<'a> {
    invocation: &'a Invocation,
    chat_template: Option<Arc<ChatTemplate>>,
    show_progress: bool,
}

impl<'a> Preparation<'a> {
    pub fn new(invocation: &'a Invocation, show_progress: bool) -> Result<Self, Error> {
        let chat_template = invocation
            .compiled_chat_template()
            .map_err(|e| Error::Input(format!("the chat template: {e}")))?;
        Ok(Preparation {
            invocation,
            chat_template,
            show_progress,
        })
    }
}

/// A metric a task reports, with its aggregation and direction.
#[derive(Debug, Clone)]
pub struct MetricSpec {
    pub name: String,
    pub aggregation: Aggregation,
    pub higher_is_better: bool,
    pub kwargs: serde_json::Map<String, Value>,
    /// A metric function in Python (`metric: !function`), called with each
    /// document's gold and prediction.
    pub python_metric: Option<PyHook>,
    /// An aggregation function in Python, which replaces `aggregation`.
    pub python_aggregation: Option<PyHook>,
}

/// One task ready to run.
#[derive(Debug)]
pub struct PlannedTask {
    pub config: TaskConfig,
    /// Its `!function` hooks, resolved to native ports.
    pub ports: TaskPorts,
    pub num_fewshot: usize,
    pub docs: Vec<Prepared>,
    /// Documents in the evaluation split before `--limit` and sharding.
    pub total_docs: usize,
    pub metrics: Vec<MetricSpec>,
    pub filters: Vec<FilterPipeline>,
    pub multiple_target: bool,
    /// SHA-256 of the canonical merged config.
    pub config_hash: String,
    /// Data file -> SHA-256.
    pub data_files: BTreeMap<String, String>,
    /// Where a Hub dataset came from: repo, config, revision, commit.
    pub data_source: Option<HubSource>,
}

/// Everything a run will evaluate.
#[derive(Debug)]
pub struct Plan {
    pub tasks: Vec<PlannedTask>,
    pub tree: Selection,
}

impl Plan {
    /// Group members that cannot run, as (name, reason).
    pub fn skipped(&self) -> Vec<(String, String)> {
        fn walk(node: &Node, out: &mut Vec<(String, String)>) {
            match node {
                Node::Skipped { name, error } => out.push((name.clone(), error.clone())),
                Node::Group { children, .. } => children.iter().for_each(|c| walk(c, out)),
                Node::Task(_) => {}
            }
        }
        let mut out = Vec::new();
        self.tree.iter().for_each(|n| walk(n, &mut out));
        out
    }
}

impl Plan {
    /// Every task's requests, for the engine.
    pub fn requests(&self) -> Vec<TaskRequests<'_>> {
        self.tasks
            .iter()
            .map(|t| TaskRequests {
                task: &t.config.task,
                repeats: t.config.repeats,
                docs: t
                    .docs
                    .iter()
                    .map(|d| (d.doc_id, d.requests.as_slice()))
                    .collect(),
            })
            .collect()
    }

    /// Removes the documents with a request that was skipped as too long,
    /// so they are not scored; returns them.
    pub fn drop_overlong(&mut self, answers: &Answers) -> Vec<SkippedDocument> {
        if answers.overlong.is_empty() {
            return Vec::new();
        }
        let why: HashMap<&str, &OverlongRequest> = answers
            .overlong
            .iter()
            .map(|o| (o.hash.as_str(), o))
            .collect();
        let mut dropped = Vec::new();
        for task in &mut self.tasks {
            let name = task.config.task.clone();
            task.docs.retain(|doc| {
                let hit = doc
                    .requests
                    .iter()
                    .find_map(|r| why.get(r.hash().as_str()).copied());
                if let Some(o) = hit {
                    dropped.push(SkippedDocument {
                        task: name.clone(),
                        doc_id: doc.doc_id,
                        reason: format!(
                            "a request needs {} tokens; the context holds {}",
                            o.tokens, o.n_ctx
                        ),
                    });
                }
                hit.is_none()
            });
        }
        dropped
    }
}

/// Resolves the invocation's task names and prepares every document of
/// every task.
pub fn plan(
    registry: &Registry,
    invocation: &Invocation,
    show_progress: bool,
) -> Result<Plan, Error> {
    let names = &invocation.tasks;
    let preparation = Preparation::new(invocation, show_progress)?;
    let tree = registry.select(names)?;
    let mut tasks = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for node in &tree {
        for config in node.tasks() {
            if seen.insert(config.task.clone()) {
                let ports = registry.ports(config)?;
                tasks.push(plan_task(config.clone(), ports, &preparation)?);
            }
        }
    }
    if tasks.is_empty() {
        return Err(Error::Input(format!(
            "nothing to run: every task selected by `{}` was skipped",
            names.join(",")
        )));
    }
    Ok(Plan { tasks, tree })
}

fn field_error(config: &TaskConfig, field: &str, message: String) -> Error {
    Error::Task(TaskError::Field {
        path: config.source.clone(),
        field: field.to_string(),
        message,
    })
}

/// The splits a task reads: every split its config names (a Hub dataset
/// downloads only these).
pub fn needed_splits(config: &TaskConfig) -> Vec<String> {
    let mut out: Vec<String> = [
        &config.test_split,
        &config.validation_split,
        &config.training_split,
        &config.fewshot_config.split,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    out.sort();
    out.dedup();
    out
}

/// Loads one task's data and prepares its documents.
/// Loads one task's data and prepares its documents; `ports` are its hooks,
/// resolved.
pub fn plan_task(
    config: TaskConfig,
    ports: TaskPorts,
    preparation: &Preparation,
) -> Result<PlannedTask, Error> {
    let options = preparation.invocation;
    // Code from the task folder is about to run: say which, unless quiet.
    for hook in ports.uses.iter().filter(|_| preparation.show_progress) {
        if let Some(python) = &hook.python {
            eprintln!(
                "task {}: {} runs {}:{} in Python",
                config.task,
                hook.field,
                python.source(),
                python.function()
            );
        }
    }
    let metrics = metric_specs(&config, &ports)?;
    let filters = match &config.filter_list {
        None => vec![FilterPipeline::lm_eval_default()],
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let steps = f
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(j, s)| match ports.filters.get(&(i, j)) {
                        Some(hook) => Ok(metric::Filter::External(Arc::new(PythonFilter {
                            hook: hook.clone(),
                            kwargs: s.kwargs.clone(),
                        }))),
                        None => metric::Filter::from_config(&s.function, &s.kwargs),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        field_error(&config, &format!("filter_list[{i}]"), e.to_string())
                    })?;
                Ok(FilterPipeline::new(f.name.clone(), steps))
            })
            .collect::<Result<Vec<_>, Error>>()?,
    };
    let dataset = data::load(
        config.dataset_path.as_deref(),
        config.dataset_name.as_deref(),
        &config.dataset_kwargs,
        &config.source,
        &needed_splits(&config),
    )?;
    let split_docs_raw = |field: &str, split: &str| -> Result<Vec<Doc>, Error> {
        dataset.splits.get(split).cloned().ok_or_else(|| {
            field_error(
                &config,
                field,
                format!(
                    "split `{split}` is not in the dataset (it has: {})",
                    dataset.split_names()
                ),
            )
        })
    };
    // lm-eval's process_docs applies to every split the task reads; the
    // few-shot split gets fewshot_config's (inherited from the task's). As
    // in lm-eval, the few-shot split is processed first, and the task's
    // first call is the one after its generators were seeded.
    let first_call = std::cell::Cell::new(true);
    let process = |docs: Vec<Doc>, field: &str, port: Option<&Call<DocsPort>>| match port {
        None => Ok(docs),
        Some(p) => p
            .docs(docs, first_call.replace(false))
            .map_err(|m| field_error(&config, field, format!("{}: {m}", p.name))),
    };
    let split_docs = |field: &str, split: &str| -> Result<Vec<Doc>, Error> {
        let hook = if field == "fewshot_split" {
            ports.fewshot_process_docs.as_ref()
        } else {
            ports.process_docs.as_ref()
        };
        let docs = split_docs_raw(field, split)?;
        let hook_field = if field == "fewshot_split" {
            "fewshot_config.process_docs"
        } else {
            "process_docs"
        };
        process(docs, hook_field, hook)
    };
    let fs = &config.fewshot_config;
    let fewshot_docs = if let Some(s) = &fs.split {
        split_docs("fewshot_split", s)?
    } else if let Some(samples) = &ports.fewshot_samples {
        samples.run.samples().map_err(|e| {
            field_error(
                &config,
                "fewshot_config.samples",
                format!("{}: {e}", samples.name),
            )
        })?
    } else if let Some(samples) = &fs.samples {
        samples
            .iter()
            .map(|v| v.as_object().cloned())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                field_error(
                    &config,
                    "fewshot_config.samples",
                    "every sample must be a mapping".into(),
                )
            })?
    } else if let Some(s) = &config.training_split {
        split_docs("training_split", s)?
    } else if let Some(s) = &config.validation_split {
        split_docs("validation_split", s)?
    } else if let Some(s) = &config.test_split {
        split_docs("test_split", s)?
    } else {
        vec![]
    };
    let eval_docs = if let Some(s) = &config.test_split {
        split_docs("test_split", s)?
    } else if let Some(s) = &config.validation_split {
        split_docs("validation_split", s)?
    } else {
        return Err(field_error(
            &config,
            "test_split",
            "missing: set test_split or validation_split".into(),
        ));
    };
    if eval_docs.is_empty() {
        let files: Vec<&str> = dataset.files.keys().map(String::as_str).collect();
        return Err(field_error(
            &config,
            "test_split",
            format!(
                "the evaluation split has no documents (read from {})",
                files.join(", ")
            ),
        ));
    }
    let total_docs = eval_docs.len();
    let limit = options.limit.map_or(total_docs, |l| l.of(total_docs));
    let prompt_options = PromptOptions {
        num_fewshot: options.num_fewshot,
        fewshot_seed: options.fewshot_seed,
        system_instruction: options.system_instruction.clone(),
        chat_template: preparation.chat_template.clone(),
        fewshot_as_multiturn: options.fewshot_as_multiturn,
    };
    ports.prefetch(&eval_docs[..limit]);
    let mut prompter = Prompter::new(&config, &ports, &eval_docs, fewshot_docs, prompt_options)?;
    crate::engine::log_line(
        preparation.show_progress,
        &format!("task {}: {limit} document(s)", config.task),
    );
    let bar = crate::engine::progress(
        preparation.show_progress,
        limit as u64,
        &format!("prompts {}", config.task),
    );
    let mut docs = Vec::with_capacity(limit);
    for (doc_id, doc) in eval_docs.iter().take(limit).enumerate() {
        // Every document is prepared, even those of other shards, so that
        // few-shot draws stay identical to an unsharded run.
        let prepared = prompter.prepare(doc_id, doc)?;
        if options.shard.is_none_or(|(k, n)| doc_id % n == k) {
            docs.push(prepared);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let num_fewshot = prompter.num_fewshot();
    let multiple_target = prompter.multiple_target;
    let config_hash = config.config_hash();
    Ok(PlannedTask {
        num_fewshot,
        docs,
        total_docs,
        metrics,
        filters,
        multiple_target,
        config_hash,
        data_files: dataset.files,
        data_source: dataset.source,
        config,
        ports,
    })
}

fn metric_specs(config: &TaskConfig, ports: &TaskPorts) -> Result<Vec<MetricSpec>, Error> {
    let entries: Vec<MetricConfig> = match &config.metric_list {
        None => metric::default_metrics(config.output_type)
            .iter()
            .map(|m| MetricConfig {
                metric: m.to_string(),
                metric_hook: None,
                aggregation: None,
                aggregation_hook: None,
                higher_is_better: None,
                kwargs: serde_json::Map::new(),
            })
            .collect(),
        Some(list) => list.clone(),
    };
    let mut out = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let MetricConfig {
            metric: name,
            aggregation,
            higher_is_better: hib,
            kwargs,
            ..
        } = entry;
        let python_metric = ports.metric_functions.get(&i).cloned();
        let python_aggregation = ports.aggregations.get(&i).cloned();
        let field = format!("metric_list[{i}]");
        let info = metric::metric_info(&name);
        let supported: Vec<String> = match &ports.process_results {
            Some(port) => port.metrics.clone(),
            None => metric::computed_metrics(config.output_type)
                .into_iter()
                .map(str::to_string)
                .collect(),
        };
        if python_metric.is_none() && !supported.contains(&name) {
            return Err(field_error(
                config,
                &format!("{field}.metric"),
                format!(
                    "`{name}` is not a metric assay computes for output_type {} (known: {})",
                    config.output_type.name(),
                    supported.join(", ")
                ),
            ));
        }
        let aggregation = match aggregation {
            _ if python_aggregation.is_some() => Aggregation::Mean,
            Some(a) => Aggregation::from_name(&a)
                .map_err(|e| field_error(config, &format!("{field}.aggregation"), e.to_string()))?,
            None => info
                .map(|i| i.aggregation())
                .transpose()
                .map_err(|e| field_error(config, &field, e.to_string()))?
                .unwrap_or(Aggregation::Mean),
        };
        if name == "exact_match" && python_metric.is_none() {
            metric::ExactMatchOptions::from_kwargs(&kwargs)
                .map_err(|e| field_error(config, &field, e.to_string()))?;
        }
        out.push(MetricSpec {
            higher_is_better: hib.or(info.map(|i| i.higher_is_better)).unwrap_or(true),
            name,
            aggregation,
            kwargs,
            python_metric,
            python_aggregation,
        });
    }
    Ok(out)
}
