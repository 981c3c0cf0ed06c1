//! lm-eval's meaning of the task options: --num-fewshot, --limit, --shard.

use assert_cmd::Command;

fn requests(args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::cargo_bin("assay")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("requests")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn num_fewshot_never_overrides_a_config_that_says_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.jsonl"), "{\"q\": \"a\", \"t\": \"b\"}\n{\"q\": \"c\", \"t\": \"d\"}\n{\"q\": \"e\", \"t\": \"f\"}\n").unwrap();
    let yaml = "task: zero\ndataset_path: json\ndataset_kwargs:\n  data_files: {test: d.jsonl, train: d.jsonl}\ntest_split: test\ntraining_split: train\noutput_type: loglikelihood\ndoc_to_text: q\ndoc_to_target: t\nnum_fewshot: 0\n";
    std::fs::write(dir.path().join("zero.yaml"), yaml).unwrap();
    std::fs::write(
        dir.path().join("unset.yaml"),
        yaml.replace("task: zero", "task: unset")
            .replace("num_fewshot: 0\n", ""),
    )
    .unwrap();
    let include = dir.path().to_str().unwrap();
    let zero = requests(&[
        "--tasks",
        "zero",
        "--include-path",
        include,
        "--num-fewshot",
        "1",
    ]);
    assert_eq!(zero[0]["arguments"][0], "a");
    let unset = requests(&[
        "--tasks",
        "unset",
        "--include-path",
        include,
        "--num-fewshot",
        "1",
    ]);
    assert_ne!(
        unset[0]["arguments"][0], "a",
        "one example precedes the question"
    );
}

#[test]
fn shards_partition_a_run_without_changing_its_prompts() {
    let full = requests(&["--tasks", "assay_arithmetic", "--limit", "30"]);
    let mut joined = Vec::new();
    for k in 0..3 {
        let shard = requests(&[
            "--tasks",
            "assay_arithmetic",
            "--limit",
            "30",
            "--shard",
            &format!("{k}/3"),
        ]);
        assert!(shard.iter().all(|r| r["doc_id"].as_u64().unwrap() % 3 == k));
        joined.extend(shard);
    }
    joined.sort_by_key(|r| (r["doc_id"].as_u64(), r["idx"].as_u64()));
    assert_eq!(joined, full);
}

#[test]
fn limit_takes_a_count_or_a_fraction() {
    let docs = |args: &[&str]| {
        let mut ids: Vec<u64> = requests(args)
            .iter()
            .map(|r| r["doc_id"].as_u64().unwrap())
            .collect();
        ids.dedup();
        ids.len()
    };
    assert_eq!(docs(&["--tasks", "assay_wordlist", "--limit", "7"]), 7);
    // 100 documents; a fraction rounds up.
    assert_eq!(docs(&["--tasks", "assay_wordlist", "--limit", "0.123"]), 13);
}
