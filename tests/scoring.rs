//! End to end through the library with scripted backends whose right answers
//! are known: scores, aggregation, groups and the files a run writes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use assay::backend::{Backend, BackendError, ModelIdentity, OnAnswer};
use assay::engine;
use assay::invocation::{Invocation, Limit};
use assay::request::GenerationOptions;
use assay::results;
use assay::run::{self, score};
use assay::task::Registry;
use polars::prelude::*;

/// Answers arithmetic questions correctly (or always picks the first option),
/// scores text by its length, and generates the right count.
struct Scripted {
    identity: ModelIdentity,
    oracle: bool,
}

impl Scripted {
    fn new(oracle: bool) -> Scripted {
        Scripted {
            identity: ModelIdentity {
                spec: "scripted:test".into(),
                fingerprint: "sha256:0".into(),
                details: BTreeMap::new(),
            },
            oracle,
        }
    }
}

/// The value of the last "What is A op B?" in a prompt.
fn last_question(context: &str) -> Option<i64> {
    let q = context.rsplit("What is ").next()?;
    let q = q.split('?').next()?;
    let parts: Vec<&str> = q.split_whitespace().collect();
    let (a, op, b) = (
        parts.first()?.parse::<i64>().ok()?,
        *parts.get(1)?,
        parts.get(2)?.parse::<i64>().ok()?,
    );
    Some(match op {
        "+" => a + b,
        "-" => a - b,
        _ => a * b,
    })
}

impl Backend for Scripted {
    fn identity(&self) -> &ModelIdentity {
        &self.identity
    }
    fn loglikelihood(
        &mut self,
        requests: &[(&str, &str)],
        _: OnAnswer<(f64, bool)>,
    ) -> Result<Vec<(f64, bool)>, BackendError> {
        Ok(requests
            .iter()
            .map(|(ctx, cont)| {
                let value: Option<i64> = cont.trim().parse().ok();
                match (self.oracle, last_question(ctx), value) {
                    (true, Some(answer), Some(v)) => {
                        (-((answer - v).abs() as f64) - 0.5, answer == v)
                    }
                    // Prefers longer options: a fixed, known preference.
                    _ => (cont.len() as f64, false),
                }
            })
            .collect())
    }
    fn loglikelihood_rolling(
        &mut self,
        texts: &[&str],
        _: OnAnswer<f64>,
    ) -> Result<Vec<f64>, BackendError> {
        Ok(texts.iter().map(|t| -(t.len() as f64)).collect())
    }
    fn generate(
        &mut self,
        requests: &[(&str, &GenerationOptions)],
        _: OnAnswer<String>,
    ) -> Result<Vec<String>, BackendError> {
        Ok(requests.iter().map(|_| " 3 times".to_string()).collect())
    }
}

fn tasks_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tasks")
}

fn invocation(names: &[&str]) -> Invocation {
    let mut invocation = Invocation::new(names.iter().map(|s| s.to_string()).collect());
    invocation.limit = Some(Limit::Count(40));
    invocation
}

fn run(
    names: &[&str],
    oracle: bool,
) -> (
    run::Plan,
    Vec<score::TaskScores>,
    Vec<score::GroupScores>,
    engine::Answers,
) {
    let registry = Registry::scan(&[tasks_dir()]);
    let plan = run::plan(&registry, &invocation(names), false).unwrap();
    let answers = run::answer(&plan, &mut Scripted::new(oracle), &Default::default()).unwrap();
    let scored = run::score(&plan, &answers).unwrap();
    (plan, scored.tasks, scored.groups, answers)
}

#[test]
fn an_oracle_scores_full_marks_and_a_biased_model_scores_what_its_bias_predicts() {
    let (_, scored, _, _) = run(&["assay_arithmetic"], true);
    let acc = scored[0].scores["acc,none"];
    assert_eq!(acc.value, 1.0);
    assert_eq!(acc.stderr, Some(0.0));

    // Picking the longest option (first among equals): acc is the share of
    // documents whose gold is that option, computed here from the data.
    let (plan, scored, _, _) = run(&["assay_arithmetic"], false);
    let docs = &plan.tasks[0].docs;
    let expected: Vec<f64> = docs
        .iter()
        .map(|d| {
            let choices = d.choices.as_ref().unwrap();
            let max = choices.iter().map(|c| c.len() + 1).max().unwrap();
            let pred = choices.iter().position(|c| c.len() + 1 == max).unwrap();
            f64::from(u8::from(d.target.as_u64() == Some(pred as u64)))
        })
        .collect();
    let mean = expected.iter().sum::<f64>() / expected.len() as f64;
    let acc = scored[0].scores["acc,none"];
    assert!((acc.value - mean).abs() < 1e-12, "{} vs {mean}", acc.value);
    let var =
        expected.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (expected.len() - 1) as f64;
    assert!((acc.stderr.unwrap() - (var / expected.len() as f64).sqrt()).abs() < 1e-12);
}

