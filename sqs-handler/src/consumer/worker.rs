//! One queue's consumer: the poll loop, dispatch to handlers, outcomes, and the drain at
//! shutdown.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;
use futures_util::FutureExt as _;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::{Service as _, ServiceExt as _};
use tracing::Instrument as _;

use super::Shared;
use super::ack::{self, Acks, report};
use super::heartbeat::Heartbeat;
use crate::error::{BoxError, ExtractError, HandlerPanicked, NonRetryable};
use crate::events::{
    Empty, Event, EventKind, FailureKind, MessageAction, MessageProcessed, MessageReceived,
    ProcessingError, ResponseProcessed, Stopped, TimeoutError, panic_message,
};
use crate::extract::{BatchContext, MessageContext};
use crate::handler::{BatchFn, HandlerService};
use crate::message::SqsMessage;

/// How long the poll loop waits to fill a whole receive with free capacity.
const BATCH_FILL: Duration = Duration::from_millis(10);

/// How long shutdown waits for a receive in flight to answer before cutting it.
const RECEIVE_GRACE: Duration = Duration::from_millis(500);

/// How a queue's messages are handled.
#[derive(Clone)]
pub(crate) enum Dispatch {
    /// One message at a time, through the layered tower service.
    Message(HandlerService),
    /// The messages of one receive together.
    Batch(BatchFn),
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dispatch::Message(_) => "Dispatch::Message",
            Dispatch::Batch(_) => "Dispatch::Batch",
        })
    }
}

enum Outcome<T> {
    Done(Result<T, BoxError>),
    Panicked(String),
    TimedOut(Duration),
}

/// One message being handled. Dropped before it is settled (its task aborted at the shutdown
/// deadline), it releases the message, so nothing stays invisible; it always keeps the
/// in-flight count right.
struct InFlight<'a> {
    worker: &'a Worker,
    message: &'a SqsMessage,
    settled: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.worker
                .acks
                .change_visibility(self.message.receipt_handle(), Duration::ZERO);
        }
        self.worker
            .shared
            .counters
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Capped exponential backoff with jitter, for transport faults.
#[derive(Debug, Default)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    const BASE: Duration = Duration::from_millis(100);
    const CAP: Duration = Duration::from_secs(20);

    fn next(&mut self) -> Duration {
        let ceiling = Self::BASE
            .saturating_mul(1 << self.attempt.min(16))
            .min(Self::CAP);
        self.attempt = self.attempt.saturating_add(1);
        // Between half and all of the ceiling, so a fleet does not retry in lockstep.
        ceiling.mul_f64(0.5 + fastrand::f64() / 2.0)
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Counts down the messages of one receive; the last one fires `response_processed`.
#[derive(Debug)]
struct ResponseTracker {
    remaining: AtomicUsize,
    total: usize,
}

struct Worker {
    shared: Arc<Shared>,
    dispatch: Dispatch,
    heartbeat: Option<Arc<Heartbeat>>,
    acks: Acks,
    /// Every handler task, so shutdown can wait for them or abort them.
    tasks: std::sync::Mutex<JoinSet<()>>,
    /// The capacity every poller shares: one permit per message held.
    capacity: Arc<Semaphore>,
    /// True while the last receive came back full: the extra pollers poll only then, so an idle
    /// queue costs one long poll at a time.
    backlog: tokio::sync::watch::Sender<bool>,
}

/// Runs one queue until `shutdown`, then drains for up to `drain_timeout`.
pub(crate) async fn run_queue(
    shared: Arc<Shared>,
    dispatch: Dispatch,
    shutdown: CancellationToken,
    drain_timeout: Duration,
) {
    let counters = shared.counters.clone();
    counters.running.store(true, Ordering::Relaxed);
    let (acks, ack_task) = ack::start(shared.clone());
    let heartbeat = Heartbeat::new(shared.clone(), shared.visibility);
    let hb_stop = CancellationToken::new();
    let hb_task = heartbeat
        .clone()
        .map(|h| tokio::spawn(h.run(hb_stop.clone())));
    let worker = Arc::new(Worker {
        shared: shared.clone(),
        dispatch,
        heartbeat,
        acks,
        tasks: std::sync::Mutex::new(JoinSet::new()),
        capacity: Arc::new(Semaphore::new(shared.options.concurrency)),
        backlog: tokio::sync::watch::channel(false).0,
    });
    tracing::info!(queue = %shared.queue, concurrency = shared.options.concurrency, "consumer started");

    // Enough pollers to keep the concurrency limit busy with receives of 10.
    let max = shared.options.max_messages.clamp(1, 10) as usize;
    let pollers = shared.options.concurrency.div_ceil(max).max(1);
    // Each poller is its own task, so response parsing spreads over the runtime's threads.
    let mut polls = JoinSet::new();
    for i in 0..pollers {
        let (worker, shutdown) = (worker.clone(), shutdown.clone());
        polls.spawn(async move { worker.poll(i, &shutdown).await });
    }
    while polls.join_next().await.is_some() {}
    let mut tasks = std::mem::take(&mut *worker.tasks.lock().unwrap_or_else(|e| e.into_inner()));

    counters.running.store(false, Ordering::Relaxed);
    let drained = tokio::time::timeout(drain_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            queue = %shared.queue,
            unfinished = tasks.len(),
            "shutdown deadline passed: cancelling the handlers still running and releasing their messages"
        );
        tasks.abort_all();
        // Awaiting the aborted tasks runs their guards, which release their messages.
        while tasks.join_next().await.is_some() {}
    }
    drop(worker);
    hb_stop.cancel();
    if let Some(t) = hb_task {
        let _ = t.await;
    }
    // Every `Acks` is gone with the worker and its tasks: the batcher flushes and ends.
    let _ = ack_task.await;
    tracing::info!(queue = %shared.queue, "consumer stopped");
    if shared.hooks.wants(EventKind::Stopped) {
        let event = Event::Stopped(Stopped {
            queue: shared.queue.clone(),
        });
        shared.hooks.fire(event, &shared.hook_ctx).await;
    }
}

