//! Consumer events and the hooks that observe them: the eight events of the NestJS library, and
//! the circuit breaker's two.
//!
//! | event (macro name) | type | fires |
//! |---|---|---|
//! | `processing_error` | [`ProcessingError`] | a handler returned an error, panicked, or an extractor failed |
//! | `timeout_error` | [`TimeoutError`] | a handler ran past its timeout and was cancelled |
//! | `error` | [`ConsumerError`] | an SQS call failed (receive, delete, visibility change) |
//! | `message_received` | [`MessageReceived`] | before a message is handled |
//! | `message_processed` | [`MessageProcessed`] | after a message was handled successfully |
//! | `response_processed` | [`ResponseProcessed`] | after every message of one receive was handled |
//! | `empty` | [`Empty`] | a receive returned no message |
//! | `started` | [`Started`] | the queue's consumer has started, before its first receive |
//! | `stopped` | [`Stopped`] | the queue's consumer has stopped |
//! | `circuit_opened` | [`CircuitOpened`] | the queue's [circuit breaker](crate::CircuitBreaker) opened: receiving stops |
//! | `circuit_closed` | [`CircuitClosed`] | a probe succeeded and the breaker closed: receiving resumes |
//!
//! Hooks run in the consumer's task for the message or queue, awaited in registration order; a
//! hook that fails or panics is logged and never stops the consumer. An event nobody observes
//! is not even built.
//!
//! A hook is an async function that takes the event first, then any of [`State<T>`](crate::State)
//! and [`QueueName`](crate::QueueName), and returns `()` or `Result<(), E>`. Declare it with
//! [`#[sqs_consumer_event_handler("queue", event)]`](crate::sqs_consumer_event_handler), or
//! register it with [`SqsConsumerBuilder::hook`](crate::SqsConsumerBuilder::hook):
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use sqs_handler::{MessageProcessed, ProcessingError, State, sqs_consumer_event_handler};
//!
//! #[derive(Clone, Default)]
//! struct Counters {
//!     done: Arc<AtomicU64>,
//!     failed: Arc<AtomicU64>,
//! }
//!
//! #[sqs_consumer_event_handler("jobs", message_processed)]
//! async fn count_done(_: MessageProcessed, State(c): State<Counters>) {
//!     c.done.fetch_add(1, Ordering::Relaxed);
//! }
//!
//! #[sqs_consumer_event_handler("jobs", processing_error)]
//! async fn count_failed(_: ProcessingError, State(c): State<Counters>) {
//!     c.failed.fetch_add(1, Ordering::Relaxed);
//! }
//! ```

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;

use crate::error::BoxError;
use crate::extract::{FromHookContext, HookContext, Requirement};
use crate::handler::{BoxFuture, IntoHandlerResult};
use crate::message::SqsMessage;

/// What the consumer did with a message that was not handled successfully.
///
/// ```
/// use sqs_handler::{MessageAction, ProcessingError, sqs_consumer_event_handler};
///
/// #[sqs_consumer_event_handler("jobs", processing_error)]
/// async fn explain(event: ProcessingError) {
///     let what = match &event.action {
///         MessageAction::LeftForRedelivery => "back after its visibility timeout".to_owned(),
///         MessageAction::Released(delay) => format!("back in {delay:?}"),
///         MessageAction::Deleted => "dropped".to_owned(),
///         MessageAction::Forwarded(queue) => format!("moved to {queue}"),
///         _ => "other".to_owned(),
///     };
///     println!("{}: {what}", event.message.message_id());
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageAction {
    /// Left in flight: SQS redelivers it when its visibility timeout ends.
    LeftForRedelivery,
    /// Made visible again after this delay (0: at once).
    Released(Duration),
    /// Deleted (a non-retryable error).
    Deleted,
    /// Sent to this queue, then deleted (a non-retryable error).
    Forwarded(String),
    /// Already deleted or released by the handler through its
    /// [`Acknowledgement`](crate::Acknowledgement); the consumer left it be.
    Acknowledged,
}

/// Why a message failed.
///
/// ```
/// use sqs_handler::{FailureKind, ProcessingError, sqs_consumer_event_handler};
///
/// #[sqs_consumer_event_handler("jobs", processing_error)]
/// async fn classify(event: ProcessingError) {
///     if event.kind == FailureKind::Extract {
///         println!("malformed message {}: {}", event.message.message_id(), event.error);
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The handler returned an error.
    Handler,
    /// The handler panicked.
    Panic,
    /// An extractor could not build an argument (for example, a body that is not valid JSON).
    Extract,
}

