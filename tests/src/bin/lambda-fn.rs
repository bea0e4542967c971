//! `lambda-fn`: a Lambda function built with `sqs_handler::lambda` on `lambda_runtime`, for the
//! Runtime API tests (`tests/tests/lambda.rs`), which run it against a local Runtime API.
//!
//! It serves three queues with handlers declared by the attribute:
//!
//! - `jobs` (standard) and `orders.fifo`: the body is `{"action": "..."}`; `ok` succeeds,
//!   `error` returns an error, `panic` panics, `slow` sleeps 10 minutes (so the invocation's
//!   deadline cancels it), `drop` returns a `NonRetryable` error (forwarded to `jobs-dlq` from
//!   `jobs`; deleted from `orders.fifo`). A body that is not that JSON fails to extract.
//! - `rows` and `rows.fifo`: batch handlers that fail the messages whose body is not a number.
//!
//! Every handled message prints `HANDLED <queue> <message id>`, every hook
//! `HOOK <event> <queue> <message id> <detail>` on stdout (one `println!` each).
//!
//! Environment: the Lambda runtime's (`AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`,
//! `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `AWS_LAMBDA_FUNCTION_VERSION`), the SQS endpoint of the
//! forward queue (`AWS_ENDPOINT_URL_SQS`, `AWS_REGION` and test credentials), and
//! `LAMBDA_PARTIAL=0` to answer without partial batch responses.

use std::time::Duration;

use sqs_handler::{
    Batch, BatchOutcome, BoxError, Json, MessageId, MessageProcessed, NonRetryable,
    ProcessingError, QueueName, QueueOptions, SqsConsumer, TimeoutError,
    sqs_consumer_event_handler, sqs_message_handler,
};

#[derive(serde::Deserialize)]
struct Job {
    action: String,
}

async fn run(job: Job, queue: &str, id: &str) -> Result<(), BoxError> {
    println!("HANDLED {queue} {id}");
    match job.action.as_str() {
        "ok" => Ok(()),
        "error" => Err("the job failed".into()),
        "panic" => panic!("the job panicked"),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(600)).await;
            Ok(())
        }
        "drop" => Err(NonRetryable::new("the job is invalid").into()),
        other => Err(format!("unknown action {other}").into()),
    }
}

#[sqs_message_handler("jobs")]
async fn jobs(Json(job): Json<Job>, MessageId(id): MessageId) -> Result<(), BoxError> {
    run(job, "jobs", &id).await
}

#[sqs_message_handler("orders.fifo")]
async fn orders(Json(job): Json<Job>, MessageId(id): MessageId) -> Result<(), BoxError> {
    run(job, "orders.fifo", &id).await
}

#[sqs_message_handler("rows", batch)]
async fn rows(Batch(messages): Batch) -> BatchOutcome {
    let mut outcome = BatchOutcome::all_ok();
    for m in &messages {
        println!("HANDLED rows {}", m.message_id());
        if m.body().parse::<f64>().is_err() {
            outcome.record_failure(m, format!("not a number: {}", m.body()));
        }
    }
    outcome
}

#[sqs_message_handler("rows.fifo", batch)]
async fn fifo_rows(batch: Batch) -> BatchOutcome {
    rows(batch).await
}

async fn on_error(e: ProcessingError, QueueName(queue): QueueName) {
    println!(
        "HOOK processing_error {queue} {} {:?} {:?}",
        e.message.message_id(),
        e.kind,
        e.action
    );
}

async fn on_timeout(e: TimeoutError, QueueName(queue): QueueName) {
    println!("HOOK timeout_error {queue} {}", e.message.message_id());
}

async fn on_processed(e: MessageProcessed, QueueName(queue): QueueName) {
    println!("HOOK message_processed {queue} {}", e.message.message_id());
}

#[sqs_consumer_event_handler("jobs", processing_error)]
async fn jobs_error(e: ProcessingError, q: QueueName) {
    on_error(e, q).await;
}

#[sqs_consumer_event_handler("orders.fifo", processing_error)]
async fn orders_error(e: ProcessingError, q: QueueName) {
    on_error(e, q).await;
}

#[sqs_consumer_event_handler("rows", processing_error)]
async fn rows_error(e: ProcessingError, q: QueueName) {
    on_error(e, q).await;
}

#[sqs_consumer_event_handler("rows.fifo", processing_error)]
async fn fifo_rows_error(e: ProcessingError, q: QueueName) {
    on_error(e, q).await;
}

#[sqs_consumer_event_handler("jobs", timeout_error)]
async fn jobs_timeout(e: TimeoutError, q: QueueName) {
    on_timeout(e, q).await;
}

#[sqs_consumer_event_handler("orders.fifo", timeout_error)]
async fn orders_timeout(e: TimeoutError, q: QueueName) {
    on_timeout(e, q).await;
}

#[sqs_consumer_event_handler("jobs", message_processed)]
async fn jobs_processed(e: MessageProcessed, q: QueueName) {
    on_processed(e, q).await;
}

#[tokio::main]
async fn main() -> Result<(), sqs_handler::lambda_runtime::Error> {
    let config = aws_config::load_from_env().await;
    let partial = std::env::var("LAMBDA_PARTIAL").map_or(true, |v| v != "0");
    let function = SqsConsumer::builder(&config)
        .queue(
            "jobs",
            QueueOptions::default().forward_non_retryable_to("jobs-dlq"),
        )
        .build_lambda()
        .await?
        .report_batch_item_failures(partial);
    println!("READY");
    function.run().await
}
