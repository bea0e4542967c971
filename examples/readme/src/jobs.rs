//! The application's side of the README example: what a job is, where statuses live, how a job
//! fails. A real service has its own (a database pool in `JobStore`, its own error type).

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// A message of the `jobs` queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) input: String,
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JobError {
    #[error("job {id} failed: {reason}")]
    Failed { id: String, reason: String },
}

/// A job's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    Processing,
    Done,
    Failed(String),
}

/// Job statuses by id; in memory here, a database in a real service.
#[derive(Clone, Default)]
pub(crate) struct JobStore(Arc<watch::Sender<BTreeMap<String, Status>>>);

impl JobStore {
    /// Runs a job. One whose input contains "fail" fails.
    pub(crate) async fn process(&self, job: Job) -> Result<(), JobError> {
        self.set(&job.id, Status::Processing);
        tracing::info!(id = %job.id, input = %job.input, "job processing");
        tokio::time::sleep(Duration::from_millis(100)).await; // the work
        if job.input.contains("fail") {
            return Err(JobError::Failed {
                id: job.id,
                reason: "its input asked it to fail".to_owned(),
            });
        }
        self.set(&job.id, Status::Done);
        tracing::info!(id = %job.id, "job done");
        Ok(())
    }

    /// Records the failure of the job in `body` (the message's body).
    pub(crate) async fn mark_failed(&self, body: &str, error: impl Display) {
        let id = serde_json::from_str::<Job>(body).map_or_else(|_| body.to_owned(), |job| job.id);
        self.set(&id, Status::Failed(error.to_string()));
    }

    /// Every status, by job id.
    pub(crate) fn statuses(&self) -> BTreeMap<String, Status> {
        self.0.borrow().clone()
    }

    /// Completes once `n` jobs are done or failed.
    pub(crate) async fn wait_until_settled(&self, n: usize) {
        let mut statuses = self.0.subscribe();
        let settled = |s: &BTreeMap<String, Status>| {
            s.values().filter(|s| **s != Status::Processing).count() >= n
        };
        let _ = statuses.wait_for(settled).await;
    }

    fn set(&self, id: &str, status: Status) {
        self.0.send_modify(|s| {
            s.insert(id.to_owned(), status);
        });
    }
}