/// `processing_error`: a message failed: its handler returned an error or panicked, or an
/// argument could not be extracted. For a batch handler, one event per failed message.
///
/// ```
/// use sqs_handler::{ProcessingError, sqs_consumer_event_handler};
///
/// #[sqs_consumer_event_handler("jobs", processing_error)]
/// async fn on_failure(event: ProcessingError) {
///     eprintln!(
///         "message {} failed ({:?}), {:?}: {}",
///         event.message.message_id(), event.kind, event.action, event.error
///     );
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProcessingError {
    /// The queue.
    pub queue: Arc<str>,
    /// The message.
    pub message: SqsMessage,
    /// What went wrong.
    pub error: Arc<BoxError>,
    /// Which kind of failure.
    pub kind: FailureKind,
    /// What the consumer did with the message.
    pub action: MessageAction,
}

/// `timeout_error`: a handler ran past its timeout; its future was dropped.
///
/// ```
/// use sqs_handler::{TimeoutError, sqs_consumer_event_handler};
///
/// #[sqs_consumer_event_handler("jobs", timeout_error)]
/// async fn on_timeout(event: TimeoutError) {
///     eprintln!("message {} ran past {:?}", event.message.message_id(), event.timeout);
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TimeoutError {
    /// The queue.
    pub queue: Arc<str>,
    /// The message.
    pub message: SqsMessage,
    /// The timeout that was exceeded.
    pub timeout: Duration,
    /// What the consumer did with the message.
    pub action: MessageAction,
}

/// `error`: an SQS call failed (a receive, a delete, a visibility change, a forward). The
/// consumer retries and goes on; this reports it.
///
/// ```
/// use sqs_handler::{ConsumerError, sqs_consumer_event_handler};
///
/// #[sqs_consumer_event_handler("jobs", error)]
/// async fn on_sqs_error(event: ConsumerError) {
///     eprintln!("{} on {} failed: {}", event.operation, event.queue, event.error);
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerError {
    /// The queue.
    pub queue: Arc<str>,
    /// The SQS operation (`ReceiveMessage`, `DeleteMessageBatch`, ...).
    pub operation: &'static str,
    /// What the SDK reported.
    pub error: Arc<BoxError>,
}

/// `message_received`: a message is about to be handled.
///
/// ```
/// use sqs_handler::{MessageReceived, sqs_consumer_event_handler};
///
/// #[sqs_consumer_event_handler("jobs", message_received)]
/// async fn on_received(event: MessageReceived) {
///     println!("received {} ({} bytes)", event.message.message_id(), event.message.body().len());
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MessageReceived {
    /// The queue.
    pub queue: Arc<str>,
    /// The message.
    pub message: SqsMessage,
}

/// `message_processed`: a message was handled successfully and queued for deletion.
///
/// ```
/// use sqs_handler::{MessageProcessed, sqs_consumer_event_handler};
///
/// #[sqs_consumer_event_handler("jobs", message_processed)]
/// async fn on_processed(event: MessageProcessed) {
///     println!("done with {}", event.message.message_id());
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MessageProcessed {
    /// The queue.
    pub queue: Arc<str>,
    /// The message.
    pub message: SqsMessage,
}

/// `response_processed`: every message of one receive was handled, whatever their outcomes.
///
/// ```
/// use sqs_handler::{ResponseProcessed, sqs_consumer_event_handler};
///
/// #[sqs_consumer_event_handler("jobs", response_processed)]
/// async fn on_receive_done(event: ResponseProcessed) {
///     println!("a receive of {} messages from {} is done", event.messages, event.queue);
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ResponseProcessed {
    /// The queue.
    pub queue: Arc<str>,
    /// How many messages the receive returned.
    pub messages: usize,
}

/// `empty`: a receive returned no message (after its long poll).
///
/// ```
/// use sqs_handler::{Empty, sqs_consumer_event_handler};
///
/// #[sqs_consumer_event_handler("jobs", empty)]
/// async fn on_empty(event: Empty) {
///     println!("{} is empty", event.queue);
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Empty {
    /// The queue.
    pub queue: Arc<str>,
}

impl Empty {
    /// The event that a receive of `queue` returned nothing (for tests of hooks).
    pub fn new(queue: impl Into<Arc<str>>) -> Self {
        Self {
            queue: queue.into(),
        }
    }
}

