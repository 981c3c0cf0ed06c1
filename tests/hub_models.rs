//! Model files from the Hub: `llama:hf://OWNER/NAME@REVISION/PATH.gguf`
//! downloads once into the cache, verified, and works offline afterwards;
//! a split file's parts all come; a cut-off download resumes; a missing file
//! is one line naming it.

#[path = "support/mc_task.rs"]
mod mc_task;
#[path = "support/mock_hub.rs"]
mod mock_hub;
#[path = "support/runs.rs"]
mod runs;
#[path = "support/tiny_gguf.rs"]
mod tiny_gguf;

use std::path::Path;

use assert_cmd::Command;
use mock_hub::{MockHub, Repo};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn tiny_model() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    tiny_gguf::write_tiny_llama(&path, 4).unwrap();
    std::fs::read(path).unwrap()
}

fn hub_with(files: &[(&str, Vec<u8>)]) -> MockHub {
    let hub = MockHub::start();
    let repo = Repo {
        commit: COMMIT.into(),
        files: files
            .iter()
            .map(|(p, b)| (p.to_string(), b.clone()))
            .collect(),
        ..Repo::default()
    };
    hub.add("org/tiny", &["main"], repo);
    hub
}

/// A task folder with one small multiple-choice task.
fn tasks(dir: &Path) -> std::path::PathBuf {
    mc_task::write_mc_task(
        dir,
        "{\"q\": \"1 + 1 =\", \"a\": 0, \"c\": [\" 2\", \" 3\"]}\n{\"q\": \"2 + 2 =\", \"a\": 1, \"c\": [\" 3\", \" 4\"]}\n",
    )
}

/// `assay run` of the task folder on `model`, with the mock Hub and
/// private caches, online, without a token.
fn command(dir: &Path, hub: &MockHub, model: &str, out: &str) -> Command {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.current_dir(dir)
        .env("HF_ENDPOINT", &hub.url)
        .env("ASSAY_CACHE_DIR", dir.join("cache"))
        .env("ASSAY_MODELS_CACHE", dir.join("models"))
        .env("HF_HOME", dir.join("hf-home"))
        .env_remove("HF_TOKEN")
        .env_remove("HUGGING_FACE_HUB_TOKEN")
        .env_remove("HF_DATASETS_OFFLINE")
        .env_remove("HF_HUB_OFFLINE")
        .args([
            "run",
            "--quiet",
            "--no-cache",
            "--tasks",
            "t",
            "--model",
            model,
        ])
        .arg("--include-path")
        .arg(tasks(dir))
        .arg("--out")
        .arg(dir.join(out));
    cmd
}

fn run(dir: &Path, hub: &MockHub, model: &str, offline: bool, out: &str) -> std::process::Output {
    let mut cmd = command(dir, hub, model, out);
    if offline {
        cmd.env("HF_HUB_OFFLINE", "1");
    }
    cmd.output().unwrap()
}

/// The one run of the one variant under `dir`.
fn only_run(dir: &Path) -> assay::results::Run {
    runs::read(&runs::only_run(&runs::only_run(dir)))
}

