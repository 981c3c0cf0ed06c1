//! `--python-hooks`: a task's `!function` hooks run as written, in Python,
//! when assay has no native port. The test tasks (tests/fixtures/python_hooks)
//! use every hook kind lm-eval calls: process_docs (a `datasets.Dataset`
//! mapped and filtered, and one shuffled with Python's seeded generator),
//! doc_to_text/target/choice, process_results returning ints, floats, bools
//! and tuples, a filter class with keyword arguments, a metric function with
//! keyword arguments, aggregation functions and few-shot samples from a
//! function.
//!
//! lm-eval itself checks assay's work: its evaluator, answering from the
//! responses assay recorded (`support/lm_eval_replay.py`), must ask exactly
//! the requests assay sent and compute the same scores.
//!
//! The Python with lm-eval is `.lm-eval/venv/bin/python`
//! (`scripts/fetch-lm-eval-python.sh` makes it; `.ci/run` runs it), or
//! `ASSAY_TEST_LM_EVAL_PYTHON`.

#[path = "support/lm_eval_python.rs"]
mod lm_eval_python;
#[path = "support/mock_openai.rs"]
mod mock_openai;
#[path = "support/runs.rs"]
mod runs;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use lm_eval_python::{assert_same_scores, lm_eval_scores, python};
use mock_openai::MockServer;
use predicates::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Questions of several lengths (those of 3 characters or fewer are dropped
/// by process_docs), answers, and four options with a gold label.
fn documents(n: usize, offset: usize) -> String {
    let words = [
        "red", "blue", "green", "amber", "violet", "teal", "ochre", "slate",
    ];
    let mut out = String::new();
    for i in 0..n {
        let k = i + offset;
        let q = match k % 5 {
            0 => format!("how many {} stones", words[k % 8]),
            1 => words[k % 8][..3].to_string(),
            2 => format!("which {} comes after {}", words[k % 8], words[(k + 3) % 8]),
            3 => format!("is {} warm", words[(k + 1) % 8]),
            _ => format!("name a {} bird", words[(k + 5) % 8]),
        };
        let options: Vec<String> = (0..4).map(|j| words[(k + j * 3) % 8].to_string()).collect();
        let doc = serde_json::json!({
            "q": q,
            "a": format!("{} {}", words[(k * 7) % 8], k % 4),
            "options": options,
            "label": k % 4,
        });
        out.push_str(&doc.to_string());
        out.push('\n');
    }
    out
}

const GEN: &str = r#"task: ph_gen
dataset_path: json
dataset_kwargs:
  data_files:
    train: TRAIN
    test: TEST
training_split: train
test_split: test
num_fewshot: 2
output_type: generate_until
process_docs: !function utils.process_docs
doc_to_text: !function utils.doc_to_text
doc_to_target: !function utils.doc_to_target
generation_kwargs:
  until: ["\n"]
  max_gen_toks: 16
filter_list:
  - name: shout
    filter:
      - function: !function utils.Shout
        suffix: "!"
        drop: "[aeiou]"
      - function: take_first
  - name: plain
    filter:
      - function: take_first
metric_list:
  - metric: !function utils.overlap
    aggregation: !function utils.agg_overlap
    higher_is_better: true
    scale: 2
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"#;

const MC: &str = r#"task: ph_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: TEST
test_split: test
fewshot_split: test
num_fewshot: 1
output_type: multiple_choice
process_docs: !function utils.process_docs_shuffled
doc_to_text: !function utils.mc_text
doc_to_choice: !function utils.mc_choices
doc_to_target: !function utils.mc_target
process_results: !function utils.mc_results
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: margin
    aggregation: median
    higher_is_better: true
  - metric: pair
    aggregation: !function utils.agg_pairs
    higher_is_better: true
  - metric: greedy_any
    aggregation: mean
    higher_is_better: true
"#;

const LL: &str = r#"task: ph_ll
dataset_path: json
dataset_kwargs:
  data_files:
    test: TEST
test_split: test
output_type: loglikelihood
doc_to_text: "{{q}} ="
doc_to_target: " {{a}}"
process_results: !function utils.ll_results
num_fewshot: 2
fewshot_config:
  sampler: first_n
  samples: !function utils.fewshot_samples
metric_list:
  - metric: ll
    aggregation: mean
    higher_is_better: true
  - metric: greedy
    aggregation: mean
    higher_is_better: true
  - metric: words
    aggregation: mean
    higher_is_better: true
"#;

/// A fresh working folder with the test tasks in `tasks/`: their configs,
/// the hooks' module and the data.
fn task_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let tasks = dir.path().join("tasks");
    std::fs::create_dir(&tasks).unwrap();
    let train = tasks.join("train.jsonl");
    let test = tasks.join("test.jsonl");
    std::fs::write(&train, documents(10, 100)).unwrap();
    std::fs::write(&test, documents(14, 0)).unwrap();
    std::fs::copy(
        root().join("tests/fixtures/python_hooks/utils.py"),
        tasks.join("utils.py"),
    )
    .unwrap();
    for (name, text) in [("gen.yaml", GEN), ("mc.yaml", MC), ("ll.yaml", LL)] {
        let text = text
            .replace("TRAIN", &train.display().to_string())
            .replace("TEST", &test.display().to_string());
        std::fs::write(tasks.join(name), text).unwrap();
    }
    dir
}

