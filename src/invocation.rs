//! What a run is asked to do: the one description of a run's task selection
//! and every option that shapes its prompts.
//!
//! The command line, a variant manifest (`assay score`) and a recorded run
//! (`assay merge` plans its shards' run again) all produce an [`Invocation`];
//! the planner reads it and run.json records it. It sits below both the
//! pipeline (`run`) and the run format (`results`), which share it.

use std::path::PathBuf;

use crate::prompt::chat::ChatTemplate;

/// How much of each task to run (lm-eval's `--limit`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// The first N documents.
    Count(usize),
    /// A fraction of the documents, rounded up.
    Fraction(f64),
}

impl Limit {
    /// `--limit X`: a whole count, or a fraction below 1.
    pub fn from_arg(x: f64) -> Result<Limit, String> {
        if x <= 0.0 || !x.is_finite() {
            Err(format!(
                "--limit {x}: must be a positive count or a fraction in (0, 1)"
            ))
        } else if x < 1.0 {
            Ok(Limit::Fraction(x))
        } else if x.fract() == 0.0 {
            Ok(Limit::Count(x as usize))
        } else {
            Err(format!("--limit {x}: a count must be a whole number"))
        }
    }

    /// How many of `total` documents run.
    pub fn of(self, total: usize) -> usize {
        match self {
            Limit::Count(n) => n.min(total),
            Limit::Fraction(f) => ((total as f64 * f).ceil() as usize).min(total),
        }
    }

    /// As lm-eval records `config.limit`: the number as given.
    pub fn as_given(self) -> String {
        match self {
            Limit::Count(n) => n.to_string(),
            Limit::Fraction(f) => f.to_string(),
        }
    }
}

/// `(k, n)`: only documents whose id is congruent to k modulo n.
pub type Shard = (usize, usize);

/// `--shard K/N`.
pub fn parse_shard(s: &str) -> Result<Shard, String> {
    let parsed = s.split_once('/').and_then(|(k, n)| {
        Some((
            k.trim().parse::<usize>().ok()?,
            n.trim().parse::<usize>().ok()?,
        ))
    });
    match parsed {
        Some((k, n)) if n > 0 && k < n => Ok((k, n)),
        _ => Err(format!("--shard {s}: write K/N with 0 <= K < N, e.g. 0/4")),
    }
}

/// `--seed`, as lm-eval takes it: one integer for all, or
/// `python,numpy,torch,fewshot`. Only the few-shot seed shapes prompts.
pub fn parse_fewshot_seed(seed: &str) -> Result<u64, String> {
    let parts: Vec<&str> = seed.split(',').map(str::trim).collect();
    let fewshot = match parts.as_slice() {
        [one] => one,
        [_, _, _, fewshot] => fewshot,
        _ => {
            return Err(format!(
                "--seed {seed}: give one integer or four comma-separated integers"
            ))
        }
    };
    fewshot
        .parse::<u64>()
        .map_err(|_| format!("--seed {seed}: `{fewshot}` is not a non-negative integer"))
}

/// lm-eval's default few-shot seed.
pub const DEFAULT_FEWSHOT_SEED: u64 = 1234;

/// What a run was asked to do. run.json records all of it but the shard, so
/// the shards of one run can be planned again as one.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Invocation {
    /// Task, group or tag names.
    pub tasks: Vec<String>,
    /// Folders (or files) of task configs beside the built-in ones.
    pub include_path: Vec<PathBuf>,
    /// Overrides the configs' `num_fewshot`.
    pub num_fewshot: Option<usize>,
    pub limit: Option<Limit>,
    pub fewshot_seed: u64,
    /// Prepended to every prompt.
    pub system_instruction: Option<String>,
    /// The chat template prompts are rendered with, if any (the pipeline
    /// fills it from the model when [`Invocation::apply_chat_template`]).
    pub chat_template: Option<ChatTemplateRecord>,
    /// With a chat template: few-shot examples as separate turns.
    pub fewshot_as_multiturn: bool,
    /// `--apply-chat-template`: take the template from the model.
    #[serde(skip)]
    pub apply_chat_template: bool,
    /// Only this shard of the documents (not recorded: shards of one run
    /// record the same invocation).
    #[serde(skip)]
    pub shard: Option<Shard>,
    /// `--python-hooks`: whether hooks may run in Python. Never read from
    /// a file (it runs code from the task folder): the user says it each
    /// time; run.json records how each hook ran.
    #[serde(skip)]
    pub python_hooks: crate::ports::python::HookMode,
}

impl Invocation {
    /// Tasks `tasks` with lm-eval's defaults.
    pub fn new(tasks: Vec<String>) -> Invocation {
        Invocation {
            tasks,
            fewshot_seed: DEFAULT_FEWSHOT_SEED,
            ..Invocation::default()
        }
    }

    /// The compiled chat template, if the invocation has one.
    pub fn compiled_chat_template(&self) -> Result<Option<std::sync::Arc<ChatTemplate>>, String> {
        self.chat_template
            .as_ref()
            .map(|r| r.compile().map(std::sync::Arc::new))
            .transpose()
    }
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
    pub fn of(template: &ChatTemplate) -> ChatTemplateRecord {
        ChatTemplateRecord {
            messages_json: template.is_messages_json(),
            source: template.source().to_string(),
            bos_token: template.bos_token().to_string(),
            eos_token: template.eos_token().to_string(),
        }
    }

    pub fn compile(&self) -> Result<ChatTemplate, String> {
        if self.messages_json {
            Ok(ChatTemplate::messages_json())
        } else {
            ChatTemplate::new(&self.source, &self.bos_token, &self.eos_token)
        }
    }
}
