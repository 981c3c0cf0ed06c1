//! The Python with lm-eval the tests run lm-eval's code in, and lm-eval's own
//! scores for the answers an assay run recorded.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `$ASSAY_TEST_LM_EVAL_PYTHON`, else `.lm-eval/venv/bin/python`, which
/// `scripts/fetch-lm-eval-python.sh` makes (`.ci/run` runs it).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("ASSAY_TEST_LM_EVAL_PYTHON") {
        return p.into();
    }
    let p = root().join(".lm-eval/venv/bin/python");
    assert!(
        p.exists(),
        "these tests need a Python with lm-eval[hf], torch and transformers: run \
         scripts/fetch-lm-eval-python.sh (.ci/run does), or set ASSAY_TEST_LM_EVAL_PYTHON"
    );
    p
}

/// lm-eval's scores, by task and `metric,filter`, for the answers the run
/// in `run` recorded (`support/lm_eval_replay.py`; `source` is the task
/// folder, or `--hub-fixtures FOLDER`). lm-eval's evaluator fails if it asks
/// a request assay did not send, or assay sent one it did not ask.
pub fn lm_eval_scores(run: &Path, tasks: &str, source: &[&std::ffi::OsStr]) -> Value {
    let out = std::process::Command::new(python())
        .arg(root().join("tests/support/lm_eval_replay.py"))
        .arg(run)
        .arg(tasks)
        .args(source)
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lm-eval's replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Checks that every score lm-eval reports equals assay's (`run`: run.json);
/// returns how many were compared.
pub fn assert_same_scores(run: &Value, theirs: &Value) -> usize {
    let theirs = theirs.as_object().unwrap();
    assert!(!theirs.is_empty());
    let mut compared = 0;
    for (task, scores) in theirs {
        let scores = scores.as_object().unwrap();
        assert!(!scores.is_empty(), "{task}: lm-eval reported no scores");
        for (key, want) in scores {
            let got = &run["results"][task][key];
            match (got.as_f64(), want.as_f64()) {
                (Some(a), Some(b)) => assert!(
                    (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                    "{task} {key}: assay {a}, lm-eval {b}"
                ),
                _ => panic!("{task} {key}: assay {got}, lm-eval {want}"),
            }
            compared += 1;
        }
    }
    compared
}
