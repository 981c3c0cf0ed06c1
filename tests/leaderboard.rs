//! Leaderboard tables from fixture runs whose numbers are worked out by hand
//! below: normalization by baseline, the average and its standard error,
//! ranks, tie groups, the latest complete run per variant, and the paired
//! delta to a base.

use std::path::Path;

use polars::prelude::*;
use serde_json::json;

const SUITE: &str = "group: s\ntask: [t1, t2]\nmetadata:\n  leaderboard:\n    \
    t1: {metric: acc, filter: none, baseline: 0.25}\n    \
    t2: {metric: exact_match, filter: f, baseline: 0.0}\n";

/// A run folder: run.json with the two tasks' scores, and samples with
/// per-document values (t1's acc, t2's exact_match).
fn write_run(
    root: &Path,
    variant: &str,
    run_id: &str,
    created: &str,
    scores: [(f64, f64); 2],
    docs: [[f64; 4]; 2],
) {
    let dir = root.join("runs").join(variant).join(run_id);
    std::fs::create_dir_all(&dir).unwrap();
    let run = json!({
        "results": {
            "t1": {"acc,none": scores[0].0, "acc_stderr,none": scores[0].1},
            "t2": {"exact_match,f": scores[1].0, "exact_match_stderr,f": scores[1].1},
        },
        "assay": {"variant": variant, "run_id": run_id, "created_at": created, "complete": true,
                  "shard": null, "version": "0.1.0", "model": {"fingerprint": format!("sha256:{variant}")}},
    });
    std::fs::write(dir.join("run.json"), run.to_string()).unwrap();
    let mut task = Vec::new();
    let mut filter = Vec::new();
    let mut hash = Vec::new();
    let mut acc: Vec<Option<f64>> = Vec::new();
    let mut em: Vec<Option<f64>> = Vec::new();
    for (t, values) in docs.iter().enumerate() {
        for (d, v) in values.iter().enumerate() {
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
            Column::new("acc".into(), acc),
            Column::new("exact_match".into(), em),
        ],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(dir.join("samples.parquet")).unwrap())
        .finish(&mut df)
        .unwrap();
}

