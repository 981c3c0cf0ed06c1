//! The Python `str` behaviours that Rust's standard library spells
//! differently: `str.isspace()` and `str.strip()`'s idea of whitespace, and
//! `str(value)` of a JSON scalar from a task config.

use serde_json::Value;

/// `str.isspace()`: Unicode White_Space plus the information separators
/// U+001C..U+001F, which Python counts and Rust's `char::is_whitespace` does
/// not.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `s.strip()`.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// `str(v)` for a JSON scalar as Python's YAML loader would have produced it
/// (`True`, `None`, `1.0`, `1e-05`); `None` for arrays and objects.
pub fn python_str(value: &Value) -> Option<String> {
    match value {
        Value::Array(_) | Value::Object(_) => None,
        scalar => Some(super::value::py_str(scalar)),
    }
}

/// Python's `str.capitalize()`: the first character in title case, the
/// rest in lower case.
pub fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out = match first {
        'ǆ' | 'ǅ' | 'Ǆ' => "ǅ".to_string(),
        'ǉ' | 'ǈ' | 'Ǉ' => "ǈ".to_string(),
        'ǌ' | 'ǋ' | 'Ǌ' => "ǋ".to_string(),
        'ǳ' | 'ǲ' | 'Ǳ' => "ǲ".to_string(),
        'ß' => "Ss".to_string(),
        c => c.to_uppercase().collect(),
    };
    out.push_str(&chars.as_str().to_lowercase());
    out
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

    #[test]
    fn python_capitalize_lowers_the_rest() {
        assert_eq!(capitalize("tHE cAT"), "The cat");
        assert_eq!(capitalize("ǆungla"), "ǅungla");
        assert_eq!(capitalize(""), "");
    }
}
