//! The same handlers as an AWS Lambda function behind an SQS event source mapping (feature
//! `lambda`), with partial batch responses.
//!
//! A service written with [`#[sqs_message_handler]`](crate::sqs_message_handler) deploys either
//! way without changing a handler: as the long-polling [`SqsConsumer`](crate::SqsConsumer), or as
//! a Lambda function. [`run`] takes the same [`SqsConsumerBuilder`] (state, layers, hooks,
//! options, explicit handlers) and serves every invocation through the official
//! [`lambda_runtime`]: each record of the [`SqsEvent`] becomes the [`SqsMessage`] the extractors
//! read (body, message attributes, system attributes, receive count, group id), and goes to the
//! handler of the queue named by its event source ARN, so one function can serve several queues.
//!
//! ```no_run
//! use sqs_handler::{Json, NonRetryable, BoxError, SqsConsumer, sqs_message_handler};
//!
//! #[derive(serde::Deserialize)]
//! struct Resize {
//!     image: String,
//! }
//!
//! #[sqs_message_handler("thumbnails")]
//! async fn resize(Json(job): Json<Resize>) -> Result<(), BoxError> {
//!     if job.image.is_empty() {
//!         return Err(NonRetryable::new("no image").into()); // deleted: not reported
//!     }
//!     Ok(()) // deleted by Lambda: not reported
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), sqs_handler::lambda_runtime::Error> {
//!     let config = aws_config::load_from_env().await;
//!     sqs_handler::lambda::run(SqsConsumer::builder(&config)).await
//! }
//! ```
//!
//! # What the function answers
//!
//! With [`ReportBatchItemFailures`](https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html)
//! on the event source mapping (the default here), the function answers an [`SqsBatchResponse`]
//! whose `batchItemFailures` lists the messages that must come back; Lambda deletes the others.
//! The rules are the consumer's ([`handler`](crate::handler) has them):
//!
//! | the handler | reported in `batchItemFailures` | hooks |
//! |---|---|---|
//! | succeeds | no (Lambda deletes it) | `message_received`, `message_processed` |
//! | returns an error | yes | `processing_error` (`FailureKind::Handler`) |
//! | panics | yes | `processing_error` (`FailureKind::Panic`) |
//! | runs past its timeout, or past the invocation's deadline less the [margin](LambdaConsumer::deadline_margin) | yes (its future is dropped) | `timeout_error` |
//! | an argument does not extract (bad JSON) | yes | `processing_error` (`FailureKind::Extract`) |
//! | returns a [`NonRetryable`](crate::NonRetryable) error | no (deleted); with [`forward_non_retryable_to`](crate::QueueOptions::forward_non_retryable_to), sent there first, and reported if that send fails | `processing_error` |
//! | FIFO: fails | yes, with every later message of its group in the event, which are not handled | as above |
//!
//! Messages of a FIFO queue are handled group by group, each group in order. AWS's guidance
//! is to stop the whole batch at the first failure; stopping only the failed message's group
//! keeps every group's order too (a group's messages after a reported one are reported, so they
//! come back after it), and lets the other groups finish. Messages of a standard queue are
//! handled concurrently, up to the queue's [`concurrency`](crate::QueueOptions::concurrency). A
//! batch handler gets all of its queue's messages in the event at once (on a FIFO queue, a
//! group's messages after one it failed are reported too). A message whose turn comes after
//! the deadline less the margin is reported without running. With
//! [`AckMode::Manual`](crate::AckMode::Manual), a message its handler did not acknowledge is
//! reported, as the worker would leave it.
//!
//! Without partial batch responses ([`LambdaConsumer::report_batch_item_failures`]`(false)`,
//! for a mapping without `ReportBatchItemFailures`), any reported message fails the whole
//! invocation with a [`LambdaError`], so that Lambda returns the whole batch.
//!
//! # Lambda or the worker
//!
//! Choose Lambda for spiky or low traffic (nothing runs while the queue is empty) and when the
//! rest of the system is there already; choose the worker ([`SqsConsumer`](crate::SqsConsumer)
//! on ECS or Kubernetes) for steady traffic, long handlers (Lambda stops at 15 minutes), and
//! control of concurrency and connections. What differs under Lambda:
//!
//! - **No heartbeat.** The mapping receives the messages; their visibility timeout is the
//!   queue's, which AWS advises to set to at least six times the function's timeout.
//! - **Concurrency** is the mapping's (batch size, maximum concurrency) times the queue's
//!   [`concurrency`](crate::QueueOptions::concurrency) within one invocation.
//! - **No long poll, no circuit breaker, no retry delays**: a reported message comes back when
//!   its visibility timeout ends. [`build_lambda`](crate::SqsConsumerBuilder::build_lambda)
//!   refuses a queue configured with a [`RetryPolicy`] other than the
//!   default or with a circuit breaker, rather than ignore it. An
//!   [`Acknowledgement`](crate::Acknowledgement) that releases its message reports it; the
//!   release's delay does not apply.
//! - **Hooks** fire per message as in the worker; `started`, `stopped`, `empty` and
//!   `response_processed` do not (there is no poll loop).
//! - Queue names come from each record's event source ARN; the builder's
//!   [`queue_prefix`](crate::SqsConsumerBuilder::queue_prefix) and
//!   [`resolve_queue_names`](crate::SqsConsumerBuilder::resolve_queue_names) apply as in the
//!   worker. No queue URL is looked up, except a forward queue's.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage as SqsRecord};
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use lambda_runtime::{Diagnostic, LambdaEvent};

use crate::consumer::invoke::QueueInvoker;
use crate::error::BuildError;
use crate::message::SqsMessage;
use crate::{RetryPolicy, SqsConsumerBuilder};

/// Builds the consumer's handlers as a Lambda function and serves invocations until the
/// Lambda runtime stops: [`SqsConsumerBuilder::build_lambda`], then [`LambdaConsumer::run`].
///
/// # Errors
/// A [`BuildError`] (boxed) when the configuration is wrong; the Lambda runtime's error when
/// its Runtime API cannot be reached.
pub async fn run(builder: SqsConsumerBuilder) -> Result<(), lambda_runtime::Error> {
    builder.build_lambda().await?.run().await
}

impl SqsConsumerBuilder {
    /// Checks the configuration as [`build`](Self::build) does and returns the handlers as a
    /// Lambda function ([`LambdaConsumer`]). No queue URL or visibility timeout is looked up:
    /// the only SQS call is `GetQueueUrl` for a
    /// [`forward_non_retryable_to`](crate::QueueOptions::forward_non_retryable_to) queue.
    ///
    /// # Errors
    /// As [`build`](Self::build), and [`BuildError::InvalidOption`] for a queue configured with
    /// what Lambda cannot do: a retry policy other than the default, or a circuit breaker (see
    /// [Lambda or the worker](crate::lambda#lambda-or-the-worker)).
    ///
    /// ```
    /// use sqs_handler::SqsConsumer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let config = sqs_local::sdk_config_for("http://127.0.0.1:1");
    /// let function = SqsConsumer::builder(&config)
    ///     .discover(false)
    ///     .handler("jobs", || async {})
    ///     .build_lambda()
    ///     .await?;
    /// assert_eq!(function.queues(), ["jobs"]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn build_lambda(self) -> Result<LambdaConsumer, BuildError> {
        let invokers = self.build_invokers().await?;
        let mut queues = HashMap::new();
        for invoker in invokers {
            let options = &invoker.shared.options;
            let queue = invoker.shared.queue.to_string();
            let unsupported = if options.retry != RetryPolicy::LeaveUntilVisibilityTimeout {
                Some("a retry policy other than LeaveUntilVisibilityTimeout")
            } else if options.circuit_breaker.is_some() {
                Some("a circuit breaker")
            } else {
                None
            };
            if let Some(what) = unsupported {
                return Err(BuildError::InvalidOption {
                    queue,
                    message: format!(
                        "it is configured with {what}, which a Lambda function cannot apply (the \
                         event source mapping decides when a reported message returns): remove \
                         it from this queue's options for Lambda"
                    ),
                });
            }
            queues.insert(queue, invoker);
        }
        Ok(LambdaConsumer {
            queues: Arc::new(queues),
            partial: true,
            margin: DEFAULT_MARGIN,
        })
    }
}

