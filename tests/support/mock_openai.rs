//! A mock OpenAI-compatible server for the tests: real HTTP/1.1 over TCP
//! (std only, a thread per connection), a deterministic fake model, a log
//! of every request, and faults injected on demand.
//!
//! The fake model splits text into words (each with its leading
//! whitespace) and gives every word a log-probability that depends on the
//! word and its position only, so tests can compute the expected answers
//! with [`expected_loglikelihood`].

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const MODEL: &str = "mock-model";

/// A fault the server answers one request with, instead of answering it.
#[derive(Debug, Clone)]
pub enum Fault {
    /// This HTTP status with a small JSON error body.
    Status(u16),
    /// 429 with `Retry-After: seconds`.
    TooMany(u64),
    /// Close the connection without answering.
    Drop,
    /// Promise a longer body than is sent, then close.
    Truncate,
    /// Answer 200 with a body that is not JSON.
    BadJson,
    /// Wait this long before answering normally.
    Delay(Duration),
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
    pub at: Instant,
    /// Whether a normal answer was sent.
    pub answered: bool,
}

#[derive(Default)]
pub struct State {
    pub log: Mutex<Vec<Logged>>,
    /// Consumed one per POST, in order.
    pub faults: Mutex<VecDeque<Fault>>,
    /// Every POST fails with this status while set.
    pub always: Mutex<Option<u16>>,
    /// Added before every answer.
    pub delay: Mutex<Duration>,
    /// Echo a `<s>` token first (as vLLM does), shifting offsets.
    pub echo_bos: AtomicBool,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub answered: AtomicUsize,
    /// Keep only the latest request in the log.
    pub quiet: AtomicBool,
    /// Scripted generations: the answer to a prompt that contains the key
    /// (the longest such key wins), instead of [`generated`].
    pub scripted: Mutex<Vec<(String, String)>>,
}

pub struct MockServer {
    pub base: String,
    pub state: Arc<State>,
}

impl MockServer {
    pub fn start() -> MockServer {
        Self::start_on("127.0.0.1:0")
    }

    pub fn start_on(address: &str) -> MockServer {
        let listener = TcpListener::bind(address).unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let state = Arc::new(State::default());
        let shared = state.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                thread::spawn(move || {
                    let _ = serve(stream, &state);
                });
            }
        });
        MockServer { base, state }
    }

    pub fn fault(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(faults);
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap_or_else(|p| p.into_inner()) = delay;
    }

    pub fn posts(&self) -> Vec<Logged> {
        lock(&self.state.log)
            .iter()
            .filter(|l| l.method == "POST")
            .cloned()
            .collect()
    }

    pub fn clear_log(&self) {
        lock(&self.state.log).clear();
    }
}

/// Serves requests on one connection until the client closes it or a
/// fault drops it (HTTP/1.1 keep-alive).
fn serve(stream: TcpStream, state: &State) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut length = 0;
        let mut authorization = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "authorization" => authorization = Some(value.trim().to_string()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let index = {
            let mut log = lock(&state.log);
            if state.quiet.load(Ordering::Relaxed) {
                log.clear(); // a benchmark's millions of requests are not kept
            }
            log.push(Logged {
                method: method.clone(),
                path: path.clone(),
                authorization,
                body: body.clone(),
                at: Instant::now(),
                answered: false,
            });
            log.len() - 1
        };
        if method == "GET" && path.ends_with("/stats") {
            // For benchmarks: the counters since the last /stats, then reset.
            let stats = json!({
                "answered": state.answered.swap(0, Ordering::SeqCst),
                "max_in_flight": state.max_in_flight.swap(0, Ordering::SeqCst),
            });
            lock(&state.log).clear();
            respond(&mut stream, 200, &[], stats.to_string().as_bytes())?;
            continue;
        }
        if method == "GET" && path.ends_with("/models") {
            let models = json!({"object": "list", "data": [
                {"id": MODEL, "object": "model", "owned_by": "assay-tests", "created": now_secs()}
            ]});
            respond(&mut stream, 200, &[], models.to_string().as_bytes())?;
            continue;
        }
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let result = answer_post(&mut stream, state, &path, &body, index);
        if !result? {
            return Ok(());
        }
    }
}

