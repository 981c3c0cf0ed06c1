//! BLEU and ROUGE as TruthfulQA's generation task computes them in lm-eval:
//! sacrebleu's corpus BLEU of one sentence against one reference (the
//! `intl` tokenizer, `exp` smoothing, no effective order), and rouge_score's
//! ROUGE-1, ROUGE-2 and ROUGE-Lsum F-measures (its default tokenizer, no
//! stemming), each times 100.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::python::text::is_space;

const MAX_ORDER: usize = 4;

/// sacrebleu's `intl` tokenizer (mteval-v14's international rules): space
/// around punctuation unless it sits between digits, and around symbols.
fn intl_tokens(line: &str) -> Vec<String> {
    static RULES: OnceLock<[(regex::Regex, &str); 3]> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        let re = |p: &str| regex::Regex::new(p).expect("a fixed pattern");
        [
            (re(r"(\P{N})(\p{P})"), "${1} ${2} "),
            (re(r"(\p{P})(\P{N})"), " ${1} ${2}"),
            (re(r"(\p{S})"), " ${1} "),
        ]
    });
    let mut text = line.trim_end_matches(is_space).to_string();
    for (re, to) in rules {
        text = re.replace_all(&text, *to).into_owned();
    }
    text.split(is_space)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn ngram_counts(tokens: &[String]) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    for n in 1..=MAX_ORDER {
        for gram in tokens.windows(n) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

/// sacrebleu's floored log.
fn floored_log(x: f64) -> f64 {
    if x == 0.0 {
        -9_999_999_999.0
    } else {
        x.ln()
    }
}

/// `sacrebleu.corpus_bleu([prediction], [[reference]], smooth_method="exp",
/// tokenize="intl").score`.
pub fn bleu(prediction: &str, reference: &str) -> f64 {
    let hyp = intl_tokens(prediction);
    let reference = intl_tokens(reference);
    let ref_counts = ngram_counts(&reference);
    let mut correct = [0usize; MAX_ORDER];
    let mut total = [0usize; MAX_ORDER];
    for (gram, count) in ngram_counts(&hyp) {
        let n = gram.len() - 1;
        total[n] += count;
        if let Some(r) = ref_counts.get(gram) {
            correct[n] += count.min(*r);
        }
    }
    let (sys_len, ref_len) = (hyp.len() as f64, reference.len() as f64);
    let mut bp = 1.0;
    if sys_len < ref_len {
        bp = if sys_len > 0.0 {
            (1.0 - ref_len / sys_len).exp()
        } else {
            0.0
        };
    }
    if correct.iter().all(|c| *c == 0) {
        return 0.0;
    }
    let mut precisions = [0.0f64; MAX_ORDER];
    let mut smooth = 1.0;
    for n in 0..MAX_ORDER {
        if total[n] == 0 {
            break;
        }
        if correct[n] == 0 {
            smooth *= 2.0;
            precisions[n] = 100.0 / (smooth * total[n] as f64);
        } else {
            precisions[n] = 100.0 * correct[n] as f64 / total[n] as f64;
        }
    }
    // Python's sum() adds left to right from 0.
    let mut logs = 0.0;
    for p in precisions {
        logs += floored_log(p);
    }
    bp * (logs / MAX_ORDER as f64).exp()
}

/// rouge_score's default tokenizer: lower case, anything but `[a-z0-9]`
/// separates tokens.
fn rouge_tokens(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn fmeasure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

fn rouge_n(target: &[String], prediction: &[String], n: usize) -> f64 {
    let grams = |tokens: &[String]| {
        let mut counts: HashMap<Vec<String>, usize> = HashMap::new();
        for g in tokens.windows(n) {
            *counts.entry(g.to_vec()).or_insert(0) += 1;
        }
        counts
    };
    let (t, p) = (grams(target), grams(prediction));
    let overlap: usize = t
        .iter()
        .map(|(g, c)| (*c).min(p.get(g).copied().unwrap_or(0)))
        .sum();
    let t_count: usize = t.values().sum();
    let p_count: usize = p.values().sum();
    let precision = overlap as f64 / p_count.max(1) as f64;
    let recall = overlap as f64 / t_count.max(1) as f64;
    fmeasure(precision, recall)
}

fn lcs_table(a: &[String], b: &[String]) -> Vec<Vec<usize>> {
    let mut t = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            t[i][j] = if a[i - 1] == b[j - 1] {
                t[i - 1][j - 1] + 1
            } else {
                t[i - 1][j].max(t[i][j - 1])
            };
        }
    }
    t
}

