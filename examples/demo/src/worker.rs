//! The queue handler and its hooks: the worker half of the demo.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqs_handler::{
    BoxError, Json, NonRetryable, ProcessingError, State, TimeoutError, sqs_consumer_event_handler,
    sqs_message_handler,
};

use crate::store::{JobStore, Status};

/// What the API puts on the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobMessage {
    /// The job id the client polls.
    pub id: String,
    /// The client's message.
    pub message: String,
}

/// What the worker's handler and hooks need.
#[derive(Debug, Clone)]
pub struct Worker {
    /// Statuses.
    pub store: JobStore,
    /// How long the heavy work takes.
    pub job_duration: Duration,
    /// The handler timeout; a "slow" job runs twice as long.
    pub job_timeout: Duration,
}

/// Runs a job: processing, the heavy work, done. A message containing "fail" fails (not
/// retried); one containing "slow" runs past the handler timeout and is cancelled.
#[sqs_message_handler(env = "SQS_QUEUE_NAME", default = "jobs")]
pub async fn run_job(
    Json(job): Json<JobMessage>,
    State(worker): State<Worker>,
) -> Result<(), BoxError> {
    worker.store.set(&job.id, Status::Processing, None).await?;
    tracing::info!(id = %job.id, "job processing");
    if job.message.contains("fail") {
        return Err(NonRetryable::new("the job's message asked it to fail").into());
    }
    let work = if job.message.contains("slow") {
        worker.job_timeout * 2
    } else {
        worker.job_duration
    };
    // The heavy work of the original: a sleep. Dropped at the handler timeout.
    tokio::time::sleep(work).await;
    worker.store.set(&job.id, Status::Done, None).await?;
    tracing::info!(id = %job.id, "job done");
    Ok(())
}

fn job_id(body: &str) -> Option<String> {
    serde_json::from_str::<JobMessage>(body).ok().map(|j| j.id)
}

/// A failed job: status error with the reason.
#[sqs_consumer_event_handler(env = "SQS_QUEUE_NAME", default = "jobs", processing_error)]
pub async fn on_processing_error(
    event: ProcessingError,
    State(worker): State<Worker>,
) -> Result<(), BoxError> {
    let Some(id) = job_id(event.message.body()) else {
        tracing::warn!(
            body = event.message.body(),
            "a message that is not a job failed"
        );
        return Ok(());
    };
    let reason = match &*event.error {
        e if NonRetryable::is_in(&**e) => e
            .source()
            .map_or_else(|| e.to_string(), ToString::to_string),
        e => e.to_string(),
    };
    worker.store.set(&id, Status::Error, Some(reason)).await?;
    Ok(())
}

/// A job that ran past the timeout: status error.
#[sqs_consumer_event_handler(env = "SQS_QUEUE_NAME", default = "jobs", timeout_error)]
pub async fn on_timeout_error(
    event: TimeoutError,
    State(worker): State<Worker>,
) -> Result<(), BoxError> {
    if let Some(id) = job_id(event.message.body()) {
        let reason = format!(
            "timed out after {} ms and was cancelled",
            event.timeout.as_millis()
        );
        worker.store.set(&id, Status::Error, Some(reason)).await?;
    }
    Ok(())
}
