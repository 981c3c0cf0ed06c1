//! Requests a task sends to a model and the responses it gets back.
//!
//! These types are the only thing that crosses from tasks to backends: a
//! backend never sees a task or a document, only requests. The request hash
//! computed here is the cache key (together with the model identity), so it
//! must be stable across runs, platforms and assay versions.

use serde::{Deserialize, Serialize};

use crate::hash::sha256_hex;

/// What a task asks of the model for each document (lm-eval's `output_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputType {
    Loglikelihood,
    LoglikelihoodRolling,
    MultipleChoice,
    GenerateUntil,
}

impl OutputType {
    pub fn parse(name: &str) -> Option<OutputType> {
        Some(match name {
            "loglikelihood" => OutputType::Loglikelihood,
            "loglikelihood_rolling" => OutputType::LoglikelihoodRolling,
            "multiple_choice" => OutputType::MultipleChoice,
            "generate_until" => OutputType::GenerateUntil,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            OutputType::Loglikelihood => "loglikelihood",
            OutputType::LoglikelihoodRolling => "loglikelihood_rolling",
            OutputType::MultipleChoice => "multiple_choice",
            OutputType::GenerateUntil => "generate_until",
        }
    }
}

/// Decoding options of a generation request, as lm-eval's `generation_kwargs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationOptions {
    /// Stop strings; generation ends before the first one that appears.
    pub until: Vec<String>,
    /// Upper bound on generated tokens (lm-eval's default is 256).
    pub max_gen_toks: usize,
    pub temperature: f64,
    pub do_sample: bool,
    /// The kwargs exactly as the task config gave them (after lm-eval's
    /// defaults), so `assay requests` prints what lm-eval would send.
    pub raw: serde_json::Map<String, serde_json::Value>,
}

impl GenerationOptions {
    /// The stop strings a backend sends: `until` without empty strings.
    pub fn stop_strings(&self) -> Vec<String> {
        self.until
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect()
    }
}

/// One request to a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// log P(continuation | context), and whether greedy decoding from the
    /// context would produce exactly the continuation.
    Loglikelihood {
        context: String,
        continuation: String,
    },
    /// log P(text) over the whole text, in windows if it exceeds the context.
    Rolling { text: String },
    /// Greedy (or sampled) generation from `context`.
    Generate {
        context: String,
        options: GenerationOptions,
    },
}

impl Request {
    /// lm-eval's name for the request type.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Loglikelihood { .. } => "loglikelihood",
            Request::Rolling { .. } => "loglikelihood_rolling",
            Request::Generate { .. } => "generate_until",
        }
    }

    /// The request's arguments as lm-eval prints them (`Instance.args`).
    pub fn arguments(&self) -> serde_json::Value {
        use serde_json::{json, Value};
        match self {
            Request::Loglikelihood {
                context,
                continuation,
            } => json!([context, continuation]),
            Request::Rolling { text } => json!([text]),
            Request::Generate { context, options } => {
                json!([context, Value::Object(options.raw.clone())])
            }
        }
    }

    /// The stable hash that identifies this request in caches and results:
    /// SHA-256 over the request kind and its arguments in canonical JSON.
    pub fn hash(&self) -> String {
        let canonical = serde_json::json!([self.kind(), self.arguments()]);
        sha256_hex(canonical.to_string().as_bytes())
    }
}

/// A model's answer to one request, in the same order as the requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Loglikelihood { logprob: f64, is_greedy: bool },
    Rolling { logprob: f64 },
    Generate { text: String },
}
