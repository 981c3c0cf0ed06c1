//! A task's `!function` hooks resolved, once, when the task is planned: to
//! native ports, or (with `--python-hooks`) to the Python functions
//! themselves. Each field's port is checked here to be of that field's kind
//! (and `process_results` of the task's output type), so the planner, the
//! prompter and the scorer call typed functions and check nothing again.

use std::collections::HashMap;

use serde_json::Value;

use super::config::{Hook, HookField, TaskConfig};
use super::TaskError;
use crate::data::Doc;
use crate::ports::python::{HookMode, PyHook};
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

/// A `process_docs` hook.
#[derive(Debug, Clone)]
pub enum DocsPort {
    Native(DocsFn),
    Python(PyHook),
}

/// A `doc_to_text`, `doc_to_target` or `doc_to_choice` hook.
#[derive(Debug, Clone)]
pub enum ValuePort {
    Native(ValueFn),
    Python(PyHook),
}

/// What a `process_results` port reads.
#[derive(Debug, Clone)]
pub enum ResultsPort {
    /// The (log-likelihood, is-greedy) pairs of the document's requests.
    Loglikelihoods(ResultsFn),
    /// The filtered generations.
    Generated(GeneratedFn),
    /// lm-eval's `results` for the output type, in Python.
    Python(PyHook),
}

/// A task's `process_results` port and the metrics it gives values for
/// (for Python, every metric the task lists).
#[derive(Debug, Clone)]
pub struct ProcessResults {
    pub call: Call<ResultsPort>,
    pub metrics: Vec<String>,
}

/// How one hook of a task is run, for the run's provenance.
#[derive(Debug, Clone)]
pub struct HookUse {
    /// The config field, e.g. `process_docs` or `metric_list[0].metric`.
    pub field: String,
    /// `module.function` as the config names it.
    pub function: String,
    /// The Python function when it runs in Python; `None` for a native port.
    pub python: Option<PyHook>,
}

/// Every hook of one task, resolved.
#[derive(Debug, Clone, Default)]
pub struct TaskPorts {
    pub process_docs: Option<Call<DocsPort>>,
    pub fewshot_process_docs: Option<Call<DocsPort>>,
    /// `fewshot_config.samples` as a function (Python only).
    pub fewshot_samples: Option<Call<PyHook>>,
    /// The `doc_to_*` hooks (the task's and its few-shot config's), by hook.
    values: HashMap<Hook, Call<ValuePort>>,
    pub process_results: Option<ProcessResults>,
    /// Python metric functions, by their index in `metric_list`.
    pub metric_functions: HashMap<usize, PyHook>,
    /// Python aggregation functions, by their metric's index in `metric_list`.
    pub aggregations: HashMap<usize, PyHook>,
    /// Python filter classes, by (pipeline, step) in `filter_list`.
    pub filters: HashMap<(usize, usize), PyHook>,
    /// Every hook and how it runs, in config order.
    pub uses: Vec<HookUse>,
}

impl TaskPorts {
    /// Resolves every hook `config` names, or says which has no port (or
    /// one of another kind). With Python hooks on, a hook without a port
    /// (or every hook, for [`HookMode::All`]) runs in Python.
    pub fn resolve(config: &TaskConfig, resolver: &Resolver) -> Result<TaskPorts, TaskError> {
        let mut ports = TaskPorts::default();
        for (field, hook) in config.hooks() {
            let shown = field.to_string();
            let name = hook.function.clone();
            let native = match resolver.python() {
                Some((HookMode::All, _)) => None,
                Some(_) => resolver.resolve(&hook.folder, &hook.function).ok(),
                None => Some(
                    resolver
                        .resolve(&hook.folder, &hook.function)
                        .map_err(|why| unresolved(config, &shown, hook, why))?,
                ),
            };
            let Some(port) = native else {
                let (_, runtime) = resolver.python().expect("Python hooks are on");
                let python = PyHook::new(runtime, &hook.folder, &hook.function).map_err(|m| {
                    TaskError::Field {
                        path: config.source.clone(),
                        field: shown.clone(),
                        message: m,
                    }
                })?;
                ports.python_hook(config, field, python.clone(), name.clone(), hook)?;
                ports.uses.push(HookUse {
                    field: shown,
                    function: name,
                    python: Some(python),
                });
                continue;
            };
            ports.uses.push(HookUse {
                field: shown.clone(),
                function: name.clone(),
                python: None,
            });
            let generation = config.output_type == OutputType::GenerateUntil;
            let metrics = || port.metrics.iter().map(|m| m.to_string()).collect();
            let named = match field {
                HookField::Named(n) => n,
                _ => "",
            };
            match (named, port.native) {
                ("process_docs", Native::Docs(run)) => {
                    ports.process_docs = Some(Call {
                        run: DocsPort::Native(run),
                        name,
                    });
                }
                ("fewshot_config.process_docs", Native::Docs(run)) => {
                    ports.fewshot_process_docs = Some(Call {
                        run: DocsPort::Native(run),
                        name,
                    });
                }
                ("process_results", Native::Results(f)) if !generation => {
                    ports.process_results = Some(ProcessResults {
                        call: Call {
                            run: ResultsPort::Loglikelihoods(f),
                            name,
                        },
                        metrics: metrics(),
                    });
                }
                ("process_results", Native::Generated(f)) if generation => {
                    ports.process_results = Some(ProcessResults {
                        call: Call {
                            run: ResultsPort::Generated(f),
                            name,
                        },
                        metrics: metrics(),
                    });
                }
                (named, Native::Value(run)) if named.contains("doc_to_") => {
                    ports.values.insert(
                        hook.clone(),
                        Call {
                            run: ValuePort::Native(run),
                            name,
                        },
                    );
                }
                _ => {
                    return Err(TaskError::Field {
                        path: config.source.clone(),
                        field: shown.clone(),
                        message: format!(
                        "`{}` is a port of another kind of hook, not of {shown} for output_type {}",
                        hook.function,
                        config.output_type.name()
                    ),
                    })
                }
            }
        }
        Ok(ports)
    }

