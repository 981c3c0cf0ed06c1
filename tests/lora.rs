//! LoRA adapters over the embedded backend: an F32 adapter of rank 2 the
//! tests write gives the per-item log-likelihoods of the model with the
//! adapter merged into its weights (W + scale * alpha / rank * B A); scale 0
//! is the base model; each adapter and scale answers under its own identity.
//! Several adapters (`lora=A:0.7|B:0.3`, of other ranks, alphas, types and
//! weights, the token embedding among them) give the model with all of
//! them merged, through one combined adapter built once in the cache; what
//! cannot be stacked is refused by name, with exit 2.

#[path = "support/mc_task.rs"]
mod mc_task;
#[path = "support/mock_hub.rs"]
mod mock_hub;
#[path = "support/runs.rs"]
mod runs;
#[path = "support/tiny_gguf.rs"]
mod tiny_gguf;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use assay::backend;
use assert_cmd::Command;
use tiny_gguf::{LoraType, TinyLora};

const REQUESTS: &[(&str, &str)] = &[
    ("The cat sat on the", " mat"),
    ("The cat sat on the", " dog"),
    ("Question: is the sky blue? Answer:", " yes"),
    ("Question: is the sky blue? Answer:", " no"),
    ("red and blue and", " the question of the answer"),
];

/// Keeps the file digests and combined adapters of the in-process tests out
/// of the user's cache folder.
fn isolate_cache() -> PathBuf {
    static ONCE: Once = Once::new();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("assay-cache-lora");
    ONCE.call_once(|| std::env::set_var("ASSAY_CACHE_DIR", &dir));
    dir
}

fn loglikelihoods(model: &Path, lora: Option<String>) -> (Vec<f64>, String) {
    isolate_cache();
    let mut args = BTreeMap::from([("n_ctx".to_string(), "256".to_string())]);
    if let Some(l) = lora {
        args.insert("lora".into(), l);
    }
    let spec = format!("llama:{}", model.display());
    let mut backend = backend::open(&spec, &args).unwrap();
    let got = backend.loglikelihood(REQUESTS, &mut |_, _| {}).unwrap();
    let key = backend.identity().cache_key();
    (got.into_iter().map(|(ll, _)| ll).collect(), key)
}

fn largest_difference(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn an_adapter_scores_as_its_merged_model_and_scale_zero_as_the_base() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (base, adapter) = (d.join("base.gguf"), d.join("adapter.gguf"));
    tiny_gguf::write_tiny_llama(&base, 4).unwrap();
    tiny_gguf::write_tiny_lora(&adapter, 9).unwrap();
    let (plain, base_key) = loglikelihoods(&base, None);
    for scale in [1.0f32, 0.5] {
        let merged = d.join(format!("merged-{scale}.gguf"));
        tiny_gguf::write_tiny_merged(&merged, 4, 9, scale).unwrap();
        let (want, _) = loglikelihoods(&merged, None);
        let (got, _) = loglikelihoods(&base, Some(format!("{}:{scale}", adapter.display())));
        let diff = largest_difference(&got, &want);
        assert!(diff < 1e-4, "scale {scale}: {diff} ({got:?} vs {want:?})");
        // The adapter changes the answers: the comparison is not vacuous.
        assert!(largest_difference(&got, &plain) > 1e-3, "scale {scale}");
    }
    let (zero, zero_key) = loglikelihoods(&base, Some(format!("{}:0", adapter.display())));
    assert!(largest_difference(&zero, &plain) < 1e-6);
    let (_, one_key) = loglikelihoods(&base, Some(format!("{}:1", adapter.display())));
    let (_, half_key) = loglikelihoods(&base, Some(format!("{}:0.5", adapter.display())));
    assert!(base_key != zero_key && zero_key != one_key && one_key != half_key);
}