fn credential_hint(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "credential",
        "invalidclienttokenid",
        "unrecognizedclient",
        "signaturedoesnotmatch",
        "accessdenied",
        "expiredtoken",
    ]
    .iter()
    .any(|k| t.contains(k))
}

impl Worker {
    /// One poll loop; `index` 0 always polls, the others only while there is a backlog.
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    async fn poll(self: Arc<Self>, index: usize, shutdown: &CancellationToken) {
        let shared = &self.shared;
        let sem = self.capacity.clone();
        let mut backlog = self.backlog.subscribe();
        let max = shared.options.max_messages.clamp(1, 10) as usize;
        let wait = shared.options.wait_time.as_secs().min(20) as i32;
        let mut backoff = Backoff::default();
        loop {
            if index > 0 && !*backlog.borrow_and_update() {
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    r = backlog.wait_for(|b| *b) => if r.is_err() { break },
                }
            }
            let first = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                p = sem.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            let mut permits = vec![first];
            // Fill a whole receive when the limit allows: at saturation permits come back one
            // at a time, and receiving for each as it comes would multiply API calls. Wait at
            // most BATCH_FILL for the rest, so a slow handler never delays the others long.
            let want = max.min(shared.options.concurrency);
            let fill_until = tokio::time::Instant::now() + BATCH_FILL;
            while permits.len() < want {
                match sem.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => {
                        match tokio::time::timeout_at(fill_until, sem.clone().acquire_owned()).await
                        {
                            Ok(Ok(p)) => permits.push(p),
                            _ => break,
                        }
                    }
                }
            }
            // Respect the layered service's readiness before taking messages off the queue. The
            // readied clone is dropped before the receive: holding what readiness reserved (a
            // concurrency-limit permit) through a long poll would starve running handlers.
            match &self.dispatch {
                Dispatch::Message(svc) => {
                    let mut svc = svc.clone();
                    let r = tokio::select! {
                        biased;
                        _ = shutdown.cancelled() => break,
                        r = svc.ready() => r.map(|_| ()),
                    };
                    if let Err(e) = r {
                        report(
                            shared,
                            "poll_ready",
                            format!("the handler service is not ready: {e}"),
                        )
                        .await;
                        let delay = backoff.next();
                        tokio::select! { _ = tokio::time::sleep(delay) => {}, _ = shutdown.cancelled() => break }
                        continue;
                    }
                }
                Dispatch::Batch(_) => {}
            }
            // Visibility starts when SQS answers; this instant is a little earlier, so the
            // heartbeat's arithmetic errs on the early side.
            let received_at = tokio::time::Instant::now();
            let receive = shared
                .client
                .receive_message()
                .queue_url(&shared.url)
                .max_number_of_messages(permits.len() as i32)
                .wait_time_seconds(wait)
                .set_message_system_attribute_names(Some(shared.options.system_attributes.clone()))
                .message_attribute_names("All")
                .send();
            tokio::pin!(receive);
            let result = tokio::select! {
                biased;
                r = &mut receive => r,
                _ = shutdown.cancelled() => {
                    // A receive that already took messages answers within milliseconds; one
                    // still long-polling an empty queue holds none. Wait briefly for the
                    // former and release what it returns, so nothing stays invisible; then cut.
                    if let Ok(Ok(out)) = tokio::time::timeout(RECEIVE_GRACE, &mut receive).await {
                        for m in out.messages() {
                            if let Some(h) = m.receipt_handle() {
                                self.acks.change_visibility(h, Duration::ZERO);
                            }
                        }
                    }
                    break;
                }
            };
            let messages = match result {
                Ok(out) => {
                    backoff.reset();
                    out.messages.unwrap_or_default()
                }
                Err(e) => {
                    let delay = backoff.next();
                    let text = aws_sdk_sqs::error::DisplayErrorContext(&e).to_string();
                    if credential_hint(&text) {
                        tracing::error!(queue = %shared.queue, error = %text, "SQS refused the credentials: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the role; retrying in {delay:?}");
                    }
                    report(
                        shared,
                        "ReceiveMessage",
                        format!("{text}; retrying in {delay:?}"),
                    )
                    .await;
                    tokio::select! { _ = tokio::time::sleep(delay) => {}, _ = shutdown.cancelled() => break }
                    continue;
                }
            };
            if shutdown.is_cancelled() {
                // Returned as shutdown began: give them back at once rather than hold them.
                for m in &messages {
                    if let Some(h) = m.receipt_handle() {
                        self.acks.change_visibility(h, Duration::ZERO);
                    }
                }
                break;
            }
            let full = messages.len() >= permits.len();
            self.backlog
                .send_if_modified(|b| std::mem::replace(b, full) != full);
            if messages.is_empty() {
                if shared.hooks.wants(EventKind::Empty) {
                    let event = Event::Empty(Empty {
                        queue: shared.queue.clone(),
                    });
                    shared.hooks.fire(event, &shared.hook_ctx).await;
                }
                continue;
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
                    for (group, permits) in group_fifo(messages, permits) {
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
                    // message never holds back the others, and each frees its capacity as it
                    // ends, without a task spawn per message.
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
                                    worker.handle(svc, message, received_at).await;
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

    async fn finished(&self, tracker: Option<&ResponseTracker>, n: usize) {
        let Some(t) = tracker else { return };
        if t.remaining.fetch_sub(n, Ordering::AcqRel) == n {
            let event = Event::ResponseProcessed(ResponseProcessed {
                queue: self.shared.queue.clone(),
                messages: t.total,
            });
            self.shared.hooks.fire(event, &self.shared.hook_ctx).await;
        }
    }

    async fn run_guarded<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, BoxError>>,
    ) -> Outcome<T> {
        let fut = AssertUnwindSafe(fut).catch_unwind();
        let timed = async {
            match self.shared.options.handler_timeout {
                Some(t) => match tokio::time::timeout(t, fut).await {
                    Ok(r) => Ok(r),
                    Err(_) => Err(t),
                },
                None => Ok(fut.await),
            }
        };
        match timed.await {
            Ok(Ok(r)) => Outcome::Done(r),
            Ok(Err(panic)) => Outcome::Panicked(panic_message(&panic)),
            Err(t) => Outcome::TimedOut(t),
        }
    }

    /// Counts a message in flight and fires `message_received`; the guard undoes the count.
    async fn received<'a>(&'a self, message: &'a SqsMessage) -> InFlight<'a> {
        self.shared
            .counters
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        let guard = InFlight {
            worker: self,
            message,
            settled: false,
        };
        if self.shared.hooks.wants(EventKind::MessageReceived) {
            let event = Event::MessageReceived(MessageReceived {
                queue: self.shared.queue.clone(),
                message: message.clone(),
            });
            self.shared.hooks.fire(event, &self.shared.hook_ctx).await;
        }
        guard
    }

    /// Runs `fut` for messages received at `received_at`; registers them with the heartbeat
    /// only if it is still running at the heartbeat's threshold, and unregisters them after.
    async fn with_heartbeat<T>(
        &self,
        messages: &[SqsMessage],
        received_at: tokio::time::Instant,
        fut: impl std::future::Future<Output = T>,
    ) -> T {
        let Some(hb) = &self.heartbeat else {
            return fut.await;
        };
        tokio::pin!(fut);
        tokio::select! {
            biased;
            out = &mut fut => return out,
            _ = tokio::time::sleep_until(received_at + hb.threshold()) => {}
        }
        for m in messages {
            hb.register(m.receipt_handle(), received_at).await;
        }
        let out = fut.await;
        for m in messages {
            hb.unregister(m.receipt_handle()).await;
        }
        out
    }

    /// Handles one message end to end; true when it succeeded.
    async fn handle(
        &self,
        mut svc: HandlerService,
        message: SqsMessage,
        received_at: tokio::time::Instant,
    ) -> bool {
        let span = tracing::info_span!(
            "sqs_message",
            queue = %self.shared.queue,
            message_id = %message.message_id(),
            receive_count = message.receive_count(),
        );
        async {
            let mut guard = self.received(&message).await;
            let ctx = MessageContext {
                message: message.clone(),
                queue: self.shared.queue.clone(),
                state: self.shared.state.clone(),
            };
            let guarded = self.run_guarded(async move {
                svc.ready().await?;
                svc.call(ctx).await
            });
            let outcome = self
                .with_heartbeat(std::slice::from_ref(&message), received_at, guarded)
                .await;
            self.settle(&mut guard, outcome).await
        }
        .instrument(span)
        .await
    }

    async fn settle(&self, guard: &mut InFlight<'_>, outcome: Outcome<()>) -> bool {
        match outcome {
            Outcome::Done(Ok(())) => {
                self.succeeded(guard).await;
                true
            }
            Outcome::Done(Err(e)) => {
                let kind = if e.is::<ExtractError>() {
                    FailureKind::Extract
                } else {
                    FailureKind::Handler
                };
                self.failed(guard, Arc::new(e), kind).await;
                false
            }
            Outcome::Panicked(text) => {
                self.failed(
                    guard,
                    Arc::new(HandlerPanicked { message: text }.into()),
                    FailureKind::Panic,
                )
                .await;
                false
            }
            Outcome::TimedOut(t) => {
                self.timed_out(guard, t).await;
                false
            }
        }
    }

    async fn succeeded(&self, guard: &mut InFlight<'_>) {
        let message = guard.message;
        self.acks.delete(message.receipt_handle());
        guard.settled = true;
        self.shared
            .counters
            .processed
            .fetch_add(1, Ordering::Relaxed);
        if self.shared.hooks.wants(EventKind::MessageProcessed) {
            let event = Event::MessageProcessed(MessageProcessed {
                queue: self.shared.queue.clone(),
                message: message.clone(),
            });
            self.shared.hooks.fire(event, &self.shared.hook_ctx).await;
        }
    }

    fn retry_action(&self, message: &SqsMessage) -> MessageAction {
        match self.shared.options.retry.delay_for(message.receive_count()) {
            None => MessageAction::LeftForRedelivery,
            Some(d) => MessageAction::Released(d),
        }
    }

    fn apply(&self, guard: &mut InFlight<'_>, action: &MessageAction) {
        let message = guard.message;
        guard.settled = true;
        match action {
            MessageAction::LeftForRedelivery => {}
            MessageAction::Released(d) => self.acks.change_visibility(message.receipt_handle(), *d),
            MessageAction::Deleted | MessageAction::Forwarded(_) => {
                self.acks.delete(message.receipt_handle());
            }
        }
    }

    async fn failed(&self, guard: &mut InFlight<'_>, error: Arc<BoxError>, kind: FailureKind) {
        let message = guard.message;
        self.shared.counters.failed.fetch_add(1, Ordering::Relaxed);
        let options = &self.shared.options;
        let non_retryable = NonRetryable::is_in(&**error)
            || options.non_retryable_if.as_ref().is_some_and(|p| p(&error));
        let action = if non_retryable {
            match &self.shared.forward {
                // Boxed: the SDK call's future is several KiB, and inline it would enlarge
                // every message's future, which is moved on each spawn.
                Some((name, url)) => match Box::pin(self.forward(message, url)).await {
                    Ok(()) => MessageAction::Forwarded(name.clone()),
                    Err(e) => {
                        report(&self.shared, "SendMessage", format!("could not forward message {} to {name}: {e}; it stays in {} for redelivery", message.message_id(), self.shared.queue)).await;
                        MessageAction::LeftForRedelivery
                    }
                },
                None => MessageAction::Deleted,
            }
        } else {
            self.retry_action(message)
        };
        tracing::warn!(error = %error, ?kind, ?action, "message failed");
        if self.shared.hooks.wants(EventKind::ProcessingError) {
            let event = Event::ProcessingError(ProcessingError {
                queue: self.shared.queue.clone(),
                message: message.clone(),
                error,
                kind,
                action: action.clone(),
            });
            self.shared.hooks.fire(event, &self.shared.hook_ctx).await;
        }
        self.apply(guard, &action);
    }

    async fn timed_out(&self, guard: &mut InFlight<'_>, timeout: Duration) {
        let message = guard.message;
        self.shared.counters.failed.fetch_add(1, Ordering::Relaxed);
        let action = self.retry_action(message);
        tracing::warn!(?timeout, ?action, "handler timed out and was cancelled");
        if self.shared.hooks.wants(EventKind::TimeoutError) {
            let event = Event::TimeoutError(TimeoutError {
                queue: self.shared.queue.clone(),
                message: message.clone(),
                timeout,
                action: action.clone(),
            });
            self.shared.hooks.fire(event, &self.shared.hook_ctx).await;
        }
        self.apply(guard, &action);
    }

    async fn forward(&self, message: &SqsMessage, url: &str) -> Result<(), String> {
        let attrs: HashMap<String, MessageAttributeValue> = message.message_attributes().clone();
        let mut req = self
            .shared
            .client
            .send_message()
            .queue_url(url)
            .message_body(message.body())
            .set_message_attributes((!attrs.is_empty()).then_some(attrs));
        if url.ends_with(".fifo") {
            req = req
                .message_group_id(message.message_group_id().unwrap_or(message.message_id()))
                .message_deduplication_id(message.message_id());
        }
        req.send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())
    }

