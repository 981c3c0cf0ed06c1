//! The kinds of failure, which decide a command's exit code in one place.
//!
//! Every library error type says which kind it is (a `kind()` method); the
//! binary maps the kind to the exit code and prints the error with its
//! `#[source]` chain. A kind is about what the user should do next: fix the
//! input (nothing was run), or run the same command again (what was answered
//! is cached, so it resumes).

/// What kind of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is wrong (a flag, a config, a manifest, a document, a run
    /// folder); nothing was run. Exit 2.
    Input,
    /// The network, a server or the disk failed; what was answered is kept,
    /// so running the command again resumes. Exit 4.
    NotFinished,
}

/// Exit codes shared by every command.
pub mod exit {
    pub const OK: i32 = 0;
    pub const GATE_FAIL: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const GATE_INCONCLUSIVE: i32 = 3;
    pub const NOT_FINISHED: i32 = 4;
}

impl ErrorKind {
    /// The exit code of a command that failed this way.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Input => exit::BAD_INPUT,
            ErrorKind::NotFinished => exit::NOT_FINISHED,
        }
    }
}
