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
//! deleted (the retry policy applies, as for a handler error; see
//! [`QueueOptions::non_retryable_if`](crate::QueueOptions::non_retryable_if) to drop messages
//! that cannot be decoded).
//!
//! Arguments are extracted in order, before the handler runs; the first that fails stops the
//! others. A handler takes up to 8 of them, in any order.
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
//! extractor](FromMessage#implementing-an-extractor)).

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
/// the request type of the handler's
/// [`tower::Service`](https://docs.rs/tower/0.5/tower/trait.Service.html), so a layer reads the
/// message from it, and a custom extractor builds its value from it.
///
/// ```
/// use sqs_handler::{HandlerService, MessageContext};
///
/// // A layer that logs each message before the handler runs.
/// let log = tower::layer::layer_fn(|inner: HandlerService| {
///     tower::util::MapRequest::new(inner, |ctx: MessageContext| {
///         println!("{}: message {}", ctx.queue(), ctx.message().message_id());
///         ctx
///     })
/// });
/// ```
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
///
/// # Implementing an extractor
///
/// Implement `from_message` to read what the handler needs from the [`MessageContext`]; return
/// an [`ExtractError`] when the message does not have it. The message then counts as failed,
/// `processing_error` fires, and the handler does not run.
///
/// ```
/// use sqs_handler::extract::FromMessage;
/// use sqs_handler::{Body, ExtractError, MessageContext, sqs_message_handler};
///
/// /// The tenant a message belongs to, from its `tenant` message attribute.
/// struct Tenant(String);
///
/// impl FromMessage for Tenant {
///     fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
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
/// An extractor that needs the consumer's state takes it through [`State<T>`] in the handler
/// instead: state is checked when the consumer is built only for `State<T>` arguments.
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

/// A value a batch handler can take as an argument: [`Batch`], [`QueueName`], [`State<T>`],
/// or your own.
///
/// ```
/// use sqs_handler::extract::{BatchContext, FromBatch};
/// use sqs_handler::{ExtractError, sqs_message_handler};
///
/// /// The bodies of a batch, in order.
/// struct Bodies(Vec<String>);
///
/// impl FromBatch for Bodies {
///     fn from_batch(ctx: &BatchContext) -> Result<Self, ExtractError> {
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
    fn from_batch(ctx: &BatchContext) -> Result<Self, ExtractError>;

    /// The state type this extractor needs, if any.
    #[doc(hidden)]
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

/// The body decoded as JSON into `T`.
///
/// A body that does not decode is an extraction failure: the handler does not run,
/// `processing_error` fires with [`FailureKind::Extract`](crate::FailureKind::Extract), and the
/// retry policy applies.
///
/// ```
/// use sqs_handler::{Json, sqs_message_handler};
///
/// #[derive(serde::Deserialize)]
/// struct Job {
///     id: String,
///     #[serde(default)]
///     priority: u8,
/// }
///
/// #[sqs_message_handler("jobs")]
/// async fn handle(Json(job): Json<Job>) {
///     println!("job {} at priority {}", job.id, job.priority);
/// }
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
///
/// ```
/// use sqs_handler::{Body, sqs_message_handler};
///
/// #[sqs_message_handler("log-lines")]
/// async fn print_line(Body(line): Body) {
///     println!("{line}");
/// }
/// ```
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

/// The message attributes (all of them are received).
///
/// ```
/// use sqs_handler::{MessageAttributes, sqs_message_handler};
///
/// #[sqs_message_handler("events")]
/// async fn route(attributes: MessageAttributes) {
///     match attributes.string("type") {
///         Some("created") => println!("created"),
///         other => println!("ignored {other:?}"),
///     }
/// }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageAttributes(pub HashMap<String, MessageAttributeValue>);

impl MessageAttributes {
    /// The string value of an attribute (String or Number).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use sqs_handler::MessageAttributes;
    /// use sqs_handler::aws_sdk_sqs::types::MessageAttributeValue;
    ///
    /// let value = MessageAttributeValue::builder()
    ///     .data_type("String")
    ///     .string_value("created")
    ///     .build()
    ///     .unwrap();
    /// let attributes = MessageAttributes(HashMap::from([("type".to_owned(), value)]));
    /// assert_eq!(attributes.string("type"), Some("created"));
    /// assert_eq!(attributes.string("missing"), None);
    /// ```
    pub fn string(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.string_value())
    }
}

