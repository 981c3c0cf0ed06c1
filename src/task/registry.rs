//! The names a user can pass to `--tasks`: tasks, groups and tags found in the
//! built-in `tasks/` folder and every `--include-path`, from lm-eval YAML
//! configs and BIG-bench `task.json` folders (see `bigbench`).
//!
//! Scanning is cheap (YAML and folder names only, no datasets) and
//! tolerant: a file that does not parse is remembered with its error, so
//! `assay tasks validate` can report it, but it does not hide the other tasks. Resolving a selection
//! follows lm-eval's TaskIndex and TaskFactory: later include paths override
//! earlier ones, group-level keys override their children's configs, inline
//! tasks inside a group are named `group::task`, and tags expand to their
//! member tasks in sorted order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::bigbench;
use super::config::{GroupConfig, TaskConfig};
use super::ports::TaskPorts;
use super::yaml::load_with_includes;
use super::TaskError;
use crate::ports::Resolver;

/// What a registered name stands for.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    Task,
    Group,
    /// A task implemented as a Python class (`class: !function ...`).
    PythonTask,
    /// A set of tasks that share a `tag`.
    Tag(BTreeSet<String>),
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
    pub path: Option<PathBuf>,
}

/// A resolved selection: the tree of tasks and groups a run will evaluate.
#[derive(Debug, Clone)]
pub enum Node {
    Task(Box<TaskConfig>),
    Group {
        config: Box<GroupConfig>,
        children: Vec<Node>,
    },
    /// A group member that cannot run (e.g. it needs Python); reported, never
    /// run wrong.
    Skipped {
        name: String,
        error: String,
    },
}

impl Node {
    /// Every task config in the tree, depth first.
    pub fn tasks(&self) -> Vec<&TaskConfig> {
        match self {
            Node::Task(t) => vec![t],
            Node::Group { children, .. } => children.iter().flat_map(Node::tasks).collect(),
            Node::Skipped { .. } => vec![],
        }
    }
}

/// The top-level nodes of a `--tasks` list.
pub type Selection = Vec<Node>;

/// All task, group and tag names under a set of folders.
#[derive(Debug, Default)]
pub struct Registry {
    entries: BTreeMap<String, Entry>,
    /// Files that could not be read, with why.
    pub broken: Vec<(PathBuf, TaskError)>,
    /// Resolves the tasks' `!function` hooks, each once.
    resolver: Resolver,
}

const IGNORED_DIRS: &[&str] = &["__pycache__", ".ipynb_checkpoints", ".git"];

/// The folder of the built-in task configs and suites (see
/// [`builtin`](super::builtin)).
pub fn builtin_tasks_dir() -> Option<PathBuf> {
    super::builtin::dir()
}

impl Registry {
    /// The built-in tasks and suites, then `./tasks` if there is one, then
    /// `include_paths`: later ones add to earlier ones and win on name
    /// clashes. Each include path must exist.
    pub fn with_builtin(include_paths: &[PathBuf]) -> Result<Registry, TaskError> {
        let mut roots: Vec<PathBuf> = builtin_tasks_dir().into_iter().collect();
        let local = PathBuf::from("tasks");
        if local.is_dir() && std::env::var_os("ASSAY_TASKS_DIR").is_none() {
            roots.push(local);
        }
        for p in include_paths {
            if !p.exists() {
                return Err(TaskError::MissingIncludePath { path: p.clone() });
            }
            roots.push(p.clone());
        }
        Ok(Registry::scan(&roots))
    }
}

/// A suite's file: `tasks/suites/<name>.yaml`, or `name` itself when it
/// names a YAML file.
pub fn suite_file(name: &str) -> Result<PathBuf, TaskError> {
    let path = PathBuf::from(name);
    let err = |message: String| TaskError::Suite {
        name: name.to_string(),
        message,
    };
    if name.ends_with(".yaml") || name.ends_with(".yml") {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(err("no such file".into()))
        };
    }
    // A hub's own `./tasks/suites/` first, as its tasks win over built-in ones.
    let local =
        Some(PathBuf::from("tasks")).filter(|_| std::env::var_os("ASSAY_TASKS_DIR").is_none());
    local
        .into_iter()
        .chain(builtin_tasks_dir())
        .map(|d| d.join("suites").join(format!("{name}.yaml")))
        .find(|p| p.is_file())
        .ok_or_else(|| err(format!("there is no tasks/suites/{name}.yaml")))
}

/// The group a suite file defines (its `group:` name).
pub fn group_name(file: &Path) -> Result<String, TaskError> {
    let raw = load_with_includes(file)?;
    match raw.get("group") {
        Some(Value::String(name)) if !name.is_empty() => Ok(name.clone()),
        _ => Err(TaskError::Field {
            path: file.to_path_buf(),
            field: "group".into(),
            message: "a suite file is a group config: give it a `group:` name".into(),
        }),
    }
}

