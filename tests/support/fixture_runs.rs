//! Fixture runs for the leaderboard tests: run folders shaped as `assay run`
//! writes them (run.json with scores and config hashes, samples.parquet
//! with per-document values, prompts and responses), and manifests.

#![allow(dead_code)]

use std::path::Path;

use polars::prelude::*;
use serde_json::json;

pub const SUITE: &str = "group: s\ntask: [t1, t2]\nmetadata:\n  leaderboard:\n    \
    t1: {metric: acc, filter: none, baseline: 0.25}\n    \
    t2: {metric: exact_match, filter: f, baseline: 0.0}\n";

/// A temporary folder with the suite written: (folder, results, suite).
pub fn workspace() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let suite = dir.path().join("suite.yaml");
    std::fs::write(&suite, SUITE).unwrap();
    (dir, results, suite)
}

/// The config hashes runs record for t1 and t2, as the suite's configs are now.
pub const HASHES: [&str; 2] = ["h1", "h2"];

/// A run folder: run.json with the two tasks' scores, and samples with
/// per-document values (t1's acc, t2's exact_match).
pub fn write_run(
    root: &Path,
    variant: &str,
    run_id: &str,
    created: &str,
    scores: [(f64, f64); 2],
    docs: [[f64; 4]; 2],
) {
    write_run_with(root, variant, run_id, created, scores, docs, HASHES);
}

pub fn write_run_with(
    root: &Path,
    variant: &str,
    run_id: &str,
    created: &str,
    scores: [(f64, f64); 2],
    docs: [[f64; 4]; 2],
    hashes: [&str; 2],
) {
    let dir = root.join("runs").join(variant).join(run_id);
    std::fs::create_dir_all(&dir).unwrap();
    let run = json!({
        "results": {
            "t1": {"acc,none": scores[0].0, "acc_stderr,none": scores[0].1},
            "t2": {"exact_match,f": scores[1].0, "exact_match_stderr,f": scores[1].1},
        },
        "assay": {"variant": variant, "run_id": run_id, "created_at": created, "complete": true,
                  "shard": null, "version": "0.1.0", "model": {"fingerprint": format!("sha256:{variant}")},
                  "tasks": {"t1": {"config_hash": hashes[0]}, "t2": {"config_hash": hashes[1]}}},
    });
    std::fs::write(dir.join("run.json"), run.to_string()).unwrap();
    let mut task = Vec::new();
    let mut filter = Vec::new();
    let mut hash = Vec::new();
    let mut acc: Vec<Option<f64>> = Vec::new();
    let mut em: Vec<Option<f64>> = Vec::new();
    let (mut prompt_hash, mut target, mut arguments, mut filtered) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (t, values) in docs.iter().enumerate() {
        for (d, v) in values.iter().enumerate() {
            prompt_hash.push(format!("prompt-{t}-{d}"));
            target.push("0".to_string());
            // Prompts carry markup, as any text may: the site shows it as text.
            let q = format!("Question {t}.{d}? <img src=x onerror=window.__pwned=4>");
            arguments.push(json!([[q, " yes"], [q, " no"]]).to_string());
            // The chosen option is right when the value is 1.
            filtered.push(
                if *v == 1.0 {
                    "[[-1.0,true],[-2.0,false]]"
                } else {
                    "[[-2.0,false],[-1.0,true]]"
                }
                .to_string(),
            );
            task.push(format!("t{}", t + 1));
            filter.push(if t == 0 { "none" } else { "f" }.to_string());
            hash.push(format!("doc-{t}-{d}"));
            acc.push((t == 0).then_some(*v));
            em.push((t == 1).then_some(*v));
        }
    }
    let n = task.len();
    let mut df = DataFrame::new(
        n,
        vec![
            Column::new("task".into(), task),
            Column::new("doc_id".into(), (0..n as i64).collect::<Vec<i64>>()),
            Column::new("filter".into(), filter),
            Column::new("doc_hash".into(), hash),
            Column::new("prompt_hash".into(), prompt_hash),
            Column::new("target".into(), target),
            Column::new("arguments".into(), arguments),
            Column::new("filtered_resps".into(), filtered),
            Column::new("acc".into(), acc),
            Column::new("exact_match".into(), em),
        ],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(dir.join("samples.parquet")).unwrap())
        .finish(&mut df)
        .unwrap();
}

pub fn manifest(dir: &Path, name: &str, base: Option<&str>) {
    std::fs::create_dir_all(dir).unwrap();
    let (relation, base) = match base {
        Some(b) => ("quantization", format!("base = \"{b}\"\n")),
        None => ("original", String::new()),
    };
    std::fs::write(
        dir.join(format!("{name}.toml")),
        format!("name = \"{name}\"\n{base}relation = \"{relation}\"\nprecision = \"Q4\"\n[backend]\nspec = \"llama:x.gguf\"\n"),
    )
    .unwrap();
}

/// Builds the leaderboard with the suite's configs hashing as [`HASHES`].
pub fn build(
    results: &Path,
    variants: &Path,
    suite: &Path,
    out: &Path,
) -> Result<assay::leaderboard::Written, assay::leaderboard::LeaderboardError> {
    let hashes = [("t1", HASHES[0]), ("t2", HASHES[1])]
        .map(|(t, h)| (t.to_string(), h.to_string()))
        .into_iter()
        .collect();
    let inputs = assay::leaderboard::Inputs {
        results,
        variants,
        suite,
        config_hashes: Some(&hashes),
    };
    assay::leaderboard::build(&inputs, out)
}
