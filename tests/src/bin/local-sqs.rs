//! `local-sqs`: sqs-local in a process of its own, for the fault suite
//! (`tests/tests/faults.rs`), which freezes it with SIGSTOP and thaws it with SIGCONT.
//!
//! Usage: `local-sqs [port]` (default 0: a free port). It listens on loopback, prints
//! `LISTENING http://127.0.0.1:<port>`, and serves until SIGTERM or Ctrl-C. Queues are created
//! by the test through the API, with whatever attributes it needs.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let port = match std::env::args().nth(1).map(|p| p.parse::<u16>()) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            eprintln!("usage: local-sqs [port]");
            return ExitCode::from(2);
        }
    };
    let server = match sqs_local::LocalSqs::builder()
        .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .start()
        .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("local-sqs: cannot start on port {port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("LISTENING {}", server.endpoint_url());
    sqs_handler::shutdown_signal().await;
    server.shutdown().await;
    ExitCode::SUCCESS
}
