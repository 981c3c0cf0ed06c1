//! Native ports of the Python functions lm-eval's standard tasks call
//! (`!function module.name`).
//!
//! A reference resolves in one of two ways:
//! - `<module>.py` exists beside the YAML (lm-eval's own task folders): the
//!   named function, and the helpers it calls, are read from that file and
//!   fingerprinted; the reference resolves to the port written for exactly
//!   that source. A file that differs from every ported version is refused,
//!   because assay cannot know what the changed Python does.
//! - No such file (assay's own configs in `tasks/`): the reference is a
//!   port's canonical name, e.g. `hellaswag.process_docs`.
//!
//! A reference that resolves to nothing keeps the task engine's clear
//! `!function` error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use super::config::Hook;
use crate::data::Doc;
use crate::metric::numpy_sum;
use crate::metric::ItemValue;
use crate::python::text::strip;

/// Per-document metric values, by metric name.
pub type MetricValues = Vec<(String, ItemValue)>;

/// A `process_results` port: the document and its requests' (log-likelihood,
/// is-greedy) pairs in, metric values out.
pub type ResultsFn = fn(&Doc, &[(f64, bool)]) -> Result<MetricValues, String>;

/// What a port computes, by the hook field it stands in for.
#[derive(Clone, Copy)]
pub enum Native {
    /// `process_docs`: the documents of a split, transformed or filtered.
    Docs(fn(Vec<Doc>) -> Result<Vec<Doc>, String>),
    /// `doc_to_text`, `doc_to_target` or `doc_to_choice`.
    Value(fn(&Doc) -> Result<Value, String>),
    /// `process_results`: per-document metric values from the (log-likelihood,
    /// is-greedy) pairs of its requests.
    Results(ResultsFn),
    /// `process_results` of a generation task: metric values from the
    /// filtered responses.
    Generated(fn(&Doc, &[String]) -> Result<MetricValues, String>),
}

/// One native port.
pub struct Port {
    /// The name assay's own configs use: `<family>.<function>`.
    pub canonical: &'static str,
    /// The Python function it replaces, and the file (in lm-eval's task
    /// folder) that defines it.
    pub function: &'static str,
    pub file: &'static str,
    /// Functions of the same module that `function` calls (part of the
    /// fingerprint).
    pub helpers: &'static [&'static str],
    /// Fingerprints of the Python sources this port was written for (see
    /// [`fingerprint`]): lm-eval 0.4.13.
    pub fingerprints: &'static [&'static str],
    pub native: Native,
    /// For `process_results` ports: the metrics it gives values for.
    pub metrics: &'static [&'static str],
}

/// Why a hook reference did not resolve.
#[derive(Debug, Clone, PartialEq)]
pub enum Unresolved {
    /// No port has this function's name or canonical name.
    NoPort,
    /// The file is the one a port was written for (same folder and file
    /// name), but its source differs from every version the port knows.
    Differs { file: PathBuf, fingerprint: String },
}

