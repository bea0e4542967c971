//! Several message types on one queue: where a message's type is read, the error for a type
//! with no handler, and the service that routes each message to its type's handler.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use tower::ServiceExt as _;

use crate::error::BoxError;
use crate::extract::MessageContext;
use crate::handler::HandlerService;
use crate::message::SqsMessage;

/// The message attribute that carries a message's type by default: what
/// [`OutgoingMessage::message_type`](crate::OutgoingMessage::message_type) sets and
/// [`MessageTypeKey::default`] reads.
pub const MESSAGE_TYPE_ATTRIBUTE: &str = "MessageType";

/// Where the consumer reads a message's type, to route it to the handler declared with
/// `message_type = "..."` ([`QueueOptions::message_type_key`](crate::QueueOptions::message_type_key)).
///
/// ```
/// use sqs_handler::{MessageTypeKey, QueueOptions};
///
/// // The `MessageType` string attribute (the default; what the Producer sets).
/// let by_attribute = QueueOptions::default().message_type_key(MessageTypeKey::default());
/// // EventBridge events delivered to SQS: their `detail-type`.
/// let eventbridge = QueueOptions::default().message_type_key(MessageTypeKey::json_field("/detail-type"));
/// // SNS notifications (raw delivery off): an SNS message attribute inside the envelope.
/// let sns = QueueOptions::default()
///     .message_type_key(MessageTypeKey::json_field("/MessageAttributes/MessageType/Value"));
/// # let _ = (by_attribute, eventbridge, sns);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageTypeKey {
    /// A String (or String.*) message attribute of this name.
    Attribute(String),
    /// A string in the JSON body at this [JSON pointer](https://www.rfc-editor.org/rfc/rfc6901)
    /// (`/type`, `/detail-type`, `/meta/kind`). A body that is not JSON, or has no string
    /// there, has no type.
    JsonField(String),
}

impl Default for MessageTypeKey {
    /// The [`MESSAGE_TYPE_ATTRIBUTE`] message attribute.
    fn default() -> Self {
        Self::Attribute(MESSAGE_TYPE_ATTRIBUTE.to_owned())
    }
}

impl MessageTypeKey {
    /// The type in a message attribute named `name`.
    pub fn attribute(name: impl Into<String>) -> Self {
        Self::Attribute(name.into())
    }

    /// The type at a JSON pointer into the body, such as `"/type"`.
    pub fn json_field(pointer: impl Into<String>) -> Self {
        Self::JsonField(pointer.into())
    }

    /// The message's type, if it has one.
    pub fn read(&self, message: &SqsMessage) -> Option<String> {
        match self {
            Self::Attribute(name) => message
                .message_attributes()
                .get(name)
                .filter(|v| v.data_type().starts_with("String"))
                .and_then(|v| v.string_value())
                .map(str::to_owned),
            Self::JsonField(pointer) => serde_json::from_str::<serde_json::Value>(message.body())
                .ok()?
                .pointer(pointer)?
                .as_str()
                .map(str::to_owned),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            Self::Attribute(name) if name.trim().is_empty() => {
                Err("message_type_key names an empty attribute".to_owned())
            }
            Self::JsonField(p) if !p.is_empty() && !p.starts_with('/') => Err(format!(
                "message_type_key JSON pointer {p:?} must start with '/', as in \"/type\""
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for MessageTypeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Attribute(name) => write!(f, "message attribute {name:?}"),
            Self::JsonField(pointer) => write!(f, "JSON field {pointer:?} of the body"),
        }
    }
}

/// A message whose type has no handler on its queue, and the queue has no handler without a
/// type to take it: the error of its `processing_error` event, after which the queue's retry
/// policy applies (a rolling deploy may bring the handler; else `maxReceiveCount` moves it to
/// the dead-letter queue).
///
/// ```
/// use sqs_handler::{ProcessingError, UnknownMessageType, sqs_consumer_event_handler};
///
/// #[sqs_consumer_event_handler("events", processing_error)]
/// async fn on_error(event: ProcessingError) {
///     if let Some(unknown) = event.error.downcast_ref::<UnknownMessageType>() {
///         tracing::warn!(message_type = ?unknown.message_type, "no handler for this type");
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnknownMessageType {
    /// The queue.
    pub queue: String,
    /// The message's type, or `None` when it has none.
    pub message_type: Option<String>,
    /// Where the type was read.
    pub key: MessageTypeKey,
    /// The types the queue has handlers for.
    pub known: Vec<String>,
}

impl fmt::Display for UnknownMessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queue = &self.queue;
        match &self.message_type {
            Some(t) => write!(
                f,
                "no handler for message type {t:?} on queue {queue:?} (read from the {})",
                self.key
            )?,
            None => write!(
                f,
                "the message on queue {queue:?} has no type (no {})",
                self.key
            )?,
        }
        write!(
            f,
            "; handled types: {}. Declare #[sqs_message_handler({queue:?}, message_type = \"...\")] \
             for it, or a handler without message_type to take every other message",
            self.known.join(", ")
        )
    }
}

