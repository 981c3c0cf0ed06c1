//! assay: score community variants of open-weight language models.
//!
//! The library is laid out along the data flow (see DESIGN.md): task configs
//! (`task`) and documents (`data`) become prompts (`prompt`) and requests
//! (`request`); the `engine` sends them to a `backend` (answers are kept in
//! `cache`); `metric` and `stats` score the answers; `results` is the run
//! format. `run` is the pipeline that sequences these for an
//! [`invocation::Invocation`]; `gate` and `leaderboard` read what `results`
//! wrote. The binary in `main.rs` only parses arguments (`cli`) and maps
//! errors to exit codes (`error`).

pub mod backend;
pub mod cache;
pub mod cli;
pub mod data;
pub mod engine;
pub mod error;
pub mod gate;
pub mod gguf;
pub mod hash;
pub mod http;
pub mod invocation;
pub mod leaderboard;
pub mod metric;
pub mod ports;
pub mod prompt;
pub mod python;
pub mod request;
pub mod results;
pub mod run;
pub mod scaffold;
pub mod stats;
pub mod task;
pub mod variant;
pub mod worker;
