//! Sending messages: one, or many auto-chunked into concurrent SendMessageBatch calls, with a
//! report that keeps every success and names every failure.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use serde::Serialize;
use tracing::Instrument as _;
use tracing::field::Empty;

/// SQS's limit on a message and on the sum of a batch's messages.
pub const MAX_BATCH_BYTES: usize = 1_048_576;

/// Why a send could not be attempted at all, or why [`Producer::send`] failed.
///
/// ```
/// use sqs_handler::{Producer, ProducerError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = sqs_local::LocalSqs::start().await?;
/// # let producer = Producer::new(&server.sdk_config());
/// match producer.send_json("no-such-queue", &"hello").await {
///     Err(ProducerError::QueueNotFound { queue }) => assert_eq!(queue, "no-such-queue"),
///     other => panic!("unexpected: {other:?}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProducerError {
    /// The queue does not exist.
    #[error("queue {queue:?} does not exist: create it, or fix the name")]
    QueueNotFound {
        /// The queue name.
        queue: String,
    },
    /// The message could not be encoded as JSON.
    #[error("cannot encode the message for queue {queue:?} as JSON: {source}")]
    Encode {
        /// The queue name.
        queue: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// A message SQS would refuse (too large, bad attribute).
    #[error("message for queue {queue:?} refused before sending: {reason}")]
    InvalidMessage {
        /// The queue name.
        queue: String,
        /// Why.
        reason: String,
    },
    /// The SQS call failed. The source is the SDK's error
    /// (`aws_sdk_sqs::error::SdkError<..>`: match it to tell throttling from a missing
    /// permission), or, for a batch entry SQS refused, a [`FailedMessage`].
    #[error("{operation} to queue {queue:?} failed: {}", crate::error::chain(&**source))]
    Sqs {
        /// The operation.
        operation: &'static str,
        /// The queue name.
        queue: String,
        /// What failed.
        #[source]
        source: crate::BoxError,
    },
}

/// A message to send.
///
/// ```
/// use std::time::Duration;
/// use sqs_handler::OutgoingMessage;
///
/// let m = OutgoingMessage::new("hello")
///     .group_id("customer-7")
///     .deduplication_id("order-42")
///     .string_attribute("source", "api");
/// let delayed = OutgoingMessage::new("later").delay(Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutgoingMessage {
    body: String,
    group_id: Option<String>,
    deduplication_id: Option<String>,
    delay: Option<Duration>,
    attributes: HashMap<String, MessageAttributeValue>,
    /// Attributes that could not be built: reported when the message is sent.
    invalid: Vec<String>,
}

