//! Bad input is expected input: a group that contains itself, an unknown
//! backend kind, a config that does not parse, a target that names no
//! choice, and a sweep of malformed configs, data files, BIG-bench task.json
//! files, manifests and policies. Each ends the command with exit 2 and a
//! message naming the file; none panics.

#[path = "support/mock_openai.rs"]
mod mock_openai;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use mock_openai::MockServer;

fn assay(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.current_dir(dir)
        .env("ASSAY_CACHE_DIR", dir.join("cache"))
        .env("ASSAY_DATASETS_CACHE", dir.join("datasets"))
        .env("HF_HUB_OFFLINE", "1");
    cmd
}

const DATA: &str = "{\"q\": \"1+1?\", \"a\": 0, \"c\": [\"2\", \"3\"]}\n{\"q\": \"2+2?\", \"a\": 1, \"c\": [\"3\", \"4\"]}\n";

/// A valid multiple-choice config over `d.jsonl`, with `extra` appended.
fn config(extra: &str) -> String {
    format!(
        "task: t\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: d.jsonl\n\
         test_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{{{q}}}}\"\n\
         doc_to_target: a\ndoc_to_choice: c\n{extra}"
    )
}

/// Runs a command and checks it failed as bad input should: exit 2, no
/// panic, and `needles` (the file's name first) in what it printed.
fn refused(mut cmd: Command, needles: &[&str], what: &str) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{what}: a panic: {stderr}"
    );
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{what}: `{n}` missing from: {stderr}");
    }
    stderr
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn requests(dir: &Path, task: &str) -> Command {
    let mut cmd = assay(dir);
    cmd.env("ASSAY_TASKS_DIR", dir.join("no-builtin"))
        .args(["requests", "--tasks", task, "--include-path"])
        .arg(dir.join("tasks"));
    cmd
}

#[test]
fn a_group_that_contains_itself_is_named_with_its_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "tasks/d.jsonl", DATA);
    write(d, "tasks/t.yaml", &config(""));
    write(d, "tasks/self.yaml", "group: g_self\ntask: [t, g_self]\n");
    let err = refused(
        requests(d, "g_self"),
        &["self.yaml", "g_self -> g_self"],
        "direct",
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    write(d, "tasks/a.yaml", "group: g_a\ntask: [t, g_b]\n");
    write(d, "tasks/b.yaml", "group: g_b\ntask: [g_a]\n");
    refused(
        requests(d, "g_a"),
        &["g_a -> g_b -> g_a"],
        "through another group",
    );
}

#[test]
fn an_unknown_backend_kind_fails_validation() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "variants/psychic.toml",
        "name = \"psychic\"\nrelation = \"original\"\n[backend]\nspec = \"telepathy:model\"\n",
    );
    let mut cmd = assay(dir.path());
    cmd.args(["variants", "validate"]).arg(&manifest);
    refused(
        cmd,
        &["psychic.toml", "telepathy", "openai-completions"],
        "kind",
    );
}

#[test]
fn a_config_that_does_not_parse_is_named_when_its_task_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "tasks/d.jsonl", DATA);
    write(d, "tasks/t.yaml", "task: t\ndoc_to_text: [unclosed\n");
    let err = refused(requests(d, "t"), &["t.yaml", "YAML", "line"], "requests");
    assert_eq!(err.lines().count(), 1, "{err}");
    // `tasks list` lists it as an error.
    let out = assay(d)
        .env("ASSAY_TASKS_DIR", d.join("no-builtin"))
        .args(["tasks", "list", "--include-path"])
        .arg(d.join("tasks"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("error: ") && l.contains("t.yaml")),
        "{stderr}"
    );
}

#[test]
fn a_target_that_names_no_choice_fails_the_run_naming_the_document() {
    let server = MockServer::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "tasks/d.jsonl",
        "{\"q\": \"1+1?\", \"a\": 0, \"c\": [\"2\", \"3\"]}\n{\"q\": \"2+2?\", \"a\": 7, \"c\": [\"3\", \"4\"]}\n",
    );
    write(d, "tasks/t.yaml", &config(""));
    let mut cmd = assay(d);
    cmd.env("ASSAY_TASKS_DIR", d.join("no-builtin"))
        .args(["run", "--quiet", "--no-cache", "--tasks", "t", "--model"])
        .arg(format!("openai-completions:{}", server.base))
        .arg("--include-path")
        .arg(d.join("tasks"))
        .arg("--out")
        .arg(d.join("runs"));
    refused(cmd, &["task `t`", "document 1", "target 7"], "out of range");
    assert!(!d.join("runs").exists(), "no run is written");
}

/// One malformed input: the file to write, its text, and what reads it.
struct Case {
    file: &'static str,
    text: String,
    command: fn(&Path, &Path) -> Command,
}

fn plan_t(dir: &Path, _: &Path) -> Command {
    requests(dir, "t")
}

fn plan_bigbench(dir: &Path, _: &Path) -> Command {
    requests(dir, "bbtask")
}

fn validate_manifest(dir: &Path, file: &Path) -> Command {
    let mut cmd = assay(dir);
    cmd.args(["variants", "validate"]).arg(file);
    cmd
}

