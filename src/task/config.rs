//! Typed task and group configs, parsed from the merged YAML map.
//!
//! Field names, defaults and the precedence of `fewshot_config` over the
//! task's own fields follow lm-eval's `TaskConfig` and `FewshotConfig`
//! dataclasses, so a config means the same thing to both tools. Unknown
//! fields are an error here (as they are a `TypeError` in lm-eval): a typo must
//! not silently change a benchmark.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::yaml::{hook_dir, hook_name};
use super::TaskError;
use crate::request::OutputType;

/// A reference to a Python function (`!function module.name`), resolved
/// relative to the folder of the YAML file that names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hook {
    pub function: String,
    pub folder: PathBuf,
}

/// The config field that names a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookField {
    /// A task field or a `fewshot_config.` one, by its name.
    Named(&'static str),
    /// `metric_list[i].metric`.
    Metric(usize),
    /// `metric_list[i].aggregation`.
    Aggregation(usize),
    /// `filter_list[i].filter[j].function`.
    FilterStep(usize, usize),
}

impl std::fmt::Display for HookField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookField::Named(name) => f.write_str(name),
            HookField::Metric(i) => write!(f, "metric_list[{i}].metric"),
            HookField::Aggregation(i) => write!(f, "metric_list[{i}].aggregation"),
            HookField::FilterStep(i, j) => write!(f, "filter_list[{i}].filter[{j}].function"),
        }
    }
}

/// How `doc_to_text`, `doc_to_target` and friends produce a value from a
/// document: lm-eval decides per document whether a string names a column.
#[derive(Debug, Clone, PartialEq)]
pub enum DocSpec {
    /// A literal integer (e.g. `doc_to_target: 0`).
    Int(i64),
    /// A column name if the dataset has that column, else a Jinja template.
    Text(String),
    /// A literal list (only meaningful for `doc_to_target`).
    List(Vec<Value>),
    Hook(Hook),
}

/// How `doc_to_choice` produces the list of options.
#[derive(Debug, Clone, PartialEq)]
pub enum ChoiceSpec {
    /// A column holding a list, else a template rendering a Python list literal.
    Text(String),
    List(Vec<Value>),
    /// A mapping; its values are the choices, in order.
    Dict(Map<String, Value>),
    Hook(Hook),
}

/// One entry of `metric_list`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricConfig {
    /// The metric's name; for a Python metric function, the function's
    /// name (lm-eval names it by `__name__`).
    pub metric: String,
    /// `metric: !function module.name`.
    pub metric_hook: Option<Hook>,
    pub aggregation: Option<String>,
    /// `aggregation: !function module.name`.
    pub aggregation_hook: Option<Hook>,
    pub higher_is_better: Option<bool>,
    /// Everything else in the entry: keyword options for the metric.
    pub kwargs: Map<String, Value>,
}

/// One step of a filter pipeline: lm-eval's `{function: name, ...kwargs}`.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterStep {
    pub function: String,
    /// `function: !function module.Class`: a filter class in Python.
    pub hook: Option<Hook>,
    pub kwargs: Map<String, Value>,
}

/// One named pipeline of `filter_list`.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterConfig {
    pub name: String,
    pub steps: Vec<FilterStep>,
}

/// Few-shot settings after lm-eval's inheritance from the task's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct FewshotConfig {
    pub sampler: String,
    pub split: Option<String>,
    pub process_docs: Option<Hook>,
    pub fewshot_indices: Option<Vec<usize>>,
    pub samples: Option<Vec<Value>>,
    /// `samples: !function module.name`: a function that returns them.
    pub samples_hook: Option<Hook>,
    pub doc_to_text: Option<DocSpec>,
    pub doc_to_choice: Option<ChoiceSpec>,
    pub doc_to_target: Option<DocSpec>,
    pub gen_prefix: Option<String>,
    pub fewshot_delimiter: String,
    pub target_delimiter: String,
}

