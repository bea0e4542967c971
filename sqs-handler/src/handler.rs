//! Handlers: async functions whose arguments are extractors.
//!
//! A message handler returns `()` or `Result<(), E>`:
//!
//! | outcome | what happens to the message |
//! |---|---|
//! | returns `()` or `Ok(())` | deleted |
//! | returns `Err(e)` | `processing_error` fires; the queue's [`RetryPolicy`](crate::RetryPolicy) applies (left for redelivery by default) |
//! | returns `Err(e)` with a [`NonRetryable`](crate::NonRetryable) in `e`'s chain | `processing_error` fires; deleted, or forwarded to the configured queue |
//! | panics | caught; `processing_error` fires; the retry policy applies |
//! | an argument cannot be extracted (bad JSON) | `processing_error` fires; the retry policy applies |
//! | runs past the handler timeout | its future is dropped (the work stops); `timeout_error` fires; the retry policy applies |
//!
//! A handler returning `()` cannot report failure: it deletes its message whenever it returns.
//! Return `Result` when the work can fail.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tower::util::BoxCloneSyncService;

use crate::error::BoxError;
use crate::extract::{BatchContext, FromBatch, FromMessage, MessageContext, Requirement};
use crate::message::SqsMessage;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The tower service every message handler becomes: a [`MessageContext`] in, `()` out, a boxed
/// error for a failure. Layers given to the consumer wrap it.
pub type HandlerService = BoxCloneSyncService<MessageContext, (), BoxError>;

/// What a handler or hook may return: `()` or `Result<(), E>`.
#[diagnostic::on_unimplemented(
    message = "a handler must return `()` or `Result<(), E>` where E converts into a boxed error, not `{Self}`"
)]
pub trait IntoHandlerResult {
    /// `Ok(())` deletes the message; `Err` is a processing error.
    fn into_handler_result(self) -> Result<(), BoxError>;
}

impl IntoHandlerResult for () {
    fn into_handler_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError>> IntoHandlerResult for Result<(), E> {
    fn into_handler_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// An async function that can handle one message: every argument implements
/// [`FromMessage`] and the output implements [`IntoHandlerResult`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a message handler",
    note = "a message handler is an async fn whose arguments all implement FromMessage (Json<T>, Body, SqsMessage, State<T>, ...) and which returns () or Result<(), E>"
)]
pub trait Handler<T>: Clone + Send + Sync + 'static {
    /// Runs the handler on one message.
    fn call(self, ctx: MessageContext) -> BoxFuture<Result<(), BoxError>>;

    /// The state types its extractors need.
    #[doc(hidden)]
    fn requirements() -> Vec<Requirement>;
}

/// Which messages of a batch failed. Messages not named here succeeded and are deleted.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub(crate) failed: HashMap<String, BoxError>,
}

impl BatchOutcome {
    /// Every message succeeded.
    pub fn all_ok() -> Self {
        Self::default()
    }

    /// Marks one message failed.
    pub fn fail(mut self, message: &SqsMessage, error: impl Into<BoxError>) -> Self {
        self.failed
            .insert(message.message_id().to_owned(), error.into());
        self
    }

    /// Marks one message failed, in place.
    pub fn record_failure(&mut self, message: &SqsMessage, error: impl Into<BoxError>) {
        self.failed
            .insert(message.message_id().to_owned(), error.into());
    }

    /// How many messages failed.
    pub fn failures(&self) -> usize {
        self.failed.len()
    }
}

/// What a batch handler may return: `()`, `Result<(), E>` (all or none), [`BatchOutcome`], or
/// `Result<BatchOutcome, E>`.
#[diagnostic::on_unimplemented(
    message = "a batch handler must return (), Result<(), E>, BatchOutcome or Result<BatchOutcome, E>, not `{Self}`"
)]
pub trait IntoBatchResult {
    /// `Err` fails every message of the batch.
    fn into_batch_result(self) -> Result<BatchOutcome, BoxError>;
}

