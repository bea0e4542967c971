//! `fault-worker`: a real consumer process for the fault suite (`tests/tests/faults.rs`).
//!
//! It consumes one queue and appends `<message body>\n` to an output file for every message it
//! handles (one `write_all` of the whole line on a file opened for appending, so a `kill -9`
//! leaves whole lines), then returns `Ok`, which deletes the message. It prints `READY` once
//! the consumer is built, runs until SIGTERM or Ctrl-C with the runtime's graceful shutdown,
//! prints `STATUS received=.. processed=.. failed=.. deleted=..` and exits 0.
//!
//! Every SQS call the consumer reports as failed (the `error` event) is printed on stderr as
//! `EVENT error <operation>: <error>`.
//!
//! Configuration, by environment variable:
//!
//! | variable                       | meaning                                        | default  |
//! |--------------------------------|------------------------------------------------|----------|
//! | `AWS_ENDPOINT_URL_SQS`         | the SQS endpoint (sqs-local, a proxy to it)    | required |
//! | `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` | test values, read by `aws-config` | required |
//! | `FAULT_QUEUE`                  | the queue name                                 | required |
//! | `FAULT_OUTPUT`                 | the file handled bodies are appended to        | required |
//! | `FAULT_CONCURRENCY`            | messages handled at once                       | 10       |
//! | `FAULT_HANDLER_DELAY_MS`       | how long each handler sleeps before writing    | 0        |
//! | `FAULT_SHUTDOWN_TIMEOUT_MS`    | the consumer's shutdown timeout                | 30000    |
//! | `FAULT_WAIT_SECS`              | the long-poll wait per receive                 | 2        |

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sqs_handler::{BoxError, ConsumerError, QueueOptions, SqsConsumer, State};

/// What every handler shares: the output file and the delay.
#[derive(Clone, Debug)]
struct Sink {
    file: Arc<File>,
    delay: Duration,
}

async fn handle(
    sqs_handler::Body(body): sqs_handler::Body,
    State(sink): State<Sink>,
) -> Result<(), BoxError> {
    tokio::time::sleep(sink.delay).await;
    let line = format!("{body}\n");
    // One write on an O_APPEND file: lines from concurrent handlers never interleave.
    (&*sink.file).write_all(line.as_bytes())?;
    Ok(())
}

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn number(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a whole number")),
        Err(_) => Ok(default),
    }
}

async fn run() -> Result<(), String> {
    var("AWS_ENDPOINT_URL_SQS")?;
    let queue = var("FAULT_QUEUE")?;
    let output = var("FAULT_OUTPUT")?;
    let concurrency = number("FAULT_CONCURRENCY", 10)?;
    let delay = Duration::from_millis(number("FAULT_HANDLER_DELAY_MS", 0)?);
    let shutdown = Duration::from_millis(number("FAULT_SHUTDOWN_TIMEOUT_MS", 30_000)?);
    let wait = Duration::from_secs(number("FAULT_WAIT_SECS", 2)?);

    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&output)
        .map_err(|e| format!("cannot open {output}: {e}"))?;
    // Installs tokio's SIGTERM handler now, so a SIGTERM that comes before `run` polls its
    // own listener cannot kill the process with the default action.
    let _early_term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;

    let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let consumer = SqsConsumer::builder(&sdk_config)
        .discover(false)
        .queue(
            queue.clone(),
            QueueOptions::default()
                .concurrency(usize::try_from(concurrency).unwrap_or(usize::MAX))
                .wait_time(wait),
        )
        .handler(queue.clone(), handle)
        .hook(queue.clone(), |e: ConsumerError| async move {
            eprintln!("EVENT error {}: {}", e.operation, e.error);
        })
        .state(Sink {
            file: Arc::new(file),
            delay,
        })
        .shutdown_timeout(shutdown)
        .build()
        .await
        .map_err(|e| format!("cannot build the consumer: {e}"))?;
    let status = consumer.status();
    println!("READY");
    consumer
        .run()
        .await
        .map_err(|e| format!("the consumer failed: {e}"))?;
    if let Some(s) = status.queue(&queue) {
        println!(
            "STATUS received={} processed={} failed={} deleted={}",
            s.received, s.processed, s.failed, s.deleted
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fault-worker: {e}");
            ExitCode::FAILURE
        }
    }
}