/// A task config: lm-eval's `TaskConfig` fields that need no Python.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskConfig {
    pub task: String,
    pub task_alias: Option<String>,
    pub tags: Vec<String>,
    pub dataset_path: Option<String>,
    pub dataset_name: Option<String>,
    pub dataset_kwargs: Map<String, Value>,
    pub training_split: Option<String>,
    pub validation_split: Option<String>,
    pub test_split: Option<String>,
    pub fewshot_split: Option<String>,
    pub process_docs: Option<Hook>,
    pub doc_to_text: Option<DocSpec>,
    pub doc_to_target: Option<DocSpec>,
    pub doc_to_choice: Option<ChoiceSpec>,
    pub process_results: Option<Hook>,
    pub description: String,
    pub target_delimiter: String,
    pub fewshot_delimiter: String,
    pub fewshot_config: FewshotConfig,
    pub num_fewshot: Option<usize>,
    /// `None` means lm-eval's default metrics for the output type.
    pub metric_list: Option<Vec<MetricConfig>>,
    pub output_type: OutputType,
    /// After lm-eval's defaults (`until`, float temperature).
    pub generation_kwargs: Option<Map<String, Value>>,
    pub repeats: usize,
    pub filter_list: Option<Vec<FilterConfig>>,
    pub gen_prefix: Option<String>,
    pub metadata: Map<String, Value>,
    /// The YAML file the config came from (its folder anchors relative paths).
    pub source: PathBuf,
    /// The merged config as JSON, for `run.json`'s `configs` block and hashing.
    pub raw: Map<String, Value>,
}

const TASK_FIELDS: &[&str] = &[
    "task",
    "task_alias",
    "tag",
    "group",
    "task_list",
    "custom_dataset",
    "dataset_path",
    "dataset_name",
    "dataset_kwargs",
    "training_split",
    "validation_split",
    "test_split",
    "fewshot_split",
    "process_docs",
    "doc_to_text",
    "doc_to_target",
    "doc_to_image",
    "doc_to_audio",
    "unsafe_code",
    "doc_to_choice",
    "process_results",
    "use_prompt",
    "description",
    "target_delimiter",
    "fewshot_delimiter",
    "fewshot_config",
    "num_fewshot",
    "metric_list",
    "output_type",
    "generation_kwargs",
    "repeats",
    "filter_list",
    "should_decontaminate",
    "doc_to_decontamination_query",
    "gen_prefix",
    "metadata",
];

const FEWSHOT_FIELDS: &[&str] = &[
    "sampler",
    "split",
    "process_docs",
    "fewshot_indices",
    "samples",
    "doc_to_text",
    "doc_to_choice",
    "doc_to_target",
    "gen_prefix",
    "fewshot_delimiter",
    "target_delimiter",
];

/// Reads typed fields out of one config map, naming the file and field in
/// every error.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: &'a Path,
    prefix: &'a str,
}

impl<'a> Fields<'a> {
    fn err(&self, field: &str, message: impl Into<String>) -> TaskError {
        TaskError::Field {
            path: self.path.to_path_buf(),
            field: format!("{}{field}", self.prefix),
            message: message.into(),
        }
    }

