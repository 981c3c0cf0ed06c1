//! assay: score community variants of open-weight language models.
//!
//! The library is laid out along the data flow (see DESIGN.md): task configs
//! (`task`) and documents (`data`) become prompts (`prompt`) and requests
//! (`request`); the `engine` sends them to a `backend` (answers are kept in
//! `cache`) and scores the answers with `metric` and `stats`; `results`
//! writes the run to disk. The binary in `main.rs` only parses arguments
//! (`cli`) and maps errors to exit codes.

pub mod backend;
pub mod cache;
pub mod cli;
pub mod data;
pub mod engine;
pub mod gate;
pub mod leaderboard;
pub mod metric;
pub mod prompt;
pub mod pyrandom;
pub mod request;
pub mod results;
pub mod stats;
pub mod task;
pub mod variant;
