//! Bad input gets one clear line naming the file and field, and exit code 2.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

/// Writes a task folder with one config and a small dataset.
fn task_dir(yaml: &str, data: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.yaml"), yaml).unwrap();
    std::fs::write(dir.path().join("d.jsonl"), data).unwrap();
    dir
}

const DATA: &str = "{\"q\": \"1+1?\", \"a\": 0, \"c\": [\"2\", \"3\"]}\n{\"q\": \"2+2?\", \"a\": 1, \"c\": [\"3\", \"4\"]}\n";

fn config(extra: &str) -> String {
    format!(
        "task: t\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{{{q}}}}\"\ndoc_to_target: a\ndoc_to_choice: c\n{extra}"
    )
}

fn requests(dir: &Path, task: &str) -> assert_cmd::assert::Assert {
    Command::cargo_bin("assay")
        .unwrap()
        .env("ASSAY_TASKS_DIR", dir.join("no-builtin"))
        .args(["requests", "--tasks", task, "--include-path"])
        .arg(dir)
        .assert()
}

fn fails_with(yaml: &str, data: &str, task: &str, needles: &[&str]) {
    let dir = task_dir(yaml, data);
    let assert = requests(dir.path(), task).code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line expected, got:\n{stderr}"
    );
    for n in needles {
        assert!(stderr.contains(n), "`{n}` missing from: {stderr}");
    }
}

#[test]
fn a_valid_config_works() {
    let dir = task_dir(&config(""), DATA);
    requests(dir.path(), "t")
        .success()
        .stdout(predicate::str::contains(
            "\"request_type\":\"loglikelihood\"",
        ));
}

#[test]
fn yaml_syntax_error_names_the_file() {
    let dir = task_dir("task: t\ndoc_to_text: [unclosed\n", DATA);
    Command::cargo_bin("assay")
        .unwrap()
        .args(["tasks", "validate"])
        .arg(dir.path().join("t.yaml"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("t.yaml").and(predicate::str::contains("YAML syntax error")),
        );
}

#[test]
fn unknown_field_is_named_with_a_suggestion() {
    fails_with(
        &config("num_fewshots: 3\n"),
        DATA,
        "t",
        &["t.yaml", "num_fewshots", "num_fewshot"],
    );
}

#[test]
fn missing_column_names_the_document_and_field() {
    let yaml = config("").replace("doc_to_text: \"{{q}}\"", "doc_to_text: \"{{question}}\"");
    fails_with(
        &yaml,
        DATA,
        "t",
        &["t.yaml", "document 0", "doc_to_text", "question"],
    );
}

#[test]
fn template_error_is_reported() {
    let yaml = config("").replace(
        "doc_to_text: \"{{q}}\"",
        "doc_to_text: \"{{q | nosuchfilter}}\"",
    );
    fails_with(&yaml, DATA, "t", &["t.yaml", "doc_to_text", "nosuchfilter"]);
}

#[test]
fn python_function_is_refused_by_name() {
    let yaml = config("process_docs: !function utils.process_docs\n");
    fails_with(
        &yaml,
        DATA,
        "t",
        &[
            "t.yaml",
            "process_docs",
            "utils.process_docs",
            "--python-hooks would run",
            "utils.py:process_docs",
        ],
    );
}

#[test]
fn python_function_in_a_group_member_is_skipped_with_a_warning() {
    let dir = task_dir(&config(""), DATA);
    std::fs::write(
        dir.path().join("py.yaml"),
        config("process_docs: !function utils.p\n").replace("task: t", "task: py"),
    )
    .unwrap();
    std::fs::write(dir.path().join("g.yaml"), "group: g\ntask: [t, py]\n").unwrap();
    requests(dir.path(), "g").success().stderr(
        predicate::str::contains("skipped task `py`").and(predicate::str::contains("utils.p")),
    );
}

#[test]
fn empty_dataset_is_an_error() {
    fails_with(&config(""), "", "t", &["t.yaml", "no documents"]);
}

#[test]
fn unknown_task_name_is_an_error() {
    fails_with(
        &config(""),
        DATA,
        "nosuchtask",
        &["unknown task or group `nosuchtask`"],
    );
}

#[test]
fn missing_data_file_names_the_file() {
    let yaml = config("").replace("d.jsonl", "missing.jsonl");
    fails_with(&yaml, DATA, "t", &["t.yaml", "missing.jsonl"]);
}

#[test]
fn bad_flags_exit_2() {
    Command::cargo_bin("assay")
        .unwrap()
        .args(["requests", "--tasks", "x", "--limit", "-3"])
        .assert()
        .code(2);
    Command::cargo_bin("assay")
        .unwrap()
        .args(["requests", "--tasks", "x", "--shard", "4/4"])
        .assert()
        .code(2);
    Command::cargo_bin("assay")
        .unwrap()
        .args([
            "run",
            "--model",
            "nosuch:thing",
            "--tasks",
            "assay_arithmetic",
            "--limit",
            "1",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown backend"));
}

#[test]
fn leaderboard_names_a_suite_task_it_cannot_find() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.yaml");
    std::fs::write(
        &suite,
        "group: s\ntask: [nowhere_task]\nmetadata:\n  leaderboard:\n    nowhere_task: {metric: acc}\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("results/runs")).unwrap();
    let assert = Command::cargo_bin("assay")
        .unwrap()
        .current_dir(dir.path())
        .args(["leaderboard", "--suite"])
        .arg(&suite)
        .assert()
        .code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("nowhere_task") && stderr.contains("--include-path"),
        "{stderr}"
    );
    Command::cargo_bin("assay")
        .unwrap()
        .current_dir(dir.path())
        .args(["leaderboard", "--suite", "missing.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--suite missing.yaml: no such file",
        ));
}

#[test]
fn gate_names_a_run_without_samples() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        let run = dir.path().join("runs").join(name).join("r1");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(
            run.join("run.json"),
            r#"{"results": {"t": {"acc,none": 0.5}}, "assay": {"complete": true, "shard": null, "variant": "x", "tasks": {"t": {"config_hash": "h"}}}}"#,
        )
        .unwrap();
    }
    Command::cargo_bin("assay")
        .unwrap()
        .args(["gate", "--baseline", "a", "--candidate", "b", "--results"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("samples.parquet"));
}