fn yaml_files(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(read) = std::fs::read_dir(root) else {
        return;
    };
    let mut items: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
    items.sort();
    for p in items {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if !IGNORED_DIRS.contains(&name) {
                yaml_files(&p, out);
            }
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(p);
        }
    }
}

impl Registry {
    /// Scans `roots` in order; a name found in a later root replaces an
    /// earlier one, as lm-eval's `--include_path` does.
    pub fn scan(roots: &[PathBuf]) -> Registry {
        let mut registry = Registry::default();
        for root in roots {
            let mut files = Vec::new();
            if root.is_file() {
                files.push(root.clone());
            } else {
                yaml_files(root, &mut files);
            }
            let mut here: BTreeMap<String, Entry> = BTreeMap::new();
            for file in files.into_iter().filter(|f| !bigbench::is_task_file(f)) {
                match load_with_includes(&file) {
                    Ok(cfg) => register(&cfg, &file, &mut here),
                    Err(e) => registry.broken.push((file, e)),
                }
            }
            let (found, broken) = bigbench::discover(root, IGNORED_DIRS);
            registry.broken.extend(broken);
            for task in found {
                here.entry(task.name.clone()).or_insert(Entry {
                    name: task.name,
                    kind: if task.is_group {
                        EntryKind::Group
                    } else {
                        EntryKind::Task
                    },
                    path: Some(task.path),
                });
            }
            for (name, entry) in here {
                match (registry.entries.get_mut(&name), &entry.kind) {
                    (
                        Some(Entry {
                            kind: EntryKind::Tag(old),
                            ..
                        }),
                        EntryKind::Tag(new),
                    ) => old.extend(new.iter().cloned()),
                    _ => {
                        registry.entries.insert(name, entry);
                    }
                }
            }
        }
        registry
    }

    /// Lets hooks run in Python as `mode` says (`--python-hooks`).
    pub fn with_python_hooks(
        mut self,
        mode: crate::ports::python::HookMode,
        runtime: std::sync::Arc<crate::ports::python::PythonHooks>,
    ) -> Registry {
        self.resolver = Resolver::with_python(mode, runtime);
        self
    }

