//! A mock of the Hugging Face Hub's dataset and model routes, served on
//! localhost for tests: the revision API (`/api/datasets/{repo}/revision/{rev}`,
//! `/api/models/...`) and file downloads (`/datasets/{repo}/resolve/{commit}/{path}`,
//! `/{repo}/resolve/...`, with ranges).
//! Repositories hold parquet files the tests make with polars. Faults:
//! gated repositories, a download cut short once, a file whose bytes do not
//! match the SHA-256 the API reports.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// One repository at one commit.
#[derive(Clone, Default)]
pub struct Repo {
    pub commit: String,
    /// `configs` of the dataset card; `None` for a repository without one.
    pub configs: Option<Value>,
    /// Path -> bytes.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Needs `Authorization: Bearer <token>` for downloads.
    pub gated: bool,
    /// Files whose served bytes differ from the hash and size the API gives.
    pub corrupt: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct State {
    /// (repo id, revision) -> repo
    repos: Mutex<BTreeMap<(String, String), Repo>>,
    token: Mutex<Option<String>>,
    log: Mutex<Vec<Hit>>,
    /// Paths whose next download is cut off halfway.
    truncate_once: Mutex<BTreeSet<String>>,
    /// Added before every download's body.
    delay: Mutex<std::time::Duration>,
    /// Requests read but not yet logged: a client can finish reading a
    /// response before its request is in the log.
    busy: std::sync::atomic::AtomicUsize,
}

pub struct MockHub {
    pub url: String,
    state: Arc<State>,
}

impl MockHub {
    pub fn start() -> MockHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State::default());
        let shared = state.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                thread::spawn(move || handle(stream, &state));
            }
        });
        MockHub { url, state }
    }

    /// Serves `repo` under `revisions` (a branch name and/or its commit).
    pub fn add(&self, id: &str, revisions: &[&str], repo: Repo) {
        let mut repos = self.state.repos.lock().unwrap();
        for rev in revisions {
            repos.insert((id.to_string(), rev.to_string()), repo.clone());
        }
        repos.insert((id.to_string(), repo.commit.clone()), repo);
    }

    pub fn set_token(&self, token: &str) {
        *self.state.token.lock().unwrap() = Some(token.to_string());
    }

    pub fn truncate_next_download(&self, path: &str) {
        self.state
            .truncate_once
            .lock()
            .unwrap()
            .insert(path.to_string());
    }

    pub fn slow_downloads(&self, delay: std::time::Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// Every request so far, once those being answered are logged.
    pub fn hits(&self) -> Vec<Hit> {
        let start = std::time::Instant::now();
        while self.state.busy.load(std::sync::atomic::Ordering::SeqCst) > 0
            && start.elapsed() < std::time::Duration::from_secs(5)
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        self.state.log.lock().unwrap().clone()
    }

    /// Downloads (not API calls) so far.
    pub fn downloads(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.path.contains("/resolve/"))
            .collect()
    }

    pub fn clear_log(&self) {
        self.state.log.lock().unwrap().clear();
    }
}

/// One config of a repository: its name and each split's documents.
pub struct Config {
    pub name: String,
    pub splits: Vec<(String, Vec<Value>)>,
}

pub fn config(name: &str, splits: Vec<(&str, Vec<Value>)>) -> Config {
    Config {
        name: name.to_string(),
        splits: splits
            .into_iter()
            .map(|(s, d)| (s.to_string(), d))
            .collect(),
    }
}

/// A repository whose configs' splits are parquet files named as the Hub's
/// converted datasets are (`<config>/<split>-00000-of-00001.parquet`), with
/// the card's `configs` pointing at them.
pub fn parquet_repo(commit: &str, configs: &[Config]) -> Repo {
    let mut repo = Repo {
        commit: commit.to_string(),
        ..Repo::default()
    };
    let mut card = Vec::new();
    for c in configs {
        let mut data_files = Vec::new();
        for (split, docs) in &c.splits {
            let path = format!("{}/{split}-00000-of-00001.parquet", c.name);
            repo.files.insert(path, parquet(docs));
            data_files.push(json!({"split": split, "path": format!("{}/{split}-*", c.name)}));
        }
        card.push(json!({"config_name": c.name, "data_files": data_files}));
    }
    repo.files
        .insert("README.md".into(), b"# a dataset\n".to_vec());
    repo.configs = Some(Value::Array(card));
    repo
}

