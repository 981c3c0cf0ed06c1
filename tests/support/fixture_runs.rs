//! Fixture runs for the leaderboard tests: run folders written by assay's
//! own run writer (run.json with scores and config hashes, samples.parquet
//! with per-document values, prompts and responses), and manifests.

#![allow(dead_code)]

use std::path::Path;

use assay::backend::ModelIdentity;
use assay::results::{MetricBlock, Run, SampleRow, TaskRecord};
use assay::stats::Score;
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
    write_run_edited(root, variant, run_id, created, scores, docs, |_| {});
}

/// [`write_run`], with `edit` applied to the run.json record before it is
/// written.
pub fn write_run_edited(
    root: &Path,
    variant: &str,
    run_id: &str,
    created: &str,
    scores: [(f64, f64); 2],
    docs: [[f64; 4]; 2],
    edit: impl FnOnce(&mut Run),
) {
    let dir = root.join("runs").join(variant).join(run_id);
    let mut run = Run::default();
    for (t, (key, (value, stderr))) in [("acc,none", scores[0]), ("exact_match,f", scores[1])]
        .into_iter()
        .enumerate()
    {
        let name = format!("t{}", t + 1);
        let mut block = MetricBlock {
            alias: name.clone(),
            ..MetricBlock::default()
        };
        block.scores.insert(
            key.to_string(),
            Score {
                value,
                stderr: Some(stderr),
            },
        );
        run.results.insert(name.clone(), block);
        run.assay.tasks.insert(
            name,
            TaskRecord {
                config_hash: HASHES[t].to_string(),
                ..TaskRecord::default()
            },
        );
    }
    run.assay.variant = Some(variant.to_string());
    run.assay.run_id = run_id.to_string();
    run.assay.created_at = created.to_string();
    run.assay.complete = true;
    run.assay.version = "0.1.0".to_string();
    run.assay.model = Some(ModelIdentity {
        spec: "llama:x.gguf".into(),
        fingerprint: format!("sha256:{variant}"),
        details: Default::default(),
    });
    edit(&mut run);
    let mut rows = Vec::new();
    for (t, values) in docs.iter().enumerate() {
        for (d, v) in values.iter().enumerate() {
            // Prompts carry markup, as any text may: the site shows it as text.
            let q = format!("Question {t}.{d}? <img src=x onerror=window.__pwned=4>");
            // The chosen option is right when the value is 1.
            let filtered = if *v == 1.0 {
                json!([[-1.0, true], [-2.0, false]])
            } else {
                json!([[-2.0, false], [-1.0, true]])
            };
            let metric = if t == 0 { "acc" } else { "exact_match" };
            rows.push(SampleRow {
                task: format!("t{}", t + 1),
                doc_id: t * values.len() + d,
                filter: if t == 0 { "none" } else { "f" }.to_string(),
                doc_hash: format!("doc-{t}-{d}"),
                prompt_hash: format!("prompt-{t}-{d}"),
                target_hash: String::new(),
                doc: "{}".into(),
                target: "0".to_string(),
                arguments: json!([[q, " yes"], [q, " no"]]).to_string(),
                resps: "[]".into(),
                filtered,
                metrics: [(metric.to_string(), *v)].into_iter().collect(),
            });
        }
    }
    assay::results::write_run(&dir, &run, &rows).unwrap();
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
