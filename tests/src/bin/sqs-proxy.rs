//! `sqs-proxy`: a TCP forwarder for the fault suite (`tests/tests/faults.rs`), so a test can
//! take the SQS endpoint away (kill the proxy) and bring it back on the same port while
//! sqs-local, behind it, keeps its state.
//!
//! Usage: `sqs-proxy <listen-port> <upstream-addr>`, for example `sqs-proxy 0 127.0.0.1:9324`.
//! It listens on `127.0.0.1:<listen-port>` (0 picks a free port), prints `LISTENING <port>`,
//! and forwards every connection to the upstream address until it is killed.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

/// Binds the port, retrying briefly: the previous proxy on it may have just died.
async fn bind(port: u16) -> std::io::Result<TcpListener> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let start = Instant::now();
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && start.elapsed() < Duration::from_secs(5) =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(port), Some(upstream)) = (
        args.first().and_then(|p| p.parse::<u16>().ok()),
        args.get(1).and_then(|a| a.parse::<SocketAddr>().ok()),
    ) else {
        eprintln!("usage: sqs-proxy <listen-port> <upstream-addr>");
        return ExitCode::from(2);
    };
    let listener = match bind(port).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sqs-proxy: cannot listen on port {port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    println!("LISTENING {port}");
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(forward(client, upstream));
            }
            Err(e) => {
                eprintln!("sqs-proxy: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
