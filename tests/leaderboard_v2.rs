//! The Open LLM Leaderboard v2's scoring of free-form answers, against
//! lm-eval's own: IFEval (210 answers exercising every instruction type,
//! strict and loose) and MATH level 5 (100 answers, gold answers in
//! equivalent and different forms, with and without the "Final Answer"
//! line). Both tasks are lm-eval's YAML, unchanged, reading documents this
//! project wrote (`support/make_v2_checks.py`); their checkers run as
//! lm-eval's Python (`--python-hooks`). A mock server answers each prompt
//! with the crafted answer, and lm-eval's evaluator, replaying the answers
//! assay recorded, must report the same scores. assay's own configs of the
//! two tasks (MATH's gold answers cut out natively) must score the same.

#[path = "support/lm_eval_python.rs"]
mod lm_eval_python;
#[path = "support/mock_openai.rs"]
mod mock_openai;
#[path = "support/runs.rs"]
mod runs;

use std::path::PathBuf;

use assert_cmd::Command;
use lm_eval_python::{assert_same_scores, lm_eval_scores, python};
use mock_openai::MockServer;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn lm_eval_tasks() -> PathBuf {
    std::env::var_os("ASSAY_LM_EVAL_TASKS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".lm-eval/0.4.13/lm_eval/tasks"))
}

#[test]
fn ifeval_and_math_score_crafted_answers_as_lm_eval_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let made = std::process::Command::new(python())
        .arg(root().join("tests/support/make_v2_checks.py"))
        .arg(&data)
        .arg(lm_eval_tasks())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let answers: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(data.join("answers.json")).unwrap()).unwrap();
    let server = MockServer::start();
    *server.state.scripted.lock().unwrap() = answers
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap().to_string()))
        .collect();
    let out = dir.path().join("runs");
    let output = Command::cargo_bin("assay")
        .unwrap()
        .current_dir(dir.path())
        .env("ASSAY_PYTHON", python())
        .env("ASSAY_CACHE_DIR", dir.path().join("cache"))
        .args([
            "run",
            "--quiet",
            "--variant",
            "crafted",
            "--python-hooks",
            "--model",
        ])
        .arg(format!("openai-completions:{}", server.base))
        .args([
            "--tasks",
            "v2_ifeval,v2_math,v2own_ifeval,v2own_math",
            "--include-path",
        ])
        .arg(data.join("tasks"))
        .arg("--include-path")
        .arg(data.join("own"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run_dir = runs::only_run(&out.join("crafted"));
    let ours = runs::run_json(&run_dir);
    let tasks = data.join("tasks");
    let theirs = lm_eval_scores(&run_dir, "v2_ifeval,v2_math", &[tasks.as_os_str()]);
    println!("{}", ours["results"]);
    let compared = assert_same_scores(&ours, &theirs);
    assert_eq!(compared, 6, "{theirs}");
    assert_eq!(ours["n-samples"]["v2_ifeval"]["effective"], 210);
    assert_eq!(ours["n-samples"]["v2_math"]["effective"], 100);
    // The answers pass and fail: no score is 0 or 1, and loose is at least
    // strict.
    let score = |task: &str, metric: &str| {
        ours["results"][task][format!("{metric},none")]
            .as_f64()
            .unwrap()
    };
    for (task, metric) in [
        ("v2_ifeval", "prompt_level_strict_acc"),
        ("v2_ifeval", "inst_level_strict_acc"),
        ("v2_ifeval", "prompt_level_loose_acc"),
        ("v2_ifeval", "inst_level_loose_acc"),
        ("v2_math", "exact_match"),
        ("v2_math", "exact_match_original"),
    ] {
        let s = score(task, metric);
        assert!(s > 0.0 && s < 1.0, "{task} {metric}: {s}");
    }
    assert!(
        score("v2_ifeval", "prompt_level_loose_acc")
            >= score("v2_ifeval", "prompt_level_strict_acc")
    );
    for (own, theirs) in [("v2own_ifeval", "v2_ifeval"), ("v2own_math", "v2_math")] {
        let ours_own = ours["results"][own].as_object().unwrap();
        for (key, value) in ours["results"][theirs].as_object().unwrap() {
            if key != "alias" {
                assert_eq!(&ours_own[key], value, "{own} {key}");
            }
        }
    }
}
