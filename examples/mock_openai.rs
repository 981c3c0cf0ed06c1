//! A mock OpenAI-compatible server for benchmarks: `cargo run --release
//! --example mock_openai [ADDRESS [LATENCY_MS]]` prints its base URL and
//! serves until killed, answering at once or after LATENCY_MS. `GET /v1/stats` returns (and resets) how many
//! requests it answered and the most it had in flight. It is the server the
//! tests use (tests/support/mock_openai.rs).

#[path = "../tests/support/mock_openai.rs"]
mod mock_openai;

use std::sync::atomic::Ordering;

fn main() {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let server = mock_openai::MockServer::start_on(&address);
    server.state.quiet.store(true, Ordering::Relaxed);
    if let Some(ms) = std::env::args().nth(2).and_then(|m| m.parse().ok()) {
        server.set_delay(std::time::Duration::from_millis(ms));
    }
    println!("{}", server.base);
    loop {
        std::thread::park();
    }
}
