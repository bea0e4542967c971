//! One queue's consumer: the poll loop, dispatch to handlers, outcomes, and the drain at
//! shutdown.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;
use futures_util::FutureExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::{Service as _, ServiceExt as _};
use tracing::Instrument as _;

use super::Shared;
use super::ack::{self, Acks, report};
use super::breaker::{Failure, Transition};
use super::heartbeat::Heartbeat;
use crate::error::{BoxError, ExtractError, HandlerPanicked};
use crate::events::{
    CircuitClosed, CircuitOpened, Event, EventKind, FailureKind, MessageAction, MessageProcessed,
    MessageReceived, ProcessingError, ResponseProcessed, Started, Stopped, TimeoutError,
    panic_message,
};
use crate::extract::{AckHandle, BatchContext, MessageContext};
use crate::handler::{BatchFn, BatchOutcome, HandlerService};
use crate::message::SqsMessage;
use crate::options::{AckMode, MAX_VISIBILITY};
use crate::telemetry::{self, FailureClass, Telemetry};

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

/// How a handler's future ended.
pub(crate) enum Outcome<T> {
    Done(Result<T, BoxError>),
    Panicked(String),
    TimedOut(Duration),
}

/// Runs `fut` catching a panic, and cancels it (drops it) after `timeout`.
pub(crate) async fn guarded<T>(
    timeout: Option<Duration>,
    fut: impl std::future::Future<Output = Result<T, BoxError>>,
) -> Outcome<T> {
    let fut = AssertUnwindSafe(fut).catch_unwind();
    let timed = async {
        match timeout {
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

/// One message being handled. Dropped before it is settled (its task aborted at the shutdown
/// deadline), it releases the message, so nothing stays invisible; it always keeps the
/// in-flight count right.
struct InFlight<'a> {
    worker: &'a Worker,
    message: &'a SqsMessage,
    settled: bool,
    /// A FIFO message with later messages of its group in the same receive: on a retryable
    /// failure its visibility is set by [`Worker::process_group`] together with theirs.
    leads_group: bool,
    /// The handler deleted or released it through its `Acknowledgement`.
    acknowledged: bool,
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
        self.worker.shared.telemetry.in_flight(-1);
    }
}

/// Capped exponential backoff with jitter, for transport faults.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    attempt: u32,
}

impl Backoff {
    const BASE: Duration = Duration::from_millis(100);
    const CAP: Duration = Duration::from_secs(20);

    pub(super) fn next(&mut self) -> Duration {
        let ceiling = Self::BASE
            .saturating_mul(1 << self.attempt.min(16))
            .min(Self::CAP);
        self.attempt = self.attempt.saturating_add(1);
        // Between half and all of the ceiling, so a fleet does not retry in lockstep.
        ceiling.mul_f64(0.5 + fastrand::f64() / 2.0)
    }

