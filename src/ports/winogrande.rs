//! Winogrande (`winogrande/preprocess_winogrande.py`): the sentence split
//! at its blank into the shared context and the two options.

use serde_json::Value;

use super::{text_field, Native, Port};
use crate::data::Doc;
use crate::python::text::strip;

pub const PORTS: &[Port] = &[
    Port {
        canonical: "winogrande.doc_to_text",
        function: "doc_to_text",
        file: "winogrande/preprocess_winogrande.py",
        helpers: &[],
        fingerprints: &["93c874dac5496b8a"],
        native: Native::Value(doc_to_text),
        metrics: &[],
    },
    Port {
        canonical: "winogrande.doc_to_target",
        function: "doc_to_target",
        file: "winogrande/preprocess_winogrande.py",
        helpers: &[],
        fingerprints: &["f0a04b279765c4ec"],
        native: Native::Value(doc_to_target),
        metrics: &[],
    },
    Port {
        canonical: "winogrande.doc_to_choice",
        function: "doc_to_choice",
        file: "winogrande/preprocess_winogrande.py",
        helpers: &[],
        fingerprints: &["617aa76bb07e9dfc"],
        native: Native::Value(doc_to_choice),
        metrics: &[],
    },
];

fn blank(doc: &Doc) -> Result<(&str, usize), String> {
    let sentence = text_field(doc, "sentence")?;
    let idx = sentence
        .find('_')
        .ok_or_else(|| format!("the sentence has no `_` to fill: {sentence:?}"))?;
    Ok((sentence, idx))
}

fn doc_to_text(doc: &Doc) -> Result<Value, String> {
    match text_field(doc, "answer")? {
        "1" => Ok(Value::from(0)),
        "2" => Ok(Value::from(1)),
        other => Err(format!("`answer` must be \"1\" or \"2\", not {other:?}")),
    }
}

fn doc_to_target(doc: &Doc) -> Result<Value, String> {
    let (sentence, idx) = blank(doc)?;
    Ok(Value::String(strip(&sentence[idx + 1..]).to_string()))
}

fn doc_to_choice(doc: &Doc) -> Result<Value, String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::doc;
    use serde_json::json;

    #[test]
    fn splits_at_the_blank() {
        let d = doc(
            json!({"sentence": "Ann gave Bea the book because _ was done reading .",
                           "option1": "Ann", "option2": "Bea", "answer": "2"}),
        );
        assert_eq!(doc_to_text(&d).unwrap(), 1);
        assert_eq!(doc_to_target(&d).unwrap(), "was done reading .");
        assert_eq!(
            doc_to_choice(&d).unwrap(),
            json!([
                "Ann gave Bea the book because Ann",
                "Ann gave Bea the book because Bea"
            ])
        );
        assert!(doc_to_text(&doc(json!({"answer": ""}))).is_err());
    }
}
