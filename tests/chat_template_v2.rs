//! The Open LLM Leaderboard v2 tasks, with a chat template, must send
//! exactly what lm-eval 0.4.13 sends, with and without
//! `--fewshot_as_multiturn`. Each golden in tests/golden/chat/v2/ (made by
//! tests/golden/chat/make_v2_chat_goldens.py; see tests/golden/chat/README.md)
//! is lm-eval's own leaderboard YAML run on the documents of
//! tests/fixtures/hub/, through an overlay that `include:`s lm-eval's file
//! by absolute path and reads the fixtures as local JSON. Here the same
//! overlays (from the golden's meta.json) are written over lm-eval's task
//! folder, assay plans the same tasks through its library with the same
//! template and options (Python hooks where the tasks need them), and every
//! request must be equal. Each golden whose tasks assay has its own configs
//! of (every family but BBH) is checked again with the overlays including
//! those configs in place of lm-eval's.

#[path = "support/chat_goldens.rs"]
mod chat_goldens;
#[path = "support/lm_eval_python.rs"]
mod lm_eval_python;
#[path = "support/requests.rs"]
mod requests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use assay::ports::python::{HookMode, PythonHooks};
use assay::task::Registry;
use chat_goldens::{assay_requests, compare, golden_names, golden_requests, read_json, templates};
use serde_json::{json, Value};

/// Goldens assay is known not to reproduce yet, with the reason. The test
/// fails if one of them starts to match (so the entry can go) or if any
/// other golden differs.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

/// The prefix of the overlays' task names (lmeval_overlay.py's TEMP_PREFIX):
/// the goldens say lm-eval's names.
const TEMP_PREFIX: &str = "hubfx_";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chat_dir() -> PathBuf {
    root().join("tests/golden/chat")
}

fn golden_dir() -> PathBuf {
    chat_dir().join("v2")
}

/// lm-eval's task folder: `$ASSAY_LM_EVAL_TASKS`, else what
/// `scripts/fetch-lm-eval-tasks.sh` unpacks.
fn lm_eval_tasks() -> PathBuf {
    let dir = std::env::var_os("ASSAY_LM_EVAL_TASKS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".lm-eval/0.4.13/lm_eval/tasks"));
    assert!(
        dir.join("leaderboard/mmlu_pro/mmlu_pro.yaml").is_file(),
        "lm-eval's task folder is not at {}: run scripts/fetch-lm-eval-tasks.sh (or set ASSAY_LM_EVAL_TASKS)",
        dir.display()
    );
    dir
}

/// Writes a golden's overlays (meta.json's `overlays`: file name -> config,
/// lm-eval's folder written `<lm_eval>/tasks/`, the fixtures relative to the
/// repository) into `dir` with absolute paths; returns their task names.
/// With `own`, each overlay includes assay's own config of the task in
/// place of lm-eval's; `None` when assay has none for one of them.
fn write_overlays(meta: &Value, tasks_dir: &Path, dir: &Path, own: bool) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for (file, cfg) in meta["overlays"]
        .as_object()
        .expect("meta.json has overlays")
    {
        let mut cfg = cfg.clone();
        let include = cfg["include"].as_str().unwrap();
        let rest = include
            .strip_prefix("<lm_eval>/tasks/")
            .unwrap_or_else(|| panic!("{file}: include {include} is not in lm-eval's folder"));
        cfg["include"] = json!(tasks_dir.join(rest).to_string_lossy());
        if own {
            let task = cfg["task"].as_str().unwrap();
            let task = task.strip_prefix(TEMP_PREFIX).unwrap_or(task);
            let ours = root().join(format!("tasks/standard/leaderboard/{task}.yaml"));
            if !ours.is_file() {
                return None;
            }
            cfg["include"] = json!(ours.to_string_lossy());
        }
        for path in cfg["dataset_kwargs"]["data_files"]
            .as_object_mut()
            .expect("the overlay names its data files")
            .values_mut()
        {
            let absolute = root().join(path.as_str().unwrap());
            assert!(absolute.is_file(), "{file}: no {}", absolute.display());
            *path = json!(absolute.to_string_lossy());
        }
        names.push(cfg["task"].as_str().unwrap().to_string());
        // JSON is YAML.
        std::fs::write(
            dir.join(file),
            serde_json::to_string_pretty(&cfg).unwrap() + "\n",
        )
        .unwrap();
    }
    Some(names)
}

