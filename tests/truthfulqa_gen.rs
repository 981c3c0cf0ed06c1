//! TruthfulQA's generation scoring against lm-eval's own values
//! (tests/golden/text_overlap.md): BLEU and ROUGE of prediction/reference
//! pairs, and the whole `process_results_gen` of documents and completions.

use assay::metric::text_overlap::{bleu, rouge};
use assay::metric::ItemValue;
use assay::ports::{self, Native};
use serde_json::Value;

fn golden(name: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Equal to within rounding (a null in the golden is NaN).
fn close(got: f64, want: &Value) -> bool {
    match want.as_f64() {
        None => got.is_nan(),
        Some(w) => (got - w).abs() <= 1e-9 * w.abs().max(1.0),
    }
}

#[test]
fn bleu_and_rouge_equal_lm_evals() {
    let vectors = golden("text_overlap.jsonl");
    assert!(vectors.len() >= 100, "{} vectors", vectors.len());
    let mut wrong = Vec::new();
    for v in &vectors {
        let (p, r) = (
            v["prediction"].as_str().unwrap(),
            v["reference"].as_str().unwrap(),
        );
        let b = bleu(p, r);
        let [r1, r2, rl] = rouge(p, r);
        for (name, got) in [
            ("bleu", b),
            ("rouge1", r1),
            ("rouge2", r2),
            ("rougeLsum", rl),
        ] {
            if !close(got, &v[name]) {
                wrong.push(format!("{name}({p:?}, {r:?}) = {got}, lm-eval {}", v[name]));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} differ:\n{}",
        wrong.len(),
        vectors.len() * 4,
        wrong.join("\n")
    );
}

#[test]
fn process_results_gen_equals_lm_evals() {
    let port = ports::all()
        .find(|p| p.canonical == "truthfulqa.process_results_gen")
        .unwrap();
    let Native::Generated(f) = port.native else {
        panic!("a generation port")
    };
    let cases = golden("truthfulqa_gen_results.jsonl");
    assert!(cases.len() >= 20);
    let mut wrong = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let doc = case["doc"].as_object().unwrap();
        let completion = case["completion"].as_str().unwrap().to_string();
        let values = f(doc, &[completion]).unwrap();
        let want = case["results"].as_object().unwrap();
        assert_eq!(values.len(), want.len(), "case {i}");
        for (name, value) in values {
            let ItemValue::Score(got) = value else {
                panic!("a score")
            };
            if !close(got, &want[&name]) {
                wrong.push(format!("case {i} {name}: {got}, lm-eval {}", want[&name]));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
