//! What the message itself carries: its body, attributes and system attributes.

use std::collections::HashMap;
use std::time::SystemTime;

use aws_sdk_sqs::types::MessageAttributeValue;

use super::{FromMessage, MessageContext, OptionalFromMessage};
use crate::error::ExtractError;
use crate::message::SqsMessage;

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
///
/// In [`Sns<Body>`](crate::Sns), it is the SNS notification's `Message` as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body(pub String);

impl FromMessage for Body {
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(Body(ctx.message.body().to_owned()))
    }
}

impl FromMessage for SqsMessage {
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
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
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
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
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(ReceiveCount(ctx.message.receive_count()))
    }
}

/// When the message was sent. Extraction fails if the message has no `SentTimestamp`
/// attribute (it is received by default); `Option<SentTimestamp>` is `None` then.
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
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
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

/// `None` when the message has no `SentTimestamp` attribute.
impl OptionalFromMessage for SentTimestamp {
    async fn from_message_optional(ctx: &MessageContext) -> Result<Option<Self>, ExtractError> {
        Ok(ctx.message.sent_timestamp().map(SentTimestamp))
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
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
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
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(MessageId(ctx.message.message_id().to_owned()))
    }
}
