//! Python `re` semantics on top of fancy-regex, for the patterns task configs
//! carry (filter `regex_pattern`s, exact_match `regexes_to_ignore`).
//!
//! Task YAML is written against Python's `re`, so a pattern is first rewritten
//! where the two dialects disagree (`$` also matching before a final newline,
//! `\Z`, `\w`/`\b`/`\s` character sets, a `{` that is not a quantifier, `[`
//! inside a class, `(?P=name)`), and `findall`/`sub` walk matches the way
//! CPython's `_sre` does, which differs from Rust's iterators around empty
//! matches. One known gap: after an empty match CPython may backtrack into a
//! non-empty match at the same position (lazy or empty-first alternatives);
//! here the search moves on one character instead.

use std::sync::OnceLock;

use fancy_regex::{Captures, Regex};

/// A pattern Python's `re` accepts that cannot be compiled or run here.
#[derive(Debug, thiserror::Error)]
pub enum RegexError {
    #[error("invalid regular expression {pattern:?}: {reason}")]
    Invalid { pattern: String, reason: String },
    #[error("regular expression {pattern:?} could not be evaluated on a response: {source}")]
    Runtime {
        pattern: String,
        #[source]
        source: Box<fancy_regex::Error>,
    },
}

/// A compiled Python regular expression.
#[derive(Debug, Clone)]
pub(crate) struct PyRegex {
    source: String,
    regex: Regex,
    groups: usize,
}

/// One element of `re.findall`'s result: the whole match or the single group
/// when the pattern has at most one group, a tuple when it has several.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Found {
    Text(String),
    Tuple(Vec<String>),
}

impl PyRegex {
    pub fn new(pattern: &str) -> Result<PyRegex, RegexError> {
        PyRegex::compile(pattern, &translate(pattern)?)
    }

    /// Matches any of `alternatives` literally, preferring earlier ones:
    /// `"|".join(map(re.escape, alternatives))`.
    pub fn literal_alternation(alternatives: &[&str]) -> Result<PyRegex, RegexError> {
        let escaped: Vec<String> = alternatives
            .iter()
            .map(|a| fancy_regex::escape(a).into_owned())
            .collect();
        PyRegex::untranslated(&escaped.join("|"))
    }

    /// Any character of a Unicode punctuation category (P*): what the
    /// multi-choice filter removes for `ignore_punctuation`.
    pub fn unicode_punctuation() -> &'static PyRegex {
        static PUNCTUATION: OnceLock<PyRegex> = OnceLock::new();
        PUNCTUATION
            .get_or_init(|| PyRegex::untranslated(r"\p{P}+").expect("a valid constant pattern"))
    }

    /// A pattern already in fancy-regex syntax.
    fn untranslated(pattern: &str) -> Result<PyRegex, RegexError> {
        PyRegex::compile(pattern, pattern)
    }

    /// Compiles `translated`; errors name `source`, the pattern the user wrote.
    fn compile(source: &str, translated: &str) -> Result<PyRegex, RegexError> {
        let regex = Regex::new(translated).map_err(|e| RegexError::Invalid {
            pattern: source.to_string(),
            reason: e.to_string(),
        })?;
        let groups = regex.captures_len().saturating_sub(1);
        Ok(PyRegex {
            source: source.to_string(),
            regex,
            groups,
        })
    }

    /// The number of capturing groups (`re.compile(pattern).groups`).
    pub fn group_count(&self) -> usize {
        self.groups
    }

    /// `re.findall(pattern, text)`.
    pub fn findall(&self, text: &str) -> Result<Vec<Found>, RegexError> {
        let mut found = Vec::new();
        self.each_match(text, |caps| {
            let group = |i: usize| caps.get(i).map_or("", |m| m.as_str()).to_string();
            found.push(match self.groups {
                0 => Found::Text(group(0)),
                1 => Found::Text(group(1)),
                n => Found::Tuple((1..=n).map(group).collect()),
            });
        })?;
        Ok(found)
    }

    /// `re.sub(pattern, "", text)`.
    pub fn remove_all(&self, text: &str) -> Result<String, RegexError> {
        let mut kept = String::with_capacity(text.len());
        let mut last = 0;
        self.each_match(text, |caps| {
            let m = caps.get(0).expect("group 0 is always present");
            kept.push_str(&text[last..m.start()]);
            last = m.end();
        })?;
        kept.push_str(&text[last..]);
        Ok(kept)
    }

    /// Visits matches left to right as CPython's `findall`/`sub` loop does: an
    /// empty match may sit right after a non-empty one, but the search after an
    /// empty match must not stop at the same place again.
    fn each_match(
        &self,
        text: &str,
        mut visit: impl FnMut(&Captures<'_>),
    ) -> Result<(), RegexError> {
        let mut start = 0;
        let mut must_advance = false;
        while start <= text.len() {
            let Some(mut caps) = self.captures_from(text, start)? else {
                break;
            };
            let mut whole = caps.get(0).expect("group 0 is always present");
            if must_advance && whole.start() == start && whole.end() == start {
                let Some(next) = text[start..].chars().next().map(|c| start + c.len_utf8()) else {
                    break;
                };
                caps = match self.captures_from(text, next)? {
                    Some(caps) => caps,
                    None => break,
                };
                whole = caps.get(0).expect("group 0 is always present");
            }
            visit(&caps);
            must_advance = whole.start() == whole.end();
            start = whole.end();
        }
        Ok(())
    }

    fn captures_from<'t>(
        &self,
        text: &'t str,
        pos: usize,
    ) -> Result<Option<Captures<'t>>, RegexError> {
        self.regex
            .captures_from_pos(text, pos)
            .map_err(|e| RegexError::Runtime {
                pattern: self.source.clone(),
                source: Box::new(e),
            })
    }
}

