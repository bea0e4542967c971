//! Extractors: the arguments a handler or hook takes, each built from the message, the batch or
//! the consumer's state.
//!
//! | extractor | message handler | batch handler | hook |
//! |---|---|---|---|
//! | [`Json<T>`] | body decoded as JSON | | |
//! | [`Sns<T>`] | SNS notification in the body, its `Message` decoded as JSON | | |
//! | [`EventBridge<T>`] | EventBridge event in the body, its `detail` decoded | | |
//! | [`Body`] | raw body | | |
//! | [`SqsMessage`](crate::SqsMessage) | the whole message | | |
//! | [`MessageAttributes`] | message attributes | | |
//! | [`ReceiveCount`], [`SentTimestamp`], [`MessageGroupId`], [`MessageId`] | system attributes | | |
//! | [`Batch`] | | the received messages | |
//! | [`Acknowledgement`] | delete, release or extend the message from the handler | | |
//! | [`QueueName`] | yes | yes | yes |
//! | [`State<T>`] | yes | yes | yes |
//! | [`Option<T>`](OptionalFromMessage) | `None` when `T` is not there (a body that does not decode, no state) | | |
//! | [`Result<T, ExtractError>`](FromMessage#results-handle-the-failure) | the failure, for the handler to handle | | |
//!
//! A failed extraction is a processing error: `processing_error` fires with
//! [`FailureKind::Extract`](crate::FailureKind::Extract) and the message is not deleted (the
//! retry policy applies, as for a handler error; see
//! [`QueueOptions::non_retryable_if`](crate::QueueOptions::non_retryable_if) to drop messages
//! that cannot be decoded). Take `Option<T>` or `Result<T, ExtractError>` to decide in the
//! handler instead.
//!
//! Arguments are extracted in order, inside the handler's future (so within its
//! [`handler_timeout`](crate::QueueOptions::handler_timeout), and a panicking extractor is
//! caught like a panicking handler); the first that fails stops the others. A handler takes up
//! to 8 of them, in any order.
//!
//! ```
//! use sqs_handler::{
//!     Json, MessageAttributes, MessageId, QueueName, ReceiveCount, State, sqs_message_handler,
//! };
//!
//! #[derive(serde::Deserialize)]
//! struct Signup {
//!     email: String,
//! }
//!
//! #[derive(Clone)]
//! struct Mailer {
//!     from: String,
//! }
//!
//! #[sqs_message_handler("signups")]
//! async fn welcome(
//!     Json(signup): Json<Signup>,
//!     MessageId(id): MessageId,
//!     ReceiveCount(receives): ReceiveCount,
//!     attributes: MessageAttributes,
//!     QueueName(queue): QueueName,
//!     State(mailer): State<Mailer>,
//! ) {
//!     let locale = attributes.string("locale").unwrap_or("en");
//!     println!("{queue}/{id} (receive {receives}): mail {} from {} in {locale}", signup.email, mailer.from);
//! }
//! ```
//!
//! Your own types become extractors by implementing [`FromMessage`] (see [implementing an
//! extractor](FromMessage#implementing-an-extractor)); they are async and can read the
//! consumer's state.

use std::any::TypeId;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

use crate::error::ExtractError;

mod ack;
mod context;
mod eventbridge;
mod json;
mod message;
mod optional;
mod queue;
mod rfc3339;
mod sns;
mod state;

pub(crate) use ack::AckHandle;
pub use ack::Acknowledgement;
pub use context::{BatchContext, HookContext, MessageContext};
pub use eventbridge::EventBridge;
pub use json::Json;
pub use message::{
    Body, MessageAttributes, MessageGroupId, MessageId, ReceiveCount, SentTimestamp,
};
pub use queue::{Batch, QueueName};
pub use sns::{Sns, SnsAttribute};
pub use state::State;

