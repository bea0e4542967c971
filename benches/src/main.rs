//! Measured figures for sqs-handler and sqs-local.
//!
//! Run with `cargo run --release -p sqs-handler-bench -- [command] [options]`:
//!
//! - (no command) `[--messages N] [--endpoint URL] [--idle-seconds S] [--latency-samples K]
//!   [--node-messages M]`: the consumer benchmark. sqs-handler with a no-op handler at
//!   concurrency 1, 10 and 100 against hand-written aws-sdk-sqs loops, and the original's engine
//!   bbc/sqs-consumer (through node, when installed); API calls per message counted at the
//!   server; receives per minute on an idle queue; send-to-handler latency; consumer CPU per
//!   message. Engines run interleaved for `--rounds` (3) and each figure is the median round.
//!   Prints a table, writes `benches/throughput.svg`, and ends with a `RESULT` line.
//! - `server [--messages N] [--workers C] [--reference URL]`: sqs-local's throughput with
//!   concurrent aws-sdk-sqs clients (SendMessageBatch of 10, then ReceiveMessage of 10 plus
//!   DeleteMessageBatch of 10), and the same against a reference endpoint (LocalStack) when
//!   `--reference` or `SQS_REFERENCE_ENDPOINT` names one.
//! - `memory [--messages N] [--size BYTES]`: sqs-local's resident memory with N queued
//!   messages of SIZE bytes.
//!
//! sqs-local runs in a child process (this binary with `serve`), so its memory and CPU are
//! measured apart from the clients'.

mod consumer;
mod server;

use std::process::ExitCode;

fn usage() -> &'static str {
    "usage: sqs-handler-bench [server|memory] [options]\n\
     \n  (consumer benchmark) [--messages N] [--endpoint URL] [--idle-seconds S] [--latency-samples K] [--node-messages M]\
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
    let (cmd, rest) = match args.first().map(String::as_str) {
        Some("-h" | "--help") => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Some(c) if !c.starts_with("--") => (c.to_owned(), &args[1..]),
        _ => ("consumer".to_owned(), &args[..]),
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
    let result = options(rest).and_then(|opts| {
        rt.block_on(async {
            match cmd.as_str() {
                "serve" => server::serve_child().await,
                "consumer" => {
                    let endpoint = match get(&opts, "endpoint", String::new())? {
                        e if e.is_empty() => None,
                        e => Some(e),
                    };
                    consumer::run(consumer::Options {
                        messages: get(&opts, "messages", 50_000usize)?,
                        endpoint,
                        idle_seconds: get(&opts, "idle-seconds", 60u64)?,
                        latency_samples: get(&opts, "latency-samples", 500usize)?,
                        node_messages: get(&opts, "node-messages", 5_000usize)?,
                        levels: get(&opts, "concurrency", "1,10,100".to_owned())?
                            .split(',')
                            .map(|c| {
                                c.trim()
                                    .parse::<usize>()
                                    .map_err(|_| format!("--concurrency {c:?} is not a number"))
                            })
                            .collect::<Result<_, _>>()?,
                        rounds: get(&opts, "rounds", 3usize)?,
                        engines: get(&opts, "engines", String::new())?
                            .split(',')
                            .filter(|e| !e.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    })
                    .await
                }
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