#[test]
fn adapter_arguments_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.gguf");
    tiny_gguf::write_tiny_llama(&base, 4).unwrap();
    let spec = format!("llama:{}", base.display());
    for (value, says) in [
        ("a.gguf:high", "PATH:SCALE"),
        ("a.gguf:0.5|b.gguf:x", "PATH:SCALE"),
        ("a.gguf|", "on each side of every |"),
        ("missing.gguf", "does not exist"),
    ] {
        let args = BTreeMap::from([("lora".to_string(), value.to_string())]);
        let err = backend::open(&spec, &args)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(says), "{value}: {err}");
    }
    // A model file is not an adapter.
    let args = BTreeMap::from([("lora".to_string(), base.display().to_string())]);
    let err = backend::open(&spec, &args)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("lora"), "{err}");
}

/// The second adapter of the stack: another seed, rank and alpha, F16, and
/// weights the first does not adapt (`attn_v`, the token embedding) beside
/// one it does (`attn_q`).
fn second_adapter() -> TinyLora {
    TinyLora {
        rank: 3,
        alpha: 1.5,
        parts: &["attn_q", "attn_v", "token_embd"],
        kind: LoraType::F16,
        ..TinyLora::new(11)
    }
}

/// A tiny base model and two different adapters over it, written in `d`:
/// (base, first, second).
fn two_adapters(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (base, first, second) = (d.join("base.gguf"), d.join("a.gguf"), d.join("b.gguf"));
    tiny_gguf::write_tiny_llama(&base, 4).unwrap();
    tiny_gguf::write_lora(&first, &TinyLora::new(9)).unwrap();
    tiny_gguf::write_lora(&second, &second_adapter()).unwrap();
    (base, first, second)
}

#[test]
fn two_adapters_score_as_the_model_with_both_merged() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (base, first, second) = two_adapters(d);
    let merged = d.join("merged.gguf");
    tiny_gguf::write_merged(
        &merged,
        4,
        &[(TinyLora::new(9), 0.7), (second_adapter(), 0.3)],
    )
    .unwrap();
    let (want, _) = loglikelihoods(&merged, None);
    let both = format!("{}:0.7|{}:0.3", first.display(), second.display());
    let (got, key) = loglikelihoods(&base, Some(both));
    let diff = largest_difference(&got, &want);
    eprintln!("stacked vs merged: largest difference {diff:e}");
    assert!(diff < 1e-4, "{diff} ({got:?} vs {want:?})");
    // Each adapter alone answers otherwise, under another identity.
    for alone in [
        format!("{}:0.7", first.display()),
        format!("{}:0.3", second.display()),
    ] {
        let (one, one_key) = loglikelihoods(&base, Some(alone.clone()));
        assert!(largest_difference(&got, &one) > 1e-3, "{alone}");
        assert_ne!(key, one_key);
    }
}

fn assay(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.current_dir(dir)
        .env("ASSAY_CACHE_DIR", dir.join("cache"))
        .env("HF_HUB_OFFLINE", "1");
    cmd
}

/// `assay run` of one small multiple-choice task on `model` with
/// `--model-arg lora=LORA`, into `out`.
fn run(dir: &Path, model: &Path, lora: &str, out: &str) -> Command {
    let tasks = mc_task::write_mc_task(
        dir,
        "{\"q\": \"1 + 1 =\", \"a\": 0, \"c\": [\" 2\", \" 3\"]}\n",
    );
    let mut cmd = assay(dir);
    cmd.args(["run", "--quiet", "--no-cache", "--tasks", "t", "--model"])
        .arg(format!("llama:{}", model.display()))
        .arg("--model-arg")
        .arg(format!("lora={lora}"))
        .arg("--include-path")
        .arg(&tasks)
        .arg("--out")
        .arg(dir.join(out));
    cmd
}

fn recorded_model(runs_dir: &Path) -> assay::backend::ModelIdentity {
    let run = runs::only_run(&runs::only_run(runs_dir));
    runs::read(&run).assay.model.unwrap()
}