fn manifest(dir: &Path, name: &str, base: Option<&str>) {
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

fn column_str(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    let ca = df.column(name).unwrap().str().unwrap().clone();
    (0..ca.len())
        .map(|i| ca.get(i).map(str::to_string))
        .collect()
}

fn column_f64(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    let ca = df.column(name).unwrap().f64().unwrap().clone();
    (0..ca.len()).map(|i| ca.get(i)).collect()
}

fn close(got: Option<f64>, want: f64) {
    let got = got.expect("a value");
    assert!((got - want).abs() < 1e-4, "{got} vs {want}");
}

#[test]
fn tables_from_fixture_runs() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let suite = dir.path().join("suite.yaml");
    std::fs::write(&suite, SUITE).unwrap();
    // orig: t1 0.75 (docs 1,1,1,0), t2 0.5 (1,0,1,0); an older run is ignored.
    write_run(
        &results,
        "orig",
        "r-old",
        "2026-01-01T00:00:00Z",
        [(0.1, 0.1), (0.1, 0.1)],
        [[0.0; 4]; 2],
    );
    write_run(
        &results,
        "orig",
        "r-new",
        "2026-02-01T00:00:00Z",
        [(0.75, 0.1), (0.5, 0.1)],
        [[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0]],
    );
    // quant (base orig): t1 0.5 (1,0,1,0), t2 0.5 (1,0,0,1).
    write_run(
        &results,
        "quant",
        "r1",
        "2026-02-02T00:00:00Z",
        [(0.5, 0.1), (0.5, 0.1)],
        [[1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0]],
    );
    // other (no manifest): at chance.
    write_run(
        &results,
        "other",
        "r1",
        "2026-02-03T00:00:00Z",
        [(0.25, 0.05), (0.0, 0.01)],
        [[0.0; 4]; 2],
    );
    // A run still being written is not read.
    std::fs::create_dir_all(results.join("runs/quant/.r2.partial")).unwrap();
    let variants = dir.path().join("variants");
    manifest(&variants, "orig", None);
    manifest(&variants, "quant", Some("orig"));
    let out = dir.path().join("board");

    let written = assay::leaderboard::build(&results, &variants, &suite, &out).unwrap();
    assert_eq!(written.variants, 3);
    assert!(out.join("leaderboard.csv").is_file());
    let df = ParquetReader::new(std::fs::File::open(out.join("leaderboard.parquet")).unwrap())
        .finish()
        .unwrap();
    let names = column_str(&df, "variant");
    assert_eq!(
        names,
        [
            Some("orig".into()),
            Some("quant".into()),
            Some("other".into())
        ]
    );
    // Normalized: t1 (s - 0.25) / 0.75, t2 as is.
    let avg = column_f64(&df, "average");
    close(avg[0], (2.0 / 3.0 + 0.5) / 2.0);
    close(avg[1], (1.0 / 3.0 + 0.5) / 2.0);
    close(avg[2], 0.0);
    // se of the average: sqrt((0.1 / 0.75)^2 + 0.1^2) / 2.
    close(
        column_f64(&df, "average_stderr")[0],
        (0.1f64 / 0.75).hypot(0.1) / 2.0,
    );
    // orig and quant differ by 0.1667 < 1.96 * sqrt(2) * 0.0833: one tie group.
    let tie_ca = df.column("tie_group").unwrap().u32().unwrap().clone();
    let tie: Vec<Option<u32>> = (0..tie_ca.len()).map(|i| tie_ca.get(i)).collect();
    assert_eq!(tie, [Some(1), Some(1), Some(2)]);
    // Paired delta of quant to orig: t1 diffs (0,-1,0,0) -> -0.25 / 0.75, se
    // 0.25 / 0.75; t2 diffs (0,0,-1,1) -> 0, se sqrt(2/3/4); averaged.
    let delta = column_f64(&df, "delta_to_base");
    assert_eq!(delta[0], None);
    close(delta[1], (-1.0 / 3.0) / 2.0);
    let se = ((1.0f64 / 3.0).powi(2) + 2.0 / 3.0 / 4.0).sqrt() / 2.0;
    close(
        column_f64(&df, "delta_ci_low")[1],
        -1.0 / 6.0 - 1.959964 * se,
    );
    close(
        column_f64(&df, "delta_ci_high")[1],
        -1.0 / 6.0 + 1.959964 * se,
    );
    let runs = column_str(&df, "run_id");
    assert_eq!(runs[0].as_deref(), Some("r-new"));
    let relation = column_str(&df, "relation");
    assert_eq!(
        relation,
        [Some("original".into()), Some("quantization".into()), None]
    );

    let per_task = ParquetReader::new(std::fs::File::open(out.join("per_task.parquet")).unwrap())
        .finish()
        .unwrap();
    assert_eq!(per_task.height(), 6);
}

#[test]
fn a_suite_without_leaderboard_tasks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.yaml");
    std::fs::write(&suite, "group: s\ntask: [t1]\n").unwrap();
    let err = assay::leaderboard::build(dir.path(), dir.path(), &suite, &dir.path().join("o"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("suite.yaml") && err.contains("metadata.leaderboard"),
        "{err}"
    );
}

#[test]
fn missing_runs_and_broken_manifests_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.yaml");
    std::fs::write(&suite, SUITE).unwrap();
    let out = dir.path().join("o");
    let err = assay::leaderboard::build(&dir.path().join("nowhere"), dir.path(), &suite, &out)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nowhere") && err.contains("runs folder"),
        "{err}"
    );

    let results = dir.path().join("results");
    write_run(
        &results,
        "orig",
        "r1",
        "2026-02-01T00:00:00Z",
        [(0.5, 0.1), (0.5, 0.1)],
        [[1.0; 4]; 2],
    );
    let variants = dir.path().join("variants");
    std::fs::create_dir_all(&variants).unwrap();
    std::fs::write(
        variants.join("orig.toml"),
        "name = \"orig\"\nrelation = \"sideways\"\n",
    )
    .unwrap();
    let err = assay::leaderboard::build(&results, &variants, &suite, &out)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("orig.toml") && err.contains("assay variants validate"),
        "{err}"
    );
}
