//! Deletes and visibility changes, coalesced into batch calls across concurrent handlers.
//!
//! Entries are buffered per kind and flushed when 10 are waiting or when the flush interval has
//! passed since the first; flushes run concurrently. Within a request ids are the entry's
//! position, so never repeated, and a receipt handle is never sent twice. Entries that fail with
//! a server fault, and calls that fail in transport, are retried; the rest are reported through
//! the `error` event.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};
use futures_util::future::BoxFuture;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Shared;
use crate::events::{ConsumerError, Event, EventKind};

/// One acknowledgement.
#[derive(Debug)]
pub(crate) enum AckOp {
    /// Delete the message.
    Delete(String),
    /// Set its visibility, in seconds from now.
    Visibility(String, i32),
    /// Set these messages' visibility together, in one call and in this order: a stopped
    /// FIFO group, the failed message first.
    Group(Vec<String>, i32),
}

/// Sends acknowledgements to the queue's batcher.
#[derive(Debug, Clone)]
pub(crate) struct Acks {
    tx: mpsc::UnboundedSender<AckOp>,
}

impl Acks {
    /// A sender whose acknowledgements go to the returned receiver, for the testing tools and
    /// Lambda invocations (where Lambda deletes what the function does not report).
    #[cfg(any(feature = "test-util", feature = "lambda"))]
    pub(crate) fn recording() -> (Self, mpsc::UnboundedReceiver<AckOp>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, rx)
    }

    pub(crate) fn delete(&self, receipt_handle: &str) {
        self.send(AckOp::Delete(receipt_handle.to_owned()));
    }

    pub(crate) fn change_visibility(&self, receipt_handle: &str, visibility: Duration) {
        self.send(AckOp::Visibility(
            receipt_handle.to_owned(),
            secs(visibility),
        ));
    }

    /// Makes a stopped FIFO group's messages visible again after `visibility`, together.
    pub(crate) fn release_group(&self, receipt_handles: Vec<String>, visibility: Duration) {
        self.send(AckOp::Group(receipt_handles, secs(visibility)));
    }

    fn send(&self, op: AckOp) {
        // The batcher outlives every sender (it ends when all are dropped), so this cannot fail
        // while a handler task holds an `Acks`.
        if self.tx.send(op).is_err() {
            tracing::error!("acknowledgement dropped: the batcher has stopped");
        }
    }
}

/// A visibility in whole seconds, at most SQS's 12 hours.
fn secs(visibility: Duration) -> i32 {
    i32::try_from(visibility.as_secs()).unwrap_or(43_200)
}

/// At most this many batch requests in flight per queue.
const MAX_FLUSHES: usize = 16;
const RETRIES: u32 = 3;

/// Starts the batcher; it returns when every [`Acks`] is dropped and all is flushed.
pub(crate) fn start(shared: Arc<Shared>) -> (Acks, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(shared, rx));
    (Acks { tx }, task)
}

async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<AckOp>) {
    let interval = shared.options.ack_flush_interval;
    let limit = Arc::new(Semaphore::new(MAX_FLUSHES));
    let mut flushes = JoinSet::new();
    let mut deletes: Vec<String> = Vec::with_capacity(10);
    let mut changes: Vec<(String, i32)> = Vec::with_capacity(10);
    let mut deadline: Option<Instant> = None;
    loop {
        let op = match deadline {
            None => rx.recv().await,
            Some(at) => match tokio::time::timeout_at(at, rx.recv()).await {
                Ok(op) => op,
                Err(_) => {
                    flush(&shared, &limit, &mut flushes, &mut deletes, delete_batch).await;
                    flush(&shared, &limit, &mut flushes, &mut changes, change_batch).await;
                    deadline = None;
                    continue;
                }
            },
        };
        let Some(op) = op else { break };
        match op {
            AckOp::Delete(h) => {
                // A message released earlier in this window and then deleted: drop the release.
                changes.retain(|(c, _)| *c != h);
                if !deletes.contains(&h) {
                    deletes.push(h);
                }
            }
            AckOp::Visibility(h, secs) => {
                if let Some(entry) = changes.iter_mut().find(|(c, _)| *c == h) {
                    entry.1 = secs;
                } else if !deletes.contains(&h) {
                    changes.push((h, secs));
                }
            }
            AckOp::Group(handles, secs) => {
                // Its own call, so that SQS (and an emulator without group locks) returns the
                // group's messages in order.
                changes.retain(|(c, _)| !handles.contains(c));
                let mut group = handles.into_iter().map(|h| (h, secs)).collect();
                flush(&shared, &limit, &mut flushes, &mut group, change_batch).await;
            }
        }
        if deletes.len() >= 10 {
            flush(&shared, &limit, &mut flushes, &mut deletes, delete_batch).await;
        }
        if changes.len() >= 10 {
            flush(&shared, &limit, &mut flushes, &mut changes, change_batch).await;
        }
        deadline = if deletes.is_empty() && changes.is_empty() {
            None
        } else {
            Some(deadline.unwrap_or_else(|| Instant::now() + interval))
        };
        while flushes.try_join_next().is_some() {}
    }
    flush(&shared, &limit, &mut flushes, &mut deletes, delete_batch).await;
    flush(&shared, &limit, &mut flushes, &mut changes, change_batch).await;
    while flushes.join_next().await.is_some() {}
}