#[test]
fn rolling_perplexities_follow_their_definitions() {
    let (plan, scored, _, _) = run(&["assay_wordlist"], false);
    let texts: Vec<String> = plan.tasks[0]
        .docs
        .iter()
        .map(|d| d.target.as_str().unwrap().to_string())
        .collect();
    let ll: f64 = texts.iter().map(|t| -(t.len() as f64)).sum();
    let words: f64 = texts
        .iter()
        .map(|t| t.split_whitespace().count() as f64)
        .sum();
    let bytes: f64 = texts.iter().map(|t| t.len() as f64).sum();
    let s = &scored[0].scores;
    assert!((s["word_perplexity,none"].value - (-ll / words).exp()).abs() < 1e-9);
    assert!((s["byte_perplexity,none"].value - (-ll / bytes).exp()).abs() < 1e-9);
    assert!((s["bits_per_byte,none"].value - (-ll / bytes / std::f64::consts::LN_2)).abs() < 1e-12);
}

#[test]
fn generation_is_filtered_then_matched() {
    let (plan, scored, _, _) = run(&["assay_counting"], false);
    // The scripted model always answers " 3 times"; the regex filter takes "3".
    let threes = plan.tasks[0]
        .docs
        .iter()
        .filter(|d| assay::python::value::py_str(&d.target) == "3")
        .count();
    let key = scored[0]
        .scores
        .keys()
        .find(|k| k.starts_with("exact_match,"))
        .unwrap()
        .clone();
    let got = scored[0].scores[&key].value;
    assert!(
        (got - threes as f64 / plan.tasks[0].docs.len() as f64).abs() < 1e-12,
        "{key}: {got}"
    );
    assert!(
        scored[0]
            .samples
            .iter()
            .all(|s| s.filtered == serde_json::json!("3")),
        "{:?}",
        scored[0].samples[0].filtered
    );
}

#[test]
fn groups_weight_by_size_and_runs_are_written_atomically() {
    let (_, scored, groups, _) = run(&["assay_core"], true);
    let group = groups.iter().find(|g| g.group == "assay_core").unwrap();
    let members: Vec<&score::TaskScores> = scored
        .iter()
        .filter(|t| t.scores.contains_key("acc,none"))
        .collect();
    let n: usize = members.iter().map(|t| t.n_samples).sum();
    let weighted: f64 = members
        .iter()
        .map(|t| t.scores["acc,none"].value * t.n_samples as f64)
        .sum::<f64>()
        / n as f64;
    assert!((group.scores["acc,none"].value - weighted).abs() < 1e-12);

    let out = tempfile::tempdir().unwrap();
    let mut job = run::Job::new(
        invocation(&["assay_core"]),
        run::Model {
            spec: "scripted:test".into(),
            args: BTreeMap::new(),
        },
        out.path().to_path_buf(),
    );
    job.variant = Some("v".into());
    job.cache = run::CachePlace::Off;
    let written = run::run_on(job, &mut Scripted::new(true)).unwrap();
    let dir = written.dir;
    let names: Vec<String> = std::fs::read_dir(out.path().join("v"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [dir.file_name().unwrap().to_string_lossy().into_owned()],
        "no partial folder is left behind"
    );
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    for key in [
        "results",
        "groups",
        "configs",
        "versions",
        "n-shot",
        "higher_is_better",
        "n-samples",
        "config",
        "assay",
    ] {
        assert!(run.get(key).is_some(), "run.json lacks `{key}`");
    }
    assert_eq!(
        run["results"]["assay_arithmetic"]["acc,none"],
        serde_json::json!(1.0)
    );
    assert_eq!(
        run["assay"]["tasks"]["assay_arithmetic"]["data_files"]
            .as_object()
            .unwrap()
            .len(),
        2
    );
    let df = ParquetReader::new(std::fs::File::open(dir.join("samples.parquet")).unwrap())
        .finish()
        .unwrap();
    let rows: usize = scored.iter().map(|t| t.samples.len()).sum();
    assert_eq!(df.height(), rows);
    for col in [
        "task",
        "doc_id",
        "filter",
        "doc_hash",
        "prompt_hash",
        "target_hash",
        "arguments",
        "resps",
        "filtered_resps",
        "acc",
    ] {
        assert!(df.column(col).is_ok(), "samples.parquet lacks `{col}`");
    }
}

#[test]
fn doc_hashes_match_lm_eval() {
    // lm-eval's logged hashes for the built-in arithmetic task.
    let golden = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/assay_arithmetic.hashes.jsonl"),
    )
    .unwrap();
    let (plan, _, _, _) = run(&["assay_arithmetic"], true);
    for (line, doc) in golden.lines().zip(&plan.tasks[0].docs) {
        let g: serde_json::Value = serde_json::from_str(line).unwrap();
        let prompt = doc.requests[0].arguments()[0].as_str().unwrap().to_string();
        let (dh, ph, th) = results::doc_hashes(&doc.doc, &prompt, &doc.target);
        assert_eq!(
            (dh.as_str(), ph.as_str(), th.as_str()),
            (
                g["doc_hash"].as_str().unwrap(),
                g["prompt_hash"].as_str().unwrap(),
                g["target_hash"].as_str().unwrap()
            ),
            "doc {}",
            doc.doc_id
        );
    }
}
