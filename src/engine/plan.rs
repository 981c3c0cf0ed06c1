//! From task names to prepared documents: load each selected task's data,
//! choose its splits as lm-eval does, and build every document's requests.
//!
//! Planning needs no model, so `assay requests` and `assay tasks validate`
//! run exactly this and stop.

use std::collections::BTreeMap;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::EngineError;
use crate::data::{self, Doc};
use crate::metric::{self, Aggregation, FilterPipeline};
use crate::prompt::{Prepared, PromptOptions, Prompter};
use crate::request::OutputType;
use crate::task::config::MetricConfig;
use crate::task::hooks::Native;
use crate::task::registry::{Node, Selection};
use crate::task::{Hook, Registry, TaskConfig, TaskError};

/// How much of each task to run (lm-eval's `--limit`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// The first N documents.
    Count(usize),
    /// A fraction of the documents, rounded up.
    Fraction(f64),
}

/// What a run was asked to do, recorded in its run.json so the run can be
/// planned again (to merge shards): the task selection and every option
/// that shapes prompts, but not the shard.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Invocation {
    pub tasks: Vec<String>,
    pub include_path: Vec<std::path::PathBuf>,
    pub num_fewshot: Option<usize>,
    pub limit: Option<Limit>,
    pub fewshot_seed: u64,
    pub system_instruction: Option<String>,
    /// The chat template prompts were rendered with, if any.
    pub chat_template: Option<ChatTemplateRecord>,
    pub fewshot_as_multiturn: bool,
}

/// A chat template as recorded in a run: its source and special tokens, or
/// `messages_json` for prompts sent as message lists.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChatTemplateRecord {
    pub messages_json: bool,
    pub source: String,
    pub bos_token: String,
    pub eos_token: String,
}

impl ChatTemplateRecord {
    pub fn of(template: &crate::prompt::chat::ChatTemplate) -> ChatTemplateRecord {
        ChatTemplateRecord {
            messages_json: template.is_messages_json(),
            source: template.source().to_string(),
            bos_token: template.bos_token().to_string(),
            eos_token: template.eos_token().to_string(),
        }
    }

    pub fn compile(&self) -> Result<crate::prompt::chat::ChatTemplate, String> {
        if self.messages_json {
            Ok(crate::prompt::chat::ChatTemplate::messages_json())
        } else {
            crate::prompt::chat::ChatTemplate::new(&self.source, &self.bos_token, &self.eos_token)
        }
    }
}

/// Task options shared by `run` and `requests`.
#[derive(Debug, Clone, Default)]
pub struct TaskOptions {
    pub num_fewshot: Option<usize>,
    pub limit: Option<Limit>,
    pub fewshot_seed: u64,
    pub system_instruction: Option<String>,
    /// `(k, n)`: run only documents whose id is congruent to k modulo n.
    pub shard: Option<(usize, usize)>,
    pub show_progress: bool,
    /// `--apply-chat-template`: the model's template.
    pub chat_template: Option<std::sync::Arc<crate::prompt::chat::ChatTemplate>>,
    pub fewshot_as_multiturn: bool,
}

/// A metric a task reports, with its aggregation and direction.
#[derive(Debug, Clone)]
pub struct MetricSpec {
    pub name: String,
    pub aggregation: Aggregation,
    pub higher_is_better: bool,
    pub kwargs: serde_json::Map<String, Value>,
}

