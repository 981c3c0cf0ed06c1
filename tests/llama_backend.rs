//! The llama backend on a tiny random-weight model that the tests write
//! themselves: batched, prefix-sharing evaluation must give the scores of
//! the plain one-token-at-a-time path, windows and stop strings must follow
//! lm-eval, and bad model files must fail with a message, not an abort.

#[path = "support/tiny_gguf.rs"]
mod tiny_gguf;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use assay::backend::llama::{LlamaBackend, LlamaOptions};
use assay::backend::{Backend, BackendError};
use assay::hash::sha256_hex;
use assay::request::GenerationOptions;

const TOLERANCE: f64 = 1e-4;

/// Keeps the fingerprint memo out of the user's cache. Every test calls this
/// before touching llama.cpp, so the variable is set before any thread can
/// read the environment.
fn isolate_cache() -> PathBuf {
    static ONCE: Once = Once::new();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("assay-cache");
    ONCE.call_once(|| std::env::set_var("ASSAY_CACHE_DIR", &dir));
    dir
}

fn tiny_model(seed: u64) -> (tempfile::TempDir, PathBuf) {
    isolate_cache();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    tiny_gguf::write_tiny_llama(&path, seed).unwrap();
    (dir, path)
}

fn open(path: &Path, n_ctx: u32, n_batch: u32) -> LlamaBackend {
    open_with(path, n_ctx, n_batch, false)
}

fn open_with(path: &Path, n_ctx: u32, n_batch: u32, pack: bool) -> LlamaBackend {
    let options = LlamaOptions {
        n_ctx: Some(n_ctx),
        n_batch: Some(n_batch),
        threads: Some(1),
        chat_template: false,
        pack,
        ..LlamaOptions::default()
    };
    LlamaBackend::open(path, options).unwrap()
}

fn log_softmax(row: &[f32], token: i32) -> f64 {
    let max = row
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
    let norm = max
        + row
            .iter()
            .map(|&x| (f64::from(x) - max).exp())
            .sum::<f64>()
            .ln();
    f64::from(row[token as usize]) - norm
}

fn argmax(row: &[f32]) -> i32 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best as i32
}

/// lm-eval's `_encode_pair` (and its empty-context rule), written out again
/// from the Python, on the backend's tokenizer.
fn encode_pair(model: &LlamaBackend, context: &str, continuation: &str) -> (Vec<i32>, Vec<i32>) {
    if context.is_empty() {
        let cont = model.tokenize(continuation, false);
        return if cont[0] == tiny_gguf::BOS {
            (cont[..1].to_vec(), cont[1..].to_vec())
        } else {
            (vec![tiny_gguf::BOS], cont)
        };
    }
    let stripped = context.trim_end();
    let continuation = format!("{}{continuation}", &context[stripped.len()..]);
    let whole = model.tokenize(&format!("{stripped}{continuation}"), true);
    let ctx = model.tokenize(stripped, true);
    let cont = whole[ctx.len()..].to_vec();
    (ctx, cont)
}

/// log P(continuation | context) and is_greedy, one token per decode call.
fn reference_score(model: &mut LlamaBackend, context: &[i32], continuation: &[i32]) -> (f64, bool) {
    let mut fed = context.to_vec();
    fed.extend_from_slice(&continuation[..continuation.len() - 1]);
    let rows = model.token_logits(&fed).unwrap();
    let mut total = 0.0;
    let mut greedy = true;
    for (j, &target) in continuation.iter().enumerate() {
        let row = &rows[context.len() - 1 + j];
        total += log_softmax(row, target);
        greedy &= argmax(row) == target;
    }
    (total, greedy)
}

fn assert_scores_close(got: &[(f64, bool)], want: &[(f64, bool)], what: &str) {
    assert_eq!(got.len(), want.len());
    let worst = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g.0 - w.0).abs())
        .fold(0.0, f64::max);
    eprintln!("{what}: largest difference {worst:e}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g.0 - w.0).abs() < TOLERANCE,
            "{what}: request {i}: {} vs {}",
            g.0,
            w.0
        );
        assert_eq!(g.1, w.1, "{what}: request {i}: is_greedy");
    }
}

/// Multiple-choice shaped requests: a shared few-shot prefix, documents with
/// four options each, a trailing-space context, an empty context and a
/// duplicate, in an order that interleaves documents.
fn multiple_choice_requests() -> Vec<(String, String)> {
    let shots =
        "Question: is the sky blue?\nAnswer: yes\n\nQuestion: is the cat red?\nAnswer: no\n\n";
    let docs = [
        "Question: was the dog on the mat?\nAnswer:",
        "Question: is it true that the cat sat?\nAnswer:",
        "Question: are the dogs blue?\nAnswer: ",
    ];
    let options = [" yes", " no", " true", " false and the cat sat on the mat"];
    let mut requests = Vec::new();
    for option in options {
        for doc in docs {
            requests.push((format!("{shots}{doc}"), option.to_string()));
        }
    }
    requests.push((String::new(), "the cat sat".to_string()));
    requests.push((
        "Unicode: h\u{e9}llo \u{263a}".to_string(),
        " w\u{f6}rld".to_string(),
    ));
    requests.push(requests[0].clone());
    requests
}