/// `started`: the queue's consumer started; its first receive follows.
///
/// ```
/// use sqs_handler::{Started, sqs_consumer_event_handler};
///
/// #[sqs_consumer_event_handler("jobs", started)]
/// async fn on_started(event: Started) {
///     println!("consuming {}", event.queue);
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Started {
    /// The queue.
    pub queue: Arc<str>,
}

impl Started {
    /// The event that `queue`'s consumer started (for tests of hooks).
    pub fn new(queue: impl Into<Arc<str>>) -> Self {
        Self {
            queue: queue.into(),
        }
    }
}

/// `stopped`: the queue's consumer stopped, after its drain: handlers finished or cancelled,
/// deletes flushed, unfinished messages released.
///
/// ```
/// use sqs_handler::{Stopped, sqs_consumer_event_handler};
///
/// #[sqs_consumer_event_handler("jobs", stopped)]
/// async fn on_stopped(event: Stopped) {
///     println!("{} stopped", event.queue);
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Stopped {
    /// The queue.
    pub queue: Arc<str>,
}

impl Stopped {
    /// The event that `queue`'s consumer stopped (for tests of hooks).
    pub fn new(queue: impl Into<Arc<str>>) -> Self {
        Self {
            queue: queue.into(),
        }
    }
}

/// `circuit_opened`: the queue's circuit breaker opened; its pollers stop receiving.
///
/// ```
/// use sqs_handler::{CircuitOpened, sqs_consumer_event_handler};
///
/// #[sqs_consumer_event_handler("jobs", circuit_opened)]
/// async fn on_open(event: CircuitOpened) {
///     eprintln!(
///         "{}: {} of {} messages failed; paused for {:?}",
///         event.queue, event.failures, event.messages, event.open_for
///     );
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CircuitOpened {
    /// The queue.
    pub queue: Arc<str>,
    /// Counted failures in the window that opened it (0 when a probe failed).
    pub failures: usize,
    /// Finished messages in that window (0 when a probe failed).
    pub messages: usize,
    /// How long it stays open before the next probe.
    pub open_for: Duration,
}

/// `circuit_closed`: a probe message succeeded; receiving resumes.
///
/// ```
/// use sqs_handler::{CircuitClosed, sqs_consumer_event_handler};
///
/// #[sqs_consumer_event_handler("jobs", circuit_closed)]
/// async fn on_close(event: CircuitClosed) {
///     println!("{} receives again", event.queue);
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CircuitClosed {
    /// The queue.
    pub queue: Arc<str>,
}

/// The kind of an event, as named in `#[sqs_consumer_event_handler("queue", kind)]`.
///
/// ```
/// use sqs_handler::events::{Event, EventType};
/// use sqs_handler::{EventKind, Stopped};
///
/// assert_eq!(Stopped::KIND, EventKind::Stopped);
/// let event = Stopped::new("jobs").into_event();
/// assert_eq!(event.kind(), EventKind::Stopped);
/// assert!(matches!(event, Event::Stopped(_)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// [`ProcessingError`]
    ProcessingError,
    /// [`TimeoutError`]
    TimeoutError,
    /// [`ConsumerError`]
    Error,
    /// [`MessageReceived`]
    MessageReceived,
    /// [`MessageProcessed`]
    MessageProcessed,
    /// [`ResponseProcessed`]
    ResponseProcessed,
    /// [`Empty`]
    Empty,
    /// [`Stopped`]
    Stopped,
    /// [`Started`]
    Started,
    /// [`CircuitOpened`]
    CircuitOpened,
    /// [`CircuitClosed`]
    CircuitClosed,
}

/// Any event, as one type.
///
/// ```
/// use sqs_handler::events::{Event, EventType};
/// use sqs_handler::{EventKind, ProcessingError, Stopped};
///
/// let event: Event = Stopped::new("jobs").into_event();
/// assert_eq!(event.kind(), EventKind::Stopped);
/// assert!(ProcessingError::from_event(&event).is_none());
/// assert!(Stopped::from_event(&event).is_some());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// [`ProcessingError`]
    ProcessingError(ProcessingError),
    /// [`TimeoutError`]
    TimeoutError(TimeoutError),
    /// [`ConsumerError`]
    Error(ConsumerError),
    /// [`MessageReceived`]
    MessageReceived(MessageReceived),
    /// [`MessageProcessed`]
    MessageProcessed(MessageProcessed),
    /// [`ResponseProcessed`]
    ResponseProcessed(ResponseProcessed),
    /// [`Empty`]
    Empty(Empty),
    /// [`Stopped`]
    Stopped(Stopped),
    /// [`Started`]
    Started(Started),
    /// [`CircuitOpened`]
    CircuitOpened(CircuitOpened),
    /// [`CircuitClosed`]
    CircuitClosed(CircuitClosed),
}