/// `re.escape`'s output length in characters: CPython escapes exactly these
/// characters. The multi-choice filter orders its alternatives by it.
pub fn python_escaped_len(text: &str) -> usize {
    const SPECIAL: &str = "()[]{}?*+-|^$\\.&~# \t\n\r\x0b\x0c";
    text.chars()
        .map(|c| if SPECIAL.contains(c) { 2 } else { 1 })
        .sum()
}

/// Python's `\w` for `str` patterns: `str.isalnum()` or `_`.
const WORD: &str = r"\p{L}\p{N}_";
const ASCII_WORD: &str = "a-zA-Z0-9_";
/// Python's `\s` for `str` patterns: `str.isspace()`, which adds the
/// information separators U+001C..U+001F to Unicode's White_Space.
const SPACE: &str = r"\s\x1C-\x1F";
const ASCII_SPACE: &str = r" \t\n\r\x0B\x0C";

/// Rewrites a Python pattern into the fancy-regex dialect.
fn translate(pattern: &str) -> Result<String, RegexError> {
    let invalid = |reason: String| RegexError::Invalid {
        pattern: pattern.to_string(),
        reason,
    };
    let chars: Vec<char> = pattern.chars().collect();
    let flags = leading_flags(&chars);
    if flags.contains('L') {
        return Err(invalid(
            "the LOCALE flag (?L) only applies to bytes patterns".into(),
        ));
    }
    let ascii = flags.contains('a');
    let multiline = flags.contains('m');
    let (word, space) = if ascii {
        (ASCII_WORD, ASCII_SPACE)
    } else {
        (WORD, SPACE)
    };
    let boundary = format!("(?:(?<![{word}])(?=[{word}])|(?<=[{word}])(?![{word}]))");
    let non_boundary = format!("(?:(?<![{word}])(?![{word}])|(?<=[{word}])(?=[{word}]))");

    let mut out = String::with_capacity(pattern.len() + 16);
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&e) = chars.get(i + 1) else {
                return Err(invalid("the pattern ends with a lone backslash".into()));
            };
            i += 2;
            if e.is_ascii_digit() {
                let (text, used) = digit_escape(&chars[i - 1..], in_class);
                out.push_str(&text);
                i += used - 1;
                continue;
            }
            match (e, in_class) {
                ('N', _) => {
                    return Err(invalid(
                        "named Unicode escapes (\\N{...}) are not supported; write the character itself".into(),
                    ))
                }
                ('b', true) => out.push_str(r"\x08"),
                ('w', true) => out.push_str(word),
                ('W', true) => out.push_str(&format!("[^{word}]")),
                ('s', true) => out.push_str(space),
                ('S', true) => out.push_str(&format!("[^{space}]")),
                ('d', true) if ascii => out.push_str("0-9"),
                ('D', true) if ascii => out.push_str("[^0-9]"),
                ('Z', false) => out.push_str(r"\z"),
                ('b', false) => out.push_str(&boundary),
                ('B', false) => out.push_str(&non_boundary),
                ('w', false) => out.push_str(&format!("[{word}]")),
                ('W', false) => out.push_str(&format!("[^{word}]")),
                ('s', false) => out.push_str(&format!("[{space}]")),
                ('S', false) => out.push_str(&format!("[^{space}]")),
                ('d', false) if ascii => out.push_str("[0-9]"),
                ('D', false) if ascii => out.push_str("[^0-9]"),
                _ => {
                    out.push('\\');
                    out.push(e);
                }
            }
            continue;
        }
        if in_class {
            match c {
                ']' => {
                    in_class = false;
                    out.push(']');
                }
                // Rust reads these as nested classes and set operators.
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A `]` first in a class is a literal in Python.
                if chars.get(i) == Some(&']') {
                    out.push_str(r"\]");
                    i += 1;
                }
            }
            '$' if !multiline => {
                out.push_str(r"(?:\z|(?=\n\z))");
                i += 1;
            }
            '{' => {
                let (text, used) = brace(&chars[i..]);
                out.push_str(&text);
                i += used;
            }
            '}' => {
                out.push_str(r"\}");
                i += 1;
            }
            '(' if chars.get(i + 1) == Some(&'?') => {
                let rest: String = chars[i..].iter().take(4).collect();
                if rest.starts_with("(?P=") {
                    let close = chars[i..]
                        .iter()
                        .position(|&c| c == ')')
                        .ok_or_else(|| invalid("unterminated (?P=name)".into()))?;
                    let name: String = chars[i + 4..i + close].iter().collect();
                    out.push_str(&format!(r"\k<{name}>"));
                    i += close + 1;
                } else if rest.starts_with("(?#") {
                    let close = chars[i..]
                        .iter()
                        .position(|&c| c == ')')
                        .ok_or_else(|| invalid("unterminated comment (?#...)".into()))?;
                    i += close + 1;
                } else {
                    out.push_str("(?");
                    i += 2;
                    // Python's `u` flag is the default for str patterns and `a`
                    // is handled by the character sets above.
                    while let Some(&f) = chars.get(i) {
                        if f == 'u' || f == 'a' {
                            i += 1;
                        } else if f.is_ascii_alphabetic() || f == '-' {
                            out.push(f);
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    if out.ends_with("(?") && chars.get(i) == Some(&')') {
                        // `(?a)` or `(?u)` alone: nothing left to say.
                        out.truncate(out.len() - 2);
                        i += 1;
                    }
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The global flags of `(?aimsux)` at the start of a pattern (Python 3.11
/// accepts global flags only there).
fn leading_flags(chars: &[char]) -> String {
    let mut flags = String::new();
    let mut i = 0;
    while chars.get(i) == Some(&'(') && chars.get(i + 1) == Some(&'?') {
        let mut j = i + 2;
        let mut these = String::new();
        while let Some(&f) = chars.get(j) {
            if "aiLmsux".contains(f) {
                these.push(f);
                j += 1;
            } else {
                break;
            }
        }
        if chars.get(j) != Some(&')') || these.is_empty() {
            break;
        }
        flags.push_str(&these);
        i = j + 1;
    }
    flags
}

/// A backslash followed by a digit (`chars` starts at the digit): Python reads
/// `\0`, `\0nn` and three octal digits as an octal character, anything else
/// outside a class as a group reference. Returns the rewrite and the number of
/// characters used.
fn digit_escape(chars: &[char], in_class: bool) -> (String, usize) {
    let octal = |c: Option<&char>| c.is_some_and(|c| ('0'..='7').contains(c));
    let take_octal = |n: usize| {
        let digits: String = chars[..n].iter().collect();
        let value = u32::from_str_radix(&digits, 8).unwrap_or(0);
        (format!("\\x{{{value:X}}}"), n)
    };
    if chars[0] == '0' {
        let n = 1 + (1..3).take_while(|&k| octal(chars.get(k))).count();
        return take_octal(n);
    }
    if octal(chars.first()) && octal(chars.get(1)) && octal(chars.get(2)) {
        return take_octal(3);
    }
    if in_class {
        // Inside a class Python reads up to three octal digits and rejects 8, 9.
        let n = (0..3).take_while(|&k| octal(chars.get(k))).count();
        if n == 0 {
            return (format!("\\{}", chars[0]), 1);
        }
        return take_octal(n);
    }
    let n = if chars.get(1).is_some_and(char::is_ascii_digit) {
        2
    } else {
        1
    };
    let digits: String = chars[..n].iter().collect();
    (format!("\\{digits}"), n)
}

/// A `{` outside a class (`chars` starts at it): a quantifier when Python's
/// parser reads `{m}`, `{m,}`, `{,n}` or `{m,n}`, else a literal brace.
fn brace(chars: &[char]) -> (String, usize) {
    let mut j = 1;
    let lo: String = chars[j..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    j += lo.len();
    let mut hi = None;
    if chars.get(j) == Some(&',') {
        j += 1;
        let digits: String = chars[j..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        j += digits.len();
        hi = Some(digits);
    }
    if chars.get(j) != Some(&'}') || (lo.is_empty() && hi.is_none()) {
        return (r"\{".to_string(), 1);
    }
    let lo = if lo.is_empty() { "0".to_string() } else { lo };
    let text = match hi {
        None => format!("{{{lo}}}"),
        Some(hi) => format!("{{{lo},{hi}}}"),
    };
    (text, j + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(found: Vec<Found>) -> Vec<Vec<String>> {
        found
            .into_iter()
            .map(|f| match f {
                Found::Text(t) => vec![t],
                Found::Tuple(t) => t,
            })
            .collect()
    }

    /// Expected values are `re.findall(pattern, text)` from CPython 3.11, one
    /// inner slice per element (a tuple's items, or the single string).
    #[test]
    fn findall_matches_cpython() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, &[&[&str]])] = &[
            ("#### (\\-?[0-9\\.\\,]+)", "so 3+4=7\n#### 7\n#### -1,234.5", &[&["7"], &["-1,234.5"]]),
            ("(-?[$0-9.,]{2,})|(-?[0-9]+)", "I have 5 apples and $12.50, total 17.", &[&["", "5"], &["$12.50,", ""], &["17.", ""]]),
            ("The answer is (\\-?[0-9\\.\\,]*[0-9]+)", "The answer is 42. The answer is -3.5", &[&["42"], &["-3.5"]]),
            ("(\\([A-Z]\\))", "I think (B) or maybe (C).", &[&["(B)"], &["(C)"]]),
            ("((?<=The answer is )(.*)(?=.)|(?<=the answer is )(.*)(?=.))", "So the answer is Paris.", &[&["Paris", "", "Paris"]]),
            ("\\b(Yes|No|yes|no)\\b", "Yes, no. Nope yesterday", &[&["Yes"], &["no"]]),
            ("(\\b[ABCD]\\b)", "Answer: B. AB C", &[&["B"], &["C"]]),
            ("(?=(female|woman|man|male))", "the woman and the male man", &[&["woman"], &["man"], &["male"], &["man"]]),
            ("^\\s*([A-D])", "  C is right", &[&["C"]]),
            ("(?<= )([\\\" \\[\\(<{}>\\)\\]]+)|([\\\" \\[\\(<{}>\\)\\]]+)", "( [ ] ) < {", &[&["", "( [ ] ) < {"]]),
            ("a*", "baaac", &[&[""], &["aaa"], &[""], &[""]]),
            ("x*", "axbxx", &[&[""], &["x"], &[""], &["xx"], &[""]]),
            ("\\d+$", "12 34\n", &[&["34"]]),
            ("\\d+$", "12 34\n\n", &[]),
            ("\\d+\\Z", "12 34\n", &[]),
            ("(?m)^\\d+$", "12\n34\n", &[&["12"], &["34"]]),
            ("a{,2}", "aaaa", &[&["aa"], &["aa"], &[""]]),
            ("a{", "a{b", &[&["a{"]]),
            ("{x}", "{x}", &[&["{x}"]]),
            ("[[]", "a[b", &[&["["]]),
            ("[a&&b]", "&ab", &[&["&"], &["a"], &["b"]]),
            ("[]a]+", "]a]b", &[&["]a]"]]),
            ("\\w+", "héllo wörld_1 ²³ e\u{301}té", &[&["héllo"], &["wörld_1"], &["²³"], &["e"], &["té"]]),
            ("\\b\\w+\\b", "e\u{301}te co\u{2040}op", &[&["e"], &["te"], &["co"], &["op"]]),
            ("\\s+", "a\u{1c}b \u{a0}c\u{85}d", &[&["\u{1c}"], &[" \u{a0}"], &["\u{85}"]]),
            ("(?a)\\w+", "héllo", &[&["h"], &["llo"]]),
            ("(?P<q>['\\\"]).*?(?P=q)", "say 'hi' and \"bye\"", &[&["'"], &["\""]]),
            ("(a)|(b)", "ab", &[&["a", ""], &["", "b"]]),
            ("(a)(x)?", "a", &[&["a", ""]]),
            ("\\101\\x42", "AB", &[&["AB"]]),
            ("[\\101-\\103]+", "ABCD", &[&["ABC"]]),
            ("(?#comment)ab", "abab", &[&["ab"], &["ab"]]),
            ("(?i)yes", "YES yes", &[&["YES"], &["yes"]]),
            ("[\\s,]+", "a, b ,c", &[&[", "], &[" ,"]]),
            ("\\W+", "a, b", &[&[", "]]),
            ("", "ab", &[&[""], &[""], &[""]]),
            ("\\B", "ab c", &[&[""]]),
            ("答案是 (\\-?[0-9\\.\\,]+)。", "答案是 42。", &[&["42"]]),
            ("(-?[0-9]+([ .,][0-9.,]+)?)", "costs 1 000,50 or 7", &[&["1 000,50", " 000,50"], &["7", ""]]),
            ("(?<=\\bfoo)bar", "foobar xfoobar", &[&["bar"]]),
            ("\\bfoo$", "a foo", &[&["foo"]]),
            ("[^\\W\\d]+", "ab12cd_3é", &[&["ab"], &["cd_"], &["é"]]),
            ("[\\w.]+@[\\w.]+", "mail a.b@c.d now", &[&["a.b@c.d"]]),
            ("(?s)answer:(.*)$", "answer: a\nb\n", &[&[" a\nb\n"]]),
            ("(?i)\\bANSWER\\b:\\s*(\\w+)", "The answer: Paris", &[&["Paris"]]),
            ("(\\d+)(?:st|nd|rd|th)\\b", "1st 22nd 3x", &[&["1"], &["22"]]),
            ("a|", "bab", &[&[""], &["a"], &[""], &[""]]),
            ("(?x) \\d+ \\s* [a-z]+  # trailing", "12 ab 3cd", &[&["12 ab"], &["3cd"]]),
            ("\\$(\\d+)", "$12 and $7", &[&["12"], &["7"]]),
            ("[\\]]+", "a]]b", &[&["]]"]]),
            ("\\S+", "a\u{1c}b c", &[&["a"], &["b"], &["c"]]),
        ];
        for (pattern, text, expected) in cases {
            let re = PyRegex::new(pattern).unwrap_or_else(|e| panic!("{pattern:?}: {e}"));
            let got = parts(re.findall(text).unwrap());
            assert_eq!(got, *expected, "pattern {pattern:?} on {text:?}");
        }
    }

    #[test]
    fn remove_all_matches_cpython_sub() {
        // re.sub(r"\s+|,", "", " 1, 234 \n") == "1234"
        let re = PyRegex::new(r"\s+|,").unwrap();
        assert_eq!(re.remove_all(" 1, 234 \n").unwrap(), "1234");
        // re.sub(r"a*", "", "baaac") == "bc"
        let re = PyRegex::new("a*").unwrap();
        assert_eq!(re.remove_all("baaac").unwrap(), "bc");
    }

    #[test]
    fn invalid_pattern_names_the_pattern() {
        let err = PyRegex::new("(unclosed").unwrap_err().to_string();
        assert!(err.contains("(unclosed"), "{err}");
    }

    #[test]
    fn escaped_length_counts_python_escapes() {
        // len(re.escape("a b.c(d)")) == 12
        assert_eq!(python_escaped_len("a b.c(d)"), 12);
        // len(re.escape("Guilty")) == 6
        assert_eq!(python_escaped_len("Guilty"), 6);
    }
}
