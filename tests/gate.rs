//! `assay gate` on constructed runs whose answer is known: identical runs
//! pass, a 5-point loss on 1,000 documents fails, a 0.5-point loss on 3,000
//! within a 1-point margin passes, 40 documents are inconclusive, McNemar's p-value
//! matches scipy's, and runs with different prompts or configs are refused.

use std::path::{Path, PathBuf};

use assay::results::{MetricBlock, Run, SampleRow, TaskRecord};
use assay::stats::Score;
use assert_cmd::Command;
use serde_json::{json, Value};

/// A run of one task `t` whose document `i` scored `values[i]` (acc),
/// asked the prompt `prompt-i` (or `prompts[i]`), under config hash `config`,
/// written by assay's run writer.
fn run(
    root: &Path,
    name: &str,
    values: &[f64],
    prompts: Option<&[String]>,
    config: &str,
) -> PathBuf {
    run_with(root, name, values, prompts, config, |_| {})
}

/// [`run`], with `edit` applied to its run.json record before it is written.
fn run_with(
    root: &Path,
    name: &str,
    values: &[f64],
    prompts: Option<&[String]>,
    config: &str,
    edit: impl FnOnce(&mut Run),
) -> PathBuf {
    run_tasks(root, name, &[("t", values)], prompts, config, edit)
}

/// A run of several tasks, each `(name, values)`, as [`run_with`] writes one.
fn run_tasks(
    root: &Path,
    name: &str,
    tasks: &[(&str, &[f64])],
    prompts: Option<&[String]>,
    config: &str,
    edit: impl FnOnce(&mut Run),
) -> PathBuf {
    let dir = root.join("runs").join(name).join("r1");
    let mut record = Run::default();
    record.assay.variant = Some(name.to_string());
    record.assay.run_id = format!("{name}-r1");
    record.assay.created_at = "2026-02-01T00:00:00Z".into();
    record.assay.complete = true;
    let mut rows = Vec::new();
    for (task, values) in tasks {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let mut block = MetricBlock::default();
        block.scores.insert(
            "acc,none".into(),
            Score {
                value: mean,
                stderr: Some(0.01),
            },
        );
        record.results.insert(task.to_string(), block);
        record.assay.tasks.insert(
            task.to_string(),
            TaskRecord {
                config_hash: config.to_string(),
                ..TaskRecord::default()
            },
        );
        rows.extend(values.iter().enumerate().map(|(i, v)| SampleRow {
            task: task.to_string(),
            doc_id: i,
            filter: "none".into(),
            doc_hash: format!("{i:016x}{:048}", 0),
            prompt_hash: match prompts {
                Some(p) => p[i].clone(),
                None => format!("prompt-{i}"),
            },
            target_hash: String::new(),
            doc: json!({"passage": format!("p{}", i / 5)}).to_string(),
            target: "0".into(),
            arguments: "[]".into(),
            resps: "[]".into(),
            filtered: json!([[-1.0, true], [-2.0, false]]),
            metrics: [("acc".to_string(), *v)].into_iter().collect(),
        }));
    }
    edit(&mut record);
    assay::results::write_run(&dir, &record, &rows).unwrap();
    dir
}

/// A task config that names its cluster field (`metadata.cluster`).
fn clustered_by(field: &str) -> impl FnOnce(&mut Run) + '_ {
    move |r: &mut Run| {
        let config = json!({"metadata": {"cluster": field}});
        r.configs
            .insert("t".into(), config.as_object().cloned().unwrap_or_default());
    }
}

/// `n` documents, the first `right` of them right.
fn scores(n: usize, right: usize) -> Vec<f64> {
    (0..n).map(|i| f64::from(u8::from(i < right))).collect()
}

/// `base` with `lost` right answers turned wrong and `gained` wrong ones right.
fn flipped(base: &[f64], lost: usize, gained: usize) -> Vec<f64> {
    let mut v = base.to_vec();
    v.iter_mut()
        .filter(|x| **x == 1.0)
        .take(lost)
        .for_each(|x| *x = 0.0);
    let right = base.iter().filter(|x| **x == 1.0).count();
    v.iter_mut().skip(right).take(gained).for_each(|x| *x = 1.0);
    v
}

