//! `assay run` end to end on the embedded backend, with a tiny model the test
//! writes: the run folder, its files, the summary table, and the errors a
//! user meets first.

#[path = "support/tiny_gguf.rs"]
mod tiny_gguf;

use assert_cmd::Command;
use predicates::prelude::*;

fn assay(cache: &std::path::Path) -> Command {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("ASSAY_CACHE_DIR", cache);
    cmd
}

#[test]
fn a_run_writes_a_complete_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny-model.gguf");
    tiny_gguf::write_tiny_llama(&model, 7).unwrap();
    let out = dir.path().join("runs");
    let spec = format!("llama:{}", model.display());
    assay(dir.path())
        .args([
            "run",
            "--quiet",
            "--model",
            &spec,
            "--tasks",
            "assay_arithmetic,assay_counting,assay_wordlist",
            "--limit",
            "4",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("|assay_arithmetic")
                .and(predicate::str::contains("acc_norm"))
                .and(predicate::str::contains("word_perplexity")),
        );
    let variant = out.join("tiny-model");
    let runs: Vec<_> = std::fs::read_dir(&variant)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs[0].join("run.json")).unwrap()).unwrap();
    let fingerprint = run["assay"]["model"]["fingerprint"].as_str().unwrap();
    assert!(
        fingerprint.contains(&assay::request::sha256_hex(&std::fs::read(&model).unwrap())),
        "{fingerprint}"
    );
    let acc = run["results"]["assay_arithmetic"]["acc,none"]
        .as_f64()
        .unwrap();
    assert!((0.0..=1.0).contains(&acc));
    assert_eq!(run["n-samples"]["assay_arithmetic"]["effective"], 4);
    assert!(runs[0].join("samples.parquet").is_file());

    // The same model and tasks again: the same scores (deterministic backend).
    let out2 = dir.path().join("runs2");
    assay(dir.path())
        .args([
            "run",
            "--quiet",
            "--model",
            &spec,
            "--tasks",
            "assay_arithmetic",
            "--limit",
            "4",
            "--out",
        ])
        .arg(&out2)
        .assert()
        .success();
    let run2_dir = std::fs::read_dir(out2.join("tiny-model"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let run2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run2_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        run2["results"]["assay_arithmetic"]["acc,none"],
        run["results"]["assay_arithmetic"]["acc,none"]
    );
}

#[test]
fn model_errors_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let not_gguf = dir.path().join("notes.gguf");
    std::fs::write(&not_gguf, "hello").unwrap();
    for (spec, needle) in [
        (
            format!("llama:{}", dir.path().join("missing.gguf").display()),
            "missing.gguf",
        ),
        (format!("llama:{}", not_gguf.display()), "GGUF"),
    ] {
        let assert = assay(dir.path())
            .args([
                "run",
                "--quiet",
                "--model",
                &spec,
                "--tasks",
                "assay_arithmetic",
                "--limit",
                "1",
            ])
            .assert()
            .code(2);
        let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
    let model = dir.path().join("m.gguf");
    tiny_gguf::write_tiny_llama(&model, 1).unwrap();
    assay(dir.path())
        .args([
            "run",
            "--quiet",
            "--model",
            &format!("llama:{}", model.display()),
            "--model-arg",
            "n_kontext=5",
            "--tasks",
            "assay_arithmetic",
            "--limit",
            "1",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("n_kontext"));
}

#[test]
fn a_document_longer_than_the_context_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.gguf");
    tiny_gguf::write_tiny_llama(&model, 1).unwrap();
    assay(dir.path())
        .args([
            "run",
            "--quiet",
            "--model",
            &format!("llama:{}", model.display()),
            "--model-arg",
            "n_ctx=64",
            "--tasks",
            "assay_arithmetic",
            "--limit",
            "2",
        ])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("task `assay_arithmetic`, document 0")
                .and(predicate::str::contains("n_ctx")),
        );
}
