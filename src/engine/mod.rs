//! Running a plan: send every distinct request once, in batches, to a
//! backend; then score the answers and hand a [`results::Run`] to the caller.
//!
//! Identical requests (the same context and continuation appearing in many
//! documents, or `repeats` of greedy generation) are sent once, and not at
//! all when the response cache already has their answer; each answer is
//! stored as it arrives, so an interrupted run resumes where it stopped. The
//! backend sees only requests; scoring sees only documents and responses.

pub mod merge;
pub mod plan;
pub mod score;

use std::collections::HashMap;
use std::time::Instant;

use crate::backend::{Backend, BackendError, FaultCounters, OnAnswer};
use crate::cache::{Cache, CacheError};
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
    #[error(transparent)]
    Cache(#[from] CacheError),
}

impl EngineError {
    /// Bad input (exit 2) as opposed to a failure to finish (exit 4).
    pub fn is_input(&self) -> bool {
        !matches!(
            self,
            EngineError::Backend(BackendError::Failed(_) | BackendError::Request { .. })
                | EngineError::Cache(_)
        )
    }
}

/// Counts of what a run sent.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RequestCounts {
    /// Requests the tasks asked for, repeats included.
    pub total: usize,
    /// Distinct requests sent to the backend.
    pub sent: usize,
    /// Requests answered from the cache.
    pub cached: usize,
    /// Attempts that failed and were tried again.
    pub retried: usize,
    /// Requests given up on after every retry.
    pub failed: usize,
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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SkippedDocument {
    pub task: String,
    pub doc_id: usize,
    pub reason: String,
}

/// How many requests of one kind go to the backend per call.
const BATCH: usize = 512;

/// How [`execute`] runs.
#[derive(Default)]
pub struct ExecuteOptions<'a> {
    pub show_progress: bool,
    pub overlong: Overlong,
    /// Where answers are looked up first and stored as they arrive.
    pub cache: Option<&'a Cache>,
}

/// Sends every distinct request of `plan` that the cache cannot answer to
/// `backend`, storing each answer in the cache as it arrives.
pub fn execute(
    plan: &Plan,
    backend: &mut dyn Backend,
    options: &ExecuteOptions,
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
            BackendError::Request { message, .. } => {
                let (task, doc_id) = origin.get(hash).copied().unwrap_or(("?", 0));
                EngineError::Backend(BackendError::Failed(format!(
                    "task `{task}`, document {doc_id}: {message}; the answers received so far \
                     are cached, so running the same command again resumes"
                )))
            }
            other => EngineError::Backend(other),
        }
    };
    // A kind of request the backend cannot answer fails the run before
    // anything is sent.
    for task in &plan.tasks {
        let kinds: std::collections::BTreeSet<&str> = task
            .docs
            .iter()
            .flat_map(|d| d.requests.iter().map(Request::kind))
            .collect();
        for kind in kinds {
            if let Some(reason) = backend.cannot_answer(kind) {
                return Err(EngineError::Input(format!(
                    "task `{}` cannot run on {}: {reason}",
                    task.config.task,
                    backend.identity().spec
                )));
            }
        }
    }
    let mut by_hash = match options.cache {
        Some(cache) => cache.get_many(distinct.iter().map(|(h, _)| h.as_str()))?,
        None => HashMap::new(),
    };
    let cached = by_hash.len();
    let bar = plan::progress(options.show_progress, distinct.len() as u64, "requests");
    bar.inc(cached as u64);
    let mut collector = Collector {
        by_hash: &mut by_hash,
        cache: options.cache,
        bar: &bar,
        faults: backend.faults(),
        cached,
        error: None,
    };
    collector.show();
    let mut skipped = Vec::new();
    let (mut ll, mut rolling, mut generate) = (Vec::new(), Vec::new(), Vec::new());
    for (hash, request) in &distinct {
        if collector.by_hash.contains_key(hash) {
            continue;
        }
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
    let overlong = options.overlong;
    for chunk in context_chunks(&ll) {
        answer_chunk(
            chunk,
            overlong,
            &mut skipped,
            &mut collector,
            |(logprob, is_greedy)| Response::Loglikelihood { logprob, is_greedy },
            |pairs, on_answer| backend.loglikelihood(pairs, on_answer),
        )
        .map_err(|(hash, e)| name(hash, e))?;
        collector.check()?;
    }
    for chunk in rolling.chunks(BATCH) {
        answer_chunk(
            chunk,
            overlong,
            &mut skipped,
            &mut collector,
            |logprob| Response::Rolling { logprob },
            |texts, on_answer| backend.loglikelihood_rolling(texts, on_answer),
        )
        .map_err(|(hash, e)| name(hash, e))?;
        collector.check()?;
    }
    for chunk in generate.chunks(BATCH) {
        answer_chunk(
            chunk,
            overlong,
            &mut skipped,
            &mut collector,
            |text| Response::Generate { text },
            |reqs, on_answer| backend.generate(reqs, on_answer),
        )
        .map_err(|(hash, e)| name(hash, e))?;
        collector.check()?;
    }
    let (retried, failed) = collector.fault_counts();
    bar.finish_and_clear();
    Ok(Answers {
        counts: RequestCounts {
            total,
            sent: distinct.len() - cached - skipped.len(),
            cached,
            retried,
            failed,
        },
        by_hash,
        seconds: start.elapsed().as_secs_f64(),
        overlong: skipped,
    })
}