    fn present(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn hook(&self, field: &str) -> Result<Option<Hook>, TaskError> {
        match self.present(field) {
            None => Ok(None),
            Some(v) => match self.hook_value(v) {
                Some(hook) => Ok(Some(hook)),
                None => Err(self.err(field, "expected a `!function module.name` reference")),
            },
        }
    }

    /// The hook a `!function` marker at `field` names.
    fn hook_value(&self, v: &Value) -> Option<Hook> {
        let name = hook_name(v)?;
        let folder = self.path.parent().unwrap_or(Path::new("."));
        Some(Hook {
            function: name.to_string(),
            folder: match hook_dir(v) {
                Some(dir) => folder.join(dir),
                None => folder.to_path_buf(),
            },
        })
    }

    fn string(&self, field: &str) -> Result<Option<String>, TaskError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(v) if hook_name(v).is_some() => Err(self.python_hook(field, v)),
            Some(_) => Err(self.err(field, "expected a string")),
        }
    }

    fn python_hook(&self, field: &str, v: &Value) -> TaskError {
        TaskError::PythonHook {
            path: self.path.to_path_buf(),
            field: format!("{}{field}", self.prefix),
            function: hook_name(v).unwrap_or_default().to_string(),
            file: None,
            installed: false,
        }
    }

    fn uint(&self, field: &str) -> Result<Option<usize>, TaskError> {
        match self.present(field) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| self.err(field, "expected a non-negative integer")),
        }
    }

    fn bool(&self, field: &str) -> Result<Option<bool>, TaskError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.err(field, "expected true or false")),
        }
    }

    fn object(&self, field: &str) -> Result<Option<Map<String, Value>>, TaskError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::Object(m)) if hook_name(&Value::Object(m.clone())).is_none() => {
                Ok(Some(m.clone()))
            }
            Some(v) if hook_name(v).is_some() => Err(self.python_hook(field, v)),
            Some(_) => Err(self.err(field, "expected a mapping")),
        }
    }

    fn doc_spec(&self, field: &str) -> Result<Option<DocSpec>, TaskError> {
        Ok(match self.present(field) {
            None => None,
            Some(Value::String(s)) => Some(DocSpec::Text(s.clone())),
            Some(Value::Number(n)) if n.is_i64() => Some(DocSpec::Int(n.as_i64().unwrap_or(0))),
            Some(Value::Array(items)) => Some(DocSpec::List(items.clone())),
            Some(v) if hook_name(v).is_some() => {
                Some(DocSpec::Hook(self.hook(field)?.expect("present")))
            }
            Some(_) => {
                return Err(self.err(
                    field,
                    "expected a column name, a Jinja template, an integer or a list",
                ))
            }
        })
    }

    fn choice_spec(&self, field: &str) -> Result<Option<ChoiceSpec>, TaskError> {
        Ok(match self.present(field) {
            None => None,
            Some(Value::String(s)) => Some(ChoiceSpec::Text(s.clone())),
            Some(Value::Array(items)) => Some(ChoiceSpec::List(items.clone())),
            Some(v) if hook_name(v).is_some() => {
                Some(ChoiceSpec::Hook(self.hook(field)?.expect("present")))
            }
            Some(Value::Object(m)) => Some(ChoiceSpec::Dict(m.clone())),
            Some(_) => {
                return Err(self.err(
                    field,
                    "expected a column name, a Jinja template, a list or a mapping",
                ))
            }
        })
    }

    fn reject_unknown(&self, known: &[&str]) -> Result<(), TaskError> {
        for key in self.map.keys() {
            if !known.contains(&key.as_str()) {
                let hint = closest(key, known)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                return Err(self.err(key, format!("unknown field{hint}")));
            }
        }
        Ok(())
    }
}

/// The known name nearest to a misspelt one, if any is close.
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

