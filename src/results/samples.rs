//! `samples.parquet`: one row per (task, document, filter) with the hashes
//! the gate pairs on, the request arguments, the responses and one column per
//! metric.

use std::collections::BTreeSet;
use std::path::Path;

use polars::prelude::*;
use serde_json::Value;

use super::doc_hashes;
use crate::engine::score::TaskScores;
use crate::engine::Plan;
use crate::prompt::pyvalue::py_str;

pub fn write(path: &Path, plan: &Plan, tasks: &[TaskScores]) -> PolarsResult<()> {
    let metric_names: BTreeSet<String> = tasks
        .iter()
        .flat_map(|t| t.samples.iter().flat_map(|s| s.metrics.keys().cloned()))
        .collect();
    let mut task_col = Vec::new();
    let mut doc_id = Vec::new();
    let mut filter = Vec::new();
    let (mut doc_hash, mut prompt_hash, mut target_hash) = (Vec::new(), Vec::new(), Vec::new());
    let (mut doc_col, mut target, mut arguments, mut resps, mut filtered) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut metric_cols: Vec<Vec<Option<f64>>> = vec![Vec::new(); metric_names.len()];
    for (planned, scored) in plan.tasks.iter().zip(tasks) {
        // Samples repeat per filter; look documents up by id, not by scan.
        let by_id: std::collections::HashMap<usize, &crate::prompt::Prepared> =
            planned.docs.iter().map(|d| (d.doc_id, d)).collect();
        for sample in &scored.samples {
            let Some(doc) = by_id.get(&sample.doc_id) else {
                continue;
            };
            let prompt = doc.prompt();
            let (dh, ph, th) = doc_hashes(&doc.doc, &prompt, &doc.target);
            task_col.push(planned.config.task.clone());
            doc_id.push(doc.doc_id as i64);
            filter.push(sample.filter.clone());
            doc_hash.push(dh);
            prompt_hash.push(ph);
            target_hash.push(th);
            doc_col.push(Value::Object(doc.doc.clone()).to_string());
            target.push(py_str(&doc.target));
            arguments.push(
                Value::Array(doc.requests.iter().map(|r| r.arguments()).collect()).to_string(),
            );
            resps.push(Value::Array(sample.resps.clone()).to_string());
            filtered.push(sample.filtered.to_string());
            for (col, name) in metric_cols.iter_mut().zip(&metric_names) {
                col.push(sample.metrics.get(name).copied());
            }
        }
    }
    let mut columns = vec![
        Column::new("task".into(), task_col),
        Column::new("doc_id".into(), doc_id),
        Column::new("filter".into(), filter),
        Column::new("doc_hash".into(), doc_hash),
        Column::new("prompt_hash".into(), prompt_hash),
        Column::new("target_hash".into(), target_hash),
        Column::new("doc".into(), doc_col),
        Column::new("target".into(), target),
        Column::new("arguments".into(), arguments),
        Column::new("resps".into(), resps),
        Column::new("filtered_resps".into(), filtered),
    ];
    for (name, values) in metric_names.iter().zip(metric_cols) {
        columns.push(Column::new(name.as_str().into(), values));
    }
    let height = columns.first().map_or(0, |c| c.len());
    let mut df = DataFrame::new(height, columns)?;
    let file = std::fs::File::create(path)?;
    ParquetWriter::new(file).finish(&mut df)?;
    Ok(())
}

/// What merging shards needs of one row of a samples.parquet.
#[derive(Debug, Clone)]
pub struct SampleRecord {
    pub task: String,
    pub doc_id: usize,
    pub filter: String,
    pub prompt_hash: String,
    /// The raw responses, one per request (times `repeats`), as JSON.
    pub resps: Value,
}

/// Reads the rows of a samples.parquet that merging needs.
pub fn read(path: &Path) -> PolarsResult<Vec<SampleRecord>> {
    let file = std::fs::File::open(path)?;
    let columns = ["task", "doc_id", "filter", "prompt_hash", "resps"];
    let df = ParquetReader::new(file)
        .with_columns(Some(columns.iter().map(|c| (*c).into()).collect()))
        .finish()?;
    let task = df.column("task")?.str()?;
    let doc_id = df.column("doc_id")?.i64()?;
    let filter = df.column("filter")?.str()?;
    let prompt_hash = df.column("prompt_hash")?.str()?;
    let resps = df.column("resps")?.str()?;
    let mut rows = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let bad = |what: &str| polars_err!(ComputeError: "row {i}: {what} is missing or malformed");
        rows.push(SampleRecord {
            task: task.get(i).ok_or_else(|| bad("task"))?.to_string(),
            doc_id: doc_id
                .get(i)
                .and_then(|d| usize::try_from(d).ok())
                .ok_or_else(|| bad("doc_id"))?,
            filter: filter.get(i).unwrap_or("none").to_string(),
            prompt_hash: prompt_hash.get(i).unwrap_or_default().to_string(),
            resps: resps
                .get(i)
                .and_then(|r| serde_json::from_str(r).ok())
                .ok_or_else(|| bad("resps"))?,
        });
    }
    Ok(rows)
}

/// One metric of one task under one filter, as a leaderboard counts it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetricKey {
    pub task: String,
    pub filter: String,
    pub metric: String,
}

/// Per-document values of the `wanted` metrics, by `doc_hash`, read in one
/// pass over the columns they need. A metric the file has no column for
/// has no values.
pub fn read_metric_values(
    path: &Path,
    wanted: &[MetricKey],
) -> PolarsResult<std::collections::HashMap<MetricKey, std::collections::HashMap<String, f64>>> {
    let file = std::fs::File::open(path)?;
    let mut reader = ParquetReader::new(file);
    let present: BTreeSet<String> = reader
        .schema()?
        .iter_names()
        .map(|n| n.to_string())
        .collect();
    let metrics: BTreeSet<&str> = wanted
        .iter()
        .map(|k| k.metric.as_str())
        .filter(|m| present.contains(*m))
        .collect();
    let mut columns: Vec<String> = vec!["task".into(), "filter".into(), "doc_hash".into()];
    columns.extend(metrics.iter().map(|m| m.to_string()));
    let df = reader.with_columns(Some(columns)).finish()?;
    let task = df.column("task")?.str()?.clone();
    let filter = df.column("filter")?.str()?.clone();
    let hash = df.column("doc_hash")?.str()?.clone();
    let mut out: std::collections::HashMap<MetricKey, std::collections::HashMap<String, f64>> =
        wanted
            .iter()
            .map(|k| (k.clone(), Default::default()))
            .collect();
    for key in wanted
        .iter()
        .filter(|k| metrics.contains(k.metric.as_str()))
    {
        let values = df.column(&key.metric)?.cast(&DataType::Float64)?;
        let values = values.f64()?;
        let found = out.entry(key.clone()).or_default();
        for i in 0..df.height() {
            if task.get(i) == Some(key.task.as_str()) && filter.get(i) == Some(key.filter.as_str())
            {
                if let (Some(h), Some(v)) = (hash.get(i), values.get(i)) {
                    found.insert(h.to_string(), v);
                }
            }
        }
    }
    Ok(out)
}
