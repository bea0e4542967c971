//! A received message.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};

/// A message as received from SQS. Cloning is cheap (shared).
///
/// A handler takes it as an argument for the whole message; hooks find it in their event.
/// Tests can make one from the SDK's type:
///
/// ```
/// use sqs_handler::SqsMessage;
/// use sqs_handler::aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
///
/// let message = SqsMessage::new(
///     Message::builder()
///         .message_id("m-1")
///         .body(r#"{"id":7}"#)
///         .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3")
///         .build(),
/// );
/// assert_eq!(message.body(), r#"{"id":7}"#);
/// assert_eq!(message.receive_count(), 3);
/// assert_eq!(message.message_group_id(), None);
/// ```
#[derive(Debug, Clone)]
pub struct SqsMessage {
    inner: Arc<Message>,
}

impl SqsMessage {
    /// Wraps a message from aws-sdk-sqs.
    pub fn new(message: Message) -> Self {
        Self {
            inner: Arc::new(message),
        }
    }

    /// The message id SQS assigned.
    pub fn message_id(&self) -> &str {
        self.inner.message_id().unwrap_or("")
    }

    /// The receipt handle of this receive.
    pub fn receipt_handle(&self) -> &str {
        self.inner.receipt_handle().unwrap_or("")
    }

    /// The body.
    pub fn body(&self) -> &str {
        self.inner.body().unwrap_or("")
    }

    /// A system attribute, when it was received. By default the consumer receives
    /// `ApproximateReceiveCount`, `SentTimestamp`, `MessageGroupId`, `MessageDeduplicationId`,
    /// `SequenceNumber` and `AWSTraceHeader`; ask for others with
    /// [`QueueOptions::system_attributes`](crate::QueueOptions::system_attributes).
    pub fn system_attribute(&self, name: MessageSystemAttributeName) -> Option<&str> {
        self.inner
            .attributes()
            .and_then(|a| a.get(&name))
            .map(String::as_str)
    }

    /// How many times the message has been received, this time included (1 when SQS did not
    /// say).
    ///
    /// ```
    /// use sqs_handler::{SqsMessage, aws_sdk_sqs::types::Message};
    ///
    /// assert_eq!(SqsMessage::new(Message::builder().build()).receive_count(), 1);
    /// ```
    pub fn receive_count(&self) -> u32 {
        self.system_attribute(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
    }

    /// When the message was sent.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use sqs_handler::SqsMessage;
    /// use sqs_handler::aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
    ///
    /// let message = SqsMessage::new(
    ///     Message::builder()
    ///         .attributes(MessageSystemAttributeName::SentTimestamp, "1700000000000")
    ///         .build(),
    /// );
    /// assert_eq!(message.sent_timestamp(), Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
    /// ```
    pub fn sent_timestamp(&self) -> Option<SystemTime> {
        self.system_attribute(MessageSystemAttributeName::SentTimestamp)
            .and_then(|v| v.parse::<u64>().ok())
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
    }

    /// The FIFO message group, when there is one.
    pub fn message_group_id(&self) -> Option<&str> {
        self.system_attribute(MessageSystemAttributeName::MessageGroupId)
    }

    /// The message attributes.
    ///
    /// ```
    /// # fn tenant(message: &sqs_handler::SqsMessage) -> Option<&str> {
    /// message.message_attributes().get("tenant").and_then(|v| v.string_value())
    /// # }
    /// ```
    pub fn message_attributes(&self) -> &HashMap<String, MessageAttributeValue> {
        static EMPTY: std::sync::OnceLock<HashMap<String, MessageAttributeValue>> =
            std::sync::OnceLock::new();
        self.inner
            .message_attributes()
            .unwrap_or_else(|| EMPTY.get_or_init(HashMap::new))
    }

    /// The message as aws-sdk-sqs returned it.
    pub fn as_sdk(&self) -> &Message {
        &self.inner
    }
}
