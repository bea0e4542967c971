//! Keeps long-running messages invisible: while a handler runs past half its visibility
//! timeout, the message's visibility is extended by the timeout again, in batches.
//!
//! Only messages still running, or still waiting (a FIFO group's later messages, prefetched
//! messages waiting for a handler slot), at half the timeout are registered (a timer in the
//! message's own task), so short handlers cost no locking. A message is unregistered before it
//! is deleted or released, and unregistering waits for an extension in flight to finish, so no
//! extension is ever sent after a delete or a release.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::ack::{report, visibility_entries};

/// The heartbeat of one queue.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    shared: Arc<Shared>,
    visibility: Duration,
    /// Receipt handle to the time its visibility ends.
    entries: Mutex<HashMap<String, Instant>>,
}

impl Heartbeat {
    /// A heartbeat for `visibility`, or `None` when it could never be needed.
    pub(crate) fn new(shared: Arc<Shared>, visibility: Duration) -> Option<Arc<Self>> {
        // A handler timeout within half the visibility makes it unneeded, unless messages
        // also wait: for a handler slot (prefetch), or for their turn in a FIFO group.
        let o = &shared.options;
        let waits = o.prefetch > 0 || shared.fifo;
        let needed = o.heartbeat
            && !visibility.is_zero()
            && (waits || o.handler_timeout.is_none_or(|t| t > visibility / 2));
        needed.then(|| {
            Arc::new(Self {
                shared,
                visibility,
                entries: Mutex::new(HashMap::new()),
            })
        })
    }

    fn tick(&self) -> Duration {
        (self.visibility / 4).clamp(Duration::from_millis(50), Duration::from_secs(30))
    }

    /// How long a handler may run before its message needs the heartbeat: half the
    /// visibility timeout. Messages handled faster are never registered.
    pub(crate) fn threshold(&self) -> Duration {
        self.visibility / 2
    }

    /// Starts extending a message whose visibility ends `visibility` after `received_at`.
    pub(crate) async fn register(&self, receipt_handle: &str, received_at: Instant) {
        // Registered again (a waiting FIFO message whose turn came): keep the extended deadline.
        self.entries
            .lock()
            .await
            .entry(receipt_handle.to_owned())
            .or_insert(received_at + self.visibility);
    }

    /// Stops extending; returns once no extension for it is in flight.
    pub(crate) async fn unregister(&self, receipt_handle: &str) {
        self.entries.lock().await.remove(receipt_handle);
    }

    pub(crate) async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut interval = tokio::time::interval(self.tick());
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.cancelled() => return,
            }
            self.extend_due().await;
        }
    }

    async fn extend_due(&self) {
        let mut entries = self.entries.lock().await;
        let now = Instant::now();
        let half = self.visibility / 2;
        let due: Vec<String> = entries
            .iter()
            .filter(|(_, until)| until.saturating_duration_since(now) <= half)
            .map(|(h, _)| h.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        let secs = i32::try_from(self.visibility.as_secs().max(1)).unwrap_or(43_200);
        let calls = due.chunks(10).map(|chunk| {
            let request = visibility_entries(chunk.iter().map(|h| (h.as_str(), secs)));
            self.shared
                .client
                .change_message_visibility_batch()
                .queue_url(&self.shared.url)
                .set_entries(Some(request))
                .send()
        });
        let results = futures_util::future::join_all(calls).await;
        let until = Instant::now() + self.visibility;
        for (chunk, result) in due.chunks(10).zip(results) {
            match result {
                Ok(out) => {
                    let failed: Vec<usize> = out
                        .failed()
                        .iter()
                        .filter_map(|f| f.id().parse().ok())
                        .collect();
                    for (i, h) in chunk.iter().enumerate() {
                        if !failed.contains(&i)
                            && let Some(u) = entries.get_mut(h)
                        {
                            *u = until;
                        }
                    }
                    for f in out.failed() {
                        report(
                            &self.shared,
                            "ChangeMessageVisibilityBatch",
                            format!(
                                "heartbeat could not extend a message ({}): {}",
                                f.code(),
                                f.message().unwrap_or("")
                            ),
                        )
                        .await;
                    }
                }
                Err(e) => {
                    report(
                        &self.shared,
                        "ChangeMessageVisibilityBatch",
                        format!(
                            "heartbeat failed for {} messages: {}",
                            chunk.len(),
                            aws_sdk_sqs::error::DisplayErrorContext(&e)
                        ),
                    )
                    .await;
                }
            }
        }
        tracing::trace!(queue = %self.shared.queue, count = due.len(), "visibility extended");
    }
}
