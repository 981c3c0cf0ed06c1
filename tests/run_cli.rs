//! `assay run` end to end on the embedded backend, with a tiny model the test
//! writes: the run folder, its files, the summary table, and the errors a
//! user meets first.

#[path = "support/runs.rs"]
mod runs;
#[path = "support/tiny_gguf.rs"]
mod tiny_gguf;

use assert_cmd::Command;
use predicates::prelude::*;
use runs::{only_run, run_json};

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
    let run = run_json(&runs[0]);
    let fingerprint = run["assay"]["model"]["fingerprint"].as_str().unwrap();
    assert!(
        fingerprint.contains(&assay::hash::sha256_hex(&std::fs::read(&model).unwrap())),
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
    let run2 = run_json(&only_run(&out2.join("tiny-model")));
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

#[test]
fn skip_overlong_leaves_out_and_records_long_documents() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.gguf");
    tiny_gguf::write_tiny_llama(&model, 3).unwrap();
    let tasks = dir.path().join("tasks");
    std::fs::create_dir(&tasks).unwrap();
    let long = "a long question ".repeat(40);
    let docs: String = (0..4)
        .map(|i| {
            let q = if i % 2 == 1 { long.as_str() } else { "short" };
            format!("{{\"q\": \"{q} {i}\", \"choices\": [\"yes\", \"no\"], \"label\": 0}}\n")
        })
        .collect();
    std::fs::write(tasks.join("d.jsonl"), docs).unwrap();
    std::fs::write(
        tasks.join("mixed.yaml"),
        "task: mixed\ndataset_path: json\ndataset_kwargs:\n  data_files: {test: d.jsonl}\n\
         test_split: test\noutput_type: multiple_choice\ndoc_to_text: q\n\
         doc_to_choice: choices\ndoc_to_target: label\nmetric_list:\n  - metric: acc\n",
    )
    .unwrap();
    let out = dir.path().join("runs");
    let spec = format!("llama:{}", model.display());
    let base = [
        "run",
        "--quiet",
        "--model",
        &spec,
        "--model-arg",
        "n_ctx=64",
        "--tasks",
        "mixed",
        "--include-path",
        tasks.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    // Without the flag: an error naming the first long document, no run.
    assay(dir.path()).args(base).assert().code(2).stderr(
        predicate::str::contains("task `mixed`, document 1")
            .and(predicate::str::contains("--skip-overlong")),
    );
    assert!(!out.exists());

    assay(dir.path())
        .args(base)
        .arg("--skip-overlong")
        .assert()
        .success()
        .stderr(
            predicate::str::contains("task `mixed`, document 1 left out")
                .and(predicate::str::contains("document 3 left out")),
        );
    let run = run_json(&only_run(&out.join("m")));
    let skipped = run["assay"]["skipped_documents"].as_array().unwrap();
    let ids: Vec<u64> = skipped
        .iter()
        .map(|s| s["doc_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 3]);
    assert_eq!(skipped[0]["task"], "mixed");
    assert_eq!(run["n-samples"]["mixed"]["effective"], 2);
}

#[test]
fn a_second_run_is_answered_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.gguf");
    tiny_gguf::write_tiny_llama(&model, 5).unwrap();
    let spec = format!("llama:{}", model.display());
    let run = |out: &str, extra: &[&str]| -> serde_json::Value {
        let out = dir.path().join(out);
        assay(dir.path())
            .args(["run", "--quiet", "--model", &spec, "--tasks"])
            .args(["assay_arithmetic,assay_counting", "--limit", "3", "--out"])
            .arg(&out)
            .args(extra)
            .assert()
            .success();
        run_json(&only_run(&out.join("m")))
    };
    let first = run("a", &[]);
    let second = run("b", &[]);
    let uncached = run("c", &["--no-cache"]);
    let counts = |r: &serde_json::Value| r["assay"]["requests"].clone();
    let distinct = counts(&first)["sent"].as_u64().unwrap();
    assert!(distinct > 0);
    assert_eq!(counts(&first)["cached"], 0);
    assert_eq!(counts(&second)["cached"].as_u64().unwrap(), distinct);
    assert_eq!(counts(&second)["sent"], 0);
    assert_eq!(counts(&uncached)["cached"], 0);
    assert_eq!(second["results"], first["results"]);
    assert_eq!(uncached["results"], first["results"]);
    assert!(dir.path().join("responses.sqlite").is_file());
}

#[test]
fn shards_merge_into_the_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.gguf");
    tiny_gguf::write_tiny_llama(&model, 9).unwrap();
    let spec = format!("llama:{}", model.display());
    let run = |out: &std::path::Path, extra: &[&str]| {
        assay(dir.path())
            .args(["run", "--quiet", "--model", &spec, "--tasks", "assay_core"])
            .args(["--limit", "7", "--out"])
            .arg(out)
            .args(extra)
            .assert()
            .success();
    };
    let whole = dir.path().join("whole");
    run(&whole, &[]);
    let shards = dir.path().join("shards");
    for k in 0..3 {
        run(&shards, &["--shard", &format!("{k}/3")]);
    }
    let shard_dirs: Vec<std::path::PathBuf> = std::fs::read_dir(shards.join("m"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(shard_dirs.len(), 3);
    let read = |root: &std::path::Path| run_json(&only_run(&root.join("m")));

    // Two of three shards: refused, naming the missing one.
    let merged = dir.path().join("merged");
    assay(dir.path())
        .args(["merge", "--quiet", "--out"])
        .arg(&merged)
        .args(&shard_dirs[..2])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing"));
    // A run that is not a shard: refused.
    let whole_dir = only_run(&whole.join("m"));
    assay(dir.path())
        .args(["merge", "--quiet", "--out"])
        .arg(&merged)
        .arg(&whole_dir)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a shard"));

    assay(dir.path())
        .args(["merge", "--quiet", "--out"])
        .arg(&merged)
        .args(&shard_dirs)
        .assert()
        .success()
        .stdout(predicate::str::contains("assay_core"));
    let (a, b) = (read(&whole), read(&merged));
    assert_eq!(a["results"], b["results"]);
    assert_eq!(a["groups"], b["groups"]);
    assert_eq!(a["n-samples"], b["n-samples"]);
    assert_eq!(b["assay"]["merged_from"].as_array().unwrap().len(), 3);
    assert!(b["assay"]["shard"].is_null());
}
