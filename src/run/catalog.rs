//! The work of `assay tasks`: the listing with each task's hook ports,
//! cache state and data origin; fetching a selection's Hub datasets; a
//! task's merged config; and validating config files by planning them.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use super::plan::{needed_splits, plan_task, Preparation};
use super::Error;
use crate::data;
use crate::data::hub::{cache_state, CacheState, HubSettings};
use crate::invocation::Invocation;
use crate::ports::python::{HookMode, PythonHooks};
use crate::task::registry::{builtin_tasks_dir, EntryKind, Node};
use crate::task::{Registry, TaskConfig, TaskError};

/// `assay tasks list`: the table, and each config file that could not be
/// read, with why.
pub fn list(
    names: &[String],
    include_path: &[PathBuf],
    python_hooks: HookMode,
) -> Result<(String, Vec<String>), Error> {
    let registry = super::registry(include_path, python_hooks)?;
    let settings = HubSettings::from_env();
    let builtin = builtin_tasks_dir().and_then(|d| d.canonicalize().ok());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:<8} {:<10} {:<8} {:<44} source",
        "name", "kind", "hooks", "cached", "data"
    );
    for e in registry.entries() {
        if !names.is_empty() && !names.contains(&e.name) {
            continue;
        }
        let kind = match &e.kind {
            EntryKind::Task => "task".to_string(),
            EntryKind::Group => "group".to_string(),
            EntryKind::PythonTask => "python".to_string(),
            EntryKind::Tag(m) => format!("tag({})", m.len()),
        };
        let source = e.path.as_ref().map_or(String::new(), |p| {
            let inside = builtin
                .as_ref()
                .zip(p.canonicalize().ok())
                .is_some_and(|(b, p)| p.starts_with(b));
            format!("{}{}", if inside { "built-in: " } else { "" }, p.display())
        });
        let (hooks, cached, data) = match registry.task_config(&e.name) {
            Some(Ok(t)) => task_status(&registry, &t, &settings),
            Some(Err(TaskError::PythonHook { .. })) => ("missing".into(), "-".into(), "-".into()),
            Some(Err(err)) => ("error".into(), "-".into(), first_words(&err.to_string())),
            None if matches!(e.kind, EntryKind::Group) && !names.is_empty() => {
                group_status(&registry, &e.name, &settings)
            }
            None => ("-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{:<40} {:<8} {:<10} {:<8} {:<44} {source}",
            e.name, kind, hooks, cached, data
        );
    }
    let unreadable = registry
        .broken
        .iter()
        .map(|(path, err)| format!("{}: not loaded: {err}", path.display()))
        .collect();
    Ok((out, unreadable))
}

/// `assay tasks fetch`: downloads the Hub datasets of the selected tasks;
/// `report` is told of each task's data as it is ready. Tasks whose hooks
/// would run in Python are fetched too (no hook runs to download data), so
/// a later `--python-hooks` run finds them cached.
pub fn fetch(
    names: &[String],
    include_path: &[PathBuf],
    report: &mut dyn FnMut(&str),
) -> Result<(), Error> {
    let registry = super::registry(include_path, HookMode::Missing)?;
    let selection = registry.select(names)?;
    let mut seen = BTreeSet::new();
    for node in &selection {
        for t in node.tasks() {
            if !seen.insert(t.task.clone()) {
                continue;
            }
            let dataset = data::load(
                t.dataset_path.as_deref(),
                t.dataset_name.as_deref(),
                &t.dataset_kwargs,
                &t.source,
                &needed_splits(t),
            )?;
            let docs: usize = dataset.splits.values().map(Vec::len).sum();
            let origin = dataset
                .source
                .as_ref()
                .map(|s| format!("{}@{}", s.repo, s.commit))
                .unwrap_or_else(|| "local files".into());
            report(&format!(
                "{}: {origin}: {} file(s), {docs} documents in {}",
                t.task,
                dataset.files.len(),
                dataset.split_names()
            ));
        }
    }
    Ok(())
}

/// `assay tasks show`: each selected task's merged config, as JSON.
pub fn show(name: &str, include_path: &[PathBuf]) -> Result<Vec<String>, Error> {
    let registry = Registry::with_builtin(include_path)?;
    let selection = registry.select(&[name.to_string()])?;
    Ok(selection
        .iter()
        .flat_map(|node| node.tasks())
        .map(|t| {
            serde_json::to_string_pretty(&serde_json::Value::Object(t.raw.clone()))
                .unwrap_or_default()
        })
        .collect())
}

