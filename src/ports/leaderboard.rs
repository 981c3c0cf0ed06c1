//! The Open LLM Leaderboard v2's prompt hooks (`leaderboard/` in lm-eval's
//! task folder): MMLU-Pro's options lettered A to J
//! (`leaderboard/mmlu_pro/utils.py`), MuSR's narrative, question and
//! numbered choices (`leaderboard/musr/utils.py`), and GPQA's cleaned and
//! shuffled answers (`leaderboard/gpqa/utils.py`).
//!
//! GPQA shuffles each question's four answers with Python's global random
//! generator, which lm-eval seeds with 0 before it builds the tasks; its
//! `process_docs` runs on the task's one split for the few-shot documents
//! and again for the evaluated ones, and the second run is answered from
//! the `datasets` cache, so both see the shuffles of the first pass. The
//! port gives exactly those: seed 0, then the documents in order, as lm-eval
//! computes them for a task on a fresh cache. (When one lm-eval process
//! builds several GPQA tasks on a fresh cache, the later ones continue the
//! generator; with the cache already filled by a run of each task alone,
//! lm-eval gives these shuffles again.)

use serde_json::Value;

use super::{Native, Port};
use crate::data::Doc;
use crate::python::random::PyRandom;
use crate::python::text::strip;
use crate::python::value::{literal_eval, py_str};

pub const PORTS: &[Port] = &[
    Port {
        canonical: "mmlu_pro.doc_to_text",
        function: "doc_to_text",
        file: "leaderboard/mmlu_pro/utils.py",
        helpers: &[],
        fingerprints: &["71d2a24ebaeacfbb"],
        native: Native::Value(mmlu_pro_doc_to_text),
        metrics: &[],
    },
    Port {
        canonical: "mmlu_pro.doc_to_choice",
        function: "doc_to_choice",
        file: "leaderboard/mmlu_pro/utils.py",
        helpers: &[],
        fingerprints: &["2b594ab652b50cdd"],
        native: Native::Value(mmlu_pro_doc_to_choice),
        metrics: &[],
    },
    Port {
        canonical: "musr.doc_to_text",
        function: "doc_to_text",
        file: "leaderboard/musr/utils.py",
        helpers: &["DOC_TO_TEXT"],
        fingerprints: &["3ce52dad2e9e07d7"],
        native: Native::Value(musr_doc_to_text),
        metrics: &[],
    },
    Port {
        canonical: "gpqa.process_docs",
        function: "process_docs",
        file: "leaderboard/gpqa/utils.py",
        helpers: &["preprocess"],
        fingerprints: &["937d2b45f536bfee"],
        native: Native::Docs(gpqa_process_docs),
        metrics: &[],
    },
];

/// GPQA's `preprocess`: an answer stripped, " [title]" made a sentence
/// break, bracketed notes removed, double spaces halved once.
fn gpqa_preprocess(text: &Value) -> Result<String, String> {
    let text = match text {
        Value::Null => return Ok(" ".into()),
        Value::String(s) => s,
        other => return Err(format!("an answer is not text: {other}")),
    };
    let text = strip(text).replace(" [title]", ". ");
    let text = super::regex(r"\[.*?\]").replace_all(&text, "");
    Ok(text.replace("  ", " "))
}

fn gpqa_process_docs(docs: Vec<Doc>) -> Result<Vec<Doc>, String> {
    let mut rng = PyRandom::new(0);
    let answer = |doc: &Doc, field: &str| -> Result<String, String> {
        gpqa_preprocess(doc.get(field).unwrap_or(&Value::Null))
            .map_err(|e| format!("`{field}`: {e}"))
    };
    docs.into_iter()
        .map(|mut doc| {
            let mut choices = [
                answer(&doc, "Incorrect Answer 1")?,
                answer(&doc, "Incorrect Answer 2")?,
                answer(&doc, "Incorrect Answer 3")?,
                answer(&doc, "Correct Answer")?,
            ];
            // random.shuffle
            for i in (1..choices.len()).rev() {
                let j = rng.randbelow(i + 1).map_err(|e| e.to_string())?;
                choices.swap(i, j);
            }
            let correct = answer(&doc, "Correct Answer")?;
            let index = choices
                .iter()
                .position(|c| *c == correct)
                .unwrap_or_default();
            for (i, choice) in choices.into_iter().enumerate() {
                doc.insert(format!("choice{}", i + 1), Value::String(choice));
            }
            let letter = char::from(b'A' + index as u8);
            doc.insert("answer".into(), Value::String(format!("({letter})")));
            Ok(doc)
        })
        .collect()
}

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
    fn gpqa_cleans_answers_and_shuffles_as_python_does() {
        // Double spaces are halved in one pass, as str.replace does.
        assert_eq!(
            gpqa_preprocess(&json!("  a [title]b [note]  c ")).unwrap(),
            "a. b  c"
        );
        assert_eq!(gpqa_preprocess(&Value::Null).unwrap(), " ");
        // random.seed(0); random.shuffle(["w1", "w2", "w3", "right"])
        // gives ['w3', 'w1', 'w2', 'right'] (CPython 3.11).
        let d = doc(json!({
            "Incorrect Answer 1": "w1",
            "Incorrect Answer 2": "w2",
            "Incorrect Answer 3": "w3",
            "Correct Answer": "right"
        }));
        let out = gpqa_process_docs(vec![d]).unwrap();
        let picked: Vec<&str> = (1..=4)
            .map(|i| out[0][&format!("choice{i}")].as_str().unwrap())
            .collect();
        assert_eq!(picked, ["w3", "w1", "w2", "right"]);
        assert_eq!(out[0]["answer"], json!("(D)"));
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