const DEFAULT_MARGIN: Duration = Duration::from_secs(1);

/// The consumer's handlers as a Lambda function: a [`tower::Service`] of
/// `LambdaEvent<SqsEvent>` that answers an [`SqsBatchResponse`]. Made by
/// [`SqsConsumerBuilder::build_lambda`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct LambdaConsumer {
    queues: Arc<HashMap<String, QueueInvoker>>,
    partial: bool,
    margin: Duration,
}

impl LambdaConsumer {
    /// Whether the function answers partial batch responses (default on: the event source
    /// mapping has `FunctionResponseTypes: ["ReportBatchItemFailures"]`). Off, a message that
    /// must come back fails the whole invocation with a [`LambdaError`].
    pub fn report_batch_item_failures(mut self, on: bool) -> Self {
        self.partial = on;
        self
    }

    /// How long before the invocation's deadline running handlers are cancelled (default 1 s),
    /// so that the function reports what did not finish instead of being stopped by Lambda
    /// (which would return the whole batch). Each handler's timeout is the shorter of its
    /// queue's [`handler_timeout`](crate::QueueOptions::handler_timeout) and the time left.
    pub fn deadline_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// The queues the function serves (real names, sorted).
    pub fn queues(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.queues.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Serves invocations through [`lambda_runtime::run`] until the runtime stops.
    ///
    /// # Errors
    /// When the Lambda Runtime API cannot be reached.
    pub async fn run(self) -> Result<(), lambda_runtime::Error> {
        lambda_runtime::run(self).await
    }

    /// Handles one event: each record by the handler of its queue, with handlers cancelled at
    /// `deadline` less the margin (`None`: no deadline). Returns the messages to report.
    ///
    /// # Errors
    /// Without partial batch responses, [`LambdaError::Failed`] when any message must come
    /// back. With them, never: a record whose queue has no handler, or that has no message id
    /// or event source ARN, is reported (and logged at ERROR).
    ///
    /// ```
    /// use sqs_handler::{BoxError, Body, SqsConsumer};
    /// use sqs_handler::aws_lambda_events::sqs::SqsEvent;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let config = sqs_local::sdk_config_for("http://127.0.0.1:1");
    /// let function = SqsConsumer::builder(&config)
    ///     .discover(false)
    ///     .handler("jobs", |Body(b): Body| async move {
    ///         if b == "bad" { Err(BoxError::from("bad job")) } else { Ok(()) }
    ///     })
    ///     .build_lambda()
    ///     .await?;
    /// let event: SqsEvent = serde_json::from_value(serde_json::json!({"Records": [
    ///     {"messageId": "m1", "receiptHandle": "r1", "body": "good", "attributes": {}, "messageAttributes": {},
    ///      "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs"},
    ///     {"messageId": "m2", "receiptHandle": "r2", "body": "bad", "attributes": {}, "messageAttributes": {},
    ///      "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs"}
    /// ]}))?;
    /// let response = function.handle_event(event, None).await?;
    /// assert_eq!(
    ///     serde_json::to_value(&response)?,
    ///     serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m2"}]})
    /// );
    /// # Ok(())
    /// # }
    /// ```
    pub async fn handle_event(
        &self,
        event: SqsEvent,
        deadline: Option<SystemTime>,
    ) -> Result<SqsBatchResponse, LambdaError> {
        let deadline = self.instant(deadline);
        let total = event.records.len();
        let mut failures = Vec::new();
        let mut by_queue: Vec<(String, Vec<SqsMessage>)> = Vec::new();
        for record in event.records {
            let Some((queue, message)) = split_record(record, &mut failures) else {
                continue;
            };
            match by_queue.iter_mut().find(|(q, _)| *q == queue) {
                Some((_, messages)) => messages.push(message),
                None => by_queue.push((queue, vec![message])),
            }
        }
        let runs = by_queue.into_iter().map(|(queue, messages)| async move {
            match self.queues.get(&queue) {
                Some(invoker) => invoker.handle(messages, deadline).await,
                None => {
                    tracing::error!(%queue, messages = messages.len(), "the event has messages of a queue this function has no handler for: they are reported");
                    messages
                        .iter()
                        .map(|m| m.message_id().to_owned())
                        .collect()
                }
            }
        });
        for failed in futures_util::future::join_all(runs).await {
            failures.extend(failed);
        }
        if !self.partial && !failures.is_empty() {
            return Err(LambdaError::Failed {
                failed: failures,
                total,
            });
        }
        let mut response = SqsBatchResponse::default();
        for id in failures {
            response.add_failure(id);
        }
        Ok(response)
    }

    /// When handlers must be done: `deadline` less the margin, as a tokio instant.
    fn instant(&self, deadline: Option<SystemTime>) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let Some(deadline) = deadline else {
            // No deadline: as far as a handler could run (Lambda's limit is 15 minutes).
            return now + Duration::from_secs(86_400);
        };
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .saturating_sub(self.margin);
        now + left
    }
}