/// One task ready to run.
#[derive(Debug)]
pub struct PlannedTask {
    pub config: TaskConfig,
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
    pub data_source: Option<serde_json::Value>,
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

/// Resolves `names` and prepares every document of every task.
pub fn plan(
    registry: &Registry,
    names: &[String],
    options: &TaskOptions,
) -> Result<Plan, EngineError> {
    let tree = registry.select(names)?;
    let mut tasks = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for node in &tree {
        for config in node.tasks() {
            if seen.insert(config.task.clone()) {
                tasks.push(plan_task(config.clone(), options)?);
            }
        }
    }
    if tasks.is_empty() {
        return Err(EngineError::Input(format!(
            "nothing to run: every task selected by `{}` was skipped",
            names.join(",")
        )));
    }
    Ok(Plan { tasks, tree })
}

fn field_error(config: &TaskConfig, field: &str, message: String) -> EngineError {
    EngineError::Task(TaskError::Field {
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
pub fn plan_task(config: TaskConfig, options: &TaskOptions) -> Result<PlannedTask, EngineError> {
    config.require_native()?;
    let metrics = metric_specs(&config)?;
    let filters = match &config.filter_list {
        None => vec![FilterPipeline::lm_eval_default()],
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let steps = f
                    .steps
                    .iter()
                    .map(|s| metric::Filter::from_config(&s.function, &s.kwargs))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        field_error(&config, &format!("filter_list[{i}]"), e.to_string())
                    })?;
                Ok(FilterPipeline::new(f.name.clone(), steps))
            })
            .collect::<Result<Vec<_>, EngineError>>()?,
    };
    let dataset = data::load(
        config.dataset_path.as_deref(),
        config.dataset_name.as_deref(),
        &config.dataset_kwargs,
        &config.source,
        &needed_splits(&config),
    )?;
    let split_docs_raw = |field: &str, split: &str| -> Result<Vec<Doc>, EngineError> {
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
    // few-shot split gets fewshot_config's (inherited from the task's).
    let process = |docs: Vec<Doc>, field: &str, hook: Option<&Hook>| match hook {
        None => Ok(docs),
        Some(h) => match config.port(field, h)?.native {
            Native::Docs(f) => {
                f(docs).map_err(|m| field_error(&config, field, format!("{}: {m}", h.function)))
            }
            _ => Err(field_error(
                &config,
                field,
                format!(
                    "`{}` is a port of another kind of hook, not of {field}",
                    h.function
                ),
            )),
        },
    };
    let split_docs = |field: &str, split: &str| -> Result<Vec<Doc>, EngineError> {
        let hook = if field == "fewshot_split" {
            config.fewshot_config.process_docs.as_ref()
        } else {
            config.process_docs.as_ref()
        };
        let docs = split_docs_raw(field, split)?;
        let hook_field = if field == "fewshot_split" {
            "fewshot_config.process_docs"
        } else {
            "process_docs"
        };
        process(docs, hook_field, hook)
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
        return Err(field_error(
            &config,
            "test_split",
            "the evaluation split has no documents".into(),
        ));
    }
    let fs = &config.fewshot_config;
    let fewshot_docs = if let Some(s) = &fs.split {
        split_docs("fewshot_split", s)?
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
    let total_docs = eval_docs.len();
    let limit = match options.limit {
        None => total_docs,
        Some(Limit::Count(n)) => n.min(total_docs),
        Some(Limit::Fraction(f)) => ((total_docs as f64 * f).ceil() as usize).min(total_docs),
    };
    let prompt_options = PromptOptions {
        num_fewshot: options.num_fewshot,
        fewshot_seed: options.fewshot_seed,
        system_instruction: options.system_instruction.clone(),
        chat_template: options.chat_template.clone(),
        fewshot_as_multiturn: options.fewshot_as_multiturn,
    };
    let mut prompter = Prompter::new(&config, &eval_docs, fewshot_docs, prompt_options)?;
    let bar = progress(
        options.show_progress,
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
    })
}

fn metric_specs(config: &TaskConfig) -> Result<Vec<MetricSpec>, EngineError> {
    let entries: Vec<MetricConfig> = match &config.metric_list {
        None => metric::default_metrics(config.output_type)
            .iter()
            .map(|m| MetricConfig {
                metric: m.to_string(),
                aggregation: None,
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
        } = entry;
        let field = format!("metric_list[{i}]");
        let info = metric::metric_info(&name);
        let supported = match &config.process_results {
            Some(hook) => config.port("process_results", hook)?.metrics,
            None => supported_metrics(config.output_type),
        };
        if !supported.contains(&name.as_str()) {
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
            Some(a) => Aggregation::from_name(&a)
                .map_err(|e| field_error(config, &format!("{field}.aggregation"), e.to_string()))?,
            None => info
                .map(|i| i.aggregation())
                .transpose()
                .map_err(|e| field_error(config, &field, e.to_string()))?
                .unwrap_or(Aggregation::Mean),
        };
        if name == "exact_match" {
            metric::ExactMatchOptions::from_kwargs(&kwargs)
                .map_err(|e| field_error(config, &field, e.to_string()))?;
        }
        out.push(MetricSpec {
            higher_is_better: hib.or(info.map(|i| i.higher_is_better)).unwrap_or(true),
            name,
            aggregation,
            kwargs,
        });
    }
    Ok(out)
}

/// The metrics `process_results` produces for each output type.
pub fn supported_metrics(output_type: OutputType) -> &'static [&'static str] {
    match output_type {
        OutputType::Loglikelihood => &["perplexity", "acc"],
        OutputType::LoglikelihoodRolling => {
            &["word_perplexity", "byte_perplexity", "bits_per_byte"]
        }
        OutputType::MultipleChoice => &[
            "acc",
            "acc_norm",
            "acc_bytes",
            "acc_mutual_info",
            "exact_match",
            "f1",
            "mcc",
            "brier_score",
            "multiple_choice_grade",
        ],
        OutputType::GenerateUntil => &["exact_match", "exact_str_match"],
    }
}

pub(crate) fn progress(show: bool, len: u64, label: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>24} [{bar:30}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}
