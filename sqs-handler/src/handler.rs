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
//! | an argument cannot be extracted (bad JSON) | `processing_error` fires ([`FailureKind::Extract`](crate::FailureKind::Extract)); the retry policy applies (take [`Option<T>`](crate::extract::OptionalFromMessage) or [`Result<T, ExtractError>`](crate::extract::FromMessage#results-handle-the-failure) to decide in the handler) |
//! | runs past the handler timeout | its future is dropped (the work stops); `timeout_error` fires; the retry policy applies |
//!
//! A handler returning `()` cannot report failure: it deletes its message whenever it returns.
//! Return `Result` when the work can fail. More on retries, the heartbeat and shutdown in
//! [How the consumer works](crate::guide::consumer).
//!
//! # Message handlers
//!
//! Any async function (or closure returning a future) whose arguments all implement
//! [`FromMessage`] is a [`Handler`]: declare it with
//! [`#[sqs_message_handler]`](crate::sqs_message_handler), or register it with
//! [`SqsConsumerBuilder::handler`](crate::SqsConsumerBuilder::handler).
//!
//! ```
//! use sqs_handler::{BoxError, Json, NonRetryable, ReceiveCount, sqs_message_handler};
//!
//! #[derive(serde::Deserialize)]
//! struct Payment {
//!     account: String,
//!     cents: i64,
//! }
//!
//! #[derive(Debug, thiserror::Error)]
//! enum PaymentError {
//!     #[error("the bank is unavailable")]
//!     BankDown,
//!     #[error("account {0} is closed")]
//!     AccountClosed(String),
//! }
//!
//! #[sqs_message_handler("payments")]
//! async fn pay(Json(p): Json<Payment>, ReceiveCount(n): ReceiveCount) -> Result<(), BoxError> {
//!     match charge(&p).await {
//!         Ok(()) => Ok(()),                                   // deleted
//!         Err(e @ PaymentError::BankDown) => Err(e.into()),   // retried (receive `n` failed)
//!         Err(e) => Err(NonRetryable::new(e).into()),         // deleted or forwarded
//!     }
//! }
//! # async fn charge(p: &Payment) -> Result<(), PaymentError> {
//! #     if p.cents < 0 { Err(PaymentError::AccountClosed(p.account.clone())) } else { Ok(()) }
//! # }
//! ```
//!
//! # Batch handlers
//!
//! `#[sqs_message_handler("queue", batch)]`, or
//! [`SqsConsumerBuilder::batch_handler`](crate::SqsConsumerBuilder::batch_handler), declares a
//! [`BatchHandler`]: it gets the messages of one receive together (up to 10,
//! [`max_messages_per_receive`](crate::QueueOptions::max_messages_per_receive)) as a
//! [`Batch`](crate::Batch), and returns what [`IntoBatchResult`] accepts:
//!
//! | returns | deleted | failed (`processing_error` for each) |
//! |---|---|---|
//! | `()` or `Ok(())` | all | none |
//! | `Err(e)`, or a panic | none | all |
//! | [`BatchOutcome`] or `Ok(BatchOutcome)` | those not marked failed | those marked failed |
//!
//! A batch handler is for work that is cheaper in bulk (one database write for ten rows, one
//! API call for ten items). Its messages are extended by the heartbeat together, and the
//! [`handler_timeout`](crate::QueueOptions::handler_timeout) covers the whole batch. Tower
//! layers wrap message handlers only.
//!
//! ```
//! use sqs_handler::{Batch, BatchOutcome, BoxError, State, sqs_message_handler};
//!
//! #[derive(Clone)]
//! struct Db;
//!
//! impl Db {
//!     /// Inserts rows; returns the positions of the rows it refused.
//!     async fn insert_many(&self, rows: &[&str]) -> Result<Vec<usize>, BoxError> {
//!         Ok(rows.iter().enumerate().filter(|(_, r)| r.is_empty()).map(|(i, _)| i).collect())
//!     }
//! }
//!
//! #[sqs_message_handler("rows", batch)]
//! async fn insert_rows(Batch(messages): Batch, State(db): State<Db>) -> Result<BatchOutcome, BoxError> {
//!     let rows: Vec<&str> = messages.iter().map(|m| m.body()).collect();
//!     let refused = db.insert_many(&rows).await?; // Err: the whole batch failed
//!     let mut outcome = BatchOutcome::all_ok();
//!     for i in refused {
//!         outcome.record_failure(&messages[i], "refused by the database");
//!     }
//!     Ok(outcome)
//! }
//! ```

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
///
/// A layer written for it sees every message before the handler, and its outcome after:
///
/// ```
/// use std::time::Instant;
/// use sqs_handler::{HandlerService, MessageContext};
/// use tower::ServiceExt as _;
///
/// /// Logs how long each message took.
/// fn timed(inner: HandlerService) -> HandlerService {
///     HandlerService::new(tower::service_fn(move |ctx: MessageContext| {
///         let inner = inner.clone();
///         async move {
///             let (id, started) = (ctx.message().message_id().to_owned(), Instant::now());
///             let result = inner.oneshot(ctx).await;
///             println!("message {id}: {:?} in {:?}", result.is_ok(), started.elapsed());
///             result
///         }
///     }))
/// }
///
/// let layer = tower::layer::layer_fn(timed); // for SqsConsumerBuilder::layer
/// ```
pub type HandlerService = BoxCloneSyncService<MessageContext, (), BoxError>;

