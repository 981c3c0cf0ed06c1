//! The lm-eval bridge (`--model lm-eval:NAME`): lm-eval's own model classes
//! (`hf`, `vllm`, `sglang`, ...) answer assay's requests, so a safetensors
//! fine-tune, a merge or a PEFT adapter gets the numbers lm-eval gives it,
//! while prompts, the cache, resuming, sharding and provenance stay assay's.
//!
//! A Python worker (`lm_eval_worker.py`, shipped inside the binary and
//! written to the cache folder under its hash) makes the model through
//! lm-eval's registry and answers over line-delimited JSON on stdin and
//! stdout (the protocol is described in the worker). Each answer comes back
//! as the model reports it to its cache hook, so it is stored at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::{Backend, BackendError, ChatTemplateSpec, ModelIdentity, OnAnswer};
use crate::request::GenerationOptions;
use crate::worker::{Worker, WorkerError};

const WORKER: &str = include_str!("lm_eval_worker.py");
const PROTOCOL: u64 = 1;
/// How long to wait for the worker's next message unless `timeout=` says.
const DEFAULT_TIMEOUT_SECONDS: u64 = 1800;

/// The arguments assay reads itself; the others go to lm-eval's model.
const OWN_ARGS: &[&str] = &["python", "timeout"];

/// lm-eval's model arguments that may name local weights (a model folder,
/// a PEFT adapter, a delta): fingerprinted by their files when they do.
pub const WEIGHTS_ARGS: &[&str] = &["pretrained", "peft", "delta"];

pub struct LmEvalBackend {
    identity: ModelIdentity,
    /// The model's chat template as lm-eval picks it, if it has one.
    chat_template: Option<ChatTemplateSpec>,
    worker: Worker,
    /// What the user ran, for messages: `lm-eval:hf`.
    shown: String,
    /// The interpreter, for messages.
    python: String,
}

