//! Prompt assembly: from a task config and its documents to the requests
//! lm-eval would send, byte for byte.
//!
//! One [`Prompter`] per task owns the compiled templates, the few-shot
//! sampler and the facts lm-eval infers from the first document (whether
//! the task has several inputs or several targets). [`Prompter::prepare`] is
//! the one place a prompt is assembled: description, few-shot turns, the
//! question, and the requests built from them.

pub mod chat;
pub mod jinja;
pub mod sampler;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use minijinja::value::Value as MjValue;
use serde_json::Value;

use crate::data::Doc;
use crate::python::text::is_space;
use crate::python::value::{self as pyvalue, is_digit_string, literal_eval, py_str};
use crate::request::{GenerationOptions, OutputType, Request};
use crate::task::ports::TaskPorts;
use crate::task::{ChoiceSpec, DocSpec, TaskConfig};
use chat::{ChatTemplate, Message};
use jinja::Templates;
use sampler::{Sampler, SamplerKind};

/// A document that cannot be turned into a prompt.
#[derive(Debug, thiserror::Error)]
#[error("{path}: task `{task}`, document {doc_id}, field `{field}`: {message}")]
pub struct PromptError {
    pub path: PathBuf,
    pub task: String,
    pub doc_id: usize,
    pub field: String,
    pub message: String,
}

/// Run-time prompt options (lm-eval's CLI flags).
#[derive(Debug, Clone, Default)]
pub struct PromptOptions {
    /// `--num-fewshot`: overrides the config's `num_fewshot`.
    pub num_fewshot: Option<usize>,
    /// The few-shot seed (lm-eval's fourth `--seed` value; default 1234).
    pub fewshot_seed: u64,
    /// `--system-instruction`.
    pub system_instruction: Option<String>,
    /// `--apply-chat-template`: the model's chat template.
    pub chat_template: Option<Arc<ChatTemplate>>,
    /// `--fewshot-as-multiturn`: few-shot examples as separate chat turns.
    pub fewshot_as_multiturn: bool,
}

/// One evaluated document with everything scoring needs later.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub doc_id: usize,
    pub doc: Doc,
    /// What `doc_to_target` gave (an index, a string or a list).
    pub target: Value,
    /// The options of a multiple-choice document, as strings.
    pub choices: Option<Vec<String>>,
    /// For multiple-input tasks: the index `doc_to_text` gave (the gold).
    pub gold_input: Option<Value>,
    /// The requests, in lm-eval's `idx` order.
    pub requests: Vec<Request>,
}

