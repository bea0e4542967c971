//! Measured figures for sqs-handler and sqs-local.
//!
//! Run with `cargo run --release -p sqs-handler-bench -- [command] [options]`. With no command,
//! every scenario below runs in turn (about 7 minutes on a 2-core machine), each printing one
//! `RESULT scenario=...` line:
//!
//! - `latency [--concurrency 1,10,100] [--node-messages M]`: a no-op handler at AWS-like latency
//!   (`sqs-local --latency aws`) at each concurrency, against raw aws-sdk-sqs loops and
//!   bbc/sqs-consumer (through node); writes `benches/latency.svg`.
//! - `io`: handlers that wait 100 ms, concurrency 500, against Little's law (5,000 msg/s) and
//!   the raw batch loop.
//! - `long [--messages 2000] [--handler-seconds 40] [--visibility-seconds 10]`: every message
//!   in flight for longer than the visibility timeout: deliveries counted by message id,
//!   visibility extensions counted at the server and on the wire; writes
//!   `benches/long_handlers.svg`.
//! - `many [--queues 100] [--warmup-seconds 10] [--window-seconds 40]`: one consumer for many
//!   idle queues: build() time, receives per minute per queue, memory, tasks, threads.
//! - `large`: 256 KiB bodies at concurrency 100: MB/s against the raw batch loop, and the
//!   consumer's peak memory.
//! - `cpu [--callgrind-messages 2500] [--callgrind-dir DIR]`: a no-op handler at zero latency,
//!   concurrency 100: CPU per message against the raw batch loop, in wall-clock runs and as
//!   instruction counts under callgrind (when valgrind is installed); with `--callgrind-dir`,
//!   callgrind's output files are kept there for `callgrind_annotate`.
//! - `telemetry [--callgrind-messages 2500] [--callgrind-dir DIR]`: the `cpu` scenario's
//!   sqs-handler run with nothing observing it (`off`), with a tracing subscriber and a metrics
//!   recorder that do nothing (`noop`), and with the OpenTelemetry SDK layer and the Prometheus
//!   recorder, exporting nothing (`real`): throughput, CPU and instructions per message of each
//!   against `off`.
//!
//! Every scenario takes `--latency SPEC` (sqs-local's latency; default `aws`, `none` for
//! `cpu`), `--rounds R` (3; engines interleave and each figure is the median round) and
//! `--scale F` (multiplies message counts).
//!
//! The earlier benchmarks:
//!
//! - `consumer [--messages N] [--endpoint URL] [--idle-seconds S] [--latency-samples K]
//!   [--node-messages M]`: sqs-handler with a no-op handler at concurrency 1, 10 and 100 on a
//!   zero-latency endpoint against the raw loops and sqs-consumer, idle receives per minute and
//!   send-to-handler latency; writes `benches/throughput.svg`.
//! - `server [--messages N] [--workers C] [--reference URL]`: sqs-local's throughput with
//!   concurrent aws-sdk-sqs clients (SendMessageBatch of 10, then ReceiveMessage of 10 plus
//!   DeleteMessageBatch of 10), and the same against a reference endpoint (LocalStack) when
//!   `--reference` or `SQS_REFERENCE_ENDPOINT` names one.
//! - `memory [--messages N] [--size BYTES]`: sqs-local's resident memory with N queued
//!   messages of SIZE bytes.
//!
//! sqs-local runs in a child process (this binary with `serve`), and the scenarios' consumer
//! runs in another (`consume`), so that memory and CPU are measured apart.

mod chart;
mod consumer;
mod long;
mod scenarios;
mod server;
mod telemetry;

use std::process::ExitCode;
use std::time::Duration;

const SCENARIOS: [&str; 7] = ["latency", "io", "long", "many", "large", "cpu", "telemetry"];