impl TaskConfig {
    /// Parses a merged config map (includes resolved, group overrides
    /// applied) read from `source`.
    pub fn from_map(map: Map<String, Value>, source: &Path) -> Result<TaskConfig, TaskError> {
        let f = Fields {
            map: &map,
            path: source,
            prefix: "",
        };
        f.reject_unknown(TASK_FIELDS)?;
        for unsupported in [
            "custom_dataset",
            "use_prompt",
            "doc_to_image",
            "doc_to_audio",
        ] {
            if let Some(v) = f.present(unsupported) {
                if hook_name(v).is_some() {
                    return Err(f.python_hook(unsupported, v));
                }
                return Err(f.err(
                    unsupported,
                    "is not supported by assay (promptsource prompts and multimodal inputs need Python)",
                ));
            }
        }
        // Decontamination is lm-eval's own analysis; assay reads the flag
        // only to catch a malformed one.
        f.bool("should_decontaminate")?;
        if f.bool("unsafe_code")? == Some(true) {
            return Err(f.err(
                "unsafe_code",
                "tasks that execute model-written code are not supported",
            ));
        }
        let task = f
            .string("task")?
            .ok_or_else(|| f.err("task", "missing: every task config needs a `task` name"))?;
        let output_type = match f.string("output_type")? {
            None => OutputType::GenerateUntil,
            Some(name) => OutputType::parse(&name).ok_or_else(|| {
                f.err(
                    "output_type",
                    format!("`{name}` is not one of loglikelihood, loglikelihood_rolling, multiple_choice, generate_until"),
                )
            })?,
        };
        let tags = match f.present("tag") {
            None => vec![],
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| f.err("tag", "expected a name or a list of names"))?,
            Some(_) => return Err(f.err("tag", "expected a name or a list of names")),
        };
        let target_delimiter = f.string("target_delimiter")?.unwrap_or_else(|| " ".into());
        let fewshot_delimiter = f
            .string("fewshot_delimiter")?
            .unwrap_or_else(|| "\n\n".into());
        let description = f.string("description")?.unwrap_or_default();
        let gen_prefix = f.string("gen_prefix")?;
        let process_docs = f.hook("process_docs")?;
        let doc_to_text = f.doc_spec("doc_to_text")?;
        let doc_to_target = f.doc_spec("doc_to_target")?;
        let doc_to_choice = f.choice_spec("doc_to_choice")?;
        let fewshot_split = f.string("fewshot_split")?;
        let fewshot_config = parse_fewshot(
            f.object("fewshot_config")?.unwrap_or_default(),
            source,
            FewshotConfig {
                sampler: "default".into(),
                split: fewshot_split.clone(),
                process_docs: process_docs.clone(),
                fewshot_indices: None,
                samples: None,
                samples_hook: None,
                doc_to_text: doc_to_text.clone(),
                doc_to_choice: doc_to_choice.clone(),
                doc_to_target: doc_to_target.clone(),
                gen_prefix: gen_prefix.clone(),
                fewshot_delimiter: fewshot_delimiter.clone(),
                target_delimiter: target_delimiter.clone(),
            },
        )?;
        let generation_kwargs = match f.object("generation_kwargs")? {
            Some(mut kw) => {
                if let Some(t) = kw.get("temperature").and_then(Value::as_f64) {
                    kw.insert("temperature".into(), float_value(t));
                }
                if !kw.contains_key("until") {
                    kw.insert("until".into(), Value::from(vec![fewshot_delimiter.clone()]));
                }
                Some(kw)
            }
            None if output_type == OutputType::GenerateUntil => {
                let mut kw = Map::new();
                kw.insert("temperature".into(), float_value(0.0));
                kw.insert("do_sample".into(), Value::Bool(false));
                kw.insert("max_gen_toks".into(), Value::from(256));
                kw.insert("until".into(), Value::from(vec![fewshot_delimiter.clone()]));
                Some(kw)
            }
            None => None,
        };
        let metadata = match f.present("metadata") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                let mut m = Map::new();
                m.insert("_metadata".into(), other.clone());
                m
            }
        };
        Ok(TaskConfig {
            task,
            task_alias: f.string("task_alias")?,
            tags,
            dataset_path: f.string("dataset_path")?,
            dataset_name: f.string("dataset_name")?,
            dataset_kwargs: f.object("dataset_kwargs")?.unwrap_or_default(),
            training_split: f.string("training_split")?,
            validation_split: f.string("validation_split")?,
            test_split: f.string("test_split")?,
            fewshot_split,
            process_docs,
            doc_to_text,
            doc_to_target,
            doc_to_choice,
            process_results: f.hook("process_results")?,
            description,
            target_delimiter,
            fewshot_delimiter,
            fewshot_config,
            num_fewshot: f.uint("num_fewshot")?,
            metric_list: parse_metric_list(&f)?,
            output_type,
            generation_kwargs,
            repeats: f.uint("repeats")?.unwrap_or(1).max(1),
            filter_list: parse_filter_list(&f)?,
            gen_prefix,
            metadata,
            source: source.to_path_buf(),
            raw: map.clone(),
        })
    }

    /// The hash runs record of this config, to tell later whether a run was
    /// made with the config as it is now.
    pub fn config_hash(&self) -> String {
        crate::hash::sha256_hex(Value::Object(self.raw.clone()).to_string().as_bytes())
    }

    /// The metadata `version`, as lm-eval reports it in `versions`.
    pub fn version(&self) -> Value {
        self.metadata.get("version").cloned().unwrap_or(Value::Null)
    }

    /// Every Python hook this config names, as (field, hook).
    pub fn hooks(&self) -> Vec<(HookField, &Hook)> {
        fn doc_hook(spec: &Option<DocSpec>) -> Option<&Hook> {
            match spec {
                Some(DocSpec::Hook(h)) => Some(h),
                _ => None,
            }
        }
        fn choice_hook(spec: &Option<ChoiceSpec>) -> Option<&Hook> {
            match spec {
                Some(ChoiceSpec::Hook(h)) => Some(h),
                _ => None,
            }
        }
        let fs = &self.fewshot_config;
        let mut out = [
            ("process_docs", self.process_docs.as_ref()),
            ("doc_to_text", doc_hook(&self.doc_to_text)),
            ("doc_to_target", doc_hook(&self.doc_to_target)),
            ("doc_to_choice", choice_hook(&self.doc_to_choice)),
            ("process_results", self.process_results.as_ref()),
            ("fewshot_config.process_docs", fs.process_docs.as_ref()),
            ("fewshot_config.samples", fs.samples_hook.as_ref()),
            ("fewshot_config.doc_to_text", doc_hook(&fs.doc_to_text)),
            ("fewshot_config.doc_to_target", doc_hook(&fs.doc_to_target)),
            (
                "fewshot_config.doc_to_choice",
                choice_hook(&fs.doc_to_choice),
            ),
        ]
        .into_iter()
        .filter_map(|(field, h)| h.map(|h| (HookField::Named(field), h)))
        .collect::<Vec<_>>();
        for (i, m) in self.metric_list.iter().flatten().enumerate() {
            if let Some(h) = &m.metric_hook {
                out.push((HookField::Metric(i), h));
            }
            if let Some(h) = &m.aggregation_hook {
                out.push((HookField::Aggregation(i), h));
            }
        }
        for (i, f) in self.filter_list.iter().flatten().enumerate() {
            for (j, step) in f.steps.iter().enumerate() {
                if let Some(h) = &step.hook {
                    out.push((HookField::FilterStep(i, j), h));
                }
            }
        }
        out
    }
}

