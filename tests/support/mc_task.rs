//! A task folder with one small multiple-choice task `t` (`{{q}}`, choices
//! `c`, gold index `a`), for tests that need a model to answer something.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Writes `dir/tasks/` holding task `t` over `docs` (JSON lines) and
/// returns the folder.
pub fn write_mc_task(dir: &Path, docs: &str) -> PathBuf {
    let tasks = dir.join("tasks");
    std::fs::create_dir_all(&tasks).unwrap();
    std::fs::write(tasks.join("d.jsonl"), docs).unwrap();
    std::fs::write(
        tasks.join("t.yaml"),
        "task: t\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: d.jsonl\n\
         test_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{q}}\"\n\
         doc_to_target: a\ndoc_to_choice: c\n",
    )
    .unwrap();
    tasks
}