#[test]
fn a_hub_model_downloads_once_verifies_and_then_works_offline() {
    let hub = hub_with(&[
        ("tiny.gguf", tiny_model()),
        ("README.md", b"# tiny".to_vec()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let model = "llama:hf://org/tiny@main/tiny.gguf";
    let out = run(dir.path(), &hub, model, false, "online");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(hub.downloads().len(), 1, "{:?}", hub.downloads());
    let online = only_run(&dir.path().join("online"));
    let identity = online.assay.model.clone().unwrap();
    assert_eq!(identity.spec, model);
    assert_eq!(identity.details["source.commit"], COMMIT);
    assert_eq!(identity.details["source.repo"], "org/tiny");
    assert!(identity.details["source.file.tiny.gguf"].len() == 64);

    // Offline, from the cache alone: the same answers.
    hub.clear_log();
    let out = run(dir.path(), &hub, model, true, "offline");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(hub.hits().is_empty(), "{:?}", hub.hits());
    let offline = only_run(&dir.path().join("offline"));
    assert_eq!(online.results["t"].scores, offline.results["t"].scores);
    assert_eq!(online.fingerprint(), offline.fingerprint());
}

#[test]
fn a_cut_off_download_resumes_and_a_missing_file_is_named() {
    let hub = hub_with(&[("tiny.gguf", tiny_model())]);
    let dir = tempfile::tempdir().unwrap();
    hub.truncate_next_download("tiny.gguf");
    let model = "llama:hf://org/tiny@main/tiny.gguf";
    let out = run(dir.path(), &hub, model, false, "runs");
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(dir.path(), &hub, model, false, "runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        hub.downloads().iter().any(|h| h.range.is_some()),
        "the second download resumed: {:?}",
        hub.downloads()
    );

    let out = run(
        dir.path(),
        &hub,
        "llama:hf://org/tiny@main/other.gguf",
        false,
        "runs",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("other.gguf") && stderr.contains("tiny.gguf"),
        "{stderr}"
    );

    // Offline and not cached: what to do.
    let out = run(
        dir.path(),
        &hub,
        "llama:hf://org/tiny@main/never.gguf",
        true,
        "runs",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("HF_HUB_OFFLINE"), "{stderr}");
}

#[test]
fn every_part_of_a_split_file_is_fetched() {
    let hub = hub_with(&[
        ("q/m-00001-of-00002.gguf", b"part one".to_vec()),
        ("q/m-00002-of-00002.gguf", b"part two".to_vec()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let settings = assay::data::hub::HubSettings {
        endpoint: hub.url.clone(),
        token: None,
        offline: false,
        cache: dir.path().to_path_buf(),
        progress: false,
    };
    let r = assay::data::hub::ModelRef::parse("hf://org/tiny@main/q/m-00001-of-00002.gguf")
        .unwrap()
        .unwrap();
    let files = assay::data::hub::fetch_model(&settings, &r).unwrap();
    assert_eq!(files.commit, COMMIT);
    assert_eq!(files.files.len(), 2);
    for (file, bytes) in files.files.iter().zip([&b"part one"[..], &b"part two"[..]]) {
        let local = assay::data::hub::local_path(&settings, "org/tiny", file);
        assert_eq!(std::fs::read(local).unwrap(), bytes);
    }
    assert_eq!(hub.downloads().len(), 2);
}

#[test]
fn variants_fetch_gets_a_manifests_hub_weights_and_checks_their_hash() {
    let model = tiny_model();
    let hub = hub_with(&[("tiny.gguf", model.clone())]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifest = |sha: &str| {
        std::fs::create_dir_all(d.join("variants")).unwrap();
        std::fs::write(
            d.join("variants/tiny.toml"),
            format!(
                "name = \"tiny\"\nrelation = \"original\"\nweights_sha256 = \"{sha}\"\n[backend]\n\
                 spec = \"llama:hf://org/tiny@main/tiny.gguf\"\nargs = {{ n_ctx = \"512\" }}\n"
            ),
        )
        .unwrap();
    };
    let assay = |args: &[&str], offline: bool| {
        let mut cmd = Command::cargo_bin("assay").unwrap();
        cmd.current_dir(d)
            .env("HF_ENDPOINT", &hub.url)
            .env("ASSAY_CACHE_DIR", d.join("cache"))
            .env("ASSAY_MODELS_CACHE", d.join("models"))
            .env_remove("HF_TOKEN")
            .args(args);
        if offline {
            cmd.env("HF_HUB_OFFLINE", "1");
        } else {
            cmd.env_remove("HF_HUB_OFFLINE");
        }
        cmd.output().unwrap()
    };
    manifest(&"0".repeat(64));
    // A name with no manifest is named.
    let out = assay(&["variants", "fetch", "nope"], false);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nope`"));
    // A branch, not a commit: allowed, with a warning.
    let out = assay(&["variants", "validate", "variants/"], false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning") && stderr.contains("`main`"),
        "{stderr}"
    );
    // The wrong hash is refused once the file is there.
    let out = assay(&["variants", "fetch", "tiny"], false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tiny.toml") && stderr.contains("SHA-256"),
        "{stderr}"
    );
    // The right one: fetched (already cached: no second download).
    manifest(&assay::hash::sha256_hex(&model));
    let out = assay(&["variants", "fetch"], false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("org/tiny@{COMMIT}")));
    assert_eq!(hub.downloads().len(), 1);
    // Scored offline from the cache (once its suite file exists).
    tasks(d);
    let score = || {
        assay(
            &[
                "score",
                "--quiet",
                "--no-cache",
                "--suite",
                "t-suite.yaml",
                "--include-path",
                "tasks",
                "variants/tiny.toml",
            ],
            true,
        )
    };
    assert_eq!(score().status.code(), Some(2), "no suite file yet");
    std::fs::write(d.join("t-suite.yaml"), "group: ts\ntask: [t]\n").unwrap();
    let out = score();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_gated_model_needs_a_token_the_hub_accepts() {
    let hub = MockHub::start();
    hub.add(
        "org/gated",
        &["main"],
        Repo {
            commit: COMMIT.into(),
            files: [("tiny.gguf".to_string(), tiny_model())]
                .into_iter()
                .collect(),
            gated: true,
            ..Repo::default()
        },
    );
    hub.set_token("hf_right");
    let dir = tempfile::tempdir().unwrap();
    let model = "llama:hf://org/gated@main/tiny.gguf";
    let attempt = |token: Option<&str>| {
        let mut cmd = command(dir.path(), &hub, model, "runs");
        if let Some(t) = token {
            cmd.env("HF_TOKEN", t);
        }
        cmd.output().unwrap()
    };
    for (token, says) in [(None, "set HF_TOKEN"), (Some("hf_wrong"), "was refused")] {
        let out = attempt(token);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("model `org/gated`") && stderr.contains(says),
            "{stderr}"
        );
        assert!(
            !stderr.contains("hf_wrong"),
            "the token is never printed: {stderr}"
        );
    }
    let out = attempt(Some("hf_right"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_hub_adapter_applies_over_a_hub_model() {
    let dir = tempfile::tempdir().unwrap();
    let lora = dir.path().join("lora.gguf");
    tiny_gguf::write_tiny_lora(&lora, 9).unwrap();
    let hub = hub_with(&[
        ("tiny.gguf", tiny_model()),
        ("adapters/lora.gguf", std::fs::read(&lora).unwrap()),
    ]);
    let out = command(
        dir.path(),
        &hub,
        "llama:hf://org/tiny@main/tiny.gguf",
        "runs",
    )
    .args([
        "--model-arg",
        "lora=hf://org/tiny@main/adapters/lora.gguf:0.5",
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(hub.downloads().len(), 2, "{:?}", hub.downloads());
    let identity = only_run(&dir.path().join("runs")).assay.model.unwrap();
    assert!(
        identity.details["lora"].ends_with("@0.5"),
        "{:?}",
        identity.details
    );
    assert_eq!(identity.details["source.lora.commit"], COMMIT);
    assert!(identity.details["source.lora.file.adapters/lora.gguf"].len() == 64);
}
