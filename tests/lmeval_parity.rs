//! `assay requests` must send exactly what lm-eval sends: for every golden
//! file made by lm-eval's dummy model (tests/golden/README.md), run assay
//! with the same task options and compare every request.

#[path = "support/requests.rs"]
mod requests;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use requests::{difference, sorted};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// assay's arguments for the lm-eval command a golden was made with.
fn assay_args(meta: &Path) -> Vec<String> {
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(meta).unwrap()).unwrap();
    let cmd: Vec<String> = meta["lm_eval_command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut out = vec!["requests".to_string()];
    let mut i = 0;
    while i < cmd.len() {
        let value = cmd.get(i + 1).cloned().unwrap_or_default();
        match cmd[i].as_str() {
            "--tasks" => out.extend(["--tasks".into(), value]),
            "--include_path" => out.extend([
                "--include-path".into(),
                root().join(value).display().to_string(),
            ]),
            "--num_fewshot" => out.extend(["--num-fewshot".into(), value]),
            "--limit" => out.extend(["--limit".into(), value]),
            "--seed" => out.extend(["--seed".into(), value]),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    out
}

#[test]
fn requests_match_lm_eval_for_every_golden() {
    let dir = root().join("tests/golden");
    let mut goldens: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".requests.jsonl"))
        .collect();
    goldens.sort();
    assert!(
        goldens.len() >= 20,
        "expected the golden files, found {}",
        goldens.len()
    );
    let mut failures = Vec::new();
    for golden in &goldens {
        let name = golden
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".requests.jsonl")
            .to_string();
        let args = assay_args(&dir.join(format!("{name}.meta.json")));
        let output = Command::cargo_bin("assay")
            .unwrap()
            .current_dir(root())
            .args(&args)
            .output()
            .unwrap();
        if !output.status.success() {
            failures.push(format!(
                "{name}: assay {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            ));
            continue;
        }
        let ours = sorted(&String::from_utf8(output.stdout).unwrap());
        let theirs = sorted(&std::fs::read_to_string(golden).unwrap());
        failures.extend(difference(&name, &ours, &theirs));
    }
    assert!(
        failures.is_empty(),
        "{} of {} goldens differ:\n{}",
        failures.len(),
        goldens.len(),
        failures.join("\n")
    );
}
