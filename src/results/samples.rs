//! `samples.parquet`: one row per (task, document, filter) with the hashes
//! the gate pairs on, the request arguments, the responses and one column per
//! metric.

use std::collections::BTreeSet;
use std::path::Path;

use polars::prelude::*;
use serde_json::Value;

/// The option a multiple-choice response chose: the highest
/// log-likelihood of a filtered `[[logprob, is_greedy], ...]` with several
/// options (the first of equals, as argmax does).
pub fn chosen_option(filtered: &Value) -> Option<usize> {
    let options = filtered.as_array().filter(|a| a.len() > 1)?;
    let mut best: Option<(usize, f64)> = None;
    for (i, option) in options.iter().enumerate() {
        let ll = option.as_array()?.first()?.as_f64()?;
        if best.is_none_or(|(_, b)| ll > b) {
            best = Some((i, ll));
        }
    }
    best.map(|(i, _)| i)
}

/// What a reader sees of a response that chose no option: a generation's
/// text, or the filtered response as JSON.
pub fn shown_text(filtered: &Value) -> String {
    match filtered {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The hash of which prompt each document of a task was asked: SHA-256
/// over each document's id (4 bytes, little-endian) and prompt hash, in
/// document order. Runs with equal hashes asked the same prompts.
pub fn prompts_hash<'a>(documents: impl Iterator<Item = (u32, &'a str)>) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for (id, prompt_hash) in documents {
        hasher.update(id.to_le_bytes());
        hasher.update(prompt_hash.as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// One row of samples.parquet: one document of a task under one filter.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    pub task: String,
    pub doc_id: usize,
    pub filter: String,
    pub doc_hash: String,
    pub prompt_hash: String,
    pub target_hash: String,
    /// The document, as JSON.
    pub doc: String,
    /// The target as Python's `str()` shows it.
    pub target: String,
    /// The requests' arguments, as a JSON list.
    pub arguments: String,
    /// The raw responses, as a JSON list.
    pub resps: String,
    /// The filtered response(s) the metrics saw.
    pub filtered: Value,
    /// Per metric: the value this document contributes.
    pub metrics: std::collections::BTreeMap<String, f64>,
}

/// Writes the samples.
pub fn write(path: &Path, rows: &[SampleRow]) -> PolarsResult<()> {
    let metric_names: BTreeSet<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
    let text = |f: fn(&SampleRow) -> &String| rows.iter().map(f).cloned().collect::<Vec<String>>();
    let chosen: Vec<Option<usize>> = rows.iter().map(|r| chosen_option(&r.filtered)).collect();
    let mut columns = vec![
        Column::new("task".into(), text(|r| &r.task)),
        Column::new(
            "doc_id".into(),
            rows.iter().map(|r| r.doc_id as i64).collect::<Vec<_>>(),
        ),
        Column::new("filter".into(), text(|r| &r.filter)),
        Column::new("doc_hash".into(), text(|r| &r.doc_hash)),
        Column::new("prompt_hash".into(), text(|r| &r.prompt_hash)),
        Column::new("target_hash".into(), text(|r| &r.target_hash)),
        Column::new("doc".into(), text(|r| &r.doc)),
        Column::new("target".into(), text(|r| &r.target)),
        Column::new("arguments".into(), text(|r| &r.arguments)),
        Column::new("resps".into(), text(|r| &r.resps)),
        Column::new(
            "filtered_resps".into(),
            rows.iter()
                .map(|r| r.filtered.to_string())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "chosen".into(),
            chosen
                .iter()
                .map(|c| c.map(|i| i as i64))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "shown".into(),
            rows.iter()
                .zip(&chosen)
                .map(|(r, c)| c.is_none().then(|| shown_text(&r.filtered)))
                .collect::<Vec<_>>(),
        ),
    ];
    for name in metric_names {
        let values: Vec<Option<f64>> = rows.iter().map(|r| r.metrics.get(name).copied()).collect();
        columns.push(Column::new(name.as_str().into(), values));
    }
    let mut df = DataFrame::new(rows.len(), columns)?;
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
    /// `prompt_hash`, when asked for.
    pub prompt_hash: Option<String>,
}

/// One row as [`visit_documents`] shows it, borrowed from the file.
#[derive(Debug, Clone, Copy, Default)]
pub struct DocumentRow<'a> {
    pub doc_id: u32,
    pub doc_key: u64,
    pub value: Option<f64>,
    /// Empty unless asked for ([`Details::Full`]).
    pub prompt_hash: &'a str,
    /// The option a multiple-choice response chose, as recorded.
    pub chosen: Option<i64>,
    /// Otherwise, the response as recorded for readers; files written
    /// before that was recorded give the filtered response (JSON) in
    /// `filtered` instead.
    pub shown: &'a str,
    pub filtered: &'a str,
}