impl Event {
    /// Its kind.
    ///
    /// ```
    /// use sqs_handler::events::{Event, EventType};
    /// use sqs_handler::{Empty, EventKind};
    ///
    /// assert_eq!(Empty::new("jobs").into_event().kind(), EventKind::Empty);
    /// ```
    pub fn kind(&self) -> EventKind {
        match self {
            Event::ProcessingError(_) => EventKind::ProcessingError,
            Event::TimeoutError(_) => EventKind::TimeoutError,
            Event::Error(_) => EventKind::Error,
            Event::MessageReceived(_) => EventKind::MessageReceived,
            Event::MessageProcessed(_) => EventKind::MessageProcessed,
            Event::ResponseProcessed(_) => EventKind::ResponseProcessed,
            Event::Empty(_) => EventKind::Empty,
            Event::Stopped(_) => EventKind::Stopped,
            Event::Started(_) => EventKind::Started,
            Event::CircuitOpened(_) => EventKind::CircuitOpened,
            Event::CircuitClosed(_) => EventKind::CircuitClosed,
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// An event type a hook can take as its first argument: one of the ten event structs of this
/// module (the trait is sealed).
///
/// ```
/// use sqs_handler::events::EventType;
/// use sqs_handler::{ConsumerError, EventKind, TimeoutError};
///
/// assert_eq!(ConsumerError::KIND, EventKind::Error);
/// assert_eq!(TimeoutError::KIND, EventKind::TimeoutError);
/// ```
pub trait EventType: sealed::Sealed + Clone + Send + Sync + 'static {
    /// Its kind.
    const KIND: EventKind;
    /// Extracts this event from [`Event`].
    fn from_event(event: &Event) -> Option<Self>;
    /// Wraps it in [`Event`].
    fn into_event(self) -> Event;
}

macro_rules! event_types {
    ($($ty:ident),*) => {$(
        impl sealed::Sealed for $ty {}
        impl EventType for $ty {
            const KIND: EventKind = EventKind::$ty;
            fn from_event(event: &Event) -> Option<Self> {
                match event {
                    Event::$ty(e) => Some(e.clone()),
                    _ => None,
                }
            }
            fn into_event(self) -> Event {
                Event::$ty(self)
            }
        }
    )*};
}
event_types!(
    ProcessingError,
    TimeoutError,
    MessageReceived,
    MessageProcessed,
    ResponseProcessed,
    Empty,
    Stopped,
    Started,
    CircuitOpened,
    CircuitClosed
);

impl sealed::Sealed for ConsumerError {}
impl EventType for ConsumerError {
    const KIND: EventKind = EventKind::Error;
    fn from_event(event: &Event) -> Option<Self> {
        match event {
            Event::Error(e) => Some(e.clone()),
            _ => None,
        }
    }
    fn into_event(self) -> Event {
        Event::Error(self)
    }
}

/// An async function that can observe events of type `E`: its first argument is the event,
/// the others implement [`FromHookContext`]; it returns `()` or `Result<(), E>`.
///
/// Hooks are registered with [`#[sqs_consumer_event_handler]`](crate::sqs_consumer_event_handler)
/// or [`SqsConsumerBuilder::hook`](crate::SqsConsumerBuilder::hook), which reads the event from
/// the first argument's type; a closure is a hook too:
///
/// ```
/// use sqs_handler::{Empty, ProcessingError, SqsConsumer, State};
///
/// #[derive(Clone)]
/// struct Alerts;
///
/// async fn alert(event: ProcessingError, State(_alerts): State<Alerts>) -> Result<(), String> {
///     Err(format!("could not page anyone about {}", event.message.message_id()))
///     // the error is logged; the consumer goes on
/// }
///
/// # fn register(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
/// SqsConsumer::builder(config)
///     .hook("jobs", alert)
///     .hook("jobs", |event: Empty| async move { println!("{} is empty", event.queue) })
///     .state(Alerts)
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event hook for this event",
    note = "a hook is an async fn taking the event type first (ProcessingError, TimeoutError, ...), then extractors (State<T>, QueueName), and returning () or Result<(), E>"
)]
pub trait Hook<E, T>: Clone + Send + Sync + 'static {
    /// Runs the hook.
    fn call(self, event: E, ctx: HookContext) -> BoxFuture<Result<(), BoxError>>;

    /// The state types its extractors need.
    #[doc(hidden)]
    fn requirements() -> Vec<Requirement>;
}