/// One more task in the folder: `ph_ll` named `name`, its prompt from the
/// hook `doc_to_text` (`module.function`).
fn add_task(dir: &Path, name: &str, doc_to_text: &str) {
    std::fs::write(
        dir.join(format!("tasks/{name}.yaml")),
        LL.replace("task: ph_ll", &format!("task: {name}"))
            .replace(
                "doc_to_text: \"{{q}} =\"",
                &format!("doc_to_text: !function {doc_to_text}"),
            )
            .replace("TEST", &dir.join("tasks/test.jsonl").display().to_string()),
    )
    .unwrap();
}

fn assay(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.current_dir(dir)
        .env("ASSAY_PYTHON", python())
        .env("ASSAY_CACHE_DIR", dir.join("cache"))
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_HUB_OFFLINE", "1");
    cmd
}

#[test]
fn hooks_run_in_python_send_lm_evals_requests_and_get_its_scores() {
    let dir = task_folder();
    let server = MockServer::start();
    let out = dir.path().join("runs");
    assay(dir.path())
        .args(["run", "--quiet", "--variant", "mock", "--model"])
        .arg(format!("openai-completions:{}", server.base))
        .args(["--tasks", "ph_gen,ph_mc,ph_ll", "--include-path"])
        .arg(dir.path().join("tasks"))
        .args(["--python-hooks", "--out"])
        .arg(&out)
        .assert()
        .success();
    let run = runs::only_run(&out.join("mock"));
    let ours = runs::run_json(&run);
    let tasks = dir.path().join("tasks");
    let theirs = lm_eval_scores(&run, "ph_gen,ph_mc,ph_ll", &[tasks.as_os_str()]);
    assert_same_scores(&ours, &theirs);
    let keys = |task: &str| theirs[task].as_object().unwrap().len();
    // overlap and exact_match under two filters; four and three metrics.
    assert_eq!(
        (keys("ph_gen"), keys("ph_mc"), keys("ph_ll")),
        (4, 4, 3),
        "{theirs}"
    );
    // The scores are not all alike: the answers differ across documents.
    assert!(ours["results"]["ph_mc"]["margin,none"].as_f64().unwrap() != 0.0);
    // Short questions were dropped by process_docs, in Python.
    assert_eq!(ours["n-samples"]["ph_gen"]["original"], 11);

    // Provenance: how each hook ran, the file's digest, the versions.
    let hooks = ours["assay"]["tasks"]["ph_mc"]["hooks"].as_array().unwrap();
    let fields: Vec<&str> = hooks.iter().map(|h| h["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"process_results"), "{fields:?}");
    assert!(fields.contains(&"metric_list[2].aggregation"), "{fields:?}");
    let digest =
        assay::hash::sha256_hex(&std::fs::read(dir.path().join("tasks/utils.py")).unwrap());
    for h in hooks {
        assert_eq!(h["implementation"], "python");
        assert_eq!(h["sha256"], digest.as_str());
        assert_eq!(h["versions"]["lm_eval"], "0.4.13", "{h}");
        assert!(h["versions"]["python"].is_string());
    }
}

#[test]
fn without_the_flag_the_refusal_names_the_python_that_would_run() {
    let dir = task_folder();
    assay(dir.path())
        .args(["requests", "--tasks", "ph_mc", "--include-path"])
        .arg(dir.path().join("tasks"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("mc.yaml")
                .and(predicate::str::contains("--python-hooks would run"))
                .and(predicate::str::contains("utils.py:process_docs_shuffled")),
        );
    // `tasks list` says which tasks would run Python.
    let listing = |flag: Option<&str>| {
        let mut cmd = assay(dir.path());
        cmd.args(["tasks", "list", "ph_mc", "ph_ll", "--include-path"])
            .arg(dir.path().join("tasks"));
        if let Some(f) = flag {
            cmd.arg(f);
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    let plain = listing(None);
    let with = listing(Some("--python-hooks"));
    let hooks = |text: &str, task: &str| {
        text.lines()
            .find(|l| l.starts_with(task))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(hooks(&plain, "ph_mc"), "missing", "{plain}");
    assert_eq!(hooks(&with, "ph_mc"), "python", "{with}");
    assert_eq!(hooks(&with, "ph_ll"), "python", "{with}");
    // `tasks validate` plans every document, running the hooks when asked.
    assay(dir.path())
        .args(["tasks", "validate"])
        .arg(dir.path().join("tasks"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--python-hooks would run"));
    assay(dir.path())
        .args(["tasks", "validate", "--python-hooks"])
        .arg(dir.path().join("tasks"))
        .assert()
        .success()
        .stdout(predicate::str::contains("ok: 3 task and group configs"));
    // A group of such tasks: without the flag its tasks are skipped, and
    // nothing is said to be cached.
    std::fs::write(
        dir.path().join("tasks/group.yaml"),
        "group: ph_group\ntask:\n  - ph_mc\n  - ph_ll\n",
    )
    .unwrap();
    let row = |flag: Option<&str>| {
        let mut cmd = assay(dir.path());
        cmd.args(["tasks", "list", "ph_group", "--include-path"])
            .arg(dir.path().join("tasks"));
        if let Some(f) = flag {
            cmd.arg(f);
        }
        let text = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
        let line = text.lines().find(|l| l.starts_with("ph_group")).unwrap();
        line.split_whitespace()
            .skip(2)
            .take(5)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row(None), "missing - 0 tasks, 2");
    let with = row(Some("--python-hooks"));
    assert!(with.starts_with("python yes 2 tasks"), "{with}");
}

#[test]
fn a_hook_that_raises_names_the_task_document_file_and_function() {
    let dir = task_folder();
    add_task(dir.path(), "ph_raise", "utils.raise_on_warm");
    let out = assay(dir.path())
        .args([
            "requests",
            "--tasks",
            "ph_raise",
            "--python-hooks",
            "--include-path",
        ])
        .arg(dir.path().join("tasks"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for part in [
        "ph_raise.yaml",
        "ph_raise",
        "document 3",
        "utils.py:raise_on_warm",
        "ValueError: cannot read 'is violet warm'",
    ] {
        assert!(err.contains(part), "`{part}` missing from: {err}");
    }
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_module_that_does_not_import_names_the_missing_package() {
    let dir = task_folder();
    std::fs::write(
        dir.path().join("tasks/needs.py"),
        "import assay_no_such_package\n\ndef text(doc):\n    return doc['q']\n",
    )
    .unwrap();
    add_task(dir.path(), "ph_needs", "needs.text");
    assay(dir.path())
        .args([
            "requests",
            "--tasks",
            "ph_needs",
            "--python-hooks",
            "--include-path",
        ])
        .arg(dir.path().join("tasks"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("needs.py")
                .and(predicate::str::contains("`assay_no_such_package`"))
                .and(predicate::str::contains("pip install")),
        );
    // No interpreter at all: one line that says how to name one.
    assay(dir.path())
        .env("ASSAY_PYTHON", dir.path().join("no-python"))
        .args([
            "requests",
            "--tasks",
            "ph_mc",
            "--python-hooks",
            "--include-path",
        ])
        .arg(dir.path().join("tasks"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("cannot run Python")
                .and(predicate::str::contains("ASSAY_PYTHON")),
        );
    // A hook whose module file is not there is named with the file.
    add_task(dir.path(), "ph_nowhere", "nowhere.text");
    assay(dir.path())
        .args([
            "requests",
            "--tasks",
            "ph_nowhere",
            "--python-hooks",
            "--include-path",
        ])
        .arg(dir.path().join("tasks"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("nowhere.py").and(predicate::str::contains("does not exist")),
        );
    // A canonical name stands for the installed lm-eval's function: a
    // Python without lm-eval is named, with what to install.
    std::fs::write(
        dir.path().join("tasks/installed.yaml"),
        format!(
            "task: ph_installed\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    \
             test: {}\ntest_split: test\noutput_type: loglikelihood\n\
             doc_to_text: !function math.doc_to_text\ndoc_to_target: \" {{{{a}}}}\"\n",
            dir.path().join("tasks/test.jsonl").display()
        ),
    )
    .unwrap();
    let bare = dir.path().join("python-without-site-packages");
    std::fs::write(
        &bare,
        format!("#!/bin/sh\nexec '{}' -S \"$@\"\n", python().display()),
    )
    .unwrap();
    std::fs::set_permissions(&bare, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assay(dir.path())
        .env("ASSAY_PYTHON", &bare)
        .args([
            "requests",
            "--tasks",
            "ph_installed",
            "--python-hooks=all",
            "--include-path",
        ])
        .arg(dir.path().join("tasks"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("lm_eval/tasks/leaderboard/math/utils.py")
                .and(predicate::str::contains("has no lm-eval"))
                .and(predicate::str::contains("pip install lm-eval")),
        );
    // An lm-eval without that file (another release) is named, with the
    // release to install.
    let fake = dir.path().join("fake-site/lm_eval");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(fake.join("__init__.py"), "").unwrap();
    assay(dir.path())
        .env("ASSAY_PYTHON", &bare)
        .env("PYTHONPATH", dir.path().join("fake-site"))
        .args([
            "requests",
            "--tasks",
            "ph_installed",
            "--python-hooks=all",
            "--include-path",
        ])
        .arg(dir.path().join("tasks"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("has no lm_eval/tasks/leaderboard/math/utils.py")
                .and(predicate::str::contains("pip install lm-eval==0.4.13")),
        );
    // A flag value other than `all` is refused.
    assay(dir.path())
        .args(["requests", "--tasks", "ph_ll", "--python-hooks=some"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--python-hooks=all"));
}

#[test]
fn hooks_do_not_see_the_environments_secrets() {
    let dir = task_folder();
    add_task(dir.path(), "ph_secret", "utils.seen_secret");
    let out = assay(dir.path())
        .env("ASSAY_TEST_API_KEY", "hunter2")
        .args([
            "requests",
            "--tasks",
            "ph_secret",
            "--python-hooks",
            "--limit",
            "1",
        ])
        .arg("--include-path")
        .arg(dir.path().join("tasks"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("how many red stones [no key]"), "{text}");
}
