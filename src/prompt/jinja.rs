//! The Jinja environment lm-eval renders task templates with, rebuilt on
//! minijinja.
//!
//! lm-eval uses Jinja2 with strict undefined variables, kept trailing newlines,
//! Python method calls on values and one extra filter (`regex_replace`). Values
//! print as Python's `str()` would print them. Templates are compiled once
//! per distinct source and reused for every document.

use std::collections::HashMap;

use fancy_regex::Regex;
use minijinja::value::{Value as MjValue, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior};

use crate::python::value::py_str;

/// A template environment holding every template a task uses, compiled once.
pub struct Templates {
    env: Environment<'static>,
    names: HashMap<String, String>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("default delimiters are valid"),
        );
        env.set_formatter(|out, _state, value| {
            if let Some(s) = value.as_str() {
                out.write_str(s).map_err(Error::from)
            } else {
                out.write_str(&python_str(value)?).map_err(Error::from)
            }
        });
        env.set_unknown_method_callback(python_method);
        env.add_filter("regex_replace", regex_replace);
        Templates {
            env,
            names: HashMap::new(),
        }
    }

    /// Compiles `source` (once) so that [`Templates::render`] can use it.
    pub fn compile(&mut self, source: &str) -> Result<(), String> {
        if self.names.contains_key(source) {
            return Ok(());
        }
        let name = format!("t{}", self.names.len());
        self.env
            .add_template_owned(name.clone(), source.to_string())
            .map_err(describe)?;
        self.names.insert(source.to_string(), name);
        Ok(())
    }

    /// Renders a compiled template with the document's columns as variables.
    pub fn render(&self, source: &str, doc: &MjValue) -> Result<String, String> {
        let name = self
            .names
            .get(source)
            .ok_or_else(|| format!("template was not compiled: {source:?}"))?;
        let template = self.env.get_template(name).map_err(describe)?;
        template.render(doc).map_err(describe)
    }
}

/// A template error as one line, without minijinja's internal template name.
fn describe(e: Error) -> String {
    let mut msg = e
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.kind().to_string());
    if e.kind() == ErrorKind::UndefinedError && msg.is_empty() {
        msg = "undefined value".into();
    }
    let msg = format!("{}: {msg}", e.kind());
    match e.line() {
        Some(line) => format!("{msg} (template line {line})"),
        None => msg,
    }
}

/// Python's `str()` of a template value.
fn python_str(value: &MjValue) -> Result<String, Error> {
    match value.kind() {
        ValueKind::Undefined => Err(Error::new(ErrorKind::UndefinedError, "undefined value")),
        ValueKind::None => Ok("None".into()),
        ValueKind::Bool => Ok(if value.is_true() { "True" } else { "False" }.into()),
        _ => {
            let json = serde_json::to_value(value)
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
            Ok(py_str(&json))
        }
    }
}

/// Python methods on values: minijinja-contrib's set, plus `list.index`.
fn python_method(
    state: &mut State,
    value: &MjValue,
    method: &str,
    args: &[MjValue],
) -> Result<MjValue, Error> {
    if value.kind() == ValueKind::Seq && method == "index" {
        let [needle] = args else {
            return Err(Error::new(
                ErrorKind::MissingArgument,
                "list.index takes one argument",
            ));
        };
        for (i, item) in value.try_iter()?.enumerate() {
            if &item == needle {
                return Ok(MjValue::from(i));
            }
        }
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{needle} is not in list"),
        ));
    }
    if let (Some(s), "index", [needle]) = (value.as_str(), method, args) {
        let needle = needle.as_str().unwrap_or_default();
        // Python counts characters, not bytes.
        return s
            .find(needle)
            .map(|byte| MjValue::from(s[..byte].chars().count()))
            .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "substring not found"));
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// lm-eval's `regex_replace(string, pattern, repl, count=0)`: Python `re.sub`.
fn regex_replace(
    string: String,
    pattern: String,
    repl: String,
    count: Option<usize>,
) -> Result<String, Error> {
    let re = Regex::new(&pattern).map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("regex_replace: bad pattern {pattern:?}: {e}"),
        )
    })?;
    python_sub(&re, &repl, &string, count.unwrap_or(0))
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("regex_replace: {e}")))
}

/// Python's `re.sub` with a template replacement (`\1`, `\g<name>`, `\n`).
pub fn python_sub(re: &Regex, repl: &str, text: &str, count: usize) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (n, caps) in re.captures_iter(text).enumerate() {
        if count > 0 && n >= count {
            break;
        }
        let caps = caps.map_err(|e| e.to_string())?;
        let whole = caps.get(0).expect("group 0 always matches");
        out.push_str(&text[last..whole.start()]);
        expand(repl, &caps, re, &mut out)?;
        last = whole.end();
    }
    out.push_str(&text[last..]);
    Ok(out)
}

fn expand(
    repl: &str,
    caps: &fancy_regex::Captures,
    re: &Regex,
    out: &mut String,
) -> Result<(), String> {
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => return Err("bad escape (end of pattern)".into()),
            Some(d) if d.is_ascii_digit() => {
                let mut num = d.to_string();
                if let Some(e) = chars.peek().filter(|e| e.is_ascii_digit()) {
                    num.push(*e);
                    chars.next();
                }
                let i: usize = num.parse().expect("digits");
                if i >= re.captures_len() {
                    return Err(format!("invalid group reference {i}"));
                }
                out.push_str(caps.get(i).map_or("", |m| m.as_str()));
            }
            Some('g') => {
                if chars.next() != Some('<') {
                    return Err("missing < in \\g<name>".into());
                }
                let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                let m = match name.parse::<usize>() {
                    Ok(i) => caps.get(i),
                    Err(_) => caps.name(&name),
                };
                out.push_str(m.map_or("", |m| m.as_str()));
            }
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, doc: serde_json::Value) -> Result<String, String> {
        let mut t = Templates::new();
        t.compile(src)?;
        t.render(src, &MjValue::from(minijinja::value::Serde(&doc)))
    }

    #[test]
    fn renders_python_style() {
        let doc = serde_json::json!({"q": "Hi ", "c": ["a", "b"], "n": 3, "f": 1.0, "b": true});
        assert_eq!(
            render("{{q.strip()}}|{{c}}|{{n}}|{{f}}|{{b}}\n", doc.clone()).unwrap(),
            "Hi|['a', 'b']|3|1.0|True\n"
        );
        assert_eq!(render("{{c.index('b')}}", doc.clone()).unwrap(), "1");
        assert_eq!(
            render("{{q | regex_replace('(H)i', '\\\\1o')}}", doc.clone()).unwrap(),
            "Ho "
        );
        assert!(render("{{missing}}", doc)
            .unwrap_err()
            .contains("undefined"));
    }
}