impl FromMessage for MessageAttributes {
    fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(MessageAttributes(ctx.message.message_attributes().clone()))
    }
}

/// How many times the message has been received, this time included (SQS's
/// `ApproximateReceiveCount`: approximate, as SQS says).
///
/// ```
/// use sqs_handler::{Body, ReceiveCount, sqs_message_handler};
///
/// #[sqs_message_handler("webhooks")]
/// async fn deliver(Body(payload): Body, ReceiveCount(n): ReceiveCount) -> Result<(), String> {
///     if n > 1 {
///         println!("retry {}: {payload}", n - 1);
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveCount(pub u32);

impl FromMessage for ReceiveCount {
    fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(ReceiveCount(ctx.message.receive_count()))
    }
}

/// When the message was sent. Extraction fails if the message has no `SentTimestamp`
/// attribute (it is received by default).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use sqs_handler::{SentTimestamp, sqs_message_handler};
///
/// #[sqs_message_handler("quotes")]
/// async fn price(SentTimestamp(sent): SentTimestamp) {
///     let age = SystemTime::now().duration_since(sent).unwrap_or_default();
///     if age > Duration::from_secs(60) {
///         println!("stale quote, {age:?} old: skipped");
///     }
/// }
/// ```
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
///
/// ```
/// use sqs_handler::{Body, MessageGroupId, sqs_message_handler};
///
/// #[sqs_message_handler("orders.fifo")]
/// async fn apply(Body(change): Body, MessageGroupId(group): MessageGroupId) {
///     println!("order {}: {change}", group.as_deref().unwrap_or("-"));
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageGroupId(pub Option<String>);

impl FromMessage for MessageGroupId {
    fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(MessageGroupId(
            ctx.message.message_group_id().map(str::to_owned),
        ))
    }
}

/// The message id, unique per message; a deduplication key for idempotent handlers.
///
/// ```
/// use sqs_handler::{MessageId, sqs_message_handler};
///
/// #[sqs_message_handler("emails")]
/// async fn send_once(MessageId(id): MessageId) {
///     println!("sending email for message {id}, unless it was sent already");
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageId(pub String);

impl FromMessage for MessageId {
    fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(MessageId(ctx.message.message_id().to_owned()))
    }
}

/// The messages of one receive, for a batch handler (up to 10).
///
/// ```
/// use sqs_handler::{Batch, sqs_message_handler};
///
/// #[sqs_message_handler("clicks", batch)]
/// async fn count_clicks(Batch(messages): Batch) {
///     println!("{} clicks", messages.len());
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Batch(pub Vec<SqsMessage>);

impl FromBatch for Batch {
    fn from_batch(ctx: &BatchContext) -> Result<Self, ExtractError> {
        Ok(Batch(ctx.messages.clone()))
    }
}

/// The name of the queue the message came from, as the consumer knows it (the name in the
/// attribute or given to the builder); for handlers and hooks shared by several queues.
///
/// ```
/// use sqs_handler::{Body, QueueName, SqsConsumer};
///
/// async fn echo(QueueName(queue): QueueName, Body(body): Body) {
///     println!("{queue}: {body}");
/// }
///
/// # fn register(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
/// SqsConsumer::builder(config)
///     .handler("left", echo)
///     .handler("right", echo)
/// # }
/// ```
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
///
/// There is one value per type, and each `State<T>` a handler or hook takes is checked when
/// the consumer is built: a missing one is [`BuildError::MissingState`](crate::BuildError::MissingState),
/// naming the handler and the type. Wrap what must be shared rather than copied in an `Arc`
/// (most clients already are).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use sqs_handler::{Body, Producer, SqsConsumer, State, sqs_message_handler};
///
/// #[derive(Clone)]
/// struct AppState {
///     producer: Producer,        // cheap to clone
///     seen: Arc<AtomicU64>,      // shared by every call
/// }
///
/// #[sqs_message_handler("inbox")]
/// async fn forward(Body(body): Body, State(app): State<AppState>) -> Result<(), sqs_handler::ProducerError> {
///     app.seen.fetch_add(1, Ordering::Relaxed);
///     app.producer.send("outbox", sqs_handler::OutgoingMessage::new(body)).await?;
///     Ok(())
/// }
///
/// # fn register(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
/// SqsConsumer::builder(config).state(AppState {
///     producer: Producer::new(config),
///     seen: Arc::default(),
/// })
/// # }
/// ```
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
