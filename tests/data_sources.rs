//! The same task over JSON Lines, a JSON array, CSV and Parquet gives the same
//! requests; `tasks list` and `tasks show` see configs under --include-path.

use assert_cmd::Command;
use polars::prelude::*;

const YAML: &str = "task: NAME\ndataset_path: FORMAT\ndataset_kwargs:\n  data_files:\n    test: FILE\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: \"Q: {{q}} ({{n}})\"\ndoc_to_target: a\ndoc_to_choice: \"{{[x, y]}}\"\n";

fn requests(dir: &std::path::Path, task: &str) -> String {
    let out = Command::cargo_bin("assay")
        .unwrap()
        .args(["requests", "--tasks", task, "--include-path"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().replace(task, "T")
}

#[test]
fn every_local_format_gives_the_same_requests() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let rows = [("one", 1, 0, "yes", "no"), ("two", 2, 1, "up", "down")];
    let mut jsonl = String::new();
    for (q, n, a, x, y) in rows {
        jsonl.push_str(&format!(
            "{{\"q\": \"{q}\", \"n\": {n}, \"a\": {a}, \"x\": \"{x}\", \"y\": \"{y}\"}}\n"
        ));
    }
    std::fs::write(p.join("d.jsonl"), &jsonl).unwrap();
    let array = format!("[{}]", jsonl.trim().lines().collect::<Vec<_>>().join(","));
    std::fs::write(p.join("d.json"), array).unwrap();
    std::fs::write(
        p.join("d.csv"),
        "q,n,a,x,y\none,1,0,yes,no\ntwo,2,1,up,down\n",
    )
    .unwrap();
    let mut df = df!(
        "q" => ["one", "two"],
        "n" => [1i64, 2],
        "a" => [0i64, 1],
        "x" => ["yes", "up"],
        "y" => ["no", "down"],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(p.join("d.parquet")).unwrap())
        .finish(&mut df)
        .unwrap();
    let formats = [
        ("t_jsonl", "json", "d.jsonl"),
        ("t_array", "json", "d.json"),
        ("t_csv", "csv", "d.csv"),
        ("t_parquet", "parquet", "d.parquet"),
    ];
    for (name, format, file) in formats {
        let yaml = YAML
            .replace("NAME", name)
            .replace("FORMAT", format)
            .replace("FILE", file);
        std::fs::write(p.join(format!("{name}.yaml")), yaml).unwrap();
    }
    let reference = requests(p, "t_jsonl");
    assert!(reference.contains("Q: two (2)"), "{reference}");
    assert_eq!(reference.lines().count(), 4);
    for (name, _, _) in &formats[1..] {
        assert_eq!(requests(p, name), reference, "{name}");
    }

    let list = Command::cargo_bin("assay")
        .unwrap()
        .args(["tasks", "list", "--include-path"])
        .arg(p)
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    for (name, _, _) in formats {
        assert!(list.contains(name), "{list}");
    }
    assert!(
        list.contains("assay_core"),
        "built-in tasks are listed too: {list}"
    );
    let show = Command::cargo_bin("assay")
        .unwrap()
        .args(["tasks", "show", "t_csv", "--include-path"])
        .arg(p)
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(shown["dataset_path"], "csv");
}

#[test]
fn validate_accepts_the_built_in_offline_tasks() {
    // The standard tasks read the Hub: tests/hub_parity.rs validates them
    // against a mock.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut folders: Vec<String> = std::fs::read_dir(root.join("tasks"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("assay_") && !n.ends_with(".yaml"))
        .map(|n| format!("tasks/{n}"))
        .collect();
    folders.sort();
    assert!(folders.len() >= 5, "{folders:?}");
    Command::cargo_bin("assay")
        .unwrap()
        .current_dir(root)
        .args(["tasks", "validate"])
        .args(&folders)
        .env("HF_HUB_OFFLINE", "1")
        .assert()
        .success()
        .stdout(predicates::str::contains("ok:"));
}
