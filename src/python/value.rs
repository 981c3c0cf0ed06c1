//! Python's view of JSON values: `str()`/`repr()` formatting and
//! `ast.literal_eval`.
//!
//! lm-eval renders Jinja templates with Python objects and then parses some
//! results back with `ast.literal_eval` (choice lists, digit strings, target
//! lists). To produce byte-identical prompts assay must print values exactly
//! as Python does (`True`, `None`, `['a', 'b']`, `1.0`, `1e-05`) and parse
//! the same literals.

use serde_json::{Map, Number, Value};

/// Python's `str(value)`.
pub fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr(value)`.
pub fn py_repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(value, &mut out);
    out
}

fn write_repr(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&number_repr(n)),
        Value::String(s) => out.push_str(&string_repr(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&string_repr(k));
                out.push_str(": ");
                write_repr(v, out);
            }
            out.push('}');
        }
    }
}

fn number_repr(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    float_repr(n.as_f64().unwrap_or(f64::NAN))
}

/// Python's `repr(float)`: the shortest round-tripping digits, in fixed
/// notation for exponents in [-4, 16), else scientific with a signed,
/// at-least-two-digit exponent.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("LowerExp has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let frac = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.clone()
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{frac}e{esign}{:02}", exp.abs())
    }
}

/// Python's `repr(str)`.
pub fn string_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if (0x80..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isdigit()` (ASCII and Unicode decimal digits; empty is false).
pub fn is_digit_string(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// Python's `ast.literal_eval` for the literals lm-eval configs produce:
/// strings, numbers, booleans, None, lists, tuples (as lists) and dicts.
pub fn literal_eval(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        src: text,
        i: 0,
    };
    p.ws();
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!(
            "unexpected text after the literal at offset {}",
            p.i
        ));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            None => Err("empty literal".into()),
            Some(b'[') => self.sequence(b']').map(Value::Array),
            Some(b'(') => self.sequence(b')').map(Value::Array),
            Some(b'{') => self.dict(),
            Some(b'\'' | b'"') => {
                let mut s = self.string()?;
                // Adjacent string literals concatenate.
                loop {
                    let save = self.i;
                    self.ws();
                    if matches!(self.peek(), Some(b'\'' | b'"')) {
                        s.push_str(&self.string()?);
                    } else {
                        self.i = save;
                        break;
                    }
                }
                Ok(Value::String(s))
            }
            Some(c) if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_digit() => self.number(),
            Some(_) => {
                for (word, v) in [
                    ("True", Value::Bool(true)),
                    ("False", Value::Bool(false)),
                    ("None", Value::Null),
                ] {
                    if self.src[self.i..].starts_with(word) {
                        self.i += word.len();
                        return Ok(v);
                    }
                }
                Err(format!("not a Python literal at offset {}", self.i))
            }
        }
    }

    fn sequence(&mut self, close: u8) -> Result<Vec<Value>, String> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok(items);
            }
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {}
                _ => {
                    return Err(format!(
                        "expected `,` or `{}` at offset {}",
                        close as char, self.i
                    ))
                }
            }
        }
    }

    fn dict(&mut self) -> Result<Value, String> {
        self.i += 1;
        let mut map = Map::new();
        loop {
            self.ws();
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(Value::Object(map));
            }
            let key = self.value()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(format!("expected `:` at offset {}", self.i));
            }
            self.i += 1;
            self.ws();
            let v = self.value()?;
            map.insert(py_str(&key), v);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected `,` or `}}` at offset {}", self.i)),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.s[self.i];
        let triple = self.s[self.i..].starts_with(&[quote; 3]);
        self.i += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let rest = &self.src[self.i..];
            let mut chars = rest.chars();
            let Some(c) = chars.next() else {
                return Err("unterminated string literal".into());
            };
            if c as u32 == quote as u32 {
                if !triple {
                    self.i += 1;
                    return Ok(out);
                }
                if rest.as_bytes().starts_with(&[quote; 3]) {
                    self.i += 3;
                    return Ok(out);
                }
            }
            if c == '\\' {
                let Some(e) = chars.next() else {
                    return Err("unterminated escape".into());
                };
                self.i += 1 + e.len_utf8();
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '0' => out.push('\0'),
                    '\\' => out.push('\\'),
                    '\'' => out.push('\''),
                    '"' => out.push('"'),
                    '\n' => {}
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex = self.src.get(self.i..self.i + n).ok_or("truncated escape")?;
                        let code = u32::from_str_radix(hex, 16).map_err(|_| "bad escape")?;
                        out.push(char::from_u32(code).ok_or("bad escape")?);
                        self.i += n;
                    }
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
                continue;
            }
            if c == '\n' && !triple {
                return Err("newline inside a string literal".into());
            }
            out.push(c);
            self.i += c.len_utf8();
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.i += 1;
            self.ws();
        }
        let body_start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric()
                || matches!(self.s[self.i], b'.' | b'_' | b'+' | b'-'))
        {
            if matches!(self.s[self.i], b'+' | b'-') && !matches!(self.s[self.i - 1], b'e' | b'E') {
                break;
            }
            self.i += 1;
        }
        let negative = self.s[start] == b'-';
        let body: String = self.src[body_start..self.i]
            .chars()
            .filter(|c| *c != '_')
            .collect();
        if let Ok(i) = body.parse::<i64>() {
            return Ok(Value::from(if negative { -i } else { i }));
        }
        if let Ok(f) = body.parse::<f64>() {
            let f = if negative { -f } else { f };
            return Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| "non-finite number".into());
        }
        Err(format!("not a number: `{}`", &self.src[start..self.i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_like_python() {
        assert_eq!(
            py_repr(&json!(["a", 1, 2.5, true, null])),
            "['a', 1, 2.5, True, None]"
        );
        assert_eq!(py_str(&json!("it's")), "it's");
        assert_eq!(py_repr(&json!("it's")), "\"it's\"");
        assert_eq!(py_repr(&json!({"k": [1.0]})), "{'k': [1.0]}");
        for (x, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e-5, "1e-05"),
            (123456.789, "123456.789"),
            (0.0001, "0.0001"),
            (-2.5e-7, "-2.5e-07"),
            (1e15, "1000000000000000.0"),
        ] {
            assert_eq!(float_repr(x), s);
        }
    }

    #[test]
    fn literal_eval_round_trips() {
        assert_eq!(
            literal_eval("['a', \"b\", 3, -4.5, (1, 2), None]").unwrap(),
            json!(["a", "b", 3, -4.5, [1, 2], null])
        );
        assert_eq!(literal_eval("{'x': 'y\\n'}").unwrap(), json!({"x": "y\n"}));
        assert_eq!(literal_eval("  12 ").unwrap(), json!(12));
        assert!(literal_eval("[1, 2").is_err());
        assert!(literal_eval("foo").is_err());
    }
}
