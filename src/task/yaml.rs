//! Reading lm-eval's YAML dialect into plain JSON values.
//!
//! lm-eval task files are ordinary YAML plus two extensions: `!function
//! module.name` tags that point at Python code, and `include:` keys that pull
//! in other files. Tags are kept (as a one-key marker object, see [`HOOK_KEY`])
//! so the task layer can refuse Python hooks by name instead of silently
//! treating them as strings; includes are resolved here, shallowly and with the
//! including file winning, exactly as lm-eval merges them.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Tagged;

use super::TaskError;

/// A `!function module.name` tag becomes `{HOOK_KEY: "module.name"}`.
pub const HOOK_KEY: &str = "!function";

/// One YAML node with the tag the parser saw on it.
struct Node(Value);

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Tagged(Raw(value), tag) = Tagged::<Raw>::deserialize(deserializer)?;
        Ok(Node(match tag.as_deref() {
            Some("!function") => {
                let name = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let mut marker = Map::new();
                marker.insert(HOOK_KEY.to_string(), Value::String(name));
                Value::Object(marker)
            }
            _ => value,
        }))
    }
}

/// An untagged view of a node whose children are again [`Node`]s.
struct Raw(Value);

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor).map(Raw)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Node::deserialize(d).map(|n| n.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Node(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some((key, Node(v))) = map.next_entry::<Node, Node>()? {
            let key = match key.0 {
                Value::String(s) => s,
                other => other.to_string(),
            };
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Parses YAML text into a JSON value, keeping `!function` tags as markers.
pub fn parse(text: &str, path: &Path) -> Result<Value, TaskError> {
    // Only true/false are booleans: YAML 1.1's `y`/`n` would turn keys and
    // choices such as `n` into `false`, which PyYAML (lm-eval's parser) does not.
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    // PyYAML keeps the last of repeated keys, and some of lm-eval's own
    // configs repeat one (`num_fewshot`, `test_split`).
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
    let Node(value) = serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|e| {
        TaskError::Yaml {
            path: path.to_path_buf(),
            message: first_line(&e.to_string()),
        }
    })?;
    Ok(value)
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads a YAML file and resolves its `include:` chain: each included file
/// (relative to the including file's folder) is merged in list order, then
/// the including file's own keys win. Cycles are an error.
pub fn load_with_includes(path: &Path) -> Result<Map<String, Value>, TaskError> {
    load_inner(path, &mut BTreeSet::new())
}

fn load_inner(path: &Path, seen: &mut BTreeSet<PathBuf>) -> Result<Map<String, Value>, TaskError> {
    let canonical = path.canonicalize().map_err(|e| TaskError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if !seen.insert(canonical.clone()) {
        return Err(TaskError::Field {
            path: path.to_path_buf(),
            field: "include".into(),
            message: "include cycle: this file includes itself, directly or through others".into(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| TaskError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let Value::Object(mut cfg) = parse(&text, path)? else {
        return Err(TaskError::Field {
            path: path.to_path_buf(),
            field: "(top level)".into(),
            message: "a task or group config must be a YAML mapping".into(),
        });
    };
    let Some(includes) = cfg.remove("include") else {
        return Ok(cfg);
    };
    let names: Vec<Value> = match includes {
        Value::Array(items) => items,
        single => vec![single],
    };
    let folder = canonical.parent().unwrap_or(Path::new("."));
    let mut merged = Map::new();
    for name in names {
        let Value::String(name) = name else {
            return Err(TaskError::Field {
                path: path.to_path_buf(),
                field: "include".into(),
                message: "must be a file name or a list of file names".into(),
            });
        };
        let included = folder.join(&name);
        if !included.is_file() {
            return Err(TaskError::Field {
                path: path.to_path_buf(),
                field: "include".into(),
                message: format!("included file {} does not exist", included.display()),
            });
        }
        let mut inc = load_inner(&included, seen)?;
        inc.remove("task_list");
        // A hook resolves beside the file that names it: record where that
        // is, relative to this file, when it is in another folder.
        let dir = Path::new(&name)
            .parent()
            .filter(|d| !d.as_os_str().is_empty());
        for (k, mut v) in inc {
            if let Some(dir) = dir {
                relocate_hooks(&mut v, dir);
            }
            merged.insert(k, v);
        }
    }
    seen.remove(&canonical);
    for (k, v) in cfg {
        merged.insert(k, v);
    }
    Ok(merged)
}

/// The key of a marker that holds the folder of the file that named the
/// hook, relative to the task file's folder (only when they differ).
pub const HOOK_DIR_KEY: &str = "!dir";

/// Prefixes `dir` to the folder of every hook marker inside `value`.
fn relocate_hooks(value: &mut Value, dir: &Path) {
    match value {
        Value::Object(m) if hook_name(&Value::Object(m.clone())).is_some() => {
            let inner = m.get(HOOK_DIR_KEY).and_then(Value::as_str).unwrap_or("");
            let joined = dir.join(inner);
            let joined = joined.to_string_lossy();
            m.insert(
                HOOK_DIR_KEY.into(),
                Value::String(joined.trim_end_matches('/').to_string()),
            );
        }
        Value::Object(m) => m.values_mut().for_each(|v| relocate_hooks(v, dir)),
        Value::Array(items) => items.iter_mut().for_each(|v| relocate_hooks(v, dir)),
        _ => {}
    }
}

/// The Python function a marker names, if `value` is a `!function` marker.
pub fn hook_name(value: &Value) -> Option<&str> {
    match value {
        Value::Object(m) if m.len() == 1 || (m.len() == 2 && m.contains_key(HOOK_DIR_KEY)) => {
            m.get(HOOK_KEY).and_then(Value::as_str)
        }
        _ => None,
    }
}

/// The folder a marker's hook resolves in, relative to the task file's.
pub fn hook_dir(value: &Value) -> Option<&str> {
    value.get(HOOK_DIR_KEY).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_keeps_its_last_value_as_pyyaml_does() {
        let v = parse(
            "num_fewshot: 5\ntask: t\nnum_fewshot: 0\n",
            Path::new("x.yaml"),
        )
        .unwrap();
        assert_eq!(v["num_fewshot"], 0);
    }

    #[test]
    fn function_tags_become_markers() {
        let v = parse(
            "doc_to_text: !function utils.doc_to_text\nn: 3\nx: [a, 1.5, y, true]\n",
            Path::new("t.yaml"),
        )
        .unwrap();
        assert_eq!(hook_name(&v["doc_to_text"]), Some("utils.doc_to_text"));
        assert_eq!(v["n"], Value::from(3));
        assert_eq!(v["x"], serde_json::json!(["a", 1.5, "y", true]));
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let err = parse("a: [1, 2\n", Path::new("bad.yaml")).unwrap_err();
        assert!(err.to_string().contains("bad.yaml"), "{err}");
    }
}
