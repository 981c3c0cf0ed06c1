//! `openai-completions:URL`: any server with the OpenAI completions API
//! (vLLM, llama-cpp-python, SGLang, TGI's OpenAI route).
//!
//! Log-likelihoods come from `echo` + `logprobs`: the server scores the
//! whole text context + continuation and returns one log-probability per
//! token with the token texts and their offsets. The continuation's tokens
//! are found from the end of the prompt, by text length, so no local
//! tokenizer is needed and a BOS token or a leading-space artefact at the
//! front of the echo does not matter. `max_tokens` is 1 by default (what
//! lm-eval sends); `loglikelihood_max_tokens=0` is for servers that accept
//! an echo-only request. Scores follow lm-eval: the sum of the continuation
//! tokens' log-probabilities, and `is_greedy` when each of them is the
//! top-ranked token.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::server::{all_answered, excerpt, identify, ServerOptions};
use super::{cut_at_stops, Backend, BackendError, FaultCounters, ModelIdentity, OnAnswer};
use crate::http::{Http, RequestFailure};
use crate::request::GenerationOptions;

const KIND: &str = "openai-completions";

pub struct CompletionsBackend {
    http: Http,
    identity: ModelIdentity,
    model: String,
    batch_size: usize,
    seed: u64,
    /// `max_tokens` of a log-likelihood request: 1, or 0 (echo only).
    ll_max_tokens: u32,
}

impl CompletionsBackend {
    pub fn open(target: &str, args: &BTreeMap<String, String>) -> Result<Self, BackendError> {
        let options = ServerOptions::from_args(KIND, target, args, &["loglikelihood_max_tokens"])?;
        let ll_max_tokens = match options
            .extra
            .get("loglikelihood_max_tokens")
            .map(String::as_str)
        {
            None | Some("1") => 1,
            Some("0") => 0,
            Some(other) => {
                return Err(BackendError::BadInput(format!(
                    "--model-arg loglikelihood_max_tokens={other}: expected 0 or 1"
                )))
            }
        };
        let http = Http::new(options.http.clone()).map_err(BackendError::Failed)?;
        let details = BTreeMap::from([
            ("seed".to_string(), options.seed.to_string()),
            (
                "loglikelihood_max_tokens".to_string(),
                ll_max_tokens.to_string(),
            ),
        ]);
        let spec = format!("{KIND}:{target}");
        let (model, identity) = identify(&http, KIND, &spec, options.model.as_deref(), details)?;
        Ok(CompletionsBackend {
            http,
            identity,
            model,
            batch_size: options.batch_size,
            seed: options.seed,
            ll_max_tokens,
        })
    }

    /// Sends `prompts` in batches of `batch_size` with `body(prompts)` and
    /// hands each choice to `read(request index, choice, usage)`.
    fn complete<T: Clone>(
        &self,
        prompts: &[String],
        body: impl Fn(Value) -> Value,
        read: impl Fn(usize, &Value, Option<&Value>) -> Result<T, String>,
        on_answer: OnAnswer<T>,
    ) -> Result<Vec<T>, BackendError> {
        let starts: Vec<usize> = (0..prompts.len()).step_by(self.batch_size).collect();
        let bodies: Vec<Vec<u8>> = starts
            .iter()
            .map(|&s| {
                let batch = &prompts[s..(s + self.batch_size).min(prompts.len())];
                let prompt = match batch {
                    [one] => json!(one),
                    many => json!(many),
                };
                body(prompt).to_string().into_bytes()
            })
            .collect();
        let mut answers: Vec<Option<T>> = vec![None; prompts.len()];
        self.http.post_all("/completions", bodies, |b, answer| {
            let Some(&start) = starts.get(b) else {
                return Err(failed(answer.err()));
            };
            let end = (start + self.batch_size).min(prompts.len());
            let value = answer.map_err(|e| request_error(start, e))?;
            let choices = value
                .get("choices")
                .and_then(Value::as_array)
                .filter(|c| c.len() == end - start)
                .ok_or_else(|| BackendError::Request {
                    request: start,
                    message: format!(
                        "the server's answer has no list of {} choices: {}",
                        end - start,
                        excerpt(&value)
                    ),
                })?;
            // Several choices share one `usage`; it describes a choice
            // only when alone.
            let usage = (choices.len() == 1).then(|| value.get("usage")).flatten();
            for (j, choice) in choices.iter().enumerate() {
                let k = match choice.get("index").and_then(Value::as_u64) {
                    Some(index) => start + index as usize,
                    None => start + j,
                };
                if k >= end {
                    return Err(BackendError::Request {
                        request: start,
                        message: format!(
                            "the server answered choice index {} for {} prompts",
                            k - start,
                            end - start
                        ),
                    });
                }
                let answer = read(k, choice, usage).map_err(|message| BackendError::Request {
                    request: k,
                    message,
                })?;
                on_answer(k, &answer);
                answers[k] = Some(answer);
            }
            Ok(())
        })?;
        all_answered(answers)
    }
}

fn failed(failure: Option<RequestFailure>) -> BackendError {
    BackendError::Failed(failure.map_or_else(|| "a request failed".into(), |f| f.message))
}

