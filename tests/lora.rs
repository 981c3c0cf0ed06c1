//! LoRA adapters over the embedded backend: an F32 adapter of rank 2 the
//! tests write gives the per-item log-likelihoods of the model with the
//! adapter merged into its weights (W + scale * alpha / rank * B A); scale 0
//! is the base model; each adapter and scale answers under its own identity.

#[path = "support/tiny_gguf.rs"]
mod tiny_gguf;

use std::collections::BTreeMap;
use std::path::Path;

use assay::backend;

const REQUESTS: &[(&str, &str)] = &[
    ("The cat sat on the", " mat"),
    ("The cat sat on the", " dog"),
    ("Question: is the sky blue? Answer:", " yes"),
    ("Question: is the sky blue? Answer:", " no"),
    ("red and blue and", " the question of the answer"),
];

fn loglikelihoods(model: &Path, lora: Option<String>) -> (Vec<f64>, String) {
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
        ("a.gguf|b.gguf", "one adapter"),
        ("a.gguf:high", "PATH:SCALE"),
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
