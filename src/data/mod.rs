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
pub mod hub;
mod json;
mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::ErrorKind;
use crate::hash::sha256_hex;

/// One document: a row of a dataset, by column name.
pub type Doc = Map<String, Value>;

/// The splits of a dataset, by split name, plus the SHA-256 of each file read.
#[derive(Debug, Default, Clone)]
pub struct Dataset {
    pub splits: BTreeMap<String, Vec<Doc>>,
    /// file path (as given; `hf://datasets/<repo>@<commit>/<path>` for the
    /// Hub) -> sha256
    pub files: BTreeMap<String, String>,
    /// For a Hub dataset: repo, config, revision asked and commit read.
    pub source: Option<HubSource>,
}

impl Dataset {
    /// The split names, comma-separated.
    pub fn split_names(&self) -> String {
        self.splits.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// The Hub dataset documents came from, pinned to its commit (recorded in
/// run.json).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HubSource {
    pub hub: String,
    pub repo: String,
    pub config: String,
    pub revision: String,
    pub commit: String,
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
    /// The Hub refused or failed to deliver the dataset.
    #[error("{config}: field `dataset_path`: {source}")]
    Hub {
        config: PathBuf,
        #[source]
        source: hub::HubError,
    },
}

impl DataError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            DataError::Hub { source, .. } => source.kind(),
            DataError::File { .. } | DataError::Config { .. } => ErrorKind::Input,
        }
    }
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
/// named in every error. `splits` names the splits the task reads (all if
/// empty): a Hub dataset downloads only those.
pub fn load(
    dataset_path: Option<&str>,
    dataset_name: Option<&str>,
    dataset_kwargs: &Map<String, Value>,
    config_path: &Path,
    splits: &[String],
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
        other if resolve(other, config_path).exists() => {
            return Err(config_err(
                "dataset_path",
                format!(
                    "`{other}` is a local folder or file; assay reads local data as \
                     `dataset_path: json|csv|parquet` with `dataset_kwargs.data_files` naming the files"
                ),
            ))
        }
        other => match hub_ref(other, dataset_name, dataset_kwargs) {
            Some(r) => return load_hub(r, dataset_kwargs, config_path, splits),
            None => {
                return Err(config_err(
                    "dataset_path",
                    format!(
                        "`{other}` is neither a local format (json, csv, parquet, bigbench) nor a \
                         Hugging Face Hub dataset id (`owner/name`)"
                    ),
                ))
            }
        },
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
            let rows = read_rows(format, &file, &bytes, field).map_err(file_err)?;
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

fn read_rows(
    format: Format,
    file: &Path,
    bytes: &[u8],
    field: Option<&str>,
) -> Result<Vec<Doc>, String> {
    match format {
        Format::Json => json::read(bytes, field),
        Format::Csv => frame::read_csv(file),
        Format::Parquet => frame::read_parquet(file),
        Format::BigBench => bigbench::read(bytes),
    }
}

/// The Hub dataset `dataset_path` names, if it is a dataset id: `owner/name`
/// (or a bare legacy name).
pub fn hub_ref(
    dataset_path: &str,
    dataset_name: Option<&str>,
    dataset_kwargs: &Map<String, Value>,
) -> Option<hub::HubRef> {
    let id_part = |p: &str| {
        !p.is_empty()
            && !p.starts_with(['.', '-'])
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let parts: Vec<&str> = dataset_path.split('/').collect();
    let is_local = matches!(
        dataset_path,
        "json" | "csv" | "parquet" | "bigbench" | "text" | "arrow" | "pandas"
    );
    if is_local || parts.len() > 2 || !parts.iter().all(|p| id_part(p)) {
        return None;
    }
    Some(hub::HubRef {
        repo: dataset_path.to_string(),
        config: dataset_name.map(str::to_string),
        revision: dataset_kwargs
            .get("revision")
            .and_then(Value::as_str)
            .unwrap_or("main")
            .to_string(),
    })
}

/// Loads the splits of a Hub dataset, downloading them into the cache once.
fn load_hub(
    r: hub::HubRef,
    dataset_kwargs: &Map<String, Value>,
    config_path: &Path,
    splits: &[String],
) -> Result<Dataset, DataError> {
    for (key, value) in dataset_kwargs {
        let ok = match key.as_str() {
            "revision" => value.is_string(),
            "trust_remote_code" => true,
            _ => false,
        };
        if !ok {
            return Err(DataError::Config {
                config: config_path.to_path_buf(),
                field: format!("dataset_kwargs.{key}"),
                message: "is not supported for Hub datasets (assay reads `revision`, as a string)"
                    .into(),
            });
        }
    }
    let settings = hub::HubSettings::from_env();
    let resolved = hub::fetch(&settings, &r, splits).map_err(|source| DataError::Hub {
        config: config_path.to_path_buf(),
        source,
    })?;
    let mut dataset = Dataset {
        source: Some(HubSource {
            hub: settings.endpoint.clone(),
            repo: resolved.repo.clone(),
            config: resolved.config.clone(),
            revision: resolved.revision.clone(),
            commit: resolved.commit.clone(),
        }),
        ..Dataset::default()
    };
    for (split, files) in &resolved.splits {
        if !splits.is_empty() && !splits.contains(split) {
            continue;
        }
        let mut docs = Vec::new();
        for f in files {
            let file = hub::local_path(&settings, &resolved.repo, f);
            let file_err = |message: String| DataError::File {
                config: config_path.to_path_buf(),
                file: file.clone(),
                message,
            };
            let lower = f.path.to_ascii_lowercase();
            let format = if lower.ends_with(".parquet") {
                Format::Parquet
            } else if lower.ends_with(".csv") {
                Format::Csv
            } else {
                Format::Json
            };
            let bytes = if format == Format::Json {
                std::fs::read(&file).map_err(|e| file_err(format!("cannot read ({e})")))?
            } else {
                Vec::new()
            };
            let sha = match &f.sha256 {
                Some(sha) => sha.clone(),
                None => crate::hash::sha256_file(&file)
                    .map_err(|e| file_err(format!("cannot read ({e})")))?,
            };
            dataset.files.insert(
                format!("hf://datasets/{}@{}/{}", resolved.repo, f.commit, f.path),
                sha,
            );
            docs.extend(read_rows(format, &file, &bytes, None).map_err(file_err)?);
        }
        dataset.splits.insert(split.clone(), schema::unify(docs));
    }
    Ok(dataset)
}

/// A string, or a list of strings, as a list.
pub(crate) fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

/// `data_files` as HF datasets accepts it: a path or list (the `train`
/// split), or a mapping from split to path or list.
fn split_files(value: Option<&Value>) -> Option<BTreeMap<String, Vec<String>>> {
    let names = string_list;
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