/// A JSON float that prints as Python prints it (`0.0`, not `0`).
fn float_value(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn parse_fewshot(
    map: Map<String, Value>,
    source: &Path,
    inherited: FewshotConfig,
) -> Result<FewshotConfig, TaskError> {
    let f = Fields {
        map: &map,
        path: source,
        prefix: "fewshot_config.",
    };
    f.reject_unknown(FEWSHOT_FIELDS)?;
    let sampler = f.string("sampler")?.unwrap_or(inherited.sampler);
    if !matches!(sampler.as_str(), "default" | "first_n" | "bigbench") {
        return Err(f.err(
            "sampler",
            format!("`{sampler}` is not a known sampler; use `default`, `first_n` or `bigbench`"),
        ));
    }
    let fewshot_indices = match f.present("fewshot_indices") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| v.as_u64().map(|n| n as usize))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    f.err(
                        "fewshot_indices",
                        "expected a list of non-negative integers",
                    )
                })?,
        ),
        Some(_) => {
            return Err(f.err(
                "fewshot_indices",
                "expected a list of non-negative integers",
            ))
        }
    };
    let samples = match f.present("samples") {
        None => None,
        Some(Value::Array(items)) => Some(items.clone()),
        Some(v) if hook_name(v).is_some() => None,
        Some(_) => return Err(f.err("samples", "expected a list of documents")),
    };
    Ok(FewshotConfig {
        sampler,
        split: if map.contains_key("split") {
            f.string("split")?
        } else {
            inherited.split
        },
        process_docs: if map.contains_key("process_docs") {
            f.hook("process_docs")?
        } else {
            inherited.process_docs
        },
        fewshot_indices,
        samples,
        samples_hook: f.hook_value(map.get("samples").unwrap_or(&Value::Null)),
        doc_to_text: if map.contains_key("doc_to_text") {
            f.doc_spec("doc_to_text")?
        } else {
            inherited.doc_to_text
        },
        doc_to_choice: if map.contains_key("doc_to_choice") {
            f.choice_spec("doc_to_choice")?
        } else {
            inherited.doc_to_choice
        },
        doc_to_target: if map.contains_key("doc_to_target") {
            f.doc_spec("doc_to_target")?
        } else {
            inherited.doc_to_target
        },
        gen_prefix: if map.contains_key("gen_prefix") {
            f.string("gen_prefix")?
        } else {
            inherited.gen_prefix
        },
        fewshot_delimiter: f
            .string("fewshot_delimiter")?
            .unwrap_or(inherited.fewshot_delimiter),
        target_delimiter: f
            .string("target_delimiter")?
            .unwrap_or(inherited.target_delimiter),
    })
}