fn request_error(request: usize, failure: RequestFailure) -> BackendError {
    BackendError::Request {
        request,
        message: failure.message,
    }
}

/// lm-eval's split: trailing whitespace of the context belongs to the
/// continuation.
fn continuation_with_moved_space<'a>(context: &'a str, continuation: &'a str) -> String {
    let kept = context.trim_end();
    format!("{}{continuation}", &context[kept.len()..])
}

/// `(log-likelihood, is_greedy)` of the continuation from one echoed choice.
fn read_loglikelihood(
    choice: &Value,
    usage: Option<&Value>,
    continuation: &str,
    max_tokens: u32,
) -> Result<(f64, bool), String> {
    let logprobs = choice
        .get("logprobs")
        .filter(|l| !l.is_null())
        .ok_or("the answer has no `logprobs`; the server must support echo with logprobs")?;
    let field = |name: &str| -> Result<&Vec<Value>, String> {
        logprobs
            .get(name)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("the answer's logprobs have no `{name}` list"))
    };
    let tokens = field("tokens")?;
    let offsets = field("text_offset")?;
    let token_logprobs = field("token_logprobs")?;
    let top = logprobs.get("top_logprobs").and_then(Value::as_array);
    let n = tokens.len();
    if offsets.len() != n || token_logprobs.len() != n {
        return Err(format!(
            "the answer's logprobs lists differ in length ({n} tokens, {} offsets, {} log-probabilities)",
            offsets.len(),
            token_logprobs.len()
        ));
    }
    // Entries past the prompt: what was generated.
    let generated = match max_tokens {
        0 => 0,
        _ => usage
            .and_then(|u| u.get("completion_tokens"))
            .and_then(Value::as_u64)
            .map_or(1, |c| c as usize),
    };
    let prompt_entries = n.checked_sub(generated).filter(|p| *p > 0).ok_or_else(|| {
        format!("the answer echoes {n} tokens, fewer than it generated ({generated})")
    })?;
    let offset = |i: usize| -> Result<i64, String> {
        offsets[i]
            .as_i64()
            .ok_or_else(|| format!("text_offset {i} is not a number"))
    };
    let end = if prompt_entries < n {
        offset(prompt_entries)?
    } else {
        let last = prompt_entries - 1;
        let text = tokens[last].as_str().unwrap_or("");
        offset(last)? + text.chars().count() as i64
    };
    let start = end - continuation.chars().count() as i64;
    let first = (0..prompt_entries)
        .find(|&i| offsets[i].as_i64().is_some_and(|o| o >= start))
        .ok_or("none of the echoed tokens starts inside the continuation")?;
    if first == 0 {
        return Err(
            "the continuation starts at the prompt's first token, which has no log-probability; \
             a request with an empty context cannot be scored through this server"
                .into(),
        );
    }
    let mut sum = 0.0;
    let mut greedy = true;
    for (i, lp) in token_logprobs
        .iter()
        .enumerate()
        .take(prompt_entries)
        .skip(first)
    {
        let lp = lp
            .as_f64()
            .ok_or_else(|| format!("token {i} of the echo has no log-probability"))?;
        sum += lp;
        let best = top
            .and_then(|t| t.get(i))
            .and_then(Value::as_object)
            .and_then(|m| m.values().filter_map(Value::as_f64).reduce(f64::max));
        greedy &= best.is_some_and(|b| lp >= b);
    }
    Ok((sum, greedy))
}

impl Backend for CompletionsBackend {
    fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    fn faults(&self) -> Option<std::sync::Arc<FaultCounters>> {
        Some(self.http.faults())
    }

    fn cannot_answer(&self, kind: &str) -> Option<String> {
        (kind == "loglikelihood_rolling").then(|| {
            "rolling log-likelihoods are scored in windows of the model's own tokens, which an \
             OpenAI-compatible server does not expose; score this task with the llama backend"
                .to_string()
        })
    }

    fn loglikelihood(
        &mut self,
        requests: &[(&str, &str)],
        on_answer: OnAnswer<(f64, bool)>,
    ) -> Result<Vec<(f64, bool)>, BackendError> {
        let prompts: Vec<String> = requests.iter().map(|(c, x)| format!("{c}{x}")).collect();
        let continuations: Vec<String> = requests
            .iter()
            .map(|(c, x)| continuation_with_moved_space(c, x))
            .collect();
        let max_tokens = self.ll_max_tokens;
        let (model, seed) = (self.model.clone(), self.seed);
        self.complete(
            &prompts,
            |prompt| {
                json!({
                    "model": model, "prompt": prompt, "max_tokens": max_tokens,
                    "temperature": 0, "logprobs": 1, "echo": true, "seed": seed,
                })
            },
            |k, choice, usage| read_loglikelihood(choice, usage, &continuations[k], max_tokens),
            on_answer,
        )
    }

