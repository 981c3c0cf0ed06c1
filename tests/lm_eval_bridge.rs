//! The lm-eval bridge (`--model lm-eval:hf`) against lm-eval itself: on a
//! tiny safetensors model made here (tests/support/tiny_hf_model.py), assay
//! through the bridge and `lm_eval --model hf` give the same answers to the
//! same requests, for all three request kinds; answers are cached and a
//! worker that dies keeps what it answered; errors say what to install or
//! fix.
//!
//! Needs a Python with lm-eval[hf], torch and transformers:
//! `scripts/fetch-lm-eval-python.sh` makes one in `.lm-eval/venv` (`.ci/run`
//! runs it), or set `ASSAY_TEST_LM_EVAL_PYTHON`.

#[path = "support/lm_eval_python.rs"]
mod lm_eval_python;
#[path = "support/runs.rs"]
mod runs;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;
use lm_eval_python::python;
use polars::prelude::*;
use serde_json::Value;

/// Each answer of a run, by (task, doc_id), as its leaf values.
type Answers = Vec<((String, i64), Vec<String>)>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A folder that lives as long as the test process.
fn kept_dir() -> PathBuf {
    tempfile::tempdir().unwrap().keep()
}

/// The tiny model (`model/`) and its adapter (`adapter/`), made once per
/// test process.
fn made() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = kept_dir().join("tiny-llama");
        let out = std::process::Command::new(python())
            .arg(root().join("tests/support/tiny_hf_model.py"))
            .arg(&dir)
            .arg("7")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

fn model() -> PathBuf {
    made().join("model")
}

fn adapter() -> PathBuf {
    made().join("adapter")
}

/// Three tasks, one per request kind, over documents written here; data
/// paths are absolute so that lm-eval reads them from any folder.
fn tasks() -> &'static Path {
    static TASKS: OnceLock<PathBuf> = OnceLock::new();
    TASKS.get_or_init(|| {
        let dir = kept_dir().join("tasks");
        std::fs::create_dir_all(&dir).unwrap();
        let mut mc = String::new();
        let mut train = String::new();
        let mut generation = String::new();
        let mut rolling = String::new();
        for i in 0..12u32 {
            let (c, d) = (i * 5 % 30, i * 11 % 20);
            train.push_str(&format!(
                "{{\"q\": \"What is {c} plus {d}?\", \"choices\": [\"{}\", \"{}\", \"{}\"], \"gold\": 0}}\n",
                c + d,
                c * d,
                c + d + 2
            ));
            let (a, b) = (i * 7 % 50, i * 3 % 40);
            mc.push_str(&format!(
                "{{\"q\": \"What is {a} plus {b}?\", \"choices\": [\"{}\", \"{}\", \"{}\"], \"gold\": {}}}\n",
                a + b,
                a + b + 1,
                a * b,
                i % 3
            ));
            generation.push_str(&format!(
                "{{\"q\": \"What is {a} plus {b}?\", \"a\": \"{}\"}}\n",
                a + b
            ));
            rolling.push_str(&format!(
                "{{\"text\": \"the number {a} is on the {b} and it was for the {i}\"}}\n"
            ));
        }
        let data = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let (mc, train, generation, rolling) = (
            data("mc.jsonl", &mc),
            data("train.jsonl", &train),
            data("gen.jsonl", &generation),
            data("roll.jsonl", &rolling),
        );
        let source = |file: &str| {
            format!("dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {file}\ntest_split: test")
        };
        let write = |name: &str, lines: &[String]| {
            std::fs::write(dir.join(name), lines.join("\n") + "\n").unwrap();
        };
        write(
            "bridge_mc.yaml",
            &[
                "task: bridge_mc".into(),
                "dataset_path: json".into(),
                "dataset_kwargs:".into(),
                "  data_files:".into(),
                format!("    train: {train}"),
                format!("    test: {mc}"),
                "training_split: train".into(),
                "test_split: test".into(),
                "num_fewshot: 2".into(),
                "output_type: multiple_choice".into(),
                r#"doc_to_text: "Question: {{q}}\nAnswer:""#.into(),
                r#"doc_to_choice: "{{choices}}""#.into(),
                "doc_to_target: gold".into(),
                "metric_list:".into(),
                "  - metric: acc".into(),
                "  - metric: acc_norm".into(),
            ],
        );
        write(
            "bridge_gen.yaml",
            &[
                "task: bridge_gen".into(),
                source(&generation),
                "output_type: generate_until".into(),
                r#"doc_to_text: "{{q}} Answer:""#.into(),
                "doc_to_target: a".into(),
                "generation_kwargs:".into(),
                r#"  until: ["\n"]"#.into(),
                "  max_gen_toks: 8".into(),
                "  do_sample: false".into(),
                "filter_list:".into(),
                "  - name: number".into(),
                "    filter:".into(),
                "      - function: regex".into(),
                r#"        regex_pattern: "(\\d+)""#.into(),
                "      - function: take_first".into(),
                "metric_list:".into(),
                "  - metric: exact_match".into(),
            ],
        );
        write(
            "bridge_roll.yaml",
            &[
                "task: bridge_roll".into(),
                source(&rolling),
                "output_type: loglikelihood_rolling".into(),
                r#"doc_to_text: """#.into(),
                r#"doc_to_target: "{{text}}""#.into(),
                "metric_list:".into(),
                "  - metric: word_perplexity".into(),
            ],
        );
        dir
    })
}