impl LmEvalBackend {
    /// Starts the worker for lm-eval's model `name` with `args` (lm-eval's
    /// model arguments, plus assay's `python=` and `timeout=`).
    pub fn open(
        name: &str,
        args: &BTreeMap<String, String>,
    ) -> Result<LmEvalBackend, BackendError> {
        let shown = format!("lm-eval:{name}");
        if name.is_empty() {
            return Err(BackendError::BadInput(
                "--model lm-eval:NAME: name lm-eval's model, e.g. lm-eval:hf".into(),
            ));
        }
        let python = args
            .get("python")
            .cloned()
            .unwrap_or_else(crate::worker::default_python);
        let timeout = match args.get("timeout") {
            None => DEFAULT_TIMEOUT_SECONDS,
            Some(t) => t.parse::<u64>().ok().filter(|t| *t > 0).ok_or_else(|| {
                BackendError::BadInput(format!(
                    "--model-arg timeout={t}: give the seconds to wait for the worker's next answer"
                ))
            })?,
        };
        let model_args: BTreeMap<String, String> = args
            .iter()
            .filter(|(k, _)| !OWN_ARGS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let script = crate::worker::script_file("lm-eval-worker", WORKER).map_err(|e| {
            BackendError::Failed(format!(
                "cannot write the lm-eval worker to the cache folder: {e}"
            ))
        })?;
        let worker =
            Worker::start(&python, &script, Duration::from_secs(timeout)).map_err(|e| {
                BackendError::BadInput(format!(
                    "--model {shown}: cannot run Python `{python}` ({e}); install Python 3 with \
                 lm-eval, or name the interpreter with --model-arg python=PATH or $ASSAY_PYTHON"
                ))
            })?;
        let mut backend = LmEvalBackend {
            identity: ModelIdentity::default(),
            chat_template: None,
            worker,
            shown,
            python,
        };
        let hello = backend.next_message()?;
        let versions = match hello.get("hello") {
            Some(h) if h.get("protocol").and_then(Value::as_u64) == Some(PROTOCOL) => h
                .get("versions")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            Some(_) => {
                return Err(BackendError::Failed(format!(
                    "--model {}: the worker speaks another protocol version than this assay",
                    backend.shown
                )))
            }
            None => return Err(backend.worker_error(&hello)),
        };
        backend.send(&json!({"op": "load", "model": name, "args": model_args}))?;
        let loaded = backend.next_message()?;
        let Some(loaded) = loaded.get("loaded") else {
            return Err(backend.worker_error(&loaded));
        };
        let commit = loaded
            .get("commit")
            .and_then(Value::as_str)
            .map(str::to_string);
        backend.identity = identity(name, &model_args, &versions, commit)?;
        let text = |key: &str| {
            loaded
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        backend.chat_template =
            loaded
                .get("chat_template")
                .and_then(Value::as_str)
                .map(|template| ChatTemplateSpec {
                    template: template.to_string(),
                    bos_token: text("bos_token"),
                    eos_token: text("eos_token"),
                });
        Ok(backend)
    }

    fn send(&mut self, message: &Value) -> Result<(), BackendError> {
        self.worker.send(message).map_err(|e| self.failed(e))
    }

    /// The worker's next message, within the timeout.
    fn next_message(&mut self) -> Result<Value, BackendError> {
        self.worker.next_message().map_err(|e| self.failed(e))
    }

    /// A worker that went silent or ended, in words that say what is kept.
    fn failed(&self, error: WorkerError) -> BackendError {
        BackendError::Failed(match error {
            WorkerError::Silent(after) => format!(
                "--model {}: the lm-eval worker ({}) sent nothing for {} s and was \
                 stopped; what it answered is cached; raise --model-arg timeout=SECONDS if \
                 the model is just slow",
                self.shown,
                self.python,
                after.as_secs()
            ),
            WorkerError::Died { status, last_line } => format!(
                "--model {}: the lm-eval worker stopped ({status}){}; what it answered is \
                 cached, and the same command resumes",
                self.shown,
                last_line.map(|l| format!(": {l}")).unwrap_or_default()
            ),
        })
    }

    /// The error a worker's `{"error": ...}` message reports, in words that
    /// say what to install or fix.
    fn worker_error(&mut self, message: &Value) -> BackendError {
        let python = self.python.clone();
        let text = message.get("error").and_then(Value::as_str);
        let Some(text) = text else {
            if message.get("unreadable").is_some() {
                return BackendError::Failed(format!(
                    "--model {}: the worker wrote something that is not its protocol: {message}",
                    self.shown
                ));
            }
            let died = self.worker.died();
            return self.failed(died);
        };
        let shown = &self.shown;
        match message.get("kind").and_then(Value::as_str) {
            Some("missing") => match message.get("package").and_then(Value::as_str) {
                Some("lm_eval") | None if text.contains("lm_eval") => {
                    BackendError::BadInput(format!(
                        "--model {shown}: `{python}` cannot import lm-eval ({text}); install it \
                         there (pip install \"lm-eval[hf]\") or name another interpreter with \
                         --model-arg python=PATH"
                    ))
                }
                Some(package) => BackendError::BadInput(format!(
                    "--model {shown}: lm-eval's model needs the Python package `{package}`, which \
                     `{python}` cannot import ({text}); pip install it (for lm-eval:hf: pip \
                     install \"lm-eval[hf]\")"
                )),
                None => BackendError::BadInput(format!("--model {shown}: {text}")),
            },
            Some("load") => {
                BackendError::BadInput(format!("--model {shown}: the model does not load: {text}"))
            }
            _ => BackendError::Failed(format!("--model {shown}: {text}")),
        }
    }

    /// Sends one call and collects its answers, handing each to
    /// `on_answer` as it arrives.
    fn call<T: Clone>(
        &mut self,
        op: &str,
        requests: Vec<Value>,
        on_answer: OnAnswer<T>,
        read: impl Fn(&Value) -> Option<T>,
    ) -> Result<Vec<T>, BackendError> {
        let n = requests.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        self.send(&json!({"op": op, "requests": requests}))?;
        let mut answers: Vec<Option<T>> = vec![None; n];
        loop {
            let message = self.next_message()?;
            if let Some(index) = message.get("answer").and_then(Value::as_u64) {
                let index = index as usize;
                let answer = message
                    .get("value")
                    .and_then(&read)
                    .filter(|_| index < n)
                    .ok_or_else(|| BackendError::Request {
                        request: index.min(n - 1),
                        message: format!("the lm-eval worker answered {message}"),
                    })?;
                on_answer(index, &answer);
                answers[index] = Some(answer);
            } else if message.get("done").is_some() {
                return answers
                    .into_iter()
                    .enumerate()
                    .map(|(i, a)| {
                        a.ok_or_else(|| BackendError::Request {
                            request: i,
                            message: "the lm-eval worker gave no answer".into(),
                        })
                    })
                    .collect();
            } else {
                return Err(self.worker_error(&message));
            }
        }
    }
}

/// Who answers: lm-eval's model and arguments, the versions that compute
/// the numbers, and the weights themselves (a local folder's files by
/// SHA-256, a Hub repository by its resolved commit).
fn identity(
    name: &str,
    args: &BTreeMap<String, String>,
    versions: &serde_json::Map<String, Value>,
    commit: Option<String>,
) -> Result<ModelIdentity, BackendError> {
    let mut details = BTreeMap::new();
    details.insert("backend".to_string(), format!("lm-eval:{name}"));
    for (package, version) in versions {
        if let Some(v) = version.as_str() {
            details.insert(format!("version.{package}"), v.to_string());
        }
    }
    let mut fingerprint = String::new();
    // A GGUF file in a local folder is the weights; else the folder is.
    let gguf = args
        .get("pretrained")
        .zip(args.get("gguf_file"))
        .map(|(folder, file)| Path::new(folder).join(file))
        .filter(|p| p.is_file());
    for (key, value) in args {
        let local = Path::new(value);
        if WEIGHTS_ARGS.contains(&key.as_str()) && local.exists() {
            let digest = match (&gguf, key.as_str()) {
                (Some(file), "pretrained") => crate::cache::file_sha256(file),
                _ => folder_sha256(local),
            }
            .map_err(|e| {
                BackendError::BadInput(format!("--model-arg {key}={value}: cannot read it: {e}"))
            })?;
            details.insert(format!("source.{key}"), value.clone());
            details.insert(format!("{key}.sha256"), digest.clone());
            if key == "pretrained" {
                fingerprint = format!("sha256:{digest}");
            }
        } else {
            details.insert(format!("arg.{key}"), value.clone());
        }
    }
    if fingerprint.is_empty() {
        let repo = args.get("pretrained").cloned().unwrap_or_default();
        fingerprint = match &commit {
            Some(c) => {
                details.insert("commit".into(), c.clone());
                format!("hf:{repo}@{c}")
            }
            None => format!(
                "hf:{repo}@{}",
                args.get("revision").map_or("main", String::as_str)
            ),
        };
    }
    Ok(ModelIdentity {
        spec: format!("lm-eval:{name}"),
        fingerprint,
        details,
    })
}

/// One SHA-256 over a file, or over the files of a model folder (each
/// remembered by path, size and modification time): their names and
/// digests. A Hugging Face model folder is flat, so only its own files
/// count, not subfolders or hidden files.
fn folder_sha256(path: &Path) -> std::io::Result<String> {
    if path.is_file() {
        return crate::cache::file_sha256(path);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|f| {
        f.is_file()
            && !f
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
    });
    files.sort();
    let mut listing = String::new();
    for file in files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let digest = crate::cache::file_sha256(&file)?;
        listing.push_str(&format!("{name}\t{digest}\n"));
    }
    Ok(crate::hash::sha256_hex(listing.as_bytes()))
}

impl Backend for LmEvalBackend {
    fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    fn chat_template(&self) -> Option<ChatTemplateSpec> {
        self.chat_template.clone()
    }