impl OutgoingMessage {
    /// A message with this body.
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    /// A message whose body is `value` as JSON.
    ///
    /// # Errors
    /// When `value` cannot be serialized.
    ///
    /// ```
    /// #[derive(serde::Serialize)]
    /// struct Job {
    ///     id: u32,
    /// }
    ///
    /// let message = sqs_handler::OutgoingMessage::json(&Job { id: 7 }).unwrap();
    /// assert_eq!(message.body(), r#"{"id":7}"#);
    /// ```
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(Self::new)
    }

    /// The FIFO message group.
    pub fn group_id(mut self, id: impl Into<String>) -> Self {
        self.group_id = Some(id.into());
        self
    }

    /// The FIFO deduplication id.
    pub fn deduplication_id(mut self, id: impl Into<String>) -> Self {
        self.deduplication_id = Some(id.into());
        self
    }

    /// Delivery delay in whole seconds, up to 15 minutes (standard queues). Another value
    /// fails the message when it is sent, naming the field; it is never rounded or clamped.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// A message attribute.
    ///
    /// ```
    /// use sqs_handler::OutgoingMessage;
    /// use sqs_handler::aws_sdk_sqs::types::MessageAttributeValue;
    ///
    /// let retries = MessageAttributeValue::builder()
    ///     .data_type("Number")
    ///     .string_value("3")
    ///     .build()
    ///     .unwrap();
    /// let message = OutgoingMessage::new("payload").attribute("retries", retries);
    /// ```
    pub fn attribute(mut self, name: impl Into<String>, value: MessageAttributeValue) -> Self {
        self.attributes.insert(name.into(), value);
        self
    }

    /// A String message attribute.
    pub fn string_attribute(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build();
        let name = name.into();
        match value {
            Ok(v) => self.attribute(name, v),
            Err(e) => {
                let mut message = self;
                message.invalid.push(format!("attribute {name:?}: {e}"));
                message
            }
        }
    }

    /// The message's type, in the [`MESSAGE_TYPE_ATTRIBUTE`](crate::MESSAGE_TYPE_ATTRIBUTE)
    /// (`MessageType`) string attribute: what routes it to the handler declared with
    /// `#[sqs_message_handler("queue", message_type = "...")]` under the default
    /// [`MessageTypeKey`](crate::MessageTypeKey). It counts against SQS's 10 attributes.
    ///
    /// ```
    /// use sqs_handler::OutgoingMessage;
    ///
    /// let message = OutgoingMessage::new(r#"{"order":42}"#).message_type("OrderPlaced");
    /// assert_eq!(message.size(), 12 + "MessageType".len() + "String".len() + "OrderPlaced".len());
    /// ```
    pub fn message_type(self, message_type: impl Into<String>) -> Self {
        self.string_attribute(crate::MESSAGE_TYPE_ATTRIBUTE, message_type)
    }

    /// Checks what SQS would refuse, naming the field: a delay over 900 s or not in whole
    /// seconds, more than 10 attributes, an attribute name SQS does not accept, an attribute
    /// without a value.
    fn validate(&self) -> Result<(), String> {
        if let Some(e) = self.invalid.first() {
            return Err(e.clone());
        }
        if let Some(d) = self
            .delay
            .filter(|d| *d > Duration::from_secs(900) || d.subsec_nanos() != 0)
        {
            return Err(format!(
                "delay is {d:?}; SQS takes whole seconds from 0 to 900"
            ));
        }
        if self.attributes.len() > 10 {
            return Err(format!(
                "{} message attributes; SQS takes at most 10",
                self.attributes.len()
            ));
        }
        let mut names: Vec<&String> = self.attributes.keys().collect();
        names.sort();
        for name in names {
            attribute_name_problem(name)
                .map_or(Ok(()), |why| Err(format!("attribute {name:?}: {why}")))?;
            let v = &self.attributes[name];
            let empty = v.string_value().is_none_or(str::is_empty)
                && v.binary_value().is_none_or(|b| b.as_ref().is_empty());
            if empty {
                return Err(format!(
                    "attribute {name:?} has no value; SQS refuses empty values"
                ));
            }
        }
        Ok(())
    }

    /// The body.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The size SQS counts: body plus attribute names, types and values.
    ///
    /// ```
    /// use sqs_handler::OutgoingMessage;
    ///
    /// let message = OutgoingMessage::new("hello").string_attribute("lang", "en");
    /// assert_eq!(message.size(), "hello".len() + "lang".len() + "String".len() + "en".len());
    /// ```
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| attribute_size(k, v))
                .sum::<usize>()
    }

    fn entry(&self, id: usize) -> Result<SendMessageBatchRequestEntry, String> {
        SendMessageBatchRequestEntry::builder()
            .id(id.to_string())
            .message_body(&self.body)
            .set_message_group_id(self.group_id.clone())
            .set_message_deduplication_id(self.deduplication_id.clone())
            // Validated: whole seconds up to 900.
            .set_delay_seconds(self.delay.map(|d| d.as_secs() as i32))
            .set_message_attributes((!self.attributes.is_empty()).then(|| self.attributes.clone()))
            .build()
            .map_err(|e| e.to_string())
    }
}

/// A message that was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SentMessage {
    /// Its position in the input.
    pub index: usize,
    /// The id SQS assigned.
    pub message_id: String,
    /// The FIFO sequence number.
    pub sequence_number: Option<String>,
}

