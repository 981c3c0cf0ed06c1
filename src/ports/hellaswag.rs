//! HellaSwag (`hellaswag/utils.py`): the documents as lm-eval's
//! `process_docs` rewrites them (query, choices, gold).

use std::sync::OnceLock;

use serde_json::Value;

use super::{regex, text_field, Native, Port};
use crate::data::Doc;
use crate::python::text::{capitalize, strip};

pub const PORTS: &[Port] = &[Port {
    canonical: "hellaswag.process_docs",
    function: "process_docs",
    file: "hellaswag/utils.py",
    helpers: &["preprocess"],
    fingerprints: &["d3f56cdf97d3038f"],
    native: Native::Docs(process_docs),
    metrics: &[],
}];

fn preprocess(text: &str) -> String {
    static BRACKETS: OnceLock<regex::Regex> = OnceLock::new();
    let text = strip(text).replace(" [title]", ". ");
    let text = BRACKETS
        .get_or_init(|| regex(r"\[.*?\]"))
        .replace_all(&text, "")
        .into_owned();
    text.replace("  ", " ")
}

fn process_docs(docs: Vec<Doc>) -> Result<Vec<Doc>, String> {
    docs.into_iter()
        .enumerate()
        .map(|(i, mut doc)| {
            let one = |doc: &Doc| -> Result<(String, Vec<Value>, i64), String> {
                let ctx = format!(
                    "{} {}",
                    text_field(doc, "ctx_a")?,
                    capitalize(text_field(doc, "ctx_b")?)
                );
                let query = preprocess(&format!("{}: {ctx}", text_field(doc, "activity_label")?));
                let endings = doc
                    .get("endings")
                    .and_then(Value::as_array)
                    .ok_or("the document has no list `endings`")?;
                let choices = endings
                    .iter()
                    .map(|e| {
                        e.as_str()
                            .map(|s| Value::String(preprocess(s)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::doc;
    use serde_json::json;

    #[test]
    fn documents_gain_query_choices_and_gold() {
        let docs = process_docs(vec![doc(json!({
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
}
