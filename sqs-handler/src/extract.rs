//! Extractors: the arguments a handler or hook takes, each built from the message, the batch or
//! the consumer's state.
//!
//! | extractor | message handler | batch handler | hook |
//! |---|---|---|---|
//! | [`Json<T>`] | body decoded as JSON | | |
//! | [`Body`] | raw body | | |
//! | [`SqsMessage`] | the whole message | | |
//! | [`MessageAttributes`] | message attributes | | |
//! | [`ReceiveCount`], [`SentTimestamp`], [`MessageGroupId`], [`MessageId`] | system attributes | | |
//! | [`Batch`] | | the received messages | |
//! | [`QueueName`] | yes | yes | yes |
//! | [`State<T>`] | yes | yes | yes |
//!
//! A failed extraction is a processing error: `processing_error` fires and the message is not
//! deleted.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use aws_sdk_sqs::types::MessageAttributeValue;
use serde::de::DeserializeOwned;

use crate::error::ExtractError;
use crate::message::SqsMessage;
use crate::state::StateMap;

/// What a message handler runs with: the message, its queue and the consumer's state. It is
/// the request type of the handler's [`tower::Service`].
#[derive(Debug, Clone)]
pub struct MessageContext {
    pub(crate) message: SqsMessage,
    pub(crate) queue: Arc<str>,
    pub(crate) state: Arc<StateMap>,
}

impl MessageContext {
    /// The message.
    pub fn message(&self) -> &SqsMessage {
        &self.message
    }

    /// The queue it came from.
    pub fn queue(&self) -> &str {
        &self.queue
    }
}

/// What a batch handler runs with: the messages of one receive, their queue and the state.
#[derive(Debug, Clone)]
pub struct BatchContext {
    pub(crate) messages: Vec<SqsMessage>,
    pub(crate) queue: Arc<str>,
    pub(crate) state: Arc<StateMap>,
}

impl BatchContext {
    /// The messages.
    pub fn messages(&self) -> &[SqsMessage] {
        &self.messages
    }

    /// The queue they came from.
    pub fn queue(&self) -> &str {
        &self.queue
    }
}

/// What a hook runs with: its queue and the consumer's state.
#[derive(Debug, Clone)]
pub struct HookContext {
    pub(crate) queue: Arc<str>,
    pub(crate) state: Arc<StateMap>,
}

/// A state type a handler or hook needs, checked when the consumer is built.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
}

/// A value a message handler can take as an argument.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be extracted from an SQS message",
    label = "not a message extractor",
    note = "message handler arguments are extractors: Json<T>, Body, SqsMessage, MessageAttributes, ReceiveCount, SentTimestamp, MessageGroupId, MessageId, QueueName, State<T>"
)]
pub trait FromMessage: Sized {
    /// Builds the value, or says why it cannot.
    fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError>;

    /// The state type this extractor needs, if any.
    #[doc(hidden)]
    fn requirement() -> Option<Requirement> {
        None
    }
}

/// A value a batch handler can take as an argument.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be extracted from a batch of SQS messages",
    label = "not a batch extractor",
    note = "batch handler arguments are extractors: Batch, QueueName, State<T>"
)]
pub trait FromBatch: Sized {
    /// Builds the value, or says why it cannot.
    fn from_batch(ctx: &BatchContext) -> Result<Self, ExtractError>;

    /// The state type this extractor needs, if any.
    #[doc(hidden)]
    fn requirement() -> Option<Requirement> {
        None
    }
}

/// A value a hook can take after its event.
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

/// The body decoded as JSON into `T`.
///
/// ```
/// use sqs_handler::Json;
/// #[derive(serde::Deserialize)]
/// struct Job { id: String }
/// async fn handle(Json(job): Json<Job>) { let _ = job.id; }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromMessage for Json<T> {
    fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        serde_json::from_str(ctx.message.body())
            .map(Json)
            .map_err(|e| ExtractError::new(std::any::type_name::<Self>(), e))
    }
}

