//! Planning a chat-template golden's run through assay's library and
//! comparing its requests with lm-eval's (tests/golden/chat/).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use assay::invocation::{ChatTemplateRecord, Invocation};
use assay::ports::python::HookMode;
use assay::prompt::chat::ChatTemplate;
use assay::run;
use assay::task::Registry;
use serde_json::{json, Value};

use crate::requests::same;

fn chat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/chat")
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The goldens in `dir` (each `NAME.requests.jsonl` with its
/// `NAME.meta.json`), by name, sorted.
pub fn golden_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            name.strip_suffix(".requests.jsonl").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

/// The requests lm-eval logged for the golden `name` in `dir`.
pub fn golden_requests(dir: &Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join(format!("{name}.requests.jsonl")))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The compiled templates of templates.json, by name.
pub fn templates() -> BTreeMap<String, Arc<ChatTemplate>> {
    let index = read_json(&chat_dir().join("templates.json"));
    index
        .as_object()
        .expect("templates.json is an object")
        .iter()
        .map(|(name, t)| {
            let file = chat_dir().join(t["file"].as_str().unwrap());
            let source = std::fs::read_to_string(&file).unwrap();
            let template = ChatTemplate::new(
                &source,
                t["bos_token"].as_str().unwrap(),
                t["eos_token"].as_str().unwrap(),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            (name.clone(), Arc::new(template))
        })
        .collect()
}

/// assay's requests for the run a golden's meta.json describes, in the
/// golden's format and order, task names without `prefix`.
pub fn assay_requests(
    registry: &Registry,
    tasks: Vec<String>,
    templates: &BTreeMap<String, Arc<ChatTemplate>>,
    meta: &Value,
    prefix: &str,
) -> Result<Vec<Value>, String> {
    let template = meta["template"].as_str().unwrap();
    let mut invocation = Invocation::new(tasks);
    invocation.fewshot_seed = meta["fewshot_random_seed"].as_u64().unwrap_or(1234);
    invocation.system_instruction = meta["system_instruction"].as_str().map(str::to_string);
    invocation.chat_template = Some(ChatTemplateRecord::of(&templates[template]));
    invocation.fewshot_as_multiturn = meta["fewshot_as_multiturn"].as_bool().unwrap();
    if meta["python_hooks"].as_bool().unwrap_or(false) {
        invocation.python_hooks = HookMode::Missing;
    }
    let plan = run::plan(registry, &invocation, false).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for task in &plan.tasks {
        let name = task.config.task.as_str();
        let name = name.strip_prefix(prefix).unwrap_or(name);
        for doc in &task.docs {
            for (idx, request) in doc.requests.iter().enumerate() {
                out.push(json!({
                    "task": name,
                    "doc_id": doc.doc_id,
                    "request_type": request.kind(),
                    "idx": idx,
                    "arguments": request.arguments(),
                }));
            }
        }
    }
    out.sort_by_key(|r| {
        (
            r["task"].as_str().unwrap_or("").to_string(),
            r["doc_id"].as_u64(),
            r["idx"].as_u64(),
        )
    });
    Ok(out)
}

/// Where two strings first differ, with a little context.
fn first_divergence(a: &str, b: &str) -> String {
    let at = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map(|((i, _), _)| i)
        .unwrap_or(a.len().min(b.len()));
    let at = (0..=at)
        .rev()
        .find(|i| a.is_char_boundary(*i) && b.is_char_boundary(*i))
        .unwrap_or(0);
    let from = (0..=at.saturating_sub(60))
        .rev()
        .find(|i| a.is_char_boundary(*i) && b.is_char_boundary(*i))
        .unwrap_or(0);
    let tail = |s: &str| s[from..].chars().take(140).collect::<String>();
    format!(
        "at byte {at}:\n    assay:   {:?}\n    lm-eval: {:?}",
        tail(a),
        tail(b)
    )
}

/// The first difference between assay's requests and a golden, if any.
pub fn compare(ours: &[Value], theirs: &[Value]) -> Option<String> {
    if ours.len() != theirs.len() {
        return Some(format!(
            "{} requests, lm-eval sent {}",
            ours.len(),
            theirs.len()
        ));
    }
    let (a, b) = ours.iter().zip(theirs).find(|(a, b)| !same(a, b))?;
    let mut msg = format!(
        "first difference: task {} doc {} idx {}",
        b["task"], b["doc_id"], b["idx"]
    );
    if a["task"] != b["task"] || a["doc_id"] != b["doc_id"] || a["idx"] != b["idx"] {
        msg += &format!(
            "\n  assay's request is task {} doc {} idx {}",
            a["task"], a["doc_id"], a["idx"]
        );
    }
    for (i, (x, y)) in a["arguments"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(b["arguments"].as_array().into_iter().flatten())
        .enumerate()
    {
        if !same(x, y) {
            match (x.as_str(), y.as_str()) {
                (Some(x), Some(y)) => {
                    msg += &format!("\n  argument {i} {}", first_divergence(x, y));
                }
                _ => msg += &format!("\n  argument {i}:\n    assay:   {x}\n    lm-eval: {y}"),
            }
        }
    }
    if a["request_type"] != b["request_type"] {
        msg += &format!(
            "\n  request_type: assay {} lm-eval {}",
            a["request_type"], b["request_type"]
        );
    }
    Some(msg)
}
