//! Compares two runs of the same tasks (say, a CPU and a GPU build of the
//! same model): the largest per-item log-likelihood difference over every
//! request both answered, and each task's score in both.
//!
//! Usage: compare_runs RUN_DIR_A RUN_DIR_B

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::Value;

fn main() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let [a, b] = args.as_slice() else {
        bail!("usage: compare_runs RUN_DIR_A RUN_DIR_B");
    };
    let read = |dir: &PathBuf| -> Result<_> {
        let run = assay::results::read_run(dir)?.run;
        let samples = assay::results::read_samples(&dir.join("samples.parquet"))
            .with_context(|| format!("{}: samples.parquet", dir.display()))?;
        Ok((run, samples))
    };
    let (run_a, samples_a) = read(a)?;
    let (run_b, samples_b) = read(b)?;
    // Log-likelihood responses are `[logprob, is_greedy]` (or `[logprob]`).
    let logprobs = |resps: &Value| -> Vec<f64> {
        resps
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_array()?.first()?.as_f64())
            .collect()
    };
    let by_doc: HashMap<(String, usize, String), Vec<f64>> = samples_b
        .iter()
        .map(|s| {
            (
                (s.task.clone(), s.doc_id, s.filter.clone()),
                logprobs(&s.resps),
            )
        })
        .collect();
    let (mut differences, mut largest, mut at) = (Vec::new(), 0.0f64, String::new());
    for s in &samples_a {
        let Some(other) = by_doc.get(&(s.task.clone(), s.doc_id, s.filter.clone())) else {
            continue;
        };
        for (x, y) in logprobs(&s.resps).iter().zip(other) {
            let d = (x - y).abs();
            differences.push(d);
            if d > largest {
                largest = d;
                at = format!("task {}, document {}", s.task, s.doc_id);
            }
        }
    }
    differences.sort_by(f64::total_cmp);
    let median = differences
        .get(differences.len() / 2)
        .copied()
        .unwrap_or(0.0);
    let mean = differences.iter().sum::<f64>() / differences.len().max(1) as f64;
    println!("per-item log-likelihoods compared: {}", differences.len());
    println!("largest difference: {largest:.6} nats ({at})");
    println!("median difference: {median:.6} nats, mean {mean:.6}");
    for (task, block) in &run_a.results {
        for (key, score) in &block.scores {
            if let Some(other) = run_b.score(task, key) {
                println!(
                    "{task} {key}: {:.4} vs {:.4} (difference {:+.4})",
                    score.value,
                    other.value,
                    other.value - score.value
                );
            }
        }
    }
    Ok(())
}