impl Prepared {
    /// The document's prompt as lm-eval hashes it (`prompt_hash`): the first
    /// argument of its first request.
    pub fn prompt(&self) -> String {
        self.requests
            .first()
            .and_then(|r| {
                r.arguments()
                    .get(0)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default()
    }
}

/// A piece of the prompt with its chat role and the text that follows it
/// in plain-text prompts (lm-eval's Message).
#[derive(Clone)]
struct Turn {
    role: &'static str,
    content: String,
    delimiter: String,
}

pub struct Prompter<'c> {
    config: &'c TaskConfig,
    /// The task's `!function` hooks, resolved.
    ports: &'c TaskPorts,
    templates: Templates,
    features: HashSet<String>,
    multiple_input: bool,
    pub multiple_target: bool,
    num_fewshot: usize,
    sampler: Option<Sampler>,
    options: PromptOptions,
    uses_mutual_info: bool,
}

impl<'c> Prompter<'c> {
    /// `eval_docs` are the documents to score, `fewshot_docs` the pool of
    /// examples (already chosen by the split rules).
    pub fn new(
        config: &'c TaskConfig,
        ports: &'c TaskPorts,
        eval_docs: &[Doc],
        fewshot_docs: Vec<Doc>,
        options: PromptOptions,
    ) -> Result<Prompter<'c>, PromptError> {
        let err = |field: &str, message: String| PromptError {
            path: config.source.clone(),
            task: config.task.clone(),
            doc_id: 0,
            field: field.to_string(),
            message,
        };
        let mut templates = Templates::new();
        let fs = &config.fewshot_config;
        let doc_specs = [
            ("doc_to_text", &config.doc_to_text),
            ("doc_to_target", &config.doc_to_target),
            ("fewshot_config.doc_to_text", &fs.doc_to_text),
            ("fewshot_config.doc_to_target", &fs.doc_to_target),
        ];
        for (field, spec) in doc_specs {
            if let Some(DocSpec::Text(src)) = spec {
                templates.compile(src).map_err(|m| err(field, m))?;
            }
        }
        for (field, spec) in [
            ("doc_to_choice", &config.doc_to_choice),
            ("fewshot_config.doc_to_choice", &fs.doc_to_choice),
        ] {
            if let Some(ChoiceSpec::Text(src)) = spec {
                templates.compile(src).map_err(|m| err(field, m))?;
            }
        }
        let strings = [
            ("description", Some(&config.description)),
            ("gen_prefix", config.gen_prefix.as_ref()),
            ("fewshot_config.gen_prefix", fs.gen_prefix.as_ref()),
        ];
        for (field, src) in strings {
            if let Some(src) = src.filter(|s| !s.is_empty()) {
                templates.compile(src).map_err(|m| err(field, m))?;
            }
        }
        // HF datasets gives every row every column; the union of keys in
        // order of first appearance is the same set of names.
        let mut features = HashSet::new();
        for d in eval_docs {
            for k in d.keys() {
                if !features.contains(k.as_str()) {
                    features.insert(k.clone());
                }
            }
        }
        // As in lm-eval, `--num-fewshot` never overrides a config that says 0.
        let num_fewshot = match (options.num_fewshot, config.num_fewshot) {
            (Some(n), c) if c != Some(0) => n,
            (_, c) => c.unwrap_or(0),
        };
        let sampler = if fewshot_docs.is_empty() && num_fewshot == 0 {
            None
        } else {
            let kind = match fs.sampler.as_str() {
                "first_n" => SamplerKind::FirstN,
                "bigbench" => SamplerKind::BigBench,
                _ => SamplerKind::Default,
            };
            Some(
                Sampler::new(
                    kind,
                    fewshot_docs,
                    fs.fewshot_indices.as_deref(),
                    options.fewshot_seed,
                )
                .map_err(|m| err("fewshot_config.fewshot_indices", m))?,
            )
        };
        let uses_mutual_info = config.metric_list.as_ref().is_some_and(|l| {
            l.iter()
                .any(|m| crate::metric::reads_unconditional(&m.metric))
        });
        let mut prompter = Prompter {
            config,
            ports,
            templates,
            features,
            multiple_input: false,
            multiple_target: false,
            num_fewshot,
            sampler,
            options,
            uses_mutual_info,
        };
        // lm-eval decides from the first document whether the task has
        // several inputs (doc_to_text gives an index) or several targets.
        if let Some(first) = eval_docs.first() {
            let first_mj = MjValue::from(minijinja::value::Serde(first));
            let text = prompter.doc_value(
                first,
                &first_mj,
                config.doc_to_text.as_ref(),
                0,
                "doc_to_text",
            )?;
            let target = prompter.doc_value(
                first,
                &first_mj,
                config.doc_to_target.as_ref(),
                0,
                "doc_to_target",
            )?;
            prompter.multiple_input = config.doc_to_choice.is_some() && text.is_i64();
            prompter.multiple_target = target.is_array();
        }
        Ok(prompter)
    }

    pub fn num_fewshot(&self) -> usize {
        self.num_fewshot
    }