fn as_refs(requests: &[(String, String)]) -> Vec<(&str, &str)> {
    requests
        .iter()
        .map(|(c, x)| (c.as_str(), x.as_str()))
        .collect()
}

#[test]
fn joint_scoring_equals_token_by_token_scoring() {
    let (_dir, path) = tiny_model(1);
    let mut model = open(&path, 512, 512);
    let requests = multiple_choice_requests();
    let got = model
        .loglikelihood(&as_refs(&requests), &mut |_, _| {})
        .unwrap();
    let want: Vec<(f64, bool)> = requests
        .iter()
        .map(|(context, continuation)| {
            let (ctx, cont) = encode_pair(&model, context, continuation);
            reference_score(&mut model, &ctx, &cont)
        })
        .collect();
    assert_scores_close(&got, &want, "joint vs token-by-token");
    // The duplicate gets the same answer.
    assert_eq!(got[0], got[got.len() - 1]);
}

#[test]
fn is_greedy_is_true_for_the_argmax_continuation() {
    let (_dir, path) = tiny_model(2);
    let mut model = open(&path, 512, 512);
    // Continue each context with the text of its own argmax token; keep the
    // cases where joint tokenization reproduces exactly that token.
    let mut requests = Vec::new();
    for context in [
        "The cat",
        "the dog was",
        "Question: yes",
        "It is",
        "and the",
        "red",
        "blue and",
    ] {
        let ctx = model.tokenize(context, true);
        let rows = model.token_logits(&ctx).unwrap();
        let best = argmax(rows.last().unwrap());
        let text = model.detokenize(&[best]);
        if encode_pair(&model, context, &text).1 == vec![best] {
            requests.push((context.to_string(), text));
        }
    }
    assert!(
        !requests.is_empty(),
        "no context had a re-tokenizable argmax"
    );
    let got = model
        .loglikelihood(&as_refs(&requests), &mut |_, _| {})
        .unwrap();
    assert!(got.iter().all(|&(_, greedy)| greedy), "{got:?}");
}

#[test]
fn shared_prefix_batches_equal_each_request_alone() {
    let (_dir, path) = tiny_model(3);
    let requests = multiple_choice_requests();
    let refs = as_refs(&requests);
    // A context of 128 tokens holds only a few documents per batch, so
    // packing, prefix sharing and batch boundaries all take part.
    for pack in [false, true] {
        let mut model = open_with(&path, 128, 64, pack);
        let batched = model.loglikelihood(&refs, &mut |_, _| {}).unwrap();
        let alone: Vec<(f64, bool)> = refs
            .iter()
            .map(|request| model.loglikelihood(&[*request], &mut |_, _| {}).unwrap()[0])
            .collect();
        assert_scores_close(&batched, &alone, &format!("batched vs alone, pack={pack}"));
    }
}

#[test]
fn results_do_not_depend_on_the_batch_size() {
    let (_dir, path) = tiny_model(4);
    let requests = multiple_choice_requests();
    let refs = as_refs(&requests);
    let text = "the cat sat on the mat and the dog was blue. ".repeat(6);
    let baseline = open(&path, 256, 256)
        .loglikelihood(&refs, &mut |_, _| {})
        .unwrap();
    let rolling_baseline = open(&path, 256, 256)
        .loglikelihood_rolling(&[&text], &mut |_, _| {})
        .unwrap();
    for pack in [false, true] {
        for n_batch in [1, 7, 32] {
            let mut model = open_with(&path, 256, n_batch, pack);
            let got = model.loglikelihood(&refs, &mut |_, _| {}).unwrap();
            let rolling = model
                .loglikelihood_rolling(&[&text], &mut |_, _| {})
                .unwrap();
            if pack {
                assert_scores_close(&got, &baseline, &format!("n_batch={n_batch}, pack"));
                assert!((rolling[0] - rolling_baseline[0]).abs() < TOLERANCE);
            } else {
                // Each document alone in the cache, every decode call padded
                // to the same kernels: bit-for-bit the same scores.
                assert_eq!(got, baseline, "n_batch={n_batch}");
                assert_eq!(rolling, rolling_baseline, "n_batch={n_batch}");
            }
        }
    }
}

