//! Python's behaviour where lm-eval's numbers and prompts depend on it:
//! `str()` and `repr()` of values, `ast.literal_eval`, whitespace and
//! `strip` as Python's `str` defines them, `re` patterns, `json.dumps` as
//! lm-eval writes hashes, and `random.Random(seed)`'s draws.
//!
//! A leaf: it imports nothing of assay's, and everything else that needs
//! Python's semantics asks here, so each behaviour is written once.

pub mod json;
pub mod random;
pub mod re;
pub mod text;
pub mod value;
