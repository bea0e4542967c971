#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc = include_str!("docs/crate.md")]

mod consumer;
mod error;
pub mod events;
pub mod extract;
pub mod handler;
#[cfg(feature = "lambda")]
#[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
pub mod lambda;
mod message;
mod options;
mod producer;
mod registry;
mod routing;
mod state;
mod telemetry;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

pub use consumer::{
    CircuitBreaker, CircuitState, ConsumerControl, Failure, FailureFilter, QueueStatus, RunError,
    SqsConsumer, SqsConsumerBuilder, StatusHandle, UnknownQueue, shutdown_signal,
};
pub use error::{BoxError, BuildError, ExtractError, HandlerPanicked, NonRetryable};
pub use events::{
    CircuitClosed, CircuitOpened, ConsumerError, Empty, EventKind, FailureKind, MessageAction,
    MessageProcessed, MessageReceived, ProcessingError, ResponseProcessed, Started, Stopped,
    TimeoutError,
};
pub use extract::{
    Acknowledgement, Batch, Body, EventBridge, Json, MessageAttributes, MessageContext,
    MessageGroupId, MessageId, QueueName, ReceiveCount, SentTimestamp, Sns, SnsAttribute, State,
};
pub use handler::{
    BatchHandler, BatchOutcome, Handler, HandlerService, IntoBatchResult, IntoHandlerResult,
};
pub use message::SqsMessage;
pub use options::{AckMode, NonRetryablePredicate, QueueOptions, RetryPolicy};
pub use producer::{
    BatchReport, FailedMessage, MAX_BATCH_BYTES, OutgoingMessage, Producer, ProducerError,
    SentMessage,
};
pub use routing::{MESSAGE_TYPE_ATTRIBUTE, MessageTypeKey, UnknownMessageType};

#[doc = include_str!("docs/sqs_message_handler.md")]
#[cfg(feature = "macros")]
#[doc(inline)]
pub use sqs_handler_macros::sqs_message_handler;

#[doc = include_str!("docs/sqs_consumer_event_handler.md")]
#[cfg(feature = "macros")]
#[doc(inline)]
pub use sqs_handler_macros::sqs_consumer_event_handler;

/// The AWS SDK for SQS this crate is built on: its types ([`Client`](aws_sdk_sqs::Client),
/// [`Message`](aws_sdk_sqs::types::Message), errors) appear in this crate's API.
pub use aws_sdk_sqs;

/// The AWS Lambda event types ([`SqsEvent`](aws_lambda_events::sqs::SqsEvent),
/// [`SqsBatchResponse`](aws_lambda_events::sqs::SqsBatchResponse)) the [`lambda`] module speaks.
#[cfg(feature = "lambda")]
#[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
pub use aws_lambda_events;

/// The AWS Lambda runtime the [`lambda`] module runs on.
#[cfg(feature = "lambda")]
#[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
pub use lambda_runtime;

/// Guides: how the consumer behaves, how to test handlers, and how to migrate from NestJS.
///
/// These modules hold documentation only.
pub mod guide {
    #[doc = include_str!("docs/consumer.md")]
    pub mod consumer {}

    #[doc = include_str!("docs/testing.md")]
    pub mod testing {}

    #[doc = include_str!("docs/migration.md")]
    pub mod migration {}

    #[doc = include_str!("docs/observability.md")]
    pub mod observability {}
}

/// Not public API: what the macros' generated code refers to.
#[doc(hidden)]
pub mod __private {
    pub use crate::events::EventKind;
    pub use crate::extract::{FromBatch, FromHookContext, FromMessage};
    pub use crate::registry::{
        ErasedHook, HandlerRegistration, HookRegistration, IsEvent, Origin, QueueRef,
        batch_handler, hook, message_handler,
    };
    pub use inventory;
}
