//! BIG-bench `task.json` tasks, read natively as assay tasks and groups.
//!
//! A folder holding a `task.json` is a task named after the folder (its
//! BIG-bench `name` is the alias). A `task.json` without `examples` whose
//! subfolders hold their own `task.json` files is a group of those subtasks,
//! named `parent:subfolder` as BIG-bench names them, and scored by the plain
//! mean over subtasks as BIG-bench aggregates them.
//!
//! Rather than a second pipeline, each task becomes an ordinary config map
//! that reproduces json_task.py's prompt through lm-eval's fields:
//!
//! - `dataset_path: bigbench` reads the examples from the same file; each
//!   document carries BIG-bench's formatted input (prefixes and appended
//!   choices) as `formatted_input` (see `data::bigbench`);
//! - `doc_to_text: formatted_input`, `target_delimiter: ""`,
//!   `fewshot_delimiter: few_shot_example_separator`, and the `task_prefix`
//!   as the description (named as a column, so no Jinja touches it), give
//!   `task_prefix + shot + sep + shot + sep + query`, as
//!   `make_nshot_dataset` joins them;
//! - `fewshot_config.sampler: bigbench` draws the shots and their targets as
//!   `make_nshot_dataset` does, from the other examples;
//! - a task with multiple-choice metrics (or, without metrics, examples
//!   with `target_scores`) becomes a `multiple_choice` task over the choices
//!   in file order, scored by `multiple_choice_grade` on normalised
//!   log-probabilities (or absolute ones, with `absolute_normalization`);
//!   otherwise a `generate_until` task scored by `exact_str_match` after the
//!   `bigbench_postprocess` filter (`stop_string`, then `output_regex`, with
//!   json_task's default regex when the task sets neither). A task listing
//!   both kinds runs as its `preferred_score` is measured; its other
//!   metrics, and metrics other than these two, are not computed.
//!
//! `assay tasks show NAME` prints the resulting config.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::TaskError;
use crate::data::bigbench::{Header, GENERATIVE_METRICS, MULTIPLE_CHOICE_METRICS};

/// The file that makes a folder a BIG-bench task.
pub const TASK_FILE: &str = "task.json";

/// json_task.py's `_DEFAULT_REGEX`: the first run of text up to a sentence
/// end or a newline, used when a task sets neither `output_regex` nor
/// `stop_string`.
const DEFAULT_OUTPUT_REGEX: &str = r"[^\.\?\!\;\n]+";

/// Whether `path` is a BIG-bench task file rather than a YAML config.
pub fn is_task_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == TASK_FILE)
}

/// A task or group found on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    pub name: String,
    /// The `task.json` that defines it.
    pub path: PathBuf,
    pub is_group: bool,
}

/// Every BIG-bench task and group under `root` (which may itself be a task
/// folder or a `task.json`), with the files that could not be read.
pub fn discover(
    root: &Path,
    ignored_dirs: &[&str],
) -> (Vec<Discovered>, Vec<(PathBuf, TaskError)>) {
    let mut found = Vec::new();
    let mut broken = Vec::new();
    let root = if is_task_file(root) {
        root.parent().unwrap_or(Path::new("."))
    } else {
        root
    };
    if root.join(TASK_FILE).is_file() {
        let name = std::fs::canonicalize(root)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        if let Some(name) = name {
            add_task_dir(root, name, &mut found, &mut broken);
        }
    } else {
        walk(root, ignored_dirs, &mut found, &mut broken);
    }
    (found, broken)
}

fn walk(
    dir: &Path,
    ignored_dirs: &[&str],
    found: &mut Vec<Discovered>,
    broken: &mut Vec<(PathBuf, TaskError)>,
) {
    for sub in subfolders(dir) {
        let name = folder_name(&sub);
        if ignored_dirs.contains(&name.as_str()) {
            continue;
        }
        if sub.join(TASK_FILE).is_file() {
            add_task_dir(&sub, name, found, broken);
        } else {
            walk(&sub, ignored_dirs, found, broken);
        }
    }
}

/// Registers the task (or group and its subtasks) of a folder holding a
/// `task.json`. As in json_task.py, only a file without `examples` looks
/// into its subfolders, and only one level down for each file.
fn add_task_dir(
    dir: &Path,
    name: String,
    found: &mut Vec<Discovered>,
    broken: &mut Vec<(PathBuf, TaskError)>,
) {
    let path = dir.join(TASK_FILE);
    let subtasks = subtask_dirs(dir);
    // Only a folder with subtasks needs its file read now; a parent file
    // lists no examples, so reading it is cheap.
    let is_group = !subtasks.is_empty()
        && match Header::read(&path) {
            Ok(header) => !header.has_examples(),
            Err(message) => {
                broken.push((path.clone(), TaskError::Invalid { path, message }));
                return;
            }
        };
    found.push(Discovered {
        name: name.clone(),
        path,
        is_group,
    });
    if is_group {
        for sub in subtasks {
            let child = format!("{name}:{}", folder_name(&sub));
            add_task_dir(&sub, child, found, broken);
        }
    }
}

