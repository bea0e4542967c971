//! The poll loop: capacity, readiness and the circuit breaker gate each receive; what a receive
//! returns is dispatched to handler tasks.
//!
//! A receive in flight when shutdown begins is never cut. SQS keeps serving a long poll whose
//! client went away: it would take the messages that shutdown releases a moment later and
//! send them to a connection nobody reads, leaving them invisible for the visibility timeout
//! with a receive count spent for nothing (aws-sdk-java-v2#1395, aws-sdk-go-v2#2068). So the
//! poll runs to its end (at most the wait time) and its messages are handled like any others
//! (with prefetch, those that find no free handler slot are released untouched).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;
use aws_sdk_sqs::types::Message;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use tracing::Instrument as _;

use super::ack::report;
use super::breaker::CircuitState;
use super::worker::{Backoff, Dispatch, ResponseTracker, Worker, fifo_groups};
use crate::events::{Empty, Event, EventKind};
use crate::message::SqsMessage;
use crate::telemetry::Telemetry;

/// How long the poll loop waits to fill a whole receive with free capacity.
const BATCH_FILL: Duration = Duration::from_millis(10);

impl Worker {
    /// One poll loop; `index` 0 always polls, the others only while there is a backlog.
    pub(super) async fn poll(self: Arc<Self>, index: usize, shutdown: &CancellationToken) {
        let mut backlog = self.backlog.subscribe();
        let mut backoff = Backoff::default();
        loop {
            if !self.shared.counters.wait_while_paused().await {
                break;
            }
            if index > 0 && !*backlog.borrow_and_update() {
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    r = backlog.wait_for(|b| *b) => if r.is_err() { break },
                }
            }
            let limit = match &self.shared.breaker {
                Some(b) => match b.admit(shutdown).await {
                    Ok(limit) => {
                        // Admission is where open turns half-open: the gauge follows.
                        self.shared.telemetry.circuit(b.state());
                        limit
                    }
                    Err(()) => break,
                },
                None => None,
            };
            let Some(permits) = self.take_permits(limit, shutdown).await else {
                break;
            };
            if limit.is_none() && self.breaker_tripped() {
                // It opened while this poller waited for capacity.
                continue;
            }
            if !self.ready(shutdown, &mut backoff).await || shutdown.is_cancelled() {
                if limit.is_some() {
                    self.probe_received(0);
                }
                if shutdown.is_cancelled() {
                    break;
                }
                continue;
            }
            // Visibility starts when SQS answers; this instant is a little earlier, so the
            // heartbeat's arithmetic errs on the early side.
            let received_at = tokio::time::Instant::now();
            let received = self.receive(permits.len()).await;
            if limit.is_some() {
                self.probe_received(received.as_ref().map_or(0, Vec::len));
            }
            match received {
                Ok(messages) => {
                    backoff.reset();
                    self.dispatch(messages, permits, received_at).await;
                }
                Err(error) => {
                    drop(permits);
                    let delay = backoff.next();
                    self.receive_failed(error, delay).await;
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {},
                        _ = shutdown.cancelled() => break,
                    }
                }
            }
            if shutdown.is_cancelled() {
                break;
            }
        }
    }

    fn breaker_tripped(&self) -> bool {
        self.shared
            .breaker
            .as_ref()
            .is_some_and(|b| b.state() != CircuitState::Closed)
    }

    fn probe_received(&self, messages: usize) {
        if let Some(b) = &self.shared.breaker {
            b.probe_received(messages);
        }
    }

    /// Takes capacity for one receive: at least one permit, at most `limit` (a probe) or a
    /// whole receive. `None` when shutdown began first.
    ///
    /// Only the poller holding `collecting` waits on the semaphore, so it gets every permit freed
    /// until it has a whole receive, and the next poller collects the next. Were every poller
    /// waiting on it, the fair semaphore would hand the permits that one receive's handlers
    /// free one to each of as many pollers, and each would receive a message or two.
    async fn take_permits(
        &self,
        limit: Option<i32>,
        shutdown: &CancellationToken,
    ) -> Option<Vec<OwnedSemaphorePermit>> {
        let sem = &self.capacity;
        let _collecting = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return None,
            t = self.collecting.lock() => t,
        };
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return None,
            p = sem.clone().acquire_owned() => p.ok()?,
        };
        let max = self.shared.options.max_messages.clamp(1, 10);
        let want = limit.unwrap_or(max).min(max) as usize;
        // A batch is handled at once, so it never holds more than the concurrency; messages
        // handled one by one may be received up to the prefetch ahead.
        let o = &self.shared.options;
        let most = match self.dispatch {
            Dispatch::Batch(_) => o.concurrency,
            Dispatch::Message(_) => o.concurrency + o.prefetch,
        };
        Some(fill(sem, first, want.min(most)).await)
    }

    /// Respects the layered service's readiness before taking messages off the queue; false
    /// when it is not ready (reported, after a backoff) or shutdown began. The readied clone is
    /// dropped before the receive: holding what readiness reserved (a concurrency-limit permit)
    /// through a long poll would starve running handlers.
    async fn ready(&self, shutdown: &CancellationToken, backoff: &mut Backoff) -> bool {
        let Dispatch::Message(svc) = &self.dispatch else {
            return true;
        };
        let mut svc = svc.clone();
        let r = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return false,
            r = svc.ready() => r.map(|_| ()),
        };
        let Err(e) = r else { return true };
        report(
            &self.shared,
            "poll_ready",
            format!("the handler service is not ready: {e}"),
        )
        .await;
        let delay = backoff.next();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {},
            _ = shutdown.cancelled() => {},
        }
        false
    }

    /// One ReceiveMessage of up to `max` messages.
    async fn receive(&self, max: usize) -> Result<Vec<Message>, ReceiveError> {
        let shared = &self.shared;
        let wait = shared.options.wait_time.as_secs().min(20) as i32;
        let span = shared.telemetry.receive_span();
        let result = shared
            .client
            .receive_message()
            .queue_url(&shared.url)
            .max_number_of_messages(max as i32)
            .wait_time_seconds(wait)
            // The heartbeat keeps this visibility; the queue's attribute applies without it.
            .set_visibility_timeout(
                shared
                    .options
                    .visibility_timeout
                    .map(|_| i32::try_from(shared.visibility.as_secs()).unwrap_or(i32::MAX)),
            )
            .set_message_system_attribute_names(Some(shared.options.system_attributes.clone()))
            .message_attribute_names("All")
            .send()
            .instrument(span.clone())
            .await
            .map(|out| out.messages.unwrap_or_default());
        match &result {
            Ok(messages) => {
                span.record("messaging.batch.message_count", messages.len());
            }
            Err(e) => {
                let code = aws_sdk_sqs::error::ProvideErrorMetadata::code(e);
                Telemetry::failed_call(&span, code.unwrap_or("transport_error"));
            }
        }
        result
    }

    async fn receive_failed(&self, error: ReceiveError, delay: Duration) {
        let shared = &self.shared;
        let text = aws_sdk_sqs::error::DisplayErrorContext(&error).to_string();
        let code = error.as_service_error().and_then(|e| e.meta().code());
        if credential_problem(code, &error) {
            tracing::error!(queue = %shared.queue, error = %text, "SQS refused the credentials: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the role; retrying in {delay:?}");
        }
        report(
            shared,
            "ReceiveMessage",
            format!("{text}; retrying in {delay:?}"),
        )
        .await;
    }

    /// Hands a receive's messages to handler tasks, each holding one permit.
    async fn dispatch(
        self: &Arc<Self>,
        messages: Vec<Message>,
        mut permits: Vec<OwnedSemaphorePermit>,
        received_at: tokio::time::Instant,
    ) {
        let shared = &self.shared;
        let full = messages.len() >= permits.len();
        self.backlog
            .send_if_modified(|b| std::mem::replace(b, full) != full);
        if messages.is_empty() {
            shared.telemetry.empty_receive();
            if shared.hooks.wants(EventKind::Empty) {
                let event = Event::Empty(Empty {
                    queue: shared.queue.clone(),
                });
                shared.hooks.fire(event, &shared.hook_ctx).await;
            }
            return;
        }
        let messages: Vec<SqsMessage> = messages.into_iter().map(SqsMessage::new).collect();
        shared
            .counters
            .received
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        permits.truncate(messages.len());
        let tracker = shared.hooks.wants(EventKind::ResponseProcessed).then(|| {
            Arc::new(ResponseTracker {
                remaining: AtomicUsize::new(messages.len()),
                total: messages.len(),
            })
        });
        match &self.dispatch {
            Dispatch::Batch(f) => {
                self.spawn(self.clone().process_batch(
                    f.clone(),
                    messages,
                    permits,
                    tracker,
                    received_at,
                ));
            }
            Dispatch::Message(base) if shared.fifo => {
                for group in fifo_groups(messages.into_iter().zip(permits), |(m, _)| m) {
                    let (group, permits) = group.into_iter().unzip();
                    self.spawn(self.clone().process_group(
                        base.clone(),
                        group,
                        permits,
                        tracker.clone(),
                        received_at,
                    ));
                }
            }
            Dispatch::Message(base) => {
                // One task per receive, its messages handled concurrently inside it: a slow
                // message never holds back the others, and each frees its capacity as it ends,
                // without a task spawn per message.
                let (worker, base) = (self.clone(), base.clone());
                self.spawn(async move {
                    let mut running: FuturesUnordered<_> = messages
                        .into_iter()
                        .zip(permits)
                        .map(|(message, permit)| {
                            let (worker, svc, tracker) =
                                (&worker, base.clone(), tracker.as_deref());
                            async move {
                                let _permit = permit;
                                worker.handle(svc, message, received_at, false).await;
                                worker.finished(tracker, 1).await;
                            }
                        })
                        .collect();
                    while running.next().await.is_some() {}
                });
            }
        }
    }
}