fn gate_with_policy(dir: &Path, file: &Path) -> Command {
    let mut cmd = assay(dir);
    cmd.args(["gate", "--baseline", "a", "--candidate", "b", "--policy"])
        .arg(file)
        .arg("--results")
        .arg(dir.join("results"));
    cmd
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut task = |text: String| {
        cases.push(Case {
            file: "t.yaml",
            text,
            command: plan_t,
        })
    };
    for extra in [
        "num_fewshot: many\n",
        "num_fewshot: -3\n",
        "repeats: -1\n",
        "output_type: telepathy\n",
        "test_split: nosuchsplit\n",
        "metric_list:\n  - metric: nosuchmetric\n",
        "metric_list:\n  - metric: acc\n    aggregation: nosuchaggregation\n",
        "metric_list: 5\n",
        "filter_list:\n  - name: f\n    filter:\n      - function: nosuchfilter\n",
        "filter_list: {name: f}\n",
        "fewshot_config:\n  sampler: nosuchsampler\n",
        "fewshot_config: 7\n",
        "target_delimiter: [1, 2]\n",
        "generation_kwargs: 3\n",
        "description: \"{{ unclosed\"\n",
        "doc_to_text: \"{{ q \"\n",
        "doc_to_text: \"{{ q | nosuchfilter }}\"\n",
        "doc_to_target: \"{{ nosuchcolumn }}\"\n",
        "doc_to_choice: \"{{ q }}\"\n",
        "process_docs: !function utils.nothing\n",
        "include: nosuchfile.yaml\n",
        "tag: [1, [2]]\n",
        "dataset_kwargs: 5\n",
        "validation_split: 7\n",
        "fewshot_split: nosuchsplit\nnum_fewshot: 1\n",
        "doc_to_decontamination_query: 5\nshould_decontaminate: maybe\n",
    ] {
        // Later keys win, as in PyYAML: each extra replaces a valid value.
        task(config(extra));
    }
    for text in [
        "task: [unclosed\n".to_string(),
        "- a\n- list\n".to_string(),
        "task: t\n".to_string(),
        "task: t\ninclude: t.yaml\n".to_string(),
        config("").replace("test: d.jsonl", "test: missing.jsonl"),
        config("").replace(
            "output_type: multiple_choice",
            "output_type: generate_until\ngeneration_kwargs: {until: 5}",
        ),
    ] {
        task(text);
    }
    // Data files behind a valid config.
    for data in [
        "{\"q\": \"1+1?\", \"a\": 0, \"c\": [\"2\", \"3\"]}\n{not json\n",
        "[1, 2]\n",
        "",
        "{\"q\": \"1+1?\"}\n",
        "\u{0}\u{1}binary",
        "{\"q\": 5, \"a\": \"x\", \"c\": 3}\n",
    ] {
        cases.push(Case {
            file: "d.jsonl",
            text: data.to_string(),
            command: plan_t,
        });
    }
    // BIG-bench task.json files.
    for json in [
        "{not json",
        "[]",
        "{\"examples\": 5}",
        "{\"name\": \"x\"}",
        "{\"examples\": [{\"target\": \"a\"}]}",
        "{\"examples\": [{\"input\": \"q\", \"target_scores\": {\"a\": \"high\"}}]}",
        "{\"examples\": [{\"input\": 5, \"target\": \"a\"}]}",
        "{\"examples\": []}",
    ] {
        cases.push(Case {
            file: "bbtask/task.json",
            text: json.to_string(),
            command: plan_bigbench,
        });
    }
    // Variant manifests.
    let base = "name = \"m\"\nrelation = \"original\"\n[backend]\nspec = \"llama:x.gguf\"\n";
    for text in [
        "name = \"m\"\nrelation = [\n".to_string(),
        base.replace("relation = \"original\"", "relation = \"cousin\""),
        base.replace("name = \"m\"\n", ""),
        format!("colour = \"blue\"\n{base}"),
        base.replace("llama:x.gguf", "nocolon"),
        base.replace("llama:x.gguf", "telepathy:x"),
        format!("weights_sha256 = \"xyz\"\n{base}"),
        base.replace(
            "relation = \"original\"",
            "relation = \"fine-tune\"\nbase = \"m\"",
        ),
        base.replace("name = \"m\"", "name = \"../m\""),
        base.replace("[backend]\nspec = \"llama:x.gguf\"\n", ""),
        format!("parameters = \"many\"\n{base}"),
    ] {
        cases.push(Case {
            file: "variants/m.toml",
            text,
            command: validate_manifest,
        });
    }
    // Gate policies.
    for text in [
        "[default\n",
        "[default]\nalpha = 0.7\n",
        "[default]\nmargn = 1\n",
        "[default]\nmargin = -1\n",
        "[default]\ninconclusive = \"maybe\"\n",
        "[default]\npower = 2\n",
        "[tasks.t]\nmargin = \"wide\"\n",
        "[default]\nmin_overlap = 1.5\n",
    ] {
        cases.push(Case {
            file: "gate.toml",
            text: text.to_string(),
            command: gate_with_policy,
        });
    }
    cases
}

#[test]
fn a_sweep_of_malformed_inputs_exits_2_naming_the_file() {
    let cases = cases();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A valid task and its data unless the case replaces one of them.
        write(d, "tasks/d.jsonl", DATA);
        write(d, "tasks/t.yaml", &config(""));
        let file = match case.file {
            "variants/m.toml" | "gate.toml" => write(d, case.file, &case.text),
            f => write(&d.join("tasks"), f, &case.text),
        };
        let name = Path::new(case.file)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let out = (case.command)(d, &file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // A document whose values do not fit the config is named by the
        // config, the document and the field.
        let named = stderr.contains(&name)
            || (name == "d.jsonl" && stderr.contains("t.yaml") && stderr.contains("document"));
        let ok = out.status.code() == Some(2) && !stderr.contains("panicked") && named;
        if !ok {
            failures.push(format!(
                "case {i} ({}: {:?}): exit {:?}: {stderr}",
                case.file,
                case.text,
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
