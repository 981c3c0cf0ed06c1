//! Answering a run's requests: send every distinct request once, in
//! batches, to a backend.
//!
//! Identical requests (the same context and continuation appearing in many
//! documents, or `repeats` of greedy generation) are sent once, and not at
//! all when the response cache already has their answer; each answer is
//! stored as it arrives, so an interrupted run resumes where it stopped. The
//! backend sees only requests; scoring sees only documents and responses.

use std::collections::HashMap;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::{Backend, BackendError, FaultCounters, OnAnswer};
use crate::cache::{Cache, CacheError};
use crate::error::ErrorKind;
use crate::request::{Request, Response};

/// Why a run's requests could not all be answered.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A request the model cannot take (too long, a kind it cannot answer).
    #[error("{0}")]
    Input(String),
    #[error("backend failed: {0}")]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Cache(#[from] CacheError),
}

impl EngineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Input(_) => ErrorKind::Input,
            EngineError::Backend(e) => e.kind(),
            EngineError::Cache(_) => ErrorKind::NotFinished,
        }
    }
}

/// One task's requests, as the engine sees them: a name for messages, how
/// often each generation repeats, and each document's requests by id.
pub struct TaskRequests<'a> {
    pub task: &'a str,
    pub repeats: usize,
    pub docs: Vec<(usize, &'a [Request])>,
}

/// Counts of what a run sent.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

