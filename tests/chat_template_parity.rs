//! With a chat template, assay must build exactly the requests lm-eval
//! builds: for every golden in tests/golden/chat/ (made by lm-eval 0.4.13
//! with a model whose template is rendered the way `transformers` renders
//! it; see that folder's README), plan the same tasks through the library
//! with the same template and options and compare every request.

#[path = "support/chat_goldens.rs"]
mod chat_goldens;
#[path = "support/requests.rs"]
mod requests;

use std::collections::BTreeMap;
use std::path::PathBuf;

use assay::task::Registry;
use chat_goldens::{assay_requests, compare, golden_names, golden_requests, read_json, templates};

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

#[test]
fn chat_requests_match_lm_eval_for_every_chat_golden() {
    let dir = chat_dir();
    let goldens = golden_names(&dir);
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
        let theirs = golden_requests(&dir, name);
        let tasks: Vec<String> = meta["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        let problem = match assay_requests(&registry, tasks, &templates, &meta, "") {
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
