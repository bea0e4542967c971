//! Registrations the macros submit at link time, through `sqs_handler::__private`.

use crate::events::{EventKind, EventType, Hook, HookFn, hook_fn};
use crate::extract::Requirement;
use crate::handler::{BatchHandler, ErasedHandler, Handler, batch_fn, message_service};

/// Where a registration's queue name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueRef {
    /// A queue name: a literal, or a `&'static str` constant or static named by path.
    Name(&'static str),
    /// An environment variable read when the consumer is built.
    Env(&'static str),
    /// An environment variable, and the name used when it is unset.
    EnvOr(&'static str, &'static str),
}

impl QueueRef {
    /// Resolves the queue name; `Err` names the missing variable.
    pub(crate) fn resolve(&self) -> Result<String, &'static str> {
        match self {
            QueueRef::Name(n) => Ok((*n).to_owned()),
            QueueRef::Env(var) => std::env::var(var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.trim().to_owned())
                .ok_or(var),
            QueueRef::EnvOr(var, default) => Ok(QueueRef::Env(var)
                .resolve()
                .unwrap_or_else(|_| (*default).to_owned())),
        }
    }
}

/// Where a handler or hook was declared, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The function's name.
    pub name: &'static str,
    /// `module_path!()` where it was declared.
    pub module: &'static str,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}::{}", self.module, self.name)
    }
}

/// A message or batch handler registered by `#[sqs_message_handler]`.
#[derive(Debug)]
pub struct HandlerRegistration {
    /// The queue.
    pub queue: QueueRef,
    /// The message type it handles (`message_type = "..."`), or `None` for every message.
    pub message_type: Option<&'static str>,
    /// The function.
    pub origin: Origin,
    /// Builds the erased handler and lists the state it needs.
    pub make: fn() -> (ErasedHandler, Vec<Requirement>),
}

/// An event hook registered by `#[sqs_consumer_event_handler]`.
#[derive(Debug)]
pub struct HookRegistration {
    /// The queue.
    pub queue: QueueRef,
    /// The event.
    pub event: EventKind,
    /// The function.
    pub origin: Origin,
    /// Builds the erased hook and lists the state it needs.
    pub make: fn() -> (ErasedHook, Vec<Requirement>),
}

/// A hook with its types erased.
#[derive(Clone)]
pub struct ErasedHook(pub(crate) HookFn);

impl std::fmt::Debug for ErasedHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ErasedHook")
    }
}

inventory::collect!(HandlerRegistration);
inventory::collect!(HookRegistration);

/// Erases a message handler (called by the generated code).
pub fn message_handler<H: Handler<T>, T>(handler: H) -> (ErasedHandler, Vec<Requirement>) {
    (
        ErasedHandler::Message(message_service(handler)),
        H::requirements(),
    )
}

/// Erases a batch handler (called by the generated code).
pub fn batch_handler<H: BatchHandler<T>, T>(handler: H) -> (ErasedHandler, Vec<Requirement>) {
    (ErasedHandler::Batch(batch_fn(handler)), H::requirements())
}

/// Erases a hook for event type `E` (called by the generated code).
pub fn hook<E: EventType, T, H: Hook<E, T>>(hook: H) -> (ErasedHook, Vec<Requirement>) {
    (ErasedHook(hook_fn::<E, T, H>(hook)), H::requirements())
}

/// Every handler registered in this binary.
pub(crate) fn handlers() -> impl Iterator<Item = &'static HandlerRegistration> {
    inventory::iter::<HandlerRegistration>.into_iter()
}

/// Every hook registered in this binary.
pub(crate) fn hooks() -> impl Iterator<Item = &'static HookRegistration> {
    inventory::iter::<HookRegistration>.into_iter()
}

/// Checks that a hook's first argument is its event type (used by the generated code).
#[diagnostic::on_unimplemented(
    message = "the first argument of this hook must be `{E}`, the type of the event it observes, not `{Self}`"
)]
pub trait IsEvent<E> {}

impl<E: EventType> IsEvent<E> for E {}
