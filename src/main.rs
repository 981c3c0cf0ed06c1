//! The `assay` binary: parse arguments, run, and turn errors into one line
//! and an exit code (0 ok, 1 gate FAIL, 2 bad input, 3 inconclusive, 4 could
//! not finish).

fn main() {
    // Output piped into a reader that stops early (`| head`) ends the process
    // quietly, as for other command-line tools, instead of a panic on the
    // closed pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal, before any
    // other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(assay::cli::main());
}
