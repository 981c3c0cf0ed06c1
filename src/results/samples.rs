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

/// One document's outcome for one leaderboard metric.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentResult {
    pub doc_id: u32,
    /// The first 8 bytes of `doc_hash`, the key runs are paired on.
    pub doc_key: u64,
    /// The metric's value; none if the row has none.
    pub value: Option<f64>,
    /// `prompt_hash` and the filtered response (JSON), when details were
    /// asked for.
    pub details: Option<(String, String)>,
}

/// One row as [`visit_documents`] shows it, borrowed from the file.
#[derive(Debug, Clone, Copy)]
pub struct DocumentRow<'a> {
    pub doc_id: u32,
    pub doc_key: u64,
    pub value: Option<f64>,
    /// Empty unless details were asked for.
    pub prompt_hash: &'a str,
    pub filtered: &'a str,
}

/// The leading 16 hex digits of a SHA-256 as a number: the pairing key.
pub fn hash_key(hex: &str) -> u64 {
    hex.get(..16)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

/// Calls `visit(k, row)` for each row of each `wanted[k]` metric, in file
/// order, in one read of the columns they need; with `details`, rows carry
/// their prompt hash and filtered response. A metric the file has no column
/// for has no rows. Nothing is copied per row.
pub fn visit_documents(
    path: &Path,
    wanted: &[MetricKey],
    details: bool,
    mut visit: impl FnMut(usize, &DocumentRow),
) -> PolarsResult<()> {
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
    let mut columns: Vec<String> = ["task", "filter", "doc_id", "doc_hash"]
        .map(String::from)
        .to_vec();
    if details {
        columns.extend(["prompt_hash", "filtered_resps"].map(String::from));
    }
    columns.extend(metrics.iter().map(|m| m.to_string()));
    let df = reader.with_columns(Some(columns)).finish()?;
    // Each (task, filter) finds its wanted keys in a map; columns are walked
    // in order, not indexed.
    let mut by_place: std::collections::HashMap<(&str, &str), Vec<usize>> = Default::default();
    for (k, key) in wanted.iter().enumerate() {
        if metrics.contains(key.metric.as_str()) {
            by_place
                .entry((key.task.as_str(), key.filter.as_str()))
                .or_default()
                .push(k);
        }
    }
    // Each metric column once, however many tasks share it.
    let mut columns_by_metric: std::collections::HashMap<&str, Vec<Option<f64>>> =
        Default::default();
    for metric in &metrics {
        let column = df.column(metric)?.cast(&DataType::Float64)?;
        columns_by_metric.insert(metric, column.f64()?.iter().collect());
    }
    let values: Vec<Option<&Vec<Option<f64>>>> = wanted
        .iter()
        .map(|k| columns_by_metric.get(k.metric.as_str()))
        .collect();
    let task = df.column("task")?.str()?;
    let filter = df.column("filter")?.str()?;
    let doc_id = df.column("doc_id")?.i64()?;
    let hash = df.column("doc_hash")?.str()?;
    let mut details_iter = if details {
        let prompts = df.column("prompt_hash")?.str()?;
        let filtered = df.column("filtered_resps")?.str()?;
        Some(prompts.iter().zip(filtered.iter()))
    } else {
        None
    };
    let places = task
        .iter()
        .zip(filter.iter())
        .zip(doc_id.iter().zip(hash.iter()));
    for (i, ((t, f), (id, h))) in places.enumerate() {
        let detail = details_iter.as_mut().and_then(|it| it.next());
        let (Some(t), Some(f), Some(id), Some(h)) = (t, f, id, h) else {
            continue;
        };
        let Some(keys) = by_place.get(&(t, f)) else {
            continue;
        };
        let (prompt_hash, filtered) = detail.map_or(("", ""), |(p, r)| {
            (p.unwrap_or_default(), r.unwrap_or_default())
        });
        for &k in keys {
            visit(
                k,
                &DocumentRow {
                    doc_id: u32::try_from(id).unwrap_or(u32::MAX),
                    doc_key: hash_key(h),
                    value: values[k].and_then(|v| v[i]),
                    prompt_hash,
                    filtered,
                },
            );
        }
    }
    Ok(())
}

/// The rows of the `wanted` metrics, by metric (see [`visit_documents`]).
pub fn read_documents(
    path: &Path,
    wanted: &[MetricKey],
    details: bool,
) -> PolarsResult<std::collections::HashMap<MetricKey, Vec<DocumentResult>>> {
    let mut rows: Vec<Vec<DocumentResult>> = vec![Vec::new(); wanted.len()];
    visit_documents(path, wanted, details, |k, row| {
        rows[k].push(DocumentResult {
            doc_id: row.doc_id,
            doc_key: row.doc_key,
            value: row.value,
            details: details.then(|| (row.prompt_hash.to_string(), row.filtered.to_string())),
        });
    })?;
    Ok(wanted.iter().cloned().zip(rows).collect())
}

/// What a reader of the leaderboard's drill-down needs to show a prompt:
/// the prompt itself, the continuations offered (multiple choice) and the
/// target, for each `prompt_hash` in `wanted` of one task.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptRecord {
    pub prompt: String,
    pub choices: Vec<String>,
    pub target: String,
}

