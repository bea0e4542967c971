//! `State<T>`: a value given to the consumer with `.state(value)`.

use super::{
    BatchContext, FromBatch, FromHookContext, FromMessage, HookContext, MessageContext,
    OptionalFromMessage, Requirement,
};
use crate::error::ExtractError;
use crate::state::StateMap;

/// A value given to the consumer with `.state(value)`, cloned for each call. Put a `Clone`
/// struct with your clients and stores in it (what a NestJS service class injects).
///
/// There is one value per type, and each `State<T>` a handler or hook takes is checked when
/// the consumer is built: a missing one is [`BuildError::MissingState`](crate::BuildError::MissingState),
/// naming the handler and the type. Wrap what must be shared rather than copied in an `Arc`
/// (most clients already are).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use sqs_handler::{Body, Producer, SqsConsumer, State, sqs_message_handler};
///
/// #[derive(Clone)]
/// struct AppState {
///     producer: Producer,        // cheap to clone
///     seen: Arc<AtomicU64>,      // shared by every call
/// }
///
/// #[sqs_message_handler("inbox")]
/// async fn forward(Body(body): Body, State(app): State<AppState>) -> Result<(), sqs_handler::ProducerError> {
///     app.seen.fetch_add(1, Ordering::Relaxed);
///     app.producer.send("outbox", sqs_handler::OutgoingMessage::new(body)).await?;
///     Ok(())
/// }
///
/// # fn register(config: &aws_config::SdkConfig) -> sqs_handler::SqsConsumerBuilder {
/// SqsConsumer::builder(config).state(AppState {
///     producer: Producer::new(config),
///     seen: Arc::default(),
/// })
/// # }
/// ```
///
/// `Option<State<T>>` is `None` when no `T` was given, and is not checked at build: for state
/// that is optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

fn state_of<T: Clone + Send + Sync + 'static>(map: &StateMap) -> Result<State<T>, ExtractError> {
    map.get::<T>().map(State).ok_or_else(|| {
        ExtractError::new(
            super::extractor_name::<State<T>>(),
            format!(
                "no {} was given: call .state(value) on the consumer builder",
                std::any::type_name::<T>()
            ),
        )
    })
}

impl<T: Clone + Send + Sync + 'static> FromMessage for State<T> {
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        state_of(&ctx.state)
    }
    fn requirement() -> Option<Requirement> {
        Some(Requirement::state::<T>())
    }
}

/// `None` when no `T` was given; not required at build.
impl<T: Clone + Send + Sync + 'static> OptionalFromMessage for State<T> {
    async fn from_message_optional(ctx: &MessageContext) -> Result<Option<Self>, ExtractError> {
        Ok(ctx.state.get::<T>().map(State))
    }
}

impl<T: Clone + Send + Sync + 'static> FromBatch for State<T> {
    async fn from_batch(ctx: &BatchContext) -> Result<Self, ExtractError> {
        state_of(&ctx.state)
    }
    fn requirement() -> Option<Requirement> {
        Some(Requirement::state::<T>())
    }
}

impl<T: Clone + Send + Sync + 'static> FromHookContext for State<T> {
    fn from_hook(ctx: &HookContext) -> Result<Self, ExtractError> {
        state_of(&ctx.state)
    }
    fn requirement() -> Option<Requirement> {
        Some(Requirement::state::<T>())
    }
}
