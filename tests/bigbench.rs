//! BIG-bench `task.json` tasks: discovered as tasks and groups, prompted and
//! scored as BIG-bench 1.0.0's json_task.py prompts and scores them.
//!
//! References come from `tests/fixtures/bigbench/expected.jsonl`, made by
//! running BIG-bench's own `default_format_fn`, `make_nshot_dataset` and
//! `measure_multiple_choice_grade` on the invented fixtures (see the README
//! there).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assay::backend::{Backend, BackendError, ModelIdentity, OnAnswer};
use assay::invocation::Invocation;
use assay::request::GenerationOptions;
use assay::run::{self, score};
use assay::task::Registry;
use assert_cmd::Command;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bigbench")
}

fn expected() -> Vec<Value> {
    std::fs::read_to_string(fixtures().join("expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn plan(names: &[&str], shots: usize) -> run::Plan {
    let registry = Registry::scan(&[fixtures()]);
    let mut invocation = Invocation::new(names.iter().map(|s| s.to_string()).collect());
    invocation.num_fewshot = Some(shots);
    run::plan(&registry, &invocation, false).unwrap()
}

/// The context and continuations of one document's requests.
fn prompt_and_continuations(doc: &assay::prompt::Prepared) -> (String, Vec<String>) {
    let args: Vec<Value> = doc.requests.iter().map(|r| r.arguments()).collect();
    let prompt = args[0][0].as_str().unwrap().to_string();
    let continuations = args
        .iter()
        .filter_map(|a| a.get(1).and_then(Value::as_str).map(str::to_string))
        .collect();
    (prompt, continuations)
}

#[test]
fn prompts_are_big_bench_prompts() {
    // Spelled out for one document. json_task.py: default_format_fn gives
    // "\nQ: " + input + "\n  choice: " + choices sorted and permuted by
    // RandomState(42) + "\nA: "; the prompt is task_prefix + that.
    let p = plan(&["mc_fractional"], 0);
    let (prompt, choices) = prompt_and_continuations(&p.tasks[0].docs[0]);
    assert_eq!(
        prompt,
        "Choose the best answer.\n\nQ: Which is warmest?\n  choice: lava\n  choice: tea\n  choice: ice\n  choice: snow\nA: "
    );
    assert_eq!(choices, ["ice", "tea", "lava", "snow"], "file order");
    // make_nshot_dataset with one shot: RandomState(42) draws example 2 for
    // document 0, shown with its target, then the separator ("\n").
    let p = plan(&["mc_fractional"], 1);
    let (prompt, _) = prompt_and_continuations(&p.tasks[0].docs[0]);
    assert_eq!(
        prompt,
        "Choose the best answer.\n\nQ: Which number is prime?\n  choice: 4\n  choice: 9\n  choice: 1\n  choice: 7\nA: 7\n\nQ: Which is warmest?\n  choice: lava\n  choice: tea\n  choice: ice\n  choice: snow\nA: "
    );
    // With several targets, the shot shows the one `rng.choice` drew: here
    // "Three", the second of ["three", "Three"].
    let p = plan(&["gen_targets"], 1);
    let (prompt, _) = prompt_and_continuations(&p.tasks[0].docs[4]);
    assert_eq!(
        prompt,
        "Input: Spell 3 in words.\nOutput: Three\n\nInput: Plural of mouse?\nOutput: "
    );

    // Every prompt of every fixture for 0, 1 and 2 shots.
    let mut compared = 0;
    let mut plans: BTreeMap<(String, u64), run::Plan> = BTreeMap::new();
    for want in expected() {
        let Some(doc_id) = want["doc"].as_u64() else {
            continue;
        };
        let (task, shots) = (
            want["task"].as_str().unwrap(),
            want["shots"].as_u64().unwrap(),
        );
        let p = plans
            .entry((task.to_string(), shots))
            .or_insert_with(|| plan(&[task], shots as usize));
        let (prompt, continuations) = prompt_and_continuations(&p.tasks[0].docs[doc_id as usize]);
        {
            assert_eq!(
                prompt, want["prompt"],
                "{} {shots}-shot doc {doc_id}",
                want["task"]
            );
            if let Some(choices) = want.get("choices") {
                assert_eq!(
                    continuations,
                    choices
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap())
                        .collect::<Vec<_>>()
                );
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 52);
}

/// Scores a choice by minus its length (so ties are common and BIG-bench's
/// hash tie-break decides), and answers questions with extra text that
/// BIG-bench's post-processing removes.
struct Scripted {
    identity: ModelIdentity,
}

impl Scripted {
    fn new() -> Scripted {
        Scripted {
            identity: ModelIdentity {
                spec: "scripted:bigbench".into(),
                fingerprint: "sha256:0".into(),
                details: BTreeMap::new(),
            },
        }
    }
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
            .map(|(_, cont)| (-(cont.chars().count() as f64), false))
            .collect())
    }
    fn loglikelihood_rolling(
        &mut self,
        texts: &[&str],
        _: OnAnswer<f64>,
    ) -> Result<Vec<f64>, BackendError> {
        Ok(vec![0.0; texts.len()])
    }
    fn generate(
        &mut self,
        requests: &[(&str, &GenerationOptions)],
        _: OnAnswer<String>,
    ) -> Result<Vec<String>, BackendError> {
        Ok(requests
            .iter()
            .map(|(ctx, options)| {
                assert!(options.until.is_empty(), "BIG-bench cuts after generating");
                let question = ctx.rsplit("Input: ").next().unwrap();
                let answer = if question.starts_with("Double 4.") {
                    "Eight. Or 8"
                } else if question.starts_with("Plural of mouse?") {
                    "\nmice\n"
                } else if question.starts_with("Half of 10?") {
                    " 5"
                } else {
                    "no idea"
                };
                answer.to_string()
            })
            .collect())
    }
}

fn run(names: &[&str], shots: usize) -> (Vec<score::TaskScores>, Vec<score::GroupScores>) {
    let p = plan(names, shots);
    let answers = run::answer(&p, &mut Scripted::new(), &Default::default()).unwrap();
    let scored = run::score(&p, &answers).unwrap();
    (scored.tasks, scored.groups)
}

fn expected_grade(task: &str, shots: usize) -> f64 {
    expected()
        .iter()
        .find(|e| {
            e["task"] == task && e["shots"] == shots && e.get("multiple_choice_grade").is_some()
        })
        .unwrap()["multiple_choice_grade"]
        .as_f64()
        .unwrap()
}

#[test]
fn fractional_grades_and_ties_match_big_bench() {
    for shots in [0, 1] {
        let (scored, _) = run(&["mc_fractional"], shots);
        let grade = scored[0].scores["multiple_choice_grade,none"].value;
        assert_eq!(
            grade,
            expected_grade("mc_fractional", shots),
            "{shots}-shot"
        );
        // Partial credit is kept per document: "tea" (0.5) wins the tie
        // with "ice" in the first question.
        assert_eq!(scored[0].samples[0].metrics["multiple_choice_grade"], 0.5);
    }
    assert_eq!(expected_grade("mc_fractional", 0), 0.75);
}

#[test]
fn a_task_with_subtasks_is_their_plain_mean() {
    let (scored, groups) = run(&["suite"], 0);
    let alpha = scored.iter().find(|t| t.task == "suite:alpha").unwrap();
    let beta = scored.iter().find(|t| t.task == "suite:beta").unwrap();
    let a = alpha.scores["multiple_choice_grade,none"].value;
    let b = beta.scores["multiple_choice_grade,none"].value;
    assert_eq!(a, expected_grade("suite:alpha", 0));
    assert_eq!(b, expected_grade("suite:beta", 0));
    let suite = groups.iter().find(|g| g.group == "suite").unwrap();
    assert_eq!(suite.alias, "invented_suite");
    // BIG-bench's add_aggregate_scores: the mean over subtasks, unweighted
    // (the subtasks have 2 and 4 examples).
    assert_eq!(
        suite.scores["multiple_choice_grade,none"].value,
        (a + b) / 2.0
    );
}

#[test]
fn generated_text_is_postprocessed_then_matched_exactly() {
    let (scored, _) = run(&["gen_targets"], 0);
    let t = &scored[0];
    // json_task's default output_regex keeps "Eight" (a listed target) and
    // "mice"; " 5" keeps its space and so is not "5".
    let filtered: Vec<&str> = t
        .samples
        .iter()
        .map(|s| s.filtered.as_str().unwrap())
        .collect();
    assert_eq!(
        filtered,
        ["no idea", "Eight", "no idea", "no idea", "mice", " 5"]
    );
    assert_eq!(t.scores["exact_str_match,postprocess"].value, 2.0 / 6.0);
}

fn assay(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.env("ASSAY_TASKS_DIR", dir.join("no-builtin"));
    cmd
}

#[test]
fn the_cli_lists_and_runs_task_json_folders() {
    let out = assay(&fixtures())
        .args(["tasks", "list", "--include-path"])
        .arg(fixtures())
        .assert()
        .success();
    let listing = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for (name, kind) in [
        ("mc_fractional", "task"),
        ("gen_targets", "task"),
        ("suite", "group"),
        ("suite:alpha", "task"),
        ("suite:beta", "task"),
    ] {
        assert!(
            listing
                .lines()
                .any(|l| l.split_whitespace().take(2).eq([name, kind])),
            "{name} ({kind}) missing from:\n{listing}"
        );
    }
    let out = assay(&fixtures())
        .args(["requests", "--tasks", "suite,gen_targets", "--include-path"])
        .arg(fixtures())
        .assert()
        .success();
    let lines = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    // 2 + 3 choices in alpha, 2 + 2 + 3 + 2 in beta, 6 generations.
    assert_eq!(lines.lines().count(), 5 + 9 + 6);
}

/// Writes `task.json` into a folder named `name` under a new temp dir.
fn bad_task(name: &str, json: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(name)).unwrap();
    std::fs::write(dir.path().join(name).join("task.json"), json).unwrap();
    dir
}