/// The prompt of each document of `task`, by document id.
pub fn read_prompts(
    path: &Path,
    task: &str,
) -> PolarsResult<std::collections::BTreeMap<u32, PromptRecord>> {
    let file = std::fs::File::open(path)?;
    let columns = ["task", "doc_id", "arguments", "target"];
    let df = ParquetReader::new(file)
        .with_columns(Some(columns.iter().map(|c| (*c).into()).collect()))
        .finish()?;
    let tasks = df.column("task")?.str()?;
    let ids = df.column("doc_id")?.i64()?;
    let arguments = df.column("arguments")?.str()?;
    let targets = df.column("target")?.str()?;
    let mut out = std::collections::BTreeMap::new();
    for i in 0..df.height() {
        let Some(id) = ids.get(i).and_then(|d| u32::try_from(d).ok()) else {
            continue;
        };
        // Rows repeat per filter: the first one of a document is enough.
        if tasks.get(i) != Some(task) || out.contains_key(&id) {
            continue;
        }
        let args: Value = arguments
            .get(i)
            .and_then(|a| serde_json::from_str(a).ok())
            .unwrap_or(Value::Null);
        let requests = args.as_array().cloned().unwrap_or_default();
        let prompt = requests
            .first()
            .and_then(|r| r[0].as_str())
            .unwrap_or_default()
            .to_string();
        // Continuations are strings (log-likelihood); a generation's second
        // argument is its options object.
        let choices: Vec<String> = requests
            .iter()
            .filter_map(|r| r.get(1).and_then(Value::as_str).map(str::to_string))
            .collect();
        out.insert(
            id,
            PromptRecord {
                prompt,
                choices,
                target: targets.get(i).unwrap_or_default().to_string(),
            },
        );
    }
    Ok(out)
}

/// One field of each document of `task` (from the `doc` column), by
/// document key: what the gate clusters documents by.
pub fn read_doc_field(
    path: &Path,
    task: &str,
    field: &str,
) -> PolarsResult<std::collections::HashMap<u64, String>> {
    let file = std::fs::File::open(path)?;
    let columns = ["task", "doc_hash", "doc"];
    let df = ParquetReader::new(file)
        .with_columns(Some(columns.iter().map(|c| (*c).into()).collect()))
        .finish()?;
    let tasks = df.column("task")?.str()?;
    let hashes = df.column("doc_hash")?.str()?;
    let docs = df.column("doc")?.str()?;
    let mut out = std::collections::HashMap::new();
    for i in 0..df.height() {
        let (Some(h), Some(doc)) = (hashes.get(i), docs.get(i)) else {
            continue;
        };
        if tasks.get(i) != Some(task) {
            continue;
        }
        let doc: Value = serde_json::from_str(doc).unwrap_or(Value::Null);
        let label = match &doc[field] {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.insert(hash_key(h), label);
    }
    Ok(out)
}
