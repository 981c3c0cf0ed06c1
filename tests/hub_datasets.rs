//! Hugging Face Hub datasets against a mock Hub served by the test: a task
//! names `dataset_path: owner/name`; assay resolves the config's files
//! through the revision API, downloads them once into its cache and reads
//! them from there. Offline mode, gated datasets, a download cut off halfway
//! and a file whose hash is wrong each get one clear outcome.

#[path = "support/mock_hub.rs"]
mod mock_hub;
#[path = "support/runs.rs"]
mod runs;
#[path = "support/tiny_gguf.rs"]
mod tiny_gguf;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use mock_hub::{parquet, parquet_repo, MockHub, Repo};
use runs::{only_run, run_json};
use serde_json::{json, Value};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const TEST_FILE: &str = "main/test-00000-of-00001.parquet";

/// Documents in ARC's shape (a struct column of choices).
fn docs(n: usize, tag: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "id": format!("{tag}-{i}"),
                "question": format!("Which number comes after {i} ({tag})?"),
                "choices": {"text": [format!("{}", i + 1), format!("{}", i + 2), "zero"], "label": ["A", "B", "C"]},
                "answerKey": "A",
            })
        })
        .collect()
}

fn qa_repo() -> Repo {
    parquet_repo(
        COMMIT,
        &[mock_hub::config(
            "main",
            vec![("train", docs(3, "train")), ("test", docs(5, "test"))],
        )],
    )
}

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    tasks: PathBuf,
    cache: PathBuf,
    hub: MockHub,
}

impl Setup {
    /// A task folder with one task reading `fixture/qa` (config `main`).
    fn new(extra_kwargs: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let tasks = root.join("tasks");
        std::fs::create_dir_all(&tasks).unwrap();
        std::fs::write(
            tasks.join("hub_qa.yaml"),
            format!(
                "task: hub_qa\ndataset_path: fixture/qa\ndataset_name: main\n{extra_kwargs}\
                 output_type: multiple_choice\ntest_split: test\ntraining_split: train\n\
                 num_fewshot: 1\nfewshot_config:\n  sampler: first_n\n\
                 doc_to_text: \"Q: {{{{question}}}}\\nA:\"\n\
                 doc_to_choice: \"{{{{choices.text}}}}\"\n\
                 doc_to_target: \"{{{{choices.label.index(answerKey)}}}}\"\n"
            ),
        )
        .unwrap();
        let hub = MockHub::start();
        hub.add("fixture/qa", &["main"], qa_repo());
        Setup {
            cache: root.join("datasets"),
            _dir: dir,
            root,
            tasks,
            hub,
        }
    }

    fn assay(&self) -> Command {
        let mut cmd = Command::cargo_bin("assay").unwrap();
        cmd.current_dir(&self.root)
            .env("HF_ENDPOINT", &self.hub.url)
            .env("ASSAY_DATASETS_CACHE", &self.cache)
            .env("ASSAY_CACHE_DIR", self.root.join("cache"))
            .env("HF_HOME", self.root.join("hf-home"))
            .env_remove("HF_TOKEN")
            .env_remove("HUGGING_FACE_HUB_TOKEN")
            .env_remove("HF_TOKEN_PATH")
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("HF_DATASETS_OFFLINE");
        cmd
    }

    fn requests(&self) -> Command {
        let mut cmd = self.assay();
        cmd.args(["requests", "--tasks", "hub_qa", "--include-path"])
            .arg(&self.tasks);
        cmd
    }