    pub(super) fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Counts down the messages of one receive; the last one fires `response_processed`.
#[derive(Debug)]
pub(super) struct ResponseTracker {
    pub(super) remaining: AtomicUsize,
    pub(super) total: usize,
}

pub(super) struct Worker {
    pub(super) shared: Arc<Shared>,
    pub(super) dispatch: Dispatch,
    pub(super) heartbeat: Option<Arc<Heartbeat>>,
    pub(super) acks: Acks,
    /// Every handler task, so shutdown can wait for them or abort them.
    pub(super) tasks: std::sync::Mutex<JoinSet<()>>,
    /// The capacity every poller shares: one permit per message held (the concurrency plus
    /// the prefetch).
    pub(super) capacity: Arc<Semaphore>,
    /// With prefetch, the handler slots (the concurrency) a held message waits for.
    pub(super) running: Option<Semaphore>,
    /// True while the last receive came back full: the extra pollers poll only then, so an idle
    /// queue costs one long poll at a time.
    pub(super) backlog: tokio::sync::watch::Sender<bool>,
    /// When handlers must have finished (a Lambda invocation's deadline less its margin): the
    /// handler timeout is cut to it.
    pub(super) deadline: Option<tokio::time::Instant>,
    /// Cancelled when shutdown begins: a prefetched message still waiting for a handler slot
    /// is then released instead of started.
    pub(super) shutdown: CancellationToken,
    /// Held by the poller collecting capacity for its next receive: the semaphore is fair, so
    /// with every poller waiting on it the permits one receive's handlers free would go one to
    /// each poller, and each would receive a message or two (see `Worker::take_permits`).
    pub(super) collecting: tokio::sync::Mutex<()>,
}

/// How long the drain waits for the heartbeat's extension in flight before aborting it.
const HEARTBEAT_STOP: Duration = Duration::from_secs(1);

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
    let mut hb_task = heartbeat
        .clone()
        .map(|h| tokio::spawn(h.run(hb_stop.clone())));
    let worker = Arc::new(Worker {
        shared: shared.clone(),
        dispatch,
        heartbeat,
        acks,
        tasks: std::sync::Mutex::new(JoinSet::new()),
        capacity: Arc::new(Semaphore::new(
            shared.options.concurrency + shared.options.prefetch,
        )),
        running: (shared.options.prefetch > 0).then(|| Semaphore::new(shared.options.concurrency)),
        backlog: tokio::sync::watch::channel(false).0,
        deadline: None,
        shutdown: shutdown.clone(),
        collecting: tokio::sync::Mutex::new(()),
    });
    tracing::info!(queue = %shared.queue, concurrency = shared.options.concurrency, "consumer started");
    if let Some(b) = &shared.breaker {
        shared.telemetry.circuit(b.state());
    }
    if shared.hooks.wants(EventKind::Started) {
        let event = Event::Started(Started::new(shared.queue.clone()));
        shared.hooks.fire(event, &shared.hook_ctx).await;
    }

    // Enough pollers to keep the capacity busy with receives of 10.
    let max = shared.options.max_messages.clamp(1, 10) as usize;
    let held = shared.options.concurrency + shared.options.prefetch;
    let pollers = held.div_ceil(max).max(1);
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
        // The heartbeat stops first: an extension sent after a cancelled handler's release
        // would hide its message again for a whole visibility timeout.
        hb_stop.cancel();
        if let Some(mut t) = hb_task.take() {
            // An extension in flight may finish; a slow or unreachable SQS must not hold
            // shutdown past its deadline for long.
            if tokio::time::timeout(HEARTBEAT_STOP, &mut t).await.is_err() {
                t.abort();
            }
        }
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

impl Worker {
    /// Spawns a handler task that shutdown waits for (or aborts at its deadline).
    pub(super) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    pub(super) async fn finished(&self, tracker: Option<&ResponseTracker>, n: usize) {
        let Some(t) = tracker.filter(|_| n > 0) else {
            return;
        };
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
        let timeout = self.shared.options.handler_timeout;
        let timeout = match self.deadline {
            Some(d) => {
                let left = d.saturating_duration_since(tokio::time::Instant::now());
                Some(timeout.map_or(left, |t| t.min(left)))
            }
            None => timeout,
        };
        guarded(timeout, fut).await
    }

    /// Runs a handler's future for `n` messages under its timeout, timed from its start. With
    /// prefetch it first waits for `n` handler slots (at most the concurrency); the heartbeat
    /// covers the wait. `None`, without running it, when shutdown begins first: the messages
    /// are released untouched.
    async fn in_slot<T>(
        &self,
        n: usize,
        fut: impl std::future::Future<Output = Result<T, BoxError>>,
    ) -> Option<Outcome<T>> {
        let _slot = match &self.running {
            Some(running) => {
                let n = u32::try_from(n.min(self.shared.options.concurrency)).unwrap_or(u32::MAX);
                tokio::select! {
                    biased;
                    // The semaphore is never closed, so this returns with the permits.
                    slot = running.acquire_many(n) => slot.ok(),
                    _ = self.shutdown.cancelled() => return None,
                }
            }
            None => None,
        };
        let started = tokio::time::Instant::now();
        let outcome = self.run_guarded(fut).await;
        self.shared.telemetry.handler_time(started.elapsed());
        Some(outcome)
    }

