//! A task's `!function` hooks resolved to native ports, once, when the task
//! is planned. Each field's port is checked here to be of that field's kind
//! (and `process_results` of the task's output type), so the planner, the
//! prompter and the scorer call typed functions and check nothing again.

use std::collections::HashMap;

use serde_json::Value;

use super::config::{Hook, TaskConfig};
use super::TaskError;
use crate::data::Doc;
use crate::ports::{MetricValues, Native, Resolver, ResultsFn, Unresolved};
use crate::request::OutputType;

/// `process_docs`: a split's documents, transformed or filtered.
pub type DocsFn = fn(Vec<Doc>) -> Result<Vec<Doc>, String>;
/// `doc_to_text`, `doc_to_target` or `doc_to_choice`.
pub type ValueFn = fn(&Doc) -> Result<Value, String>;
/// `process_results` of a generation task.
pub type GeneratedFn = fn(&Doc, &[String]) -> Result<MetricValues, String>;

/// A port with the reference the config wrote, for messages.
#[derive(Debug, Clone)]
pub struct Call<F> {
    pub run: F,
    /// `module.function` as the config names it.
    pub name: String,
}

/// What a `process_results` port reads.
#[derive(Debug, Clone, Copy)]
pub enum ResultsPort {
    /// The (log-likelihood, is-greedy) pairs of the document's requests.
    Loglikelihoods(ResultsFn),
    /// The filtered generations.
    Generated(GeneratedFn),
}

/// A task's `process_results` port and the metrics it gives values for.
#[derive(Debug, Clone)]
pub struct ProcessResults {
    pub call: Call<ResultsPort>,
    pub metrics: &'static [&'static str],
}

/// Every hook of one task, resolved.
#[derive(Debug, Clone, Default)]
pub struct TaskPorts {
    pub process_docs: Option<Call<DocsFn>>,
    pub fewshot_process_docs: Option<Call<DocsFn>>,
    /// The `doc_to_*` hooks (the task's and its few-shot config's), by hook.
    values: HashMap<Hook, Call<ValueFn>>,
    pub process_results: Option<ProcessResults>,
}

impl TaskPorts {
    /// Resolves every hook `config` names, or says which has no port (or
    /// one of another kind).
    pub fn resolve(config: &TaskConfig, resolver: &Resolver) -> Result<TaskPorts, TaskError> {
        let mut ports = TaskPorts::default();
        for (field, hook) in config.hooks() {
            let port = resolver
                .resolve(&hook.folder, &hook.function)
                .map_err(|why| unresolved(config, field, hook, why))?;
            let name = hook.function.clone();
            let generation = config.output_type == OutputType::GenerateUntil;
            match (field, port.native) {
                ("process_docs", Native::Docs(run)) => {
                    ports.process_docs = Some(Call { run, name });
                }
                ("fewshot_config.process_docs", Native::Docs(run)) => {
                    ports.fewshot_process_docs = Some(Call { run, name });
                }
                ("process_results", Native::Results(f)) if !generation => {
                    ports.process_results = Some(ProcessResults {
                        call: Call {
                            run: ResultsPort::Loglikelihoods(f),
                            name,
                        },
                        metrics: port.metrics,
                    });
                }
                ("process_results", Native::Generated(f)) if generation => {
                    ports.process_results = Some(ProcessResults {
                        call: Call {
                            run: ResultsPort::Generated(f),
                            name,
                        },
                        metrics: port.metrics,
                    });
                }
                (field, Native::Value(run)) if field.contains("doc_to_") => {
                    ports.values.insert(hook.clone(), Call { run, name });
                }
                _ => {
                    return Err(TaskError::Field {
                        path: config.source.clone(),
                        field: field.to_string(),
                        message: format!(
                        "`{}` is a port of another kind of hook, not of {field} for output_type {}",
                        hook.function,
                        config.output_type.name()
                    ),
                    })
                }
            }
        }
        Ok(ports)
    }

    /// The port of a `doc_to_*` hook of the task.
    pub fn value(&self, hook: &Hook) -> Option<&Call<ValueFn>> {
        self.values.get(hook)
    }
}

fn unresolved(config: &TaskConfig, field: &str, hook: &Hook, why: Unresolved) -> TaskError {
    match why {
        Unresolved::NoPort => TaskError::PythonHook {
            path: config.source.clone(),
            field: field.to_string(),
            function: hook.function.clone(),
        },
        Unresolved::Differs { file, fingerprint } => TaskError::HookDiffers {
            path: config.source.clone(),
            field: field.to_string(),
            function: hook.function.clone(),
            file,
            fingerprint,
        },
    }
}