impl IntoBatchResult for () {
    fn into_batch_result(self) -> Result<BatchOutcome, BoxError> {
        Ok(BatchOutcome::all_ok())
    }
}

impl IntoBatchResult for BatchOutcome {
    fn into_batch_result(self) -> Result<BatchOutcome, BoxError> {
        Ok(self)
    }
}

impl<E: Into<BoxError>> IntoBatchResult for Result<(), E> {
    fn into_batch_result(self) -> Result<BatchOutcome, BoxError> {
        self.map(|()| BatchOutcome::all_ok()).map_err(Into::into)
    }
}

impl<E: Into<BoxError>> IntoBatchResult for Result<BatchOutcome, E> {
    fn into_batch_result(self) -> Result<BatchOutcome, BoxError> {
        self.map_err(Into::into)
    }
}

/// An async function that can handle the messages of one receive: every argument implements
/// [`FromBatch`] and the output implements [`IntoBatchResult`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a batch handler",
    note = "a batch handler is an async fn whose arguments all implement FromBatch (Batch, QueueName, State<T>) and which returns (), Result<(), E>, BatchOutcome or Result<BatchOutcome, E>"
)]
pub trait BatchHandler<T>: Clone + Send + Sync + 'static {
    /// Runs the handler on a batch.
    fn call(self, ctx: BatchContext) -> BoxFuture<Result<BatchOutcome, BoxError>>;

    /// The state types its extractors need.
    #[doc(hidden)]
    fn requirements() -> Vec<Requirement>;
}

