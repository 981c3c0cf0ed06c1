//! The leaderboard as polars tables: `leaderboard.parquet` and
//! `leaderboard.csv` (one row per variant, the task columns in suite order)
//! and `per_task.parquet` (one row per variant and task).

use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::{write_error, Board, LeaderboardError, Row, SuiteTask, TaskScore};

fn strings(rows: &[Row], f: impl Fn(&Row) -> Option<String>) -> Vec<Option<String>> {
    rows.iter().map(f).collect()
}

fn numbers(rows: &[Row], f: impl Fn(&Row) -> Option<f64>) -> Vec<Option<f64>> {
    rows.iter().map(f).collect()
}

fn leaderboard_table(board: &Board) -> PolarsResult<DataFrame> {
    let rows = &board.rows;
    let manifest = |f: fn(&crate::variant::Variant) -> Option<String>| {
        strings(rows, move |r| r.manifest.as_ref().and_then(f))
    };
    let fingerprint = strings(rows, |r| {
        r.run
            .run
            .assay
            .model
            .as_ref()
            .map(|m| m.fingerprint.clone())
    });
    let mut columns = vec![
        Column::new(
            "rank".into(),
            rows.iter().map(|r| r.rank).collect::<Vec<_>>(),
        ),
        Column::new(
            "tie_group".into(),
            rows.iter().map(|r| r.tie_group).collect::<Vec<_>>(),
        ),
        Column::new(
            "variant".into(),
            rows.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        ),
        Column::new("display_name".into(), manifest(|m| m.display_name.clone())),
        Column::new(
            "relation".into(),
            manifest(|m| Some(m.relation.name().to_string())),
        ),
        Column::new("base".into(), manifest(|m| m.base.clone())),
        Column::new("precision".into(), manifest(|m| m.precision.clone())),
        Column::new("contributor".into(), manifest(|m| m.contributor.clone())),
        Column::new("license".into(), manifest(|m| m.license.clone())),
        Column::new(
            "parameters".into(),
            rows.iter()
                .map(|r| r.manifest.as_ref().and_then(|m| m.parameters))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "bits_per_weight".into(),
            numbers(rows, |r| {
                r.manifest.as_ref().and_then(|m| m.bits_per_weight)
            }),
        ),
        Column::new("average".into(), numbers(rows, |r| r.average)),
        Column::new("average_stderr".into(), numbers(rows, |r| r.average_stderr)),
        Column::new(
            "delta_to_base".into(),
            numbers(rows, |r| r.delta.map(|d| d.mean)),
        ),
        Column::new(
            "delta_stderr".into(),
            numbers(rows, |r| r.delta.map(|d| d.stderr)),
        ),
        Column::new(
            "delta_ci_low".into(),
            numbers(rows, |r| r.delta.map(|d| d.interval().0)),
        ),
        Column::new(
            "delta_ci_high".into(),
            numbers(rows, |r| r.delta.map(|d| d.interval().1)),
        ),
        Column::new(
            "delta_documents".into(),
            rows.iter()
                .map(|r| r.delta.map(|d| d.documents as u64))
                .collect::<Vec<_>>(),
        ),
        Column::new("delta_note".into(), strings(rows, |r| r.delta_note.clone())),
    ];
    for task in board.suite.keys() {
        let pick = |f: fn(&TaskScore) -> Option<f64>| {
            numbers(rows, |r| r.tasks[task].as_ref().and_then(f))
        };
        columns.push(Column::new(task.as_str().into(), pick(|t| Some(t.score))));
        columns.push(Column::new(
            format!("{task}_stderr").into(),
            pick(|t| t.stderr),
        ));
        columns.push(Column::new(
            format!("{task}_normalized").into(),
            pick(|t| Some(t.normalized)),
        ));
    }
    columns.extend([
        Column::new(
            "stale".into(),
            rows.iter().map(|r| r.is_stale()).collect::<Vec<_>>(),
        ),
        Column::new(
            "stale_tasks".into(),
            rows.iter()
                .map(|r| r.stale_tasks.join(","))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "run_id".into(),
            rows.iter()
                .map(|r| r.run.run_id().to_string())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "run_date".into(),
            rows.iter()
                .map(|r| r.run.created().to_string())
                .collect::<Vec<_>>(),
        ),
        Column::new("model_fingerprint".into(), fingerprint),
        Column::new(
            "assay_version".into(),
            strings(rows, |r| {
                Some(r.run.run.assay.version.clone()).filter(|v| !v.is_empty())
            }),
        ),
        Column::new(
            "git_revision".into(),
            strings(rows, |r| {
                Some(r.run.run.assay.git_revision.clone()).filter(|v| !v.is_empty())
            }),
        ),
    ]);
    DataFrame::new(rows.len(), columns)
}