fn parse_metric_list(f: &Fields) -> Result<Option<Vec<MetricConfig>>, TaskError> {
    let Some(value) = f.present("metric_list") else {
        return Ok(None);
    };
    let Value::Array(entries) = value else {
        return Err(f.err(
            "metric_list",
            "expected a list of `{metric: name, ...}` entries",
        ));
    };
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Value::Object(m) = entry else {
            return Err(f.err(
                &format!("metric_list[{i}]"),
                "expected a mapping with a `metric` key",
            ));
        };
        let field = |k: &str| format!("metric_list[{i}].{k}");
        let metric_hook = m.get("metric").and_then(|v| f.hook_value(v));
        let metric = match m.get("metric") {
            Some(Value::String(s)) => s.clone(),
            Some(_) if metric_hook.is_some() => metric_hook
                .as_ref()
                .map(|h| {
                    h.function
                        .rsplit('.')
                        .next()
                        .unwrap_or_default()
                        .to_string()
                })
                .unwrap_or_default(),
            _ => {
                return Err(f.err(
                    &field("metric"),
                    "missing: name the metric, e.g. `metric: acc`",
                ))
            }
        };
        let aggregation_hook = m.get("aggregation").and_then(|v| f.hook_value(v));
        let aggregation = match m.get("aggregation") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) if aggregation_hook.is_some() => None,
            Some(_) => return Err(f.err(&field("aggregation"), "expected an aggregation name")),
        };
        let higher_is_better = match m.get("higher_is_better") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(f.err(&field("higher_is_better"), "expected true or false")),
        };
        if m.get("hf_evaluate") == Some(&Value::Bool(true)) {
            return Err(f.err(
                &field("hf_evaluate"),
                "Hugging Face `evaluate` metrics need Python and are not supported",
            ));
        }
        let kwargs = m
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "metric" | "aggregation" | "higher_is_better" | "hf_evaluate"
                )
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.push(MetricConfig {
            metric,
            metric_hook,
            aggregation,
            aggregation_hook,
            higher_is_better,
            kwargs,
        });
    }
    Ok(Some(out))
}

fn parse_filter_list(f: &Fields) -> Result<Option<Vec<FilterConfig>>, TaskError> {
    let Some(value) = f.present("filter_list") else {
        return Ok(None);
    };
    let Value::Array(entries) = value else {
        return Err(f.err(
            "filter_list",
            "expected a list of `{name: ..., filter: [...]}` entries",
        ));
    };
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let field = |k: &str| format!("filter_list[{i}].{k}");
        let Value::Object(m) = entry else {
            return Err(f.err(
                &format!("filter_list[{i}]"),
                "expected a mapping with `name` and `filter`",
            ));
        };
        let name = m
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| f.err(&field("name"), "missing: each filter pipeline needs a name"))?
            .to_string();
        let Some(Value::Array(steps)) = m.get("filter") else {
            return Err(f.err(
                &field("filter"),
                "missing: a list of `{function: ...}` steps",
            ));
        };
        let mut parsed = Vec::new();
        for (j, step) in steps.iter().enumerate() {
            let sfield = format!("filter_list[{i}].filter[{j}].function");
            let Value::Object(sm) = step else {
                return Err(f.err(&sfield, "expected a mapping with a `function` key"));
            };
            let hook = sm.get("function").and_then(|v| f.hook_value(v));
            let function = match sm.get("function") {
                Some(Value::String(s)) => s.clone(),
                Some(_) if hook.is_some() => hook
                    .as_ref()
                    .map(|h| h.function.clone())
                    .unwrap_or_default(),
                _ => return Err(f.err(&sfield, "missing: name the filter function, e.g. `regex`")),
            };
            let kwargs = sm
                .iter()
                .filter(|(k, _)| k.as_str() != "function")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            parsed.push(FilterStep {
                function,
                hook,
                kwargs,
            });
        }
        out.push(FilterConfig {
            name,
            steps: parsed,
        });
    }
    Ok(Some(out))
}