/// Why an invocation failed as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LambdaError {
    /// Partial batch responses are off and some messages must come back: the whole batch
    /// returns.
    #[error(
        "{} of {total} messages failed ({}); without ReportBatchItemFailures the whole batch returns to the queue",
        failed.len(),
        failed.join(", ")
    )]
    Failed {
        /// The message ids that failed.
        failed: Vec<String>,
        /// The number of messages in the event.
        total: usize,
    },
}

impl From<LambdaError> for Diagnostic {
    fn from(e: LambdaError) -> Self {
        Diagnostic {
            error_type: "SqsHandler.BatchFailed".to_owned(),
            error_message: e.to_string(),
        }
    }
}

impl tower::Service<LambdaEvent<SqsEvent>> for LambdaConsumer {
    type Response = SqsBatchResponse;
    type Error = LambdaError;
    type Future = crate::handler::BoxFuture<Result<SqsBatchResponse, LambdaError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, event: LambdaEvent<SqsEvent>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let deadline = (event.context.deadline != 0).then(|| event.context.deadline());
            this.handle_event(event.payload, deadline).await
        })
    }
}

/// The queue of a record (the last segment of its event source ARN) and the record as the
/// message the extractors read; `None`, with its id added to `failures`, when it has neither.
fn split_record(record: SqsRecord, failures: &mut Vec<String>) -> Option<(String, SqsMessage)> {
    let id = record.message_id.clone().unwrap_or_default();
    let queue = record
        .event_source_arn
        .as_deref()
        .and_then(|arn| arn.rsplit(':').next())
        .filter(|q| !q.is_empty())
        .map(str::to_owned);
    match (queue, id.is_empty()) {
        (Some(queue), false) => match to_message(record) {
            Ok(message) => Some((queue, SqsMessage::new(message))),
            Err(why) => {
                tracing::error!(message_id = %id, %queue, "{why}: the message is reported");
                failures.push(id);
                None
            }
        },
        (None, false) => {
            tracing::error!(message_id = %id, "a record without an event source ARN: it is reported");
            failures.push(id);
            None
        }
        (_, true) => {
            // Lambda treats an empty itemIdentifier as a failure of the whole batch, which is
            // what a record without an id must get.
            tracing::error!("a record without a message id: the whole batch is reported");
            failures.push(String::new());
            None
        }
    }
}