/// A message that was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
#[non_exhaustive]
pub struct FailedMessage {
    /// Its position in the input.
    pub index: usize,
    /// The error code (`InvalidParameterValue`, `TransportError`, ...).
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// True when the message itself is at fault (resending it unchanged fails again).
    pub sender_fault: bool,
}

/// The result of [`Producer::send_batch`]: every input message is in exactly one list.
///
/// ```no_run
/// use sqs_handler::{OutgoingMessage, Producer};
///
/// # async fn send(producer: &Producer, lines: Vec<String>) -> Result<(), sqs_handler::ProducerError> {
/// let report = producer
///     .send_batch("lines", lines.iter().map(|l| OutgoingMessage::new(l.as_str())))
///     .await?;
/// // Resend what failed for a reason other than the message itself.
/// let retry: Vec<OutgoingMessage> = report
///     .failed
///     .iter()
///     .filter(|f| !f.sender_fault)
///     .map(|f| OutgoingMessage::new(lines[f.index].as_str()))
///     .collect();
/// producer.send_batch("lines", retry).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchReport {
    /// The messages sent, by input position.
    pub sent: Vec<SentMessage>,
    /// The messages not sent, by input position.
    pub failed: Vec<FailedMessage>,
}

impl BatchReport {
    /// True when every message was sent.
    ///
    /// ```
    /// assert!(sqs_handler::BatchReport::default().is_complete());
    /// ```
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Sends messages to queues by name (URLs are resolved once and cached). Cheap to clone:
/// give it to handlers in their state.
///
/// ```
/// use sqs_handler::{OutgoingMessage, Producer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = sqs_local::LocalSqs::builder().queue("jobs").start().await?;
/// # let config = server.sdk_config();
/// // let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
/// let producer = Producer::new(&config);
/// producer.send_json("jobs", &serde_json::json!({ "id": 1 })).await?;
/// let report = producer
///     .send_batch("jobs", (0..25).map(|i| OutgoingMessage::new(format!("job {i}"))))
///     .await?;
/// assert!(report.is_complete());
/// assert_eq!(report.sent.len(), 25); // in 3 SendMessageBatch calls
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Producer {
    client: Client,
    urls: Arc<Mutex<HashMap<String, String>>>,
}

impl Producer {
    /// A producer with a client from an AWS SDK configuration.
    ///
    /// ```no_run
    /// # async fn make() {
    /// let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    /// let producer = sqs_handler::Producer::new(&config);
    /// # }
    /// ```
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self::with_client(Client::new(config))
    }

