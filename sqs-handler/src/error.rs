//! Errors: configuration faults found by [`SqsConsumerBuilder::build`](crate::SqsConsumerBuilder::build),
//! and the marker for handler errors that must not be retried.

use std::fmt;

/// A boxed error, as handlers, hooks and layers report them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a consumer could not be built. Every variant names the queue, handler, type or
/// environment variable at fault and says what to do.
///
/// Its `Display` is meant for a person: print it and exit.
///
/// ```no_run
/// # async fn start(config: &aws_config::SdkConfig) {
/// let consumer = match sqs_handler::SqsConsumer::builder(config).build().await {
///     Ok(consumer) => consumer,
///     Err(e) => {
///         eprintln!("cannot start: {e}");
///         std::process::exit(1);
///     }
/// };
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A queue named by a handler or configuration does not exist.
    #[error(
        "queue {queue:?} does not exist ({}used by {used_by}): create it, or fix the name",
        declared.as_ref().map(|d| format!("declared as {d:?} and renamed by the builder's queue-name resolver; ")).unwrap_or_default()
    )]
    QueueNotFound {
        /// The queue name: the real one, after
        /// [`queue_prefix`](crate::SqsConsumerBuilder::queue_prefix) or
        /// [`resolve_queue_names`](crate::SqsConsumerBuilder::resolve_queue_names).
        queue: String,
        /// The name handlers and configuration declared, when the resolver changed it.
        declared: Option<String>,
        /// The handlers and hooks that name it.
        used_by: String,
    },
    /// An environment variable that names a queue is not set.
    #[error(
        "environment variable {var} is not set; {used_by} takes its queue name from it: set it to the queue's name"
    )]
    EnvVarMissing {
        /// The variable.
        var: String,
        /// The handler or hook that reads it.
        used_by: String,
    },
    /// A queue configured with `.queue(..)` has no message handler.
    #[error(
        "queue {queue:?} is configured but has no message handler: add #[sqs_message_handler(\"{queue}\")] or .handler(\"{queue}\", f)"
    )]
    NoHandler {
        /// The queue name.
        queue: String,
    },
    /// No message handler is registered, so the consumer would have nothing to poll.
    #[error(
        "no message handler is registered, so there is nothing to consume: if the #[sqs_message_handler] functions live in another crate, reference that crate from this binary (for example `use my_handlers as _;`), since a crate the binary never uses contributes no handlers; or register one with .handler(\"queue\", f)"
    )]
    NoHandlers,
    /// Two message handlers for one queue.
    #[error("queue {queue:?} has two message handlers, {first} and {second}: keep one")]
    DuplicateHandler {
        /// The queue name.
        queue: String,
        /// The first handler.
        first: String,
        /// The second handler.
        second: String,
    },
    /// Two message handlers for one message type on one queue.
    #[error(
        "queue {queue:?} has two handlers for message type {message_type:?}, {first} and {second}: keep one"
    )]
    DuplicateTypeHandler {
        /// The queue name.
        queue: String,
        /// The message type.
        message_type: String,
        /// The first handler.
        first: String,
        /// The second handler.
        second: String,
    },
    /// A handler or hook extracts `State<T>` but no `T` was given with `.state(..)`.
    #[error(
        "{handler} takes State<{type_name}> but no {type_name} was given: call .state(value) on the builder"
    )]
    MissingState {
        /// The handler or hook.
        handler: String,
        /// The state type.
        type_name: &'static str,
    },
    /// An option has a value SQS does not accept.
    #[error("queue {queue:?}: {message}")]
    InvalidOption {
        /// The queue name.
        queue: String,
        /// What is wrong and the allowed range.
        message: String,
    },
    /// An SQS call made while building failed (endpoint, credentials, permissions). The
    /// source is the SDK's error (`aws_sdk_sqs::error::SdkError<..>`), to match on.
    #[error(
        "{operation} for queue {queue:?} failed: {}; check AWS_ENDPOINT_URL_SQS, the region and the credentials",
        chain(&**source)
    )]
    Sqs {
        /// The SQS operation.
        operation: &'static str,
        /// The queue name.
        queue: String,
        /// What the SDK reported.
        #[source]
        source: BoxError,
    },
}