/// lm-eval's `get_rolling_token_windows(context_len=1)` and
/// `make_disjoint_window`, transliterated from the Python.
fn lm_eval_windows(tokens: &[i32], prefix: i32, max_len: usize) -> Vec<(Vec<i32>, Vec<i32>)> {
    let mut out = Vec::new();
    let pred_len = max_len;
    let mut predicted = 0;
    let first_len = max_len.min(tokens.len());
    let mut first_input = vec![prefix];
    first_input.extend_from_slice(&tokens[..first_len - 1]);
    out.push((first_input, tokens[..first_len].to_vec()));
    predicted += first_len;
    while predicted < tokens.len() {
        let window_pred_len = (tokens.len() - predicted).min(pred_len);
        let window_end = predicted + window_pred_len;
        out.push((
            tokens[window_end - max_len - 1..window_end - 1].to_vec(),
            tokens[window_end - window_pred_len..window_end].to_vec(),
        ));
        predicted += window_pred_len;
    }
    out.into_iter()
        .map(|(a, b)| (a[..a.len() - (b.len() - 1)].to_vec(), b))
        .collect()
}

#[test]
fn rolling_windows_score_every_token_once() {
    let (_dir, path) = tiny_model(5);
    let n_ctx = 48;
    let mut model = open(&path, n_ctx, 16);
    let long =
        "the question was whether the red cat sat on the blue mat, and it was so. ".repeat(8);
    let texts = [long.as_str(), "short text", ""];
    let got = model.loglikelihood_rolling(&texts, &mut |_, _| {}).unwrap();
    for (text, got) in texts.iter().zip(&got) {
        let tokens = model.tokenize(text, true);
        let windows = lm_eval_windows(&tokens, tiny_gguf::BOS, n_ctx as usize);
        let scored: usize = windows.iter().map(|(_, b)| b.len()).sum();
        assert_eq!(scored, tokens.len(), "each token once");
        let want: f64 = windows
            .iter()
            .map(|(a, b)| reference_score(&mut model, a, b).0)
            .sum();
        eprintln!(
            "rolling: {} tokens, difference {:e}",
            tokens.len(),
            (got - want).abs()
        );
        assert!((got - want).abs() < TOLERANCE, "{text:?}: {got} vs {want}");
    }
    assert!(
        model.tokenize(&long, true).len() > 3 * n_ctx as usize,
        "several windows"
    );
    // As in lm-eval with a BOS-adding tokenizer, an empty text is [BOS] and
    // scores log P(BOS | BOS) (checked against the reference above).
    assert_eq!(model.tokenize("", true), vec![tiny_gguf::BOS]);
}

fn generation(until: &[&str], max_gen_toks: usize) -> GenerationOptions {
    GenerationOptions {
        until: until.iter().map(|s| s.to_string()).collect(),
        max_gen_toks,
        temperature: 0.0,
        do_sample: false,
        raw: serde_json::Map::new(),
    }
}

/// Greedy decoding by hand: argmax of the logits after each step.
fn reference_generation(model: &mut LlamaBackend, prompt: &str, max_gen_toks: usize) -> String {
    let mut tokens = model.tokenize(prompt, true);
    let mut generated = Vec::new();
    while generated.len() < max_gen_toks {
        let rows = model.token_logits(&tokens).unwrap();
        let next = argmax(rows.last().unwrap());
        if next == tiny_gguf::EOS {
            break;
        }
        generated.push(next);
        tokens.push(next);
    }
    model.detokenize(&generated)
}

#[test]
fn greedy_generation_is_the_argmax_at_each_step() {
    let (_dir, path) = tiny_model(6);
    let mut model = open(&path, 256, 64);
    let prompts = [
        "The cat sat on the",
        "Question: is the dog blue?\nAnswer:",
        "The cat sat on the",
    ];
    let limits = [12, 20, 5];
    let options: Vec<GenerationOptions> = limits.iter().map(|&n| generation(&[], n)).collect();
    let requests: Vec<(&str, &GenerationOptions)> = prompts.iter().copied().zip(&options).collect();
    let got = model.generate(&requests, &mut |_, _| {}).unwrap();
    for ((prompt, limit), got) in prompts.iter().zip(limits).zip(&got) {
        let want = reference_generation(&mut model, prompt, limit);
        assert_eq!(got, &want, "{prompt:?}, max_gen_toks={limit}");
    }
}

