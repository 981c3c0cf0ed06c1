//! Leaderboard tables from fixture runs whose numbers are worked out by hand
//! below: normalization by baseline, the average and its standard error,
//! ranks, tie groups, the latest complete run per variant, and the paired
//! delta to a base.

#[path = "support/fixture_runs.rs"]
mod fixture_runs;

use std::path::Path;

use fixture_runs::{build, manifest, workspace, write_run, write_run_edited, SUITE};
use polars::prelude::*;

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
    let (dir, results, suite) = workspace();
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

    let written = build(&results, &variants, &suite, &out).unwrap();
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
    let err = build(dir.path(), dir.path(), &suite, &dir.path().join("o"))
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
    let err = build(&dir.path().join("nowhere"), dir.path(), &suite, &out)
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
    let err = build(&results, &variants, &suite, &out)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("orig.toml") && err.contains("assay variants validate"),
        "{err}"
    );
}

#[test]
fn stale_runs_are_flagged_and_not_ranked() {
    let (dir, results, suite) = workspace();
    let docs = [[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0]];
    write_run(
        &results,
        "orig",
        "r1",
        "2026-02-01T00:00:00Z",
        [(0.75, 0.1), (0.5, 0.1)],
        docs,
    );
    // quant's best score, but t1's config has changed since it was scored.
    write_run_edited(
        &results,
        "quant",
        "r1",
        "2026-02-02T00:00:00Z",
        [(1.0, 0.0), (1.0, 0.0)],
        [[1.0; 4]; 2],
        |run| run.assay.tasks["t1"].config_hash = "h1-before".into(),
    );
    write_run(
        &results,
        "other",
        "r1",
        "2026-02-03T00:00:00Z",
        [(0.25, 0.05), (0.0, 0.01)],
        [[0.0; 4]; 2],
    );
    let variants = dir.path().join("variants");
    manifest(&variants, "orig", None);
    manifest(&variants, "quant", Some("orig"));
    let out = dir.path().join("board");
    let written = build(&results, &variants, &suite, &out).unwrap();
    assert_eq!((written.variants, written.stale), (3, 1));
    let df = ParquetReader::new(std::fs::File::open(out.join("leaderboard.parquet")).unwrap())
        .finish()
        .unwrap();
    assert_eq!(
        column_str(&df, "variant"),
        [
            Some("orig".into()),
            Some("other".into()),
            Some("quant".into())
        ]
    );
    let rank = df.column("rank").unwrap().u32().unwrap().clone();
    assert_eq!(
        (0..3).map(|i| rank.get(i)).collect::<Vec<_>>(),
        [Some(1), Some(2), None]
    );
    let tie = df.column("tie_group").unwrap().u32().unwrap().clone();
    assert_eq!(tie.get(2), None);
    let stale = df.column("stale").unwrap().bool().unwrap().clone();
    assert_eq!(
        (0..3).map(|i| stale.get(i)).collect::<Vec<_>>(),
        [Some(false), Some(false), Some(true)]
    );
    assert_eq!(column_str(&df, "stale_tasks")[2].as_deref(), Some("t1"));
    // No delta across different configs: not mixed.
    assert_eq!(column_f64(&df, "delta_to_base")[2], None);
    let note = column_str(&df, "delta_note")[2].clone().unwrap();
    assert!(note.contains("t1"), "{note}");
}

/// The drill-down files under `docs/`, relative, sorted.
fn docs_files(out: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![out.join("docs")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(
                    path.strip_prefix(out.join("docs"))
                        .unwrap()
                        .display()
                        .to_string(),
                );
            }
        }
    }
    files.sort();
    files
}

#[test]
fn rebuilds_write_only_new_runs_and_drop_old_ones() {
    let (dir, results, suite) = workspace();
    let docs = [[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0]];
    write_run(
        &results,
        "a",
        "r1",
        "2026-02-01T00:00:00Z",
        [(0.75, 0.1), (0.5, 0.1)],
        docs,
    );
    write_run(
        &results,
        "b",
        "r1",
        "2026-02-01T00:00:00Z",
        [(0.75, 0.1), (0.5, 0.1)],
        docs,
    );
    let variants = dir.path().join("variants");
    let out = dir.path().join("board");
    build(&results, &variants, &suite, &out).unwrap();
    let first = docs_files(&out);
    // A run file each; the two runs saw the same prompts: one file per task.
    assert_eq!(first.len(), 4, "{first:?}");
    assert!(first.contains(&"a/r1.d2.js".to_string()), "{first:?}");
    let a_file = out.join("docs/a/r1.d2.js");
    let written = std::fs::metadata(&a_file).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));

    // A new run of b: a's file is kept as it was, b's old one goes.
    write_run(
        &results,
        "b",
        "r2",
        "2026-03-01T00:00:00Z",
        [(0.75, 0.1), (0.5, 0.1)],
        docs,
    );
    build(&results, &variants, &suite, &out).unwrap();
    let second = docs_files(&out);
    assert_eq!(second.len(), 4, "{second:?}");
    assert!(second.contains(&"b/r2.d2.js".to_string()), "{second:?}");
    assert!(!second.contains(&"b/r1.d2.js".to_string()), "{second:?}");
    assert_eq!(
        std::fs::metadata(&a_file).unwrap().modified().unwrap(),
        written
    );
    let text = std::fs::read_to_string(out.join("docs/b/r2.d2.js")).unwrap();
    assert!(text.starts_with("// prompts: prompts/t1-"), "{text}");
}

#[test]
fn an_unreadable_run_is_named() {
    let (dir, results, suite) = workspace();
    let docs = [[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0]];
    write_run(
        &results,
        "a",
        "r1",
        "2026-02-01T00:00:00Z",
        [(0.75, 0.1), (0.5, 0.1)],
        docs,
    );
    let broken = results.join("runs/a/r2/run.json");
    std::fs::create_dir_all(broken.parent().unwrap()).unwrap();
    std::fs::write(&broken, "{ not json").unwrap();
    let err = build(
        &results,
        &dir.path().join("variants"),
        &suite,
        &dir.path().join("o"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("r2/run.json") && err.contains("not valid JSON"),
        "{err}"
    );
}
