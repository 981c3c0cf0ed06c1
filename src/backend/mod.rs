//! The model side of assay: one trait, one file per backend, chosen by a spec
//! string `kind:target` in exactly one place ([`open`]).
//!
//! A backend answers batches of requests and says who it is. It never sees a
//! task, a document or a metric, so any backend can serve any task.

pub mod llama;
pub mod lm_eval;
pub mod openai_chat;
pub mod openai_completions;
mod server;

use std::collections::BTreeMap;

use crate::error::ErrorKind;
use crate::request::GenerationOptions;

/// Who answered: part of every cache key and every result.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ModelIdentity {
    /// The backend spec as the user gave it, e.g. `llama:models/x.gguf`.
    pub spec: String,
    /// A stable fingerprint of the weights or the served model, e.g.
    /// `sha256:...` of a GGUF file.
    pub fingerprint: String,
    /// Anything else the backend knows about itself (architecture, server
    /// version, context length...).
    pub details: BTreeMap<String, String>,
}

impl ModelIdentity {
    /// The key of this model's answers in the response cache: a digest of
    /// the fingerprint and every detail (which are chosen to be stable and
    /// to cover whatever changes answers), never of the spec's path or URL.
    pub fn cache_key(&self) -> String {
        // `source.*` details say where the weights came from, not what they
        // are: the same file keys the same answers wherever it was read.
        let details: BTreeMap<&String, &String> = self
            .details
            .iter()
            .filter(|(k, _)| !k.starts_with("source."))
            .collect();
        let details = serde_json::to_string(&details).unwrap_or_default();
        crate::hash::sha256_hex(format!("{}\n{details}", self.fingerprint).as_bytes())
    }
}

/// Receives each answer as soon as a backend has it: the index of the
/// request in the batch the backend was given, and the answer. The engine
/// stores answers as they come, so a run stopped midway loses none.
pub type OnAnswer<'a, T> = &'a mut dyn FnMut(usize, &T);

pub use crate::http::FaultCounters;

/// A chat template as a model ships it: Jinja source and special tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatTemplateSpec {
    pub template: String,
    pub bos_token: String,
    pub eos_token: String,
}

/// Why a backend could not answer.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{0}")]
    Unsupported(String),
    /// The user's input (a model path, a `--model-arg`) is wrong; nothing
    /// was evaluated.
    #[error("{0}")]
    BadInput(String),
    /// Request `request` (an index into the batch the backend was given)
    /// needs more tokens than the model's context holds. Checked before
    /// anything is evaluated.
    #[error(
        "request {request} needs {tokens} tokens but the model's context holds {n_ctx}; \
         raise it with --model-arg n_ctx=N"
    )]
    ContextOverflow {
        request: usize,
        tokens: usize,
        n_ctx: usize,
    },
    #[error("{0}")]
    Failed(String),
    /// Request `request` (an index into the batch) could not be answered:
    /// the server refused it, kept failing, or answered something
    /// unreadable. Requests answered before it were handed out.
    #[error("request {request}: {message}")]
    Request { request: usize, message: String },
}

impl BackendError {
    /// A backend that failed or gave up on a request may answer next time;
    /// the rest is about what the user gave.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BackendError::Failed(_) | BackendError::Request { .. } => ErrorKind::NotFinished,
            BackendError::Unsupported(_)
            | BackendError::BadInput(_)
            | BackendError::ContextOverflow { .. } => ErrorKind::Input,
        }
    }
}

/// A language model that answers the three kinds of request, each in
/// batches: `result[i]` answers `requests[i]`, and each answer is also
/// handed to `on_answer` as soon as it is known. A backend may reorder, pack
/// and batch internally as it likes.
pub trait Backend {
    fn identity(&self) -> &ModelIdentity;

    /// `(log P(continuation | context), is_greedy)` for each
    /// `(context, continuation)` pair. A backend without log-likelihoods
    /// keeps the default, which refuses (see [`Backend::cannot_answer`]).
    fn loglikelihood(
        &mut self,
        _requests: &[(&str, &str)],
        _on_answer: OnAnswer<(f64, bool)>,
    ) -> Result<Vec<(f64, bool)>, BackendError> {
        Err(refusal(self, "loglikelihood"))
    }

    /// The total log-probability of each text, scored in disjoint windows
    /// when it exceeds the context (lm-eval's `loglikelihood_rolling`). The
    /// default refuses, as for [`Backend::loglikelihood`].
    fn loglikelihood_rolling(
        &mut self,
        _texts: &[&str],
        _on_answer: OnAnswer<f64>,
    ) -> Result<Vec<f64>, BackendError> {
        Err(refusal(self, "loglikelihood_rolling"))
    }

    /// The model's own chat template, if it has one (for
    /// `--apply-chat-template`).
    fn chat_template(&self) -> Option<ChatTemplateSpec> {
        None
    }

    /// The generated text for each `(context, options)`, cut before the
    /// first stop string.
    fn generate(
        &mut self,
        requests: &[(&str, &GenerationOptions)],
        on_answer: OnAnswer<String>,
    ) -> Result<Vec<String>, BackendError>;

    /// How many requests of one kind to send per call; none leaves it to
    /// the engine. A backend that batches and sorts requests itself, as
    /// lm-eval's models do, takes them all at once.
    fn requests_per_call(&self) -> Option<usize> {
        None
    }

    /// Transport fault counts, for backends that talk to servers.
    fn faults(&self) -> Option<std::sync::Arc<FaultCounters>> {
        None
    }