    /// FIFO: one group's messages in order; on the first failure the rest are released
    /// unprocessed, so nothing in the group runs out of order.
    async fn process_group(
        self: Arc<Self>,
        base: HandlerService,
        messages: Vec<SqsMessage>,
        mut permits: Vec<OwnedSemaphorePermit>,
        tracker: Option<Arc<ResponseTracker>>,
        received_at: tokio::time::Instant,
    ) {
        let mut rest = messages.into_iter();
        while let Some(message) = rest.next() {
            let svc = base.clone();
            let ok = self.handle(svc, message, received_at).await;
            permits.pop();
            self.finished(tracker.as_deref(), 1).await;
            if !ok {
                let remaining: Vec<SqsMessage> = rest.collect();
                for m in &remaining {
                    self.acks
                        .change_visibility(m.receipt_handle(), Duration::ZERO);
                }
                if !remaining.is_empty() {
                    tracing::debug!(queue = %self.shared.queue, released = remaining.len(), "FIFO group stopped at a failure; later messages released unprocessed");
                }
                self.finished(tracker.as_deref(), remaining.len()).await;
                return;
            }
        }
    }

    async fn process_batch(
        self: Arc<Self>,
        f: BatchFn,
        messages: Vec<SqsMessage>,
        permits: Vec<OwnedSemaphorePermit>,
        tracker: Option<Arc<ResponseTracker>>,
        received_at: tokio::time::Instant,
    ) {
        let _permits = permits;
        let mut guards = Vec::with_capacity(messages.len());
        for m in &messages {
            guards.push(self.received(m).await);
        }
        let ctx = BatchContext {
            messages: messages.clone(),
            queue: self.shared.queue.clone(),
            state: self.shared.state.clone(),
        };
        let outcome = self
            .with_heartbeat(&messages, received_at, self.run_guarded(f(ctx)))
            .await;
        match outcome {
            Outcome::Done(Ok(mut result)) => {
                for g in &mut guards {
                    match result.failed.remove(g.message.message_id()) {
                        Some(e) => self.failed(g, Arc::new(e), FailureKind::Handler).await,
                        None => self.succeeded(g).await,
                    }
                }
            }
            Outcome::Done(Err(e)) => {
                let e = Arc::new(e);
                let kind = if e.is::<ExtractError>() {
                    FailureKind::Extract
                } else {
                    FailureKind::Handler
                };
                for g in &mut guards {
                    self.failed(g, e.clone(), kind).await;
                }
            }
            Outcome::Panicked(text) => {
                let e: Arc<BoxError> = Arc::new(HandlerPanicked { message: text }.into());
                for g in &mut guards {
                    self.failed(g, e.clone(), FailureKind::Panic).await;
                }
            }
            Outcome::TimedOut(t) => {
                for g in &mut guards {
                    self.timed_out(g, t).await;
                }
            }
        }
        drop(guards);
        self.finished(tracker.as_deref(), messages.len()).await;
    }
}

