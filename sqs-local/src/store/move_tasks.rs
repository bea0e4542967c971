//! Dead-letter queue redrive: StartMessageMoveTask, ListMessageMoveTasks and
//! CancelMessageMoveTask, and the background task that moves the messages.
//!
//! As on SQS, the source must be some queue's dead-letter queue; without a DestinationArn each
//! message goes back to the queue it was dead-lettered from (its `DeadLetterQueueSourceArn`);
//! a source queue runs one task at a time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Call, SqsState, StateInner, opt_range, parse_json, reply};
use crate::error::{ApiError, ApiResult};
use crate::protocol::*;
use crate::queue::{Queue, epoch_millis};

/// AWS's limit on MaxNumberOfMessagesPerSecond.
const MAX_RATE: i64 = 500;
/// Finished tasks remembered per source queue: as many as ListMessageMoveTasks can return.
const HISTORY: usize = 10;
/// Without a rate, messages moved between yields to the runtime.
const UNTHROTTLED_BATCH: u64 = 64;

/// The state of a message move task, named as SQS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    Completed,
    Cancelling,
    Cancelled,
    Failed,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Completed => "COMPLETED",
            Status::Cancelling => "CANCELLING",
            Status::Cancelled => "CANCELLED",
            Status::Failed => "FAILED",
        }
    }

    fn active(self) -> bool {
        matches!(self, Status::Running | Status::Cancelling)
    }
}

/// One message move task.
#[derive(Debug)]
pub(super) struct MoveTask {
    id: String,
    source_arn: String,
    destination_arn: Option<String>,
    max_per_second: Option<u32>,
    started_ms: u64,
    to_move: u64,
    moved: AtomicU64,
    /// The status and, for a failed task, why.
    status: Mutex<(Status, Option<String>)>,
    cancel: CancellationToken,
}

impl MoveTask {
    fn status(&self) -> (Status, Option<String>) {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The handle SQS gives out: base64 of the task id and the source ARN.
    fn handle(&self) -> String {
        let doc = json!({ "taskId": self.id, "sourceArn": self.source_arn });
        STANDARD.encode(doc.to_string())
    }

    fn entry(&self) -> Value {
        let (status, reason) = self.status();
        let mut e = json!({
            "SourceArn": self.source_arn,
            "Status": status.name(),
            "StartedTimestamp": self.started_ms,
            "ApproximateNumberOfMessagesMoved": self.moved.load(Ordering::Relaxed),
            "ApproximateNumberOfMessagesToMove": self.to_move,
        });
        let mut put = |k: &str, v: Value| {
            if let Some(map) = e.as_object_mut() {
                map.insert(k.to_owned(), v);
            }
        };
        if status == Status::Running {
            put("TaskHandle", json!(self.handle()));
        }
        if let Some(d) = &self.destination_arn {
            put("DestinationArn", json!(d));
        }
        if let Some(r) = self.max_per_second {
            put("MaxNumberOfMessagesPerSecond", json!(r));
        }
        if let Some(r) = reason {
            put("FailureReason", json!(r));
        }
        e
    }
}

/// Finds the queue an ARN parameter names, with SQS's errors for a malformed or unknown one.
fn queue_for_arn(s: &SqsState, arn: &str, parameter: &str) -> ApiResult<Arc<Queue>> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts.iter().any(|p| p.is_empty()) {
        return Err(ApiError::invalid_parameter(format!(
            "You must use this format to specify the {parameter}: arn:<partition>:<service>:<region>:<account-id>:<resource-id>"
        )));
    }
    s.queue_by_arn(arn).ok_or_else(|| {
        ApiError::resource_not_found(format!(
            "The resource that you specified for the {parameter} parameter doesn't exist."
        ))
    })
}

pub(super) fn start_message_move_task(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: StartMessageMoveTaskRequest = parse_json(c.body)?;
    let source_arn = required(req.source_arn, "SourceArn")?;
    let source = queue_for_arn(s, &source_arn, "SourceArn")?;
    if s.dead_letter_sources(&source).is_empty() {
        return Err(ApiError::invalid_parameter(
            "Source queue must be configured as a Dead Letter Queue.",
        ));
    }
    if let Some(d) = &req.destination_arn {
        let destination = queue_for_arn(s, d, "DestinationArn")?;
        if destination.fifo != source.fifo {
            return Err(ApiError::invalid_parameter(
                "The destination queue must be of the same type (standard or FIFO) as the source queue.",
            ));
        }
    }
    let rate = opt_range(
        "MaxNumberOfMessagesPerSecond",
        req.max_number_of_messages_per_second,
        1,
        MAX_RATE,
    )?;
    let task = Arc::new(MoveTask {
        id: uuid::Uuid::new_v4().hyphenated().to_string(),
        source_arn,
        destination_arn: req.destination_arn,
        max_per_second: rate.map(|r| r as u32),
        started_ms: epoch_millis(),
        to_move: source.counts(c.now).visible as u64,
        moved: AtomicU64::new(0),
        status: Mutex::new((Status::Running, None)),
        cancel: CancellationToken::new(),
    });
    register(s, &task)?;
    tokio::spawn(run(Arc::downgrade(&s.inner), task.clone()));
    Ok(reply(&json!({ "TaskHandle": task.handle() })))
}

