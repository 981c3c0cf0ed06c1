//! A helper process that speaks line-delimited JSON: one object per line on
//! its stdin and stdout, its stderr kept as a short tail for error
//! messages. The lm-eval bridge's model worker and the Python hooks' worker
//! are both run this way; each ships its script inside the binary, written
//! once to the cache folder under its hash.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// Lines of the worker's stderr kept for error messages.
const STDERR_LINES: usize = 40;

/// The interpreter to run workers with when none is named: `$ASSAY_PYTHON`,
/// else `python3`.
pub fn default_python() -> String {
    std::env::var("ASSAY_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// Writes a worker's script (`source`) to the cache folder (else the
/// system's temporary folder) under `folder/name-HASH.py`, once.
pub fn script_file(folder: &str, source: &str) -> std::io::Result<PathBuf> {
    let digest = crate::hash::sha256_hex(source.as_bytes());
    let dir = crate::cache::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join(folder);
    let path = dir.join(format!("worker-{}.py", &digest[..16]));
    crate::cache::write_once(&path, |part| std::fs::write(part, source), |e| e)?;
    Ok(path)
}

/// Why a worker gave no message.
#[derive(Debug)]
pub enum WorkerError {
    /// It sent nothing within the timeout and was stopped.
    Silent(Duration),
    /// It ended: its exit status and the last line it wrote to stderr.
    Died {
        status: String,
        last_line: Option<String>,
    },
}

/// A running worker.
pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    timeout: Duration,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Worker {
    /// Runs `python script` with piped streams. A line on stdout that is
    /// not JSON arrives as `{"unreadable": LINE}`.
    pub fn start(python: &str, script: &Path, timeout: Duration) -> std::io::Result<Worker> {
        Self::spawn(Command::new(python).arg(script), timeout)
    }

    /// As [`Worker::start`], for a worker that runs code from elsewhere (a
    /// task folder's hooks): it does not see the environment's secrets
    /// (variables whose names hold TOKEN, KEY, SECRET or PASSWORD).
    pub fn start_without_secrets(
        python: &str,
        script: &Path,
        timeout: Duration,
    ) -> std::io::Result<Worker> {
        let mut command = Command::new(python);
        command.arg(script);
        for (name, _) in std::env::vars_os() {
            let upper = name.to_string_lossy().to_uppercase();
            if ["TOKEN", "KEY", "SECRET", "PASSWORD"]
                .iter()
                .any(|s| upper.contains(s))
            {
                command.env_remove(&name);
            }
        }
        Self::spawn(&mut command, timeout)
    }

    fn spawn(command: &mut Command, timeout: Duration) -> std::io::Result<Worker> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == STDERR_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        let (sender, messages) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let message =
                    serde_json::from_str(&line).unwrap_or_else(|_| json!({"unreadable": line}));
                if sender.send(message).is_err() {
                    break;
                }
            }
        });
        Ok(Worker {
            child,
            stdin,
            messages,
            stderr,
            timeout,
        })
    }

    /// Sends one message.
    pub fn send(&mut self, message: &Value) -> Result<(), WorkerError> {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|_| self.died())
    }

    /// The worker's next message, within the timeout (a silent worker is
    /// stopped).
    pub fn next_message(&mut self) -> Result<Value, WorkerError> {
        match self.messages.recv_timeout(self.timeout) {
            Ok(message) => Ok(message),
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                Err(WorkerError::Silent(self.timeout))
            }
            Err(RecvTimeoutError::Disconnected) => Err(self.died()),
        }
    }

    /// The worker ended (or is ending): its exit status and the last line
    /// it wrote to stderr.
    pub fn died(&mut self) -> WorkerError {
        let status = self
            .child
            .wait()
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        // The stderr reader may still be draining the pipe.
        std::thread::sleep(Duration::from_millis(100));
        WorkerError::Died {
            status,
            last_line: self.stderr_last_line(),
        }
    }

    fn stderr_last_line(&self) -> Option<String> {
        let tail = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().rev().find(|l| !l.trim().is_empty()).cloned()
    }
}
