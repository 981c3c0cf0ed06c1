//! The HTTP transport of the server backends (and the helpers the Hub
//! client shares): JSON over HTTP to one or more
//! replicas of a model, with bounded concurrency per endpoint, retries and
//! endpoint health.
//!
//! A batch of request bodies is sent with at most `concurrency` requests in
//! flight at each endpoint; each goes to the least-loaded healthy endpoint.
//! Connection errors, timeouts, cut-off bodies, 5xx, 408 and 429 are
//! retried with exponential backoff and jitter (a `Retry-After` in seconds
//! is honoured); other 4xx, and a complete answer that is not JSON, are
//! final. An endpoint that fails several times in
//! a row is rested for a while, then tried again. Answers are handed back on
//! the calling thread as they arrive. The API key is sent as a bearer token
//! and never appears in an error.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Notify;

/// Live counts of a remote backend's transport faults, for progress bars
/// and the run's request counts.
#[derive(Debug, Default)]
pub struct FaultCounters {
    /// Attempts that failed and were tried again.
    pub retried: AtomicU64,
    /// Requests given up on after every retry.
    pub failed: AtomicU64,
}

/// Consecutive failures after which an endpoint is rested.
const FAILURES_BEFORE_REST: u32 = 3;
const FIRST_REST: Duration = Duration::from_secs(2);
const LONGEST_REST: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const LONGEST_BACKOFF: Duration = Duration::from_secs(30);
/// The longest `Retry-After` obeyed; a server asking for more is waited on
/// this long, then tried again.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(120);

/// Transport settings, from `--model-arg`s.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Base URLs, e.g. `http://127.0.0.1:8000/v1`, without a trailing slash.
    pub endpoints: Vec<String>,
    /// Requests in flight per endpoint.
    pub concurrency: usize,
    /// Per attempt, connecting included.
    pub timeout: Duration,
    /// Attempts after the first.
    pub max_retries: u32,
    pub api_key: Option<String>,
}

struct Endpoint {
    base: String,
    in_flight: AtomicUsize,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    consecutive_failures: u32,
    rests: u32,
    resting_until: Option<Instant>,
}

struct Shared {
    client: reqwest::Client,
    endpoints: Vec<Endpoint>,
    concurrency: usize,
    max_retries: u32,
    api_key: Option<String>,
    released: Notify,
    faults: Arc<FaultCounters>,
    jitter: AtomicU64,
}

/// An HTTP client for one model served at one or more endpoints.
pub struct Http {
    runtime: tokio::runtime::Runtime,
    shared: Arc<Shared>,
}

/// Why one request failed for good.
#[derive(Debug)]
pub struct RequestFailure {
    pub message: String,
    /// A 4xx other than 408/429: the request itself was refused.
    pub refused: bool,
}

impl Http {
    /// A client for `options`; the error says what could not be set up.
    pub fn new(options: HttpOptions) -> Result<Http, String> {
        let (client, runtime) = client_and_runtime(|b| {
            b.timeout(options.timeout)
                .connect_timeout(options.timeout.min(Duration::from_secs(30)))
                .pool_max_idle_per_host(options.concurrency)
                .tcp_nodelay(true)
        })?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        Ok(Http {
            runtime,
            shared: Arc::new(Shared {
                client,
                endpoints: options
                    .endpoints
                    .into_iter()
                    .map(|base| Endpoint {
                        base,
                        in_flight: AtomicUsize::new(0),
                        health: Mutex::new(Health::default()),
                    })
                    .collect(),
                concurrency: options.concurrency.max(1),
                max_retries: options.max_retries,
                api_key: options.api_key,
                released: Notify::new(),
                faults: Arc::new(FaultCounters::default()),
                jitter: AtomicU64::new(seed),
            }),
        })
    }

    pub fn faults(&self) -> Arc<FaultCounters> {
        self.shared.faults.clone()
    }

    /// GETs `path` (e.g. `/models`) from the first endpoint that answers,
    /// with retries.
    pub fn get(&self, path: &str) -> Result<Value, RequestFailure> {
        let shared = self.shared.clone();
        let path = path.to_string();
        self.runtime
            .block_on(async move { shared.send(Method::Get, &path, None).await })
    }