#[test]
fn leaderboard_v2_chat_requests_match_lm_eval() {
    let dir = golden_dir();
    let tasks_dir = lm_eval_tasks();
    // lm-eval's Python runs the hooks IFEval and MATH have no native port for.
    let python = lm_eval_python::python();
    std::env::set_var("ASSAY_PYTHON", &python);
    let hooks = PythonHooks::new();
    let goldens = golden_names(&dir);
    assert!(
        goldens.len() >= 28,
        "expected the v2 chat goldens in {}, found {}",
        dir.display(),
        goldens.len()
    );
    let templates = templates();
    let known: BTreeMap<&str, &str> = KNOWN_DIFFERENCES.iter().copied().collect();
    let mut failures = Vec::new();
    let mut fixed = Vec::new();
    let mut passed = 0;
    let mut requests = 0;
    let mut with_hooks = 0;
    let mut own_configs = 0;
    for (name, own) in goldens
        .iter()
        .flat_map(|g| [(g.clone(), false), (g.clone(), true)])
    {
        let meta = read_json(&dir.join(format!("{name}.meta.json")));
        assert_eq!(meta["apply_chat_template"], json!(true), "{name}");
        let theirs = golden_requests(&dir, &name);
        assert!(!theirs.is_empty(), "{name}: an empty golden");
        let overlays = tempfile::tempdir().unwrap();
        let Some(tasks) = write_overlays(&meta, &tasks_dir, overlays.path(), own) else {
            continue;
        };
        let wanted: Vec<&str> = meta["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        let planned: Vec<&str> = tasks
            .iter()
            .map(|t| t.strip_prefix(TEMP_PREFIX).unwrap_or(t))
            .collect();
        assert_eq!(
            planned, wanted,
            "{name}: the overlays are not the meta's tasks"
        );
        let mut registry = Registry::scan(&[overlays.path().to_path_buf()]);
        if meta["python_hooks"].as_bool().unwrap_or(false) {
            registry = registry.with_python_hooks(HookMode::Missing, Arc::clone(&hooks));
            with_hooks += 1;
        }
        let problem = match assay_requests(&registry, tasks, &templates, &meta, TEMP_PREFIX) {
            Err(e) => Some(format!("assay failed: {e}")),
            Ok(ours) => compare(&ours, &theirs),
        };
        match (problem, known.get(name.as_str())) {
            (None, None) if own => own_configs += 1,
            (None, None) => {
                passed += 1;
                requests += theirs.len();
            }
            (None, Some(_)) => fixed.push(name.clone()),
            (Some(_), Some(_)) => {}
            (Some(p), None) if own => failures.push(format!("{name} (assay's own configs): {p}")),
            (Some(p), None) => failures.push(format!("{name}: {p}")),
        }
    }
    for name in known.keys() {
        assert!(
            goldens.iter().any(|g| g == name),
            "KNOWN_DIFFERENCES names {name}, which has no golden"
        );
    }
    assert!(with_hooks > 0, "no golden needs Python hooks");
    assert!(
        fixed.is_empty(),
        "these goldens now match lm-eval: remove them from KNOWN_DIFFERENCES: {fixed:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {} v2 chat goldens differ from lm-eval ({passed} match):\n{}",
        failures.len(),
        goldens.len(),
        failures.join("\n")
    );
    // Every family but BBH (whose few-shot examples assay does not copy)
    // has assay's own config: 5 tasks, each with two templates, with and
    // without few-shot turns.
    assert!(
        own_configs >= 20,
        "{own_configs} goldens on assay's own configs"
    );
    println!(
        "{passed} v2 chat goldens, {requests} requests, the same as lm-eval's \
         ({own_configs} also on assay's own configs)"
    );
}