/// Documents as a parquet file, through polars (JSON lines -> DataFrame).
pub fn parquet(docs: &[Value]) -> Vec<u8> {
    use polars::prelude::*;
    let lines: String = docs.iter().map(|d| format!("{d}\n")).collect();
    let mut df = JsonReader::new(std::io::Cursor::new(lines.into_bytes()))
        .with_json_format(JsonFormat::JsonLines)
        .finish()
        .unwrap();
    let mut out = Vec::new();
    ParquetWriter::new(&mut out).finish(&mut df).unwrap();
    out
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &[u8]) {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn handle(mut stream: TcpStream, state: &State) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    state.busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range = None;
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(v.trim().to_string()),
                "authorization" => authorization = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let path = target.split('?').next().unwrap_or("").to_string();
    let status = serve(
        &mut stream,
        state,
        &path,
        range.as_deref(),
        authorization.as_deref(),
    );
    state.log.lock().unwrap().push(Hit {
        path,
        range,
        authorization,
        status,
    });
    state.busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
}

fn not_found(stream: &mut TcpStream, what: &str) -> u16 {
    let body = json!({"error": format!("{what} not found")}).to_string();
    respond(stream, 404, &[], body.as_bytes());
    404
}

fn serve(
    stream: &mut TcpStream,
    state: &State,
    path: &str,
    range: Option<&str>,
    authorization: Option<&str>,
) -> u16 {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", "datasets" | "models", owner, name, "revision", rev] => {
            let id = format!("{owner}/{name}");
            let repos = state.repos.lock().unwrap();
            let Some(repo) = repos.get(&(id.clone(), decode(rev))) else {
                return not_found(stream, "revision");
            };
            let siblings: Vec<Value> = repo
                .files
                .iter()
                .map(|(p, bytes)| {
                    let mut size = bytes.len();
                    let mut digest = sha256(bytes);
                    if repo.corrupt.contains(p) {
                        digest = sha256(b"what the file should have been");
                        size = bytes.len();
                    }
                    if p.ends_with(".parquet") || p.ends_with(".gguf") {
                        json!({"rfilename": p, "size": size, "lfs": {"sha256": digest, "size": size}})
                    } else {
                        json!({"rfilename": p, "size": size})
                    }
                })
                .collect();
            let mut info = json!({
                "id": id,
                "sha": repo.commit,
                "gated": if repo.gated { json!("manual") } else { json!(false) },
                "siblings": siblings,
            });
            if let Some(configs) = &repo.configs {
                info["cardData"] = json!({"configs": configs});
            }
            respond(stream, 200, &[], info.to_string().as_bytes());
            200
        }
        ["datasets", owner, name, "resolve", commit, rest @ ..]
        | [owner, name, "resolve", commit, rest @ ..] => {
            let id = format!("{owner}/{name}");
            let file = decode(&rest.join("/"));
            let repo = {
                let repos = state.repos.lock().unwrap();
                repos.get(&(id.clone(), decode(commit))).cloned()
            };
            let Some(repo) = repo else {
                return not_found(stream, "revision");
            };
            if repo.gated {
                let token = state.token.lock().unwrap().clone();
                let allowed = token.is_some_and(|t| authorization == Some(&format!("Bearer {t}")));
                if !allowed {
                    let body = json!({"error": format!("Access to dataset {id} is restricted. You must have access to it and be authenticated to access it. Please log in.")});
                    respond(stream, 401, &[], body.to_string().as_bytes());
                    return 401;
                }
            }
            let Some(bytes) = repo.files.get(&file) else {
                return not_found(stream, "file");
            };
            let delay = *state.delay.lock().unwrap();
            thread::sleep(delay);
            let mut bytes = bytes.clone();
            if repo.corrupt.contains(&file) {
                let n = bytes.len();
                bytes[n / 2] ^= 0xff;
            }
            let from = range
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok())
                .filter(|n| *n < bytes.len());
            let (status, body) = match from {
                Some(n) => (206, bytes[n..].to_vec()),
                None => (200, bytes),
            };
            if state.truncate_once.lock().unwrap().remove(&file) {
                // Promise the whole body, send half, hang up.
                let head = format!(
                    "HTTP/1.1 {status} OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body[..body.len() / 2]);
                let _ = stream.flush();
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return status;
            }
            respond(stream, status, &[], &body);
            status
        }
        _ => not_found(stream, "route"),
    }
}
