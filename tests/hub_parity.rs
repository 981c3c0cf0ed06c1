//! The standard tasks send exactly what lm-eval sends. Each golden in
//! tests/golden/hub/ was made by lm-eval's dummy model running lm-eval's own
//! task YAML on documents this project wrote (tests/fixtures/hub/), given to
//! it as local files. Here the same documents are served by a mock Hub as
//! parquet, and assay builds the requests twice: from lm-eval's unchanged
//! task folder (its Python hooks resolved to native ports) and from assay's
//! own configs in tasks/standard/. Every request must be equal.

#[path = "support/lm_eval_python.rs"]
mod lm_eval_python;
#[path = "support/mock_hub.rs"]
mod mock_hub;
#[path = "support/requests.rs"]
mod requests;
#[path = "support/runs.rs"]
mod runs;
#[path = "support/tiny_gguf.rs"]
mod tiny_gguf;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use lm_eval_python::{assert_same_scores, lm_eval_scores, python};
use mock_hub::{parquet, MockHub, Repo};
use requests::{difference, sorted};
use runs::{only_run, run_json};
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// lm-eval's task folder: `$ASSAY_LM_EVAL_TASKS`, else what
/// `scripts/fetch-lm-eval-tasks.sh` unpacks.
fn lm_eval_tasks() -> PathBuf {
    let dir = std::env::var_os("ASSAY_LM_EVAL_TASKS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".lm-eval/0.4.13/lm_eval/tasks"));
    assert!(
        dir.join("hellaswag/hellaswag.yaml").is_file(),
        "lm-eval's task folder is not at {}: run scripts/fetch-lm-eval-tasks.sh (or set ASSAY_LM_EVAL_TASKS)",
        dir.display()
    );
    dir
}

/// Serves every fixture dataset (`<owner>--<name>/<config>/<split>.jsonl`)
/// as parquet files laid out as on the Hub.
fn serve_fixtures() -> MockHub {
    let hub = MockHub::start();
    let fixtures = root().join("tests/fixtures/hub");
    let mut n = 0u64;
    for repo_dir in sorted_dirs(&fixtures) {
        let id = repo_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replacen("--", "/", 1);
        n += 1;
        let mut repo = Repo {
            commit: format!("{n:040x}"),
            ..Repo::default()
        };
        let mut card = Vec::new();
        for config_dir in sorted_dirs(&repo_dir) {
            let config = config_dir
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_string();
            let mut data_files = Vec::new();
            for file in std::fs::read_dir(&config_dir).unwrap().flatten() {
                let path = file.path();
                let Some(split) = path
                    .file_name()
                    .and_then(|f| f.to_str())
                    .and_then(|f| f.strip_suffix(".jsonl"))
                    .map(str::to_string)
                else {
                    continue;
                };
                let docs: Vec<Value> = std::fs::read_to_string(&path)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                repo.files.insert(
                    format!("{config}/{split}-00000-of-00001.parquet"),
                    parquet(&docs),
                );
                data_files.push(json!({"split": split, "path": format!("{config}/{split}-*")}));
            }
            card.push(json!({"config_name": config, "data_files": data_files}));
        }
        repo.configs = Some(Value::Array(card));
        hub.add(&id, &["main"], repo);
    }
    hub
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// One golden: its name, tasks, assay's extra arguments, and whether
/// assay's own configs define its tasks (else lm-eval's folder only).
type Golden = (String, String, Vec<String>, bool);

/// Every golden.
fn goldens() -> Vec<Golden> {
    let dir = root().join("tests/golden/hub");
    let mut out = Vec::new();
    let mut metas: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".meta.json"))
        .collect();
    metas.sort();
    for meta in metas {
        let name = meta
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".meta.json")
            .to_string();
        if !dir.join(format!("{name}.requests.jsonl")).is_file() {
            continue;
        }
        let m: Value = serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
        let tasks: Vec<&str> = m["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        let extra: Vec<&str> = m["extra_args"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        let mut args = Vec::new();
        for pair in extra.chunks(2) {
            let flag = match pair[0] {
                "--num_fewshot" => "--num-fewshot",
                "--limit" => "--limit",
                "--seed" => "--seed",
                other => panic!("{name}: no assay flag for lm-eval's {other}"),
            };
            args.push(flag.to_string());
            args.push(pair[1].to_string());
        }
        // assay's own flags for the run, e.g. --python-hooks for tasks whose
        // hooks have no native port.
        args.extend(
            m["assay_args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_str().unwrap().to_string()),
        );
        let own_configs = m["assay_configs"].as_bool().unwrap_or(true);
        out.push((name, tasks.join(","), args, own_configs));
    }
    out
}

/// Runs assay for every golden and lists the differences; returns the
/// requests compared and the requests the goldens hold. Goldens with the
/// same options share one assay run (reading lm-eval's whole task folder is
/// the slow part). `hooks` replaces each golden's `--python-hooks` flag.
fn check(
    hub: &MockHub,
    include_path: Option<&Path>,
    hooks: Option<&str>,
) -> (usize, usize, Vec<String>) {
    let cache = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut expected = 0;
    let mut by_options: BTreeMap<Vec<String>, Vec<(String, String)>> = BTreeMap::new();
    for (name, tasks, mut extra, own_configs) in goldens() {
        if let Some(flag) = hooks {
            extra.retain(|a| !a.starts_with("--python-hooks"));
            extra.push(flag.to_string());
        }
        // Some tasks are read from lm-eval's folder only.
        if !own_configs && include_path.is_none() {
            continue;
        }
        by_options.entry(extra).or_default().push((name, tasks));
    }
    for (extra, runs) in by_options {
        let all: Vec<&str> = runs.iter().map(|(_, t)| t.as_str()).collect();
        let mut cmd = Command::cargo_bin("assay").unwrap();
        cmd.current_dir(root())
            .env("HF_ENDPOINT", &hub.url)
            .env("ASSAY_DATASETS_CACHE", cache.path())
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("HF_TOKEN")
            .env("ASSAY_PYTHON", python())
            .args(["requests", "--tasks", &all.join(",")])
            .args(&extra);
        if let Some(p) = include_path {
            cmd.arg("--include-path").arg(p);
        }
        let output = cmd.output().unwrap();
        if !output.status.success() {
            failures.push(format!(
                "{}: assay failed: {}",
                all.join(","),
                String::from_utf8_lossy(&output.stderr)
            ));
            continue;
        }
        let every = sorted(&String::from_utf8(output.stdout).unwrap());
        for (name, tasks) in runs {
            let wanted: Vec<&str> = tasks.split(',').collect();
            let ours: Vec<Value> = every
                .iter()
                .filter(|r| wanted.contains(&r["task"].as_str().unwrap_or("")))
                .cloned()
                .collect();
            let theirs = sorted(
                &std::fs::read_to_string(
                    root().join(format!("tests/golden/hub/{name}.requests.jsonl")),
                )
                .unwrap(),
            );
            expected += theirs.len();
            match difference(&name, &ours, &theirs) {
                Some(failure) => failures.push(failure),
                None => compared += ours.len(),
            }
        }
    }
    (compared, expected, failures)
}

#[test]
fn lm_evals_own_configs_read_from_the_hub_send_lm_evals_requests() {
    let tasks = lm_eval_tasks();
    let hub = serve_fixtures();
    let (compared, expected, failures) = check(&hub, Some(&tasks), None);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(compared, expected);
    assert!(expected > 0, "no golden requests found");
}

#[test]
fn assays_own_standard_configs_send_lm_evals_requests() {
    let hub = serve_fixtures();
    let (compared, expected, failures) = check(&hub, None, None);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(compared, expected);
    assert!(expected > 0, "no golden requests found");
}

/// `assay run` on the tiny model in `dir`, reading the mock Hub, with a
/// context long enough for every fixture document; the run goes to
/// `dir/out`.
fn run_on_hub(hub: &MockHub, dir: &Path, model: &Path, out: &str) -> Command {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.current_dir(root())
        .env("HF_ENDPOINT", &hub.url)
        .env("ASSAY_DATASETS_CACHE", dir.join("datasets"))
        .env("ASSAY_CACHE_DIR", dir.join("cache"))
        .env("ASSAY_PYTHON", python())
        .env_remove("HF_HUB_OFFLINE")
        .args(["run", "--quiet", "--model-arg", "n_ctx=4096", "--model"])
        .arg(format!("llama:{}", model.display()))
        .arg("--out")
        .arg(dir.join(out));
    cmd
}

/// `--python-hooks=all` runs lm-eval's own Python in place of every native
/// port: the requests must not change (a cross-check of the ports). On
/// assay's own configs, each port's canonical name runs the installed
/// lm-eval's function.
#[test]
fn python_hooks_everywhere_send_the_native_ports_requests() {
    let tasks = lm_eval_tasks();
    let hub = serve_fixtures();
    for include_path in [Some(tasks.as_path()), None] {
        let (compared, expected, failures) = check(&hub, include_path, Some("--python-hooks=all"));
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert_eq!(compared, expected);
        assert!(expected > 0, "no golden requests found");
    }
}

/// The same answers scored through the native ports and through lm-eval's
/// own Python (`--python-hooks=all`) give the same scores.
#[test]
fn python_hooks_everywhere_score_as_the_native_ports() {
    let hub = serve_fixtures();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    tiny_gguf::write_tiny_llama(&model, 5).unwrap();
    let tasks = "truthfulqa_mc2,truthfulqa_gen,wikitext,hellaswag,winogrande,\
                 leaderboard_mmlu_pro,leaderboard_musr_team_allocation,leaderboard_gpqa_main";
    let run = |flag: Option<&str>, out: &str| {
        let mut cmd = run_on_hub(&hub, dir.path(), &model, out);
        cmd.args(["--limit", "6", "--tasks", tasks, "--include-path"])
            .arg(lm_eval_tasks());
        if let Some(f) = flag {
            cmd.arg(f);
        }
        let output = cmd.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        run_json(&only_run(&dir.path().join(out).join("tiny")))
    };
    let native = run(None, "native");
    let python = run(Some("--python-hooks=all"), "python");
    let hooks = |run: &Value, task: &str| -> Vec<String> {
        run["assay"]["tasks"][task]["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["implementation"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(hooks(&native, "wikitext").iter().all(|h| h == "native"));
    assert!(hooks(&python, "wikitext").iter().all(|h| h == "python"));
    let mut compared = 0;
    for (task, scores) in native["results"].as_object().unwrap() {
        for (key, value) in scores.as_object().unwrap() {
            let theirs = &python["results"][task][key];
            match (value.as_f64(), theirs.as_f64()) {
                (Some(a), Some(b)) => {
                    assert!(
                        (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                        "{task} {key}: native {a}, Python {b}"
                    );
                    compared += 1;
                }
                _ => assert_eq!(value, theirs, "{task} {key}"),
            }
        }
    }
    assert!(compared >= 30, "{compared} scores compared");
}

/// Runs `tasks` with `--python-hooks` (and `args`) on `dir`'s tiny model,
/// then has lm-eval's evaluator replay the recorded answers on the same
/// documents (`support/lm_eval_replay.py`) and asserts the same scores.
/// Returns the run's folder, its run.json and how many scores were compared.
fn run_and_replay(
    hub: &MockHub,
    dir: &Path,
    tasks: &str,
    args: &[&std::ffi::OsStr],
) -> (PathBuf, Value, usize) {
    let output = run_on_hub(hub, dir, &dir.join("tiny.gguf"), "runs")
        .args(["--python-hooks", "--tasks", tasks])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run_dir = only_run(&dir.join("runs/tiny"));
    let ours = run_json(&run_dir);
    let fixtures = root().join("tests/fixtures/hub");
    let theirs = lm_eval_scores(
        &run_dir,
        tasks,
        &["--hub-fixtures".as_ref(), fixtures.as_os_str()],
    );
    let compared = assert_same_scores(&ours, &theirs);
    (run_dir, ours, compared)
}

/// The lm-eval tasks whose hooks run in Python score as lm-eval scores
/// them: its evaluator, answering from the responses the run recorded
/// (`support/lm_eval_replay.py`, on the same documents as local files),
/// must ask exactly the requests assay sent and report the same scores, so
/// process_results, filter classes, metric and aggregation functions are
/// all checked.
#[test]
fn tasks_run_through_python_hooks_score_as_lm_eval_does() {
    let hub = serve_fixtures();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    tiny_gguf::write_tiny_llama(&model, 7).unwrap();
    let mut tasks: Vec<String> = goldens()
        .into_iter()
        .filter(|(_, _, args, _)| args.iter().any(|a| a == "--python-hooks"))
        .flat_map(|(_, tasks, _, _)| tasks.split(',').map(str::to_string).collect::<Vec<_>>())
        .collect();
    tasks.sort();
    tasks.dedup();
    assert!(tasks.len() >= 12, "{tasks:?}");
    let lm_eval = lm_eval_tasks();
    let (_, _, compared) = run_and_replay(
        &hub,
        dir.path(),
        &tasks.join(","),
        &["--include-path".as_ref(), lm_eval.as_os_str()],
    );
    println!("{} tasks, {compared} scores compared", tasks.len());
    assert!(compared >= 20, "{compared} scores compared");
}

/// assay's own IFEval and MATH configs, whose scoring (and MATH's few-shot
/// examples) run as the installed lm-eval's Python, score as lm-eval's own
/// folder does, and the run records where each hook came from.
#[test]
fn assays_own_ifeval_and_math_configs_score_as_lm_eval_does() {
    let hub = serve_fixtures();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    tiny_gguf::write_tiny_llama(&model, 13).unwrap();
    let math: Vec<String> = goldens()
        .into_iter()
        .map(|(name, ..)| name)
        .filter(|n| n.starts_with("leaderboard_math_") && n.ends_with("_hard"))
        .collect();
    assert_eq!(math.len(), 7, "{math:?}");
    let tasks = format!("leaderboard_ifeval,{}", math.join(","));
    let (run_dir, ours, compared) = run_and_replay(&hub, dir.path(), &tasks, &[]);
    assert!(compared >= 18, "{compared} scores compared");
    // Each MATH document, as the native process_docs leaves it (level 5
    // only, `answer` cut out of the solution's last box), hashes as the one
    // lm-eval logged: the fixtures hold every extraction edge case.
    let samples = {
        use polars::prelude::*;
        let file = std::fs::File::open(run_dir.join("samples.parquet")).unwrap();
        ParquetReader::new(file).finish().unwrap()
    };
    let text = |name: &str| -> Vec<String> {
        let c = samples.column(name).unwrap().str().unwrap().clone();
        (0..c.len())
            .map(|i| c.get(i).unwrap().to_string())
            .collect()
    };
    let ids: Vec<i64> = samples
        .column("doc_id")
        .unwrap()
        .cast(&polars::prelude::DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let (task_of, doc_hash, target_hash) = (text("task"), text("doc_hash"), text("target_hash"));
    let mut checked = 0;
    for name in &math {
        let golden =
            std::fs::read_to_string(root().join(format!("tests/golden/hub/{name}.hashes.jsonl")))
                .unwrap();
        for line in golden.lines() {
            let g: Value = serde_json::from_str(line).unwrap();
            let i = (0..ids.len())
                .find(|&i| task_of[i] == *name && ids[i] == g["doc_id"].as_i64().unwrap())
                .unwrap_or_else(|| panic!("{name}: no sample for {g}"));
            assert_eq!(doc_hash[i], g["doc_hash"].as_str().unwrap(), "{name} {g}");
            assert_eq!(
                target_hash[i],
                g["target_hash"].as_str().unwrap(),
                "{name} {g}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 35, "{checked} MATH documents checked");
    // MATH's prompt and documents are native; its few-shot examples and
    // scoring are lm-eval's file, found where Python has lm-eval.
    let hooks = ours["assay"]["tasks"]["leaderboard_math_algebra_hard"]["hooks"]
        .as_array()
        .unwrap()
        .clone();
    let by_field = |field: &str| {
        hooks
            .iter()
            .find(|h| h["field"] == field)
            .unwrap_or_else(|| panic!("no hook for {field}: {hooks:?}"))
    };
    for field in ["process_docs", "doc_to_text"] {
        assert_eq!(by_field(field)["implementation"], "native", "{field}");
    }
    for field in ["process_results", "fewshot_config.samples"] {
        let hook = by_field(field);
        assert_eq!(hook["implementation"], "python", "{field}");
        let file = PathBuf::from(hook["file"].as_str().unwrap());
        assert!(
            file.is_absolute() && file.ends_with("lm_eval/tasks/leaderboard/math/utils.py"),
            "{file:?}"
        );
        assert_eq!(
            hook["sha256"].as_str().unwrap(),
            assay::hash::sha256_hex(
                &std::fs::read(lm_eval_tasks().join("leaderboard/math/utils.py")).unwrap()
            ),
            "{field}: the installed lm-eval and the task folder are both 0.4.13"
        );
    }
}

/// Every canonical name that stands for lm-eval's Python names a function
/// of lm-eval's task folder.
#[test]
fn every_canonical_name_is_a_function_of_lm_evals_folder() {
    let tasks = lm_eval_tasks();
    for (name, file, function) in assay::ports::lm_eval_sources() {
        let source = std::fs::read_to_string(tasks.join(file))
            .unwrap_or_else(|e| panic!("{name}: {file}: {e}"));
        assert!(
            source.contains(&format!("def {function}(")),
            "{name}: {file} defines no {function}"
        );
    }
}

/// The Open LLM Leaderboard v2 suite end to end on the tiny model: a
/// variant scored on all six families (BBH from lm-eval's folder, the rest
/// from assay's own configs, IFEval's and MATH's scoring in lm-eval's
/// Python), then its leaderboard.
#[test]
fn the_open_llm_v2_suite_scores_a_variant_and_builds_its_leaderboard() {
    let hub = serve_fixtures();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    tiny_gguf::write_tiny_llama(&model, 11).unwrap();
    let variants = dir.path().join("variants");
    std::fs::create_dir_all(&variants).unwrap();
    let manifest = variants.join("tiny.toml");
    std::fs::write(
        &manifest,
        format!(
            "name = \"tiny\"\nrelation = \"original\"\n[backend]\nspec = \"llama:{}\"\n\
             args = {{ n_ctx = \"4096\" }}\n",
            model.display()
        ),
    )
    .unwrap();
    let assay = || {
        let mut cmd = Command::cargo_bin("assay").unwrap();
        cmd.current_dir(root())
            .env("HF_ENDPOINT", &hub.url)
            .env("ASSAY_DATASETS_CACHE", dir.path().join("datasets"))
            .env("ASSAY_CACHE_DIR", dir.path().join("cache"))
            .env("ASSAY_PYTHON", python())
            .env_remove("HF_HUB_OFFLINE");
        cmd
    };
    let results = dir.path().join("results");
    let bbh = lm_eval_tasks().join("leaderboard/bbh_mc");
    // The suite's datasets are fetched once; scoring then reads only the
    // cache (offline, the Hub out of reach).
    let out = assay()
        .args(["tasks", "fetch", "open-llm-v2", "--include-path"])
        .arg(&bbh)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = assay()
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .args(["score", "--quiet", "--suite", "open-llm-v2", "--limit", "2"])
        .arg("--include-path")
        .arg(&bbh)
        .arg("--python-hooks")
        .arg("--out")
        .arg(results.join("runs"))
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = run_json(&only_run(&results.join("runs/tiny")));
    for (entry, key) in [
        ("leaderboard_bbh", "acc_norm,none"),
        ("leaderboard_gpqa", "acc_norm,none"),
        ("leaderboard_ifeval", "prompt_level_strict_acc,none"),
        ("leaderboard_math_hard", "exact_match,none"),
        ("leaderboard_musr", "acc_norm,none"),
        ("leaderboard_mmlu_pro", "acc,none"),
    ] {
        assert!(
            run["results"][entry][key].is_number(),
            "{entry} {key}: {}",
            run["results"][entry]
        );
    }
    assert_eq!(
        run["group_subtasks"]["leaderboard_bbh"]
            .as_array()
            .unwrap()
            .len(),
        24
    );
    // IFEval and MATH came from assay's own configs (their hooks' canonical
    // names), BBH from lm-eval's folder.
    for (task, function) in [
        ("leaderboard_ifeval", "ifeval.process_results"),
        ("leaderboard_math_algebra_hard", "math.process_docs"),
    ] {
        let hooks = &run["assay"]["tasks"][task]["hooks"];
        assert!(
            hooks
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["function"] == function),
            "{task}: {hooks}"
        );
    }
    let board = dir.path().join("board");
    let out = assay()
        .args(["leaderboard", "--results"])
        .arg(&results)
        .arg("--variants")
        .arg(&variants)
        .args(["--suite", "open-llm-v2", "--include-path"])
        .arg(&bbh)
        .arg("--out")
        .arg(&board)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Ranked (not stale: the configs hash as the suite's do), with all six
    // benchmarks' normalized scores.
    let csv = std::fs::read_to_string(board.join("leaderboard.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let cell = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(
        (cell("rank"), cell("variant"), cell("stale")),
        ("1", "tiny", "false"),
        "{csv}"
    );
    for entry in ["leaderboard_bbh", "leaderboard_musr", "leaderboard_ifeval"] {
        let normalized: f64 = cell(&format!("{entry}_normalized")).parse().unwrap();
        assert!(normalized.is_finite(), "{csv}");
    }
}

#[test]
fn every_hook_of_the_standard_tasks_has_a_native_port() {
    let tasks = lm_eval_tasks();
    let out = Command::cargo_bin("assay")
        .unwrap()
        .current_dir(root())
        .args([
            "tasks",
            "list",
            "hellaswag",
            "winogrande",
            "truthfulqa_mc2",
            "wikitext",
            "arc_easy",
            "gsm8k",
            "leaderboard_mmlu_pro",
            "leaderboard_musr_team_allocation",
            "leaderboard_gpqa_main",
            "--include-path",
        ])
        .arg(&tasks)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let hooks: BTreeMap<&str, &str> = text
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[0], cols[2])
        })
        .collect();
    assert_eq!(hooks["hellaswag"], "native", "{text}");
    assert_eq!(hooks["winogrande"], "native", "{text}");
    assert_eq!(hooks["truthfulqa_mc2"], "native", "{text}");
    assert_eq!(hooks["wikitext"], "native", "{text}");
    assert_eq!(hooks["leaderboard_mmlu_pro"], "native", "{text}");
    assert_eq!(
        hooks["leaderboard_musr_team_allocation"], "native",
        "{text}"
    );
    assert_eq!(hooks["arc_easy"], "-", "{text}");
    assert_eq!(hooks["gsm8k"], "-", "{text}");
}

/// Serves `cais/mmlu` with every subject lm-eval's `mmlu` reads, a few
/// procedural questions each.
fn serve_mmlu(subjects: &[String]) -> MockHub {
    let hub = MockHub::start();
    add_mmlu(&hub, subjects);
    hub
}

fn add_mmlu(hub: &MockHub, subjects: &[String]) {
    let question = |subject: &str, split: &str, i: usize| {
        json!({
            "question": format!("{subject} {split} question {i}: which is largest?"),
            "subject": subject,
            "choices": [format!("{i}"), format!("{}", i + 9), format!("{}", i + 2), format!("{}", i + 1)],
            "answer": 1
        })
    };
    let configs: Vec<mock_hub::Config> = subjects
        .iter()
        .map(|s| {
            let splits = [("test", 2), ("dev", 5), ("validation", 1)]
                .into_iter()
                .map(|(split, n)| (split, (0..n).map(|i| question(s, split, i)).collect()))
                .collect();
            mock_hub::config(s, splits)
        })
        .collect();
    hub.add(
        "cais/mmlu",
        &["main"],
        mock_hub::parquet_repo(&"9".repeat(40), &configs),
    );
}

/// `dataset_name` of every MMLU subject config in lm-eval's folder.
fn mmlu_subjects(tasks: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(tasks.join("mmlu/default"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        for line in text.lines() {
            if let Some(rest) = line
                .strip_prefix("\"dataset_name\":")
                .or_else(|| line.strip_prefix("dataset_name:"))
            {
                out.push(rest.trim().trim_matches('"').to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn mmlu_groups_aggregate_their_subjects_with_lm_evals_and_assays_configs() {
    let tasks = lm_eval_tasks();
    let subjects = mmlu_subjects(&tasks);
    assert_eq!(subjects.len(), 57);
    let hub = serve_mmlu(&subjects);
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    tiny_gguf::write_tiny_llama(&model, 5).unwrap();
    for (label, include) in [("lm-eval", Some(&tasks)), ("assay", None)] {
        let out_dir = dir.path().join(label);
        let mut cmd = Command::cargo_bin("assay").unwrap();
        cmd.current_dir(root())
            .env("HF_ENDPOINT", &hub.url)
            .env("ASSAY_DATASETS_CACHE", dir.path().join("datasets"))
            .env("ASSAY_CACHE_DIR", dir.path().join("cache"))
            .env_remove("HF_HUB_OFFLINE")
            .args(["run", "--quiet", "--limit", "1", "--model"])
            .arg(format!("llama:{}", model.display()))
            .args(["--tasks", "mmlu", "--out"])
            .arg(&out_dir);
        if let Some(p) = include {
            cmd.arg("--include-path").arg(p);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let run_dir = only_run(&out_dir.join("tiny"));
        let run = run_json(&run_dir);
        let subtasks = &run["group_subtasks"];
        let mut categories: Vec<&str> = subtasks["mmlu"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        categories.sort();
        assert_eq!(
            categories,
            [
                "mmlu_humanities",
                "mmlu_other",
                "mmlu_social_sciences",
                "mmlu_stem"
            ],
            "{label}: {subtasks}"
        );
        let leaves: usize = categories
            .iter()
            .map(|c| subtasks[*c].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(leaves, 57, "{label}: {subtasks}");
        for group in ["mmlu", "mmlu_stem", "mmlu_humanities"] {
            assert!(
                run["groups"][group]["acc,none"].is_number(),
                "{label}: {group} has no acc: {}",
                run["groups"]
            );
        }
    }
}

#[test]
fn every_built_in_config_validates_against_the_hub() {
    let hub = serve_fixtures();
    add_mmlu(&hub, &mmlu_subjects(&lm_eval_tasks()));
    let cache = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("assay")
        .unwrap()
        .current_dir(root())
        .env("HF_ENDPOINT", &hub.url)
        .env("ASSAY_DATASETS_CACHE", cache.path())
        .env_remove("HF_HUB_OFFLINE")
        .env("ASSAY_PYTHON", python())
        .args([
            "tasks",
            "validate",
            "tasks",
            "--python-hooks",
            "--include-path",
        ])
        .arg(lm_eval_tasks())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every task and group under tasks/: 57 MMLU subjects and their 6
    // groups, 12 other standard tasks, 3 suites, assay's own 5 and its group.
    let n: usize = said
        .strip_prefix("ok: ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(n >= 83, "{said}");
}

#[test]
fn scores_go_through_the_ported_process_results() {
    let hub = serve_fixtures();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    tiny_gguf::write_tiny_llama(&model, 9).unwrap();
    let out_dir = dir.path().join("runs");
    let out = Command::cargo_bin("assay")
        .unwrap()
        .current_dir(root())
        .env("HF_ENDPOINT", &hub.url)
        .env("ASSAY_DATASETS_CACHE", dir.path().join("datasets"))
        .env("ASSAY_CACHE_DIR", dir.path().join("cache"))
        .env_remove("HF_HUB_OFFLINE")
        .args(["run", "--quiet", "--model"])
        .arg(format!("llama:{}", model.display()))
        .args(["--tasks", "truthfulqa_mc2,wikitext,truthfulqa_gen", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_dir = only_run(&out_dir.join("tiny"));
    let run = run_json(&run_dir);
    let results = &run["results"];

    // mc2: each document's share of probability on its true answers, from
    // the log-likelihoods the run recorded (a plain acc would be 0 or 1).
    let samples = {
        use polars::prelude::*;
        let file = std::fs::File::open(run_dir.join("samples.parquet")).unwrap();
        ParquetReader::new(file).finish().unwrap()
    };
    let column = |name: &str| -> Vec<String> {
        let c = samples.column(name).unwrap().str().unwrap().clone();
        (0..c.len())
            .map(|i| c.get(i).unwrap_or("").to_string())
            .collect()
    };
    let (tasks, docs, resps) = (column("task"), column("doc"), column("resps"));
    let mut shares = Vec::new();
    let (mut ll_sum, mut words) = (0.0, 0.0);
    for i in 0..tasks.len() {
        let doc: Value = serde_json::from_str(&docs[i]).unwrap();
        let resp: Value = serde_json::from_str(&resps[i]).unwrap();
        match tasks[i].as_str() {
            "truthfulqa_mc2" => {
                let p: Vec<f64> = resp
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r[0].as_f64().unwrap().exp())
                    .collect();
                let labels = doc["mc2_targets"]["labels"].as_array().unwrap();
                let total: f64 = p.iter().sum();
                let truth: f64 = p
                    .iter()
                    .zip(labels)
                    .filter(|(_, l)| l.as_i64() == Some(1))
                    .map(|(x, _)| x / total)
                    .sum();
                shares.push(truth);
            }
            "wikitext" => {
                ll_sum += resp[0][0].as_f64().unwrap();
                // Words of the page before detokenization, counted as
                // `len(re.split(r"\s+", page))`: one more than the runs of
                // white space.
                let page = doc["page"].as_str().unwrap();
                let runs = page
                    .split(|c: char| !c.is_whitespace())
                    .filter(|run| !run.is_empty())
                    .count();
                words += runs as f64 + 1.0;
            }
            _ => {}
        }
    }
    let mc2 = results["truthfulqa_mc2"]["acc,none"].as_f64().unwrap();
    let expected = shares.iter().sum::<f64>() / shares.len() as f64;
    assert!((mc2 - expected).abs() < 1e-9, "mc2 {mc2} vs {expected}");
    assert!(shares.iter().any(|s| *s > 0.0 && *s < 1.0));
    let wp = results["wikitext"]["word_perplexity,none"]
        .as_f64()
        .unwrap();
    let expected = (-ll_sum / words).exp();
    assert!(
        (wp - expected).abs() <= 1e-9 * expected,
        "word_perplexity {wp} vs {expected}"
    );
    for m in [
        "bleu_max",
        "bleu_acc",
        "rouge1_max",
        "rouge2_diff",
        "rougeL_acc",
    ] {
        assert!(
            results["truthfulqa_gen"][format!("{m},none")].is_number(),
            "{m}: {}",
            results["truthfulqa_gen"]
        );
    }
}

#[test]
fn a_changed_hook_file_in_lm_evals_folder_is_refused_by_name() {
    // lm-eval's hellaswag folder, copied, with its process_docs edited.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("hellaswag");
    std::fs::create_dir(&folder).unwrap();
    let source = lm_eval_tasks().join("hellaswag");
    std::fs::copy(source.join("hellaswag.yaml"), folder.join("hellaswag.yaml")).unwrap();
    let utils = std::fs::read_to_string(source.join("utils.py")).unwrap();
    let edited = utils.replace("text.strip()", "text.strip().lower()");
    assert_ne!(utils, edited);
    std::fs::write(folder.join("utils.py"), edited).unwrap();
    let out = Command::cargo_bin("assay")
        .unwrap()
        .current_dir(root())
        .env("HF_HUB_OFFLINE", "1")
        .args(["requests", "--tasks", "hellaswag", "--include-path"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hellaswag.yaml: field `process_docs`"),
        "{err}"
    );
    assert!(err.contains("utils.py, whose source differs"), "{err}");
    assert!(err.contains("fingerprint"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