/// The reference indices of one longest common subsequence, found as
/// rouge_score backtracks.
fn lcs_indices(reference: &[String], candidate: &[String]) -> Vec<usize> {
    let t = lcs_table(reference, candidate);
    let (mut i, mut j) = (reference.len(), candidate.len());
    let mut out = Vec::new();
    while i > 0 && j > 0 {
        if reference[i - 1] == candidate[j - 1] {
            out.push(i - 1);
            i -= 1;
            j -= 1;
        } else if t[i][j - 1] > t[i - 1][j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    out.reverse();
    out
}

/// Summary-level ROUGE-L over newline-separated sentences.
fn rouge_lsum(target: &str, prediction: &str) -> f64 {
    let sentences = |text: &str| -> Vec<Vec<String>> {
        text.split('\n')
            .filter(|s| !s.is_empty())
            .map(rouge_tokens)
            .collect()
    };
    let (refs, cands) = (sentences(target), sentences(prediction));
    if refs.is_empty() || cands.is_empty() {
        return 0.0;
    }
    let m: usize = refs.iter().map(Vec::len).sum();
    let n: usize = cands.iter().map(Vec::len).sum();
    if m == 0 || n == 0 {
        return 0.0;
    }
    let mut count_r: HashMap<&str, usize> = HashMap::new();
    let mut count_c: HashMap<&str, usize> = HashMap::new();
    for t in refs.iter().flatten() {
        *count_r.entry(t).or_insert(0) += 1;
    }
    for t in cands.iter().flatten() {
        *count_c.entry(t).or_insert(0) += 1;
    }
    let mut hits = 0usize;
    for r in &refs {
        let mut union: Vec<usize> = cands.iter().flat_map(|c| lcs_indices(r, c)).collect();
        union.sort_unstable();
        union.dedup();
        for i in union {
            let token = r[i].as_str();
            let (c, rr) = (count_c.get(token).copied(), count_r.get(token).copied());
            if c.unwrap_or(0) > 0 && rr.unwrap_or(0) > 0 {
                hits += 1;
                *count_c.entry(token).or_insert(0) -= 1;
                *count_r.entry(token).or_insert(0) -= 1;
            }
        }
    }
    let recall = hits as f64 / m as f64;
    let precision = hits as f64 / n as f64;
    fmeasure(precision, recall)
}

/// ROUGE-1, ROUGE-2 and ROUGE-Lsum F-measures times 100, as lm-eval's
/// TruthfulQA `rouge()` reports them (" . " starts a new sentence first).
pub fn rouge(prediction: &str, reference: &str) -> [f64; 3] {
    let prepare = |s: &str| s.replace(" . ", ".\n");
    let (target, pred) = (prepare(reference), prepare(prediction));
    let (t, p) = (rouge_tokens(&target), rouge_tokens(&pred));
    [
        rouge_n(&t, &p, 1) * 100.0,
        rouge_n(&t, &p, 2) * 100.0,
        rouge_lsum(&target, &pred) * 100.0,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intl_tokens_split_punctuation_and_symbols_but_not_numbers() {
        assert_eq!(
            intl_tokens("It costs $1,000.50, really!"),
            ["It", "costs", "$", "1,000.50", ",", "really", "!"]
        );
    }

    #[test]
    fn identical_sentences_score_100() {
        let s = "The cat sat on the mat today.";
        assert!((bleu(s, s) - 100.0).abs() < 1e-9);
        assert_eq!(rouge(s, s), [100.0, 100.0, 100.0]);
        assert_eq!(bleu("", s), 0.0);
        assert_eq!(rouge("", s), [0.0, 0.0, 0.0]);
    }
}