macro_rules! impl_handlers {
    ($($ty:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, R, $($ty,)*> Handler<($($ty,)*)> for F
        where
            F: FnOnce($($ty,)*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoHandlerResult,
            $($ty: FromMessage + Send + 'static,)*
        {
            fn call(self, ctx: MessageContext) -> BoxFuture<Result<(), BoxError>> {
                $(
                    let $ty = match $ty::from_message(&ctx) {
                        Ok(v) => v,
                        Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
                    };
                )*
                let fut = self($($ty,)*);
                Box::pin(async move { fut.await.into_handler_result() })
            }

            fn requirements() -> Vec<Requirement> {
                let all: Vec<Option<Requirement>> = vec![$($ty::requirement(),)*];
                all.into_iter().flatten().collect()
            }
        }

        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, R, $($ty,)*> BatchHandler<($($ty,)*)> for F
        where
            F: FnOnce($($ty,)*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoBatchResult,
            $($ty: FromBatch + Send + 'static,)*
        {
            fn call(self, ctx: BatchContext) -> BoxFuture<Result<BatchOutcome, BoxError>> {
                $(
                    let $ty = match $ty::from_batch(&ctx) {
                        Ok(v) => v,
                        Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
                    };
                )*
                let fut = self($($ty,)*);
                Box::pin(async move { fut.await.into_batch_result() })
            }

            fn requirements() -> Vec<Requirement> {
                let all: Vec<Option<Requirement>> = vec![$($ty::requirement(),)*];
                all.into_iter().flatten().collect()
            }
        }
    };
}

macro_rules! all_the_tuples {
    ($name:ident) => {
        $name!();
        $name!(T1);
        $name!(T1, T2);
        $name!(T1, T2, T3);
        $name!(T1, T2, T3, T4);
        $name!(T1, T2, T3, T4, T5);
        $name!(T1, T2, T3, T4, T5, T6);
        $name!(T1, T2, T3, T4, T5, T6, T7);
        $name!(T1, T2, T3, T4, T5, T6, T7, T8);
    };
}
pub(crate) use all_the_tuples;

all_the_tuples!(impl_handlers);

/// A batch handler with its types erased.
pub(crate) type BatchFn =
    Arc<dyn Fn(BatchContext) -> BoxFuture<Result<BatchOutcome, BoxError>> + Send + Sync>;

/// A handler with its types erased, as registered.
#[doc(hidden)]
#[derive(Clone)]
pub enum ErasedHandler {
    /// One message at a time, as a tower service.
    Message(HandlerService),
    /// The messages of one receive at a time.
    Batch(BatchFn),
}

impl std::fmt::Debug for ErasedHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Message(_) => f.write_str("ErasedHandler::Message"),
            Self::Batch(_) => f.write_str("ErasedHandler::Batch"),
        }
    }
}

/// Erases a message handler into a tower service.
pub(crate) fn message_service<H: Handler<T>, T>(handler: H) -> HandlerService {
    BoxCloneSyncService::new(tower::service_fn(move |ctx: MessageContext| {
        handler.clone().call(ctx)
    }))
}

/// Erases a batch handler.
pub(crate) fn batch_fn<H: BatchHandler<T>, T>(handler: H) -> BatchFn {
    Arc::new(move |ctx| handler.clone().call(ctx))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
    use tower::ServiceExt as _;

    use super::*;
    use crate::error::ExtractError;
    use crate::extract::{Json, ReceiveCount, State};
    use crate::state::StateMap;

    fn ctx(body: &str, state: StateMap) -> MessageContext {
        let message = Message::builder()
            .message_id("m-1")
            .receipt_handle("r-1")
            .body(body)
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3")
            .build();
        MessageContext {
            message: SqsMessage::new(message),
            queue: Arc::from("jobs"),
            state: Arc::new(state),
        }
    }

    #[derive(serde::Deserialize)]
    struct Job {
        n: u32,
    }

    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<u32>>>);

    async fn record(
        Json(job): Json<Job>,
        ReceiveCount(c): ReceiveCount,
        State(seen): State<Seen>,
    ) -> Result<(), BoxError> {
        if job.n == 0 {
            return Err("zero is refused".into());
        }
        seen.0.lock().unwrap().push(job.n * 10 + c);
        Ok(())
    }

    fn state(seen: &Seen) -> StateMap {
        let mut s = StateMap::default();
        s.insert(seen.clone());
        s
    }

    #[tokio::test]
    async fn extractors_feed_the_handler() {
        let seen = Seen::default();
        message_service(record)
            .oneshot(ctx(r#"{"n":4}"#, state(&seen)))
            .await
            .unwrap();
        assert_eq!(*seen.0.lock().unwrap(), [43]);
    }

    #[tokio::test]
    async fn handler_errors_come_back_unchanged() {
        let seen = Seen::default();
        let err = message_service(record)
            .oneshot(ctx(r#"{"n":0}"#, state(&seen)))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "zero is refused");
        assert!(seen.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_bad_body_is_an_extract_error_and_the_handler_does_not_run() {
        let seen = Seen::default();
        let err = message_service(record)
            .oneshot(ctx("not json", state(&seen)))
            .await
            .unwrap_err();
        let extract = err.downcast_ref::<ExtractError>().expect("an ExtractError");
        assert!(extract.extractor.contains("Json<"), "{}", extract.extractor);
        assert!(seen.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn missing_state_names_the_type() {
        let err = message_service(record)
            .oneshot(ctx(r#"{"n":1}"#, StateMap::default()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("Seen"), "{err}");
        fn requirements<H: Handler<T>, T>(_: &H) -> Vec<Requirement> {
            H::requirements()
        }
        let names: Vec<&str> = requirements(&record).iter().map(|r| r.type_name).collect();
        assert_eq!(names.len(), 1, "only State<Seen> needs state");
        assert!(names[0].ends_with("Seen"), "{names:?}");
    }

    #[tokio::test]
    async fn batch_results_name_the_failed_messages() {
        let ctx = BatchContext {
            messages: vec![ctx("a", StateMap::default()).message],
            queue: Arc::from("jobs"),
            state: Arc::new(StateMap::default()),
        };
        let f = batch_fn(
            |crate::extract::Batch(ms): crate::extract::Batch| async move {
                ms.iter()
                    .fold(BatchOutcome::all_ok(), |o, m| o.fail(m, "no"))
            },
        );
        let outcome = f(ctx).await.unwrap();
        assert_eq!(outcome.failures(), 1);
        assert!(outcome.failed.contains_key("m-1"));
    }
}
