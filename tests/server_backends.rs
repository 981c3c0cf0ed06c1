//! The OpenAI-compatible backends against a mock server the tests run:
//! payloads, scores, batching, concurrency, and every fault the transport
//! must survive (or report clearly).

#[path = "support/mock_openai.rs"]
mod mock_openai;

use std::collections::BTreeMap;
use std::time::Duration;

use assay::backend::{self, Backend, BackendError};
use assay::request::GenerationOptions;
use mock_openai::{expected_loglikelihood, Fault, MockServer, MODEL};

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn completions(server: &MockServer, extra: &[(&str, &str)]) -> Box<dyn Backend> {
    let mut a = args(&[("timeout", "5"), ("max_retries", "3")]);
    a.extend(args(extra));
    backend::open(&format!("openai-completions:{}", server.base), &a).unwrap()
}

const PAIRS: &[(&str, &str)] = &[
    ("Question: 2+2?\nAnswer:", " 4"),
    ("Question: 2+2?\nAnswer:", " 5"),
    ("Q: capital of France? A: ", "Paris"),
    ("one two three", " four five six"),
];

fn score(model: &mut dyn Backend) -> Result<Vec<(f64, bool)>, BackendError> {
    model.loglikelihood(PAIRS, &mut |_, _| {})
}

fn assert_expected(got: &[(f64, bool)]) {
    for ((context, continuation), (ll, greedy)) in PAIRS.iter().zip(got) {
        let (want, want_greedy) = expected_loglikelihood(context, continuation);
        assert!(
            (ll - want).abs() < 1e-12,
            "{context:?}+{continuation:?}: {ll} vs {want}"
        );
        assert_eq!(*greedy, want_greedy, "{context:?}+{continuation:?}");
    }
}

#[test]
fn loglikelihood_payloads_and_scores() {
    let server = MockServer::start();
    let mut model = completions(&server, &[]);
    assert!(model.identity().fingerprint.contains(MODEL));
    assert_eq!(model.identity().details["server_owned_by"], "assay-tests");
    let mut seen = Vec::new();
    let got = model
        .loglikelihood(PAIRS, &mut |i, _| seen.push(i))
        .unwrap();
    assert_expected(&got);
    seen.sort();
    assert_eq!(
        seen,
        [0, 1, 2, 3],
        "each answer is handed out as it arrives"
    );
    let posts = server.posts();
    assert_eq!(posts.len(), PAIRS.len());
    let body = &posts[0].body;
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["echo"], true);
    assert_eq!(body["logprobs"], 1);
    assert_eq!(body["max_tokens"], 1);
    assert_eq!(body["temperature"], 0);
    assert_eq!(body["seed"], 1234);
    let prompts: Vec<&str> = posts
        .iter()
        .map(|p| p.body["prompt"].as_str().unwrap())
        .collect();
    assert!(prompts.contains(&"Q: capital of France? A: Paris"));

    // A server that echoes a BOS token first gives the same scores.
    server
        .state
        .echo_bos
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_expected(&score(model.as_mut()).unwrap());
}

#[test]
fn prompts_are_batched_and_echo_only_requests_work() {
    let server = MockServer::start();
    let mut model = completions(
        &server,
        &[("batch_size", "3"), ("loglikelihood_max_tokens", "0")],
    );
    assert_expected(&score(model.as_mut()).unwrap());
    let posts = server.posts();
    assert_eq!(posts.len(), 2);
    // Sent concurrently: either may arrive first.
    let mut sizes: Vec<usize> = posts
        .iter()
        .map(|p| p.body["prompt"].as_array().map_or(1, |a| a.len()))
        .collect();
    sizes.sort();
    assert_eq!(sizes, [1, 3]);
    assert!(posts.iter().all(|p| p.body["max_tokens"] == 0));
}