pub const PORTS: &[Port] = &[
    Port {
        canonical: "hellaswag.process_docs",
        function: "process_docs",
        file: "hellaswag/utils.py",
        helpers: &["preprocess"],
        fingerprints: &["d3f56cdf97d3038f"],
        native: Native::Docs(hellaswag_process_docs),
        metrics: &[],
    },
    Port {
        canonical: "winogrande.doc_to_text",
        function: "doc_to_text",
        file: "winogrande/preprocess_winogrande.py",
        helpers: &[],
        fingerprints: &["93c874dac5496b8a"],
        native: Native::Value(winogrande_doc_to_text),
        metrics: &[],
    },
    Port {
        canonical: "winogrande.doc_to_target",
        function: "doc_to_target",
        file: "winogrande/preprocess_winogrande.py",
        helpers: &[],
        fingerprints: &["f0a04b279765c4ec"],
        native: Native::Value(winogrande_doc_to_target),
        metrics: &[],
    },
    Port {
        canonical: "winogrande.doc_to_choice",
        function: "doc_to_choice",
        file: "winogrande/preprocess_winogrande.py",
        helpers: &[],
        fingerprints: &["617aa76bb07e9dfc"],
        native: Native::Value(winogrande_doc_to_choice),
        metrics: &[],
    },
    Port {
        canonical: "truthfulqa.process_results_mc2",
        function: "process_results_mc2",
        file: "truthfulqa/utils.py",
        helpers: &[],
        fingerprints: &["10dedb9cf1401ce2"],
        native: Native::Results(truthfulqa_process_results_mc2),
        metrics: &["acc"],
    },
    Port {
        canonical: "truthfulqa.process_docs_gen",
        function: "process_docs_gen",
        file: "truthfulqa/utils.py",
        helpers: &["preprocess_function"],
        fingerprints: &["53975b5b077d376c"],
        native: Native::Docs(truthfulqa_process_docs_gen),
        metrics: &[],
    },
    Port {
        canonical: "truthfulqa.process_results_gen",
        function: "process_results_gen",
        file: "truthfulqa/utils.py",
        helpers: &["bleu", "rouge"],
        fingerprints: &["eb4994f666385ece"],
        native: Native::Generated(truthfulqa_process_results_gen),
        metrics: &[
            "bleu_max",
            "bleu_acc",
            "bleu_diff",
            "rouge1_max",
            "rouge1_acc",
            "rouge1_diff",
            "rouge2_max",
            "rouge2_acc",
            "rouge2_diff",
            "rougeL_max",
            "rougeL_acc",
            "rougeL_diff",
        ],
    },
    Port {
        canonical: "wikitext.detokenize",
        function: "wikitext_detokenizer",
        file: "wikitext/preprocess_wikitext.py",
        helpers: &[],
        fingerprints: &["d8792e4f859324b2"],
        native: Native::Value(wikitext_detokenize),
        metrics: &[],
    },
    Port {
        canonical: "wikitext.process_results",
        function: "process_results",
        file: "wikitext/preprocess_wikitext.py",
        helpers: &[],
        fingerprints: &["8862a64a19f8d6e7"],
        native: Native::Results(wikitext_process_results),
        metrics: &["word_perplexity", "byte_perplexity", "bits_per_byte"],
    },
    Port {
        canonical: "bigbench.filter_multiple_choice",
        function: "filter_multiple_choice",
        file: "bigbench/utils.py",
        helpers: &[],
        fingerprints: &["0da5ad2165e2c22d"],
        native: Native::Docs(bigbench_filter_multiple_choice),
        metrics: &[],
    },
];

/// Resolves a `!function` reference to its port (cached per file and name).
pub fn resolve(hook: &Hook) -> Result<&'static Port, Unresolved> {
    type Key = (PathBuf, String);
    static CACHE: OnceLock<Mutex<HashMap<Key, Result<usize, Unresolved>>>> = OnceLock::new();
    let key = (hook.folder.clone(), hook.function.clone());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(found) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return found.map(|i| &PORTS[i]);
    }
    let found = resolve_uncached(&hook.folder, &hook.function);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, found.clone());
    }
    found.map(|i| &PORTS[i])
}