/// The name of an extractor type for an [`ExtractError`], with the path users know
/// (`sqs_handler::extract::Json<app::Job>`) rather than the private module that defines it.
pub(crate) fn extractor_name<T: ?Sized>() -> &'static str {
    const PREFIX: &str = "sqs_handler::extract::";
    // One leaked name per extractor type that failed: a handful per program.
    static NAMES: Mutex<BTreeMap<&'static str, &'static str>> = Mutex::new(BTreeMap::new());
    let raw = std::any::type_name::<T>();
    if !raw.contains(PREFIX) {
        return raw;
    }
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    names.entry(raw).or_insert_with(|| {
        let mut public = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(at) = rest.find(PREFIX) {
            let after = &rest[at + PREFIX.len()..];
            public.push_str(&rest[..at + PREFIX.len()]);
            // A snake_case segment followed by `::` is a module; types are CamelCase.
            let module = after
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(after.len());
            rest = match after[module..].strip_prefix("::") {
                Some(tail) if module > 0 => tail,
                _ => after,
            };
        }
        public.push_str(rest);
        Box::leak(public.into_boxed_str())
    })
}

/// A state type a handler, hook or extractor needs, checked when the consumer is built: a
/// missing one is [`BuildError::MissingState`](crate::BuildError::MissingState), naming the
/// handler and the type.
///
/// [`State<T>`] declares one; a custom extractor that reads the state through
/// [`MessageContext::state`] declares its own from [`FromMessage::requirement`].
///
/// ```
/// use sqs_handler::extract::Requirement;
///
/// #[derive(Clone)]
/// struct Db;
///
/// assert_eq!(Requirement::state::<Db>(), Requirement::state::<Db>());
/// assert_ne!(Requirement::state::<Db>(), Requirement::state::<String>());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
}

impl Requirement {
    /// A value of type `T` given with `.state(value)`.
    pub fn state<T: 'static>() -> Self {
        Self {
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        }
    }
}

