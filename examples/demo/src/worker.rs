//! The queue handler and its hooks: the worker half of the demo.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqs_handler::{
    BoxError, Json, MessageAction, NonRetryable, ProcessingError, ReceiveCount, State,
    TimeoutError, sqs_consumer_event_handler, sqs_message_handler,
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
    /// The dead-letter queue non-retryable jobs are forwarded to.
    pub dlq: String,
    /// The queue's `maxReceiveCount` (its RedrivePolicy), when it has one: after that many
    /// failed attempts SQS moves the message to the dead-letter queue.
    pub max_receive_count: Option<u32>,
}

impl Worker {
    /// The status a failed attempt leaves its job in: final (`error`, `dead_lettered`) only
    /// when SQS will not deliver the message to this queue again.
    pub fn status_after_failure(&self, action: &MessageAction, attempt: u32) -> Status {
        match action {
            MessageAction::Deleted => Status::Error,
            MessageAction::Forwarded(queue) if *queue == self.dlq => Status::DeadLettered,
            MessageAction::Forwarded(_) => Status::Error,
            // Left or released: delivered again, unless this was the last receive the
            // RedrivePolicy allows; then SQS moves it to the dead-letter queue instead.
            _ if self.max_receive_count.is_some_and(|max| attempt >= max) => Status::DeadLettered,
            _ => Status::Retrying,
        }
    }

    async fn failed(
        &self,
        body: &str,
        action: &MessageAction,
        attempt: u32,
        reason: String,
    ) -> Result<(), BoxError> {
        let Some(id) = job_id(body) else {
            tracing::warn!(body, "a message that is not a job failed");
            return Ok(());
        };
        let status = self.status_after_failure(action, attempt);
        tracing::info!(%id, ?status, attempt, ?action, %reason, "job attempt failed");
        self.store.set(&id, status, attempt, Some(reason)).await?;
        Ok(())
    }
}

/// Runs a job: processing, the heavy work, done. A message containing "fail" fails (not
/// retried); one containing "flaky" fails its first attempt (retried); one containing "slow"
/// runs past the handler timeout and is cancelled (retried).
#[sqs_message_handler(env = "SQS_QUEUE_NAME", default = "jobs")]
pub async fn run_job(
    Json(job): Json<JobMessage>,
    ReceiveCount(attempt): ReceiveCount,
    State(worker): State<Worker>,
) -> Result<(), BoxError> {
    worker
        .store
        .set(&job.id, Status::Processing, attempt, None)
        .await?;
    tracing::info!(id = %job.id, attempt, "job processing");
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
    if job.message.contains("flaky") && attempt == 1 {
        return Err("the job's message asked its first attempt to fail".into());
    }
    worker
        .store
        .set(&job.id, Status::Done, attempt, None)
        .await?;
    tracing::info!(id = %job.id, "job done");
    Ok(())
}

fn job_id(body: &str) -> Option<String> {
    serde_json::from_str::<JobMessage>(body).ok().map(|j| j.id)
}

/// A failed attempt: `retrying`, `error` or `dead_lettered` with the reason, by what the
/// consumer did with the message.
#[sqs_consumer_event_handler(env = "SQS_QUEUE_NAME", default = "jobs", processing_error)]
pub async fn on_processing_error(
    event: ProcessingError,
    State(worker): State<Worker>,
) -> Result<(), BoxError> {
    let reason = match &*event.error {
        e if NonRetryable::is_in(&**e) => e
            .source()
            .map_or_else(|| e.to_string(), ToString::to_string),
        e => e.to_string(),
    };
    worker
        .failed(
            event.message.body(),
            &event.action,
            event.message.receive_count(),
            reason,
        )
        .await
}

/// An attempt that ran past the timeout: as a failed one.
#[sqs_consumer_event_handler(env = "SQS_QUEUE_NAME", default = "jobs", timeout_error)]
pub async fn on_timeout_error(
    event: TimeoutError,
    State(worker): State<Worker>,
) -> Result<(), BoxError> {
    let reason = format!(
        "timed out after {} ms and was cancelled",
        event.timeout.as_millis()
    );
    worker
        .failed(
            event.message.body(),
            &event.action,
            event.message.receive_count(),
            reason,
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(max_receive_count: Option<u32>) -> Worker {
        Worker {
            store: JobStore::memory(),
            job_duration: Duration::ZERO,
            job_timeout: Duration::ZERO,
            dlq: "jobs-dlq".to_owned(),
            max_receive_count,
        }
    }

    #[test]
    fn a_failure_is_final_only_when_the_message_is_not_delivered_again() {
        let w = worker(Some(3));
        let left = MessageAction::LeftForRedelivery;
        let released = MessageAction::Released(Duration::ZERO);
        assert_eq!(w.status_after_failure(&left, 1), Status::Retrying);
        assert_eq!(w.status_after_failure(&released, 2), Status::Retrying);
        assert_eq!(w.status_after_failure(&left, 3), Status::DeadLettered);
        assert_eq!(w.status_after_failure(&released, 4), Status::DeadLettered);
        assert_eq!(
            w.status_after_failure(&MessageAction::Forwarded("jobs-dlq".into()), 1),
            Status::DeadLettered
        );
        assert_eq!(
            w.status_after_failure(&MessageAction::Forwarded("elsewhere".into()), 1),
            Status::Error
        );
        assert_eq!(
            w.status_after_failure(&MessageAction::Deleted, 1),
            Status::Error
        );
        // No RedrivePolicy: SQS retries for ever.
        assert_eq!(
            worker(None).status_after_failure(&left, 50),
            Status::Retrying
        );
    }

    #[tokio::test]
    async fn a_retry_keeps_the_last_error_until_done() {
        let w = worker(Some(3));
        w.store.create("j").await.unwrap();
        w.failed(
            r#"{"id":"j","message":"m"}"#,
            &MessageAction::LeftForRedelivery,
            1,
            "boom".into(),
        )
        .await
        .unwrap();
        let job = w.store.get("j").await.unwrap().unwrap();
        assert_eq!(
            (job.status, job.attempts, job.error.as_deref()),
            (Status::Retrying, 1, Some("boom"))
        );
        w.store.set("j", Status::Processing, 2, None).await.unwrap();
        let job = w.store.get("j").await.unwrap().unwrap();
        assert_eq!(
            (job.status, job.attempts, job.error.as_deref()),
            (Status::Processing, 2, Some("boom"))
        );
        w.store.set("j", Status::Done, 2, None).await.unwrap();
        let job = w.store.get("j").await.unwrap().unwrap();
        assert_eq!(
            (job.status, job.attempts, job.error),
            (Status::Done, 2, None)
        );
    }
}
