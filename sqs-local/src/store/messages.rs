//! The operations on messages: send, receive (with long polling), delete, change visibility.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Call, Closing, SqsState, opt_range, parse_json, reply};
use crate::error::{ApiError, ApiResult};
use crate::protocol::*;
use crate::queue::{self, Queue, ReceiveOptions};

/// AWS's limit on the bodies of one SendMessageBatch together.
const MAX_BATCH_BYTES: usize = 1_048_576;

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct ReceiveResponse {
    messages: Vec<ReceivedMessage>,
}

pub(super) fn send_message(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: SendMessageRequest = parse_json(c.body)?;
    let q = s.queue(c.scope, req.queue_url)?;
    let mut entry = req.entry;
    entry.id = None;
    Ok(reply(&q.send(entry, c.now)?))
}

pub(super) fn send_message_batch(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: SendMessageBatchRequest = parse_json(c.body)?;
    let q = s.queue(c.scope, req.queue_url)?;
    let entries = required(req.entries, "Entries")?;
    check_batch_ids(
        "SendMessageBatchRequestEntry",
        entries.iter().map(|e| e.id.as_deref()),
    )?;
    let total: usize = entries
        .iter()
        .map(|e| e.message_body.as_ref().map_or(0, String::len))
        .sum();
    if total > MAX_BATCH_BYTES {
        return Err(ApiError::batch_request_too_long(total, MAX_BATCH_BYTES));
    }
    for entry in &entries {
        q.check_fifo_batch_entry(entry)?;
    }
    let mut resp = BatchResponse {
        successful: Vec::new(),
        failed: Vec::new(),
    };
    for entry in entries {
        let id = entry.id.clone().unwrap_or_default();
        match q.send(entry, c.now) {
            Ok(r) => resp.successful.push(r),
            Err(e) => resp.failed.push(BatchFailure::new(&id, e)),
        }
    }
    Ok(reply(&resp))
}

pub(super) async fn receive_message(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: ReceiveMessageRequest = parse_json(c.body)?;
    let q = s.queue(c.scope, req.queue_url)?;
    let max = opt_range("MaxNumberOfMessages", req.max_number_of_messages, 1, 10)?.unwrap_or(1);
    let vt = opt_range(
        "VisibilityTimeout",
        req.visibility_timeout,
        0,
        queue::MAX_VISIBILITY_TIMEOUT,
    )?;
    let wait = match opt_range("WaitTimeSeconds", req.wait_time_seconds, 0, 20)? {
        Some(w) => w as u64,
        None => q.lock().config.receive_wait_time_seconds.into(),
    };
    let mut system = req.message_system_attribute_names;
    system.extend(req.attribute_names);
    let opts = ReceiveOptions {
        max: max as usize,
        visibility_timeout: vt.map(|v| v as u32),
        system_attributes: system,
        message_attributes: req.message_attribute_names,
    };
    let messages = long_poll(s, &q, &opts, Duration::from_secs(wait), c.closing).await;
    if messages.is_empty() {
        s.inner.stats.empty_receives.fetch_add(1, Ordering::Relaxed);
        Ok(reply(&json!({})))
    } else {
        Ok(reply(&ReceiveResponse { messages }))
    }
}

/// Receives with long polling: returns as soon as a message is there, when `wait` runs out,
/// or when the server closes.
async fn long_poll(
    s: &SqsState,
    q: &Arc<Queue>,
    opts: &ReceiveOptions,
    wait: Duration,
    closing: &Closing,
) -> Vec<ReceivedMessage> {
    let deadline = Instant::now() + wait;
    loop {
        let notified = q.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = Instant::now();
        let messages = receive_once(s, q, opts, now);
        if !messages.is_empty() || now >= deadline || closing.0.is_cancelled() {
            return messages;
        }
        // Deleted queue: stop waiting.
        if !s.is_current(q) {
            return messages;
        }
        let wake = q.next_due(now).map_or(deadline, |due| due.min(deadline));
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = closing.0.cancelled() => {}
        }
    }
}

/// One receive attempt; messages over the redrive limit go to the dead-letter queue.
fn receive_once(
    s: &SqsState,
    q: &Arc<Queue>,
    opts: &ReceiveOptions,
    now: Instant,
) -> Vec<ReceivedMessage> {
    let redrive = q.lock().config.redrive.clone();
    let dlq = redrive.as_ref().and_then(|r| s.queue_by_arn(&r.target_arn));
    let (messages, moved) = q.receive(opts, dlq.is_some(), now);
    if let Some(dlq) = dlq.filter(|_| !moved.is_empty()) {
        tracing::debug!(queue = %q.name, dlq = %dlq.name, count = moved.len(), "moved to dead-letter queue");
        dlq.accept_moved(moved, Some(&q.arn), now);
    }
    messages
}

pub(super) fn delete_message(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: ReceiptRequest = parse_json(c.body)?;
    let q = s.queue(c.scope, req.queue_url)?;
    q.delete(&required(req.receipt_handle, "ReceiptHandle")?)?;
    Ok(reply(&json!({})))
}

pub(super) fn delete_message_batch(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: ReceiptBatchRequest = parse_json(c.body)?;
    let q = s.queue(c.scope, req.queue_url)?;
    let entries = required(req.entries, "Entries")?;
    check_batch_ids(
        "DeleteMessageBatchRequestEntry",
        entries.iter().map(|e| e.id.as_deref()),
    )?;
    Ok(reply(&each_entry(entries, |e| {
        required(e.receipt_handle, "ReceiptHandle").and_then(|h| q.delete(&h))
    })))
}

pub(super) fn change_message_visibility(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: ReceiptRequest = parse_json(c.body)?;
    let q = s.queue(c.scope, req.queue_url)?;
    let handle = required(req.receipt_handle, "ReceiptHandle")?;
    let timeout = required(req.visibility_timeout, "VisibilityTimeout")?;
    q.change_visibility(&handle, timeout, c.now)?;
    Ok(reply(&json!({})))
}

pub(super) fn change_message_visibility_batch(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: ReceiptBatchRequest = parse_json(c.body)?;
    let q = s.queue(c.scope, req.queue_url)?;
    let entries = required(req.entries, "Entries")?;
    check_batch_ids(
        "ChangeMessageVisibilityBatchRequestEntry",
        entries.iter().map(|e| e.id.as_deref()),
    )?;
    Ok(reply(&each_entry(entries, |e| {
        let handle = required(e.receipt_handle, "ReceiptHandle")?;
        let timeout = required(e.visibility_timeout, "VisibilityTimeout")?;
        q.change_visibility(&handle, timeout, c.now)
    })))
}

/// Runs `op` on each entry of a batch, reporting each by id.
fn each_entry(
    entries: Vec<ReceiptEntry>,
    op: impl Fn(ReceiptEntry) -> ApiResult<()>,
) -> BatchResponse<IdOnly> {
    let mut resp = BatchResponse {
        successful: Vec::new(),
        failed: Vec::new(),
    };
    for e in entries {
        let id = e.id.clone().unwrap_or_default();
        match op(e) {
            Ok(()) => resp.successful.push(IdOnly { id }),
            Err(err) => resp.failed.push(BatchFailure::new(&id, err)),
        }
    }
    resp
}