/// A value a message handler can take as an argument.
///
/// Extraction is async: an extractor may look something up (a user in a store, a feature flag)
/// before the handler runs. The context gives it the message, the queue and the consumer's
/// state ([`MessageContext::state`]).
///
/// # Implementing an extractor
///
/// Write `from_message` as an `async fn` that reads what the handler needs from the
/// [`MessageContext`]; return an [`ExtractError`] when the message does not have it. The
/// message then counts as failed, `processing_error` fires with
/// [`FailureKind::Extract`](crate::FailureKind::Extract), and the handler does not run. The
/// future must be `Send` (hold no `Rc` or `RefCell` borrow across an `.await`).
///
/// ```
/// use sqs_handler::extract::FromMessage;
/// use sqs_handler::{Body, ExtractError, MessageContext, sqs_message_handler};
///
/// /// The tenant a message belongs to, from its `tenant` message attribute.
/// struct Tenant(String);
///
/// impl FromMessage for Tenant {
///     async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
///         ctx.message()
///             .message_attributes()
///             .get("tenant")
///             .and_then(|value| value.string_value())
///             .map(|tenant| Tenant(tenant.to_owned()))
///             .ok_or_else(|| ExtractError::new("Tenant", "the message has no `tenant` attribute"))
///     }
/// }
///
/// #[sqs_message_handler("documents")]
/// async fn index_document(Tenant(tenant): Tenant, Body(text): Body) {
///     println!("{tenant}: {} bytes", text.len());
/// }
/// ```
///
/// # Reading the state
///
/// An extractor that needs a client or a store finds it in the consumer's state with
/// [`MessageContext::state`], and declares it in [`requirement`](FromMessage::requirement) so
/// that [`build`](crate::SqsConsumerBuilder::build) fails, naming the handler and the type,
/// when it was not given:
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Arc;
/// use sqs_handler::extract::{FromMessage, Requirement};
/// use sqs_handler::{ExtractError, MessageContext, sqs_message_handler};
///
/// /// A user store, given to the consumer with `.state(Users { .. })`.
/// #[derive(Clone, Default)]
/// struct Users {
///     by_id: Arc<HashMap<String, String>>,
/// }
///
/// impl Users {
///     async fn find(&self, id: &str) -> Option<String> {
///         self.by_id.get(id).cloned() // a database query in a real store
///     }
/// }
///
/// /// The user named by the message's `user-id` attribute, loaded from the store.
/// struct User {
///     name: String,
/// }
///
/// impl FromMessage for User {
///     async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
///         let id = ctx
///             .message()
///             .message_attributes()
///             .get("user-id")
///             .and_then(|v| v.string_value())
///             .ok_or_else(|| ExtractError::new("User", "the message has no `user-id` attribute"))?;
///         let users = ctx
///             .state::<Users>()
///             .ok_or_else(|| ExtractError::new("User", "no Users was given with .state(..)"))?;
///         match users.find(id).await {
///             Some(name) => Ok(User { name }),
///             None => Err(ExtractError::new("User", format!("no user {id:?}"))),
///         }
///     }
///
///     fn requirement() -> Option<Requirement> {
///         Some(Requirement::state::<Users>())
///     }
/// }
///
/// #[sqs_message_handler("greetings")]
/// async fn greet(user: User) {
///     println!("hello, {}", user.name);
/// }
/// ```
///
/// # Results: handle the failure
///
/// `Result<T, ExtractError>` is an extractor for every extractor `T`: the handler runs either
/// way and gets the failure to handle (log it and return `Ok(())` to delete the message, or
/// park it somewhere). Its state requirement is `T`'s, still checked at build.
///
/// ```
/// use sqs_handler::{ExtractError, Json, sqs_message_handler};
///
/// #[derive(serde::Deserialize)]
/// struct Order {
///     id: u64,
/// }
///
/// #[sqs_message_handler("orders")]
/// async fn take(order: Result<Json<Order>, ExtractError>) {
///     match order {
///         Ok(Json(order)) => println!("order {}", order.id),
///         Err(e) => eprintln!("dropping an undecodable order: {e}"), // deleted: the handler returned
///     }
/// }
/// ```
///
/// For `Option<T>`, see [`OptionalFromMessage`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be extracted from an SQS message",
    label = "not a message extractor",
    note = "message handler arguments are extractors: Json<T>, Sns<T>, EventBridge<T>, Body, SqsMessage, MessageAttributes, ReceiveCount, SentTimestamp, MessageGroupId, MessageId, QueueName, State<T>, Option<T>, Result<T, ExtractError>"
)]
pub trait FromMessage: Sized {
    /// Builds the value, or says why it cannot.
    fn from_message(
        ctx: &MessageContext,
    ) -> impl Future<Output = Result<Self, ExtractError>> + Send;

    /// The state type this extractor reads with [`MessageContext::state`], if any; checked when
    /// the consumer is built.
    fn requirement() -> Option<Requirement> {
        None
    }
}

/// What `Option<Self>` means as a message extractor: `Option<T>` is an extractor for every `T`
/// that implements this trait, and each says when it is `None`.
///
/// | `Option<..>` | `None` when | still fails the message when |
/// |---|---|---|
/// | [`Option<Json<T>>`](Json) | the body does not decode as `T` | never |
/// | [`Option<Sns<T>>`](Sns) | the body is not an SNS notification of a `T` | never |
/// | [`Option<EventBridge<T>>`](EventBridge) | the body is not an EventBridge event of a `T` | never |
/// | [`Option<SentTimestamp>`](SentTimestamp) | the message has no `SentTimestamp` | never |
/// | [`Option<State<T>>`](State) | no `T` was given with `.state(..)` (not required at build) | never |
///
/// This follows axum 0.8's `OptionalFromRequestParts` rather than a blanket
/// `impl<T: FromMessage> FromMessage for Option<T>`: an extractor decides what "absent" means
/// and can still fail on what is broken (a store that is down is not "no user"). Take
/// [`Result<T, ExtractError>`](FromMessage#results-handle-the-failure) to see every failure.
///
/// ```
/// use sqs_handler::{Body, Json, sqs_message_handler};
///
/// #[derive(serde::Deserialize)]
/// struct Command {
///     action: String,
/// }
///
/// /// Commands are JSON; anything else is logged as free text and deleted.
/// #[sqs_message_handler("commands")]
/// async fn run(command: Option<Json<Command>>, Body(body): Body) {
///     match command {
///         Some(Json(command)) => println!("run {}", command.action),
///         None => println!("not a command: {body}"),
///     }
/// }
/// ```
///
/// A custom extractor opts in by implementing this trait beside [`FromMessage`].
pub trait OptionalFromMessage: Sized {
    /// Builds the value, `None` when it is absent, or says why it cannot.
    fn from_message_optional(
        ctx: &MessageContext,
    ) -> impl Future<Output = Result<Option<Self>, ExtractError>> + Send;