    fn cached_file(&self, path: &str) -> PathBuf {
        let mut p = self.cache.join("fixture--qa").join("files").join(COMMIT);
        for part in path.split('/') {
            p.push(part);
        }
        p
    }
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn request_lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn every_file(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            every_file(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn a_hub_dataset_is_resolved_downloaded_and_read() {
    let s = Setup::new("");
    let out = s.requests().output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = request_lines(&out);
    // 5 documents x 3 choices, with a one-shot example from the train split.
    assert_eq!(lines.len(), 15);
    let first = lines[0]["arguments"][0].as_str().unwrap();
    assert!(
        first.starts_with(
            "Q: Which number comes after 0 (train)?\nA: 1\n\nQ: Which number comes after 0 (test)?"
        ),
        "{first:?}"
    );
    assert_eq!(lines[0]["arguments"][1], " 1");
    assert_eq!(lines[2]["arguments"][1], " zero");
    // Both splits were downloaded, once each, and are whole in the cache.
    assert_eq!(s.hub.downloads().len(), 2);
    let test_file = s.cached_file(TEST_FILE);
    assert_eq!(
        std::fs::read(&test_file).unwrap(),
        qa_repo().files[TEST_FILE]
    );
    let mut files = Vec::new();
    every_file(&s.cache, &mut files);
    assert!(files
        .iter()
        .all(|f| !f.to_string_lossy().ends_with(".part")));
}

#[test]
fn a_second_load_reads_the_cache() {
    let s = Setup::new("");
    assert!(s.requests().output().unwrap().status.success());
    s.hub.clear_log();
    let again = s.requests().output().unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(s.hub.downloads().len(), 0, "{:?}", s.hub.hits());
    // A branch is resolved to its commit each time (one API call) ...
    assert_eq!(s.hub.hits().len(), 1);

    // ... a pinned commit that is cached needs no network at all.
    let pinned = Setup::new(&format!("dataset_kwargs:\n  revision: {COMMIT}\n"));
    assert!(pinned.requests().output().unwrap().status.success());
    pinned.hub.clear_log();
    let out = pinned.requests().output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(pinned.hub.hits().is_empty(), "{:?}", pinned.hub.hits());
}

#[test]
fn offline_mode_reads_only_the_cache() {
    let s = Setup::new("");
    let out = s.requests().env("HF_HUB_OFFLINE", "1").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("hub_qa.yaml"), "{err}");
    assert!(
        err.contains("dataset `fixture/qa` (config `main`, revision `main`)"),
        "{err}"
    );
    assert!(err.contains("HF_HUB_OFFLINE=1"), "{err}");
    assert!(err.contains("assay tasks fetch"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(s.hub.hits().is_empty());

    let fetch = s
        .assay()
        .args(["tasks", "fetch", "hub_qa", "--include-path"])
        .arg(&s.tasks)
        .output()
        .unwrap();
    assert!(fetch.status.success(), "{}", stderr(&fetch));
    let said = String::from_utf8_lossy(&fetch.stdout);
    assert!(said.contains(&format!("fixture/qa@{COMMIT}")), "{said}");
    s.hub.clear_log();
    let out = s.requests().env("HF_HUB_OFFLINE", "1").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(request_lines(&out).len(), 15);
    assert!(s.hub.hits().is_empty());
}

#[test]
fn a_gated_dataset_needs_a_token_that_is_never_shown() {
    let s = Setup::new("");
    s.hub.add(
        "fixture/qa",
        &["main"],
        Repo {
            gated: true,
            ..qa_repo()
        },
    );
    s.hub.set_token("hf_right_token_123");

    let out = s.requests().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("refused access to dataset `fixture/qa`"),
        "{err}"
    );
    assert!(err.contains("set HF_TOKEN"), "{err}");

    let out = s
        .requests()
        .env("HF_TOKEN", "hf_wrong_token_456")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("the token in HF_TOKEN was refused"), "{err}");
    assert!(!err.contains("hf_wrong_token_456"), "{err}");

    let out = s
        .requests()
        .env("HF_TOKEN", "hf_right_token_123")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(s
        .hub
        .downloads()
        .iter()
        .any(|h| h.authorization.as_deref() == Some("Bearer hf_right_token_123")));
    // The token is in no output and no cached file.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hf_right_token"));
    assert!(!stderr(&out).contains("hf_right_token"));
    let mut files = Vec::new();
    every_file(&s.cache, &mut files);
    assert!(!files.is_empty());
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("hf_right_token"),
            "{}",
            f.display()
        );
    }
}

