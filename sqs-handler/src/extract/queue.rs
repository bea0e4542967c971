//! What the queue gives: the batch of one receive, and the queue's name.

use super::{BatchContext, FromBatch, FromHookContext, FromMessage, HookContext, MessageContext};
use crate::error::ExtractError;
use crate::message::SqsMessage;

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
    async fn from_batch(ctx: &BatchContext) -> Result<Self, ExtractError> {
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
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Ok(QueueName(ctx.queue.to_string()))
    }
}

impl FromBatch for QueueName {
    async fn from_batch(ctx: &BatchContext) -> Result<Self, ExtractError> {
        Ok(QueueName(ctx.queue.to_string()))
    }
}

impl FromHookContext for QueueName {
    fn from_hook(ctx: &HookContext) -> Result<Self, ExtractError> {
        Ok(QueueName(ctx.queue.to_string()))
    }
}