    /// The state type this extractor reads, if any; checked when the consumer is built.
    fn requirement() -> Option<Requirement> {
        None
    }
}

/// A value a batch handler can take as an argument: [`Batch`], [`QueueName`], [`State<T>`],
/// or your own. Extraction is async, as for [`FromMessage`].
///
/// ```
/// use sqs_handler::extract::{BatchContext, FromBatch};
/// use sqs_handler::{ExtractError, sqs_message_handler};
///
/// /// The bodies of a batch, in order.
/// struct Bodies(Vec<String>);
///
/// impl FromBatch for Bodies {
///     async fn from_batch(ctx: &BatchContext) -> Result<Self, ExtractError> {
///         Ok(Bodies(ctx.messages().iter().map(|m| m.body().to_owned()).collect()))
///     }
/// }
///
/// #[sqs_message_handler("lines", batch)]
/// async fn append(Bodies(lines): Bodies) {
///     println!("{}", lines.join("\n"));
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be extracted from a batch of SQS messages",
    label = "not a batch extractor",
    note = "batch handler arguments are extractors: Batch, QueueName, State<T>"
)]
pub trait FromBatch: Sized {
    /// Builds the value, or says why it cannot.
    fn from_batch(ctx: &BatchContext) -> impl Future<Output = Result<Self, ExtractError>> + Send;

    /// The state type this extractor reads with [`BatchContext::state`], if any; checked when
    /// the consumer is built.
    fn requirement() -> Option<Requirement> {
        None
    }
}

/// A value a hook can take after its event: [`State<T>`] and [`QueueName`].
///
/// ```
/// use sqs_handler::{Empty, QueueName, State, sqs_consumer_event_handler};
///
/// #[derive(Clone)]
/// struct Metrics;
///
/// #[sqs_consumer_event_handler("jobs", empty)]
/// async fn idle(_: Empty, QueueName(queue): QueueName, State(_metrics): State<Metrics>) {
///     println!("{queue} is idle");
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be given to an event hook",
    label = "not a hook extractor",
    note = "after the event, hook arguments are extractors: QueueName, State<T>"
)]
pub trait FromHookContext: Sized {
    /// Builds the value, or says why it cannot.
    fn from_hook(ctx: &HookContext) -> Result<Self, ExtractError>;

    /// The state type this extractor needs, if any.
    #[doc(hidden)]
    fn requirement() -> Option<Requirement> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extractor_names_use_the_public_paths() {
        assert_eq!(
            extractor_name::<Json<Vec<u8>>>(),
            "sqs_handler::extract::Json<alloc::vec::Vec<u8>>"
        );
        assert_eq!(
            extractor_name::<Option<Sns<State<Body>>>>(),
            "core::option::Option<sqs_handler::extract::Sns<sqs_handler::extract::State<sqs_handler::extract::Body>>>"
        );
        assert_eq!(
            extractor_name::<EventBridge<u8>>(),
            "sqs_handler::extract::EventBridge<u8>"
        );
        assert_eq!(extractor_name::<String>(), "alloc::string::String");
        assert!(std::ptr::eq(
            extractor_name::<Json<u8>>(),
            extractor_name::<Json<u8>>()
        ));
    }
}