    /// Counts a message in flight and fires `message_received`; the guard undoes the count.
    async fn received<'a>(&'a self, message: &'a SqsMessage) -> InFlight<'a> {
        self.shared
            .counters
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        self.shared.telemetry.received(message);
        self.shared.telemetry.in_flight(1);
        let guard = InFlight {
            worker: self,
            message,
            settled: false,
            leads_group: false,
            acknowledged: false,
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
    /// only if it is still running at the heartbeat's threshold (at once when they start after
    /// it: a message that waited its turn), and unregisters them after.
    async fn with_heartbeat<T>(
        &self,
        messages: &[SqsMessage],
        received_at: tokio::time::Instant,
        fut: impl std::future::Future<Output = T>,
    ) -> T {
        let handles = || messages.iter().map(|m| m.receipt_handle().to_owned());
        self.covered(received_at, || handles().collect(), true, fut)
            .await
    }

    /// Runs `fut`; once the heartbeat's threshold for messages received at `received_at`
    /// passes with it still running (at once if it already has), registers the receipt handles
    /// `due` returns then, and when `unregister` is set unregisters them after.
    async fn covered<T>(
        &self,
        received_at: tokio::time::Instant,
        due: impl FnOnce() -> Vec<String>,
        unregister: bool,
        fut: impl std::future::Future<Output = T>,
    ) -> T {
        let Some(hb) = &self.heartbeat else {
            return fut.await;
        };
        tokio::pin!(fut);
        let threshold = received_at + hb.threshold();
        if tokio::time::Instant::now() < threshold {
            tokio::select! {
                biased;
                out = &mut fut => return out,
                _ = tokio::time::sleep_until(threshold) => {}
            }
        }
        let handles = due();
        for h in &handles {
            hb.register(h, received_at).await;
        }
        let out = fut.await;
        if unregister {
            for h in &handles {
                hb.unregister(h).await;
            }
        }
        out
    }

    /// Handles one message end to end; `None` when it succeeded, else what was done with it.
    /// `leads_group`: see [`InFlight::leads_group`].
    pub(super) async fn handle(
        &self,
        mut svc: HandlerService,
        message: SqsMessage,
        received_at: tokio::time::Instant,
        leads_group: bool,
    ) -> Option<MessageAction> {
        let span = self.shared.telemetry.process_span(&message);
        #[cfg(feature = "opentelemetry")]
        if self.shared.options.trace_parent {
            crate::telemetry::otel::adopt(&span, &message);
        }
        let recorded = span.clone();
        async move {
            let mut guard = self.received(&message).await;
            guard.leads_group = leads_group;
            let acknowledged = Arc::new(AtomicBool::new(false));
            let ctx = MessageContext {
                message: message.clone(),
                queue: self.shared.queue.clone(),
                state: self.shared.state.clone(),
                ack: Some(AckHandle {
                    acks: self.acks.clone(),
                    settled: acknowledged.clone(),
                }),
            };
            let run = self.in_slot(1, async move {
                svc.ready().await?;
                svc.call(ctx).await
            });
            let outcome = self
                .with_heartbeat(std::slice::from_ref(&message), received_at, run)
                .await;
            let Some(outcome) = outcome else {
                // Shutdown began while it waited for a slot: released untouched (by its FIFO
                // group's release when it leads one).
                let action = MessageAction::Released(Duration::ZERO);
                self.apply(&mut guard, &action);
                recorded.record("sqs_handler.outcome", "released");
                return Some(action);
            };
            guard.acknowledged = acknowledged.load(Ordering::SeqCst);
            let action = self.settle(&mut guard, outcome.into()).await;
            let manual = self.shared.options.ack_mode == AckMode::Manual;
            let label = telemetry::outcome(action.as_ref(), guard.acknowledged, manual);
            recorded.record("sqs_handler.outcome", label);
            action
        }
        .instrument(span)
        .await
    }

    async fn succeeded(&self, guard: &mut InFlight<'_>) {
        let message = guard.message;
        if !guard.acknowledged && self.shared.options.ack_mode != AckMode::Manual {
            self.acks.delete(message.receipt_handle());
        }
        guard.settled = true;
        self.shared
            .counters
            .processed
            .fetch_add(1, Ordering::Relaxed);
        self.shared.telemetry.processed();
        if let Some(t) = self.shared.breaker.as_ref().and_then(|b| b.succeeded()) {
            self.breaker_changed(t).await;
        }
        if self.shared.hooks.wants(EventKind::MessageProcessed) {
            let event = Event::MessageProcessed(MessageProcessed {
                queue: self.shared.queue.clone(),
                message: message.clone(),
            });
            self.shared.hooks.fire(event, &self.shared.hook_ctx).await;
        }
    }

    fn retry_action(&self, message: &SqsMessage) -> MessageAction {
        self.shared.options.retry_action(message.receive_count())
    }

    /// The retry action for a retryable failure, unless the circuit breaker counts it and is
    /// not closed: then the message is held past the next probe (see `breaker.rs`).
    async fn retry_or_hold(&self, message: &SqsMessage, failure: Failure<'_>) -> MessageAction {
        let action = self.retry_action(message);
        let Some(breaker) = &self.shared.breaker else {
            return action;
        };
        let (counted, transition) = breaker.failed(&failure);
        if let Some(t) = transition {
            self.breaker_changed(t).await;
        }
        match breaker.hold().filter(|_| counted) {
            Some(hold) => {
                let retry = self.shared.options.retry.delay_for(message.receive_count());
                MessageAction::Released(hold.max(retry.unwrap_or_default()).min(MAX_VISIBILITY))
            }
            None => action,
        }
    }

    /// The action for a failed message: the handler's own acknowledgement wins; with
    /// [`AckMode::Always`] a failure is deleted too (a forward stays a forward).
    fn acknowledged_or(&self, guard: &InFlight<'_>, action: MessageAction) -> MessageAction {
        if guard.acknowledged {
            return MessageAction::Acknowledged;
        }
        self.shared.options.acknowledged(action)
    }

    async fn breaker_changed(&self, transition: Transition) {
        if let Some(b) = &self.shared.breaker {
            self.shared.telemetry.circuit(b.state());
        }
        let queue = self.shared.queue.clone();
        let event = match transition {
            Transition::Opened {
                failures,
                messages,
                open_for,
            } => {
                tracing::warn!(%queue, failures, messages, ?open_for, "circuit breaker opened: receiving stops until a probe succeeds");
                Event::CircuitOpened(CircuitOpened {
                    queue,
                    failures,
                    messages,
                    open_for,
                })
            }
            Transition::Closed => {
                tracing::info!(%queue, "circuit breaker closed: a probe succeeded, receiving resumes");
                Event::CircuitClosed(CircuitClosed { queue })
            }
        };
        if self.shared.hooks.wants(event.kind()) {
            self.shared.hooks.fire(event, &self.shared.hook_ctx).await;
        }
    }

    fn apply(&self, guard: &mut InFlight<'_>, action: &MessageAction) {
        let message = guard.message;
        guard.settled = true;
        if guard.leads_group
            && matches!(
                action,
                MessageAction::LeftForRedelivery | MessageAction::Released(_)
            )
        {
            return;
        }
        match action {
            MessageAction::LeftForRedelivery => {}
            MessageAction::Released(d) => self.acks.change_visibility(message.receipt_handle(), *d),
            MessageAction::Deleted | MessageAction::Forwarded(_) => {
                self.acks.delete(message.receipt_handle());
            }
            MessageAction::Acknowledged => {}
        }
    }

    async fn failed(
        &self,
        guard: &mut InFlight<'_>,
        error: Arc<BoxError>,
        kind: FailureKind,
    ) -> MessageAction {
        let message = guard.message;
        self.shared.counters.failed.fetch_add(1, Ordering::Relaxed);
        let class = FailureClass::of(kind);
        self.shared.telemetry.failed(class);
        Telemetry::failed_span(&tracing::Span::current(), class);
        let options = &self.shared.options;
        let non_retryable = options.is_non_retryable(&error);
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
            self.retry_or_hold(message, Failure::Error(&error, kind))
                .await
        };
        let action = self.acknowledged_or(guard, action);
        self.shared
            .telemetry
            .failure_action(&action, message.receive_count());
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
        action
    }

    async fn timed_out(&self, guard: &mut InFlight<'_>, timeout: Duration) -> MessageAction {
        let message = guard.message;
        self.shared.counters.failed.fetch_add(1, Ordering::Relaxed);
        self.shared.telemetry.failed(FailureClass::Timeout);
        Telemetry::failed_span(&tracing::Span::current(), FailureClass::Timeout);
        let action = self
            .retry_or_hold(message, Failure::TimedOut(timeout))
            .await;
        let action = self.acknowledged_or(guard, action);
        self.shared
            .telemetry
            .failure_action(&action, message.receive_count());
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
        action
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

    /// FIFO: one group's messages in order. A message that fails with a retryable failure
    /// stops the group: it and the group's later messages of this receive are made visible
    /// again together (see [`Worker::release_group`]). A message deleted or forwarded as
    /// non-retryable does not stop the group. The messages waiting for their turn are kept
    /// invisible by the heartbeat, and released at once if the task is aborted.
    pub(super) async fn process_group(
        self: Arc<Self>,
        base: HandlerService,
        messages: Vec<SqsMessage>,
        mut permits: Vec<OwnedSemaphorePermit>,
        tracker: Option<Arc<ResponseTracker>>,
        received_at: tokio::time::Instant,
    ) {
        let waiting = Waiting::new(&self.acks, &messages);
        let run = async {
            let mut rest = messages.into_iter();
            while let Some(message) = rest.next() {
                let current = waiting.start();
                let leads = rest.len() > 0;
                let action = self.handle(base.clone(), message, received_at, leads).await;
                permits.pop();
                let Some(secs) = self.stops_group(action.as_ref()) else {
                    self.finished(tracker.as_deref(), 1).await;
                    continue;
                };
                let remaining = rest.len();
                if remaining > 0 {
                    let handles = waiting.stop(current);
                    if let Some(hb) = &self.heartbeat {
                        for h in &handles[1..] {
                            hb.unregister(h).await;
                        }
                    }
                    self.release_group(handles, secs);
                    waiting.clear();
                }
                // Counted after the release: until it, the stopped message is covered only here.
                self.finished(tracker.as_deref(), 1 + remaining).await;
                return;
            }
        };
        self.cover_waiting(&waiting, received_at, run).await;
    }

    /// Keeps a FIFO group's waiting messages invisible: once the heartbeat's threshold passes,
    /// those still waiting for their turn are registered; each is unregistered when its own
    /// handling ends (see [`Worker::with_heartbeat`]), or before the group is released.
    async fn cover_waiting<T>(
        &self,
        waiting: &Waiting<'_>,
        received_at: tokio::time::Instant,
        fut: impl std::future::Future<Output = T>,
    ) -> T {
        self.covered(received_at, || waiting.still_waiting(), false, fut)
            .await
    }

    /// The visibility a FIFO group returns with when a message ended with `action`, or `None`
    /// when the action does not stop the group (success, delete, forward, acknowledgement).
    fn stops_group(&self, action: Option<&MessageAction>) -> Option<Duration> {
        match action {
            Some(MessageAction::LeftForRedelivery) => Some(self.shared.visibility),
            Some(MessageAction::Released(d)) => Some(*d),
            _ => None,
        }
    }

    /// Makes a stopped FIFO group's messages (the failed one first) visible again together, in
    /// order, in one ChangeMessageVisibilityBatch after `after` (the retry policy's delay, or
    /// the queue's visibility timeout when the policy leaves messages), so that the group is
    /// redelivered from the failed message on every endpoint. SQS would keep the group locked
    /// while the failed message is in flight, but an emulator that does not (LocalStack) would
    /// hand out the later ones first. In a Lambda invocation the release is only recorded: the
    /// function reports the messages, and Lambda returns them.
    fn release_group(&self, handles: Vec<String>, after: Duration) {
        tracing::debug!(queue = %self.shared.queue, released = handles.len(), ?after, "FIFO group stopped at a failure; it and the later messages return together");
        self.acks.release_group(handles, after);
    }

    pub(super) async fn process_batch(
        self: Arc<Self>,
        f: BatchFn,
        messages: Vec<SqsMessage>,
        permits: Vec<OwnedSemaphorePermit>,
        tracker: Option<Arc<ResponseTracker>>,
        received_at: tokio::time::Instant,
    ) {
        let _permits = permits;
        let span = self.shared.telemetry.batch_span(&messages);
        async move {
            let mut guards = Vec::with_capacity(messages.len());
            for m in &messages {
                guards.push(self.received(m).await);
            }
            let ctx = BatchContext {
                messages: messages.clone(),
                queue: self.shared.queue.clone(),
                state: self.shared.state.clone(),
            };
            let run = self.in_slot(messages.len(), f(ctx));
            let outcome = self.with_heartbeat(&messages, received_at, run).await;
            let Some(outcome) = outcome else {
                // Shutdown began while they waited for slots: the guards release them.
                drop(guards);
                self.finished(tracker.as_deref(), messages.len()).await;
                return;
            };
            let mut verdicts = Verdicts::from(outcome);
            if self.shared.fifo {
                self.settle_fifo_batch(&mut guards, &mut verdicts).await;
            } else {
                for g in &mut guards {
                    let verdict = verdicts.of(g.message);
                    self.settle(g, verdict).await;
                }
            }
            drop(guards);
            self.finished(tracker.as_deref(), messages.len()).await;
        }
        .instrument(span)
        .await;
    }

    /// Settles a message as its verdict says; `None` when it succeeded.
    async fn settle(&self, guard: &mut InFlight<'_>, verdict: Verdict) -> Option<MessageAction> {
        match verdict {
            Verdict::Succeeded => {
                self.succeeded(guard).await;
                None
            }
            Verdict::Failed(e, kind) => Some(self.failed(guard, e, kind).await),
            Verdict::TimedOut(t) => Some(self.timed_out(guard, t).await),
        }
    }

    /// A FIFO batch, settled group by group in receive order: once a message of a group fails
    /// with a retryable failure, the group's later messages are not deleted, whatever the
    /// handler said of them (they would otherwise be consumed ahead of the failed one), and
    /// return with it (see [`Worker::release_group`]).
    async fn settle_fifo_batch(&self, guards: &mut [InFlight<'_>], verdicts: &mut Verdicts) {
        // Per stopped group: its id, when it returns, and the indices of its messages (the
        // failed one first). They stay unsettled until released, so that an abort in between
        // releases them (see `InFlight`).
        let mut stopped: Vec<(Option<&str>, Duration, Vec<usize>)> = Vec::new();
        for i in 0..guards.len() {
            let message: &SqsMessage = guards[i].message;
            let group = message.message_group_id();
            if let Some((_, _, held)) = stopped.iter_mut().find(|(g, _, _)| *g == group) {
                held.push(i);
                continue;
            }
            guards[i].leads_group = guards[i + 1..]
                .iter()
                .any(|later| later.message.message_group_id() == group);
            let verdict = verdicts.of(message);
            let action = self.settle(&mut guards[i], verdict).await;
            if let Some(after) = self.stops_group(action.as_ref()) {
                guards[i].settled = !guards[i].leads_group;
                stopped.push((group, after, vec![i]));
            }
        }
        for (_, after, held) in stopped {
            if held.len() > 1 {
                let handles = held
                    .iter()
                    .map(|&i| guards[i].message.receipt_handle().to_owned());
                self.release_group(handles.collect(), after);
                for i in held {
                    guards[i].settled = true;
                }
            }
        }
    }
}

/// A FIFO group's messages waiting for their turn in [`Worker::process_group`]. Dropped with
/// some left (the task aborted at the shutdown deadline), it releases them at once, so that
/// none stays invisible.
struct Waiting<'a> {
    acks: &'a Acks,
    state: std::sync::Mutex<WaitingState>,
}

struct WaitingState {
    /// In the group's order; each leaves as it starts (its own guard covers it then).
    messages: std::collections::VecDeque<SqsMessage>,
    /// The group stopped: its messages are being released, no longer kept invisible.
    stopped: bool,
}

impl<'a> Waiting<'a> {
    fn new(acks: &'a Acks, messages: &[SqsMessage]) -> Self {
        let messages = messages.iter().cloned().collect();
        Self {
            acks,
            state: std::sync::Mutex::new(WaitingState {
                messages,
                stopped: false,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, WaitingState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next message starts: it leaves the list, and is returned.
    fn start(&self) -> Option<SqsMessage> {
        self.state().messages.pop_front()
    }

    /// The group stopped at `failed`: the receipt handles to release together, the failed
    /// message's first. Until [`clear`](Self::clear), an abort still releases them.
    fn stop(&self, failed: Option<SqsMessage>) -> Vec<String> {
        let mut st = self.state();
        st.stopped = true;
        st.messages.extend(failed);
        st.messages.rotate_right(1);
        st.messages
            .iter()
            .map(|m| m.receipt_handle().to_owned())
            .collect()
    }

    fn clear(&self) {
        self.state().messages.clear();
    }

    /// The receipt handles still waiting, for the heartbeat; none once the group stopped.
    fn still_waiting(&self) -> Vec<String> {
        let st = self.state();
        if st.stopped {
            return Vec::new();
        }
        st.messages
            .iter()
            .map(|m| m.receipt_handle().to_owned())
            .collect()
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        for m in self.state().messages.drain(..) {
            self.acks
                .change_visibility(m.receipt_handle(), Duration::ZERO);
        }
    }
}

/// What a batch handler's outcome says of each of its messages.
enum Verdicts {
    /// The handler returned: the messages it named failed, the rest succeeded.
    Returned(HashMap<String, BoxError>),
    /// The whole batch failed with one error.
    AllFailed(Arc<BoxError>, FailureKind),
    /// The handler ran past its timeout.
    TimedOut(Duration),
}

/// What a batch handler's outcome says of one message.
enum Verdict {
    Succeeded,
    Failed(Arc<BoxError>, FailureKind),
    TimedOut(Duration),
}

impl From<Outcome<()>> for Verdict {
    fn from(outcome: Outcome<()>) -> Self {
        match outcome {
            Outcome::Done(Ok(())) => Verdict::Succeeded,
            Outcome::Done(Err(e)) => {
                let (e, kind) = classify(e);
                Verdict::Failed(e, kind)
            }
            Outcome::Panicked(text) => Verdict::Failed(panicked(text), FailureKind::Panic),
            Outcome::TimedOut(t) => Verdict::TimedOut(t),
        }
    }
}

impl From<Outcome<BatchOutcome>> for Verdicts {
    fn from(outcome: Outcome<BatchOutcome>) -> Self {
        match outcome {
            Outcome::Done(Ok(result)) => Verdicts::Returned(result.failed),
            Outcome::Done(Err(e)) => {
                let (e, kind) = classify(e);
                Verdicts::AllFailed(e, kind)
            }
            Outcome::Panicked(text) => Verdicts::AllFailed(panicked(text), FailureKind::Panic),
            Outcome::TimedOut(t) => Verdicts::TimedOut(t),
        }
    }
}

/// A handler's error with its kind: an extractor's, or the handler's own.
fn classify(e: BoxError) -> (Arc<BoxError>, FailureKind) {
    let kind = if e.is::<ExtractError>() {
        FailureKind::Extract
    } else {
        FailureKind::Handler
    };
    (Arc::new(e), kind)
}

fn panicked(text: String) -> Arc<BoxError> {
    Arc::new(HandlerPanicked { message: text }.into())
}

impl Verdicts {
    fn of(&mut self, message: &SqsMessage) -> Verdict {
        match self {
            Verdicts::Returned(failed) => match failed.remove(message.message_id()) {
                Some(e) => Verdict::Failed(Arc::new(e), FailureKind::Handler),
                None => Verdict::Succeeded,
            },
            Verdicts::AllFailed(e, kind) => Verdict::Failed(e.clone(), *kind),
            Verdicts::TimedOut(t) => Verdict::TimedOut(*t),
        }
    }
}

/// Splits a FIFO receive into its message groups, keeping order within each; `message` names
/// the message each item carries.
pub(super) fn fifo_groups<T>(
    items: impl IntoIterator<Item = T>,
    message: impl Fn(&T) -> &SqsMessage,
) -> Vec<Vec<T>> {
    let mut groups: Vec<Vec<T>> = Vec::new();
    for item in items {
        let key = message(&item).message_group_id();
        match groups
            .iter_mut()
            .find(|g| message(&g[0]).message_group_id() == key)
        {
            Some(group) => group.push(item),
            None => groups.push(vec![item]),
        }
    }
    groups
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
}