fn usage() -> &'static str {
    "usage: sqs-handler-bench [command] [options]\n\
     \n  (no command)  every scenario: latency, io, long, many, large, cpu, telemetry\
     \n  latency [--concurrency 1,10,100] [--node-messages M]\
     \n  io | large\
     \n  long [--messages 2000] [--handler-seconds 40] [--visibility-seconds 10]\
     \n  many [--queues 100] [--warmup-seconds 10] [--window-seconds 40]\
     \n  cpu | telemetry [--callgrind-messages 2500] [--callgrind-dir DIR]\
     \n    each scenario: [--latency SPEC] [--rounds 3] [--scale 1.0]\
     \n  consumer [--messages N] [--endpoint URL] [--idle-seconds S] [--latency-samples K] [--node-messages M]\
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

fn levels(opts: &[(String, String)], default: &str) -> Result<Vec<usize>, String> {
    get(opts, "concurrency", default.to_owned())?
        .split(',')
        .map(|c| {
            c.trim()
                .parse::<usize>()
                .map_err(|_| format!("--concurrency {c:?} is not a number"))
        })
        .collect()
}

/// Runs one scenario of `SCENARIOS`.
async fn scenario(name: &str, opts: &[(String, String)]) -> Result<(), String> {
    let o = scenarios::Options {
        latency: match get(opts, "latency", String::new())? {
            l if l.is_empty() => None,
            l => Some(l),
        },
        rounds: get(opts, "rounds", 3usize)?,
        scale: get(opts, "scale", 1.0f64)?,
        levels: levels(opts, "1,10,100")?,
        node_messages: get(opts, "node-messages", 300usize)?,
        callgrind_messages: get(opts, "callgrind-messages", 2500usize)?,
        callgrind_dir: match get(opts, "callgrind-dir", String::new())? {
            d if d.is_empty() => None,
            d => Some(d.into()),
        },
    };
    match name {
        "latency" => scenarios::latency(&o).await,
        "io" => scenarios::io(&o).await,
        "large" => scenarios::large(&o).await,
        "cpu" => scenarios::cpu(&o).await,
        "telemetry" => scenarios::telemetry(&o).await,
        "long" => {
            long::long(
                &o,
                get(opts, "messages", 2000usize)?,
                get(opts, "handler-seconds", 40u64)?,
                get(opts, "visibility-seconds", 10u64)?,
            )
            .await
        }
        "many" => {
            long::many(
                &o,
                get(opts, "queues", 100usize)?,
                get(opts, "warmup-seconds", 10u64)?,
                get(opts, "window-seconds", 40u64)?,
            )
            .await
        }
        other => Err(format!("unknown scenario {other:?}")),
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
        _ => ("all".to_owned(), &args[..]),
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
                "serve" => server::serve_child(&get(&opts, "latency", "none".to_owned())?).await,
                "consume" => {
                    scenarios::consume_child(scenarios::Consume {
                        endpoint: get(&opts, "endpoint", String::new())?,
                        queue: get(&opts, "queue", String::new())?,
                        url: get(&opts, "url", String::new())?,
                        messages: get(&opts, "messages", 0usize)?,
                        engine: scenarios::Engine::parse(&get(&opts, "engine", String::new())?)?,
                        concurrency: get(&opts, "concurrency", 10usize)?,
                        work: Duration::from_millis(get(&opts, "work-ms", 0u64)?),
                        telemetry: telemetry::Telemetry::parse(&get(
                            &opts,
                            "telemetry",
                            String::new(),
                        )?)?,
                    })
                    .await
                }
                "all" => {
                    let mut failed = Vec::new();
                    for name in SCENARIOS {
                        println!();
                        if let Err(e) = scenario(name, &opts).await {
                            eprintln!("sqs-handler-bench: scenario {name} failed: {e}");
                            failed.push(name);
                        }
                    }
                    if failed.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("scenarios failed: {}", failed.join(", ")))
                    }
                }
                name if SCENARIOS.contains(&name) => scenario(name, &opts).await,
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
                        levels: levels(&opts, "1,10,100")?,
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