    fn generate(
        &mut self,
        requests: &[(&str, &GenerationOptions)],
        on_answer: OnAnswer<String>,
    ) -> Result<Vec<String>, BackendError> {
        // Requests with the same options share batches.
        let mut texts = vec![String::new(); requests.len()];
        let mut groups: Vec<(&GenerationOptions, Vec<usize>)> = Vec::new();
        for (i, (_, options)) in requests.iter().enumerate() {
            match groups.iter_mut().find(|(o, _)| o == options) {
                Some((_, members)) => members.push(i),
                None => groups.push((options, vec![i])),
            }
        }
        for (options, members) in groups {
            let prompts: Vec<String> = members.iter().map(|&i| requests[i].0.to_string()).collect();
            let body = generation_body(&self.model, self.seed, options);
            let stops: Vec<String> = options.stop_strings();
            let answers = self.complete(
                &prompts,
                |prompt| {
                    let mut body = body.clone();
                    body.insert("prompt".into(), prompt);
                    Value::Object(body)
                },
                |_, choice, _| {
                    choice
                        .get("text")
                        .and_then(Value::as_str)
                        .map(|t| cut_at_stops(t.to_string(), &stops))
                        .ok_or_else(|| format!("the answer has no `text`: {}", excerpt(choice)))
                },
                &mut |k, text| on_answer(members[k], text),
            )?;
            for (k, text) in answers.into_iter().enumerate() {
                texts[members[k]] = text;
            }
        }
        Ok(texts)
    }
}

/// lm-eval's generation payload: `max_tokens` from max_gen_toks, the
/// temperature, the stop strings and the seed, plus any other generation
/// kwargs of the task (`top_p`, ...) as given.
pub(super) fn generation_body(
    model: &str,
    seed: u64,
    options: &GenerationOptions,
) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("max_tokens".into(), json!(options.max_gen_toks));
    body.insert("temperature".into(), json!(options.temperature));
    let stops: Vec<&String> = options.until.iter().filter(|s| !s.is_empty()).collect();
    if !stops.is_empty() {
        body.insert("stop".into(), json!(stops));
    }
    body.insert("seed".into(), json!(seed));
    for (key, value) in &options.raw {
        let known = [
            "until",
            "max_gen_toks",
            "max_tokens",
            "temperature",
            "do_sample",
        ];
        if !known.contains(&key.as_str()) {
            body.insert(key.clone(), value.clone());
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(tokens: &[&str], first_offset: i64, logprobs: &[Option<f64>]) -> Value {
        let mut offsets = Vec::new();
        let mut at = first_offset;
        for t in tokens {
            offsets.push(at);
            at += t.chars().count() as i64;
        }
        let top: Vec<Value> = tokens
            .iter()
            .zip(logprobs)
            .map(|(t, lp)| match lp {
                Some(lp) => json!({ *t: lp, "other": -0.5 }),
                None => Value::Null,
            })
            .collect();
        json!({"logprobs": {"tokens": tokens, "text_offset": offsets,
            "token_logprobs": logprobs, "top_logprobs": top}})
    }

    #[test]
    fn the_continuation_is_found_from_the_end() {
        // "Q: 2+2?" + " 4", one generated token after the echo.
        let c = choice(
            &["Q", ":", " 2", "+", "2", "?", " 4", "\n"],
            0,
            &[
                None,
                Some(-1.0),
                Some(-2.0),
                Some(-1.0),
                Some(-1.0),
                Some(-1.0),
                Some(-0.25),
                Some(-3.0),
            ],
        );
        let usage = json!({"completion_tokens": 1});
        let (ll, greedy) = read_loglikelihood(&c, Some(&usage), " 4", 1).unwrap();
        assert_eq!(ll, -0.25);
        assert!(greedy);
        // The same with a BOS echoed first and offsets shifted by its text.
        let c = choice(
            &["<s>", "Q", ":", " 2", "+", "2", "?", " 4", "\n"],
            0,
            &[
                None,
                Some(-1.),
                Some(-1.),
                Some(-2.),
                Some(-1.),
                Some(-1.),
                Some(-1.),
                Some(-0.25),
                Some(-3.),
            ],
        );
        assert_eq!(
            read_loglikelihood(&c, None, " 4", 1).unwrap(),
            (-0.25, true)
        );
        // Echo only (max_tokens 0): no generated entry.
        let c = choice(
            &["Q", "?", " yes", " no"],
            1,
            &[None, Some(-1.), Some(-0.75), Some(-1.0)],
        );
        assert_eq!(
            read_loglikelihood(&c, None, " yes no", 0).unwrap(),
            (-1.75, false)
        );
    }

    #[test]
    fn an_empty_context_and_bad_answers_are_errors() {
        let c = choice(&[" yes", "\n"], 0, &[None, Some(-1.0)]);
        let err = read_loglikelihood(&c, None, " yes", 1).unwrap_err();
        assert!(err.contains("empty context"), "{err}");
        let err = read_loglikelihood(&json!({"text": "x"}), None, " yes", 1).unwrap_err();
        assert!(err.contains("logprobs"), "{err}");
    }

    #[test]
    fn moved_whitespace() {
        assert_eq!(continuation_with_moved_space("A: ", "yes"), " yes");
        assert_eq!(continuation_with_moved_space("A:", " yes"), " yes");
        assert_eq!(continuation_with_moved_space("to \n", "X"), " \nX");
    }
}
