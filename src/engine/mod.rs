//! Running a plan: send every distinct request once, in batches, to a
//! backend; then score the answers and hand a [`results::Run`] to the caller.
//!
//! Identical requests (the same context and continuation appearing in many
//! documents, or `repeats` of greedy generation) are sent once. The backend
//! sees only requests; scoring sees only documents and responses.

pub mod plan;
pub mod score;

use std::collections::HashMap;
use std::time::Instant;

use crate::backend::{Backend, BackendError};
use crate::data::DataError;
use crate::prompt::PromptError;
use crate::request::{Request, Response};
use crate::task::TaskError;

pub use plan::{plan, Limit, Plan, PlannedTask, TaskOptions};

/// Why a run could not be planned or finished.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error("{0}")]
    Input(String),
    #[error("backend failed: {0}")]
    Backend(#[from] BackendError),
    #[error("scoring task `{task}`: {message}")]
    Scoring { task: String, message: String },
}

impl EngineError {
    /// Bad input (exit 2) as opposed to a failure to finish (exit 4).
    pub fn is_input(&self) -> bool {
        !matches!(self, EngineError::Backend(BackendError::Failed(_)))
    }
}

/// Counts of what a run sent.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RequestCounts {
    /// Requests the tasks asked for, repeats included.
    pub total: usize,
    /// Distinct requests sent to the backend.
    pub sent: usize,
    /// Requests answered from the cache.
    pub cached: usize,
    pub retried: usize,
}

/// Answers for every request of a plan, keyed by request hash.
pub struct Answers {
    pub by_hash: HashMap<String, Response>,
    pub counts: RequestCounts,
    pub seconds: f64,
}

/// How many requests of one kind go to the backend per call.
const BATCH: usize = 512;

/// Sends every distinct request of `plan` to `backend`.
pub fn execute(
    plan: &Plan,
    backend: &mut dyn Backend,
    show_progress: bool,
) -> Result<Answers, EngineError> {
    let start = Instant::now();
    let mut distinct: Vec<(String, &Request)> = Vec::new();
    // Where each distinct request first appears, to name it in errors.
    let mut origin: HashMap<String, (&str, usize)> = HashMap::new();
    let mut total = 0;
    for task in &plan.tasks {
        for doc in &task.docs {
            for request in &doc.requests {
                total += task.config.repeats;
                let hash = request.hash();
                if !origin.contains_key(&hash) {
                    origin.insert(hash.clone(), (task.config.task.as_str(), doc.doc_id));
                    distinct.push((hash, request));
                }
            }
        }
    }
    let name = |hash: Option<&str>, e: BackendError| -> EngineError {
        match e {
            BackendError::ContextOverflow { tokens, n_ctx, .. } => {
                let (task, doc_id) = hash
                    .and_then(|h| origin.get(h))
                    .copied()
                    .unwrap_or(("?", 0));
                EngineError::Input(format!(
                    "task `{task}`, document {doc_id}: the request needs {tokens} tokens but the model's context holds {n_ctx}; \
                     raise it with --model-arg n_ctx=N or leave the document out with --limit"
                ))
            }
            other => EngineError::Backend(other),
        }
    };
    let bar = plan::progress(show_progress, distinct.len() as u64, "requests");
    let mut by_hash = HashMap::with_capacity(distinct.len());
    let (mut ll, mut rolling, mut generate) = (Vec::new(), Vec::new(), Vec::new());
    for (hash, request) in &distinct {
        match request {
            Request::Loglikelihood {
                context,
                continuation,
            } => ll.push((hash, context.as_str(), continuation.as_str())),
            Request::Rolling { text } => rolling.push((hash, text.as_str())),
            Request::Generate { context, options } => {
                generate.push((hash, context.as_str(), options))
            }
        }
    }
    for chunk in context_chunks(&ll) {
        let pairs: Vec<(&str, &str)> = chunk.iter().map(|(_, c, x)| (*c, *x)).collect();
        let answers = backend.loglikelihood(&pairs).map_err(|e| {
            name(
                overflow_hash(&e, chunk.iter().map(|(h, _, _)| h.as_str())),
                e,
            )
        })?;
        check_len(answers.len(), chunk.len())?;
        for ((hash, _, _), (logprob, is_greedy)) in chunk.iter().zip(answers) {
            by_hash.insert(
                (*hash).clone(),
                Response::Loglikelihood { logprob, is_greedy },
            );
        }
        bar.inc(chunk.len() as u64);
    }
    for chunk in rolling.chunks(BATCH) {
        let texts: Vec<&str> = chunk.iter().map(|(_, t)| *t).collect();
        let answers = backend
            .loglikelihood_rolling(&texts)
            .map_err(|e| name(overflow_hash(&e, chunk.iter().map(|(h, _)| h.as_str())), e))?;
        check_len(answers.len(), chunk.len())?;
        for ((hash, _), logprob) in chunk.iter().zip(answers) {
            by_hash.insert((*hash).clone(), Response::Rolling { logprob });
        }
        bar.inc(chunk.len() as u64);
    }
    for chunk in generate.chunks(BATCH) {
        let reqs: Vec<(&str, &crate::request::GenerationOptions)> =
            chunk.iter().map(|(_, c, o)| (*c, *o)).collect();
        let answers = backend.generate(&reqs).map_err(|e| {
            name(
                overflow_hash(&e, chunk.iter().map(|(h, _, _)| h.as_str())),
                e,
            )
        })?;
        check_len(answers.len(), chunk.len())?;
        for ((hash, _, _), text) in chunk.iter().zip(answers) {
            by_hash.insert((*hash).clone(), Response::Generate { text });
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(Answers {
        by_hash,
        counts: RequestCounts {
            total,
            sent: distinct.len(),
            cached: 0,
            retried: 0,
        },
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The hash of the request a context overflow points at.
fn overflow_hash<'h>(
    e: &BackendError,
    mut hashes: impl Iterator<Item = &'h str>,
) -> Option<&'h str> {
    match e {
        BackendError::ContextOverflow { request, .. } => hashes.nth(*request),
        _ => None,
    }
}

/// Log-likelihood requests in chunks of about [`BATCH`] that never split the
/// requests of one context (the options of one document), so a backend can
/// score them together.
fn context_chunks<'a, T>(
    requests: &'a [(T, &'a str, &'a str)],
) -> Vec<&'a [(T, &'a str, &'a str)]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    for i in 1..=requests.len() {
        let boundary = i == requests.len() || requests[i].1 != requests[i - 1].1;
        if boundary && (i - start >= BATCH || i == requests.len()) {
            chunks.push(&requests[start..i]);
            start = i;
        }
    }
    chunks
}

fn check_len(got: usize, want: usize) -> Result<(), EngineError> {
    if got == want {
        Ok(())
    } else {
        Err(EngineError::Backend(BackendError::Failed(format!(
            "the backend answered {got} of {want} requests"
        ))))
    }
}
