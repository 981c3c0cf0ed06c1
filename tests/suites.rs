//! Suites as the standard ones are written: entries with their own shot
//! counts, and a leaderboard entry that is a group (MMLU's average over its
//! subjects). Real runs of a tiny model; the leaderboard must rank them
//! (not call them stale), pair the derived variant with its base over the
//! group's documents, and flag a changed member task's config as stale.

#[path = "support/fixture_runs.rs"]
mod fixture_runs;
#[path = "support/tiny_gguf.rs"]
mod tiny_gguf;

use std::path::Path;

use assert_cmd::Command;
use polars::prelude::*;

fn task_yaml(name: &str, shots: usize) -> String {
    format!(
        "task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {name}_test.jsonl\n    train: {name}_train.jsonl\n\
         output_type: multiple_choice\ntest_split: test\ntraining_split: train\nnum_fewshot: {shots}\n\
         doc_to_text: \"Question: {{{{question}}}}\\nAnswer:\"\ndoc_to_choice: choices\ndoc_to_target: label\n\
         metric_list:\n  - metric: acc\n"
    )
}

fn write_task(dir: &Path, name: &str, docs: usize) {
    std::fs::write(dir.join(format!("{name}.yaml")), task_yaml(name, 0)).unwrap();
    for (split, n) in [("test", docs), ("train", 3)] {
        let lines: String = (0..n)
            .map(|i| {
                format!(
                    "{}\n",
                    serde_json::json!({
                        "question": format!("{name} {split} item {i}: which is largest?"),
                        "choices": [format!("{i}"), format!("{}", i + 7), format!("{}", i + 3)],
                        "label": 1
                    })
                )
            })
            .collect();
        std::fs::write(dir.join(format!("{name}_{split}.jsonl")), lines).unwrap();
    }
}

const SUITE: &str = "group: mysuite\ntask:\n  - task: alpha\n    num_fewshot: 2\n  - group: both\n    num_fewshot: 1\n\
metadata:\n  leaderboard:\n    alpha: {metric: acc, filter: none, baseline: 0.25}\n    both: {metric: acc, filter: none, baseline: 0.25}\n";

fn assay(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.current_dir(dir)
        .env("ASSAY_CACHE_DIR", dir.join("cache"));
    cmd
}

/// A column's values as text ("" for null), whatever its type.
fn column(df: &DataFrame, name: &str) -> Vec<String> {
    let c = df.column(name).unwrap().cast(&DataType::String).unwrap();
    let ca = c.str().unwrap().clone();
    (0..ca.len())
        .map(|i| ca.get(i).unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_suite_with_shot_counts_and_a_group_entry_ranks_and_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let tasks = root.join("tasks");
    std::fs::create_dir_all(&tasks).unwrap();
    write_task(&tasks, "alpha", 12);
    write_task(&tasks, "beta1", 10);
    write_task(&tasks, "beta2", 6);
    std::fs::write(
        tasks.join("both.yaml"),
        "group: both\ntask: [beta1, beta2]\naggregate_metric_list:\n  - metric: acc\n    weight_by_size: false\n",
    )
    .unwrap();
    std::fs::write(tasks.join("mysuite.yaml"), SUITE).unwrap();
    for (name, seed) in [("tiny-a", 11), ("tiny-b", 12)] {
        let model = root.join(format!("{name}.gguf"));
        tiny_gguf::write_tiny_llama(&model, seed).unwrap();
        let out = assay(root)
            .args(["run", "--quiet", "--model"])
            .arg(format!("llama:{}", model.display()))
            .args(["--tasks", "mysuite", "--include-path"])
            .arg(&tasks)
            .args(["--out", "results/runs"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let variants = root.join("variants");
    fixture_runs::manifest(&variants, "tiny-a", None);
    fixture_runs::manifest(&variants, "tiny-b", Some("tiny-a"));

    let leaderboard = |out: &str| {
        let o = assay(root)
            .args([
                "leaderboard",
                "--results",
                "results",
                "--variants",
                "variants",
                "--suite",
            ])
            .arg(tasks.join("mysuite.yaml"))
            .arg("--include-path")
            .arg(&tasks)
            .args(["--out", out])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let file = std::fs::File::open(root.join(out).join("leaderboard.parquet")).unwrap();
        ParquetReader::new(file).finish().unwrap()
    };
    let board = leaderboard("board1");
    let names = column(&board, "variant");
    assert_eq!(column(&board, "stale"), ["false", "false"], "{board}");
    assert!(
        column(&board, "rank").iter().all(|r| !r.is_empty()),
        "{board}"
    );
    let b = names.iter().position(|n| n == "tiny-b").unwrap();
    // alpha's 12 documents and the group's 10 + 6, paired per document.
    assert_eq!(column(&board, "delta_documents")[b], "28", "{board}");

    // The site's drill-down offers the group's member tasks.
    let page = std::fs::read_to_string(root.join("board1/variants/tiny-b.html")).unwrap();
    assert!(page.contains("<option value=\"beta2\">"), "{page}");

    // A member task's config changes: the group entry is stale, alpha is not.
    let yaml = std::fs::read_to_string(tasks.join("beta2.yaml")).unwrap();
    std::fs::write(tasks.join("beta2.yaml"), yaml.replace("Question:", "Q:")).unwrap();
    let board = leaderboard("board2");
    assert_eq!(column(&board, "stale_tasks"), ["both", "both"], "{board}");
}