/// `assay tasks validate`: how many task and group configs were checked,
/// or every distinct failure (the first is the command's error).
pub fn validate(
    paths: &[PathBuf],
    include_path: &[PathBuf],
    python_hooks: HookMode,
) -> Result<usize, Vec<String>> {
    let mut failures: Vec<String> = Vec::new();
    let mut checked = 0;
    // A task in several groups is planned once per distinct config.
    let mut planned: HashSet<(String, String)> = HashSet::new();
    let invocation = Invocation::default();
    let preparation = Preparation::new(&invocation, false).map_err(|e| vec![e.to_string()])?;
    for path in paths {
        // Names resolve in the include paths too; only `path`'s own
        // configs are checked.
        let mut roots = include_path.to_vec();
        roots.push(path.clone());
        let mut registry = Registry::scan(&roots);
        if python_hooks != HookMode::Native {
            registry = registry.with_python_hooks(python_hooks, PythonHooks::new());
        }
        failures.extend(
            registry
                .broken
                .iter()
                .filter(|(file, _)| file.starts_with(path))
                .map(|(_, err)| err.to_string()),
        );
        let names: Vec<String> = registry
            .entries()
            .filter(|e| matches!(e.kind, EntryKind::Task | EntryKind::Group))
            .filter(|e| e.path.as_ref().is_some_and(|p| p.starts_with(path)))
            .map(|e| e.name.clone())
            .collect();
        if names.is_empty() && registry.broken.is_empty() {
            failures.push(format!("{}: no task or group config found", path.display()));
        }
        for name in names {
            checked += 1;
            let outcome = registry
                .select(std::slice::from_ref(&name))
                .map_err(Error::from)
                .and_then(|sel| {
                    for c in sel.iter().flat_map(|n| n.tasks()) {
                        if planned.insert((c.task.clone(), c.config_hash())) {
                            plan_task(c.clone(), registry.ports(c)?, &preparation)?;
                        }
                    }
                    Ok(())
                });
            if let Err(e) = outcome {
                let message = e.to_string();
                if !failures.contains(&message) {
                    failures.push(message);
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(checked)
    } else {
        Err(failures)
    }
}

/// A task's row in `assay tasks list`: hook ports, cache state, data origin.
fn task_status(
    registry: &Registry,
    t: &TaskConfig,
    settings: &HubSettings,
) -> (String, String, String) {
    let hooks = if t.hooks().is_empty() {
        "-".to_string()
    } else {
        match registry.ports(t) {
            Ok(p) if p.uses.iter().any(|u| u.python.is_some()) => "python".to_string(),
            Ok(_) => "native".to_string(),
            Err(TaskError::HookDiffers { .. }) => "differs".to_string(),
            Err(_) => "missing".to_string(),
        }
    };
    let path = t.dataset_path.as_deref().unwrap_or("");
    match data::hub_ref(path, t.dataset_name.as_deref(), &t.dataset_kwargs) {
        Some(r) => {
            let state = cache_state(settings, &r, &needed_splits(t));
            let cached = match state {
                CacheState::Complete => "yes",
                CacheState::Partial => "partial",
                CacheState::Absent => "no",
            };
            let data = format!(
                "hf:{}{}@{}",
                r.repo,
                r.config
                    .as_ref()
                    .map(|c| format!(":{c}"))
                    .unwrap_or_default(),
                r.revision
            );
            (hooks, cached.to_string(), data)
        }
        None => {
            let files = match t.dataset_kwargs.get("data_files") {
                Some(serde_json::Value::String(f)) => f.clone(),
                Some(serde_json::Value::Object(m)) => m
                    .values()
                    .flat_map(|v| match v {
                        serde_json::Value::String(s) => vec![s.clone()],
                        serde_json::Value::Array(a) => a
                            .iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect(),
                        _ => vec![],
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                _ => String::new(),
            };
            (hooks, "local".to_string(), format!("{path}:{files}"))
        }
    }
}

/// A named group's row: its tasks' hooks and cache state together.
fn group_status(
    registry: &Registry,
    name: &str,
    settings: &HubSettings,
) -> (String, String, String) {
    let tree = match registry.select(&[name.to_string()]) {
        Ok(tree) => tree,
        Err(e) => return ("error".into(), "-".into(), first_words(&e.to_string())),
    };
    let tasks: Vec<&TaskConfig> = tree.iter().flat_map(|n| n.tasks()).collect();
    let skipped = tree.iter().map(skipped_count).sum::<usize>();
    let rows: Vec<(String, String, String)> = tasks
        .iter()
        .map(|t| task_status(registry, t, settings))
        .collect();
    let hooks = if skipped > 0 || rows.iter().any(|r| r.0 == "missing") {
        "missing"
    } else if rows.iter().any(|r| r.0 == "python") {
        "python"
    } else if rows.iter().any(|r| r.0 == "native") {
        "native"
    } else {
        "-"
    };
    let ready = rows
        .iter()
        .filter(|r| r.1 == "yes" || r.1 == "local")
        .count();
    let cached = match ready {
        _ if rows.is_empty() => "-",
        n if n == rows.len() => "yes",
        0 => "no",
        _ => "partial",
    };
    let data = format!(
        "{} tasks{}",
        rows.len(),
        if skipped > 0 {
            format!(", {skipped} skipped (hooks)")
        } else {
            String::new()
        }
    );
    (hooks.into(), cached.into(), data)
}

fn skipped_count(node: &Node) -> usize {
    match node {
        Node::Skipped { .. } => 1,
        Node::Group { children, .. } => children.iter().map(skipped_count).sum(),
        Node::Task(_) => 0,
    }
}

fn first_words(s: &str) -> String {
    let s = s.rsplit(": ").next().unwrap_or(s);
    s.chars().take(44).collect()
}
