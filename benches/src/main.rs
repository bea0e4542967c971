//! Measured figures for sqs-handler and sqs-local.
//!
//! Run with `cargo run --release -p sqs-handler-bench -- <command>`:
//!
//! - `server [--messages N] [--workers C] [--reference URL]`: sqs-local's throughput with
//!   concurrent aws-sdk-sqs clients (SendMessageBatch of 10, then ReceiveMessage of 10 plus
//!   DeleteMessageBatch of 10), and the same against a reference endpoint (LocalStack) when
//!   `--reference` or `SQS_REFERENCE_ENDPOINT` names one.
//! - `memory [--messages N] [--size BYTES]`: sqs-local's resident memory with N queued
//!   messages of SIZE bytes.
//!
//! sqs-local runs in a child process (this binary with `serve`), so its memory and CPU are
//! measured apart from the clients'.

mod server;

use std::process::ExitCode;

fn usage() -> &'static str {
    "usage: sqs-handler-bench <server|memory> [options]\n\
     \n  server [--messages N] [--workers C] [--reference URL]\
     \n  memory [--messages N] [--size BYTES]"
}

/// Reads `--name value` options into (name, value) pairs.
fn options(args: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let name = a
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {a:?}"))?;
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        out.push((name.to_owned(), value.clone()));
    }
    Ok(out)
}

fn get<T: std::str::FromStr>(
    opts: &[(String, String)],
    name: &str,
    default: T,
) -> Result<T, String> {
    match opts.iter().rev().find(|(n, _)| n == name) {
        Some((_, v)) => v
            .parse()
            .map_err(|_| format!("--{name} {v:?} is not a valid value")),
        None => Ok(default),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("{}", usage());
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = options(&args[1..]).and_then(|opts| {
        rt.block_on(async {
            match cmd.as_str() {
                "serve" => server::serve_child().await,
                "server" => {
                    let reference = match get(&opts, "reference", String::new())? {
                        r if r.is_empty() => std::env::var("SQS_REFERENCE_ENDPOINT").ok(),
                        r => Some(r),
                    };
                    server::throughput(
                        get(&opts, "messages", 20_000usize)?,
                        get(&opts, "workers", 8usize)?,
                        reference,
                    )
                    .await
                }
                "memory" => {
                    server::memory(
                        get(&opts, "messages", 100_000usize)?,
                        get(&opts, "size", 1024usize)?,
                    )
                    .await
                }
                other => Err(format!("unknown command {other:?}\n{}", usage())),
            }
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sqs-handler-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