fn resolve_uncached(folder: &Path, reference: &str) -> Result<usize, Unresolved> {
    let Some((module, function)) = reference.rsplit_once('.') else {
        return Err(Unresolved::NoPort);
    };
    let file = folder.join(format!("{}.py", module.replace('.', "/")));
    match std::fs::read_to_string(&file) {
        Ok(source) => {
            let mut last = None;
            let same_file = |p: &Port| {
                let mut parts = p.file.rsplitn(2, '/');
                let name = parts.next().unwrap_or("");
                let dir = parts.next().unwrap_or("");
                file.file_name().is_some_and(|f| f == name)
                    && file
                        .parent()
                        .and_then(Path::file_name)
                        .is_some_and(|d| d == dir)
            };
            for (i, port) in PORTS
                .iter()
                .enumerate()
                .filter(|(_, p)| p.function == function)
            {
                let names: Vec<&str> = std::iter::once(port.function)
                    .chain(port.helpers.iter().copied())
                    .collect();
                let print = fingerprint(&source, &names);
                if port.fingerprints.contains(&print.as_str()) {
                    return Ok(i);
                }
                if same_file(port) {
                    last = Some(print);
                }
            }
            match last {
                Some(fingerprint) => Err(Unresolved::Differs { file, fingerprint }),
                None => Err(Unresolved::NoPort),
            }
        }
        Err(_) => PORTS
            .iter()
            .position(|p| p.canonical == reference)
            .ok_or(Unresolved::NoPort),
    }
}

/// A fingerprint of the named top-level functions of a Python module: the
/// first 16 hex digits of the SHA-256 of their source, with blank lines,
/// whole-line comments and trailing spaces removed ("missing" for a
/// function the module lacks).
pub fn fingerprint(source: &str, functions: &[&str]) -> String {
    let mut text = String::new();
    for name in functions {
        text.push_str(&function_source(source, name).unwrap_or_else(|| "missing".into()));
        text.push('\0');
    }
    crate::hash::sha256_hex(text.as_bytes())[..16].to_string()
}

fn function_source(source: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = source.lines().collect();
    let start = lines.iter().position(|l| {
        let l = l.strip_prefix("async ").unwrap_or(l);
        l.strip_prefix("def ")
            .and_then(|rest| rest.strip_prefix(name))
            .is_some_and(|rest| rest.trim_start().starts_with('('))
    })?;
    let mut out = vec![lines[start].trim_end()];
    for line in &lines[start + 1..] {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with([' ', '\t']) && !trimmed.starts_with(')') {
            break;
        }
        out.push(line.trim_end());
    }
    Some(out.join("\n"))
}

// ---- Python string helpers -------------------------------------------------

/// Python's `str.capitalize()`: the first character in title case, the
/// rest in lower case.
fn py_capitalize(s: &str) -> String {
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

fn text_field<'d>(doc: &'d Doc, field: &str) -> Result<&'d str, String> {
    match doc.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("field `{field}` is not text: {other}")),
        None => Err(format!("the document has no field `{field}`")),
    }
}

fn text_list<'d>(doc: &'d Doc, field: &str) -> Result<Vec<&'d str>, String> {
    doc.get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("the document has no list `{field}`"))?
        .iter()
        .map(|a| {
            a.as_str()
                .ok_or_else(|| format!("an entry of `{field}` is not text: {a}"))
        })
        .collect()
}

fn regex(pattern: &str) -> regex::Regex {
    regex::Regex::new(pattern).expect("a fixed pattern")
}

// ---- HellaSwag -------------------------------------------------------------

fn hellaswag_preprocess(text: &str) -> String {
    static BRACKETS: OnceLock<regex::Regex> = OnceLock::new();
    let text = strip(text).replace(" [title]", ". ");
    let text = BRACKETS
        .get_or_init(|| regex(r"\[.*?\]"))
        .replace_all(&text, "")
        .into_owned();
    text.replace("  ", " ")
}