/// What [`visit_documents`] reads beyond ids, keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Details {
    None,
    /// The responses (`chosen` and `shown`, or `filtered_resps` in older
    /// files).
    Responses,
    /// The responses and each row's prompt hash.
    Full,
    /// Each row's prompt hash only.
    Prompts,
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
    details: Details,
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
    let recorded = present.contains("chosen") && present.contains("shown");
    if matches!(details, Details::Full | Details::Prompts) {
        columns.push("prompt_hash".into());
    }
    if matches!(details, Details::Full | Details::Responses) {
        if recorded {
            columns.extend(["chosen", "shown"].map(String::from));
        } else {
            columns.push("filtered_resps".into());
        }
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
    let strings = |name: &str| -> PolarsResult<Option<&StringChunked>> {
        Ok(if df.schema().contains(name) {
            Some(df.column(name)?.str()?)
        } else {
            None
        })
    };
    let mut prompt_iter = strings("prompt_hash")?.map(|c| c.iter());
    let mut shown_iter = strings("shown")?.map(|c| c.iter());
    let mut filtered_iter = strings("filtered_resps")?.map(|c| c.iter());
    let mut chosen_iter = if df.schema().contains("chosen") {
        Some(df.column("chosen")?.i64()?.iter())
    } else {
        None
    };
    let places = task
        .iter()
        .zip(filter.iter())
        .zip(doc_id.iter().zip(hash.iter()));
    for (i, ((t, f), (id, h))) in places.enumerate() {
        let prompt_hash = next_str(&mut prompt_iter);
        let shown = next_str(&mut shown_iter);
        let filtered = next_str(&mut filtered_iter);
        let chosen = chosen_iter.as_mut().and_then(|it| it.next()).flatten();
        let (Some(t), Some(f), Some(id), Some(h)) = (t, f, id, h) else {
            continue;
        };
        let Some(keys) = by_place.get(&(t, f)) else {
            continue;
        };
        for &k in keys {
            visit(
                k,
                &DocumentRow {
                    doc_id: u32::try_from(id).unwrap_or(u32::MAX),
                    doc_key: hash_key(h),
                    value: values[k].and_then(|v| v[i]),
                    prompt_hash,
                    chosen,
                    shown,
                    filtered,
                },
            );
        }
    }
    Ok(())
}

/// The next string of an optional column walk; empty when absent or null.
fn next_str<'a>(column: &mut Option<impl Iterator<Item = Option<&'a str>>>) -> &'a str {
    column
        .as_mut()
        .and_then(|c| c.next())
        .flatten()
        .unwrap_or_default()
}

/// The rows of the `wanted` metrics, by metric (see [`visit_documents`]),
/// with each row's prompt hash if `prompts`.
pub fn read_documents(
    path: &Path,
    wanted: &[MetricKey],
    prompts: bool,
) -> PolarsResult<std::collections::HashMap<MetricKey, Vec<DocumentResult>>> {
    let mut rows: Vec<Vec<DocumentResult>> = vec![Vec::new(); wanted.len()];
    let mode = if prompts {
        Details::Prompts
    } else {
        Details::None
    };
    visit_documents(path, wanted, mode, |k, row| {
        rows[k].push(DocumentResult {
            doc_id: row.doc_id,
            doc_key: row.doc_key,
            value: row.value,
            prompt_hash: prompts.then(|| row.prompt_hash.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_chosen_option_is_the_first_highest() {
        assert_eq!(
            chosen_option(&json!([[-2.0, false], [-1.0, true], [-3.0, false]])),
            Some(1)
        );
        assert_eq!(
            chosen_option(&json!([[-1.0, false], [-1.0, false]])),
            Some(0)
        );
        // One option (a log-likelihood task) or a generation: no choice.
        assert_eq!(chosen_option(&json!([[-1.0, true]])), None);
        assert_eq!(chosen_option(&json!("42")), None);
    }

    #[test]
    fn prompt_hashes_depend_on_documents_and_prompts() {
        let a = prompts_hash([(0, "aa"), (1, "bb")].into_iter());
        assert_ne!(a, prompts_hash([(0, "aa"), (2, "bb")].into_iter()));
        assert_ne!(a, prompts_hash([(0, "aa"), (1, "bc")].into_iter()));
        assert_eq!(a, prompts_hash([(0, "aa"), (1, "bb")].into_iter()));
    }
}