/// The files in the cache's folder of combined adapters.
fn stacks(cache: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(cache.join("lora-stacks"))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
            (path, modified)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_combined_adapter_is_built_once_and_the_run_names_both_adapters() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (base, first, second) = two_adapters(d);
    let lora = format!("{}:0.7|{}", first.display(), second.display());
    run(d, &base, &lora, "runs").assert().success();
    let built = stacks(&d.join("cache"));
    assert_eq!(built.len(), 1, "{built:?}");
    assert!(built[0].0.extension().is_some_and(|e| e == "gguf"));
    run(d, &base, &lora, "again").assert().success();
    assert_eq!(stacks(&d.join("cache")), built, "built again");

    let sha = |p: &Path| assay::hash::sha256_hex(&std::fs::read(p).unwrap());
    let want = format!("sha256:{}@0.7|sha256:{}@1", sha(&first), sha(&second));
    for out in ["runs", "again"] {
        let model = recorded_model(&d.join(out));
        assert_eq!(model.details["lora"], want, "{out}");
    }
    // Other scales are another combined adapter.
    let lora = format!("{}:0.7|{}:0.5", first.display(), second.display());
    run(d, &base, &lora, "other").assert().success();
    assert_eq!(stacks(&d.join("cache")).len(), 2);
}

#[test]
fn adapters_from_the_hub_stack_and_each_is_recorded() {
    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (base, first, second) = two_adapters(d);
    let hub = mock_hub::MockHub::start();
    let files = [("a.gguf", &first), ("b.gguf", &second)]
        .into_iter()
        .map(|(name, path)| (name.to_string(), std::fs::read(path).unwrap()))
        .collect();
    let repo = mock_hub::Repo {
        commit: COMMIT.into(),
        files,
        ..mock_hub::Repo::default()
    };
    hub.add("org/adapters", &["main"], repo);
    let lora = "hf://org/adapters@main/a.gguf:0.7|hf://org/adapters@main/b.gguf:0.3";
    run(d, &base, lora, "runs")
        .env("HF_ENDPOINT", &hub.url)
        .env("ASSAY_MODELS_CACHE", d.join("models"))
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_TOKEN")
        .assert()
        .success();
    let model = recorded_model(&d.join("runs"));
    let sha = |p: &Path| assay::hash::sha256_hex(&std::fs::read(p).unwrap());
    let want = format!("sha256:{}@0.7|sha256:{}@0.3", sha(&first), sha(&second));
    assert_eq!(model.details["lora"], want);
    for (n, file) in [(1, "a.gguf"), (2, "b.gguf")] {
        assert_eq!(model.details[&format!("source.lora.{n}.commit")], COMMIT);
        assert_eq!(
            model.details[&format!("source.lora.{n}.file.{file}")].len(),
            64
        );
    }
}

/// Runs `assay run` with `lora` and checks it failed as bad input: exit 2,
/// no panic, and each of `says` in what it printed.
fn refused(dir: &Path, base: &Path, lora: &str, says: &[&str]) {
    let out = run(dir, base, lora, "runs").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(2), "{lora}: {stderr}");
    for s in says {
        assert!(stderr.contains(s), "{lora}: `{s}` missing from: {stderr}");
    }
}

#[test]
fn adapters_that_cannot_be_stacked_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (base, good) = (d.join("base.gguf"), d.join("good.gguf"));
    tiny_gguf::write_tiny_llama(&base, 4).unwrap();
    tiny_gguf::write_tiny_lora(&good, 9).unwrap();
    let quantized = d.join("quantized.gguf");
    let q8 = TinyLora {
        kind: LoraType::Q8_0,
        ..TinyLora::new(5)
    };
    tiny_gguf::write_lora(&quantized, &q8).unwrap();
    refused(
        d,
        &base,
        &format!("{}|{}", good.display(), quantized.display()),
        &[
            "quantized.gguf",
            "blk.0.attn_q.weight.lora_a",
            "Q8_0",
            "F32, F16 or BF16",
        ],
    );
    let gemma = d.join("gemma.gguf");
    let other = TinyLora {
        architecture: "gemma3",
        ..TinyLora::new(5)
    };
    tiny_gguf::write_lora(&gemma, &other).unwrap();
    refused(
        d,
        &base,
        &format!("{}|{}", good.display(), gemma.display()),
        &["gemma.gguf", "`gemma3`", "good.gguf", "`llama`"],
    );
    // A model is not an adapter.
    refused(
        d,
        &base,
        &format!("{}|{}", good.display(), base.display()),
        &["base.gguf", "not a LoRA adapter"],
    );
    assert!(!d.join("cache").join("lora-stacks").exists() || stacks(&d.join("cache")).is_empty());
}
