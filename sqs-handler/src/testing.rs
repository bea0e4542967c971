//! Testing handlers and hooks without a server (feature `test-util`): build a message, run a
//! handler on it as the consumer would, and assert what the consumer would do with the
//! message.
//!
//! The handler runs through the same steps as in the consumer: its extractors, the state given
//! with [`HandlerTest::state`], the queue's [`QueueOptions`] (handler timeout, retry policy,
//! non-retryable errors, acknowledgement mode), panics caught. What it cannot show is what
//! needs SQS (redelivery timing, deletes that fail, the circuit breaker): test that against
//! `sqs-local` (see [Testing](crate::guide::testing)).
//!
//! ```
//! use std::time::Duration;
//! use sqs_handler::testing::{HandlerTest, TestMessage};
//! use sqs_handler::{
//!     BoxError, Json, MessageAction, NonRetryable, QueueOptions, RetryPolicy, State,
//! };
//!
//! #[derive(serde::Deserialize)]
//! struct Order {
//!     sku: String,
//! }
//!
//! #[derive(Clone)]
//! struct Stock {
//!     known: Vec<&'static str>,
//! }
//!
//! async fn reserve(Json(order): Json<Order>, State(stock): State<Stock>) -> Result<(), BoxError> {
//!     if !stock.known.contains(&order.sku.as_str()) {
//!         return Err(NonRetryable::new(format!("unknown sku {}", order.sku)).into());
//!     }
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let test = HandlerTest::new("orders")
//!     .state(Stock { known: vec!["apple"] })
//!     .options(QueueOptions::default().forward_non_retryable_to("orders-dlq"));
//!
//! let ok = test.run(reserve, TestMessage::new(r#"{"sku":"apple"}"#)).await;
//! assert_eq!(ok.action, MessageAction::Deleted);
//! assert!(ok.failure.is_none());
//!
//! let unknown = test.run(reserve, TestMessage::new(r#"{"sku":"kiwi"}"#)).await;
//! assert_eq!(unknown.action, MessageAction::Forwarded("orders-dlq".into()));
//!
//! // A body that does not decode: retried as the policy says, here after 4 s at the 2nd receive.
//! let test = test.options(QueueOptions::default().retry(RetryPolicy::Fixed(Duration::from_secs(4))));
//! let bad = test.run(reserve, TestMessage::new("not json").receive_count(2)).await;
//! assert_eq!(bad.action, MessageAction::Released(Duration::from_secs(4)));
//! assert!(bad.failure.unwrap().to_string().contains("Json"));
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};

use crate::consumer::worker::{Outcome, guarded};
use crate::consumer::{AckOp, Acks};
use crate::error::{BoxError, ExtractError, HandlerPanicked};
use crate::events::{EventType, FailureKind, Hook, MessageAction};
use crate::extract::{AckHandle, HookContext, MessageContext};
use crate::handler::{Handler, message_service};
use crate::message::SqsMessage;
use crate::options::{AckMode, QueueOptions};
use crate::state::StateMap;

/// A message to run a handler on: a body, attributes, and the system attributes the
/// extractors read (receive count, group id, message id).
///
/// ```
/// use sqs_handler::testing::TestMessage;
///
/// let message = TestMessage::new("hello")
///     .string_attribute("lang", "en")
///     .receive_count(3)
///     .group_id("customer-7")
///     .into_message();
/// assert_eq!(message.receive_count(), 3);
/// assert_eq!(message.message_group_id(), Some("customer-7"));
/// ```
#[derive(Debug, Clone)]
pub struct TestMessage {
    message: aws_sdk_sqs::types::builders::MessageBuilder,
    receive_count: u32,
}

impl TestMessage {
    /// A message with this body, received once, with message id `test-message`.
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            message: Message::builder()
                .body(body)
                .message_id("test-message")
                .receipt_handle("test-receipt-handle"),
            receive_count: 1,
        }
    }

    /// A message whose body is `value` as JSON.
    ///
    /// # Errors
    /// When `value` cannot be serialized.
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(Self::new)
    }

    /// A message attribute.
    pub fn attribute(mut self, name: impl Into<String>, value: MessageAttributeValue) -> Self {
        self.message = self.message.message_attributes(name, value);
        self
    }

    /// A String message attribute.
    pub fn string_attribute(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build();
        match value {
            Ok(value) => self.attribute(name, value),
            // Unreachable: the data type is set. Keep the message as it was rather than panic.
            Err(_) => self,
        }
    }

    /// How many times it has been received, this time included (1 by default).
    pub fn receive_count(mut self, n: u32) -> Self {
        self.receive_count = n;
        self
    }

    /// The FIFO message group.
    pub fn group_id(mut self, group: impl Into<String>) -> Self {
        self.message = self
            .message
            .attributes(MessageSystemAttributeName::MessageGroupId, group);
        self
    }

    /// The message id.
    pub fn message_id(mut self, id: impl Into<String>) -> Self {
        self.message = self.message.message_id(id);
        self
    }

    /// The message as extractors and hooks see it.
    pub fn into_message(self) -> SqsMessage {
        let message = self.message.attributes(
            MessageSystemAttributeName::ApproximateReceiveCount,
            self.receive_count.to_string(),
        );
        SqsMessage::new(message.build())
    }
}

