//! The few Python `str` behaviours that filters and metrics depend on and
//! that Rust's standard library spells differently: `str.strip()`'s idea of
//! whitespace, and `str(value)` of a JSON scalar from a task config.

use serde_json::Value;

/// `str.isspace()`: Unicode White_Space plus the information separators
/// U+001C..U+001F, which Python counts and Rust's `char::is_whitespace` does
/// not.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `s.strip()`.
pub(crate) fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// `str(v)` for a JSON scalar as Python's YAML loader would have produced it
/// (`True`, `None`, `1.0`, `1e-05`); `None` for arrays and objects.
pub(crate) fn python_str(value: &Value) -> Option<String> {
    Some(match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Null => "None".to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => float_repr(f),
            _ => n.to_string(),
        },
        Value::Array(_) | Value::Object(_) => return None,
    })
}

/// `repr(float)`: the shortest round-tripping digits, in positional notation
/// for decimal exponents -4..16 and scientific (`1e-05`, `1.5e+16`) outside.
fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    // Rust's `{:e}` gives the same shortest digits: "-1.2345e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strip_counts_python_whitespace() {
        // " \x1c\xa0a b\x85\u3000\n".strip() == "a b"
        assert_eq!(strip(" \u{1c}\u{a0}a b\u{85}\u{3000}\n"), "a b");
    }

    #[test]
    fn str_of_scalars_is_pythons() {
        // [str(v) for v in (0, -1, 1.0, 1e-05, 1.5e16, 123456789.125, 0.0001, True, None, "A")]
        let cases = [
            (json!(0), "0"),
            (json!(-1), "-1"),
            (json!(1.0), "1.0"),
            (json!(1e-05), "1e-05"),
            (json!(1.5e16), "1.5e+16"),
            (json!(123456789.125), "123456789.125"),
            (json!(0.0001), "0.0001"),
            (json!(-2.5), "-2.5"),
            (json!(1e16), "1e+16"),
            (json!(true), "True"),
            (json!(null), "None"),
            (json!("A"), "A"),
        ];
        for (value, expected) in cases {
            assert_eq!(python_str(&value).unwrap(), expected, "{value}");
        }
        assert!(python_str(&json!([1])).is_none());
    }
}