/// Answers one POST; `Ok(false)` when the connection was dropped on purpose.
fn answer_post(
    stream: &mut TcpStream,
    state: &State,
    path: &str,
    body: &Value,
    index: usize,
) -> std::io::Result<bool> {
    let delay = *state.delay.lock().unwrap_or_else(|p| p.into_inner());
    thread::sleep(delay);
    if let Some(status) = *state.always.lock().unwrap_or_else(|p| p.into_inner()) {
        answer(
            stream,
            state,
            status,
            &[],
            br#"{"error": "always failing"}"#,
        )?;
        return Ok(true);
    }
    let fault = state
        .faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop_front();
    match fault {
        Some(Fault::Status(401)) => {
            // Like a careless server: the rejected credentials in the body.
            let key = lock(&state.log)
                .get(index)
                .and_then(|l| l.authorization.clone());
            let body = json!({"error": format!("invalid key {key:?}")}).to_string();
            answer(stream, state, 401, &[], body.as_bytes())?;
            return Ok(true);
        }
        Some(Fault::Status(status)) => {
            answer(
                stream,
                state,
                status,
                &[],
                br#"{"error": {"message": "injected"}}"#,
            )?;
            return Ok(true);
        }
        Some(Fault::TooMany(seconds)) => {
            let header = format!("Retry-After: {seconds}");
            answer(stream, state, 429, &[&header], br#"{"error": "slow down"}"#)?;
            return Ok(true);
        }
        Some(Fault::Drop) => {
            state.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Ok(false);
        }
        Some(Fault::Truncate) => {
            state.in_flight.fetch_sub(1, Ordering::SeqCst);
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n";
            stream.write_all(head.as_bytes())?;
            stream.write_all(br#"{"choices": [{"text": "#)?;
            return Ok(false);
        }
        Some(Fault::BadJson) => {
            answer(stream, state, 200, &[], b"<html>oops</html>")?;
            return Ok(true);
        }
        Some(Fault::Delay(d)) => thread::sleep(d),
        None => {}
    }
    let reply = if path.ends_with("/chat/completions") {
        chat_answer(body)
    } else if path.ends_with("/completions") {
        completion_answer(
            body,
            state.echo_bos.load(Ordering::SeqCst),
            &lock(&state.scripted),
        )
    } else {
        answer(stream, state, 404, &[], b"{}")?;
        return Ok(true);
    };
    answer(stream, state, 200, &[], reply.to_string().as_bytes())?;
    // The log may have been cleared meanwhile (a test between two runs).
    if let Some(entry) = lock(&state.log).get_mut(index) {
        entry.answered = true;
    }
    state.answered.fetch_add(1, Ordering::SeqCst);
    Ok(true)
}

/// Writes one answer to a POST, which is no longer in flight once the
/// client can see the answer.
fn answer(
    stream: &mut TcpStream,
    state: &State,
    status: u16,
    headers: &[&str],
    body: &[u8],
) -> std::io::Result<()> {
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    respond(stream, status, headers, body)
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[&str],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    stream.write_all(&message)?;
    stream.flush()
}

/// A lock that survives a panicked holder (one connection's thread must
/// not take the whole server down).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The fake model's tokens: each word with its leading whitespace, and
/// trailing whitespace as a token of its own.
pub fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut seen_word = false;
    for c in text.chars() {
        if c.is_whitespace() && seen_word {
            out.push(std::mem::take(&mut current));
            seen_word = false;
        }
        if !c.is_whitespace() {
            seen_word = true;
        }
        current.push(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The fake model's log-probability of token `word` at position `pos`.
pub fn logprob(word: &str, pos: usize) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in word.bytes().chain((pos as u64).to_le_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    -((h % 4000) as f64) / 1000.0 - 0.01
}

/// Whether the fake model ranks `word` first at `pos`.
pub fn is_top(word: &str, pos: usize) -> bool {
    logprob(word, pos) > -1.0
}

/// What assay should get for `(context, continuation)` from the mock.
pub fn expected_loglikelihood(context: &str, continuation: &str) -> (f64, bool) {
    let kept = context.trim_end();
    let words_all = words(&format!("{context}{continuation}"));
    let n_context = words(kept).len();
    let mut sum = 0.0;
    let mut greedy = true;
    for (pos, w) in words_all.iter().enumerate().skip(n_context) {
        sum += logprob(w, pos);
        greedy &= is_top(w, pos);
    }
    (sum, greedy)
}

/// The fake model's generation for a prompt.
pub fn generated(prompt: &str) -> String {
    let n = words(prompt).len();
    format!(" answer {n}\n\nQ: and more")
}

/// The scripted answer to `prompt`, else the fake model's.
fn answer_to(prompt: &str, scripted: &[(String, String)]) -> String {
    scripted
        .iter()
        .filter(|(key, _)| prompt.contains(key.as_str()))
        .max_by_key(|(key, _)| key.len())
        .map_or_else(|| generated(prompt), |(_, answer)| answer.clone())
}

fn completion_answer(body: &Value, echo_bos: bool, scripted: &[(String, String)]) -> Value {
    // Token ids (lm-eval's tokenized requests) become one word per id.
    let ids = |ids: &[Value]| -> String { ids.iter().map(|i| format!(" t{i}")).collect() };
    let prompts: Vec<String> = match &body["prompt"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if items.iter().all(Value::is_number) => vec![ids(items)],
        Value::Array(items) => items
            .iter()
            .map(|p| match p {
                Value::Array(list) => ids(list),
                other => other.as_str().unwrap_or("").to_string(),
            })
            .collect(),
        _ => vec![],
    };
    let echo = body["echo"].as_bool().unwrap_or(false);
    let max_tokens = body["max_tokens"].as_u64().unwrap_or(16);
    let choices: Vec<Value> = prompts
        .iter()
        .enumerate()
        .map(|(i, prompt)| {
            if !echo {
                let text = answer_to(prompt, scripted);
                return json!({"index": i, "text": text, "finish_reason": "stop"});
            }
            let mut tokens = words(prompt);
            if max_tokens > 0 {
                tokens.push(" x".to_string());
            }
            let mut offsets = Vec::new();
            let mut token_logprobs = Vec::new();
            let mut top = Vec::new();
            let mut at = 0;
            if echo_bos {
                offsets.push(0);
                token_logprobs.push(Value::Null);
                top.push(Value::Null);
                at = 3;
            }
            for (pos, t) in tokens.iter().enumerate() {
                offsets.push(at);
                at += t.chars().count();
                if pos == 0 {
                    token_logprobs.push(Value::Null);
                    top.push(Value::Null);
                    continue;
                }
                let lp = logprob(t, pos);
                token_logprobs.push(json!(lp));
                top.push(if is_top(t, pos) {
                    json!({ t.as_str(): lp })
                } else {
                    json!({ t.as_str(): lp, " other": -0.5 })
                });
            }
            if echo_bos {
                tokens.insert(0, "<s>".to_string());
            }
            json!({"index": i, "text": format!("{prompt} x"), "finish_reason": "length",
                   "logprobs": {"tokens": tokens, "text_offset": offsets,
                                "token_logprobs": token_logprobs, "top_logprobs": top}})
        })
        .collect();
    let mut answer =
        json!({"id": "cmpl-1", "object": "text_completion", "model": MODEL, "choices": choices});
    if prompts.len() == 1 && echo {
        answer["usage"] =
            json!({"prompt_tokens": 5, "completion_tokens": u64::from(max_tokens > 0)});
    }
    answer
}

fn chat_answer(body: &Value) -> Value {
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    json!({"id": "chat-1", "object": "chat.completion", "model": MODEL,
           "choices": [{"index": 0, "finish_reason": "stop",
                        "message": {"role": "assistant", "content": generated(last)}}]})
}