/// Why a handler failed in a [`HandlerTest`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TestFailure {
    /// The handler returned this error, panicked ([`HandlerPanicked`]), or an extractor failed
    /// ([`ExtractError`]); the consumer fires `processing_error`.
    Error {
        /// Which of the three.
        kind: FailureKind,
        /// The error.
        error: Arc<BoxError>,
    },
    /// The handler ran past the handler timeout and was cancelled; the consumer fires
    /// `timeout_error`.
    TimedOut(Duration),
}

impl fmt::Display for TestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestFailure::Error { kind, error } => write!(f, "{kind:?}: {error}"),
            TestFailure::TimedOut(t) => write!(f, "timed out after {t:?}"),
        }
    }
}

/// What the consumer would do with a message after its handler ran.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TestOutcome {
    /// What happens to the message: `Deleted` on success (`LeftForRedelivery` in
    /// [`AckMode::Manual`]), else what the failure's event would report.
    pub action: MessageAction,
    /// The failure, when the handler did not succeed.
    pub failure: Option<TestFailure>,
    /// What the handler did itself through its [`Acknowledgement`](crate::Acknowledgement):
    /// `delete`, or `visibility N s` for a release or an extension, in order.
    pub acknowledgements: Vec<String>,
}

/// Runs handlers and hooks as the consumer of one queue would, without a server.
#[derive(Debug, Clone)]
pub struct HandlerTest {
    queue: Arc<str>,
    state: StateMap,
    options: QueueOptions,
}

impl HandlerTest {
    /// A test for handlers of `queue` (what `QueueName` extracts), with default options.
    pub fn new(queue: impl Into<String>) -> Self {
        Self {
            queue: Arc::from(queue.into()),
            state: StateMap::default(),
            options: QueueOptions::default(),
        }
    }

    /// A value for `State<T>`, as `SqsConsumerBuilder::state` gives.
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// The queue's options: handler timeout, retry policy, non-retryable errors, forward
    /// target, acknowledgement mode.
    pub fn options(mut self, options: QueueOptions) -> Self {
        self.options = options;
        self
    }

    /// Runs `handler` on `message` (its extractors, the handler timeout, a panic caught) and
    /// says what the consumer would do with the message. A handler declared with
    /// `#[sqs_message_handler]` is passed by its name: the attribute leaves it a plain
    /// function.
    pub async fn run<H: Handler<T>, T>(&self, handler: H, message: TestMessage) -> TestOutcome {
        let message = message.into_message();
        let (acks, mut recorded) = Acks::recording();
        let acknowledged = Arc::new(AtomicBool::new(false));
        let ctx = MessageContext {
            queue: self.queue.clone(),
            state: Arc::new(self.state.clone()),
            ack: Some(AckHandle {
                acks,
                settled: acknowledged.clone(),
            }),
            message: message.clone(),
        };
        let mut service = message_service(handler);
        let outcome = guarded(self.options.handler_timeout, async move {
            tower::ServiceExt::ready(&mut service).await?;
            tower::Service::call(&mut service, ctx).await
        })
        .await;
        let (action, failure) = self.decide(outcome, message.receive_count());
        let action = if acknowledged.load(Ordering::SeqCst) {
            MessageAction::Acknowledged
        } else {
            action
        };
        let mut acknowledgements = Vec::new();
        while let Ok(op) = recorded.try_recv() {
            acknowledgements.push(match op {
                AckOp::Delete(_) => "delete".to_owned(),
                AckOp::Visibility(_, secs) => format!("visibility {secs} s"),
                AckOp::Group(handles, secs) => {
                    format!("visibility {secs} s for {} messages", handles.len())
                }
            });
        }
        TestOutcome {
            action,
            failure,
            acknowledgements,
        }
    }

    /// Runs `hook` on `event` with this test's queue and state, returning what the hook
    /// returned (the consumer logs an error and goes on).
    ///
    /// # Errors
    /// The hook's own error, or an extractor's.
    pub async fn run_hook<E: EventType, T>(
        &self,
        hook: impl Hook<E, T>,
        event: E,
    ) -> Result<(), BoxError> {
        let ctx = HookContext {
            queue: self.queue.clone(),
            state: Arc::new(self.state.clone()),
        };
        hook.call(event, ctx).await
    }

    fn decide(
        &self,
        outcome: Outcome<()>,
        receive_count: u32,
    ) -> (MessageAction, Option<TestFailure>) {
        let options = &self.options;
        let error = |error: BoxError, kind| {
            let action = if options.is_non_retryable(&error) {
                match &options.forward_non_retryable_to {
                    Some(queue) => MessageAction::Forwarded(queue.clone()),
                    None => MessageAction::Deleted,
                }
            } else {
                options.acknowledged(options.retry_action(receive_count))
            };
            let error = Arc::new(error);
            (action, Some(TestFailure::Error { kind, error }))
        };
        match outcome {
            Outcome::Done(Ok(())) if options.ack_mode == AckMode::Manual => {
                (MessageAction::LeftForRedelivery, None)
            }
            Outcome::Done(Ok(())) => (MessageAction::Deleted, None),
            Outcome::Done(Err(e)) if e.is::<ExtractError>() => error(e, FailureKind::Extract),
            Outcome::Done(Err(e)) => error(e, FailureKind::Handler),
            Outcome::Panicked(message) => {
                error(HandlerPanicked { message }.into(), FailureKind::Panic)
            }
            Outcome::TimedOut(t) => (
                options.acknowledged(options.retry_action(receive_count)),
                Some(TestFailure::TimedOut(t)),
            ),
        }
    }
}