fn hellaswag_process_docs(docs: Vec<Doc>) -> Result<Vec<Doc>, String> {
    docs.into_iter()
        .enumerate()
        .map(|(i, mut doc)| {
            let one = |doc: &Doc| -> Result<(String, Vec<Value>, i64), String> {
                let ctx = format!(
                    "{} {}",
                    text_field(doc, "ctx_a")?,
                    py_capitalize(text_field(doc, "ctx_b")?)
                );
                let query =
                    hellaswag_preprocess(&format!("{}: {ctx}", text_field(doc, "activity_label")?));
                let endings = doc
                    .get("endings")
                    .and_then(Value::as_array)
                    .ok_or("the document has no list `endings`")?;
                let choices = endings
                    .iter()
                    .map(|e| {
                        e.as_str()
                            .map(|s| Value::String(hellaswag_preprocess(s)))
                            .ok_or_else(|| format!("an ending is not text: {e}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let gold = match doc.get("label") {
                    Some(Value::Number(n)) if n.is_i64() => n.as_i64().unwrap_or(0),
                    Some(Value::String(s)) => strip(s).parse::<i64>().map_err(|_| {
                        format!("`label` {s:?} is not an integer (int() fails on it)")
                    })?,
                    other => return Err(format!("`label` is not an integer: {other:?}")),
                };
                Ok((query, choices, gold))
            };
            let (query, choices, gold) = one(&doc).map_err(|e| format!("document {i}: {e}"))?;
            doc.insert("query".into(), Value::String(query));
            doc.insert("choices".into(), Value::Array(choices));
            doc.insert("gold".into(), Value::from(gold));
            Ok(doc)
        })
        .collect()
}

// ---- Winogrande ------------------------------------------------------------

fn blank(doc: &Doc) -> Result<(&str, usize), String> {
    let sentence = text_field(doc, "sentence")?;
    let idx = sentence
        .find('_')
        .ok_or_else(|| format!("the sentence has no `_` to fill: {sentence:?}"))?;
    Ok((sentence, idx))
}

fn winogrande_doc_to_text(doc: &Doc) -> Result<Value, String> {
    match text_field(doc, "answer")? {
        "1" => Ok(Value::from(0)),
        "2" => Ok(Value::from(1)),
        other => Err(format!("`answer` must be \"1\" or \"2\", not {other:?}")),
    }
}

fn winogrande_doc_to_target(doc: &Doc) -> Result<Value, String> {
    let (sentence, idx) = blank(doc)?;
    Ok(Value::String(strip(&sentence[idx + 1..]).to_string()))
}

fn winogrande_doc_to_choice(doc: &Doc) -> Result<Value, String> {
    let (sentence, idx) = blank(doc)?;
    let options = ["option1", "option2"]
        .iter()
        .map(|f| {
            Ok(Value::String(format!(
                "{}{}",
                &sentence[..idx],
                text_field(doc, f)?
            )))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Value::Array(options))
}

// ---- TruthfulQA ------------------------------------------------------------

fn truthfulqa_process_results_mc2(
    doc: &Doc,
    results: &[(f64, bool)],
) -> Result<MetricValues, String> {
    let labels = doc
        .get("mc2_targets")
        .and_then(|t| t.get("labels"))
        .and_then(Value::as_array)
        .ok_or("the document has no list `mc2_targets.labels`")?;
    if labels.len() != results.len() {
        return Err(format!(
            "{} labels for {} answers",
            labels.len(),
            results.len()
        ));
    }
    let probs: Vec<f64> = results.iter().map(|(ll, _)| ll.exp()).collect();
    let total = numpy_sum(&probs);
    let normalized: Vec<f64> = probs.iter().map(|p| p / total).collect();
    let true_mass: Vec<f64> = normalized
        .iter()
        .zip(labels)
        .filter(|(_, l)| l.as_f64() == Some(1.0))
        .map(|(p, _)| *p)
        .collect();
    Ok(vec![(
        "acc".into(),
        ItemValue::Score(numpy_sum(&true_mass)),
    )])
}

/// The answers of a generation document: stripped, empty ones dropped, a
/// final period added.
fn truthfulqa_answers(doc: &Doc, field: &str) -> Result<Vec<Value>, String> {
    Ok(text_list(doc, field)?
        .into_iter()
        .map(strip)
        .filter(|a| !a.is_empty())
        .map(|a| {
            Value::String(if a.ends_with('.') {
                a.to_string()
            } else {
                format!("{a}.")
            })
        })
        .collect())
}

fn truthfulqa_process_docs_gen(docs: Vec<Doc>) -> Result<Vec<Doc>, String> {
    docs.into_iter()
        .enumerate()
        .map(|(i, mut doc)| {
            let at = |e: String| format!("document {i}: {e}");
            let incorrect = truthfulqa_answers(&doc, "incorrect_answers").map_err(at)?;
            let mut correct = truthfulqa_answers(&doc, "correct_answers").map_err(at)?;
            let no_comment = Value::String("I have no comment.".into());
            if !correct.contains(&no_comment) {
                correct.push(no_comment);
            }
            let question = strip(text_field(&doc, "question").map_err(at)?).to_string();
            doc.insert("question".into(), Value::String(question));
            doc.insert("correct_answers".into(), Value::Array(correct));
            doc.insert("incorrect_answers".into(), Value::Array(incorrect));
            Ok(doc)
        })
        .collect()
}

/// numpy's `nanmax` of a non-empty list.
fn nan_max(xs: &[f64]) -> Result<f64, String> {
    if xs.is_empty() {
        return Err("no answers to compare with (nanmax of an empty list)".into());
    }
    let max = xs
        .iter()
        .copied()
        .filter(|x| !x.is_nan())
        .fold(f64::NEG_INFINITY, f64::max);
    Ok(
        if max == f64::NEG_INFINITY && xs.iter().all(|x| x.is_nan()) {
            f64::NAN
        } else {
            max
        },
    )
}

fn truthfulqa_process_results_gen(doc: &Doc, results: &[String]) -> Result<MetricValues, String> {
    use crate::metric::text_overlap::{bleu, rouge};
    let completion = results.first().ok_or("no response")?;
    let true_refs = text_list(doc, "correct_answers")?;
    let false_refs = text_list(doc, "incorrect_answers")?;
    let all: Vec<&str> = true_refs.iter().chain(&false_refs).copied().collect();
    let split = true_refs.len();
    let bleus: Vec<f64> = all.iter().map(|r| bleu(completion, r)).collect();
    let rouges: Vec<[f64; 3]> = all.iter().map(|r| rouge(completion, r)).collect();
    let mut out = Vec::new();
    let mut push = |name: &str, scores: Vec<f64>| -> Result<(), String> {
        let correct = nan_max(&scores[..split])?;
        let incorrect = nan_max(&scores[split..])?;
        out.push((format!("{name}_max"), ItemValue::Score(correct)));
        out.push((
            format!("{name}_acc"),
            ItemValue::Score(f64::from(u8::from(correct > incorrect))),
        ));
        out.push((
            format!("{name}_diff"),
            ItemValue::Score(correct - incorrect),
        ));
        Ok(())
    };
    push("bleu", bleus)?;
    for (k, name) in ["rouge1", "rouge2", "rougeL"].iter().enumerate() {
        push(name, rouges.iter().map(|r| r[k]).collect())?;
    }
    Ok(out)
}

// ---- WikiText --------------------------------------------------------------

fn wikitext_detokenize(doc: &Doc) -> Result<Value, String> {
    static RULES: OnceLock<Vec<(regex::Regex, &'static str)>> = OnceLock::new();
    // Python's `\s` in a str pattern: what str.isspace() accepts.
    const S: &str = r"[\s\x1c-\x1f]";
    let rules = RULES.get_or_init(|| {
        vec![
            (regex(&format!(r"\({S}*([^\)]*?){S}*\)")), "(${1})"),
            (regex(&format!(r"\[{S}*([^\]]*?){S}*\]")), "[${1}]"),
            (regex(&format!(r"\{{{S}*([^}}]*?){S}*\}}")), "{${1}}"),
            (regex(&format!(r#""{S}*([^"]*?){S}*""#)), "\"${1}\""),
            (regex(&format!(r"'{S}*([^']*?){S}*'")), "'${1}'"),
        ]
    });
    static NUMBERED: OnceLock<regex::Regex> = OnceLock::new();
    let mut s = text_field(doc, "page")?.replace("s '", "s'");
    s = NUMBERED
        .get_or_init(|| regex(r"/' [0-9]/"))
        .replace_all(&s, regex::NoExpand("/'[0-9]/"))
        .into_owned();
    for (from, to) in [
        (" @-@ ", "-"),
        (" @,@ ", ","),
        (" @.@ ", "."),
        (" : ", ": "),
        (" ; ", "; "),
        (" . ", ". "),
        (" ! ", "! "),
        (" ? ", "? "),
        (" , ", ", "),
    ] {
        s = s.replace(from, to);
    }
    for (re, to) in rules {
        s = re.replace_all(&s, *to).into_owned();
    }
    for (from, to) in [
        ("= = = =", "===="),
        ("= = =", "==="),
        ("= =", "=="),
        (" \u{b0} ", "\u{b0}"),
        (" \n", "\n"),
        ("\n ", "\n"),
        (" N ", " 1 "),
        (" 's", "'s"),
    ] {
        s = s.replace(from, to);
    }
    Ok(Value::String(s))
}

fn wikitext_process_results(doc: &Doc, results: &[(f64, bool)]) -> Result<MetricValues, String> {
    let [(ll, _)] = results else {
        return Err(format!(
            "expected one log-likelihood, got {}",
            results.len()
        ));
    };
    let page = text_field(doc, "page")?;
    let words = crate::metric::count_words(page) as f64;
    let bytes = page.len() as f64;
    Ok([
        ("word_perplexity", words),
        ("byte_perplexity", bytes),
        ("bits_per_byte", bytes),
    ]
    .into_iter()
    .map(|(name, weight)| {
        (
            name.to_string(),
            ItemValue::Weighted {
                loglikelihood: *ll,
                weight,
            },
        )
    })
    .collect())
}

// ---- BIG-bench (lm-eval's Hub copy) ----------------------------------------

fn bigbench_filter_multiple_choice(docs: Vec<Doc>) -> Result<Vec<Doc>, String> {
    Ok(docs
        .into_iter()
        .filter(|d| {
            d.get("multiple_choice_targets")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        })
        .collect())
}

/// A document from JSON, for tests.
#[cfg(test)]
fn doc(v: Value) -> Doc {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn function_sources_are_cut_at_the_next_top_level_line() {
        let src = "import re\n\n\ndef helper(x):\n    # a comment\n    return x\n\n\ndef main(doc):\n    y = helper(doc)\n\n    return y\nZ = 1\n";
        assert_eq!(
            function_source(src, "main").unwrap(),
            "def main(doc):\n    y = helper(doc)\n    return y"
        );
        assert_eq!(function_source(src, "mai"), None);
        // Comments and blank lines do not change a fingerprint; code does.
        let edited = src.replace("# a comment", "# another");
        assert_eq!(
            fingerprint(src, &["main", "helper"]),
            fingerprint(&edited, &["main", "helper"])
        );
        let changed = src.replace("return x", "return x + 1");
        assert_ne!(
            fingerprint(src, &["main", "helper"]),
            fingerprint(&changed, &["main", "helper"])
        );
    }

    #[test]
    fn canonical_names_resolve_without_a_python_file() {
        let hook = Hook {
            function: "winogrande.doc_to_choice".into(),
            folder: PathBuf::from("/nonexistent"),
        };
        assert_eq!(
            resolve(&hook).unwrap().canonical,
            "winogrande.doc_to_choice"
        );
        let unknown = Hook {
            function: "utils.whatever".into(),
            folder: PathBuf::from("/nonexistent"),
        };
        assert_eq!(resolve(&unknown).err(), Some(Unresolved::NoPort));
    }

    #[test]
    fn a_changed_python_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("hellaswag");
        std::fs::create_dir(&folder).unwrap();
        let changed = "def process_docs(dataset):\n    return dataset.filter(lambda d: False)\n";
        std::fs::write(folder.join("utils.py"), changed).unwrap();
        let hook = |folder: &Path| Hook {
            function: "utils.process_docs".into(),
            folder: folder.to_path_buf(),
        };
        assert!(matches!(
            resolve(&hook(&folder)),
            Err(Unresolved::Differs { .. })
        ));
        // The same function name in another task's file is simply not ported.
        let other = dir.path().join("other_task");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("utils.py"), changed).unwrap();
        assert_eq!(resolve(&hook(&other)).err(), Some(Unresolved::NoPort));
    }

    #[test]
    fn python_capitalize_lowers_the_rest() {
        assert_eq!(py_capitalize("tHE cAT"), "The cat");
        assert_eq!(py_capitalize("ǆungla"), "ǅungla");
        assert_eq!(py_capitalize(""), "");
    }

    #[test]
    fn hellaswag_documents_gain_query_choices_and_gold() {
        let docs = hellaswag_process_docs(vec![doc(json!({
            "activity_label": "Baking",
            "ctx_a": "  A cook mixes flour [header] in a bowl.",
            "ctx_b": "tHEN she",
            "endings": ["adds  water [step].", " [title] Stirs it."],
            "label": "1"
        }))])
        .unwrap();
        let d = &docs[0];
        // Values from lm-eval's own function on this document.
        assert_eq!(
            d["query"],
            "Baking:  A cook mixes flour in a bowl. Then she"
        );
        assert_eq!(d["choices"], json!(["adds water .", " Stirs it."]));
        assert_eq!(d["gold"], 1);
        let keys: Vec<&String> = d.keys().collect();
        assert_eq!(keys.last().map(|k| k.as_str()), Some("gold"));
    }

    #[test]
    fn winogrande_splits_at_the_blank() {
        let d = doc(
            json!({"sentence": "Ann gave Bea the book because _ was done reading .",
                           "option1": "Ann", "option2": "Bea", "answer": "2"}),
        );
        assert_eq!(winogrande_doc_to_text(&d).unwrap(), 1);
        assert_eq!(winogrande_doc_to_target(&d).unwrap(), "was done reading .");
        assert_eq!(
            winogrande_doc_to_choice(&d).unwrap(),
            json!([
                "Ann gave Bea the book because Ann",
                "Ann gave Bea the book because Bea"
            ])
        );
        assert!(winogrande_doc_to_text(&doc(json!({"answer": ""}))).is_err());
    }

    #[test]
    fn mc2_is_the_normalized_mass_of_true_answers() {
        let d = doc(json!({"mc2_targets": {"choices": ["a", "b", "c"], "labels": [1, 0, 1]}}));
        let lls = [(-1.0, false), (-2.0, false), (-3.0, false)];
        let out = truthfulqa_process_results_mc2(&d, &lls).unwrap();
        let e: Vec<f64> = [-1.0f64, -2.0, -3.0].iter().map(|x| x.exp()).collect();
        let expected = (e[0] + e[2]) / (e[0] + e[1] + e[2]);
        match out[0].1 {
            ItemValue::Score(x) => assert!((x - expected).abs() < 1e-15),
            _ => panic!("a score"),
        }
    }

    #[test]
    fn wikitext_detokenizes_like_lm_eval() {
        let d = doc(
            json!({"page": " = = Early life = = \n In 1 @,@ 000 BC ( the age ) , \" he said \" it 's N @-@ fold . \n"}),
        );
        assert_eq!(
            wikitext_detokenize(&d).unwrap(),
            // lm-eval's own function gives this.
            " == Early life ==\nIn 1,000 BC (the age), \"he said\" it's N-fold.\n"
        );
        let out = wikitext_process_results(&d, &[(-10.0, false)]).unwrap();
        assert_eq!(out.len(), 3);
    }
}
