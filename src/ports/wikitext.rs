//! WikiText (`wikitext/preprocess_wikitext.py`): lm-eval's detokenizer and
//! the word- and byte-weighted perplexities of a page.

use std::sync::OnceLock;

use serde_json::Value;

use super::{regex, text_field, MetricValues, Native, Port};
use crate::data::Doc;
use crate::metric::ItemValue;

pub const PORTS: &[Port] = &[
    Port {
        canonical: "wikitext.detokenize",
        function: "wikitext_detokenizer",
        file: "wikitext/preprocess_wikitext.py",
        helpers: &[],
        fingerprints: &["d8792e4f859324b2"],
        native: Native::Value(detokenize),
        metrics: &[],
    },
    Port {
        canonical: "wikitext.process_results",
        function: "process_results",
        file: "wikitext/preprocess_wikitext.py",
        helpers: &[],
        fingerprints: &["8862a64a19f8d6e7"],
        native: Native::Results(process_results),
        metrics: &["word_perplexity", "byte_perplexity", "bits_per_byte"],
    },
];

fn detokenize(doc: &Doc) -> Result<Value, String> {
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

fn process_results(doc: &Doc, results: &[(f64, bool)]) -> Result<MetricValues, String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::doc;
    use serde_json::json;

    #[test]
    fn detokenizes_like_lm_eval() {
        let d = doc(
            json!({"page": " = = Early life = = \n In 1 @,@ 000 BC ( the age ) , \" he said \" it 's N @-@ fold . \n"}),
        );
        assert_eq!(
            detokenize(&d).unwrap(),
            // lm-eval's own function gives this.
            " == Early life ==\nIn 1,000 BC (the age), \"he said\" it's N-fold.\n"
        );
        let out = process_results(&d, &[(-10.0, false)]).unwrap();
        assert_eq!(out.len(), 3);
    }
}