/// What a handler or hook may return: `()` or `Result<(), E>`.
///
/// `E` is anything that converts into a [`BoxError`]: an error type, a `String`, a `&str`.
///
/// ```
/// use sqs_handler::IntoHandlerResult;
///
/// assert!(().into_handler_result().is_ok());
/// assert!(Ok::<(), std::io::Error>(()).into_handler_result().is_ok());
/// let failed = Err::<(), _>("quota exceeded").into_handler_result();
/// assert_eq!(failed.unwrap_err().to_string(), "quota exceeded");
/// ```
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
///
/// It is implemented for functions and closures of up to 8 arguments; a function that does
/// not qualify gets a compile error saying which part is wrong. Closures make handlers that
/// capture configuration, registered with
/// [`SqsConsumerBuilder::handler`](crate::SqsConsumerBuilder::handler):
///
/// ```
/// use sqs_handler::{Body, Handler};
///
/// fn is_handler<T>(_: impl Handler<T>) {}
///
/// async fn log(Body(body): Body) {
///     println!("{body}");
/// }
/// is_handler(log);
///
/// let prefix = String::from("audit");
/// is_handler(move |Body(body): Body| {
///     let prefix = prefix.clone();
///     async move { println!("{prefix}: {body}") }
/// });
/// ```
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
///
/// ```
/// use sqs_handler::{Batch, BatchOutcome, sqs_message_handler};
///
/// #[sqs_message_handler("numbers", batch)]
/// async fn sum(Batch(messages): Batch) -> BatchOutcome {
///     messages.iter().fold(BatchOutcome::all_ok(), |outcome, m| match m.body().parse::<i64>() {
///         Ok(_) => outcome,
///         Err(e) => outcome.fail(m, e),
///     })
/// }
/// ```
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub(crate) failed: HashMap<String, BoxError>,
}

impl BatchOutcome {
    /// Every message succeeded.
    ///
    /// ```
    /// let outcome = sqs_handler::BatchOutcome::all_ok();
    /// assert_eq!(outcome.failures(), 0);
    /// ```
    pub fn all_ok() -> Self {
        Self::default()
    }

    /// Marks one message failed.
    ///
    /// ```
    /// use sqs_handler::{BatchOutcome, SqsMessage, aws_sdk_sqs::types::Message};
    ///
    /// let message = SqsMessage::new(Message::builder().message_id("m-1").body("x").build());
    /// let outcome = BatchOutcome::all_ok().fail(&message, "not a number");
    /// assert_eq!(outcome.failures(), 1);
    /// ```
    pub fn fail(mut self, message: &SqsMessage, error: impl Into<BoxError>) -> Self {
        self.failed
            .insert(message.message_id().to_owned(), error.into());
        self
    }

