//! run.json has one reader and one writer (`results::Run`), and runs written
//! before it was typed still read: the fixture under tests/fixtures/runs was
//! written by the earlier code.

use std::path::PathBuf;

use assay::results::{self, Run};

fn old_run() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/runs/old-format/20261203T084547Z-c075b9")
}

#[test]
fn an_older_run_json_reads_and_writes_back_the_same_json() {
    let text = std::fs::read_to_string(old_run().join("run.json")).unwrap();
    let original: serde_json::Value = serde_json::from_str(&text).unwrap();
    let run: Run = serde_json::from_str(&text).unwrap();
    // Every field, apart from the order of keys.
    assert_eq!(serde_json::to_value(&run).unwrap(), original);

    let found = results::read_run(&old_run()).unwrap();
    assert!(found.is_complete());
    assert_eq!(found.variant(), Some("old-format"));
    assert_eq!(found.run_id(), "20261203T084547Z-c075b9");
    let acc = found.run.score("assay_core", "acc,none").unwrap();
    assert!((acc.value - 1.0 / 3.0).abs() < 1e-12, "{acc:?}");
    assert_eq!(
        found
            .run
            .score("assay_wordlist", "bits_per_byte,none")
            .unwrap()
            .stderr,
        None,
        "N/A reads as no stderr"
    );
    assert_eq!(found.run.group_subtasks["assay_core"].len(), 5);
    assert!(found.run.config_hash("assay_dates").is_some());
    assert!(found.run.fingerprint().starts_with("sha256:a5fd3b62"));
}

#[test]
fn an_older_run_gates_against_itself() {
    let found = results::read_run(&old_run()).unwrap();
    let report = assay::gate::gate(&found, &found, &assay::gate::Policy::default(), None).unwrap();
    assert_eq!(report.tasks.len(), found.run.assay.tasks.len());
}