/// Splits a FIFO receive into message groups, keeping order within each, with the permits of
/// each group's messages.
fn group_fifo(
    messages: Vec<SqsMessage>,
    permits: Vec<OwnedSemaphorePermit>,
) -> Vec<(Vec<SqsMessage>, Vec<OwnedSemaphorePermit>)> {
    let mut groups: Vec<(Option<String>, Vec<SqsMessage>, Vec<OwnedSemaphorePermit>)> = Vec::new();
    for (m, p) in messages.into_iter().zip(permits) {
        let key = m.message_group_id().map(str::to_owned);
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, ms, ps)) => {
                ms.push(m);
                ps.push(p);
            }
            None => groups.push((key, vec![m], vec![p])),
        }
    }
    groups.into_iter().map(|(_, m, p)| (m, p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::default();
        let first = b.next();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        for _ in 0..30 {
            let d = b.next();
            assert!(d <= Backoff::CAP);
        }
        assert!(b.next() >= Backoff::CAP / 2);
        b.reset();
        assert!(b.next() <= Duration::from_millis(100));
    }

    #[test]
    fn credential_errors_are_recognised() {
        assert!(credential_hint("failed to load credentials from the chain"));
        assert!(credential_hint(
            "InvalidClientTokenId: The security token is invalid"
        ));
        assert!(!credential_hint("dispatch failure: connection refused"));
    }
}