#[test]
fn a_cut_off_download_never_looks_complete_and_resumes() {
    let s = Setup::new("");
    s.hub.truncate_next_download(TEST_FILE);
    let out = s.requests().output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(TEST_FILE), "{err}");
    assert!(err.contains("run the command again to resume"), "{err}");
    let whole = qa_repo().files[TEST_FILE].clone();
    let final_file = s.cached_file(TEST_FILE);
    assert!(
        !final_file.exists(),
        "a partial download has the final name"
    );
    let part = PathBuf::from(format!("{}.part", final_file.display()));
    assert_eq!(
        std::fs::metadata(&part).unwrap().len() as usize,
        whole.len() / 2
    );

    let out = s.requests().output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let resumed = s
        .hub
        .downloads()
        .into_iter()
        .rev()
        .find(|h| h.path.ends_with(TEST_FILE))
        .unwrap();
    assert_eq!(
        resumed.range.as_deref(),
        Some(format!("bytes={}-", whole.len() / 2).as_str())
    );
    assert_eq!(resumed.status, 206);
    assert_eq!(std::fs::read(&final_file).unwrap(), whole);
    assert!(!part.exists());
}

#[test]
fn processes_sharing_a_cold_cache_download_each_file_once() {
    let s = Setup::new("");
    s.hub.slow_downloads(std::time::Duration::from_millis(400));
    let children: Vec<_> = (0..3)
        .map(|_| {
            let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("assay"));
            cmd.current_dir(&s.root)
                .env("HF_ENDPOINT", &s.hub.url)
                .env("ASSAY_DATASETS_CACHE", &s.cache)
                .env("HF_HOME", s.root.join("hf-home"))
                .env_remove("HF_TOKEN")
                .env_remove("HF_HUB_OFFLINE")
                .args(["requests", "--tasks", "hub_qa", "--include-path"])
                .arg(&s.tasks)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(request_lines(&out).len(), 15);
    }
    let test_downloads = s
        .hub
        .downloads()
        .into_iter()
        .filter(|h| h.path.ends_with(TEST_FILE))
        .count();
    assert_eq!(test_downloads, 1, "{:?}", s.hub.downloads());
}

#[test]
fn a_hash_mismatch_is_refused_and_the_download_removed() {
    let s = Setup::new("");
    let mut repo = qa_repo();
    repo.corrupt.insert(TEST_FILE.to_string());
    s.hub.add("fixture/qa", &["main"], repo);
    let out = s.requests().output().unwrap();
    // A corrupt download is for a retry to fix (exit 4), not the user.
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert!(err.contains("SHA-256 mismatch"), "{err}");
    assert!(err.contains(TEST_FILE), "{err}");
    let final_file = s.cached_file(TEST_FILE);
    assert!(!final_file.exists());
    assert!(!PathBuf::from(format!("{}.part", final_file.display())).exists());
}

#[test]
fn repositories_without_card_configs_and_script_datasets_resolve() {
    let s = Setup::new("");
    // No `configs` in the card: the files' conventional names give the splits.
    let mut plain = Repo {
        commit: "1".repeat(40),
        ..Repo::default()
    };
    plain.files.insert(
        "data/train-00000-of-00001.parquet".into(),
        parquet(&docs(2, "train")),
    );
    plain.files.insert(
        "data/test-00000-of-00001.parquet".into(),
        parquet(&docs(4, "test")),
    );
    s.hub.add("fixture/plain", &["main"], plain);
    // A loading script only: the Hub's parquet conversion branch has the data.
    let mut script = Repo {
        commit: "2".repeat(40),
        ..Repo::default()
    };
    script
        .files
        .insert("script.py".into(), b"# builder\n".to_vec());
    s.hub.add("fixture/script", &["main"], script);
    let mut converted = Repo {
        commit: "3".repeat(40),
        ..Repo::default()
    };
    converted.files.insert(
        "default/train/0000.parquet".into(),
        parquet(&docs(2, "train")),
    );
    converted.files.insert(
        "default/test/0000.parquet".into(),
        parquet(&docs(6, "test")),
    );
    s.hub
        .add("fixture/script", &["refs/convert/parquet"], converted);

    let original = std::fs::read_to_string(s.tasks.join("hub_qa.yaml")).unwrap();
    for (repo, n) in [("fixture/plain", 4), ("fixture/script", 6)] {
        let yaml = original.replace(
            "dataset_path: fixture/qa\ndataset_name: main\n",
            &format!("dataset_path: {repo}\n"),
        );
        std::fs::write(s.tasks.join("hub_qa.yaml"), yaml).unwrap();
        let out = s.requests().output().unwrap();
        assert!(out.status.success(), "{repo}: {}", stderr(&out));
        assert_eq!(request_lines(&out).len(), n * 3, "{repo}");
    }
}