const TASKS: &str = "bridge_mc,bridge_gen,bridge_roll";

fn assay(cache: &Path) -> Command {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.env("ASSAY_CACHE_DIR", cache)
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_DATASETS_OFFLINE", "1")
        .env("ASSAY_PROGRESS_SECONDS", "0");
    cmd
}

/// `assay run` through the bridge with `args` added; (exit code, stderr).
fn run_bridge(cache: &Path, out: &Path, python: &Path, args: &[&str]) -> (i32, String) {
    let output = assay(cache)
        .args(["run", "--model", "lm-eval:hf", "--tasks", TASKS])
        .arg("--include-path")
        .arg(tasks())
        .arg("--model-arg")
        .arg(format!("pretrained={}", model().display()))
        .args(["--model-arg", "device=cpu", "--model-arg", "dtype=float32"])
        .arg("--model-arg")
        .arg(format!("python={}", python.display()))
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// Every answer of a run, by (task, doc_id), flattened to strings.
/// (One row per document and filter; a document's answers are the same in
/// each.)
fn assay_answers(run: &Path) -> Answers {
    let df = ParquetReader::new(std::fs::File::open(run.join("samples.parquet")).unwrap())
        .finish()
        .unwrap();
    let tasks = df.column("task").unwrap().str().unwrap().clone();
    let ids = df.column("doc_id").unwrap().cast(&DataType::Int64).unwrap();
    let ids = ids.i64().unwrap().clone();
    let resps = df.column("resps").unwrap().str().unwrap().clone();
    let mut out: Answers = (0..df.height())
        .map(|i| {
            let value: Value = serde_json::from_str(resps.get(i).unwrap()).unwrap();
            (
                (tasks.get(i).unwrap().to_string(), ids.get(i).unwrap()),
                flatten(&value),
            )
        })
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// A response as its leaf values: numbers and texts as text, booleans
/// dropped (lm-eval logs them as strings, assay as booleans).
fn flatten(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().flat_map(flatten).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap().to_string()],
        Value::String(s) => match s.parse::<f64>() {
            Ok(x) => vec![x.to_string()],
            Err(_) if s == "True" || s == "False" => vec![],
            Err(_) => vec![s.clone()],
        },
        _ => vec![],
    }
}

/// What one tool answered and scored: each answer by (task, doc_id), and
/// each metric by (task, "metric,filter").
struct Outcome {
    answers: Answers,
    metrics: Vec<((String, String), f64)>,
}