/// Adds permits to `first` until there are `want`: at saturation they come back one at a time,
/// and receiving for each as it comes would multiply API calls. Waits at most BATCH_FILL for
/// the rest, so a slow handler never delays the others long.
async fn fill(
    sem: &Arc<Semaphore>,
    first: OwnedSemaphorePermit,
    want: usize,
) -> Vec<OwnedSemaphorePermit> {
    let mut permits = vec![first];
    let fill_until = tokio::time::Instant::now() + BATCH_FILL;
    while permits.len() < want {
        let next = match sem.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                match tokio::time::timeout_at(fill_until, sem.clone().acquire_owned()).await {
                    Ok(Ok(p)) => p,
                    _ => break,
                }
            }
        };
        permits.push(next);
    }
    permits
}

/// What a failed receive returns.
type ReceiveError = SdkError<ReceiveMessageError>;

/// SQS's error codes for credentials it does not accept.
const CREDENTIAL_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "ExpiredToken",
    "ExpiredTokenException",
    "IncompleteSignature",
    "InvalidClientTokenId",
    "InvalidSecurityToken",
    "MissingAuthenticationToken",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
];

/// True when SQS refused the credentials (by its error `code`), or when none could be loaded
/// (a `CredentialsError` among the error's sources: the request was never sent).
fn credential_problem(code: Option<&str>, error: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(code) = code {
        return CREDENTIAL_CODES.contains(&code);
    }
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<CredentialsError>() {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_errors_are_recognised_by_code_and_type() {
        let other: SdkError<ReceiveMessageError> = SdkError::timeout_error("slow");
        assert!(credential_problem(Some("InvalidClientTokenId"), &other));
        assert!(credential_problem(Some("AccessDenied"), &other));
        // A message that mentions credentials is not a credential error.
        assert!(!credential_problem(Some("QueueDoesNotExist"), &other));
        assert!(!credential_problem(None, &other));
        let not_loaded: SdkError<ReceiveMessageError> =
            SdkError::construction_failure(CredentialsError::not_loaded("no profile"));
        assert!(credential_problem(None, &not_loaded));
    }
}