    fn error(&self, doc_id: usize, field: &str, message: impl Into<String>) -> PromptError {
        PromptError {
            path: self.config.source.clone(),
            task: self.config.task.clone(),
            doc_id,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Calls the native port of a `!function` hook on one document.
    fn call_hook(
        &self,
        hook: &crate::task::Hook,
        field: &str,
        doc: &Doc,
        doc_id: usize,
    ) -> Result<Value, PromptError> {
        let port = self.ports.value(hook).ok_or_else(|| {
            self.error(
                doc_id,
                field,
                format!(
                    "`{}` was not resolved to a port when the task was planned",
                    hook.function
                ),
            )
        })?;
        port.value(doc)
            .map_err(|m| self.error(doc_id, field, format!("{}: {m}", port.name)))
    }

    fn render(
        &self,
        src: &str,
        mj: &MjValue,
        doc_id: usize,
        field: &str,
    ) -> Result<String, PromptError> {
        self.templates
            .render(src, mj)
            .map_err(|m| self.error(doc_id, field, m))
    }

    /// A column's value, or a rendered template (lm-eval's `resolve_field`).
    fn resolve_field(
        &self,
        doc: &Doc,
        mj: &MjValue,
        field: Option<&String>,
        doc_id: usize,
        name: &str,
    ) -> Result<Option<String>, PromptError> {
        match field.filter(|f| !f.is_empty()) {
            None => Ok(None),
            Some(f) => match doc.get(f) {
                Some(v) => Ok(Some(py_str(v))),
                None => self.render(f, mj, doc_id, name).map(Some),
            },
        }
    }

    /// A `doc_to_*` string: the document's column of that name (`Ok`), or
    /// the template's rendering (`Err`, text still to interpret); lm-eval
    /// decides per document.
    fn column_or_render(
        &self,
        doc: &Doc,
        mj: &MjValue,
        src: &str,
        doc_id: usize,
        field: &str,
    ) -> Result<Result<Value, String>, PromptError> {
        if self.features.contains(src) {
            return doc.get(src).cloned().map(Ok).ok_or_else(|| {
                self.error(doc_id, field, format!("the document has no column `{src}`"))
            });
        }
        self.render(src, mj, doc_id, field).map(Err)
    }

    /// `doc_to_text` or `doc_to_target` (`field`) of one document.
    fn doc_value(
        &self,
        doc: &Doc,
        mj: &MjValue,
        spec: Option<&DocSpec>,
        doc_id: usize,
        field: &'static str,
    ) -> Result<Value, PromptError> {
        let target = field == "doc_to_target";
        match spec {
            None => Err(self.error(doc_id, field, format!("missing: the task needs a {field}"))),
            Some(DocSpec::Int(i)) => Ok(Value::from(*i)),
            Some(DocSpec::List(items)) if target => Ok(Value::Array(items.clone())),
            Some(DocSpec::List(_)) => {
                Err(self.error(doc_id, field, format!("a list is not a valid {field}")))
            }
            Some(DocSpec::Hook(h)) => self.call_hook(h, field, doc, doc_id),
            Some(DocSpec::Text(src)) => match self.column_or_render(doc, mj, src, doc_id, field)? {
                Ok(column) => Ok(column),
                Err(text) if is_digit_string(&text) && self.config.doc_to_choice.is_some() => {
                    literal_eval(&text).map_err(|m| self.error(doc_id, field, m))
                }
                // A target that reads as a list literal is a list of targets.
                Err(text)
                    if target
                        && text.len() >= 2
                        && text.starts_with('[')
                        && text.ends_with(']') =>
                {
                    Ok(literal_eval(&text).unwrap_or(Value::String(text)))
                }
                Err(text) => Ok(Value::String(text)),
            },
        }
    }

    fn doc_to_choice(
        &self,
        doc: &Doc,
        mj: &MjValue,
        spec: Option<&ChoiceSpec>,
        doc_id: usize,
    ) -> Result<Vec<Value>, PromptError> {
        let field = "doc_to_choice";
        let value = match spec {
            None => {
                return Err(self.error(
                    doc_id,
                    field,
                    "missing: a multiple_choice task needs doc_to_choice",
                ))
            }
            Some(ChoiceSpec::List(items)) => return Ok(items.clone()),
            Some(ChoiceSpec::Dict(m)) => return Ok(m.values().cloned().collect()),
            Some(ChoiceSpec::Hook(h)) => self.call_hook(h, field, doc, doc_id)?,
            Some(ChoiceSpec::Text(src)) => {
                if self.features.contains(src) {
                    doc.get(src).cloned().unwrap_or(Value::Null)
                } else {
                    let text = self.render(src, mj, doc_id, field)?;
                    literal_eval(&text).map_err(|m| self.error(doc_id, field, format!("the template gave {text:?}, which is not a Python list literal ({m})")))?
                }
            }
        };
        match value {
            Value::Array(items) => Ok(items),
            other => Err(self.error(
                doc_id,
                field,
                format!(
                    "expected a list of choices, got {}",
                    pyvalue::py_repr(&other)
                ),
            )),
        }
    }

    /// lm-eval's `build_qa_turn`: the question and, for examples, the answer.
    fn qa_turn(
        &self,
        q: &Value,
        c: Option<&[Value]>,
        a: Option<&Value>,
        gen_prefix: Option<&str>,
        (target_delimiter, fewshot_delimiter): (&str, &str),
        doc_id: usize,
    ) -> Result<Vec<Turn>, PromptError> {
        let Value::String(q) = q else {
            return Err(self.error(
                doc_id,
                "doc_to_text",
                format!("the context is not a string: {}", pyvalue::py_repr(q)),
            ));
        };
        let has_answer = a.is_some_and(|a| !a.is_null() && a.as_str() != Some(""));
        let gen_prefix = gen_prefix.filter(|g| !g.is_empty());
        let user_delimiter = if (has_answer && gen_prefix.is_none())
            || gen_prefix.is_some_and(|g| requires_delimiter(q, g))
        {
            target_delimiter
        } else {
            ""
        };
        let mut turns = vec![Turn {
            role: "user",
            content: q.clone(),
            delimiter: user_delimiter.to_string(),
        }];
        if has_answer {
            let a = a.expect("has_answer");
            let answer = match (c.filter(|c| !c.is_empty()), a) {
                (Some(c), Value::Number(n)) if n.is_i64() => {
                    let i = n.as_i64().unwrap_or(-1);
                    let idx = if i < 0 { c.len() as i64 + i } else { i };
                    c.get(idx as usize).cloned().ok_or_else(|| {
                        self.error(
                            doc_id,
                            "doc_to_target",
                            format!("index {i} is out of range for {} choices", c.len()),
                        )
                    })?
                }
                (_, Value::Array(items)) => items.first().cloned().unwrap_or(Value::Null),
                (_, other) => other.clone(),
            };
            let Value::String(answer) = answer else {
                return Err(self.error(
                    doc_id,
                    "doc_to_target",
                    format!("the answer is not a string: {}", pyvalue::py_repr(&answer)),
                ));
            };
            turns.push(Turn {
                role: "assistant",
                content: maybe_delimit(gen_prefix, &answer, " "),
                delimiter: fewshot_delimiter.to_string(),
            });
        } else if let Some(g) = gen_prefix {
            turns.push(Turn {
                role: "assistant",
                content: g.to_string(),
                delimiter: String::new(),
            });
        }
        Ok(turns)
    }

    /// Builds the prompt(s) and requests for one document. Documents must be
    /// prepared in order: the few-shot draws depend on all earlier ones.
    pub fn prepare(&mut self, doc_id: usize, doc: &Doc) -> Result<Prepared, PromptError> {
        let config = self.config;
        let fs = &config.fewshot_config;
        let mj = MjValue::from(minijinja::value::Serde(doc));
        let description = self
            .resolve_field(doc, &mj, Some(&config.description), doc_id, "description")?
            .unwrap_or_default();
        let system_prompt = maybe_delimit(
            self.options.system_instruction.as_deref(),
            &description,
            &config.fewshot_delimiter,
        );
        let mut turns = Vec::new();
        if !system_prompt.is_empty() {
            turns.push(Turn {
                role: "system",
                content: system_prompt,
                delimiter: String::new(),
            });
        }
        if self.num_fewshot > 0 {
            let exclude = (fs.split == config.test_split).then_some(doc);
            let sampler = self
                .sampler
                .as_mut()
                .ok_or_else(|| PromptError {
                    path: config.source.clone(),
                    task: config.task.clone(),
                    doc_id,
                    field: "num_fewshot".into(),
                    message: "few-shot examples requested but the task has no few-shot documents (set fewshot_split or training_split)".into(),
                })?;
            let examples = sampler
                .sample(self.num_fewshot, exclude)
                .map_err(|m| PromptError {
                    path: config.source.clone(),
                    task: config.task.clone(),
                    doc_id,
                    field: "num_fewshot".into(),
                    message: m,
                })?;
            for ex in &examples {
                let ex_mj = MjValue::from(minijinja::value::Serde(ex));
                let mut q =
                    self.doc_value(ex, &ex_mj, fs.doc_to_text.as_ref(), doc_id, "doc_to_text")?;
                let mut c = match &fs.doc_to_choice {
                    Some(spec) => Some(self.doc_to_choice(ex, &ex_mj, Some(spec), doc_id)?),
                    None => None,
                };
                let a = self.doc_value(
                    ex,
                    &ex_mj,
                    fs.doc_to_target.as_ref(),
                    doc_id,
                    "doc_to_target",
                )?;
                let gen_prefix = self.resolve_field(
                    ex,
                    &ex_mj,
                    fs.gen_prefix.as_ref(),
                    doc_id,
                    "fewshot_config.gen_prefix",
                )?;
                if self.multiple_input {
                    let choices = c.take().unwrap_or_default();
                    let idx = q
                        .as_i64()
                        .and_then(|i| usize::try_from(i).ok())
                        .filter(|i| *i < choices.len());
                    q = idx.map(|i| choices[i].clone()).ok_or_else(|| {
                        self.error(
                            doc_id,
                            "doc_to_text",
                            "a few-shot example's input index is not a valid choice index",
                        )
                    })?;
                }
                turns.extend(self.qa_turn(
                    &q,
                    c.as_deref(),
                    Some(&a),
                    gen_prefix.as_deref(),
                    (&fs.target_delimiter, &fs.fewshot_delimiter),
                    doc_id,
                )?);
            }
        }
        let q = self.doc_value(doc, &mj, config.doc_to_text.as_ref(), doc_id, "doc_to_text")?;
        let choices = match &config.doc_to_choice {
            Some(spec) => Some(self.doc_to_choice(doc, &mj, Some(spec), doc_id)?),
            None => None,
        };
        let target = self.doc_value(
            doc,
            &mj,
            config.doc_to_target.as_ref(),
            doc_id,
            "doc_to_target",
        )?;
        let gen_prefix = match &config.gen_prefix {
            None => None,
            Some(g) if self.features.contains(g) => doc.get(g).map(py_str),
            Some(g) => Some(self.render(g, &mj, doc_id, "gen_prefix")?),
        };
        let contexts: Vec<String> = if self.multiple_input {
            let mut out = Vec::new();
            for ctx in choices.as_deref().unwrap_or_default() {
                let last =
                    self.qa_turn(ctx, None, None, gen_prefix.as_deref(), ("", ""), doc_id)?;
                let all = turns.iter().chain(last.iter()).cloned().collect();
                out.push(self.finish(all, gen_prefix.as_deref(), doc_id)?);
            }
            out
        } else {
            let last = self.qa_turn(
                &q,
                choices.as_deref(),
                None,
                gen_prefix.as_deref(),
                (&config.target_delimiter, ""),
                doc_id,
            )?;
            let all = turns.into_iter().chain(last).collect();
            vec![self.finish(all, gen_prefix.as_deref(), doc_id)?]
        };
        let requests = self.requests(&contexts, choices.as_deref(), &target, doc_id)?;
        Ok(Prepared {
            doc_id,
            doc: doc.clone(),
            target,
            choices: choices.map(|c| c.iter().map(py_str).collect()),
            gold_input: self.multiple_input.then_some(q),
            requests,
        })
    }

    /// The prompt text: the turns joined, or rendered by the chat template.
    fn finish(
        &self,
        turns: Vec<Turn>,
        gen_prefix: Option<&str>,
        doc_id: usize,
    ) -> Result<String, PromptError> {
        let Some(template) = &self.options.chat_template else {
            return Ok(join(turns.iter()));
        };
        let messages = if self.options.fewshot_as_multiturn {
            turns
                .into_iter()
                .map(|t| Message {
                    role: t.role.to_string(),
                    content: t.content,
                })
                .collect()
        } else {
            single_turn(turns)
        };
        let add_generation_prompt = gen_prefix.is_none_or(str::is_empty);
        template
            .render(&messages, add_generation_prompt)
            .map_err(|m| self.error(doc_id, "chat_template", m))
    }

    /// lm-eval's `construct_requests`.
    fn requests(
        &self,
        contexts: &[String],
        choices: Option<&[Value]>,
        target: &Value,
        doc_id: usize,
    ) -> Result<Vec<Request>, PromptError> {
        let config = self.config;
        let ctx = contexts.first().cloned().unwrap_or_default();
        Ok(match config.output_type {
            OutputType::Loglikelihood => vec![Request::Loglikelihood {
                context: ctx,
                continuation: py_str(target),
            }],
            OutputType::LoglikelihoodRolling => vec![Request::Rolling {
                text: py_str(target),
            }],
            OutputType::MultipleChoice => {
                // Under a chat template the answer follows the assistant
                // turn directly, unless a gen_prefix needs the delimiter.
                let chat_delim = match &config.gen_prefix {
                    Some(g) if !g.is_empty() && !g.chars().last().is_some_and(is_space) => {
                        config.target_delimiter.as_str()
                    }
                    _ => "",
                };
                let delim = if self.options.chat_template.is_some() {
                    chat_delim
                } else {
                    config.target_delimiter.as_str()
                };
                let choices = choices.ok_or_else(|| {
                    self.error(
                        doc_id,
                        "doc_to_choice",
                        "missing: a multiple_choice task needs doc_to_choice",
                    )
                })?;
                let mut out: Vec<Request> = if self.multiple_input {
                    contexts
                        .iter()
                        .map(|c| Request::Loglikelihood {
                            context: c.clone(),
                            continuation: format!("{delim}{}", py_str(target)),
                        })
                        .collect()
                } else {
                    choices
                        .iter()
                        .map(|c| Request::Loglikelihood {
                            context: ctx.clone(),
                            continuation: format!("{delim}{}", py_str(c)),
                        })
                        .collect()
                };
                if self.uses_mutual_info {
                    out.extend(choices.iter().map(|c| Request::Loglikelihood {
                        context: String::new(),
                        continuation: format!("{delim}{}", py_str(c)),
                    }));
                }
                out
            }
            OutputType::GenerateUntil => {
                let raw = config.generation_kwargs.clone().unwrap_or_default();
                vec![Request::Generate {
                    context: ctx,
                    options: generation_options(raw)
                        .map_err(|m| self.error(doc_id, "generation_kwargs", m))?,
                }]
            }
        })
    }
}

/// Typed decoding options from lm-eval's `generation_kwargs`.
pub fn generation_options(
    raw: serde_json::Map<String, Value>,
) -> Result<GenerationOptions, String> {
    let until = match raw.get("until") {
        None | Some(Value::Null) => vec![],
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or("`until` must be a string or a list of strings")?,
        Some(_) => return Err("`until` must be a string or a list of strings".into()),
    };
    let max_gen_toks = match raw.get("max_gen_toks") {
        None => 256,
        Some(v) => v
            .as_u64()
            .ok_or("`max_gen_toks` must be a positive integer")? as usize,
    };
    let temperature = raw
        .get("temperature")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let do_sample = raw
        .get("do_sample")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(GenerationOptions {
        until,
        max_gen_toks,
        temperature,
        do_sample,
        raw,
    })
}

/// lm-eval's `multiturn_to_singleturn`: everything but the system prompt
/// and a trailing assistant turn collapses into one user message.
fn single_turn(mut turns: Vec<Turn>) -> Vec<Message> {
    let system = (turns.first().map(|t| t.role) == Some("system")).then(|| turns.remove(0));
    let assistant = (turns.last().map(|t| t.role) == Some("assistant"))
        .then(|| turns.pop())
        .flatten();
    if let Some(last) = turns.last_mut() {
        last.delimiter.clear();
    }
    let mut out: Vec<Message> = system
        .into_iter()
        .map(|t| Message {
            role: t.role.into(),
            content: t.content,
        })
        .collect();
    out.push(Message {
        role: "user".into(),
        content: join(turns.iter()),
    });
    out.extend(assistant.map(|t| Message {
        role: t.role.into(),
        content: t.content,
    }));
    out
}

fn join<'a>(turns: impl Iterator<Item = &'a Turn>) -> String {
    let mut s = String::new();
    for t in turns {
        s.push_str(&t.content);
        s.push_str(&t.delimiter);
    }
    s
}

/// Joins prefix and suffix, adding `delimiter` only when neither side has
/// whitespace at the seam (lm-eval's `maybe_delimit`).
fn maybe_delimit(prefix: Option<&str>, suffix: &str, delimiter: &str) -> String {
    let Some(prefix) = prefix.filter(|p| !p.is_empty()) else {
        return suffix.to_string();
    };
    if suffix.is_empty() {
        return prefix.to_string();
    }
    if requires_delimiter(prefix, suffix) {
        format!("{prefix}{delimiter}{suffix}")
    } else {
        format!("{prefix}{suffix}")
    }
}

fn requires_delimiter(prefix: &str, suffix: &str) -> bool {
    match (prefix.chars().last(), suffix.chars().next()) {
        (Some(p), Some(s)) => !(is_space(p) || is_space(s)),
        (None, _) => false,
        (Some(p), None) => !is_space(p),
    }
}