/// Sends every distinct request of `tasks` that the cache cannot answer to
/// `backend`, storing each answer in the cache as it arrives.
pub fn execute(
    tasks: &[TaskRequests],
    backend: &mut dyn Backend,
    options: &ExecuteOptions,
) -> Result<Answers, EngineError> {
    let start = Instant::now();
    let mut distinct: Vec<(String, &Request)> = Vec::new();
    // Where each distinct request first appears, to name it in errors.
    let mut origin: HashMap<String, (&str, usize)> = HashMap::new();
    let mut total = 0;
    for task in tasks {
        for (doc_id, requests) in &task.docs {
            for request in *requests {
                total += task.repeats;
                let hash = request.hash();
                if !origin.contains_key(&hash) {
                    origin.insert(hash.clone(), (task.task, *doc_id));
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
    for task in tasks {
        let kinds: std::collections::BTreeSet<&str> = task
            .docs
            .iter()
            .flat_map(|(_, requests)| requests.iter().map(Request::kind))
            .collect();
        for kind in kinds {
            if let Some(reason) = backend.cannot_answer(kind) {
                return Err(EngineError::Input(format!(
                    "task `{}` cannot run on {}: {reason}",
                    task.task,
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
    let bar = progress(options.show_progress, distinct.len() as u64, "requests");
    bar.inc(cached as u64);
    let lines = LogLines::new(options.show_progress, "requests", distinct.len() as u64);
    let mut collector = Collector {
        by_hash: &mut by_hash,
        cache: options.cache,
        bar: &bar,
        lines,
        origin: &origin,
        task: "",
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
    let per_call = backend.requests_per_call().unwrap_or(BATCH).max(1);
    for chunk in context_chunks(&ll, per_call) {
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
    for chunk in rolling.chunks(per_call) {
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
    for chunk in generate.chunks(per_call) {
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
    /// Plain progress lines, when stderr is not a terminal.
    lines: Option<LogLines>,
    /// The task each request was first asked by, and the task of the
    /// latest answer (for progress lines).
    origin: &'a HashMap<String, (&'a str, usize)>,
    task: &'a str,
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
        if self.lines.is_some() {
            if let Some((task, _)) = self.origin.get(hash) {
                self.task = task;
            }
        }
        self.by_hash.insert(hash.to_string(), response);
        self.bar.inc(1);
        if self.faults.is_some() || self.bar.position() % 64 == 0 {
            self.show();
        }
        if self.lines.is_some() {
            self.log();
        }
    }

    /// A progress line, if one is due.
    fn log(&mut self) {
        let (retried, failed) = self.fault_counts();
        let (done, cached) = (self.bar.position(), self.cached);
        let task = self.task;
        if let Some(lines) = &mut self.lines {
            lines.update(done, task, cached, retried, failed);
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

    fn show(&mut self) {
        if self.lines.is_some() {
            self.log();
        }
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

/// Log-likelihood requests in chunks of about `size` that never split the
/// requests of one context (the options of one document), so a backend can
/// score them together.
fn context_chunks<'a, T>(
    requests: &'a [(T, (&'a str, &'a str))],
    size: usize,
) -> Vec<&'a [(T, (&'a str, &'a str))]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    for i in 1..=requests.len() {
        let boundary = i == requests.len() || requests[i].1 .0 != requests[i - 1].1 .0;
        if boundary && (i - start >= size || i == requests.len()) {
            chunks.push(&requests[start..i]);
            start = i;
        }
    }
    chunks
}

/// Progress for logs (CI, `| tee`): when stderr is not a terminal, a plain
/// line when the work starts, then at most every `ASSAY_PROGRESS_SECONDS`
/// (default 30) and when it is done.
struct LogLines {
    label: String,
    total: u64,
    started: Instant,
    last: Option<Instant>,
    interval: std::time::Duration,
    finished: bool,
}

impl LogLines {
    fn new(show: bool, label: &str, total: u64) -> Option<LogLines> {
        use std::io::IsTerminal;
        if !show || std::io::stderr().is_terminal() {
            return None;
        }
        let seconds = std::env::var("ASSAY_PROGRESS_SECONDS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(30.0);
        Some(LogLines {
            label: label.to_string(),
            total,
            started: Instant::now(),
            last: None,
            interval: std::time::Duration::from_secs_f64(seconds),
            finished: false,
        })
    }

    /// `task` asked the latest request answered (empty before the first).
    fn update(&mut self, done: u64, task: &str, cached: usize, retried: usize, failed: usize) {
        let now = Instant::now();
        let at_end = done >= self.total;
        let due = self
            .last
            .is_none_or(|t| now.duration_since(t) >= self.interval);
        if self.finished || !(due || at_end) {
            return;
        }
        self.last = Some(now);
        self.finished = at_end;
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let answered = done.saturating_sub(cached as u64) as f64;
        let rate = if elapsed > 0.0 {
            answered / elapsed
        } else {
            0.0
        };
        let eta = match (at_end, rate > 0.0) {
            (true, _) => "done".to_string(),
            (false, true) => format!("ETA {}", clock((self.total - done) as f64 / rate)),
            (false, false) => "ETA -".to_string(),
        };
        let percent = if self.total == 0 {
            100.0
        } else {
            100.0 * done as f64 / self.total as f64
        };
        let task = if task.is_empty() {
            String::new()
        } else {
            format!(" · task {task}")
        };
        eprintln!(
            "{}: {done} of {} ({percent:.0}%){task} · cached {cached} · retried {retried} · failed {failed} · {rate:.1}/s · {eta}",
            self.label, self.total
        );
    }
}

/// Seconds as `1h02m`, `3m05s` or `42s`.
fn clock(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// A line for logs, when stderr is not a terminal (a terminal has bars).
pub fn log_line(show: bool, line: &str) {
    use std::io::IsTerminal;
    if show && !std::io::stderr().is_terminal() {
        eprintln!("{line}");
    }
}

/// A progress bar on a terminal (hidden when `show` is false).
pub fn progress(show: bool, len: u64, label: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>24} [{bar:30}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::context_chunks;

    #[test]
    fn chunks_never_split_a_context_and_any_size_fits() {
        let requests: Vec<(usize, (&str, &str))> = [("a", "1"), ("a", "2"), ("b", "1"), ("c", "1")]
            .into_iter()
            .enumerate()
            .collect();
        let sizes = |size| -> Vec<usize> {
            context_chunks(&requests, size)
                .iter()
                .map(|c| c.len())
                .collect()
        };
        // A chunk closes at the first context boundary at or past the size.
        assert_eq!(sizes(1), [2, 1, 1]);
        assert_eq!(sizes(3), [3, 1]);
        // One call for everything (the lm-eval bridge).
        assert_eq!(sizes(usize::MAX), [4]);
    }
}
