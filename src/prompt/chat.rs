//! Chat templates: a model's own Jinja template (HF `tokenizer.chat_template`,
//! also stored in GGUF files) rendered the way `transformers` renders it.
//!
//! lm-eval's `--apply_chat_template` turns the prompt into messages and asks
//! the tokenizer to render them; assay does the same with minijinja, using
//! the whitespace rules (`trim_blocks`, `lstrip_blocks`) and helpers
//! (`raise_exception`, `tojson`, `strftime_now`) that HF templates rely on.

use minijinja::value::Value as MjValue;
use minijinja::{context, Environment, Error, ErrorKind};

use crate::python::text::is_space;

/// One chat message.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// A compiled chat template with the special tokens it may print; or, for
/// a backend whose server applies the template itself, the messages as a
/// JSON list (lm-eval's `JsonChatStr`).
pub struct ChatTemplate {
    source: String,
    /// None: render messages as JSON.
    env: Option<Environment<'static>>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// Prompts as a JSON list of `{"role", "content"}` messages, for
    /// backends that apply the model's template on the server.
    pub fn messages_json() -> ChatTemplate {
        ChatTemplate {
            source: String::new(),
            env: None,
            bos_token: String::new(),
            eos_token: String::new(),
        }
    }

    /// Whether prompts are JSON message lists rather than rendered text.
    pub fn is_messages_json(&self) -> bool {
        self.env.is_none()
    }

    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate, String> {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .map_err(|e| e.to_string())?,
        );
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<MjValue, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_filter("tojson", tojson);
        env.add_function("strftime_now", |fmt: String| {
            chrono::Utc::now().format(&fmt).to_string()
        });
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| format!("the model's chat template does not compile: {e}"))?;
        Ok(ChatTemplate {
            source: source.to_string(),
            env: Some(env),
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// The template text, for provenance.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders `messages`. With `add_generation_prompt` false the last
    /// message is continued (transformers' `continue_final_message`): the
    /// text is cut right after its content.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, String> {
        let Some(env) = &self.env else {
            // The server renders; a trailing assistant message is continued.
            // Written as lm-eval writes its JsonChatStr: `json.dumps`.
            return crate::python::json::dumps(&messages, None);
        };
        let template = env.get_template("chat").map_err(|e| e.to_string())?;
        // transformers 5: mark the end of the continued message with a sentinel.
        let continued = (!add_generation_prompt).then(|| messages.last()).flatten();
        let mut marked = messages.to_vec();
        if let Some(last) = marked.last_mut().filter(|_| continued.is_some()) {
            last.content.push_str(CONTINUE_TAG);
        }
        let rendered = template
            .render(context! {
                messages => MjValue::from(minijinja::value::Serde(&marked)),
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
            })
            .map_err(|e| format!("the model's chat template failed: {e}"))?;
        let Some(last) = continued else {
            return Ok(rendered);
        };
        let tag = CONTINUE_TAG.trim_end();
        let at = rendered
            .rfind(tag)
            .filter(|_| rendered.contains(last.content.trim_matches(is_space)))
            .ok_or("the chat template dropped the final message, so it cannot be continued")?;
        if rendered[at..].starts_with(CONTINUE_TAG) {
            Ok(rendered[..at].to_string())
        } else {
            Ok(rendered[..at].trim_end_matches(is_space).to_string())
        }
    }
}

/// What transformers 5 appends to a message it continues.
const CONTINUE_TAG: &str = "CONTINUE_FINAL_MESSAGE_TAG ";

/// transformers' `tojson`: `json.dumps(x, ensure_ascii=False)`, i.e. ", " and
/// ": " separators (or `indent`) and no HTML escaping, unlike minijinja's.
fn tojson(value: &MjValue, kwargs: minijinja::value::Kwargs) -> Result<MjValue, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    kwargs.assert_all_used()?;
    let text = crate::python::json::dumps(value, indent)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))?;
    Ok(MjValue::from_safe_string(text))
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GEMMA_LIKE: &str = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = m['role'] %}{% endif %}<start_of_turn>{{ role }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}";

    fn msg(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn renders_and_continues_like_transformers() {
        let t = ChatTemplate::new(GEMMA_LIKE, "<bos>", "<eos>").unwrap();
        let out = t.render(&[msg("user", "Hi")], true).unwrap();
        assert_eq!(
            out,
            "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
        );
        let cont = t
            .render(&[msg("user", "Hi"), msg("assistant", "Answer:")], false)
            .unwrap();
        assert_eq!(
            cont,
            "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nAnswer:"
        );
    }

    #[test]
    fn raise_exception_is_an_error() {
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}", "", "").unwrap();
        assert!(t.render(&[], true).unwrap_err().contains("no system role"));
    }
}