    /// A producer with an existing client (shared with the rest of the application, or
    /// configured by hand).
    ///
    /// ```
    /// # fn make(client: sqs_handler::aws_sdk_sqs::Client) {
    /// let producer = sqs_handler::Producer::with_client(client);
    /// # }
    /// ```
    pub fn with_client(client: Client) -> Self {
        Self {
            client,
            urls: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The queue's URL (cached after the first lookup).
    ///
    /// # Errors
    /// When the queue does not exist or the lookup fails.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = sqs_local::LocalSqs::builder().queue("jobs").start().await?;
    /// # let producer = sqs_handler::Producer::new(&server.sdk_config());
    /// let url = producer.queue_url("jobs").await?;
    /// assert!(url.ends_with("/jobs"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn queue_url(&self, queue: &str) -> Result<String, ProducerError> {
        if let Some(url) = self
            .urls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(queue)
        {
            return Ok(url.clone());
        }
        let out = self
            .client
            .get_queue_url()
            .queue_name(queue)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_queue_does_not_exist())
                {
                    ProducerError::QueueNotFound {
                        queue: queue.to_owned(),
                    }
                } else {
                    ProducerError::Sqs {
                        operation: "GetQueueUrl",
                        queue: queue.to_owned(),
                        source: e.into(),
                    }
                }
            })?;
        let url = out.queue_url.unwrap_or_default();
        self.urls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(queue.to_owned(), url.clone());
        Ok(url)
    }

    /// Sends one message; returns its message id.
    ///
    /// # Errors
    /// When the queue does not exist or SQS refuses the message.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sqs_handler::OutgoingMessage;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = sqs_local::LocalSqs::builder().queue("emails").queue("orders.fifo").start().await?;
    /// # let producer = sqs_handler::Producer::new(&server.sdk_config());
    /// let id = producer
    ///     .send("emails", OutgoingMessage::new("welcome ada").delay(Duration::from_secs(1)))
    ///     .await?;
    ///
    /// // A FIFO queue needs a group id, and a deduplication id unless the queue derives it.
    /// producer
    ///     .send(
    ///         "orders.fifo",
    ///         OutgoingMessage::new("order 42 paid").group_id("customer-7").deduplication_id("42-paid"),
    ///     )
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send(
        &self,
        queue: &str,
        message: OutgoingMessage,
    ) -> Result<String, ProducerError> {
        let report = self.send_batch(queue, [message]).await?;
        match (
            report.sent.into_iter().next(),
            report.failed.into_iter().next(),
        ) {
            (Some(sent), _) => Ok(sent.message_id),
            (None, Some(f)) if f.sender_fault => Err(ProducerError::InvalidMessage {
                queue: queue.to_owned(),
                reason: format!("{}: {}", f.code, f.message),
            }),
            (None, Some(f)) => Err(ProducerError::Sqs {
                operation: "SendMessageBatch",
                queue: queue.to_owned(),
                source: f.into(),
            }),
            (None, None) => Err(ProducerError::Sqs {
                operation: "SendMessageBatch",
                queue: queue.to_owned(),
                source: "SQS answered without a result for the message".into(),
            }),
        }
    }

    /// Sends `value` as a JSON message; returns its message id.
    ///
    /// # Errors
    /// As [`Producer::send`], and when `value` cannot be serialized.
    ///
    /// ```no_run
    /// #[derive(serde::Serialize)]
    /// struct Job {
    ///     id: u64,
    /// }
    ///
    /// # async fn send(producer: &sqs_handler::Producer) -> Result<(), sqs_handler::ProducerError> {
    /// producer.send_json("jobs", &Job { id: 42 }).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send_json<T: Serialize + ?Sized>(
        &self,
        queue: &str,
        value: &T,
    ) -> Result<String, ProducerError> {
        let message = OutgoingMessage::json(value).map_err(|source| ProducerError::Encode {
            queue: queue.to_owned(),
            source,
        })?;
        self.send(queue, message).await
    }

    /// Sends `value` as a JSON message of type `message_type` (see
    /// [`OutgoingMessage::message_type`]), for the queue's handler declared with that
    /// `message_type`; returns its message id.
    ///
    /// # Errors
    /// As [`Producer::send_json`].
    ///
    /// ```
    /// use sqs_handler::{Json, SqsConsumer};
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct OrderPlaced {
    ///     order: u64,
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = sqs_local::LocalSqs::builder().queue("orders").start().await?;
    /// let producer = sqs_handler::Producer::new(&server.sdk_config());
    /// producer.send_typed("orders", "OrderPlaced", &OrderPlaced { order: 42 }).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send_typed<T: Serialize + ?Sized>(
        &self,
        queue: &str,
        message_type: &str,
        value: &T,
    ) -> Result<String, ProducerError> {
        let message = OutgoingMessage::json(value)
            .map_err(|source| ProducerError::Encode {
                queue: queue.to_owned(),
                source,
            })?
            .message_type(message_type);
        self.send(queue, message).await
    }

    /// Sends many messages in SendMessageBatch calls of at most 10 entries and 1 MiB, sent
    /// concurrently (one after another to a FIFO queue, so that message groups keep their
    /// order). The report lists each message as sent or failed, by input position.
    ///
    /// # Errors
    /// Only when the queue's URL cannot be resolved; per-message failures are in the report.
    ///
    /// ```
    /// use sqs_handler::OutgoingMessage;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = sqs_local::LocalSqs::builder().queue("jobs").start().await?;
    /// # let producer = sqs_handler::Producer::new(&server.sdk_config());
    /// let too_big = "x".repeat(sqs_handler::MAX_BATCH_BYTES + 1);
    /// let report = producer
    ///     .send_batch("jobs", [OutgoingMessage::new("a"), OutgoingMessage::new(too_big), OutgoingMessage::new("c")])
    ///     .await?;
    /// let sent: Vec<usize> = report.sent.iter().map(|s| s.index).collect();
    /// assert_eq!(sent, [0, 2]);
    /// assert_eq!(report.failed[0].index, 1);
    /// assert_eq!(report.failed[0].code, "MessageTooLong");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send_batch(
        &self,
        queue: &str,
        messages: impl IntoIterator<Item = OutgoingMessage>,
    ) -> Result<BatchReport, ProducerError> {
        let messages: Vec<OutgoingMessage> = messages.into_iter().collect();
        let span = send_span(queue, messages.len());
        let result = self
            .send_batch_in_span(queue, messages)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(report) => match report.failed.first() {
                Some(f) => record_error(&span, &f.code),
                None if report.sent.len() == 1 => {
                    span.record("messaging.message.id", report.sent[0].message_id.as_str());
                }
                None => {}
            },
            Err(_) => record_error(&span, "queue_url"),
        }
        result
    }

    async fn send_batch_in_span(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<BatchReport, ProducerError> {
        let url = self.queue_url(queue).await?;
        tracing::Span::current().record("aws.sqs.queue.url", url.as_str());
        let mut report = BatchReport::default();
        let mut chunks: Vec<Vec<(usize, OutgoingMessage)>> = Vec::new();
        let mut current: Vec<(usize, OutgoingMessage)> = Vec::new();
        let mut bytes = 0;
        for (index, m) in messages.into_iter().enumerate() {
            #[cfg(feature = "opentelemetry")]
            let m = {
                let mut m = m;
                let room = MAX_BATCH_BYTES.saturating_sub(m.size());
                crate::telemetry::otel::inject(&mut m.attributes, room);
                m
            };
            if let Err(why) = m.validate() {
                report.failed.push(FailedMessage {
                    index,
                    code: "InvalidParameterValue".to_owned(),
                    message: format!("message {index}: {why}"),
                    sender_fault: true,
                });
                continue;
            }
            let size = m.size();
            if size > MAX_BATCH_BYTES {
                report.failed.push(FailedMessage {
                    index,
                    code: "MessageTooLong".to_owned(),
                    message: format!(
                        "message is {size} bytes; SQS takes at most {MAX_BATCH_BYTES}"
                    ),
                    sender_fault: true,
                });
                continue;
            }
            if current.len() == 10 || bytes + size > MAX_BATCH_BYTES {
                chunks.push(std::mem::take(&mut current));
                bytes = 0;
            }
            bytes += size;
            current.push((index, m));
        }
        if !current.is_empty() {
            chunks.push(current);
        }
        let results = if url.ends_with(".fifo") {
            // A FIFO queue orders messages as they arrive: concurrent chunks could arrive out
            // of order and reorder a message group, so they go one after another.
            let mut results = Vec::with_capacity(chunks.len());
            for chunk in chunks {
                results.push(self.send_chunk(&url, chunk).await);
            }
            results
        } else {
            let sends = chunks.into_iter().map(|chunk| self.send_chunk(&url, chunk));
            futures_util::future::join_all(sends).await
        };
        for (sent, failed) in results {
            report.sent.extend(sent);
            report.failed.extend(failed);
        }
        report.sent.sort_by_key(|s| s.index);
        report.failed.sort_by_key(|f| f.index);
        Ok(report)
    }

    async fn send_chunk(
        &self,
        url: &str,
        chunk: Vec<(usize, OutgoingMessage)>,
    ) -> (Vec<SentMessage>, Vec<FailedMessage>) {
        let mut failed = Vec::new();
        let mut entries = Vec::with_capacity(chunk.len());
        let mut built = Vec::with_capacity(chunk.len());
        for (index, m) in &chunk {
            match m.entry(*index) {
                Ok(e) => {
                    entries.push(e);
                    built.push(*index);
                }
                Err(e) => failed.push(FailedMessage {
                    index: *index,
                    code: "InvalidMessage".to_owned(),
                    message: e,
                    sender_fault: true,
                }),
            }
        }
        if entries.is_empty() {
            return (Vec::new(), failed);
        }
        let result = self
            .client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await;
        match result {
            Ok(out) => {
                let sent = out
                    .successful()
                    .iter()
                    .filter_map(|s| {
                        Some(SentMessage {
                            index: s.id().parse().ok()?,
                            message_id: s.message_id().to_owned(),
                            sequence_number: s.sequence_number().map(str::to_owned),
                        })
                    })
                    .collect();
                failed.extend(out.failed().iter().filter_map(|f| {
                    Some(FailedMessage {
                        index: f.id().parse().ok()?,
                        code: f.code().to_owned(),
                        message: f.message().unwrap_or("").to_owned(),
                        sender_fault: f.sender_fault(),
                    })
                }));
                (sent, failed)
            }
            Err(e) => {
                let text = aws_sdk_sqs::error::DisplayErrorContext(&e).to_string();
                let code = e
                    .as_service_error()
                    .and_then(|s| aws_sdk_sqs::error::ProvideErrorMetadata::code(s))
                    .unwrap_or("TransportError")
                    .to_owned();
                let sender_fault = e.as_service_error().is_some();
                failed.extend(built.iter().map(|index| FailedMessage {
                    index: *index,
                    code: code.clone(),
                    message: text.clone(),
                    sender_fault,
                }));
                (Vec::new(), failed)
            }
        }
    }
}