    /// Why this backend cannot answer requests of a kind (`loglikelihood`,
    /// `loglikelihood_rolling`, `generate_until`) at all, so a run fails
    /// before anything is sent.
    fn cannot_answer(&self, _kind: &str) -> Option<String> {
        None
    }

    /// Whether prompts made with `--apply-chat-template` should reach the
    /// backend as a JSON list of messages (the server applies its own
    /// template) rather than rendered by [`Backend::chat_template`].
    fn chat_messages(&self) -> bool {
        false
    }
}

/// The error a backend returns for a kind of request it cannot answer at all
/// (the reason [`Backend::cannot_answer`] gives; the engine checks that
/// before sending, so this is the backstop).
fn refusal<B: Backend + ?Sized>(backend: &B, kind: &str) -> BackendError {
    BackendError::Unsupported(
        backend
            .cannot_answer(kind)
            .unwrap_or_else(|| format!("{kind} requests are not supported")),
    )
}

/// lm-eval's `postprocess_generated_text`: cut at each stop string in turn.
pub(crate) fn cut_at_stops(mut text: String, stops: &[String]) -> String {
    for stop in stops.iter().filter(|s| !s.is_empty()) {
        if let Some(at) = text.find(stop.as_str()) {
            text.truncate(at);
        }
    }
    text
}

/// The backend kinds a spec may name (`kind:target`).
pub const KINDS: &[&str] = &["llama", "openai-completions", "openai-chat", "lm-eval"];

/// Opens the backend a spec string names: `kind:target`. The one place
/// backend names are matched.
pub fn open(spec: &str, args: &BTreeMap<String, String>) -> Result<Box<dyn Backend>, BackendError> {
    let (kind, target) = spec.split_once(':').ok_or_else(|| {
        BackendError::Unsupported(format!(
            "--model {spec}: write the backend and its target as kind:target, e.g. llama:model.gguf"
        ))
    })?;
    match kind {
        "llama" => {
            use crate::data::hub::ModelRef;
            let mut options = llama::LlamaOptions::from_args(args)?;
            let mut source = BTreeMap::new();
            // Adapters from the Hub come into the cache first; each one's
            // origin is `lora.*`, or `lora.N.*` (from 1) when there are several.
            let several = options.lora.len() > 1;
            for (n, (file, _)) in options.lora.iter_mut().enumerate() {
                if let Some(r) = ModelRef::parse(file) {
                    let (path, from) = fetch_weights(&r.map_err(BackendError::BadInput)?)?;
                    *file = path.display().to_string();
                    let prefix = if several {
                        format!("lora.{}", n + 1)
                    } else {
                        "lora".to_string()
                    };
                    source.extend(from.into_iter().map(|(k, v)| (format!("{prefix}.{k}"), v)));
                }
            }
            let path = match ModelRef::parse(target) {
                None => std::path::PathBuf::from(target),
                Some(r) => {
                    let (path, from) = fetch_weights(&r.map_err(BackendError::BadInput)?)?;
                    source.extend(from);
                    path
                }
            };
            let mut backend = llama::LlamaBackend::open(&path, options)?;
            if !source.is_empty() {
                backend.record_source(spec, source);
            }
            Ok(Box::new(backend))
        }
        "openai-completions" => Ok(Box::new(openai_completions::CompletionsBackend::open(
            target, args,
        )?)),
        "openai-chat" => Ok(Box::new(openai_chat::ChatBackend::open(target, args)?)),
        "lm-eval" => Ok(Box::new(lm_eval::LmEvalBackend::open(target, args)?)),
        other => Err(BackendError::Unsupported(format!(
            "--model {spec}: unknown backend `{other}` (known: {})",
            KINDS.join(", ")
        ))),
    }
}

/// Fetches a Hub model file (and a split file's other parts) into the cache:
/// the local path of the file to load, and where it came from.
fn fetch_weights(
    r: &crate::data::hub::ModelRef,
) -> Result<(std::path::PathBuf, BTreeMap<String, String>), BackendError> {
    let (files, path, settings) =
        crate::data::hub::model_file(r, false).map_err(|e| match e.kind() {
            ErrorKind::Input => BackendError::BadInput(e.to_string()),
            ErrorKind::NotFinished => BackendError::Failed(e.to_string()),
        })?;
    let mut source = BTreeMap::new();
    source.insert("hub".to_string(), settings.endpoint.clone());
    source.insert("repo".to_string(), files.repo.clone());
    source.insert("revision".to_string(), files.revision.clone());
    source.insert("commit".to_string(), files.commit.clone());
    for file in &files.files {
        let sha = file.sha256.clone().unwrap_or_else(|| "unknown".into());
        source.insert(format!("file.{}", file.path), sha);
    }
    Ok((path, source))
}

/// The variant name a run is filed under when none is given: the model
/// file's stem, or the target's last path segment (for `lm-eval:NAME`, the
/// `pretrained` model's).
pub fn default_variant_name(spec: &str, args: &BTreeMap<String, String>) -> String {
    let target = match (spec.split_once(':'), args.get("pretrained")) {
        (Some(("lm-eval", _)), Some(pretrained)) => pretrained.as_str(),
        (Some((_, target)), _) => target,
        (None, _) => spec,
    };
    let last = target
        .trim_end_matches('/')
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(target);
    last.strip_suffix(".gguf").unwrap_or(last).to_string()
}