/// An error and its sources, joined with ": " (the SDK's own `Display` says only "service
/// error"; the detail is in the sources).
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

/// Wraps an error to say it must not be retried: the message is deleted, or forwarded to the
/// queue named by [`QueueOptions::forward_non_retryable_to`](crate::QueueOptions::forward_non_retryable_to).
///
/// ```
/// use sqs_handler::{BoxError, NonRetryable};
///
/// fn parse(input: &str) -> Result<u32, BoxError> {
///     input.parse().map_err(|e| NonRetryable::new(e).into())
/// }
/// assert!(parse("x").is_err());
/// ```
#[derive(Debug)]
pub struct NonRetryable(pub BoxError);

impl NonRetryable {
    /// Wraps an error.
    ///
    /// ```
    /// use sqs_handler::{BoxError, NonRetryable};
    ///
    /// let error: BoxError = NonRetryable::new("unknown product").into();
    /// assert!(NonRetryable::is_in(&*error));
    /// ```
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self(error.into())
    }

    /// True when `error`, or an error in its source chain, is a `NonRetryable`: so a
    /// `NonRetryable` wrapped in an error of yours (as its `#[source]`) still counts.
    ///
    /// ```
    /// use sqs_handler::NonRetryable;
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("import failed")]
    /// struct ImportError(#[source] NonRetryable);
    ///
    /// let error = ImportError(NonRetryable::new("bad CSV header"));
    /// assert!(NonRetryable::is_in(&error));
    /// ```
    pub fn is_in(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = current {
            if e.is::<NonRetryable>() {
                return true;
            }
            current = e.source();
        }
        false
    }
}

impl fmt::Display for NonRetryable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "non-retryable: {}", self.0)
    }
}

impl std::error::Error for NonRetryable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// A handler panicked; the panic was caught and the consumer went on. It is the error of the
/// `processing_error` event that follows.
///
/// ```
/// use sqs_handler::{FailureKind, HandlerPanicked, ProcessingError, sqs_consumer_event_handler};
///
/// #[sqs_consumer_event_handler("jobs", processing_error)]
/// async fn on_error(event: ProcessingError) {
///     if let Some(panic) = event.error.downcast_ref::<HandlerPanicked>() {
///         assert_eq!(event.kind, FailureKind::Panic);
///         eprintln!("handler bug: {}", panic.message);
///     }
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[error("handler panicked: {message}")]
pub struct HandlerPanicked {
    /// The panic payload, when it was a string.
    pub message: String,
}

/// An extractor could not build its value from the message (for example a body that is not
/// the JSON the handler takes). The message is not deleted.
///
/// It is what [custom extractors](crate::extract::FromMessage#implementing-an-extractor)
/// return, and the error of the `processing_error` event that follows
/// ([`FailureKind::Extract`](crate::FailureKind::Extract)).
///
/// ```
/// use sqs_handler::ExtractError;
///
/// let error = ExtractError::new("Tenant", "the message has no `tenant` attribute");
/// assert_eq!(error.to_string(), "cannot extract Tenant from message: the message has no `tenant` attribute");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("cannot extract {extractor} from message: {source}")]
pub struct ExtractError {
    /// The extractor's type.
    pub extractor: &'static str,
    /// Why.
    #[source]
    pub source: BoxError,
}

impl ExtractError {
    /// An extraction failure of `extractor`, with its cause (an error, or a message).
    ///
    /// ```
    /// let cause = "x".parse::<u32>().unwrap_err();
    /// let error = sqs_handler::ExtractError::new("OrderId", cause);
    /// ```
    pub fn new(extractor: &'static str, source: impl Into<BoxError>) -> Self {
        Self {
            extractor,
            source: source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_retryable_is_found_in_the_source_chain() {
        let inner: BoxError = NonRetryable::new("bad input").into();
        assert!(NonRetryable::is_in(&*inner));
        let outer = ExtractError::new("Json<T>", inner);
        assert!(NonRetryable::is_in(&outer));
        let plain = ExtractError::new("Json<T>", "other");
        assert!(!NonRetryable::is_in(&plain));
    }
}
