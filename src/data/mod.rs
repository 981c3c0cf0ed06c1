//! Document sources: where a task's documents come from.
//!
//! A task names a source the way lm-eval does (`dataset_path: json|csv|parquet`
//! with `dataset_kwargs.data_files`); this module resolves the files, reads
//! them into JSON documents (one `serde_json` map per row) and fingerprints
//! every file it read so a run can say exactly which data it scored.
//! `dataset_path: bigbench` reads the examples of a BIG-bench `task.json`
//! the same way (see [`bigbench`]).

pub mod bigbench;
mod frame;
mod json;
mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::request::sha256_hex;

/// One document: a row of a dataset, by column name.
pub type Doc = Map<String, Value>;

/// The splits of a dataset, by split name, plus the SHA-256 of each file read.
#[derive(Debug, Default, Clone)]
pub struct Dataset {
    pub splits: BTreeMap<String, Vec<Doc>>,
    /// file path (as given) -> sha256
    pub files: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{config}: dataset file {file}: {message}")]
    File {
        config: PathBuf,
        file: PathBuf,
        message: String,
    },
    #[error("{config}: field `{field}`: {message}")]
    Config {
        config: PathBuf,
        field: String,
        message: String,
    },
}

/// Which kind of local file a `dataset_path` names.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Json,
    Csv,
    Parquet,
    BigBench,
}

/// Loads the dataset a task config names. `config_path` anchors relative data
/// file paths (the YAML's folder first, then the working directory) and is
/// named in every error.
pub fn load(
    dataset_path: Option<&str>,
    dataset_name: Option<&str>,
    dataset_kwargs: &Map<String, Value>,
    config_path: &Path,
) -> Result<Dataset, DataError> {
    let config_err = |field: &str, message: String| DataError::Config {
        config: config_path.to_path_buf(),
        field: field.to_string(),
        message,
    };
    let path = dataset_path.ok_or_else(|| {
        config_err(
            "dataset_path",
            "missing: set `dataset_path: json` (or csv, parquet, bigbench) with `dataset_kwargs.data_files`"
                .into(),
        )
    })?;
    let format = match path {
        "json" => Format::Json,
        "csv" => Format::Csv,
        "parquet" => Format::Parquet,
        "bigbench" => Format::BigBench,
        other => {
            return Err(config_err(
                "dataset_path",
                format!(
                    "`{other}` looks like a Hugging Face Hub dataset{}; Hub datasets are not supported yet: \
                     download the split files and use `dataset_path: json|csv|parquet` with `dataset_kwargs.data_files`",
                    dataset_name.map(|n| format!(" (config `{n}`)")).unwrap_or_default()
                ),
            ))
        }
    };
    for key in dataset_kwargs.keys() {
        if !matches!(
            key.as_str(),
            "data_files" | "field" | "trust_remote_code" | "revision"
        ) {
            return Err(config_err(
                &format!("dataset_kwargs.{key}"),
                "is not supported for local files (use data_files, and field for JSON)".into(),
            ));
        }
    }
    let files = split_files(dataset_kwargs.get("data_files"))
        .ok_or_else(|| config_err("dataset_kwargs.data_files", "missing or malformed: give a file, a list of files, or a mapping from split name to file(s)".into()))?;
    let field = dataset_kwargs.get("field").and_then(Value::as_str);
    let mut dataset = Dataset::default();
    for (split, names) in files {
        let mut docs = Vec::new();
        for name in names {
            let file = resolve(&name, config_path);
            let bytes = std::fs::read(&file).map_err(|e| DataError::File {
                config: config_path.to_path_buf(),
                file: file.clone(),
                message: format!(
                    "cannot read ({e}); data_files paths are relative to the YAML file's folder"
                ),
            })?;
            dataset.files.insert(name.clone(), sha256_hex(&bytes));
            let file_err = |message: String| DataError::File {
                config: config_path.to_path_buf(),
                file: file.clone(),
                message,
            };
            let rows = match format {
                Format::Json => json::read(&bytes, field).map_err(file_err)?,
                Format::Csv => frame::read_csv(&file).map_err(file_err)?,
                Format::Parquet => frame::read_parquet(&file).map_err(file_err)?,
                Format::BigBench => bigbench::read(&bytes).map_err(file_err)?,
            };
            docs.extend(rows);
        }
        // BIG-bench documents are built field by field and scored as
        // BIG-bench reads them, not through an Arrow schema.
        let docs = if format == Format::BigBench {
            docs
        } else {
            schema::unify(docs)
        };
        dataset.splits.insert(split, docs);
    }
    Ok(dataset)
}

/// `data_files` as HF datasets accepts it: a path or list (the `train`
/// split), or a mapping from split to path or list.
fn split_files(value: Option<&Value>) -> Option<BTreeMap<String, Vec<String>>> {
    fn names(v: &Value) -> Option<Vec<String>> {
        match v {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect(),
            _ => None,
        }
    }
    let mut out = BTreeMap::new();
    match value? {
        Value::Object(m) => {
            for (split, v) in m {
                out.insert(split.clone(), names(v)?);
            }
        }
        other => {
            out.insert("train".to_string(), names(other)?);
        }
    }
    Some(out)
}

fn resolve(name: &str, config_path: &Path) -> PathBuf {
    let p = PathBuf::from(name);
    if p.is_absolute() {
        return p;
    }
    let beside = config_path.parent().unwrap_or(Path::new(".")).join(&p);
    if beside.exists() {
        beside
    } else {
        p
    }
}