    /// POSTs every body to `path`, concurrently, and calls `on_done(i,
    /// answer)` on this thread as each answer arrives. Stops at the first
    /// request that fails for good (or the first error `on_done` returns),
    /// returning that error; answers handed out before it stand.
    pub fn post_all<E>(
        &self,
        path: &str,
        bodies: Vec<Vec<u8>>,
        mut on_done: impl FnMut(usize, Result<Value, RequestFailure>) -> Result<(), E>,
    ) -> Result<(), E> {
        let shared = self.shared.clone();
        self.runtime.block_on(async move {
            let mut tasks = tokio::task::JoinSet::new();
            let bodies: Vec<Arc<Vec<u8>>> = bodies.into_iter().map(Arc::new).collect();
            let window = shared.concurrency * shared.endpoints.len() * 2;
            let mut next = 0;
            let mut done = 0;
            while done < bodies.len() {
                // Keep a bounded number of tasks spawned; the endpoints'
                // permits bound what is actually in flight.
                while next < bodies.len() && tasks.len() < window {
                    let (shared, body, path) =
                        (shared.clone(), bodies[next].clone(), path.to_string());
                    let i = next;
                    tasks.spawn(
                        async move { (i, shared.send(Method::Post, &path, Some(body)).await) },
                    );
                    next += 1;
                }
                let Some(joined) = tasks.join_next().await else {
                    break;
                };
                done += 1;
                let (i, answer) = match joined {
                    Ok(pair) => pair,
                    Err(e) => {
                        let failure = RequestFailure {
                            message: format!("the request task stopped: {e}"),
                            refused: false,
                        };
                        (usize::MAX, Err(failure))
                    }
                };
                on_done(i, answer)?;
            }
            Ok(())
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// One attempt's outcome.
enum Attempt {
    Answer(Value),
    /// Worth another try, after at least this long (Retry-After).
    Retry {
        message: String,
        after: Option<Duration>,
        endpoint_fault: bool,
    },
    Final(RequestFailure),
}

/// A held slot at one endpoint; released on drop.
struct Lease<'a> {
    shared: &'a Shared,
    index: usize,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.shared.endpoints[self.index]
            .in_flight
            .fetch_sub(1, Ordering::AcqRel);
        self.shared.released.notify_waiters();
    }
}

impl Shared {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Arc<Vec<u8>>>,
    ) -> Result<Value, RequestFailure> {
        let mut attempt = 0u32;
        loop {
            let lease = self.acquire().await;
            let endpoint = &self.endpoints[lease.index];
            let url = format!("{}{}", endpoint.base, path);
            let outcome = self.attempt(method, &url, body.as_deref()).await;
            drop(lease);
            match outcome {
                Attempt::Answer(value) => {
                    self.mark(endpoint, true);
                    return Ok(value);
                }
                Attempt::Final(failure) => {
                    self.faults.failed.fetch_add(1, Ordering::Relaxed);
                    return Err(RequestFailure {
                        message: self.scrub(failure.message),
                        refused: failure.refused,
                    });
                }
                Attempt::Retry {
                    message,
                    after,
                    endpoint_fault,
                } => {
                    if endpoint_fault {
                        self.mark(endpoint, false);
                    }
                    if attempt >= self.max_retries {
                        self.faults.failed.fetch_add(1, Ordering::Relaxed);
                        return Err(RequestFailure {
                            message: format!("{message} (gave up after {} attempts)", attempt + 1),
                            refused: false,
                        });
                    }
                    self.faults.retried.fetch_add(1, Ordering::Relaxed);
                    let wait = after.unwrap_or_else(|| self.backoff(attempt));
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(&self, method: Method, url: &str, body: Option<&Vec<u8>>) -> Attempt {
        let mut request = match method {
            Method::Get => self.client.get(url),
            Method::Post => self
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(body.cloned().unwrap_or_default()),
        };
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    message: format!("{url}: {}", describe(&e)),
                    after: None,
                    endpoint_fault: true,
                }
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s).min(LONGEST_RETRY_AFTER));
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Attempt::Retry {
                    message: format!("{url}: the answer was cut off: {}", describe(&e)),
                    after: None,
                    endpoint_fault: true,
                }
            }
        };
        let code = status.as_u16();
        if status.is_success() {
            return match serde_json::from_slice::<Value>(&bytes) {
                Ok(value) => Attempt::Answer(value),
                Err(e) => Attempt::Final(RequestFailure {
                    message: format!(
                        "{url} answered {code} with a body that is not valid JSON ({e}): {}",
                        excerpt(&bytes)
                    ),
                    refused: false,
                }),
            };
        }
        let message = format!("{url} answered {code}: {}", excerpt(&bytes));
        match code {
            408 | 429 | 500..=599 => Attempt::Retry {
                message,
                after: retry_after,
                endpoint_fault: code >= 500,
            },
            _ => Attempt::Final(RequestFailure {
                message,
                refused: true,
            }),
        }
    }

