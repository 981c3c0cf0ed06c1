//! The pipeline as users meet it: what a manifest says reaches the backend
//! as written, and each kind of failure exits with its own code (2: fix the
//! input, nothing ran; 4: could not finish, run again to resume).

#[path = "support/mock_openai.rs"]
mod mock_openai;
#[path = "support/runs.rs"]
mod runs;

use std::path::Path;

use assert_cmd::Command;
use mock_openai::MockServer;
use predicates::prelude::*;

fn assay(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("ASSAY_CACHE_DIR", dir.join("cache"))
        .env("ASSAY_DATASETS_CACHE", dir.join("datasets"))
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_DATASETS_OFFLINE");
    cmd
}

/// A one-task folder; `dataset` is the config's data lines.
fn task_dir(dir: &Path, dataset: &str) -> std::path::PathBuf {
    let tasks = dir.join("tasks");
    std::fs::create_dir_all(&tasks).unwrap();
    std::fs::write(
        tasks.join("d.jsonl"),
        "{\"q\": \"1+1?\", \"a\": 0, \"c\": [\"2\", \"3\"]}\n{\"q\": \"2+2?\", \"a\": 1, \"c\": [\"3\", \"4\"]}\n",
    )
    .unwrap();
    std::fs::write(
        tasks.join("t.yaml"),
        format!(
            "task: t\n{dataset}test_split: test\noutput_type: multiple_choice\n\
             doc_to_text: \"{{{{q}}}}\"\ndoc_to_target: a\ndoc_to_choice: c\n"
        ),
    )
    .unwrap();
    tasks
}

const LOCAL: &str = "dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: d.jsonl\n";

#[test]
fn a_manifest_arg_with_a_comma_reaches_the_backend_intact() {
    let server = MockServer::start();
    let dir = tempfile::tempdir().unwrap();
    let variants = dir.path().join("variants");
    std::fs::create_dir_all(&variants).unwrap();
    let manifest = variants.join("served.toml");
    std::fs::write(
        &manifest,
        format!(
            "name = \"served\"\nrelation = \"original\"\n[backend]\nspec = \"openai-completions:{}\"\n\
             args = {{ model = \"org/a,b=c\", max_retries = \"0\" }}\n",
            server.base
        ),
    )
    .unwrap();
    assay(dir.path())
        .args(["score", "--quiet", "--no-cache", "--limit", "2", "--out"])
        .arg(dir.path().join("runs"))
        .arg(&manifest)
        .assert()
        .success();
    let posts = server.posts();
    assert!(!posts.is_empty());
    for post in &posts {
        assert_eq!(post.body["model"], "org/a,b=c", "{}", post.body);
    }
    let run = runs::read(&runs::only_run(&dir.path().join("runs/served")));
    assert_eq!(run.config.model_args["model"], "org/a,b=c");
}

#[test]
fn an_unreachable_hub_exits_4_and_says_to_run_again_or_go_offline() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = task_dir(dir.path(), "dataset_path: someone/a-dataset\n");
    // A port that was just free: the connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assay(dir.path())
        .env("HF_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .args(["requests", "--tasks", "t", "--include-path"])
        .arg(&tasks)
        .assert()
        .code(4)
        .stderr(
            predicate::str::contains("cannot reach the Hub")
                .and(predicate::str::contains("t.yaml")),
        );
}

#[test]
fn an_out_folder_that_cannot_be_made_exits_4() {
    let server = MockServer::start();
    let dir = tempfile::tempdir().unwrap();
    let tasks = task_dir(dir.path(), LOCAL);
    // A file where the run's folder would go: no permission check can
    // pass it, root or not.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "").unwrap();
    let run = |out: &Path| {
        let mut cmd = assay(dir.path());
        cmd.args(["run", "--quiet", "--tasks", "t", "--model"])
            .arg(format!("openai-completions:{}", server.base))
            .arg("--include-path")
            .arg(&tasks)
            .arg("--out")
            .arg(out);
        cmd.assert()
    };
    run(&blocker.join("runs"))
        .code(4)
        .stderr(predicate::str::contains("blocker"));
    // The answers were kept: the same run with a good folder resumes from
    // the cache without asking the server again.
    assert!(!server.posts().is_empty());
    server.clear_log();
    run(&dir.path().join("runs")).success();
    assert!(server.posts().is_empty(), "{:?}", server.posts().len());
}

#[test]
fn a_malformed_config_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = task_dir(dir.path(), LOCAL);
    let yaml = std::fs::read_to_string(tasks.join("t.yaml")).unwrap();
    std::fs::write(
        tasks.join("t.yaml"),
        yaml.replace("output_type: multiple_choice", "output_type: telepathy"),
    )
    .unwrap();
    assay(dir.path())
        .args(["requests", "--tasks", "t", "--include-path"])
        .arg(&tasks)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("t.yaml").and(predicate::str::contains("output_type")));
}

#[test]
fn without_a_terminal_a_run_logs_plain_progress_lines() {
    let server = MockServer::start();
    server.set_delay(std::time::Duration::from_millis(40));
    let dir = tempfile::tempdir().unwrap();
    let tasks = task_dir(dir.path(), LOCAL);
    let docs: String = (0..12)
        .map(|i| {
            format!(
                "{{\"q\": \"{i}+1?\", \"a\": 0, \"c\": [\"{}\", \"x\"]}}\n",
                i + 1
            )
        })
        .collect();
    std::fs::write(tasks.join("d.jsonl"), docs).unwrap();
    let run = |quiet: bool| {
        let mut cmd = assay(dir.path());
        cmd.env("ASSAY_PROGRESS_SECONDS", "0.1")
            .args(["run", "--no-cache", "--tasks", "t", "--model"])
            .arg(format!("openai-completions:{}", server.base))
            .arg("--include-path")
            .arg(&tasks)
            .arg("--out")
            .arg(dir.path().join("runs"));
        if quiet {
            cmd.arg("--quiet");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    // stderr is a pipe here, as in CI: plain lines, no bars.
    let log = run(false);
    assert!(log.contains("task t: 12 document(s)"), "{log}");
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("requests: "))
        .collect();
    assert!(lines.len() >= 2, "{log}");
    assert!(lines[0].contains("0 of 24 (0%)"), "{log}");
    let last = lines.last().unwrap();
    assert!(
        last.contains("24 of 24 (100%) · task t")
            && last.contains("failed 0")
            && last.ends_with("done"),
        "{log}"
    );
    assert!(!log.contains('\r'), "no terminal control in a log: {log:?}");
    assert_eq!(run(true), "", "--quiet prints nothing");
}