fn subfolders(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut dirs: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The subfolders of a task folder that hold their own `task.json`, sorted
/// by path as json_task.py sorts them.
fn subtask_dirs(dir: &Path) -> Vec<PathBuf> {
    subfolders(dir)
        .into_iter()
        .filter(|d| d.join(TASK_FILE).is_file())
        .collect()
}

fn folder_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn invalid(path: &Path, message: impl Into<String>) -> TaskError {
    TaskError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// What assay runs for a BIG-bench task.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    MultipleChoice,
    Generative,
}

/// Multiple choice when the task lists a multiple-choice metric (or only
/// has choices to score); generation when it lists a generative metric (or
/// only has targets). A task listing both, which BIG-bench scores both ways,
/// is run the way its `preferred_score` is measured. json_task.py asks every
/// example for the answers its metrics need, and so does this.
fn kind(header: &Header) -> Result<Kind, String> {
    let answers = header.answers()?;
    let lists = |metrics: &[&str]| header.metrics.iter().any(|m| metrics.contains(&m.as_str()));
    let preferred_is_generative = header
        .preferred_score
        .as_deref()
        .is_some_and(|p| !MULTIPLE_CHOICE_METRICS.contains(&p));
    let kind = match (lists(MULTIPLE_CHOICE_METRICS), lists(GENERATIVE_METRICS)) {
        (true, true) if preferred_is_generative => Kind::Generative,
        (true, _) => Kind::MultipleChoice,
        (false, true) => Kind::Generative,
        (false, false) if answers.without_target_scores.is_none() => Kind::MultipleChoice,
        (false, false) => Kind::Generative,
    };
    let missing = match kind {
        Kind::MultipleChoice => answers.without_target_scores.map(|i| (i, "target_scores")),
        Kind::Generative => answers.without_target.map(|i| (i, "target")),
    };
    match missing {
        None => Ok(kind),
        Some((i, field)) => Err(format!(
            "examples[{i}] has no `{field}`, which this task's {} needs",
            if header.metrics.is_empty() {
                "other examples show it".to_string()
            } else {
                format!("metrics ({})", header.metrics.join(", "))
            }
        )),
    }
}

/// The config map of the task defined by the `task.json` at `path`.
pub fn task_config(path: &Path, name: &str) -> Result<Map<String, Value>, TaskError> {
    let header = Header::read(path).map_err(|m| invalid(path, m))?;
    if !header.has_examples() {
        return Err(invalid(
            path,
            "has no `examples` list and no subfolders with their own task.json (subtasks); \
             a BIG-bench task needs one or the other",
        ));
    }
    let kind = kind(&header).map_err(|m| invalid(path, m))?;
    let mut cfg = json!({
        "task": name,
        "dataset_path": "bigbench",
        "dataset_kwargs": {"data_files": {"default": TASK_FILE}},
        "test_split": "default",
        "fewshot_split": "default",
        "fewshot_config": {"sampler": "bigbench"},
        "doc_to_text": "formatted_input",
        "doc_to_target": "targets",
        "target_delimiter": "",
        "fewshot_delimiter": header.few_shot_example_separator,
    });
    let map = cfg.as_object_mut().expect("a JSON object literal");
    if let Some(alias) = &header.name {
        map.insert("task_alias".into(), json!(alias));
    }
    if !header.task_prefix.is_empty() {
        // The documents carry the prefix in this column (see data::bigbench).
        map.insert("description".into(), json!("task_prefix"));
    }
    match kind {
        Kind::MultipleChoice => {
            map.insert("output_type".into(), json!("multiple_choice"));
            map.insert("doc_to_choice".into(), json!("choices"));
            map.insert(
                "metric_list".into(),
                json!([{
                    "metric": "multiple_choice_grade",
                    "aggregation": "mean",
                    "higher_is_better": true,
                    "absolute_normalization": header.absolute_normalization,
                }]),
            );
        }
        Kind::Generative => {
            let mut step = json!({"function": "bigbench_postprocess"});
            let output_regex = match (&header.output_regex, &header.stop_string) {
                (None, None) => Some(DEFAULT_OUTPUT_REGEX.to_string()),
                (regex, _) => regex.clone(),
            };
            if let Some(stop) = &header.stop_string {
                step["stop_string"] = json!(stop);
            }
            if let Some(regex) = output_regex {
                step["output_regex"] = json!(regex);
            }
            map.insert("output_type".into(), json!("generate_until"));
            // BIG-bench generates until its length limit and cuts afterwards
            // (the stop string is kept), so nothing stops generation early.
            map.insert(
                "generation_kwargs".into(),
                json!({"until": [], "do_sample": false, "temperature": 0.0}),
            );
            map.insert(
                "filter_list".into(),
                json!([{"name": "postprocess", "filter": [step, {"function": "take_first"}]}]),
            );
            map.insert(
                "metric_list".into(),
                json!([{"metric": "exact_str_match", "aggregation": "mean", "higher_is_better": true}]),
            );
        }
    }
    map.insert(
        "metadata".into(),
        json!({"bigbench": {
            "name": header.name,
            "metrics": header.metrics,
            "preferred_score": header.preferred_score,
        }}),
    );
    Ok(cfg.as_object().cloned().expect("a JSON object literal"))
}

/// The group config of a `task.json` whose subtasks live in subfolders.
pub fn group_config(path: &Path, name: &str) -> Result<Map<String, Value>, TaskError> {
    let header = Header::read(path).map_err(|m| invalid(path, m))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let children: Vec<String> = subtask_dirs(dir)
        .iter()
        .map(|d| format!("{name}:{}", folder_name(d)))
        .collect();
    let mut cfg = json!({
        "group": name,
        "task": children,
        // BIG-bench's aggregate is the plain mean over subtasks.
        "aggregate_metric_list": [
            {"metric": "multiple_choice_grade", "weight_by_size": false},
            {"metric": "exact_str_match", "weight_by_size": false},
        ],
    });
    if let Some(alias) = &header.name {
        cfg["group_alias"] = json!(alias);
    }
    Ok(cfg.as_object().cloned().expect("a JSON object literal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, task: Value) {
        let folder = dir.join(rel);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(TASK_FILE), task.to_string()).unwrap();
    }

    #[test]
    fn folders_become_tasks_and_groups() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let leaf = json!({"name": "L", "examples": [{"input": "a", "target": "b"}]});
        write(root, "solo", leaf.clone());
        write(root, "suite", json!({"name": "Suite"}));
        write(root, "suite/one", leaf.clone());
        write(root, "suite/two", leaf.clone());
        write(root, "nested/deeper/alone", leaf.clone());
        // A file with examples ignores its subfolders, as json_task.py does.
        write(root, "full", leaf.clone());
        write(root, "full/extra", leaf);
        let (found, broken) = discover(root, &[]);
        assert!(broken.is_empty());
        let got: Vec<(&str, bool)> = found
            .iter()
            .map(|d| (d.name.as_str(), d.is_group))
            .collect();
        assert_eq!(
            got,
            [
                ("full", false),
                ("alone", false),
                ("solo", false),
                ("suite", true),
                ("suite:one", false),
                ("suite:two", false),
            ]
        );
        let group = group_config(&root.join("suite").join(TASK_FILE), "suite").unwrap();
        assert_eq!(group["task"], json!(["suite:one", "suite:two"]));
        assert_eq!(group["group_alias"], "Suite");
        let (found, _) = discover(&root.join("solo"), &[]);
        assert_eq!(found[0].name, "solo");
    }

    #[test]
    fn examples_decide_the_output_type() {
        let tmp = tempfile::tempdir().unwrap();
        let config = |task: Value| {
            write(tmp.path(), "t", task);
            task_config(&tmp.path().join("t").join(TASK_FILE), "t")
        };
        let mc = json!({"input": "q", "target_scores": {"a": 1, "b": 0}});
        let gen = json!({"input": "q", "target": "a"});
        let c = config(json!({"examples": [mc]})).unwrap();
        assert_eq!(c["output_type"], "multiple_choice");
        let c = config(json!({"metrics": ["exact_str_match"], "examples": [gen]})).unwrap();
        assert_eq!(c["output_type"], "generate_until");
        assert_eq!(
            c["filter_list"][0]["filter"][0]["output_regex"],
            DEFAULT_OUTPUT_REGEX
        );
        let both = json!({"input": "q", "target": "a", "target_scores": {"a": 1, "b": 0}});
        let c = config(
            json!({"metrics": ["exact_str_match", "multiple_choice_grade"],
            "preferred_score": "exact_str_match", "examples": [both]}),
        )
        .unwrap();
        assert_eq!(c["output_type"], "generate_until");
        let c = config(
            json!({"metrics": ["exact_str_match", "multiple_choice_grade"],
            "preferred_score": "multiple_choice_grade", "examples": [both]}),
        )
        .unwrap();
        assert_eq!(c["output_type"], "multiple_choice");
        let c = config(json!({"stop_string": ".", "examples": [gen]})).unwrap();
        assert_eq!(
            c["filter_list"][0]["filter"][0],
            json!({"function": "bigbench_postprocess", "stop_string": "."})
        );
        let e = config(json!({"metrics": ["multiple_choice_grade"], "examples": [mc, gen]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("examples[1] has no `target_scores`"), "{e}");
        let e = config(json!({"name": "x"})).unwrap_err().to_string();
        assert!(
            e.contains("task.json") && e.contains("no `examples`"),
            "{e}"
        );
    }
}