    /// The ports of `config`'s hooks (native, or Python when allowed), or
    /// why one has none.
    pub fn ports(&self, config: &TaskConfig) -> Result<TaskPorts, TaskError> {
        TaskPorts::resolve(config, &self.resolver)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// Resolves a `--tasks` list into the tree of tasks and groups to run.
    /// A name given directly that cannot run is an error; a group member
    /// that cannot run becomes a [`Node::Skipped`] with its reason.
    pub fn select(&self, names: &[String]) -> Result<Selection, TaskError> {
        let mut out = Vec::new();
        for name in names {
            let entry = self
                .entries
                .get(name)
                .ok_or_else(|| TaskError::UnknownName {
                    name: name.clone(),
                    hint: self.hint(name),
                })?;
            match &entry.kind {
                EntryKind::Tag(members) => {
                    for member in members {
                        let e = &self.entries[member];
                        out.push(Node::Task(Box::new(self.build_task(e, &Map::new())?)));
                    }
                }
                _ => out.push(self.build(entry, &Map::new(), true, &[])?),
            }
        }
        Ok(out)
    }

    /// What may be meant instead of the unknown `name`: near names, and a
    /// config file that could not be read (the one named like `name` if
    /// there is one), which may be where it was defined.
    fn hint(&self, name: &str) -> String {
        let lower = name.to_lowercase();
        let near: Vec<&str> = self
            .entries
            .keys()
            .filter(|k| k.to_lowercase().contains(&lower) || lower.contains(&k.to_lowercase()))
            .take(3)
            .map(String::as_str)
            .collect();
        let mut hint = if near.is_empty() {
            String::new()
        } else {
            format!(" (did you mean {}?)", near.join(", "))
        };
        let named_so = |p: &PathBuf| p.file_stem().is_some_and(|s| s == name);
        let unreadable = self
            .broken
            .iter()
            .find(|(p, _)| named_so(p))
            .or(self.broken.first());
        if let Some((_, err)) = unreadable {
            let others = self.broken.len() - 1;
            hint.push_str(&format!("; a config file could not be read: {err}"));
            if others > 0 {
                hint.push_str(&format!(" (and {others} more)"));
            }
        }
        hint
    }

    /// `ancestors` are the groups being built around this entry, outermost
    /// first: a group among them is a cycle.
    fn build(
        &self,
        entry: &Entry,
        overrides: &Map<String, Value>,
        direct: bool,
        ancestors: &[&str],
    ) -> Result<Node, TaskError> {
        match &entry.kind {
            EntryKind::Group => {
                let path = entry.path.as_ref().expect("groups come from files");
                let raw = if bigbench::is_task_file(path) {
                    bigbench::group_config(path, &entry.name)?
                } else {
                    load_with_includes(path)?
                };
                if let Some(at) = ancestors.iter().position(|a| *a == entry.name) {
                    let mut cycle = ancestors[at..].to_vec();
                    cycle.push(&entry.name);
                    return Err(TaskError::Invalid {
                        path: path.clone(),
                        message: format!(
                            "group `{}` contains itself ({}); take it out of its own task list",
                            entry.name,
                            cycle.join(" -> ")
                        ),
                    });
                }
                let mut inner = ancestors.to_vec();
                inner.push(&entry.name);
                self.build_group(&entry.name, &raw, overrides, path, &inner)
            }
            EntryKind::PythonTask => {
                let err = TaskError::Invalid {
                    path: entry.path.clone().unwrap_or_default(),
                    message: format!(
                        "task `{}` is a Python class (`class:`); Python tasks are not supported by assay",
                        entry.name
                    ),
                };
                if direct {
                    Err(err)
                } else {
                    Ok(Node::Skipped {
                        name: entry.name.clone(),
                        error: err.to_string(),
                    })
                }
            }
            EntryKind::Task => match self.build_task(entry, overrides).and_then(|t| {
                if !direct {
                    self.ports(&t)?;
                }
                Ok(t)
            }) {
                Ok(t) => Ok(Node::Task(Box::new(t))),
                Err(e @ (TaskError::PythonHook { .. } | TaskError::HookDiffers { .. }))
                    if !direct =>
                {
                    Ok(Node::Skipped {
                        name: entry.name.clone(),
                        error: e.to_string(),
                    })
                }
                Err(e) => Err(e),
            },
            EntryKind::Tag(_) => unreachable!("tags are expanded by the caller"),
        }
    }

    /// The config of the task `name` as its file defines it (no group
    /// overrides).
    pub fn task_config(&self, name: &str) -> Option<Result<TaskConfig, TaskError>> {
        let entry = self.get(name)?;
        matches!(entry.kind, EntryKind::Task).then(|| self.build_task(entry, &Map::new()))
    }

    fn build_task(
        &self,
        entry: &Entry,
        overrides: &Map<String, Value>,
    ) -> Result<TaskConfig, TaskError> {
        let path = entry.path.as_ref().expect("tasks come from files");
        let cfg = if bigbench::is_task_file(path) {
            bigbench::task_config(path, &entry.name)?
        } else {
            load_with_includes(path)?
        };
        task_from_map(cfg, overrides, path)
    }

    fn build_group(
        &self,
        name: &str,
        raw: &Map<String, Value>,
        overrides: &Map<String, Value>,
        path: &Path,
        ancestors: &[&str],
    ) -> Result<Node, TaskError> {
        let mut config = GroupConfig::from_map(raw, path)?;
        config.group = name.to_string();
        let mut merged = config.overrides.clone();
        for (k, v) in overrides {
            merged.insert(k.clone(), v.clone());
        }
        let mut children = Vec::new();
        for item in &config.task {
            // A tag in a group's list stands for its tasks, which become the
            // group's own children (sorted by name), as in lm-eval.
            if let Some((members, item_overrides)) = self.tag_members(item, &merged) {
                for member in members {
                    let mut o = item_overrides.clone();
                    o.insert("task".into(), Value::String(member.clone()));
                    children.push(self.build(&self.entries[&member], &o, false, ancestors)?);
                }
                continue;
            }
            children.push(self.build_member(item, name, &merged, path, ancestors)?);
        }
        Ok(Node::Group {
            config: Box::new(config),
            children,
        })
    }

    /// The tasks of a tag a group lists, with the overrides they get.
    fn tag_members(
        &self,
        item: &Value,
        overrides: &Map<String, Value>,
    ) -> Option<(Vec<String>, Map<String, Value>)> {
        let (name, item_overrides) = match item {
            Value::String(s) => (s.as_str(), overrides.clone()),
            Value::Object(m) if !m.contains_key("group") => {
                let mut merged = overrides.clone();
                merged.extend(m.clone());
                (m.get("task")?.as_str()?, merged)
            }
            _ => return None,
        };
        let EntryKind::Tag(members) = &self.entries.get(name)?.kind else {
            return None;
        };
        let mut members: Vec<String> = members
            .iter()
            .filter(|m| self.entries.contains_key(*m))
            .cloned()
            .collect();
        members.sort();
        Some((members, item_overrides))
    }

    fn build_member(
        &self,
        item: &Value,
        group: &str,
        overrides: &Map<String, Value>,
        path: &Path,
        ancestors: &[&str],
    ) -> Result<Node, TaskError> {
        let (base, item_overrides) = match item {
            Value::String(s) => (s.clone(), overrides.clone()),
            Value::Object(m) => {
                if let Some(Value::String(sub)) = m.get("group") {
                    let inline: Map<String, Value> = m
                        .iter()
                        .filter(|(k, _)| k.as_str() != "group")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    if let Some(entry) = self.entries.get(sub) {
                        let mut merged = overrides.clone();
                        merged.extend(inline);
                        return self.build(entry, &merged, false, ancestors);
                    }
                    return self.build_group(
                        &format!("{group}::{sub}"),
                        m,
                        overrides,
                        path,
                        ancestors,
                    );
                }
                let Some(Value::String(base)) = m.get("task") else {
                    return Err(TaskError::Field {
                        path: path.to_path_buf(),
                        field: "task".into(),
                        message: format!(
                            "an entry of group `{group}` needs a `task` or `group` name"
                        ),
                    });
                };
                let mut merged = overrides.clone();
                merged.extend(m.clone());
                (base.clone(), merged)
            }
            _ => {
                return Err(TaskError::Field {
                    path: path.to_path_buf(),
                    field: "task".into(),
                    message: format!(
                        "group `{group}` lists {item}, which is not a name or a mapping"
                    ),
                })
            }
        };
        let Some(entry) = self.entries.get(&base) else {
            // A bare name no folder defines: say so, rather than read it as
            // an inline config with nothing in it.
            if item.is_string() {
                return Err(TaskError::UnknownName {
                    name: base.clone(),
                    hint: format!(" (listed in group `{group}`, {})", path.display()),
                });
            }
            let mut cfg = item_overrides;
            cfg.insert("task".into(), Value::String(format!("{group}::{base}")));
            return match task_from_map(cfg, &Map::new(), path)
                .and_then(|t| self.ports(&t).map(|_| t))
            {
                Ok(t) => Ok(Node::Task(Box::new(t))),
                Err(e @ (TaskError::PythonHook { .. } | TaskError::HookDiffers { .. })) => {
                    Ok(Node::Skipped {
                        name: base,
                        error: e.to_string(),
                    })
                }
                Err(TaskError::Field { field, .. })
                    if field == "task" || field == "output_type" =>
                {
                    Err(TaskError::UnknownName {
                        name: base.clone(),
                        hint: format!(" (listed in group `{group}`, {})", path.display()),
                    })
                }
                Err(e) => Err(e),
            };
        };
        match &entry.kind {
            // The caller expands tags into the group's children.
            EntryKind::Tag(_) => Err(TaskError::Field {
                path: path.to_path_buf(),
                field: "task".into(),
                message: format!("`{base}` in group `{group}` is a tag, not a task"),
            }),
            EntryKind::Group => self.build(entry, &item_overrides, false, ancestors),
            _ => {
                let mut o = item_overrides;
                o.insert("task".into(), Value::String(base));
                self.build(entry, &o, false, ancestors)
            }
        }
    }
}

/// Applies overrides and lm-eval's structural clean-up, then parses.
fn task_from_map(
    mut cfg: Map<String, Value>,
    overrides: &Map<String, Value>,
    path: &Path,
) -> Result<TaskConfig, TaskError> {
    for (k, v) in overrides {
        cfg.insert(k.clone(), v.clone());
    }
    for key in ["group", "task_list"] {
        cfg.remove(key);
    }
    TaskConfig::from_map(cfg, path)
}

fn register(cfg: &Map<String, Value>, path: &Path, index: &mut BTreeMap<String, Entry>) {
    let entry = |name: &str, kind| Entry {
        name: name.to_string(),
        kind,
        path: Some(path.to_path_buf()),
    };
    if let Some(Value::String(name)) = cfg.get("task").filter(|_| cfg.contains_key("class")) {
        index
            .entry(name.clone())
            .or_insert_with(|| entry(name, EntryKind::PythonTask));
        return;
    }
    if let Some(Value::String(name)) = cfg.get("group") {
        index
            .entry(name.clone())
            .or_insert_with(|| entry(name, EntryKind::Group));
        return;
    }
    let Some(Value::String(name)) = cfg.get("task") else {
        return;
    };
    if index.contains_key(name) {
        return;
    }
    index.insert(name.clone(), entry(name, EntryKind::Task));
    let tags: Vec<String> = match cfg.get("tag") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    };
    for tag in tags {
        let e = index.entry(tag.clone()).or_insert_with(|| Entry {
            name: tag.clone(),
            kind: EntryKind::Tag(BTreeSet::new()),
            path: None,
        });
        if let EntryKind::Tag(members) = &mut e.kind {
            members.insert(name.clone());
        }
    }
}