/// Where answers go as they arrive: the answer map, the cache (a write
/// error is kept and raised after the backend call), the progress bar.
struct Collector<'a> {
    by_hash: &'a mut HashMap<String, Response>,
    cache: Option<&'a Cache>,
    bar: &'a indicatif::ProgressBar,
    faults: Option<std::sync::Arc<FaultCounters>>,
    cached: usize,
    error: Option<CacheError>,
}

impl Collector<'_> {
    fn store(&mut self, hash: &str, response: Response) {
        if let (Some(cache), None) = (self.cache, &self.error) {
            if let Err(e) = cache.put(hash, &response) {
                self.error = Some(e);
            }
        }
        self.by_hash.insert(hash.to_string(), response);
        self.bar.inc(1);
        if self.faults.is_some() || self.bar.position() % 64 == 0 {
            self.show();
        }
    }

    fn fault_counts(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.faults.as_ref().map_or((0, 0), |f| {
            (
                f.retried.load(Relaxed) as usize,
                f.failed.load(Relaxed) as usize,
            )
        })
    }

    fn show(&self) {
        if self.bar.is_hidden() {
            return;
        }
        let (retried, failed) = self.fault_counts();
        let mut message = format!("requests · cached {}", self.cached);
        if self.faults.is_some() {
            message.push_str(&format!(" · retried {retried} · failed {failed}"));
        }
        self.bar.set_message(message);
    }

    fn check(&mut self) -> Result<(), EngineError> {
        match self.error.take() {
            Some(e) => Err(EngineError::Cache(e)),
            None => Ok(()),
        }
    }
}

/// Sends one chunk of `(hash, request)` pairs through `call` and stores each
/// answer as the backend reports it (any it did not report, when the call
/// returns). With [`Overlong::Skip`], a request the backend finds too long
/// for its context is recorded in `skipped` and the chunk is sent again
/// without it (backends check lengths before evaluating anything). An error
/// comes with the hash of the request it names, or of the chunk's first.
fn answer_chunk<'h, Q: Copy, A: Clone>(
    chunk: &[(&'h str, Q)],
    overlong: Overlong,
    skipped: &mut Vec<OverlongRequest>,
    collector: &mut Collector,
    wrap: impl Fn(A) -> Response,
    mut call: impl FnMut(&[Q], OnAnswer<A>) -> Result<Vec<A>, BackendError>,
) -> Result<(), (&'h str, BackendError)> {
    let mut pending: Vec<(&'h str, Q)> = chunk.to_vec();
    loop {
        if pending.is_empty() {
            return Ok(());
        }
        let requests: Vec<Q> = pending.iter().map(|(_, q)| *q).collect();
        let mut reported = vec![false; pending.len()];
        let result = call(&requests, &mut |i, answer: &A| {
            if let Some(seen) = reported.get_mut(i).filter(|seen| !**seen) {
                *seen = true;
                collector.store(pending[i].0, wrap(answer.clone()));
            }
        });
        match result {
            Ok(answers) => {
                if answers.len() != pending.len() {
                    let message = format!(
                        "the backend answered {} of {} requests",
                        answers.len(),
                        pending.len()
                    );
                    return Err((pending[0].0, BackendError::Failed(message)));
                }
                for (i, answer) in answers.into_iter().enumerate() {
                    if !reported[i] {
                        collector.store(pending[i].0, wrap(answer));
                    }
                }
                return Ok(());
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
