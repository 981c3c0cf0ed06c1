//! The built-in tasks and suites travel inside the binary: a copy of it in
//! an empty folder, far from any source tree, lists, plans and runs them;
//! a hub's `./tasks` adds to them and wins on a name clash.

#[path = "support/mock_openai.rs"]
mod mock_openai;

use std::path::{Path, PathBuf};
use std::process::Command;

use mock_openai::MockServer;

/// A copy of the binary in its own folder, and an empty working folder.
fn lone_binary(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let copy = bin.join("assay");
    std::fs::copy(assert_cmd::cargo::cargo_bin("assay"), &copy).unwrap();
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    (copy, work)
}

fn assay(bin: &Path, work: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin)
        .current_dir(work)
        .env("ASSAY_CACHE_DIR", work.join(".cache"))
        .env_remove("ASSAY_TASKS_DIR")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_copied_binary_in_an_empty_folder_lists_plans_and_runs_built_in_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, work) = lone_binary(dir.path());
    let (ok, list, err) = assay(&bin, &work, &["tasks", "list"]);
    assert!(ok, "{err}");
    let row = list
        .lines()
        .find(|l| l.starts_with("assay_arithmetic "))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(row.contains("built-in: "), "{row}");
    assert!(
        list.lines().any(|l| l.starts_with("open-llm-v1 ")),
        "suites: {list}"
    );

    let (ok, requests, err) = assay(
        &bin,
        &work,
        &["requests", "--tasks", "assay_arithmetic", "--limit", "2"],
    );
    assert!(ok, "{err}");
    assert!(requests.lines().count() >= 2, "{requests}");

    let server = MockServer::start();
    let model = format!("openai-completions:{}", server.base);
    let (ok, out, err) = assay(
        &bin,
        &work,
        &[
            "run",
            "--quiet",
            "--model",
            &model,
            "--tasks",
            "assay_arithmetic",
            "--limit",
            "2",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("assay_arithmetic"), "{out}");
    assert!(work.join("results/runs").is_dir());

    // Files without an extension (templates that configs `include:`) travel
    // too.
    let (ok, shown, err) = assay(&bin, &work, &["tasks", "show", "leaderboard_gpqa_main"]);
    assert!(ok, "{err}");
    assert!(shown.contains("Idavidrein/gpqa"), "{shown}");
}

#[test]
fn a_hubs_own_tasks_folder_adds_to_the_built_in_tasks_and_wins_a_clash() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, work) = lone_binary(dir.path());
    let tasks = work.join("tasks");
    std::fs::create_dir_all(tasks.join("suites")).unwrap();
    std::fs::write(
        tasks.join("d.jsonl"),
        "{\"q\": \"1+1?\", \"a\": 0, \"c\": [\"2\", \"3\"]}\n",
    )
    .unwrap();
    // Its own task, and its own version of a built-in task's name.
    let config = |name: &str| {
        format!(
            "task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: d.jsonl\n\
             test_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{{{q}}}}\"\n\
             doc_to_target: a\ndoc_to_choice: c\n"
        )
    };
    std::fs::write(tasks.join("hub_task.yaml"), config("hub_task")).unwrap();
    std::fs::write(tasks.join("dates.yaml"), config("assay_dates")).unwrap();
    std::fs::write(
        tasks.join("suites/hub.yaml"),
        "group: hub\ntask: [hub_task, assay_arithmetic]\n",
    )
    .unwrap();
    let (ok, list, err) = assay(&bin, &work, &["tasks", "list"]);
    assert!(ok, "{err}");
    let source = |name: &str| {
        list.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not in {list}"))
            .to_string()
    };
    assert!(source("hub_task").contains("tasks/hub_task.yaml"));
    assert!(source("assay_arithmetic").contains("built-in: "));
    assert!(
        source("assay_dates").contains("tasks/dates.yaml"),
        "the hub's wins"
    );
    assert!(source("hub").contains("suites/hub.yaml"));
    let (ok, requests, err) = assay(&bin, &work, &["requests", "--tasks", "hub", "--limit", "1"]);
    assert!(ok, "{err}");
    assert!(requests.contains("\"task\":\"hub_task\""), "{requests}");
    assert!(
        requests.contains("\"task\":\"assay_arithmetic\""),
        "{requests}"
    );
}
