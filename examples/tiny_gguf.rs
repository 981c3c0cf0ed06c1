//! Writes the tiny random-weight llama GGUF the tests use, for benchmarks
//! and checks that need a model that loads in milliseconds:
//! `cargo run --example tiny_gguf -- OUT.gguf [SEED]`.

#[path = "../tests/support/tiny_gguf.rs"]
mod tiny_gguf;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: tiny_gguf OUT.gguf [SEED]");
        std::process::exit(2);
    };
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(7);
    if let Err(e) = tiny_gguf::write_tiny_llama(std::path::Path::new(&out), seed) {
        eprintln!("error: cannot write {out}: {e}");
        std::process::exit(4);
    }
    println!("{out}");
}
