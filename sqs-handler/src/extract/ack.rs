//! `Acknowledgement`: the handler settles its message itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{FromMessage, MessageContext};
use crate::consumer::Acks;
use crate::error::ExtractError;

/// What the consumer gives a message's [`Acknowledgement`].
#[derive(Debug, Clone)]
pub(crate) struct AckHandle {
    pub(crate) acks: Acks,
    /// Set once the handler deleted or released the message: the consumer then leaves it be.
    pub(crate) settled: Arc<AtomicBool>,
}

/// Lets a handler settle its message itself, before or instead of the consumer (Spring Cloud
/// AWS's `Acknowledgement`, sqs-consumer's `shouldDeleteMessages: false`): delete it now,
/// release it with a delay, or extend its visibility.
///
/// Once the handler has deleted or released the message, the consumer does nothing more with
/// it, whatever the handler returns (its hooks still fire, with
/// [`MessageAction::Acknowledged`](crate::MessageAction::Acknowledged) on failure). With
/// [`AckMode::Manual`](crate::AckMode::Manual) the consumer never deletes on success: a message
/// the handler did not delete comes back after its visibility timeout.
///
/// ```
/// use std::time::Duration;
/// use sqs_handler::{Acknowledgement, Json, sqs_message_handler};
///
/// #[derive(serde::Deserialize)]
/// struct Export {
///     rows: u64,
/// }
///
/// #[sqs_message_handler("exports")]
/// async fn export(Json(job): Json<Export>, ack: Acknowledgement) {
///     if job.rows == 0 {
///         ack.release(Duration::from_secs(60)); // not ready yet: again in a minute
///         return;
///     }
///     // Delete first: the export is idempotent, and a long run must not be delivered twice.
///     ack.delete();
///     println!("exporting {} rows", job.rows);
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Acknowledgement {
    handle: AckHandle,
    /// Copied only when a handler takes an `Acknowledgement`.
    receipt_handle: String,
}

impl Acknowledgement {
    /// Deletes the message (batched with other deletes).
    pub fn delete(&self) {
        self.handle.settled.store(true, Ordering::SeqCst);
        self.handle.acks.delete(&self.receipt_handle);
    }

    /// Makes the message visible again after `delay` (0: at once).
    pub fn release(&self, delay: Duration) {
        self.handle.settled.store(true, Ordering::SeqCst);
        self.handle
            .acks
            .change_visibility(&self.receipt_handle, delay);
    }

    /// Keeps the message invisible for `visibility` from now; the consumer still settles it
    /// when the handler returns.
    pub fn extend(&self, visibility: Duration) {
        self.handle
            .acks
            .change_visibility(&self.receipt_handle, visibility);
    }

    /// True once [`delete`](Self::delete) or [`release`](Self::release) was called.
    pub fn is_settled(&self) -> bool {
        self.handle.settled.load(Ordering::SeqCst)
    }
}

impl FromMessage for Acknowledgement {
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        match &ctx.ack {
            Some(handle) => Ok(Acknowledgement {
                handle: handle.clone(),
                receipt_handle: ctx.message.receipt_handle().to_owned(),
            }),
            None => Err(ExtractError::new(
                "Acknowledgement",
                "this message was not received by a consumer, so there is nothing to acknowledge",
            )),
        }
    }
}