/// Records a new task, refusing it while another one of the same source is active.
fn register(s: &SqsState, task: &Arc<MoveTask>) -> ApiResult<()> {
    let mut tasks = s.inner.move_tasks.lock().unwrap_or_else(|e| e.into_inner());
    let same_source = |t: &Arc<MoveTask>| t.source_arn == task.source_arn;
    if tasks
        .iter()
        .any(|t| same_source(t) && t.status().0.active())
    {
        return Err(ApiError::invalid_parameter(
            "There is already a task running. Only one active task is allowed for a source queue arn at a given time.",
        ));
    }
    tasks.push(task.clone());
    // Forget the oldest tasks of this source beyond HISTORY (oldest first in the list; all
    // finished, since only the new one is active).
    let mut excess = tasks
        .iter()
        .filter(|t| same_source(t))
        .count()
        .saturating_sub(HISTORY);
    tasks.retain(|t| {
        if excess > 0 && same_source(t) {
            excess -= 1;
            return false;
        }
        true
    });
    Ok(())
}

pub(super) fn list_message_move_tasks(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: ListMessageMoveTasksRequest = parse_json(c.body)?;
    let source_arn = required(req.source_arn, "SourceArn")?;
    queue_for_arn(s, &source_arn, "SourceArn")?;
    let max = opt_range("MaxResults", req.max_results, 1, HISTORY as i64)?.unwrap_or(1);
    let tasks = s.inner.move_tasks.lock().unwrap_or_else(|e| e.into_inner());
    let results: Vec<Value> = tasks
        .iter()
        .rev()
        .filter(|t| t.source_arn == source_arn)
        .take(max as usize)
        .map(|t| t.entry())
        .collect();
    Ok(reply(&json!({ "Results": results })))
}

pub(super) fn cancel_message_move_task(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: CancelMessageMoveTaskRequest = parse_json(c.body)?;
    let handle = required(req.task_handle, "TaskHandle")?;
    let invalid = || ApiError::invalid_parameter("Value for parameter TaskHandle is invalid.");
    let doc: Value = STANDARD
        .decode(handle.as_bytes())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(invalid)?;
    let id = doc
        .get("taskId")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    let task = s
        .inner
        .move_tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|t| t.id == id)
        .cloned()
        .ok_or_else(|| ApiError::resource_not_found("Task does not exist."))?;
    // Checked and changed under one lock, so that a task finishing meanwhile is either
    // cancelled here or reported finished, never left CANCELLING.
    let mut status = task.status.lock().unwrap_or_else(|e| e.into_inner());
    if status.0 != Status::Running {
        return Err(ApiError::resource_not_found(format!(
            "Only a running task can be cancelled; this one is {}.",
            status.0.name()
        )));
    }
    *status = (Status::Cancelling, None);
    task.cancel.cancel();
    drop(status);
    Ok(reply(&json!({
        "ApproximateNumberOfMessagesMoved": task.moved.load(Ordering::Relaxed)
    })))
}

/// Moves messages until the source has no visible one left, the task is cancelled, a move
/// fails, or the state is dropped.
async fn run(state: Weak<StateInner>, task: Arc<MoveTask>) {
    let pause = task
        .max_per_second
        .map(|r| Duration::from_secs(1) / r.max(1));
    let outcome = loop {
        if task.cancel.is_cancelled() {
            break Ok(Status::Cancelled);
        }
        let Some(inner) = state.upgrade() else { return };
        let step = move_one(&SqsState { inner }, &task);
        match step {
            Ok(true) => {}
            Ok(false) => break Ok(Status::Completed),
            Err(reason) => break Err(reason),
        }
        let moved = task.moved.load(Ordering::Relaxed);
        match pause {
            Some(p) => {
                tokio::select! {
                    () = tokio::time::sleep(p) => {}
                    () = task.cancel.cancelled() => {}
                }
            }
            None if moved.is_multiple_of(UNTHROTTLED_BATCH) => tokio::task::yield_now().await,
            None => {}
        }
    };
    let mut status = task.status.lock().unwrap_or_else(|e| e.into_inner());
    *status = match outcome {
        // A cancel that came while the last message moved still ends the task as cancelled.
        Ok(_) if task.cancel.is_cancelled() => (Status::Cancelled, None),
        Ok(done) => (done, None),
        Err(reason) => {
            tracing::debug!(task = %task.id, %reason, "message move task failed");
            (Status::Failed, Some(reason))
        }
    };
}

/// Moves one message; `Ok(false)` when the source has no visible message left.
fn move_one(s: &SqsState, task: &MoveTask) -> Result<bool, String> {
    let source = s
        .queue_by_arn(&task.source_arn)
        .ok_or_else(|| format!("The source queue {} no longer exists.", task.source_arn))?;
    let now = Instant::now();
    let Some(message) = source.take_for_move(now) else {
        return Ok(false);
    };
    let target_arn = task
        .destination_arn
        .clone()
        .or_else(|| message.dead_letter_source().map(str::to_owned));
    let Some(target) = target_arn.as_deref().and_then(|a| s.queue_by_arn(a)) else {
        source.restore(message, now);
        return Err(match target_arn {
            Some(arn) => format!("The destination queue {arn} does not exist."),
            None => "A message has no original source queue (it was sent to the dead-letter queue directly): give a DestinationArn.".to_owned(),
        });
    };
    target.accept_redriven(message, now);
    task.moved.fetch_add(1, Ordering::Relaxed);
    Ok(true)
}