    /// Waits for a free slot at the least-loaded endpoint that is not
    /// resting; when every endpoint with room is resting, waits for the
    /// first rest to end and tries that one again.
    async fn acquire(&self) -> Lease<'_> {
        loop {
            let released = self.released.notified();
            let now = Instant::now();
            let mut best: Option<(bool, usize, usize)> = None; // (resting, load, index)
            let mut wake_at: Option<Instant> = None;
            for (i, endpoint) in self.endpoints.iter().enumerate() {
                let load = endpoint.in_flight.load(Ordering::Acquire);
                if load >= self.concurrency {
                    continue;
                }
                let until = self.resting_until(endpoint).filter(|t| *t > now);
                if let Some(t) = until {
                    wake_at = Some(wake_at.map_or(t, |w: Instant| w.min(t)));
                }
                let key = (until.is_some(), load, i);
                if best.is_none_or(|b| key < b) {
                    best = Some(key);
                }
            }
            match best {
                Some((false, load, i)) => {
                    let slot = &self.endpoints[i].in_flight;
                    if slot
                        .compare_exchange(load, load + 1, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return Lease {
                            shared: self,
                            index: i,
                        };
                    }
                }
                Some((true, _, _)) => {
                    let wait = wake_at.map_or(Duration::from_millis(50), |t| t - now);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {
                            // The rest is over: let one request through.
                            for endpoint in &self.endpoints {
                                let mut health = lock(&endpoint.health);
                                if health.resting_until.is_some_and(|t| t <= Instant::now()) {
                                    health.resting_until = None;
                                }
                            }
                        }
                        _ = released => {}
                    }
                }
                None => released.await,
            }
        }
    }

    /// The message with the API key blotted out, should a server echo it.
    fn scrub(&self, message: String) -> String {
        match &self.api_key {
            Some(key) if !key.is_empty() => message.replace(key.as_str(), "***"),
            _ => message,
        }
    }

    fn resting_until(&self, endpoint: &Endpoint) -> Option<Instant> {
        lock(&endpoint.health).resting_until
    }

    fn mark(&self, endpoint: &Endpoint, ok: bool) {
        let mut health = lock(&endpoint.health);
        if ok {
            *health = Health::default();
            return;
        }
        health.consecutive_failures += 1;
        if health.consecutive_failures >= FAILURES_BEFORE_REST && self.endpoints.len() > 1 {
            let rest = FIRST_REST
                .saturating_mul(1 << health.rests.min(8))
                .min(LONGEST_REST);
            health.resting_until = Some(Instant::now() + rest);
            health.rests += 1;
            health.consecutive_failures = 0;
        }
    }

    /// Jittered: uniform in [c/2, c] for c = min(cap, first * 2^attempt).
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = FIRST_BACKOFF
            .saturating_mul(1 << attempt.min(16))
            .min(LONGEST_BACKOFF);
        // xorshift64*, shared across tasks; quality is not a concern.
        let mut x = self.jitter.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.jitter.store(x, Ordering::Relaxed);
        let unit = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
        ceiling.mul_f64(0.5 + 0.5 * unit)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A reqwest error in words, without the URL (the caller adds it) and never
/// with a header.
/// An HTTP client, configured by `configure`, and the single-threaded
/// runtime that drives it: the one way assay makes a client (the server
/// backends and the Hub), with rustls and assay's user agent. reqwest reads
/// `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` itself.
pub fn client_and_runtime(
    configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> Result<(reqwest::Client, tokio::runtime::Runtime), String> {
    // reqwest is built without a default TLS crypto provider; ring is
    // installed once for the process (a second install is a no-op).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder =
        reqwest::Client::builder().user_agent(concat!("assay/", env!("CARGO_PKG_VERSION")));
    let client = configure(builder)
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
    Ok((client, runtime))
}

pub(crate) fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the body could not be read"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({detail})")
    }
}

/// The start of a response body, for error messages.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    let cut: String = text.chars().take(300).collect();
    if cut.len() < text.len() {
        format!("{cut}...")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let http = Http::new(HttpOptions {
            endpoints: vec!["http://127.0.0.1:9".into()],
            concurrency: 1,
            timeout: Duration::from_secs(1),
            max_retries: 0,
            api_key: None,
        })
        .unwrap();
        for attempt in 0..20 {
            let ceiling = FIRST_BACKOFF
                .saturating_mul(1 << attempt.min(16))
                .min(LONGEST_BACKOFF);
            let wait = http.shared.backoff(attempt);
            assert!(
                wait <= ceiling && wait >= ceiling / 2,
                "{attempt}: {wait:?}"
            );
        }
    }

    #[test]
    fn excerpts_are_short() {
        assert_eq!(excerpt(b"  "), "(empty body)");
        let long = "x".repeat(1000);
        assert_eq!(excerpt(long.as_bytes()).len(), 303);
    }
}