/// Why SQS would refuse `name` as a message attribute name, if it would: up to 256 characters
/// of `A-Za-z0-9_-.`, no leading, trailing or doubled `.`, and no `AWS.`/`Amazon.` prefix.
fn attribute_name_problem(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if name.is_empty() || name.len() > 256 {
        Some("names are 1 to 256 characters")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        Some("names take only A-Z, a-z, 0-9, '_', '-' and '.'")
    } else if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        Some("a name may not start or end with '.', nor have two in a row")
    } else if lower.starts_with("aws.") || lower.starts_with("amazon.") {
        Some("names starting with AWS. or Amazon. are reserved")
    } else {
        None
    }
}

/// The span of a send (kind producer: with the `opentelemetry` feature its context is what the
/// messages carry), named `send {queue}` by the OpenTelemetry messaging conventions.
/// What SQS counts of one message attribute towards the message's size: name, type and value.
pub(crate) fn attribute_size(name: &str, value: &MessageAttributeValue) -> usize {
    name.len()
        + value.data_type().len()
        + value.string_value().map_or(0, str::len)
        + value.binary_value().map_or(0, |b| b.as_ref().len())
}

fn send_span(queue: &str, count: usize) -> tracing::Span {
    let name = format!("send {queue}");
    let span = tracing::info_span!(
        "sqs_send",
        otel.name = name.as_str(),
        otel.kind = "producer",
        otel.status_code = Empty,
        messaging.system = "aws_sqs",
        "messaging.operation.type" = "send",
        messaging.operation.name = "send",
        messaging.destination.name = queue,
        messaging.batch.message_count = Empty,
        messaging.message.id = Empty,
        aws.sqs.queue.url = Empty,
        "error.type" = Empty,
    );
    if count > 1 {
        span.record("messaging.batch.message_count", count);
    }
    span
}

fn record_error(span: &tracing::Span, error_type: &str) {
    span.record("error.type", error_type);
    span.record("otel.status_code", "error");
}