#[test]
fn generation_sends_stops_and_cuts_at_them() {
    let server = MockServer::start();
    let mut model = completions(&server, &[]);
    let mut raw = serde_json::Map::new();
    raw.insert("until".into(), serde_json::json!(["\n\n"]));
    raw.insert("top_p".into(), serde_json::json!(0.5));
    let options = GenerationOptions {
        until: vec!["\n\n".into()],
        max_gen_toks: 32,
        temperature: 0.0,
        do_sample: false,
        raw,
    };
    let texts = model
        .generate(
            &[("Q: one two", &options), ("Q: one", &options)],
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(texts, [" answer 3", " answer 2"]);
    let body = &server.posts()[0].body;
    assert_eq!(body["max_tokens"], 32);
    assert_eq!(body["stop"], serde_json::json!(["\n\n"]));
    assert_eq!(body["top_p"], 0.5);
    assert!(body.get("until").is_none() && body.get("echo").is_none());
}

#[test]
fn concurrency_is_bounded_and_used() {
    let server = MockServer::start();
    server.set_delay(Duration::from_millis(150));
    let mut model = completions(&server, &[("concurrency", "4")]);
    let pairs: Vec<(String, String)> = (0..16)
        .map(|i| (format!("n {i} is"), " odd".to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    model.loglikelihood(&refs, &mut |_, _| {}).unwrap();
    assert_eq!(
        server
            .state
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst),
        4
    );
}

#[test]
fn transient_faults_are_retried() {
    let server = MockServer::start();
    let mut model = completions(&server, &[("timeout", "1"), ("concurrency", "1")]);
    // Each request meets one fault, then is answered (Delay(0)).
    let ok = || Fault::Delay(Duration::ZERO);
    server.fault([
        Fault::Status(500),
        ok(),
        Fault::Status(503),
        ok(),
        Fault::Drop,
        ok(),
        Fault::Truncate,
        ok(),
        Fault::Delay(Duration::from_millis(2500)),
        ok(),
        Fault::Status(408),
        ok(),
    ]);
    let pairs: Vec<(&str, &str)> = PAIRS.iter().chain(&PAIRS[..2]).copied().collect();
    let got = model.loglikelihood(&pairs, &mut |_, _| {}).unwrap();
    for ((context, continuation), answer) in pairs.iter().zip(got) {
        assert_eq!(answer, expected_loglikelihood(context, continuation));
    }
    let faults = model.faults().unwrap();
    assert_eq!(faults.retried.load(std::sync::atomic::Ordering::SeqCst), 6);
    assert_eq!(faults.failed.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn retry_after_is_honoured() {
    let server = MockServer::start();
    let mut model = completions(&server, &[("concurrency", "1")]);
    server.fault([Fault::TooMany(1)]);
    model.loglikelihood(&PAIRS[..1], &mut |_, _| {}).unwrap();
    let posts = server.posts();
    assert_eq!(posts.len(), 2);
    let waited = posts[1].at - posts[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );
}

#[test]
fn refusals_and_garbage_are_not_retried_and_name_the_request() {
    let server = MockServer::start();
    let mut model = completions(&server, &[("concurrency", "1")]);
    server.fault([Fault::Status(400)]);
    let err = model
        .loglikelihood(&PAIRS[..1], &mut |_, _| {})
        .unwrap_err();
    assert!(
        matches!(err, BackendError::Request { request: 0, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("400"), "{err}");
    assert_eq!(server.posts().len(), 1);

    server.clear_log();
    server.fault([Fault::BadJson]);
    let err = model
        .loglikelihood(&PAIRS[..1], &mut |_, _| {})
        .unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
    assert_eq!(server.posts().len(), 1);
}

#[test]
fn a_server_that_keeps_failing_is_given_up_on() {
    let server = MockServer::start();
    let mut model = completions(&server, &[("max_retries", "2"), ("concurrency", "1")]);
    *server.state.always.lock().unwrap() = Some(502);
    let err = model
        .loglikelihood(&PAIRS[..1], &mut |_, _| {})
        .unwrap_err();
    assert!(
        err.to_string().contains("gave up after 3 attempts"),
        "{err}"
    );
    assert_eq!(server.posts().len(), 3);
}

#[test]
fn replicas_share_the_load_and_a_dead_one_is_skipped() {
    let a = MockServer::start();
    let b = MockServer::start();
    let pairs: Vec<(String, String)> = (0..12)
        .map(|i| (format!("n {i} is"), " even".to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(x, y)| (x.as_str(), y.as_str()))
        .collect();
    a.set_delay(Duration::from_millis(50));
    b.set_delay(Duration::from_millis(50));
    let endpoints = format!("{}|{}", a.base, b.base);
    let mut model = completions(&a, &[("endpoints", &endpoints), ("concurrency", "2")]);
    model.loglikelihood(&refs, &mut |_, _| {}).unwrap();
    assert!(!a.posts().is_empty() && !b.posts().is_empty());
    assert_eq!(a.posts().len() + b.posts().len(), 12);

    // A replica that refuses connections: everything is answered by the other.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1", listener.local_addr().unwrap())
    };
    b.clear_log();
    let endpoints = format!("{dead}|{}", b.base);
    let mut model = completions(&b, &[("endpoints", &endpoints), ("max_retries", "6")]);
    let got = model.loglikelihood(&refs, &mut |_, _| {}).unwrap();
    assert_eq!(got.len(), 12);
    assert_eq!(b.posts().len(), 12);
}

#[test]
fn the_api_key_is_sent_and_never_shown() {
    let server = MockServer::start();
    std::env::set_var("ASSAY_TEST_KEY", "sk-very-secret");
    let mut model = completions(
        &server,
        &[("api_key_env", "ASSAY_TEST_KEY"), ("concurrency", "1")],
    );
    score(model.as_mut()).unwrap();
    assert_eq!(
        server.posts()[0].authorization.as_deref(),
        Some("Bearer sk-very-secret")
    );
    assert!(!format!("{:?}", model.identity()).contains("sk-very-secret"));
    server.fault([Fault::Status(401)]);
    let err = model
        .loglikelihood(&PAIRS[..1], &mut |_, _| {})
        .unwrap_err();
    assert!(
        err.to_string().contains("401") && err.to_string().contains("***"),
        "{err}"
    );
    assert!(!err.to_string().contains("sk-very-secret"), "{err}");
}

#[test]
fn chat_generates_and_refuses_loglikelihoods() {
    let server = MockServer::start();
    let mut model = backend::open(
        &format!("openai-chat:{}/chat/completions", server.base),
        &args(&[]),
    )
    .unwrap();
    assert!(model
        .cannot_answer("loglikelihood")
        .unwrap()
        .contains("openai-completions"));
    assert!(model.cannot_answer("generate_until").is_none());
    let options = GenerationOptions {
        until: vec![
            "\n\n".into(),
            "a".into(),
            "b".into(),
            "c".into(),
            "Q:".into(),
        ],
        max_gen_toks: 16,
        temperature: 0.0,
        do_sample: false,
        raw: serde_json::Map::new(),
    };
    let chat =
        r#"[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "one two"}]"#;
    let texts = model
        .generate(
            &[("one two three", &options), (chat, &options)],
            &mut |_, _| {},
        )
        .unwrap();
    // Cut locally at every stop, though only four are sent.
    assert_eq!(texts, [" ", " "]);
    let posts = server.posts();
    assert_eq!(posts[0].path, "/v1/chat/completions");
    assert_eq!(posts[0].body["stop"].as_array().unwrap().len(), 4);
    let messages: Vec<&serde_json::Value> = posts.iter().map(|p| &p.body["messages"]).collect();
    assert!(messages.iter().any(|m| m.as_array().unwrap().len() == 2));
    assert!(messages
        .iter()
        .any(|m| m[0]["role"] == "user" && m[0]["content"] == "one two three"));
}

#[test]
fn bad_specs_and_options_are_clear() {
    let server = MockServer::start();
    let err = backend::open("openai-completions:localhost:8000", &args(&[]))
        .err()
        .unwrap();
    assert!(err.to_string().contains("http://"), "{err}");
    let spec = format!("openai-completions:{}", server.base);
    let err = backend::open(&spec, &args(&[("concurency", "2")]))
        .err()
        .unwrap();
    assert!(err.to_string().contains("concurrency"), "{err}");
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "openai-completions:http://{}/v1",
            listener.local_addr().unwrap()
        )
    };
    let err = backend::open(&dead, &args(&[("max_retries", "0")]))
        .err()
        .unwrap();
    assert!(err.to_string().contains("model=NAME"), "{err}");
}
