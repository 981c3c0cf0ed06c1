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
    /// Requests left unanswered because they do not fit the model's context
    /// (only with [`Overlong::Skip`]).
    pub overlong: Vec<OverlongRequest>,
}

/// What to do with a request longer than the model's context window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlong {
    /// Stop the run with an error naming the task and document.
    #[default]
    Fail,
    /// Leave the document out of scoring and record it in the run.
    Skip,
}

/// A request that did not fit the context window.
#[derive(Debug, Clone)]
pub struct OverlongRequest {
    pub hash: String,
    pub tokens: usize,
    pub n_ctx: usize,
}

/// A document left out of scoring, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SkippedDocument {
    pub task: String,
    pub doc_id: usize,
    pub reason: String,
}

/// How many requests of one kind go to the backend per call.
const BATCH: usize = 512;

/// Sends every distinct request of `plan` to `backend`.
pub fn execute(
    plan: &Plan,
    backend: &mut dyn Backend,
    show_progress: bool,
    overlong: Overlong,
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
    let name = |hash: &str, e: BackendError| -> EngineError {
        match e {
            BackendError::ContextOverflow { tokens, n_ctx, .. } => {
                let (task, doc_id) = origin.get(hash).copied().unwrap_or(("?", 0));
                EngineError::Input(format!(
                    "task `{task}`, document {doc_id}: the request needs {tokens} tokens but the model's context holds {n_ctx}; \
                     raise it with --model-arg n_ctx=N, or leave such documents out with --skip-overlong"
                ))
            }
            other => EngineError::Backend(other),
        }
    };
    let bar = plan::progress(show_progress, distinct.len() as u64, "requests");
    let mut by_hash = HashMap::with_capacity(distinct.len());
    let mut skipped = Vec::new();
    let (mut ll, mut rolling, mut generate) = (Vec::new(), Vec::new(), Vec::new());
    for (hash, request) in &distinct {
        match request {
            Request::Loglikelihood {
                context,
                continuation,
            } => ll.push((hash.as_str(), (context.as_str(), continuation.as_str()))),
            Request::Rolling { text } => rolling.push((hash.as_str(), text.as_str())),
            Request::Generate { context, options } => {
                generate.push((hash.as_str(), (context.as_str(), options)))
            }
        }
    }
    for chunk in context_chunks(&ll) {
        let answered = answer_chunk(chunk, overlong, &mut skipped, |pairs| {
            backend.loglikelihood(pairs)
        })
        .map_err(|(hash, e)| name(hash, e))?;
        for (hash, (logprob, is_greedy)) in answered {
            by_hash.insert(
                hash.to_string(),
                Response::Loglikelihood { logprob, is_greedy },
            );
        }
        bar.inc(chunk.len() as u64);
    }
    for chunk in rolling.chunks(BATCH) {
        let answered = answer_chunk(chunk, overlong, &mut skipped, |texts| {
            backend.loglikelihood_rolling(texts)
        })
        .map_err(|(hash, e)| name(hash, e))?;
        for (hash, logprob) in answered {
            by_hash.insert(hash.to_string(), Response::Rolling { logprob });
        }
        bar.inc(chunk.len() as u64);
    }
    for chunk in generate.chunks(BATCH) {
        let answered = answer_chunk(chunk, overlong, &mut skipped, |reqs| backend.generate(reqs))
            .map_err(|(hash, e)| name(hash, e))?;
        for (hash, text) in answered {
            by_hash.insert(hash.to_string(), Response::Generate { text });
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(Answers {
        by_hash,
        counts: RequestCounts {
            total,
            sent: distinct.len() - skipped.len(),
            cached: 0,
            retried: 0,
        },
        seconds: start.elapsed().as_secs_f64(),
        overlong: skipped,
    })
}

/// Sends one chunk of `(hash, request)` pairs through `call` and pairs each
/// hash with its answer. With [`Overlong::Skip`], a request the backend
/// finds too long for its context is recorded in `skipped` and the chunk is
/// sent again without it (backends check lengths before evaluating
/// anything). An error comes with the hash of the request it names, or of
/// the chunk's first request.
fn answer_chunk<'h, Q: Copy, A>(
    chunk: &[(&'h str, Q)],
    overlong: Overlong,
    skipped: &mut Vec<OverlongRequest>,
    mut call: impl FnMut(&[Q]) -> Result<Vec<A>, BackendError>,
) -> Result<Vec<(&'h str, A)>, (&'h str, BackendError)> {
    let mut pending: Vec<(&'h str, Q)> = chunk.to_vec();
    loop {
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let requests: Vec<Q> = pending.iter().map(|(_, q)| *q).collect();
        match call(&requests) {
            Ok(answers) => {
                if answers.len() != pending.len() {
                    let message = format!(
                        "the backend answered {} of {} requests",
                        answers.len(),
                        pending.len()
                    );
                    return Err((pending[0].0, BackendError::Failed(message)));
                }
                return Ok(pending.into_iter().map(|(h, _)| h).zip(answers).collect());
            }
            Err(BackendError::ContextOverflow {
                request,
                tokens,
                n_ctx,
            }) if overlong == Overlong::Skip && request < pending.len() => {
                let (hash, _) = pending.remove(request);
                skipped.push(OverlongRequest {
                    hash: hash.to_string(),
                    tokens,
                    n_ctx,
                });
            }
            Err(e) => {
                let hash = match &e {
                    BackendError::ContextOverflow { request, .. } => {
                        pending.get(*request).map_or(pending[0].0, |(h, _)| *h)
                    }
                    _ => pending[0].0,
                };
                return Err((hash, e));
            }
        }
    }
}

/// Removes from `plan` the documents with a request that was skipped as too
/// long, so they are not scored; returns them.
pub fn drop_overlong(plan: &mut Plan, answers: &Answers) -> Vec<SkippedDocument> {
    if answers.overlong.is_empty() {
        return Vec::new();
    }
    let why: HashMap<&str, &OverlongRequest> = answers
        .overlong
        .iter()
        .map(|o| (o.hash.as_str(), o))
        .collect();
    let mut dropped = Vec::new();
    for task in &mut plan.tasks {
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

/// Log-likelihood requests in chunks of about [`BATCH`] that never split the
/// requests of one context (the options of one document), so a backend can
/// score them together.
fn context_chunks<'a, T>(
    requests: &'a [(T, (&'a str, &'a str))],
) -> Vec<&'a [(T, (&'a str, &'a str))]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    for i in 1..=requests.len() {
        let boundary = i == requests.len() || requests[i].1 .0 != requests[i - 1].1 .0;
        if boundary && (i - start >= BATCH || i == requests.len()) {
            chunks.push(&requests[start..i]);
            start = i;
        }
    }
    chunks
}