/// A variant's row with one task of the suite.
type Pair<'a> = (&'a Row, &'a String, &'a SuiteTask);

fn per_task_table(board: &Board) -> PolarsResult<DataFrame> {
    let pairs: Vec<Pair> = board
        .rows
        .iter()
        .flat_map(|row| {
            board
                .suite
                .iter()
                .map(move |(task, spec)| (row, task, spec))
        })
        .collect();
    let strings = |f: &dyn Fn(&Pair) -> String| -> Vec<String> { pairs.iter().map(f).collect() };
    let numbers =
        |f: &dyn Fn(&Pair) -> Option<f64>| -> Vec<Option<f64>> { pairs.iter().map(f).collect() };
    DataFrame::new(
        pairs.len(),
        vec![
            Column::new("variant".into(), strings(&|p| p.0.name.clone())),
            Column::new("task".into(), strings(&|p| p.1.clone())),
            Column::new("metric".into(), strings(&|p| p.2.metric.clone())),
            Column::new("filter".into(), strings(&|p| p.2.filter.clone())),
            Column::new(
                "score".into(),
                numbers(&|p| p.0.tasks[p.1].map(|t| t.score)),
            ),
            Column::new(
                "stderr".into(),
                numbers(&|p| p.0.tasks[p.1].and_then(|t| t.stderr)),
            ),
            Column::new(
                "normalized".into(),
                numbers(&|p| p.0.tasks[p.1].map(|t| t.normalized)),
            ),
            Column::new("baseline".into(), numbers(&|p| Some(p.2.baseline))),
            Column::new(
                "delta_to_base".into(),
                numbers(&|p| p.0.task_deltas.get(p.1).map(|d| d.mean)),
            ),
            Column::new(
                "delta_stderr".into(),
                numbers(&|p| p.0.task_deltas.get(p.1).map(|d| d.stderr)),
            ),
            Column::new(
                "stale".into(),
                pairs
                    .iter()
                    .map(|p| p.0.stale_tasks.contains(p.1))
                    .collect::<Vec<bool>>(),
            ),
            Column::new(
                "config_hash".into(),
                pairs
                    .iter()
                    .map(|p| super::entry_hash(&p.0.run, p.1))
                    .collect::<Vec<Option<String>>>(),
            ),
        ],
    )
}

/// Writes the three tables into `out`.
pub fn write(board: &Board, out: &Path) -> Result<Vec<PathBuf>, LeaderboardError> {
    let mut table = leaderboard_table(board).map_err(|e| write_error(out, e))?;
    let mut tasks = per_task_table(board).map_err(|e| write_error(out, e))?;
    let files = vec![
        out.join("leaderboard.parquet"),
        out.join("leaderboard.csv"),
        out.join("per_task.parquet"),
    ];
    let create = |p: &Path| std::fs::File::create(p).map_err(|e| write_error(p, e));
    ParquetWriter::new(create(&files[0])?)
        .finish(&mut table)
        .map_err(|e| write_error(&files[0], e))?;
    CsvWriter::new(create(&files[1])?)
        .finish(&mut table)
        .map_err(|e| write_error(&files[1], e))?;
    ParquetWriter::new(create(&files[2])?)
        .finish(&mut tasks)
        .map_err(|e| write_error(&files[2], e))?;
    Ok(files)
}