/// A Lambda SQS record as the SDK's `Message`; `Err` names a message attribute that has no
/// data type (Lambda always sends one), rather than leave it out.
fn to_message(record: SqsRecord) -> Result<Message, String> {
    let mut m = Message::builder()
        .set_message_id(record.message_id)
        .set_receipt_handle(record.receipt_handle)
        .set_body(record.body)
        .set_md5_of_body(record.md5_of_body)
        .set_md5_of_message_attributes(record.md5_of_message_attributes);
    for (name, value) in record.attributes {
        m = m.attributes(MessageSystemAttributeName::from(name.as_str()), value);
    }
    for (name, a) in record.message_attributes {
        let value = MessageAttributeValue::builder()
            .set_data_type(a.data_type)
            .set_string_value(a.string_value)
            .set_binary_value(a.binary_value.map(|b| Blob::new(b.0)))
            .set_string_list_values(Some(a.string_list_values).filter(|v| !v.is_empty()))
            .set_binary_list_values(
                Some(
                    a.binary_list_values
                        .into_iter()
                        .map(|b| Blob::new(b.0))
                        .collect::<Vec<_>>(),
                )
                .filter(|v| !v.is_empty()),
            )
            .build();
        let value = value.map_err(|e| format!("message attribute {name:?} is invalid: {e}"))?;
        m = m.message_attributes(name, value);
    }
    Ok(m.build())
}