/// One `aggregate_metric_list` entry of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateMetric {
    pub metric: String,
    pub filter_list: Option<Vec<String>>,
    pub weight_by_size: bool,
}

/// A group config: named children and how their scores combine.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupConfig {
    pub group: String,
    pub group_alias: Option<String>,
    /// Children: names of tasks, groups or tags, or inline dicts.
    pub task: Vec<Value>,
    pub aggregate_metric_list: Vec<AggregateMetric>,
    pub metadata: Map<String, Value>,
    /// Keys that are not group fields: overrides for every child task.
    pub overrides: Map<String, Value>,
    pub source: PathBuf,
}

const GROUP_FIELDS: &[&str] = &[
    "group",
    "group_alias",
    "task",
    "aggregate_metric_list",
    "metadata",
];

impl GroupConfig {
    pub fn from_map(map: &Map<String, Value>, source: &Path) -> Result<GroupConfig, TaskError> {
        let f = Fields {
            map,
            path: source,
            prefix: "",
        };
        let group = f
            .string("group")?
            .ok_or_else(|| f.err("group", "missing: a group config needs a `group` name"))?;
        let task = match f.present("task") {
            None => vec![],
            Some(Value::Array(items)) => items.clone(),
            Some(Value::String(s)) => vec![Value::String(s.clone())],
            Some(_) => return Err(f.err("task", "expected a list of task or group names")),
        };
        let aggregate_metric_list = match f.present("aggregate_metric_list") {
            None => vec![],
            Some(v) => {
                let entries = match v {
                    Value::Array(items) => items.clone(),
                    Value::Object(_) => vec![v.clone()],
                    _ => {
                        return Err(f.err(
                            "aggregate_metric_list",
                            "expected a list of `{metric: ...}` entries",
                        ))
                    }
                };
                let mut out = Vec::new();
                for (i, e) in entries.iter().enumerate() {
                    let field = |k: &str| format!("aggregate_metric_list[{i}].{k}");
                    let Value::Object(m) = e else {
                        return Err(f.err(&field("metric"), "expected a mapping"));
                    };
                    for key in m.keys() {
                        if !matches!(
                            key.as_str(),
                            "metric" | "filter_list" | "aggregation" | "weight_by_size"
                        ) {
                            return Err(f.err(&field(key), "unknown field"));
                        }
                    }
                    let metric = m
                        .get("metric")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            f.err(&field("metric"), "missing: name the metric to aggregate")
                        })?
                        .to_string();
                    if let Some(agg) = m.get("aggregation") {
                        if agg.as_str() != Some("mean") {
                            return Err(f.err(&field("aggregation"), "only `mean` is supported"));
                        }
                    }
                    let filter_list = match m.get("filter_list") {
                        None | Some(Value::Null) => None,
                        Some(Value::String(s)) => Some(vec![s.clone()]),
                        Some(Value::Array(items)) => Some(
                            items
                                .iter()
                                .map(|v| v.as_str().map(str::to_string))
                                .collect::<Option<Vec<_>>>()
                                .ok_or_else(|| {
                                    f.err(&field("filter_list"), "expected filter names")
                                })?,
                        ),
                        Some(_) => {
                            return Err(f.err(&field("filter_list"), "expected filter names"))
                        }
                    };
                    let weight_by_size = match m.get("weight_by_size") {
                        None => true,
                        Some(Value::Bool(b)) => *b,
                        Some(_) => {
                            return Err(f.err(&field("weight_by_size"), "expected true or false"))
                        }
                    };
                    out.push(AggregateMetric {
                        metric,
                        filter_list,
                        weight_by_size,
                    });
                }
                out
            }
        };
        let overrides = map
            .iter()
            .filter(|(k, _)| !GROUP_FIELDS.contains(&k.as_str()) && k.as_str() != "tag")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(GroupConfig {
            group,
            group_alias: f.string("group_alias")?,
            task,
            aggregate_metric_list,
            metadata: f.object("metadata")?.unwrap_or_default(),
            overrides,
            source: source.to_path_buf(),
        })
    }
}