#[test]
fn tasks_list_shows_the_cache_state() {
    let s = Setup::new("");
    let list = || {
        let out = s
            .assay()
            .args(["tasks", "list", "hub_qa", "--include-path"])
            .arg(&s.tasks)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let row = text
            .lines()
            .find(|l| l.starts_with("hub_qa "))
            .unwrap()
            .to_string();
        row.split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let before = list();
    assert_eq!(
        &before[1..5],
        ["task", "-", "no", "hf:fixture/qa:main@main"]
    );
    assert!(s.requests().output().unwrap().status.success());
    assert_eq!(list()[3], "yes");
    assert!(s.hub.hits().len() <= 3, "listing must not touch the Hub");
}

#[test]
fn a_run_records_the_dataset_and_its_commit() {
    let s = Setup::new("dataset_kwargs:\n  revision: main\n");
    let model = s.root.join("tiny.gguf");
    tiny_gguf::write_tiny_llama(&model, 3).unwrap();
    let out_dir = s.root.join("results/runs");
    let out = s
        .assay()
        .args(["run", "--quiet", "--model"])
        .arg(format!("llama:{}", model.display()))
        .args(["--tasks", "hub_qa", "--include-path"])
        .arg(&s.tasks)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let variant = only_run(&out_dir.join("tiny"));
    let run = run_json(&variant);
    let task = &run["assay"]["tasks"]["hub_qa"];
    assert_eq!(task["dataset"]["repo"], "fixture/qa");
    assert_eq!(task["dataset"]["config"], "main");
    assert_eq!(task["dataset"]["revision"], "main");
    assert_eq!(task["dataset"]["commit"], COMMIT);
    let files = task["data_files"].as_object().unwrap();
    let key = format!("hf://datasets/fixture/qa@{COMMIT}/{TEST_FILE}");
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.contains_key(&key), "{files:?}");

    // The leaderboard's variant page names the dataset and commit each task read.
    std::fs::write(
        s.tasks.join("hubsuite.yaml"),
        "group: hubsuite\ntask: [hub_qa]\nmetadata:\n  leaderboard:\n    hub_qa: {metric: acc, filter: none, baseline: 0.33}\n",
    )
    .unwrap();
    let board = s.root.join("board");
    let out = s
        .assay()
        .args(["leaderboard", "--results"])
        .arg(s.root.join("results"))
        .args(["--variants"])
        .arg(s.root.join("no-manifests"))
        .arg("--suite")
        .arg(s.tasks.join("hubsuite.yaml"))
        .arg("--include-path")
        .arg(&s.tasks)
        .arg("--out")
        .arg(&board)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(board.join("variants/tiny.html")).unwrap();
    // (minijinja escapes the slash)
    let shown = format!("fixture&#x2f;qa@{}", &COMMIT[..12]);
    assert!(page.contains(&shown), "{page}");
    assert!(!page.contains("class=\"stale\""), "{page}");
}

#[test]
fn a_dataset_path_that_is_neither_a_format_nor_a_hub_id_is_named() {
    let s = Setup::new("");
    let yaml = std::fs::read_to_string(s.tasks.join("hub_qa.yaml")).unwrap();
    std::fs::create_dir_all(s.tasks.join("my_data")).unwrap();
    for (path, says) in [
        ("my_data", "`my_data` is a local folder or file"),
        ("a/b/c", "neither a local format"),
        (
            "fixture/qa\ndataset_name: mian",
            "its configs are: main; check dataset_name",
        ),
    ] {
        std::fs::write(
            s.tasks.join("hub_qa.yaml"),
            yaml.replace(
                "dataset_path: fixture/qa\ndataset_name: main",
                &format!("dataset_path: {path}"),
            ),
        )
        .unwrap();
        let out = s.requests().output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(err.contains("hub_qa.yaml: field `dataset_path`"), "{err}");
        assert!(err.contains(says), "{err}");
    }
}