fn gate(root: &Path, baseline: &str, candidate: &str, extra: &[&str]) -> (i32, String, Value) {
    let json_path = root.join(format!("{candidate}.json"));
    let out = Command::cargo_bin("assay")
        .unwrap()
        .args([
            "gate",
            "--baseline",
            baseline,
            "--candidate",
            candidate,
            "--results",
        ])
        .arg(root)
        .arg("--json")
        .arg(&json_path)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read_to_string(&json_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (out.status.code().unwrap(), text, json)
}

#[test]
fn per_task_policies_keep_todays_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let base = scores(1000, 600);
    run(root, "base", &base, None, "h");
    run(root, "same", &base, None, "h");
    // 60 lost, 10 gained: -5 points.
    run(root, "worse", &flipped(&base, 60, 10), None, "h");
    // 15 lost of 3,000: -0.5 points.
    let big = scores(3000, 1800);
    run(root, "big-base", &big, None, "h");
    run(root, "slightly", &flipped(&big, 15, 0), None, "h");
    let small = scores(40, 24);
    let per_task = root.join("per-task.toml");
    std::fs::write(&per_task, "[default]\nmode = \"per-task\"\n").unwrap();
    let per_task = per_task.to_str().unwrap();
    run(root, "small-base", &small, None, "h");
    run(root, "small", &flipped(&small, 2, 1), None, "h");

    let (code, text, json) = gate(root, "base", "same", &["--policy", per_task]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(json["verdict"], "PASS");

    let (code, text, json) = gate(root, "base", "worse", &["--policy", per_task]);
    assert_eq!(code, 1, "{text}");
    assert!(text.starts_with("FAIL"), "{text}");
    let t = &json["tasks"][0];
    assert_eq!(t["difference"]["discordant"], json!([60, 10]));
    assert!((t["difference"]["mean"].as_f64().unwrap() + 0.05).abs() < 1e-12);
    // scipy.stats.binomtest(10, 70).pvalue
    let p = t["mcnemar_p"].as_f64().unwrap();
    assert!((p - 8.004_823_399_455_647e-10).abs() < 1e-15, "{p}");
    assert_eq!(t["flipped_to_wrong"].as_array().unwrap().len(), 60);

    let (code, text, json) = gate(root, "big-base", "slightly", &["--policy", per_task]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(json["verdict"], "PASS");
    // ... and against a margin of 0.1 points, the loss is established.
    let (code, text, _) = gate(
        root,
        "big-base",
        "slightly",
        &["--policy", per_task, "--margin", "0.1"],
    );
    assert_eq!(code, 1, "{text}");

    let (code, text, json) = gate(root, "small-base", "small", &["--policy", per_task]);
    assert_eq!(code, 3, "{text}");
    assert_eq!(json["verdict"], "INCONCLUSIVE");
    assert_eq!(json["tasks"][0]["underpowered"], true);
    // A policy may count an inconclusive gate as passing.
    let policy = root.join("lenient.toml");
    std::fs::write(
        &policy,
        "[default]\nmode = \"per-task\"\ninconclusive = \"pass\"\n",
    )
    .unwrap();
    let (code, text, _) = gate(
        root,
        "small-base",
        "small",
        &["--policy", policy.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{text}");
}

/// A run of tasks t0..t3, task `i` holding `values(i)`.
fn four_tasks(root: &Path, name: &str, values: impl Fn(usize) -> Vec<f64>) {
    let tasks: Vec<(String, Vec<f64>)> = (0..4).map(|i| (format!("t{i}"), values(i))).collect();
    let refs: Vec<(&str, &[f64])> = tasks
        .iter()
        .map(|(t, v)| (t.as_str(), v.as_slice()))
        .collect();
    run_tasks(root, name, &refs, None, "h", |_| {});
}

#[test]
fn the_default_gates_the_average_and_guards_each_task() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let base = scores(2000, 1200);
    four_tasks(root, "base", |_| base.clone());
    // 6% of each task's documents flip, as many each way.
    four_tasks(root, "honest", |_| flipped(&base, 60, 60));
    // One task loses 10 points, the others are unchanged.
    four_tasks(root, "one-task", |i| {
        if i == 0 {
            flipped(&base, 220, 20)
        } else {
            base.clone()
        }
    });
    // Every task loses 3 points.
    four_tasks(root, "worse", |_| flipped(&base, 90, 30));

    let (code, text, json) = gate(root, "base", "honest", &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("PASS"), "{text}");
    assert!(
        text.contains("PASS         average of 4 tasks: +0.00 points"),
        "{text}"
    );
    assert_eq!(json["mode"], "average");
    assert_eq!(json["average"]["documents"], 8000);
    // Each task on its own cannot rule out a 1-point loss at 2,000
    // documents: today's per-task policy leaves the same variant undecided.
    let per_task = root.join("per-task.toml");
    std::fs::write(&per_task, "[default]\nmode = \"per-task\"\n").unwrap();
    let (code, text, _) = gate(
        root,
        "base",
        "honest",
        &["--policy", per_task.to_str().unwrap()],
    );
    assert_eq!(code, 3, "{text}");

    let (code, text, json) = gate(root, "base", "one-task", &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("a regression beyond the guard is established on t0 (guard -5)"),
        "{text}"
    );
    assert_eq!(json["tasks"][0]["verdict"], "FAIL");
    assert_eq!(json["tasks"][1]["verdict"], "PASS");

    let (code, text, json) = gate(root, "base", "worse", &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("the average regresses beyond the margin"),
        "{text}"
    );
    let mean = json["average"]["mean"].as_f64().unwrap();
    assert!((mean + 0.03).abs() < 1e-12, "{mean}");
    assert_eq!(json["average"]["normalised"], false);

    // With a suite, the average is normalised as the leaderboard ranks:
    // a 3-point loss over a 0.5 baseline is 6 normalised points.
    let suite = root.join("suite.yaml");
    let mut text = String::from("group: s\ntask: [t0, t1, t2, t3]\nmetadata:\n  leaderboard:\n");
    for i in 0..4 {
        text.push_str(&format!(
            "    t{i}: {{metric: acc, filter: none, baseline: 0.5}}\n"
        ));
    }
    std::fs::write(&suite, text).unwrap();
    let (code, text, json) = gate(root, "base", "worse", &["--suite", suite.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    let mean = json["average"]["mean"].as_f64().unwrap();
    assert!((mean + 0.06).abs() < 1e-12, "{mean}");
    assert_eq!(json["average"]["normalised"], true);
    assert!(text.contains("normalised points"), "{text}");
}

#[test]
fn an_undecided_report_says_what_would_decide() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let base = scores(200, 120);
    four_tasks(root, "base", |_| base.clone());
    four_tasks(root, "small", |i| flipped(&base, 6 + i, 6));
    let md = root.join("gate.md");
    let (code, text, json) = gate(root, "base", "small", &["--markdown", md.to_str().unwrap()]);
    assert_eq!(code, 3, "{text}");
    assert_eq!(json["verdict"], "INCONCLUSIVE");
    let factor = json["average"]["documents_factor"].as_f64().unwrap();
    assert!(factor > 1.0, "{factor}");
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.starts_with("## ⚠️ INCONCLUSIVE"), "{md}");
    let first_table = md.find("| task |").unwrap();
    let average = md.find("**Average over 4 tasks**").unwrap();
    assert!(average < first_table, "{md}");
    assert!(
        md.contains(&format!("about {factor:.1} times the documents")),
        "{md}"
    );
    // The task that lost most carries most of the uncertainty: named first.
    assert!(md.contains("Per task: t3 200 → "), "{md}");
}

#[test]
fn reports_in_markdown_and_junit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let base = scores(1000, 600);
    run(root, "base", &base, None, "h");
    run(root, "worse", &flipped(&base, 60, 10), None, "h");
    let (md, xml) = (root.join("gate.md"), root.join("gate.xml"));
    let (code, text, _) = gate(
        root,
        "base",
        "worse",
        &[
            "--markdown",
            md.to_str().unwrap(),
            "--junit",
            xml.to_str().unwrap(),
            "--site-url",
            "https://example.org/board",
        ],
    );
    assert_eq!(code, 1, "{text}");
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.starts_with("## ❌ FAIL"), "{md}");
    // The average's verdict leads; the task's guard (5 points) cannot
    // tell a 5-point loss either way.
    assert!(
        md.contains("**Average over 1 task** (points): -5.00") && md.contains("**FAIL**"),
        "{md}"
    );
    assert!(md.contains("### Guards"), "{md}");
    assert!(md.contains("| t | INCONCLUSIVE |"), "{md}");
    assert!(
        md.contains("https://example.org/board/variants/worse.html#doc-t-0"),
        "{md}"
    );
    let xml = std::fs::read_to_string(xml).unwrap();
    assert!(
        xml.contains("tests=\"2\" failures=\"1\" skipped=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"average\"><failure message=\"FAIL"),
        "{xml}"
    );
}

#[test]
fn github_summary_and_annotations() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let base = scores(1000, 600);
    run(root, "base", &base, None, "h");
    run(root, "worse", &flipped(&base, 60, 10), None, "h");
    let summary = root.join("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let out = Command::cargo_bin("assay")
        .unwrap()
        .args([
            "gate",
            "--baseline",
            "base",
            "--candidate",
            "worse",
            "--github",
            "--results",
        ])
        .arg(root)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("::error title=assay gate worse average::FAIL"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.starts_with("earlier step\n## ❌ FAIL"), "{text}");
}

#[test]
fn runs_that_differ_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let base = scores(100, 60);
    run(root, "base", &base, None, "h");
    let mut prompts: Vec<String> = (0..100).map(|i| format!("prompt-{i}")).collect();
    prompts[7] = "another prompt".into();
    run(root, "reprompted", &base, Some(&prompts), "h");
    run(root, "reconfigured", &base, None, "h2");
    run(root, "partial", &base[..50], None, "h");

    let (code, text, _) = gate(root, "base", "reprompted", &[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("task t") && text.contains("different prompts") && text.contains("doc 7"),
        "{text}"
    );
    let (code, text, _) = gate(root, "base", "reconfigured", &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("task t") && text.contains("config"), "{text}");
    let (code, text, _) = gate(root, "base", "partial", &["--policy", "/nonexistent.toml"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("nonexistent.toml"), "{text}");
    let (code, text, _) = gate(root, "base", "nobody", &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("nobody"), "{text}");
}

/// `assay gate --plan` with `extra` arguments: its stdout.
fn plan(root: &Path, extra: &[&str]) -> String {
    let out = Command::cargo_bin("assay")
        .unwrap()
        .args(["gate", "--plan", "--baseline", "base", "--results"])
        .arg(root)
        .args(extra)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn the_plan_says_what_a_suite_can_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let base = scores(1000, 600);
    run_tasks(
        root,
        "base",
        &[("t", &base), ("u", &base)],
        None,
        "h",
        |_| {},
    );
    let per_task = root.join("per-task.toml");
    std::fs::write(&per_task, "[default]\nmode = \"per-task\"\n").unwrap();
    // Per task, as before, with an unrelated candidate (--changed 1): sd of
    // one difference sqrt(2) * 0.49015 = 0.69318; it resolves 2.4865 *
    // 0.69318 / sqrt(1000) = 5.45 points, and 5 needs
    // (2.4865 * 0.69318 / 0.05)^2 = 1188.3 documents.
    let text = plan(
        root,
        &[
            "--policy",
            per_task.to_str().unwrap(),
            "--margin",
            "5",
            "--changed",
            "1",
        ],
    );
    assert!(
        text.contains("t: 1,000 documents, resolves 5.45 points alone (margin -5: 1,189 needed)"),
        "{text}"
    );
    // The default: half the documents answered anew, each task's standard
    // error 0.49015 / sqrt(1000) = 0.0155; the average's is 0.0155 / sqrt(2),
    // so it resolves 2.4865 * 0.010960 = 2.73 points, and 1 point needs
    // (2.725)^2 = 7.4 times the documents. A guard (alpha / 2) resolves
    // 2.8016 * 0.0155 = 4.34 points: within its 5.
    let text = plan(root, &[]);
    assert!(
        text.contains("average of 2 tasks: resolves a margin of 2.73 points; a 1-point margin needs 7.4 times the documents"),
        "{text}"
    );
    assert!(
        text.contains("t: 1,000 documents, resolves 4.34 points alone (guard -5: enough); for the average at -1: 7,4"),
        "{text}"
    );
    // With a candidate, from the paired documents: 10 of 1,000 lost.
    run_tasks(
        root,
        "cand",
        &[("t", &flipped(&base, 10, 0)), ("u", &base)],
        None,
        "h",
        |_| {},
    );
    let text = plan(root, &["--candidate", "cand"]);
    assert!(
        text.contains("from the two runs' paired documents"),
        "{text}"
    );
    assert!(
        text.contains("a 1-point margin needs no more documents"),
        "{text}"
    );
    // A share outside (0, 1] is refused.
    let out = Command::cargo_bin("assay")
        .unwrap()
        .args([
            "gate",
            "--plan",
            "--baseline",
            "base",
            "--changed",
            "0",
            "--results",
        ])
        .arg(root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--changed"));
}

#[test]
fn clustered_documents_widen_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // 20 documents in 4 passages of 5; the candidate loses all of passage 0.
    let base = vec![1.0; 20];
    let mut cand = base.clone();
    cand[..5].iter_mut().for_each(|v| *v = 0.0);
    run(root, "base", &base, None, "h");
    run(root, "plain", &cand, None, "h");
    let (_, text, json) = gate(root, "base", "plain", &[]);
    // Independent documents: sqrt(3.75 / 19 / 20).
    let se = json["tasks"][0]["difference"]["stderr"]
        .as_f64()
        .expect(&text);
    assert!((se - (3.75f64 / 19.0 / 20.0).sqrt()).abs() < 1e-12, "{se}");

    // The task declares its cluster: passage sums of (d - mean) are -3.75,
    // 1.25, 1.25, 1.25; sqrt(4/3 * 18.75) / 20 = 0.25.
    run_with(root, "clustered", &cand, None, "h", clustered_by("passage"));
    run_with(root, "base-c", &base, None, "h", clustered_by("passage"));
    let (_, text, json) = gate(root, "base-c", "clustered", &[]);
    let se = json["tasks"][0]["difference"]["stderr"]
        .as_f64()
        .expect(&text);
    assert!((se - 0.25).abs() < 1e-12, "{se}");
}

#[test]
fn the_example_policy_reads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/gate.toml");
    let policy = assay::gate::Policy::read(&path).unwrap();
    assert_eq!(policy.default.mode, assay::gate::Mode::Average);
    assert_eq!(policy.task("assay_counting").guard, 8.0);
    assert_eq!(policy.task("assay_dates").guard, 5.0);
    // So does the hub's.
    let hub = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/hub/gate.toml");
    assert_eq!(
        assay::gate::Policy::read(&hub).unwrap().default.mode,
        assay::gate::Mode::Average
    );
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "[default]\nalpha = 0.7\n").unwrap();
    let err = assay::gate::Policy::read(bad.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("alpha") && err.contains(&bad.path().display().to_string()),
        "{err}"
    );
    std::fs::write(bad.path(), "[default]\nmargn = 1\n").unwrap();
    let err = assay::gate::Policy::read(bad.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("margn"), "{err}");
    // A gate with nothing left to decide is named.
    std::fs::write(bad.path(), "[tasks.t]\nrequired = false\n").unwrap();
    let policy = assay::gate::Policy::read(bad.path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = scores(100, 60);
    run(dir.path(), "base", &base, None, "h");
    run(dir.path(), "cand", &base, None, "h");
    let (code, text, _) = gate(
        dir.path(),
        "base",
        "cand",
        &["--policy", bad.path().to_str().unwrap()],
    );
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("required = false"), "{text}");
    assert!(!policy.task("t").required);
    // A per-task margin means nothing to the default mode, and a guard
    // nothing to the per-task one: both are named.
    std::fs::write(bad.path(), "[tasks.t]\nmargin = 2\n").unwrap();
    let err = assay::gate::Policy::read(bad.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tasks.t.margin") && err.contains("tasks.t.guard") && err.contains("per-task"),
        "{err}"
    );
    std::fs::write(
        bad.path(),
        "[default]\nmode = \"per-task\"\n[tasks.t]\nguard = 2\n",
    )
    .unwrap();
    let err = assay::gate::Policy::read(bad.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("tasks.t.guard"), "{err}");
}

