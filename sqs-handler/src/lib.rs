//! Declarative Amazon SQS consumers for Rust: a queue handler is an async function with one
//! attribute, as `@SqsMessageHandler` is in NestJS, and the consumer around it stays correct
//! under load, errors, timeouts and shutdown.
//!
//! ```
//! use std::time::Duration;
//! use sqs_handler::{
//!     Json, ProcessingError, QueueOptions, SqsConsumer, State, TimeoutError,
//!     sqs_consumer_event_handler, sqs_message_handler,
//! };
//!
//! #[derive(serde::Deserialize)]
//! struct Job { id: String }
//!
//! #[derive(Clone, Default)]
//! struct JobStore; // a Redis pool, an HTTP client, ...
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("job failed")]
//! struct JobError;
//!
//! #[sqs_message_handler("jobs")]
//! async fn run_job(Json(job): Json<Job>, State(store): State<JobStore>) -> Result<(), JobError> {
//!     let _ = (job.id, store);
//!     Ok(()) // Ok deletes the message; Err leaves it for redelivery
//! }
//!
//! #[sqs_consumer_event_handler("jobs", processing_error)]
//! async fn on_failed(event: ProcessingError, State(store): State<JobStore>) {
//!     let _ = (event.error, store);
//! }
//!
//! #[sqs_consumer_event_handler("jobs", timeout_error)]
//! async fn on_timeout(event: TimeoutError) {
//!     let _ = event.timeout;
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = sqs_local::LocalSqs::builder().queue("jobs").start().await?;
//! # let aws_config = server.sdk_config();
//! // let aws_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let consumer = SqsConsumer::builder(&aws_config)   // discovers the handlers above
//!     .queue("jobs", QueueOptions::default().concurrency(64).handler_timeout(Duration::from_secs(60)))
//!     .state(JobStore)
//!     .build()
//!     .await?;                                         // resolves queue URLs, checks registrations
//! consumer.run_until(async { /* shutdown_signal().await */ }).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Handlers
//!
//! A message handler is an async function whose arguments are [extractors](extract) and which
//! returns `()` or `Result<(), E>`. [What deletes a message](handler) is exact: success deletes,
//! an error, a panic, a failed extraction or a timeout does not (the [`RetryPolicy`] decides),
//! and an error wrapped in [`NonRetryable`] deletes or forwards it.
//!
//! `#[sqs_message_handler("queue", batch)]` declares a [`BatchHandler`] that takes the messages
//! of one receive ([`Batch`]) and says which failed ([`BatchOutcome`]). The queue can come from
//! an environment variable read at build time: `#[sqs_message_handler(env = "JOBS_QUEUE")]`.
//!
//! The attribute leaves the function as written (call it from a unit test) and registers it
//! beside it. Discovery works for functions linked into the binary; a crate the binary never
//! references contributes nothing, so register such handlers explicitly with
//! [`SqsConsumerBuilder::handler`]. [`SqsConsumerBuilder::build`] logs every queue with its
//! handler and hooks.
//!
//! # Events
//!
//! `#[sqs_consumer_event_handler("queue", event)]` observes the [events] of the NestJS library:
//! `processing_error`, `timeout_error`, `error`, `message_received`, `message_processed`,
//! `response_processed`, `empty`, `stopped`. Several hooks per event are allowed; one that
//! fails or panics is logged and the consumer goes on.
//!
//! # The consumer
//!
//! Per queue: long polling (20 s), up to 10 messages per receive and several receives in
//! flight up to the concurrency limit, never more messages held than that limit; deletes
//! coalesced into `DeleteMessageBatch`; a visibility heartbeat for long handlers; handler
//! timeouts that drop the handler's future; retry by leaving, releasing or exponential
//! backoff; FIFO groups in order, groups in parallel; transport faults retried with capped
//! exponential backoff and jitter; graceful shutdown. Every handler is a [`tower::Service`]
//! ([`HandlerService`]) and [`SqsConsumerBuilder::layer`] wraps them all. A tracing span per
//! message carries queue, message id and receive count; [`StatusHandle`] gives counters per
//! queue for health checks.
//!
//! # Producer
//!
//! [`Producer`] sends one message or many, chunked into concurrent `SendMessageBatch` calls of
//! at most 10 entries and 1 MiB, and reports exactly which were sent and which failed.
//!
//! # Testing
//!
//! The `sqs-local` crate of this workspace is an SQS-compatible server that runs in process:
//! `LocalSqs::start().await?.sdk_config()` gives the configuration to build a consumer on.

mod consumer;
mod error;
pub mod events;
pub mod extract;
pub mod handler;
mod message;
mod options;
mod producer;
mod registry;
mod state;

pub use consumer::{
    CircuitBreaker, CircuitState, Failure, FailureFilter, QueueStatus, RunError, SqsConsumer,
    SqsConsumerBuilder, StatusHandle, shutdown_signal,
};
pub use error::{
    BoxError, BuildError, ExtractError, HandlerPanicked, HandlerTimedOut, NonRetryable,
};
pub use events::{
    CircuitClosed, CircuitOpened, ConsumerError, Empty, EventKind, FailureKind, MessageAction,
    MessageProcessed, MessageReceived, ProcessingError, ResponseProcessed, Stopped, TimeoutError,
};
pub use extract::{
    Batch, Body, Json, MessageAttributes, MessageContext, MessageGroupId, MessageId, QueueName,
    ReceiveCount, SentTimestamp, State,
};
pub use handler::{
    BatchHandler, BatchOutcome, Handler, HandlerService, IntoBatchResult, IntoHandlerResult,
};
pub use message::SqsMessage;
pub use options::{NonRetryablePredicate, QueueOptions, RetryPolicy};
pub use producer::{
    BatchReport, FailedMessage, MAX_BATCH_BYTES, OutgoingMessage, Producer, ProducerError,
    SentMessage,
};

/// Declares an async function as the message handler of a queue.
///
/// `#[sqs_message_handler("queue")]`, `#[sqs_message_handler("queue", batch)]`,
/// `#[sqs_message_handler(env = "VAR")]`, `#[sqs_message_handler(env = "VAR", default = "jobs")]`.
/// See the [crate docs](crate).
#[doc(inline)]
pub use sqs_handler_macros::sqs_message_handler;

/// Declares an async function as a hook for one event of a queue's consumer.
///
/// `#[sqs_consumer_event_handler("queue", processing_error)]`; events: `processing_error`,
/// `timeout_error`, `error`, `message_received`, `message_processed`, `response_processed`,
/// `empty`, `stopped`. See [`events`].
#[doc(inline)]
pub use sqs_handler_macros::sqs_consumer_event_handler;

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