fn fails_with(dir: &Path, task: &str, needles: &[&str]) {
    let out = assay(dir)
        .args(["requests", "--tasks", task, "--include-path"])
        .arg(dir)
        .assert()
        .code(2);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line expected:\n{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "`{n}` missing from: {stderr}");
    }
}

#[test]
fn a_bad_task_json_is_one_clear_error() {
    let dir = bad_task(
        "empty",
        r#"{"name": "empty", "description": "d", "keywords": []}"#,
    );
    fails_with(
        dir.path(),
        "empty",
        &["empty/task.json", "no `examples`", "subtasks"],
    );
    let dir = bad_task(
        "no_input",
        r#"{"name": "n", "examples": [{"input": "a", "target": "b"}, {"target": "c"}]}"#,
    );
    fails_with(
        dir.path(),
        "no_input",
        &["no_input/task.json", "examples[1] has no `input`"],
    );
    let dir = bad_task("syntax", r#"{"name": "s", "examples": [{"input": "#);
    fails_with(
        dir.path(),
        "syntax",
        &["syntax/task.json", "invalid task.json"],
    );
    let dir = bad_task(
        "typed",
        r#"{"name": "t", "examples": [{"input": ["a"], "target": "b"}]}"#,
    );
    fails_with(
        dir.path(),
        "typed",
        &["typed/task.json", "examples[0]: `input` must be a string"],
    );
}