#[test]
fn the_same_model_against_itself_passes_at_any_size() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let small = scores(40, 24);
    for (name, fingerprint) in [
        ("a", "sha256:x"),
        ("a-again", "sha256:x"),
        ("other", "sha256:y"),
    ] {
        run_with(root, name, &small, None, "h", |r| {
            r.assay.model = Some(assay::backend::ModelIdentity {
                fingerprint: fingerprint.to_string(),
                ..Default::default()
            });
        });
    }
    // The same weights answered every document alike: no difference.
    let (code, text, _) = gate(root, "a", "a-again", &[]);
    assert_eq!(code, 0, "{text}");
    // Another model that happens to agree on 40 documents: too few to tell.
    let (code, text, _) = gate(root, "a", "other", &[]);
    assert_eq!(code, 3, "{text}");
}

#[test]
fn bad_margins_and_missing_cluster_fields_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let base = scores(100, 60);
    // The task names a cluster field its documents do not have.
    run_with(root, "base", &base, None, "h", clustered_by("chapter"));
    let cand = flipped(&base, 2, 1);
    run_with(root, "cand", &cand, None, "h", clustered_by("chapter"));
    let (code, text, _) = gate(root, "base", "cand", &["--margin", "150"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--margin") && text.contains("150"), "{text}");

    let (code, text, _) = gate(root, "base", "cand", &[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("task t") && text.contains("chapter"),
        "{text}"
    );
}

#[test]
fn a_suite_gates_its_own_tasks_on_the_metric_it_ranks_them_by() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let base = scores(200, 120);
    run(root, "base", &base, None, "h");
    run(root, "worse", &flipped(&base, 60, 10), None, "h");
    let suite = |name: &str, text: &str| {
        let path = root.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    // The suite ranks t by acc: the regression fails the gate, as without it.
    let ranked = suite(
        "ranked.yaml",
        "group: s\ntask: [t]\nmetadata:\n  leaderboard:\n    t: {metric: acc, filter: none, baseline: 0.5}\n",
    );
    let (code, text, _) = gate(root, "base", "worse", &["--suite", &ranked]);
    assert_eq!(code, 1, "{text}");
    // A suite that ranks t by another metric gates on that one.
    let other = suite(
        "other.yaml",
        "group: s\ntask: [t]\nmetadata:\n  leaderboard:\n    t: {metric: exact_match, filter: none, baseline: 0}\n",
    );
    let (code, text, _) = gate(root, "base", "worse", &["--suite", &other]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("exact_match"), "{text}");
    // Tasks outside the suite are not gated.
    let elsewhere = suite(
        "elsewhere.yaml",
        "group: s\ntask: [u]\nmetadata:\n  leaderboard:\n    u: {metric: acc, filter: none, baseline: 0.5}\n",
    );
    let (code, text, _) = gate(root, "base", "worse", &["--suite", &elsewhere]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("no task in common"), "{text}");
}