macro_rules! impl_hooks {
    ($($ty:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, R, E, $($ty,)*> Hook<E, ($($ty,)*)> for F
        where
            F: FnOnce(E, $($ty,)*) -> Fut + Clone + Send + Sync + 'static,
            Fut: std::future::Future<Output = R> + Send + 'static,
            R: IntoHandlerResult,
            E: EventType,
            $($ty: FromHookContext + Send + 'static,)*
        {
            fn call(self, event: E, ctx: HookContext) -> BoxFuture<Result<(), BoxError>> {
                $(
                    let $ty = match $ty::from_hook(&ctx) {
                        Ok(v) => v,
                        Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
                    };
                )*
                let fut = self(event, $($ty,)*);
                Box::pin(async move { fut.await.into_handler_result() })
            }

            fn requirements() -> Vec<Requirement> {
                let all: Vec<Option<Requirement>> = vec![$($ty::requirement(),)*];
                all.into_iter().flatten().collect()
            }
        }
    };
}
crate::handler::all_the_tuples!(impl_hooks);

/// A hook with its types erased.
pub(crate) type HookFn =
    Arc<dyn Fn(&Event, HookContext) -> Option<BoxFuture<Result<(), BoxError>>> + Send + Sync>;

/// Erases a hook for event type `E`.
pub(crate) fn hook_fn<E: EventType, T, H: Hook<E, T>>(hook: H) -> HookFn {
    Arc::new(move |event, ctx| E::from_event(event).map(|e| hook.clone().call(e, ctx)))
}

/// The hooks of one queue, by kind.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    hooks: Vec<(EventKind, String, HookFn)>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.hooks.iter().map(|(k, n, _)| (k, n)))
            .finish()
    }
}

impl Hooks {
    pub(crate) fn push(&mut self, kind: EventKind, name: String, f: HookFn) {
        self.hooks.push((kind, name, f));
    }

    /// True when at least one hook observes `kind`; lets callers skip building the event.
    pub(crate) fn wants(&self, kind: EventKind) -> bool {
        self.hooks.iter().any(|(k, _, _)| *k == kind)
    }

    /// Runs every hook for the event, in order; failures and panics are logged.
    pub(crate) async fn fire(&self, event: Event, ctx: &HookContext) {
        for (_, name, f) in &self.hooks {
            let call =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&event, ctx.clone())));
            let fut = match call {
                Ok(Some(fut)) => fut,
                Ok(None) => continue,
                Err(panic) => {
                    tracing::error!(hook = %name, queue = %ctx.queue, panic = %panic_message(&panic), "event hook panicked");
                    continue;
                }
            };
            match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(hook = %name, queue = %ctx.queue, error = %e, "event hook failed");
                }
                Err(panic) => {
                    tracing::error!(hook = %name, queue = %ctx.queue, panic = %panic_message(&panic), "event hook panicked");
                }
            }
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::extract::State;
    use crate::state::StateMap;

    #[tokio::test]
    async fn failing_and_panicking_hooks_do_not_stop_the_others() {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut state = StateMap::default();
        state.insert(seen.clone());
        let ctx = HookContext {
            queue: Arc::from("jobs"),
            state: Arc::new(state),
        };
        let mut hooks = Hooks::default();
        hooks.push(
            EventKind::Empty,
            "fails".into(),
            hook_fn(|_: Empty| async { Err::<(), BoxError>("no".into()) }),
        );
        hooks.push(
            EventKind::Empty,
            "panics".into(),
            hook_fn(|e: Empty| async move {
                if !e.queue.is_empty() {
                    panic!("hook bug");
                }
            }),
        );
        hooks.push(
            EventKind::Stopped,
            "other event".into(),
            hook_fn(
                |_: Stopped, State(s): State<Arc<Mutex<Vec<String>>>>| async move {
                    s.lock().unwrap().push("stopped".into());
                },
            ),
        );
        hooks.push(
            EventKind::Empty,
            "records".into(),
            hook_fn(
                |e: Empty, State(s): State<Arc<Mutex<Vec<String>>>>| async move {
                    s.lock().unwrap().push(format!("empty {}", e.queue));
                },
            ),
        );
        assert!(hooks.wants(EventKind::Empty));
        assert!(!hooks.wants(EventKind::TimeoutError));
        hooks
            .fire(
                Event::Empty(Empty {
                    queue: Arc::from("jobs"),
                }),
                &ctx,
            )
            .await;
        assert_eq!(*seen.lock().unwrap(), ["empty jobs"]);
    }
}