    /// Marks one message failed, in place. Marking one message twice keeps the last error.
    ///
    /// ```
    /// use sqs_handler::{BatchOutcome, SqsMessage, aws_sdk_sqs::types::Message};
    ///
    /// let messages: Vec<SqsMessage> = ["1", "x", "3"]
    ///     .iter()
    ///     .enumerate()
    ///     .map(|(i, body)| SqsMessage::new(Message::builder().message_id(format!("m-{i}")).body(*body).build()))
    ///     .collect();
    /// let mut outcome = BatchOutcome::all_ok();
    /// for m in &messages {
    ///     if let Err(e) = m.body().parse::<u32>() {
    ///         outcome.record_failure(m, e);
    ///     }
    /// }
    /// assert_eq!(outcome.failures(), 1);
    /// ```
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
///
/// ```
/// use sqs_handler::{BatchOutcome, IntoBatchResult};
///
/// assert_eq!(().into_batch_result().unwrap().failures(), 0);
/// assert!(Err::<(), _>("database down").into_batch_result().is_err()); // every message failed
/// assert!(Ok::<_, std::io::Error>(BatchOutcome::all_ok()).into_batch_result().is_ok());
/// ```
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
/// [`FromBatch`] and the output implements [`IntoBatchResult`]. See [batch
/// handlers](self#batch-handlers).
///
/// ```
/// use sqs_handler::{Batch, BatchHandler, QueueName};
///
/// fn is_batch_handler<T>(_: impl BatchHandler<T>) {}
///
/// async fn count(Batch(messages): Batch, QueueName(queue): QueueName) {
///     println!("{} messages from {queue}", messages.len());
/// }
/// is_batch_handler(count);
/// ```
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
                // Extraction is async (an extractor may look something up), so it runs inside
                // the returned future: under the handler timeout and the panic guard.
                Box::pin(async move {
                    $(
                        let $ty = $ty::from_message(&ctx).await.map_err(BoxError::from)?;
                    )*
                    self($($ty,)*).await.into_handler_result()
                })
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
                Box::pin(async move {
                    $(
                        let $ty = $ty::from_batch(&ctx).await.map_err(BoxError::from)?;
                    )*
                    self($($ty,)*).await.into_batch_result()
                })
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
            ack: None,
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

    /// A custom extractor that awaits and reads the state through the context.
    struct Scaled(u32);

    impl crate::extract::FromMessage for Scaled {
        async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
            tokio::task::yield_now().await;
            let seen = ctx
                .state::<Seen>()
                .ok_or_else(|| ExtractError::new("Scaled", "no Seen"))?;
            let factor = seen.0.lock().unwrap().len() as u32 + 2;
            let n: u32 = ctx
                .message()
                .body()
                .parse()
                .map_err(|e| ExtractError::new("Scaled", e))?;
            Ok(Scaled(n * factor))
        }

        fn requirement() -> Option<Requirement> {
            Some(Requirement::state::<Seen>())
        }
    }

    #[tokio::test]
    async fn an_async_extractor_reads_the_state_and_declares_it() {
        let seen = Seen::default();
        let handler = |Scaled(n): Scaled, State(seen): State<Seen>| async move {
            seen.0.lock().unwrap().push(n);
        };
        message_service(handler)
            .oneshot(ctx("5", state(&seen)))
            .await
            .unwrap();
        message_service(handler)
            .oneshot(ctx("5", state(&seen)))
            .await
            .unwrap();
        assert_eq!(*seen.0.lock().unwrap(), [10, 15]);
        let err = message_service(handler)
            .oneshot(ctx("five", state(&seen)))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot extract Scaled from message: invalid digit found in string"
        );
        fn requirements<H: Handler<T>, T>(_: &H) -> Vec<Requirement> {
            H::requirements()
        }
        assert_eq!(
            requirements(&handler),
            [Requirement::state::<Seen>(), Requirement::state::<Seen>()]
        );
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
