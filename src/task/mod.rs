//! Task and group configs: lm-eval's YAML dialect and BIG-bench `task.json`.
//!
//! This module turns files into [`TaskConfig`] and [`GroupConfig`] values and
//! knows which names exist ([`registry`]). It does not read datasets or build
//! prompts; those are `data` and `prompt`. Every error names the file and the
//! field, because a task config is something users write by hand.

pub mod bigbench;
pub mod builtin;
pub mod config;
pub mod ports;
pub mod registry;
pub mod yaml;

use std::path::PathBuf;

pub use config::{ChoiceSpec, DocSpec, FewshotConfig, GroupConfig, Hook, TaskConfig};
pub use registry::{Registry, Selection};

/// What can be wrong with a task config or a task name.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{path}: cannot read: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: YAML syntax error: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("{path}: field `{field}`: {message}")]
    Field {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error(
        "{path}: field `{field}` calls the Python function `{function}` (!function), which \
         has no native port; {}",
        match file {
            Some(file) if *installed => format!(
                "--python-hooks would run lm-eval's own {}:{}, from the installed lm-eval package",
                file.display(),
                function.rsplit('.').next().unwrap_or(function),
            ),
            Some(file) => format!(
                "--python-hooks would run {}:{}{} (code from the task folder), or write the \
                 logic as a Jinja template in the YAML",
                file.display(),
                function.rsplit('.').next().unwrap_or(function),
                if file.is_file() { "" } else { ", a file that is not there" }
            ),
            None => "assay does not run Python in this field, even with --python-hooks".into(),
        }
    )]
    PythonHook {
        path: PathBuf,
        field: String,
        function: String,
        /// The Python file `--python-hooks` would run, when it can.
        file: Option<PathBuf>,
        /// Whether `file` is under the installed lm-eval package's folder.
        installed: bool,
    },
    #[error(
        "{path}: field `{field}` calls the Python function `{function}` (!function) from {file}, \
         whose source differs from the lm-eval version assay has a native port for \
         (fingerprint {fingerprint}); assay will not guess what the changed Python does: \
         use lm-eval's unmodified task folder, or assay's own config of this task"
    )]
    HookDiffers {
        path: PathBuf,
        field: String,
        function: String,
        file: PathBuf,
        fingerprint: String,
    },
    #[error("unknown task or group `{name}`{hint}; `assay tasks list` shows the known names")]
    UnknownName { name: String, hint: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("--include-path {}: no such file or folder", path.display())]
    MissingIncludePath { path: PathBuf },
    /// A `--suite` that names no suite.
    #[error("--suite {name}: {message}")]
    Suite { name: String, message: String },
}

impl TaskError {
    /// Every task error is about what the user wrote or named.
    pub fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Input
    }
}
