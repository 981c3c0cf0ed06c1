//! What the OpenAI-compatible backends share: their `--model-arg` options,
//! the endpoint URLs, and the model's identity as the server reports it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::{BackendError, ModelIdentity};
use crate::http::{Http, HttpOptions};

/// `--model-arg` options of a server backend.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The served model name; default: the one model the server lists.
    pub model: Option<String>,
    pub http: HttpOptions,
    /// Prompts per HTTP request (a list `prompt`); servers such as
    /// llama-cpp-python take only one.
    pub batch_size: usize,
    /// Sent with every request, as lm-eval does (1234).
    pub seed: u64,
    /// Options only one backend knows, left for it to read.
    pub extra: BTreeMap<String, String>,
}

const COMMON_KEYS: &[&str] = &[
    "model",
    "api_key_env",
    "concurrency",
    "timeout",
    "max_retries",
    "endpoints",
    "batch_size",
    "seed",
];

impl ServerOptions {
    /// Reads the options; `own_keys` are the backend's own, kept in
    /// `extra`. `target` is the spec's URL, the first endpoint.
    pub fn from_args(
        kind: &str,
        target: &str,
        args: &BTreeMap<String, String>,
        own_keys: &[&str],
    ) -> Result<ServerOptions, BackendError> {
        let mut endpoints = vec![base_url(target)?];
        let mut options = ServerOptions {
            model: None,
            http: HttpOptions {
                endpoints: Vec::new(),
                concurrency: 8,
                timeout: Duration::from_secs(300),
                max_retries: 5,
                api_key: None,
            },
            batch_size: 1,
            seed: 1234,
            extra: BTreeMap::new(),
        };
        for (key, value) in args {
            let value = value.trim();
            match key.as_str() {
                "model" => options.model = Some(value.to_string()).filter(|v| !v.is_empty()),
                "api_key_env" => {
                    let key = std::env::var(value).map_err(|_| {
                        BackendError::BadInput(format!(
                            "--model-arg api_key_env={value}: the environment variable {value} is not set"
                        ))
                    })?;
                    options.http.api_key = Some(key);
                }
                "concurrency" => options.http.concurrency = positive(key, value)? as usize,
                "timeout" => {
                    let seconds: f64 = value
                        .parse()
                        .ok()
                        .filter(|s: &f64| *s > 0.0 && s.is_finite())
                        .ok_or_else(|| {
                            BackendError::BadInput(format!(
                                "--model-arg timeout={value}: expected seconds, a positive number"
                            ))
                        })?;
                    options.http.timeout = Duration::from_secs_f64(seconds);
                }
                "max_retries" => {
                    options.http.max_retries = value.parse().map_err(|_| {
                        BackendError::BadInput(format!(
                            "--model-arg max_retries={value}: expected a whole number"
                        ))
                    })?
                }
                "endpoints" => {
                    for url in value.split('|').map(str::trim).filter(|u| !u.is_empty()) {
                        let url = base_url(url)?;
                        if !endpoints.contains(&url) {
                            endpoints.push(url);
                        }
                    }
                }
                "batch_size" => options.batch_size = positive(key, value)? as usize,
                "seed" => {
                    options.seed = value.parse().map_err(|_| {
                        BackendError::BadInput(format!(
                            "--model-arg seed={value}: expected a whole number"
                        ))
                    })?
                }
                other if own_keys.contains(&other) => {
                    options.extra.insert(other.to_string(), value.to_string());
                }
                other => {
                    let known: Vec<&str> = COMMON_KEYS.iter().chain(own_keys).copied().collect();
                    return Err(BackendError::BadInput(format!(
                        "unknown --model-arg {other:?} for the {kind} backend; it takes {}",
                        known.join(", ")
                    )));
                }
            }
        }
        options.http.endpoints = endpoints;
        Ok(options)
    }
}

pub(super) fn positive(key: &str, value: &str) -> Result<u64, BackendError> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(BackendError::BadInput(format!(
            "--model-arg {key}={value}: expected a positive whole number"
        ))),
    }
}

/// The start of a JSON answer, for error messages.
pub fn excerpt(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(300) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

/// Every request's answer, or an error naming the first left unanswered.
pub fn all_answered<T>(answers: Vec<Option<T>>) -> Result<Vec<T>, BackendError> {
    answers
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            a.ok_or_else(|| BackendError::Request {
                request: i,
                message: "the server never answered this prompt".into(),
            })
        })
        .collect()
}

