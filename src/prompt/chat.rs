//! Chat templates: a model's own Jinja template (HF `tokenizer.chat_template`,
//! also stored in GGUF files) rendered the way `transformers` renders it.
//!
//! lm-eval's `--apply_chat_template` turns the prompt into messages and asks
//! the tokenizer to render them; assay does the same with minijinja, using
//! the whitespace rules (`trim_blocks`, `lstrip_blocks`) and helpers
//! (`raise_exception`, `tojson`, `strftime_now`) that HF templates rely on.

use minijinja::value::Value as MjValue;
use minijinja::{context, Environment, Error, ErrorKind};

/// One chat message.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// A compiled chat template with the special tokens it may print.
pub struct ChatTemplate {
    source: String,
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
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
        env.add_function("strftime_now", |fmt: String| {
            chrono::Utc::now().format(&fmt).to_string()
        });
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| format!("the model's chat template does not compile: {e}"))?;
        Ok(ChatTemplate {
            source: source.to_string(),
            env,
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
        let template = self.env.get_template("chat").map_err(|e| e.to_string())?;
        let rendered = template
            .render(context! {
                messages => MjValue::from(minijinja::value::Serde(messages)),
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
            })
            .map_err(|e| format!("the model's chat template failed: {e}"))?;
        if add_generation_prompt {
            return Ok(rendered);
        }
        let Some(last) = messages.last() else {
            return Ok(rendered);
        };
        let stripped = last.content.trim();
        let at = rendered
            .rfind(stripped)
            .ok_or("the chat template dropped the final message, so it cannot be continued")?;
        let left = last.content.trim_start();
        let end = if rendered[at..].starts_with(left) {
            at + left.len()
        } else {
            at + stripped.len()
        };
        Ok(rendered[..end].to_string())
    }
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
