//! MATH level 5 as the Open LLM Leaderboard v2 runs it
//! (`leaderboard/math/utils.py`): the prompt, and the level-5 documents
//! with the gold answer cut out of the solution's last `\boxed{...}`.
//!
//! Scoring (`process_results`: math-verify and sympy) and the four few-shot
//! examples (`list_fewshot_samples`) stay lm-eval's Python (see
//! `IN_PYTHON` in the ports module).

use serde_json::Value;

use super::{text_field, Native, Port};
use crate::data::Doc;

pub const PORTS: &[Port] = &[
    Port {
        canonical: "math.doc_to_text",
        function: "doc_to_text",
        file: "leaderboard/math/utils.py",
        helpers: &[],
        fingerprints: &["91df4d2c9ecb0700"],
        native: Native::Value(doc_to_text),
        metrics: &[],
    },
    Port {
        canonical: "math.process_docs",
        function: "process_docs",
        file: "leaderboard/math/utils.py",
        helpers: &["last_boxed_only_string", "remove_boxed", "INVALID_ANSWER"],
        fingerprints: &["b29d2ab54ac8b8e4"],
        native: Native::Docs(process_docs),
        metrics: &[],
    },
];

const INVALID_ANSWER: &str = "[invalidanswer]";

fn doc_to_text(doc: &Doc) -> Result<Value, String> {
    Ok(Value::String(format!(
        "Problem:\n{}\n\nSolution:",
        text_field(doc, "problem")?
    )))
}

/// The level-5 documents, each with `answer` added (or replaced, in place,
/// as `datasets.Dataset.map` updates a column it already has).
fn process_docs(docs: Vec<Doc>) -> Result<Vec<Doc>, String> {
    let mut out = Vec::new();
    for mut doc in docs {
        let level = doc
            .get("level")
            .ok_or("the document has no field `level`")?;
        if level.as_str() != Some("Level 5") {
            continue;
        }
        if !doc.contains_key("problem") {
            return Err("the document has no field `problem`".into());
        }
        let answer = remove_boxed(&last_boxed_only_string(text_field(&doc, "solution")?));
        doc.insert("answer".into(), Value::String(answer));
        out.push(doc);
    }
    Ok(out)
}

/// The last `\boxed{...}` (or `\fbox{...}`) of a solution, braces balanced;
/// a `\boxed ` without braces runs to the next `$`.
fn last_boxed_only_string(text: &str) -> String {
    if let Some((_, after)) = text.rsplit_once("\\boxed ") {
        let until_dollar = after.split('$').next().unwrap_or_default();
        return format!("\\boxed {until_dollar}");
    }
    let Some(start) = text.rfind("\\boxed").or_else(|| text.rfind("\\fbox")) else {
        return INVALID_ANSWER.into();
    };
    // Braces are ASCII, so byte offsets cut where Python's indices do.
    let mut open = 0i64;
    for (i, b) in text.bytes().enumerate().skip(start) {
        match b {
            b'{' => open += 1,
            b'}' => {
                open -= 1;
                if open == 0 {
                    return text[start..=i].to_string();
                }
            }
            _ => {}
        }
    }
    INVALID_ANSWER.into()
}

/// What is inside `\boxed{...}` (or after `\boxed `).
fn remove_boxed(boxed: &str) -> String {
    if boxed.contains("\\boxed ") {
        return match boxed.strip_prefix("\\boxed ") {
            Some(rest) => rest.to_string(),
            None => INVALID_ANSWER.into(),
        };
    }
    boxed
        .strip_prefix("\\boxed{")
        .and_then(|rest| rest.strip_suffix('}'))
        .map_or_else(|| INVALID_ANSWER.into(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::doc;
    use serde_json::json;

    #[test]
    fn the_last_boxed_answer_is_cut_out_with_its_braces_balanced() {
        let boxed = |s: &str| remove_boxed(&last_boxed_only_string(s));
        assert_eq!(boxed("so $\\boxed{\\frac{1}{2}}$."), "\\frac{1}{2}");
        assert_eq!(boxed("\\boxed{1} then \\boxed{2}"), "2");
        // `\fbox` is found, but only `\boxed{` is removed.
        assert_eq!(boxed("\\fbox{7}"), INVALID_ANSWER);
        assert_eq!(last_boxed_only_string("\\fbox{7}"), "\\fbox{7}");
        assert_eq!(boxed("is \\boxed 5$ and"), "5");
        assert_eq!(boxed("\\boxed{unclosed"), INVALID_ANSWER);
        assert_eq!(boxed("no answer"), INVALID_ANSWER);
        // A closing brace before any opening one makes the count negative,
        // so the braces never balance (as in Python).
        assert_eq!(last_boxed_only_string("\\boxed}{x}"), INVALID_ANSWER);
        assert_eq!(boxed("a}\\boxed{b}"), "b");
        assert_eq!(boxed("é \\boxed{ü}"), "ü");
    }

    #[test]
    fn only_level_five_documents_are_kept_with_their_answer() {
        let docs = vec![
            doc(json!({"problem": "P", "level": "Level 4", "solution": "\\boxed{1}"})),
            doc(json!({"problem": "P", "level": "Level 5", "solution": "\\boxed{2}", "type": "t"})),
        ];
        let out = process_docs(docs).unwrap();
        assert_eq!(out.len(), 1);
        let keys: Vec<&String> = out[0].keys().collect();
        assert_eq!(keys, ["problem", "level", "solution", "type", "answer"]);
        assert_eq!(out[0]["answer"], json!("2"));
        assert!(process_docs(vec![doc(json!({"problem": "P"}))]).is_err());
        assert_eq!(
            doc_to_text(&doc(json!({"problem": "1+1?"}))).unwrap(),
            json!("Problem:\n1+1?\n\nSolution:")
        );
    }
}
