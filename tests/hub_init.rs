//! `assay init`: a hub to start from, never overwriting a file; and the
//! generated pull-request workflow, its shell steps run in order on a
//! temporary hub where a pull request adds a base and a variant manifest,
//! scores both, gates the variant, writes the comment and the leaderboard.

#[path = "support/tiny_gguf.rs"]
mod tiny_gguf;

use std::path::{Path, PathBuf};
use std::process::Command;

fn assay_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("assay")
}

fn assay(cwd: &Path, cache: &Path, args: &[&str]) -> std::process::Output {
    Command::new(assay_bin())
        .current_dir(cwd)
        .env("ASSAY_CACHE_DIR", cache)
        .env_remove("ASSAY_TASKS_DIR")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn init_writes_a_hub_and_keeps_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = assay(dir.path(), &cache, &["init", "hub"]);
    assert!(out.status.success());
    let hub = dir.path().join("hub");
    for file in [
        "README.md",
        ".gitignore",
        "gate.toml",
        "variants/example.toml",
        "tasks/hub_sums.yaml",
        "tasks/suites/hub.yaml",
        ".github/workflows/pull-request.yml",
        ".github/workflows/main.yml",
    ] {
        assert!(hub.join(file).is_file(), "{file}");
    }
    // The hub validates, and lists its own suite beside the built-in ones.
    assert!(assay(&hub, &cache, &["variants", "validate", "variants/"])
        .status
        .success());
    let list = String::from_utf8(assay(&hub, &cache, &["tasks", "list"]).stdout).unwrap();
    for name in ["hub", "hub_sums", "default", "open-llm-v1"] {
        assert!(
            list.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name}: {list}"
        );
    }
    // A second init keeps an edited file, and says so.
    std::fs::write(hub.join("gate.toml"), "# mine\n").unwrap();
    let out = assay(dir.path(), &cache, &["init", "hub"]);
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(hub.join("gate.toml")).unwrap(),
        "# mine\n"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept"));
    // A file where the hub's folder should go is named, and nothing written.
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let out = assay(dir.path(), &cache, &["init", "a-file"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("a-file") && stderr.contains("not a folder"),
        "{stderr}"
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=hub", "-c", "user.email=hub@example.org"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What GitHub would put in a step's `env:` for these expressions.
fn expression(value: &str) -> String {
    match value.trim() {
        "${{ github.base_ref }}" => "main".into(),
        v if v.starts_with("${{") => String::new(),
        v => v.to_string(),
    }
}

#[test]
fn the_pull_request_workflow_scores_gates_comments_and_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    assert!(assay(dir.path(), &cache, &["init", "hub"]).status.success());
    let hub = dir.path().join("hub");
    std::fs::create_dir_all(hub.join("models")).unwrap();
    tiny_gguf::write_tiny_llama(&hub.join("models/tiny.gguf"), 4).unwrap();
    git(&hub, &["init", "-q", "-b", "main"]);
    git(&hub, &["add", "-A"]);
    git(&hub, &["commit", "-q", "-m", "a new hub"]);
    git(&hub, &["update-ref", "refs/remotes/origin/main", "HEAD"]);
    // The pull request: an original and a variant of it.
    git(&hub, &["checkout", "-q", "-b", "add-tiny"]);
    let manifest = |name: &str, base: Option<&str>| {
        let lineage = match base {
            Some(b) => format!("relation = \"quantization\"\nbase = \"{b}\""),
            None => "relation = \"original\"".to_string(),
        };
        format!(
            "name = \"{name}\"\n{lineage}\nprecision = \"F32\"\n[backend]\n\
             spec = \"llama:models/tiny.gguf\"\nargs = {{ n_ctx = \"512\" }}\n"
        )
    };
    std::fs::write(hub.join("variants/tiny.toml"), manifest("tiny", None)).unwrap();
    std::fs::write(
        hub.join("variants/tiny-q.toml"),
        manifest("tiny-q", Some("tiny")),
    )
    .unwrap();
    git(&hub, &["add", "-A"]);
    git(&hub, &["commit", "-q", "-m", "add tiny and tiny-q"]);

    let text = std::fs::read_to_string(hub.join(".github/workflows/pull-request.yml")).unwrap();
    let workflow = assay::task::yaml::parse(&text, Path::new("pull-request.yml")).unwrap();
    let jobs = workflow["jobs"].as_object().unwrap();
    let steps = jobs.values().next().unwrap()["steps"].as_array().unwrap();
    let path = format!(
        "{}:{}",
        assay_bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let summary = dir.path().join("step-summary.md");
    let mut ran = Vec::new();
    for step in steps {
        let Some(script) = step["run"].as_str() else {
            continue;
        };
        let name = step["name"].as_str().unwrap_or("?");
        let mut cmd = Command::new("bash");
        cmd.current_dir(&hub)
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .env("PATH", &path)
            .env("ASSAY_CACHE_DIR", &cache)
            .env_remove("ASSAY_TASKS_DIR")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_OUTPUT", dir.path().join("step-output"));
        for (key, value) in step["env"].as_object().into_iter().flatten() {
            cmd.env(key, expression(value.as_str().unwrap_or_default()));
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "step `{name}` failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran.push(name.to_string());
    }
    assert!(ran.len() >= 6, "{ran:?}");
    // Both were scored, the variant was gated against its base.
    for name in ["tiny", "tiny-q"] {
        assert!(hub.join("results/runs").join(name).is_dir(), "{name}");
    }
    let comment = std::fs::read_to_string(hub.join("gate-comment.md")).unwrap();
    assert!(
        comment.contains("PASS") && comment.contains("tiny-q"),
        "{comment}"
    );
    assert!(std::fs::read_to_string(&summary).unwrap().contains("PASS"));
    let board = std::fs::read_to_string(hub.join("results/leaderboard/leaderboard.csv")).unwrap();
    assert!(
        board.contains("tiny-q") && board.contains("tiny,"),
        "{board}"
    );
    assert!(hub.join("results/leaderboard/index.html").is_file());
}