/// The raw body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body(pub String);

impl FromMessage for Body {
    fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(Body(ctx.message.body().to_owned()))
    }
}

impl FromMessage for SqsMessage {
    fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(ctx.message.clone())
    }
}

/// The message attributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageAttributes(pub HashMap<String, MessageAttributeValue>);

impl MessageAttributes {
    /// The string value of an attribute (String or Number).
    pub fn string(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.string_value())
    }
}

impl FromMessage for MessageAttributes {
    fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(MessageAttributes(ctx.message.message_attributes().clone()))
    }
}

/// How many times the message has been received, this time included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveCount(pub u32);

impl FromMessage for ReceiveCount {
    fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(ReceiveCount(ctx.message.receive_count()))
    }
}

/// When the message was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentTimestamp(pub SystemTime);

impl FromMessage for SentTimestamp {
    fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        ctx.message
            .sent_timestamp()
            .map(SentTimestamp)
            .ok_or_else(|| {
                ExtractError::new(
                    "SentTimestamp",
                    "the message has no SentTimestamp attribute",
                )
            })
    }
}

/// The FIFO message group id, `None` on a standard queue without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageGroupId(pub Option<String>);

impl FromMessage for MessageGroupId {
    fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(MessageGroupId(
            ctx.message.message_group_id().map(str::to_owned),
        ))
    }
}

/// The message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageId(pub String);

impl FromMessage for MessageId {
    fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(MessageId(ctx.message.message_id().to_owned()))
    }
}

/// The messages of one receive, for a batch handler.
#[derive(Debug, Clone)]
pub struct Batch(pub Vec<SqsMessage>);

impl FromBatch for Batch {
    fn from_batch(ctx: &BatchContext) -> Result<Self, ExtractError> {
        Ok(Batch(ctx.messages.clone()))
    }
}

/// The name of the queue the message came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueName(pub String);

impl FromMessage for QueueName {
    fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(QueueName(ctx.queue.to_string()))
    }
}

impl FromBatch for QueueName {
    fn from_batch(ctx: &BatchContext) -> Result<Self, ExtractError> {
        Ok(QueueName(ctx.queue.to_string()))
    }
}

impl FromHookContext for QueueName {
    fn from_hook(ctx: &HookContext) -> Result<Self, ExtractError> {
        Ok(QueueName(ctx.queue.to_string()))
    }
}

/// A value given to the consumer with `.state(value)`, cloned for each call. Put a `Clone`
/// struct with your clients and stores in it (what a NestJS service class injects).
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

fn state_of<T: Clone + Send + Sync + 'static>(map: &StateMap) -> Result<State<T>, ExtractError> {
    map.get::<T>().map(State).ok_or_else(|| {
        ExtractError::new(
            std::any::type_name::<State<T>>(),
            format!(
                "no {} was given: call .state(value) on the consumer builder",
                std::any::type_name::<T>()
            ),
        )
    })
}

fn requirement_of<T: 'static>() -> Option<Requirement> {
    Some(Requirement {
        type_id: TypeId::of::<T>(),
        type_name: std::any::type_name::<T>(),
    })
}

impl<T: Clone + Send + Sync + 'static> FromMessage for State<T> {
    fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        state_of(&ctx.state)
    }
    fn requirement() -> Option<Requirement> {
        requirement_of::<T>()
    }
}

impl<T: Clone + Send + Sync + 'static> FromBatch for State<T> {
    fn from_batch(ctx: &BatchContext) -> Result<Self, ExtractError> {
        state_of(&ctx.state)
    }
    fn requirement() -> Option<Requirement> {
        requirement_of::<T>()
    }
}

impl<T: Clone + Send + Sync + 'static> FromHookContext for State<T> {
    fn from_hook(ctx: &HookContext) -> Result<Self, ExtractError> {
        state_of(&ctx.state)
    }
    fn requirement() -> Option<Requirement> {
        requirement_of::<T>()
    }
}
