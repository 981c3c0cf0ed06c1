//! Finding what `assay run` wrote: a variant's one run folder and its
//! run.json.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The one run folder under a variant's folder.
pub fn only_run(variant: &Path) -> PathBuf {
    std::fs::read_dir(variant)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

/// A run folder's run.json, as assay reads it.
pub fn read(run: &Path) -> assay::results::Run {
    assay::results::read_run(run).unwrap().run
}

/// A run folder's run.json.
pub fn run_json(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap()
}
