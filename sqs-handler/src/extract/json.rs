//! `Json<T>`: the body decoded as JSON.

use serde::de::DeserializeOwned;

use super::{FromMessage, MessageContext, OptionalFromMessage};
use crate::error::ExtractError;

/// The body decoded as JSON into `T`.
///
/// A body that does not decode is an extraction failure: the handler does not run,
/// `processing_error` fires with [`FailureKind::Extract`](crate::FailureKind::Extract), and the
/// retry policy applies. `Option<Json<T>>` is `None` for such a body instead (see
/// [`OptionalFromMessage`]).
///
/// ```
/// use sqs_handler::{Json, sqs_message_handler};
///
/// #[derive(serde::Deserialize)]
/// struct Job {
///     id: String,
///     #[serde(default)]
///     priority: u8,
/// }
///
/// #[sqs_message_handler("jobs")]
/// async fn handle(Json(job): Json<Job>) {
///     println!("job {} at priority {}", job.id, job.priority);
/// }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> Json<T> {
    fn decode(ctx: &MessageContext) -> Result<Self, ExtractError> {
        serde_json::from_str(ctx.message.body())
            .map(Json)
            .map_err(|e| ExtractError::new(super::extractor_name::<Self>(), e))
    }
}

impl<T: DeserializeOwned> FromMessage for Json<T> {
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        Self::decode(ctx)
    }
}

/// `None` when the body does not decode as `T`.
impl<T: DeserializeOwned> OptionalFromMessage for Json<T> {
    async fn from_message_optional(ctx: &MessageContext) -> Result<Option<Self>, ExtractError> {
        Ok(Self::decode(ctx).ok())
    }
}