/// The tasks' metrics from an lm-eval shaped `results` object.
fn metrics(results: &Value) -> Vec<((String, String), f64)> {
    let mut out = Vec::new();
    for task in TASKS.split(',') {
        for (key, value) in results[task].as_object().unwrap() {
            if key.contains(',') && !key.contains("_stderr") {
                out.push(((task.to_string(), key.clone()), value.as_f64().unwrap()));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// lm-eval's own run (`lm_eval --model hf --log_samples`), with `peft`,
/// with the model's chat template if `chat`.
fn lm_eval_run(out: &Path, peft: Option<&Path>, chat: bool) -> Outcome {
    let mut model_args = format!("pretrained={},dtype=float32", model().display());
    if let Some(p) = peft {
        model_args.push_str(&format!(",peft={}", p.display()));
    }
    let status = std::process::Command::new(python())
        .args(["-m", "lm_eval", "run", "--model", "hf", "--model_args"])
        .arg(model_args)
        .args(["--device", "cpu", "--tasks", TASKS, "--include_path"])
        .arg(tasks())
        .args(["--log_samples", "--output_path"])
        .arg(out)
        .args(if chat {
            &["--apply_chat_template"][..]
        } else {
            &[]
        })
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_DATASETS_CACHE", out.join("datasets"))
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let mut answers = Vec::new();
    let mut results = Value::Null;
    let mut stack = vec![out.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                stack.push(path);
            } else if name.starts_with("results_") && name.ends_with(".json") {
                let text = std::fs::read_to_string(&path).unwrap();
                results = serde_json::from_str::<Value>(&text).unwrap()["results"].clone();
            } else if name.starts_with("samples_") && name.ends_with(".jsonl") {
                let task = name["samples_".len()..]
                    .split('_')
                    .take(2)
                    .collect::<Vec<_>>()
                    .join("_");
                for line in std::fs::read_to_string(&path).unwrap().lines() {
                    let sample: Value = serde_json::from_str(line).unwrap();
                    answers.push((
                        (task.clone(), sample["doc_id"].as_i64().unwrap()),
                        flatten(&sample["resps"]),
                    ));
                }
            }
        }
    }
    answers.sort();
    answers.dedup_by(|a, b| a.0 == b.0);
    Outcome {
        answers,
        metrics: metrics(&results),
    }
}

/// The bridge against lm-eval on the tiny model (with `peft`, with the
/// chat template if `chat`): the same answer to every request, the same
/// metrics.
fn same_as_lm_eval(dir: &Path, peft: Option<&Path>, chat: bool) -> Outcome {
    let cache = dir.join("cache");
    let out = dir.join("out");
    let mut extra = Vec::new();
    if let Some(p) = peft {
        extra.push("--model-arg".to_string());
        extra.push(format!("peft={}", p.display()));
    }
    if chat {
        extra.push("--apply-chat-template".to_string());
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let (code, stderr) = run_bridge(&cache, &out, &python(), &extra);
    assert_eq!(code, 0, "{stderr}");
    let run = runs::only_run(&out.join("model"));
    let ours = Outcome {
        answers: assay_answers(&run),
        metrics: metrics(&runs::run_json(&run)["results"]),
    };
    let theirs = lm_eval_run(&dir.join("lm-eval"), peft, chat);
    assert_eq!(ours.answers.len(), 36, "{:?}", ours.answers);
    assert_eq!(ours.answers, theirs.answers);
    assert_eq!(ours.metrics.len(), 4, "{:?}", ours.metrics);
    assert_eq!(ours.metrics, theirs.metrics);
    ours
}

#[test]
fn the_bridge_gives_lm_evals_own_answers_and_caches_them() {
    let dir = tempfile::tempdir().unwrap();
    let ours = same_as_lm_eval(dir.path(), None, false);
    let cache = dir.path().join("cache");
    let run = runs::only_run(&dir.path().join("out/model"));

    // Who answered: the weights by SHA-256, the versions that computed them.
    let record = runs::read(&run);
    let model = record.assay.model.clone().unwrap();
    assert!(model.fingerprint.starts_with("sha256:"), "{model:?}");
    assert_eq!(model.details["backend"], "lm-eval:hf");
    for version in ["version.lm_eval", "version.torch", "version.transformers"] {
        assert!(model.details.contains_key(version), "{model:?}");
    }
    assert_eq!(model.details["arg.dtype"], "float32");
    assert!(!model.details.contains_key("arg.python"), "{model:?}");

    // Again: every answer from the cache.
    let again = dir.path().join("again");
    let (code, stderr) = run_bridge(&cache, &again, &python(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("· cached "), "{stderr}");
    assert!(!stderr.contains("· cached 0 "), "{stderr}");
    let run = runs::only_run(&again.join("model"));
    assert_eq!(assay_answers(&run), ours.answers);
}

#[test]
fn a_peft_adapter_gives_lm_evals_own_answers_too() {
    let dir = tempfile::tempdir().unwrap();
    let with = same_as_lm_eval(dir.path(), Some(&adapter()), false);
    let run = runs::only_run(&dir.path().join("out/model"));
    let model = runs::read(&run).assay.model.unwrap();
    assert!(model.details.contains_key("peft.sha256"), "{model:?}");
    // The adapter changes the answers: it is applied, not ignored.
    let base = dir.path().join("base");
    let (code, stderr) = run_bridge(&base.join("cache"), &base.join("out"), &python(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let without = assay_answers(&runs::only_run(&base.join("out/model")));
    assert_ne!(with.answers, without);
}

#[test]
fn the_models_chat_template_gives_lm_evals_own_answers() {
    // lm-eval renders the tokenizer's template; assay renders the same
    // template itself, few-shot examples as turns, as lm-eval does.
    let dir = tempfile::tempdir().unwrap();
    let chat = same_as_lm_eval(dir.path(), None, true);
    let plain = dir.path().join("plain");
    let (code, stderr) = run_bridge(&plain.join("cache"), &plain.join("out"), &python(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let without = assay_answers(&runs::only_run(&plain.join("out/model")));
    assert_ne!(chat.answers, without);
}

/// A stand-in interpreter that speaks the worker's protocol: it answers
/// the first two requests of a call, then does what `then` says (bash).
fn fake_worker(dir: &Path, then: &str) -> PathBuf {
    let path = dir.join("fake-python");
    std::fs::write(
        &path,
        format!(
            "#!/usr/bin/env bash\n\
             echo '{{\"hello\": {{\"protocol\": 1, \"versions\": {{\"python\": \"3\", \"lm_eval\": \"0.4.13\", \"torch\": \"2.15.0\", \"transformers\": \"5.24.0\"}}}}}}'\n\
             read -r load\n\
             echo '{{\"loaded\": {{\"commit\": null}}}}'\n\
             read -r call\n\
             echo '{{\"answer\": 0, \"value\": [-1.5, false]}}'\n\
             echo '{{\"answer\": 1, \"value\": [-2.5, true]}}'\n\
             {then}\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_worker_that_dies_or_hangs_keeps_what_it_answered() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("out");
    // Dies after two answers, as a model running out of memory would.
    let dies = fake_worker(
        dir.path(),
        "echo 'RuntimeError: CUDA out of memory' >&2; exit 1",
    );
    let (code, stderr) = run_bridge(&cache, &out, &dies, &["--tasks", "bridge_mc"]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("the lm-eval worker stopped") && stderr.contains("CUDA out of memory"),
        "{stderr}"
    );
    // The two answers are in the cache: the next run starts from them.
    let hangs = fake_worker(dir.path(), "sleep 30");
    let (code, stderr) = run_bridge(
        &cache,
        &out,
        &hangs,
        &["--tasks", "bridge_mc", "--model-arg", "timeout=2"],
    );
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("cached 2"), "{stderr}");
    assert!(
        stderr.contains("sent nothing for 2 s") && stderr.contains("timeout=SECONDS"),
        "{stderr}"
    );
}

#[test]
fn errors_say_what_to_install_or_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("out");
    // No such interpreter.
    let (code, stderr) = run_bridge(&cache, &out, Path::new("/nonexistent/python"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cannot run Python") && stderr.contains("--model-arg python=PATH"),
        "{stderr}"
    );
    // assay's own arguments are checked before anything starts.
    let (code, stderr) = run_bridge(&cache, &out, &python(), &["--model-arg", "timeout=soon"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--model-arg timeout=soon"), "{stderr}");
    let output = assay(&cache)
        .args(["run", "--model", "lm-eval:", "--tasks", "bridge_mc"])
        .arg("--include-path")
        .arg(tasks())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--model lm-eval:") && stderr.contains("lm-eval:hf"),
        "{stderr}"
    );
    // An interpreter without lm-eval (an empty virtual environment).
    let bare = dir.path().join("bare");
    let made = std::process::Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&bare)
        .status()
        .unwrap();
    assert!(made.success());
    let (code, stderr) = run_bridge(&cache, &out, &bare.join("bin/python"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cannot import lm-eval") && stderr.contains("pip install \"lm-eval[hf]\""),
        "{stderr}"
    );
    // A model that does not load: the exception's last line.
    let output = assay(&cache)
        .args(["run", "--model", "lm-eval:hf", "--tasks", "bridge_mc"])
        .arg("--include-path")
        .arg(tasks())
        .args([
            "--model-arg",
            "pretrained=/nonexistent/model",
            "--model-arg",
            "device=cpu",
        ])
        .arg("--model-arg")
        .arg(format!("python={}", python().display()))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the model does not load"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{stderr}"
    );
}

/// `assay run --model lm-eval:dummy` over `tasks` at `limit`: (exit code,
/// stderr, the run's answers).
fn dummy_run(cache: &Path, out: &Path, limit: &str) -> (i32, String, Answers) {
    let output = assay(cache)
        .args([
            "run",
            "--model",
            "lm-eval:dummy",
            "--tasks",
            "bridge_mc,bridge_gen",
            "--limit",
            limit,
        ])
        .arg("--include-path")
        .arg(tasks())
        .arg("--model-arg")
        .arg(format!("python={}", python().display()))
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let code = output.status.code().unwrap_or(-1);
    let answers = if code == 0 {
        assay_answers(&runs::only_run(&out.join("dummy")))
    } else {
        Vec::new()
    };
    (code, stderr, answers)
}

/// The `cached N` and the `of N` (distinct requests) of a run's last
/// progress line.
fn counts(stderr: &str) -> (u64, u64) {
    let line = stderr.lines().rfind(|l| l.contains("· cached ")).unwrap();
    let number = |after: &str| -> u64 {
        line.split(after)
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (number("· cached "), number(" of "))
}

#[test]
fn the_protocol_sends_each_request_once_with_lm_evals_dummy_model() {
    // lm-eval's dummy model answers at random and reports nothing to the
    // cache hook: the worker hands its answers over when the call returns.
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (code, stderr, first) = dummy_run(&cache, &dir.path().join("a"), "3");
    assert_eq!(code, 0, "{stderr}");
    let (cached, asked) = counts(&stderr);
    assert_eq!(cached, 0, "{stderr}");
    // More documents: the first run's answers come from the cache (random
    // answers that match were not asked again), only the new ones are sent.
    let (code, stderr, second) = dummy_run(&cache, &dir.path().join("b"), "6");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(counts(&stderr).0, asked, "{stderr}");
    for answer in &first {
        assert!(second.contains(answer), "{answer:?} was asked again");
    }
    assert_eq!(second.len(), 12);
}

/// A stand-in interpreter that answers every request of every call with
/// fixed values, as a worker would.
fn answering_worker(dir: &Path) -> PathBuf {
    let path = dir.join("answering-python");
    std::fs::write(
        &path,
        r#"#!/usr/bin/env python3
import json, sys
def send(m):
    print(json.dumps(m), flush=True)
send({"hello": {"protocol": 1, "versions": {"python": "3", "lm_eval": "0.4.13"}}})
for line in sys.stdin:
    m = json.loads(line)
    if m["op"] == "load":
        send({"loaded": {"commit": None, "chat_template": None, "bos_token": "", "eos_token": ""}})
        continue
    for i, _ in enumerate(m["requests"]):
        value = {"loglikelihood": [-1.0 - i % 3, False], "loglikelihood_rolling": -5.0,
                 "generate_until": "42"}[m["op"]]
        send({"answer": i, "value": value})
    send({"done": len(m["requests"])})
"#,
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_manifests_local_model_folder_is_found_from_anywhere_and_fingerprinted() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    std::fs::create_dir_all(hub.join("variants")).unwrap();
    std::fs::create_dir_all(hub.join("models/tuned")).unwrap();
    std::fs::write(hub.join("models/tuned/model.safetensors"), b"weights").unwrap();
    let python = answering_worker(dir.path());
    std::fs::write(
        hub.join("variants/tuned.toml"),
        format!(
            "name = \"tuned\"\nrelation = \"original\"\n[backend]\nspec = \"lm-eval:hf\"\n\
             args = {{ pretrained = \"models/tuned\", python = \"{}\" }}\n",
            python.display()
        ),
    )
    .unwrap();
    // Run from another folder: the model folder is the manifest's.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let output = assay(&dir.path().join("cache"))
        .current_dir(&elsewhere)
        .args(["score", "--quiet", "--limit", "2", "--out"])
        .arg(dir.path().join("runs"))
        .arg(hub.join("variants/tuned.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let run = runs::only_run(&dir.path().join("runs/tuned"));
    let model = runs::read(&run).assay.model.unwrap();
    assert!(model.fingerprint.starts_with("sha256:"), "{model:?}");
    assert!(model.details.contains_key("pretrained.sha256"), "{model:?}");
}