/// The API base URL (`http://host:port/v1`) from what a user wrote: a
/// trailing slash or a trailing `/completions` or `/chat/completions` is
/// dropped.
pub fn base_url(url: &str) -> Result<String, BackendError> {
    let url = url.trim().trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(BackendError::BadInput(format!(
            "{url:?} is not an http:// or https:// URL; write the API base, e.g. http://127.0.0.1:8000/v1"
        )));
    }
    let url = url
        .strip_suffix("/chat/completions")
        .or_else(|| url.strip_suffix("/completions"))
        .unwrap_or(url);
    Ok(url.to_string())
}

/// The served model and the identity of its answers: the model name plus
/// the stable part of what `GET /models` says of it (not `created`, which
/// some servers set to the time of the request).
pub fn identify(
    http: &Http,
    kind: &str,
    spec: &str,
    wanted: Option<&str>,
    mut details: BTreeMap<String, String>,
) -> Result<(String, ModelIdentity), BackendError> {
    let listed = http.get("/models");
    let entries: Vec<Value> = match &listed {
        Ok(v) => v
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let ids: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.get("id").and_then(Value::as_str))
        .collect();
    let model = match (wanted, ids.as_slice()) {
        (Some(m), _) => m.to_string(),
        (None, [one]) => one.to_string(),
        (None, []) => {
            let why = match &listed {
                Err(e) => format!("GET /models failed: {}", e.message),
                Ok(_) => "the server lists no models".to_string(),
            };
            let error = format!(
                "{spec}: cannot tell which model to use ({why}); give --model-arg model=NAME"
            );
            return Err(match &listed {
                Err(e) if !e.refused => BackendError::Failed(error),
                _ => BackendError::BadInput(error),
            });
        }
        (None, many) => {
            return Err(BackendError::BadInput(format!(
                "{spec} serves several models ({}); choose one with --model-arg model=NAME",
                many.join(", ")
            )))
        }
    };
    let entry = entries
        .iter()
        .find(|e| e.get("id").and_then(Value::as_str) == Some(model.as_str()));
    let mut fingerprint = format!("openai:{model}");
    if let Some(entry) = entry {
        let stable: serde_json::Map<String, Value> =
            ["id", "owned_by", "root", "parent", "max_model_len", "meta"]
                .iter()
                .filter_map(|k| entry.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect();
        let digest = crate::hash::sha256_hex(json!(stable).to_string().as_bytes());
        fingerprint.push_str(&format!("#models:{}", &digest[..16]));
        for (key, value) in &stable {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            details.insert(format!("server_{key}"), text);
        }
    } else {
        details.insert("server_models".into(), "not reported".into());
    }
    details.insert("api".into(), kind.to_string());
    details.insert("model".into(), model.clone());
    Ok((
        model,
        ModelIdentity {
            spec: spec.to_string(),
            fingerprint,
            details,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised() {
        for given in [
            "http://h:1/v1",
            "http://h:1/v1/",
            "http://h:1/v1/completions",
            "http://h:1/v1/chat/completions",
        ] {
            assert_eq!(base_url(given).unwrap(), "http://h:1/v1");
        }
        assert!(base_url("h:1/v1").is_err());
    }

    #[test]
    fn unknown_and_bad_options_are_named() {
        let args = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        let err = ServerOptions::from_args("x", "http://h/v1", &args("concurency", "2"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("concurency") && err.contains("concurrency"),
            "{err}"
        );
        let err = ServerOptions::from_args("x", "http://h/v1", &args("timeout", "soon"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("timeout=soon"), "{err}");
        let err = ServerOptions::from_args(
            "x",
            "http://h/v1",
            &args("api_key_env", "ASSAY_TEST_SURELY_UNSET"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("ASSAY_TEST_SURELY_UNSET"), "{err}");
        let ok = ServerOptions::from_args(
            "x",
            "http://a/v1",
            &args("endpoints", "http://b/v1/ | http://a/v1"),
            &[],
        )
        .unwrap();
        assert_eq!(ok.http.endpoints, ["http://a/v1", "http://b/v1"]);
    }
}