    /// lm-eval hands a model every request of a kind in one call, which it
    /// sorts and batches; so does the bridge (answers still come back one
    /// by one).
    fn requests_per_call(&self) -> Option<usize> {
        Some(usize::MAX)
    }

    fn loglikelihood(
        &mut self,
        requests: &[(&str, &str)],
        on_answer: OnAnswer<(f64, bool)>,
    ) -> Result<Vec<(f64, bool)>, BackendError> {
        let requests = requests.iter().map(|(c, x)| json!([c, x])).collect();
        self.call("loglikelihood", requests, on_answer, |v| {
            Some((v.get(0)?.as_f64()?, v.get(1)?.as_bool()?))
        })
    }

    fn loglikelihood_rolling(
        &mut self,
        texts: &[&str],
        on_answer: OnAnswer<f64>,
    ) -> Result<Vec<f64>, BackendError> {
        let requests = texts.iter().map(|t| json!([t])).collect();
        self.call("loglikelihood_rolling", requests, on_answer, Value::as_f64)
    }

    fn generate(
        &mut self,
        requests: &[(&str, &GenerationOptions)],
        on_answer: OnAnswer<String>,
    ) -> Result<Vec<String>, BackendError> {
        let requests = requests
            .iter()
            .map(|(context, options)| json!([context, options.raw]))
            .collect();
        self.call("generate_until", requests, on_answer, |v| {
            v.as_str().map(str::to_string)
        })
    }
}
