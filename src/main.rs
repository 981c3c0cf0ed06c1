//! The `assay` binary: parse arguments, run, and turn errors into one line
//! and an exit code (0 ok, 1 gate FAIL, 2 bad input, 3 inconclusive, 4 could
//! not finish).

fn main() {
    std::process::exit(assay::cli::main());
}