/// Sends the buffered entries as one batch call in its own task (at most `MAX_FLUSHES` at once).
async fn flush<T, F>(
    shared: &Arc<Shared>,
    limit: &Arc<Semaphore>,
    set: &mut JoinSet<()>,
    buf: &mut Vec<T>,
    send: fn(Arc<Shared>, Vec<T>) -> F,
) where
    T: Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    if buf.is_empty() {
        return;
    }
    let entries = std::mem::take(buf);
    let Ok(permit) = limit.clone().acquire_owned().await else {
        return;
    };
    // Small (672 bytes): the SDK call's future lives in the box `send_batch` awaits.
    let call = send(shared.clone(), entries);
    set.spawn(async move {
        let _permit = permit;
        call.await;
    });
}

pub(crate) async fn report(
    shared: &Shared,
    operation: &'static str,
    error: impl Into<crate::BoxError>,
) {
    let error: crate::BoxError = error.into();
    tracing::warn!(queue = %shared.queue, operation, error = %error, "SQS call failed");
    if shared.hooks.wants(EventKind::Error) {
        let event = Event::Error(ConsumerError {
            queue: shared.queue.clone(),
            operation,
            error: Arc::new(error),
        });
        shared.hooks.fire(event, &shared.hook_ctx).await;
    }
}

/// Sends `items` as one batch call, retrying transport faults and the entries that failed with
/// a server fault (up to `RETRIES` times); reports the rest, saying `consequence`. `call` sends
/// the items with ids that are their positions and returns the failed entries; it calls the
/// SDK's `send` inside the box it returns, so that future (several KiB) is built in place, not
/// moved.
async fn send_batch<T>(
    shared: &Shared,
    operation: &'static str,
    consequence: &str,
    mut items: Vec<T>,
    call: impl Fn(&[T]) -> BoxFuture<'static, Result<Vec<BatchResultErrorEntry>, String>>,
) {
    for attempt in 0..=RETRIES {
        let last = attempt == RETRIES;
        match call(&items).await {
            Ok(failed) => {
                let mut retry = vec![false; items.len()];
                for f in &failed {
                    match f.id().parse::<usize>().ok().filter(|i| *i < items.len()) {
                        Some(i) if !f.sender_fault() && !last => retry[i] = true,
                        _ => {
                            let why = f.message().unwrap_or("");
                            let text = format!("entry failed ({}): {why}; {consequence}", f.code());
                            report(shared, operation, text).await;
                        }
                    }
                }
                if !retry.contains(&true) {
                    return;
                }
                items = items
                    .into_iter()
                    .zip(retry)
                    .filter_map(|(item, again)| again.then_some(item))
                    .collect();
            }
            Err(e) if !last => {
                tracing::debug!(queue = %shared.queue, operation, error = %e, "batch call failed; retrying");
            }
            Err(e) => {
                let text = format!("{} entries not applied: {e}; {consequence}", items.len());
                report(shared, operation, text).await;
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
    }
}

async fn delete_batch(shared: Arc<Shared>, handles: Vec<String>) {
    let call = |handles: &[String]| -> BoxFuture<'static, _> {
        let entries = handles
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(h)
                    .build()
                    .ok()
            })
            .collect();
        let request = shared
            .client
            .delete_message_batch()
            .queue_url(&shared.url)
            .set_entries(Some(entries));
        let owner = shared.clone();
        Box::pin(async move {
            let out = request
                .send()
                .await
                .map_err(|e| DisplayErrorContext(&e).to_string())?;
            let deleted = out.successful().len() as u64;
            owner.counters.deleted.fetch_add(deleted, Ordering::Relaxed);
            owner.telemetry.deleted(deleted);
            Ok(out.failed)
        })
    };
    let consequence = "the message may be delivered again";
    send_batch(&shared, "DeleteMessageBatch", consequence, handles, call).await;
}

/// ChangeMessageVisibilityBatch entries, their ids the positions (distinct by construction).
pub(crate) fn visibility_entries<'a>(
    entries: impl Iterator<Item = (&'a str, i32)>,
) -> Vec<ChangeMessageVisibilityBatchRequestEntry> {
    entries
        .enumerate()
        .filter_map(|(i, (handle, secs))| {
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(handle)
                .visibility_timeout(secs)
                .build()
                .ok()
        })
        .collect()
}

async fn change_batch(shared: Arc<Shared>, changes: Vec<(String, i32)>) {
    let call = |changes: &[(String, i32)]| -> BoxFuture<'static, _> {
        let entries = visibility_entries(changes.iter().map(|(h, secs)| (h.as_str(), *secs)));
        let request = shared
            .client
            .change_message_visibility_batch()
            .queue_url(&shared.url)
            .set_entries(Some(entries));
        Box::pin(async move {
            let out = request
                .send()
                .await
                .map_err(|e| DisplayErrorContext(&e).to_string())?;
            Ok(out.failed)
        })
    };
    let consequence = "the message returns when its visibility timeout ends";
    send_batch(
        &shared,
        "ChangeMessageVisibilityBatch",
        consequence,
        changes,
        call,
    )
    .await;
}
