//! The Open LLM Leaderboard v2's prompt hooks (`leaderboard/` in lm-eval's
//! task folder): MMLU-Pro's options lettered A to J
//! (`leaderboard/mmlu_pro/utils.py`) and MuSR's narrative, question and
//! numbered choices (`leaderboard/musr/utils.py`).

use serde_json::Value;

use super::{Native, Port};
use crate::data::Doc;
use crate::python::value::{literal_eval, py_str};

pub const PORTS: &[Port] = &[
    Port {
        canonical: "mmlu_pro.doc_to_text",
        function: "doc_to_text",
        file: "mmlu_pro/utils.py",
        helpers: &[],
        fingerprints: &["71d2a24ebaeacfbb"],
        native: Native::Value(mmlu_pro_doc_to_text),
        metrics: &[],
    },
    Port {
        canonical: "mmlu_pro.doc_to_choice",
        function: "doc_to_choice",
        file: "mmlu_pro/utils.py",
        helpers: &[],
        fingerprints: &["2b594ab652b50cdd"],
        native: Native::Value(mmlu_pro_doc_to_choice),
        metrics: &[],
    },
    Port {
        canonical: "musr.doc_to_text",
        function: "doc_to_text",
        file: "musr/utils.py",
        helpers: &["DOC_TO_TEXT"],
        fingerprints: &["3ce52dad2e9e07d7"],
        native: Native::Value(musr_doc_to_text),
        metrics: &[],
    },
];

/// A document's field, as Python's `str()` of it.
fn field(doc: &Doc, name: &str) -> Result<String, String> {
    doc.get(name)
        .map(py_str)
        .ok_or_else(|| format!("the document has no field `{name}`"))
}

/// `string.ascii_uppercase[i]`.
fn letter(i: usize) -> Result<char, String> {
    (b'A'..=b'Z')
        .nth(i)
        .map(char::from)
        .ok_or_else(|| format!("option {i} has no letter (string.ascii_uppercase has 26)"))
}

fn options(doc: &Doc) -> Result<&Vec<Value>, String> {
    doc.get("options")
        .and_then(Value::as_array)
        .ok_or_else(|| "the document has no list `options`".to_string())
}

fn mmlu_pro_doc_to_text(doc: &Doc) -> Result<Value, String> {
    let mut text = format!("{}\n", field(doc, "question")?);
    for (i, option) in options(doc)?.iter().enumerate() {
        text.push_str(&format!("{}. {}\n", letter(i)?, py_str(option)));
    }
    text.push_str("Answer:");
    Ok(Value::String(text))
}

fn mmlu_pro_doc_to_choice(doc: &Doc) -> Result<Value, String> {
    (0..options(doc)?.len())
        .map(|i| letter(i).map(|c| Value::String(c.to_string())))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn musr_doc_to_text(doc: &Doc) -> Result<Value, String> {
    let listed = literal_eval(&field(doc, "choices")?)
        .map_err(|e| format!("`choices` is not a Python literal: {e}"))?;
    let Value::Array(choices) = listed else {
        return Err(format!("`choices` is not a list: {listed}"));
    };
    let mut numbered = String::new();
    for (i, choice) in choices.iter().enumerate() {
        numbered.push_str(&format!("{} - {}\n", i + 1, py_str(choice)));
    }
    Ok(Value::String(format!(
        "{}\n\n{}\n\n{numbered}\nAnswer:",
        field(doc, "narrative")?,
        field(doc, "question")?
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::doc;
    use serde_json::json;

    #[test]
    fn mmlu_pro_letters_each_option() {
        let d = doc(json!({"question": "Q?", "options": ["x", 2, "z"]}));
        assert_eq!(
            mmlu_pro_doc_to_text(&d).unwrap(),
            json!("Q?\nA. x\nB. 2\nC. z\nAnswer:")
        );
        assert_eq!(mmlu_pro_doc_to_choice(&d).unwrap(), json!(["A", "B", "C"]));
        let many = doc(json!({"question": "Q", "options": vec!["o"; 27]}));
        assert!(mmlu_pro_doc_to_text(&many).unwrap_err().contains("26"));
    }

    #[test]
    fn musr_numbers_the_choices_it_parses() {
        let d = doc(json!({
            "narrative": "N.",
            "question": "Who?",
            "choices": "['Mr. O\\'Neil', \"Ana's\"]"
        }));
        assert_eq!(
            musr_doc_to_text(&d).unwrap(),
            json!("N.\n\nWho?\n\n1 - Mr. O'Neil\n2 - Ana's\n\nAnswer:")
        );
        let bad = doc(json!({"narrative": "N", "question": "Q", "choices": "not a list"}));
        assert!(musr_doc_to_text(&bad).is_err());
    }
}
