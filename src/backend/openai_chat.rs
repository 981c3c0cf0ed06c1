//! `openai-chat:URL`: generation through the OpenAI chat completions API.
//!
//! The server applies the model's chat template. A prompt made with
//! `--apply-chat-template` arrives as a JSON list of messages (as lm-eval
//! passes chat histories to API models) and is sent as those messages; any
//! other prompt is sent as one user message. Chat completions give no
//! log-probabilities of a given text, so log-likelihood tasks are refused
//! before anything is sent.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::openai_completions::generation_body;
use super::server::{all_answered, excerpt, identify, ServerOptions};
use super::{cut_at_stops, Backend, BackendError, FaultCounters, ModelIdentity, OnAnswer};
use crate::http::Http;
use crate::request::GenerationOptions;

const KIND: &str = "openai-chat";
/// The OpenAI API takes at most four stop strings; the rest are cut here.
const MAX_STOPS: usize = 4;

pub struct ChatBackend {
    http: Http,
    identity: ModelIdentity,
    model: String,
    seed: u64,
}

impl ChatBackend {
    pub fn open(target: &str, args: &BTreeMap<String, String>) -> Result<Self, BackendError> {
        let options = ServerOptions::from_args(KIND, target, args, &[])?;
        if options.batch_size != 1 {
            return Err(BackendError::BadInput(
                "--model-arg batch_size: chat completions take one conversation per request".into(),
            ));
        }
        let http = Http::new(options.http.clone()).map_err(BackendError::Failed)?;
        let details = BTreeMap::from([("seed".to_string(), options.seed.to_string())]);
        let spec = format!("{KIND}:{target}");
        let (model, identity) = identify(&http, KIND, &spec, options.model.as_deref(), details)?;
        Ok(ChatBackend {
            http,
            identity,
            model,
            seed: options.seed,
        })
    }
}

/// The messages of a prompt: a JSON list of `{role, content}` objects as
/// made by `--apply-chat-template`, else the prompt as one user message.
fn messages(prompt: &str) -> Value {
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(prompt) {
        let all_messages = !items.is_empty()
            && items
                .iter()
                .all(|m| m.get("role").is_some_and(Value::is_string) && m.get("content").is_some());
        if all_messages {
            return Value::Array(items);
        }
    }
    json!([{"role": "user", "content": prompt}])
}

impl Backend for ChatBackend {
    fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    fn faults(&self) -> Option<std::sync::Arc<FaultCounters>> {
        Some(self.http.faults())
    }

    fn chat_messages(&self) -> bool {
        true
    }

    fn cannot_answer(&self, kind: &str) -> Option<String> {
        (kind != "generate_until").then(|| {
            format!(
                "it needs {kind} scores, which chat completions cannot give; use \
                 openai-completions:URL (a server with echo + logprobs) or llama:MODEL.gguf for it"
            )
        })
    }

    fn generate(
        &mut self,
        requests: &[(&str, &GenerationOptions)],
        on_answer: OnAnswer<String>,
    ) -> Result<Vec<String>, BackendError> {
        let mut stops = Vec::with_capacity(requests.len());
        let bodies: Vec<Vec<u8>> = requests
            .iter()
            .map(|(prompt, options)| {
                let mut body = generation_body(&self.model, self.seed, options);
                let until: Vec<String> = options.stop_strings();
                if until.is_empty() {
                    body.remove("stop");
                } else {
                    body.insert("stop".into(), json!(until[..until.len().min(MAX_STOPS)]));
                }
                stops.push(until);
                body.insert("messages".into(), messages(prompt));
                Value::Object(body).to_string().into_bytes()
            })
            .collect();
        let mut texts: Vec<Option<String>> = vec![None; requests.len()];
        self.http
            .post_all("/chat/completions", bodies, |k, answer| {
                let value = answer.map_err(|e| BackendError::Request {
                    request: k,
                    message: e.message,
                })?;
                let content = value
                    .pointer("/choices/0/message/content")
                    .map(|c| c.as_str().unwrap_or_default().to_string())
                    .ok_or_else(|| BackendError::Request {
                        request: k,
                        message: format!(
                            "the answer has no choices[0].message.content: {}",
                            excerpt(&value)
                        ),
                    })?;
                let stops = stops
                    .get(k)
                    .ok_or_else(|| BackendError::Failed("a request failed".to_string()))?;
                let text = cut_at_stops(content, stops);
                on_answer(k, &text);
                texts[k] = Some(text);
                Ok(())
            })?;
        all_answered(texts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_become_messages() {
        assert_eq!(
            messages("What is 2+2?"),
            json!([{"role": "user", "content": "What is 2+2?"}])
        );
        let chat =
            r#"[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]"#;
        assert_eq!(messages(chat).as_array().unwrap().len(), 2);
        // JSON that is not a message list stays text.
        assert_eq!(
            messages("[1, 2]"),
            json!([{"role": "user", "content": "[1, 2]"}])
        );
    }
}