#[test]
fn generation_stops_at_stop_strings() {
    let (_dir, path) = tiny_model(7);
    let mut model = open(&path, 256, 64);
    let prompt = "the red cat and the blue dog";
    let free = reference_generation(&mut model, prompt, 24);
    // A stop string taken from the middle of the free-running output.
    let chars: Vec<char> = free.chars().collect();
    let at = (chars.len() / 2..chars.len().saturating_sub(1))
        .find(|&i| !chars[i..i + 2].contains(&'\u{fffd}'))
        .unwrap_or_else(|| panic!("no stop string to take from {free:?}"));
    let stop: String = chars[at..at + 2].iter().collect();
    let expected = &free[..free.find(&stop).unwrap()];

    let with_stop = generation(&["never appears \u{1}", &stop], 24);
    let got = model
        .generate(&[(prompt, &with_stop)], &mut |_, _| {})
        .unwrap();
    assert_eq!(got[0], expected);
    assert!(!got[0].contains(&stop));
}

#[test]
fn errors_are_clean_messages() {
    let (dir, path) = tiny_model(8);

    let missing = dir.path().join("missing.gguf");
    let err = LlamaBackend::open(&missing, LlamaOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, BackendError::BadInput(_)), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");

    let text = dir.path().join("notes.gguf");
    std::fs::write(&text, "hello, I am not a model").unwrap();
    let err = LlamaBackend::open(&text, LlamaOptions::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("not a GGUF file"), "{err}");

    let truncated = dir.path().join("truncated.gguf");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let err = LlamaBackend::open(&truncated, LlamaOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, BackendError::BadInput(_)), "{err:?}");
    assert!(err.to_string().contains("cannot load"), "{err}");

    let alien = dir.path().join("alien.gguf");
    tiny_gguf::write_tiny_model(&alien, 8, "nonesuch").unwrap();
    let err = LlamaBackend::open(&alien, LlamaOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, BackendError::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("nonesuch"), "{err}");
}

#[test]
fn overlong_and_unsupported_requests_are_refused_before_any_work() {
    let (_dir, path) = tiny_model(9);
    let mut model = open(&path, 32, 32);
    let long = "the cat sat on the mat ".repeat(20);
    let err = model
        .loglikelihood(&[("short", " yes"), (&long, " yes")], &mut |_, _| {})
        .unwrap_err();
    match err {
        BackendError::ContextOverflow {
            request,
            tokens,
            n_ctx,
        } => {
            assert_eq!((request, n_ctx), (1, 32));
            assert!(tokens > 32);
        }
        other => panic!("expected ContextOverflow, got {other:?}"),
    }
    let options = generation(&[], 30);
    let err = model
        .generate(&[("the cat sat", &options)], &mut |_, _| {})
        .unwrap_err();
    assert!(
        matches!(err, BackendError::ContextOverflow { request: 0, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("n_ctx"), "{err}");

    let mut sampling = generation(&[], 4);
    sampling.do_sample = true;
    let err = model
        .generate(&[("the cat", &sampling)], &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, BackendError::Unsupported(_)), "{err:?}");

    // The model still answers afterwards.
    assert_eq!(
        model
            .loglikelihood(&[("short", " yes")], &mut |_, _| {})
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn identity_is_the_file_digest_and_the_chat_template_is_exposed() {
    let (_dir, path) = tiny_model(10);
    let options = LlamaOptions::from_args(&BTreeMap::from([(
        "chat_template".to_string(),
        "true".to_string(),
    )]))
    .unwrap();
    let model = LlamaBackend::open(&path, options).unwrap();
    let identity = model.identity();
    let digest = sha256_hex(&std::fs::read(&path).unwrap());
    assert_eq!(identity.fingerprint, format!("sha256:{digest}"));
    assert_eq!(identity.spec, format!("llama:{}", path.display()));
    assert_eq!(identity.details["architecture"], "llama");
    assert_eq!(identity.details["n_ctx"], "1024");
    let memo = std::fs::read_to_string(isolate_cache().join("model-sha256.json")).unwrap();
    assert!(memo.contains(&digest));

    let template = model.chat_template().unwrap();
    assert_eq!(template.template, tiny_gguf::CHAT_TEMPLATE);
    assert_eq!(
        (template.bos_token.as_str(), template.eos_token.as_str()),
        ("<s>", "</s>")
    );
}

#[test]
fn tokenizer_follows_the_model_flags() {
    let (_dir, path) = tiny_model(11);
    let model = open(&path, 64, 64);
    let with_bos = model.tokenize("the cat", true);
    let without = model.tokenize("the cat", false);
    assert_eq!(with_bos[0], tiny_gguf::BOS);
    assert_eq!(&with_bos[1..], &without[..]);
    // Text that already starts with BOS gets no second one (lm-eval's
    // `has_bos_prefix`), and special-token text is parsed.
    assert_eq!(model.tokenize("<s>the cat", true), with_bos);
    // Any text tokenizes (byte fallback) and decodes back.
    let odd = "h\u{e9}llo \u{263a} \t~";
    assert_eq!(
        model.detokenize(&model.tokenize(odd, false)).trim_start(),
        odd
    );
}