    /// Places a hook that runs in Python by its field.
    fn python_hook(
        &mut self,
        config: &TaskConfig,
        field: HookField,
        python: PyHook,
        name: String,
        hook: &Hook,
    ) -> Result<(), TaskError> {
        match field {
            HookField::Named("process_docs") => {
                self.process_docs = Some(Call {
                    run: DocsPort::Python(python),
                    name,
                });
            }
            HookField::Named("fewshot_config.process_docs") => {
                self.fewshot_process_docs = Some(Call {
                    run: DocsPort::Python(python),
                    name,
                });
            }
            HookField::Named("fewshot_config.samples") => {
                self.fewshot_samples = Some(Call { run: python, name });
            }
            HookField::Named("process_results") => {
                self.process_results = Some(ProcessResults {
                    call: Call {
                        run: ResultsPort::Python(python),
                        name,
                    },
                    metrics: config
                        .metric_list
                        .iter()
                        .flatten()
                        .map(|m| m.metric.clone())
                        .collect(),
                });
            }
            HookField::Named(f) if f.contains("doc_to_") => {
                self.values.insert(
                    hook.clone(),
                    Call {
                        run: ValuePort::Python(python),
                        name,
                    },
                );
            }
            HookField::Metric(_) if config.output_type != OutputType::GenerateUntil => {
                return Err(TaskError::Field {
                    path: config.source.clone(),
                    field: field.to_string(),
                    message: format!(
                        "a metric function (`{name}`) is only called for generate_until \
                         tasks; for output_type {} give process_results instead",
                        config.output_type.name()
                    ),
                });
            }
            HookField::Metric(i) => {
                self.metric_functions.insert(i, python);
            }
            HookField::Aggregation(i) => {
                self.aggregations.insert(i, python);
            }
            HookField::FilterStep(i, j) => {
                self.filters.insert((i, j), python);
            }
            HookField::Named(_) => {
                return Err(TaskError::Field {
                    path: config.source.clone(),
                    field: field.to_string(),
                    message: format!("`{name}`: assay does not call Python hooks in this field"),
                })
            }
        }
        Ok(())
    }

    /// The task's `process_results` when it runs in Python.
    pub fn python_results(&self) -> Option<&PyHook> {
        match &self.process_results.as_ref()?.call.run {
            ResultsPort::Python(hook) => Some(hook),
            _ => None,
        }
    }

    /// The port of a `doc_to_*` hook of the task.
    pub fn value(&self, hook: &Hook) -> Option<&Call<ValuePort>> {
        self.values.get(hook)
    }

    /// Computes every Python `doc_to_*` hook for `docs` in one call each, so
    /// that preparing the documents one by one asks Python nothing more. A
    /// call that fails leaves its documents to be computed one by one, so
    /// that the error names the document.
    pub fn prefetch(&self, docs: &[Doc]) {
        for call in self.values.values() {
            if let ValuePort::Python(hook) = &call.run {
                let _ = hook.prefetch(docs);
            }
        }
    }
}

impl Call<DocsPort> {
    /// `process_docs` over one split's documents; `first` says this is the
    /// task's first call (Python's generators are seeded then, as lm-eval's
    /// evaluator seeds them before it builds the task).
    pub fn docs(&self, docs: Vec<Doc>, first: bool) -> Result<Vec<Doc>, String> {
        match &self.run {
            DocsPort::Native(f) => f(docs),
            DocsPort::Python(hook) => hook.docs(docs, first).map_err(|e| e.to_string()),
        }
    }
}

impl Call<ValuePort> {
    /// The hook's value for one document.
    pub fn value(&self, doc: &Doc) -> Result<Value, String> {
        match &self.run {
            ValuePort::Native(f) => f(doc),
            ValuePort::Python(hook) => hook.value(doc).map_err(|e| e.to_string()),
        }
    }
}

fn unresolved(config: &TaskConfig, field: &str, hook: &Hook, why: Unresolved) -> TaskError {
    match why {
        Unresolved::NoPort => {
            let found = crate::ports::python::locate(&hook.folder, &hook.function);
            TaskError::PythonHook {
                path: config.source.clone(),
                field: field.to_string(),
                function: hook.function.clone(),
                installed: found.as_ref().is_some_and(|f| f.installed),
                file: found.map(|f| f.file),
            }
        }
        Unresolved::Differs { file, fingerprint } => TaskError::HookDiffers {
            path: config.source.clone(),
            field: field.to_string(),
            function: hook.function.clone(),
            file,
            fingerprint,
        },
    }
}
