//! `assay run` against a mock OpenAI-compatible server: a whole run, a run
//! the backend cannot serve, and a run killed midway and started again.

#[path = "support/mock_openai.rs"]
mod mock_openai;

use std::path::Path;
use std::process::Command as Process;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use mock_openai::MockServer;
use predicates::prelude::*;

fn assay(cache: &Path) -> Command {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("ASSAY_CACHE_DIR", cache);
    cmd
}

fn run_json(out: &Path) -> serde_json::Value {
    let dir = std::fs::read_dir(out.join("mock"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("run.json").is_file())
        .expect("a complete run");
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

#[test]
fn a_run_through_the_completions_backend() {
    let server = MockServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    assay(dir.path())
        .args(["run", "--quiet", "--variant", "mock", "--model"])
        .arg(format!("openai-completions:{}", server.base))
        .args([
            "--model-arg",
            "concurrency=3",
            "--tasks",
            "assay_arithmetic,assay_counting",
        ])
        .args(["--limit", "5", "--out"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("assay_counting"));
    let run = run_json(&out);
    assert_eq!(run["assay"]["model"]["details"]["model"], "mock-model");
    let sent = run["assay"]["requests"]["sent"].as_u64().unwrap();
    assert_eq!(sent, 5 * 4 + 5);
    assert_eq!(server.posts().len() as u64, sent);
    let acc = run["results"]["assay_arithmetic"]["acc,none"]
        .as_f64()
        .unwrap();
    assert!((0.0..=1.0).contains(&acc));
}

#[test]
fn a_chat_backend_refuses_loglikelihood_tasks_before_sending() {
    let server = MockServer::start();
    let dir = tempfile::tempdir().unwrap();
    assay(dir.path())
        .args(["run", "--quiet", "--model"])
        .arg(format!("openai-chat:{}", server.base))
        .args(["--tasks", "assay_arithmetic", "--limit", "2", "--out"])
        .arg(dir.path().join("runs"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("task `assay_arithmetic`")
                .and(predicate::str::contains("openai-completions")),
        );
    assert!(server.posts().is_empty());
}

#[test]
fn a_killed_run_resumes_without_asking_twice() {
    let server = MockServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache.sqlite");
    let out = dir.path().join("runs");
    let spec = format!("openai-completions:{}", server.base);
    let run_args = |out: &Path| -> Vec<String> {
        [
            "run",
            "--quiet",
            "--variant",
            "mock",
            "--model",
            &spec,
            "--model-arg",
            "concurrency=2",
            "--tasks",
            "assay_arithmetic,assay_counting",
            "--limit",
            "40",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([out.display().to_string()])
        .collect()
    };

    // First run: slow answers, killed (SIGKILL) after about a third.
    server.set_delay(Duration::from_millis(15));
    let mut child = Process::new(assert_cmd::cargo::cargo_bin("assay"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(run_args(&out))
        .arg("--cache")
        .arg(&cache)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.state.answered.load(Ordering::SeqCst) < 60 {
        assert!(Instant::now() < deadline, "the run did not get going");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let complete = std::fs::read_dir(out.join("mock"))
        .map(|d| d.flatten().any(|e| e.path().join("run.json").is_file()))
        .unwrap_or(false);
    assert!(
        !complete,
        "a killed run must not leave a complete-looking run"
    );
    let cached: i64 = rusqlite::Connection::open(&cache)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM responses", [], |r| r.get(0))
        .unwrap();
    let cached = cached as u64;
    assert!(
        cached >= 55,
        "answers received before the kill are kept ({cached})"
    );

    // Started again: only what was not answered is sent.
    server.set_delay(Duration::ZERO);
    server.clear_log();
    assay(dir.path())
        .args(run_args(&out))
        .arg("--cache")
        .arg(&cache)
        .assert()
        .success();
    let resumed = run_json(&out);
    let counts = &resumed["assay"]["requests"];
    assert_eq!(counts["cached"].as_u64().unwrap(), cached);
    let sent = counts["sent"].as_u64().unwrap();
    assert_eq!(
        server.posts().len() as u64,
        sent,
        "only unanswered requests are sent"
    );
    let distinct = counts["cached"].as_u64().unwrap() + sent;
    let prompts: std::collections::HashSet<String> = server
        .posts()
        .iter()
        .map(|p| p.body["prompt"].to_string())
        .collect();
    assert_eq!(prompts.len() as u64, sent, "no request sent twice");
    assert!(distinct > cached);

    // The same scores as a run that was never interrupted.
    let clean_out = dir.path().join("clean");
    assay(dir.path())
        .args(run_args(&clean_out))
        .arg("--no-cache")
        .assert()
        .success();
    let clean = run_json(&clean_out);
    assert_eq!(resumed["results"], clean["results"]);
}
