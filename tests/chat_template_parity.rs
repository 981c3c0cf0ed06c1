//! With a chat template, assay must build exactly the requests lm-eval
//! builds: for every golden in tests/golden/chat/ (made by lm-eval 0.4.13
//! with a model whose template is rendered the way `transformers` renders
//! it; see that folder's README), plan the same tasks through the library
//! with the same template and options and compare every request.

#[path = "support/requests.rs"]
mod requests;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use assay::invocation::{ChatTemplateRecord, Invocation};
use assay::prompt::chat::ChatTemplate;
use assay::run;
use assay::task::Registry;
use requests::same;
use serde_json::{json, Value};

/// Goldens assay is known not to reproduce yet, with the reason. The test
/// fails if one of them starts to match (so the entry can go) or if any
/// other golden differs.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chat_dir() -> PathBuf {
    root().join("tests/golden/chat")
}

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The compiled templates of templates.json, by name.
fn templates() -> BTreeMap<String, Arc<ChatTemplate>> {
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
/// golden's format and order.
fn assay_requests(
    registry: &Registry,
    templates: &BTreeMap<String, Arc<ChatTemplate>>,
    meta: &Value,
) -> Result<Vec<Value>, String> {
    let template = meta["template"].as_str().unwrap();
    let tasks: Vec<String> = meta["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let mut invocation = Invocation::new(tasks);
    invocation.fewshot_seed = meta["fewshot_random_seed"].as_u64().unwrap_or(1234);
    invocation.system_instruction = meta["system_instruction"].as_str().map(str::to_string);
    invocation.chat_template = Some(ChatTemplateRecord::of(&templates[template]));
    invocation.fewshot_as_multiturn = meta["fewshot_as_multiturn"].as_bool().unwrap();
    let plan = run::plan(registry, &invocation, false).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for task in &plan.tasks {
        for doc in &task.docs {
            for (idx, request) in doc.requests.iter().enumerate() {
                out.push(json!({
                    "task": task.config.task,
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
fn compare(ours: &[Value], theirs: &[Value]) -> Option<String> {
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

#[test]
fn chat_requests_match_lm_eval_for_every_chat_golden() {
    let dir = chat_dir();
    let mut goldens: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            name.strip_suffix(".requests.jsonl").map(str::to_string)
        })
        .collect();
    goldens.sort();
    assert!(
        goldens.len() >= 40,
        "expected the chat goldens in {}, found {}",
        dir.display(),
        goldens.len()
    );
    let registry = Registry::scan(&[root().join("tests/fixtures/lmeval")]);
    let templates = templates();
    let known: BTreeMap<&str, &str> = KNOWN_DIFFERENCES.iter().copied().collect();
    let mut failures = Vec::new();
    let mut fixed = Vec::new();
    let mut passed = 0;
    for name in &goldens {
        let meta = read_json(&dir.join(format!("{name}.meta.json")));
        let theirs: Vec<Value> =
            std::fs::read_to_string(dir.join(format!("{name}.requests.jsonl")))
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        let problem = match assay_requests(&registry, &templates, &meta) {
            Err(e) => Some(format!("assay failed: {e}")),
            Ok(ours) => compare(&ours, &theirs),
        };
        match (problem, known.get(name.as_str())) {
            (None, None) => passed += 1,
            (None, Some(_)) => fixed.push(name.clone()),
            (Some(_), Some(_)) => {}
            (Some(p), None) => failures.push(format!("{name}: {p}")),
        }
    }
    for name in known.keys() {
        assert!(
            goldens.iter().any(|g| g == name),
            "KNOWN_DIFFERENCES names {name}, which has no golden"
        );
    }
    assert!(
        fixed.is_empty(),
        "these goldens now match lm-eval: remove them from KNOWN_DIFFERENCES: {fixed:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {} chat goldens differ from lm-eval ({passed} match):\n{}",
        failures.len(),
        goldens.len(),
        failures.join("\n")
    );
}