impl std::error::Error for UnknownMessageType {}

/// The handlers of one queue whose handlers declare message types.
pub(crate) struct Router {
    pub(crate) key: MessageTypeKey,
    pub(crate) typed: BTreeMap<String, HandlerService>,
    pub(crate) fallback: Option<HandlerService>,
}

impl Router {
    /// One service that routes each message by its type.
    pub(crate) fn into_service(self) -> HandlerService {
        let router = Arc::new(self);
        HandlerService::new(tower::service_fn(move |ctx: MessageContext| {
            let router = router.clone();
            async move { router.route(&ctx)?.oneshot(ctx).await }
        }))
    }

    fn route(&self, ctx: &MessageContext) -> Result<HandlerService, BoxError> {
        let message_type = self.key.read(&ctx.message);
        let routed = message_type
            .as_deref()
            .and_then(|t| self.typed.get(t))
            .or(self.fallback.as_ref());
        match routed {
            Some(svc) => Ok(svc.clone()),
            None => Err(Box::new(UnknownMessageType {
                queue: ctx.queue.to_string(),
                message_type,
                key: self.key.clone(),
                known: self.typed.keys().cloned().collect(),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::{Message, MessageAttributeValue};

    fn message(body: &str, attr: Option<(&str, &str)>) -> SqsMessage {
        let mut m = Message::builder().body(body);
        if let Some((data_type, value)) = attr {
            let v = MessageAttributeValue::builder()
                .data_type(data_type)
                .string_value(value)
                .build()
                .unwrap();
            m = m.message_attributes("MessageType", v);
        }
        SqsMessage::new(m.build())
    }

    #[test]
    fn reads_the_attribute_or_the_json_field() {
        let key = MessageTypeKey::default();
        assert_eq!(
            key.read(&message("{}", Some(("String", "OrderPlaced")))),
            Some("OrderPlaced".into())
        );
        assert_eq!(
            key.read(&message("{}", Some(("String.custom", "A")))),
            Some("A".into())
        );
        assert_eq!(key.read(&message("{}", Some(("Number", "1")))), None);
        assert_eq!(key.read(&message("{}", None)), None);
        let key = MessageTypeKey::json_field("/detail-type");
        assert_eq!(
            key.read(&message(r#"{"detail-type":"Paid"}"#, None)),
            Some("Paid".into())
        );
        assert_eq!(key.read(&message(r#"{"detail-type":3}"#, None)), None);
        assert_eq!(key.read(&message("not json", None)), None);
    }

    #[test]
    fn the_unknown_type_error_names_the_type_queue_key_and_fix() {
        let e = UnknownMessageType {
            queue: "events".into(),
            message_type: Some("Refunded".into()),
            key: MessageTypeKey::default(),
            known: vec!["OrderPlaced".into(), "Paid".into()],
        };
        assert_eq!(
            e.to_string(),
            "no handler for message type \"Refunded\" on queue \"events\" (read from the message \
             attribute \"MessageType\"); handled types: OrderPlaced, Paid. Declare \
             #[sqs_message_handler(\"events\", message_type = \"...\")] for it, or a handler \
             without message_type to take every other message"
        );
        let none = UnknownMessageType {
            message_type: None,
            ..e
        };
        assert!(
            none.to_string()
                .starts_with("the message on queue \"events\" has no type (no message attribute")
        );
    }

    #[test]
    fn a_bad_key_is_an_invalid_option() {
        assert!(MessageTypeKey::attribute(" ").validate().is_err());
        assert!(MessageTypeKey::json_field("type").validate().is_err());
        assert!(MessageTypeKey::json_field("/type").validate().is_ok());
    }
}
