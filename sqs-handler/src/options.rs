//! Per-queue options and the retry policy.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;

use crate::CircuitBreaker;
use crate::error::BoxError;
use crate::events::MessageAction;
use crate::routing::MessageTypeKey;

/// What happens to a message whose handler failed (returned an error, panicked, could not
/// extract its arguments, or timed out).
///
/// Each receive of a message counts toward the queue's redrive policy: after
/// `maxReceiveCount` receives SQS moves it to the dead-letter queue, whatever the policy. Errors
/// that retrying cannot fix skip the retries: see [`NonRetryable`](crate::NonRetryable). See
/// [Retries](crate::guide::consumer#retries).
///
/// ```
/// use std::time::Duration;
/// use sqs_handler::{QueueOptions, RetryPolicy};
///
/// // About 5 s after the first failure, then 10 s, 20 s, ... at most 10 minutes (each
/// // between half and all of that, at random, so that a burst is not retried in lockstep).
/// let backoff = RetryPolicy::ExponentialBackoff {
///     initial: Duration::from_secs(5),
///     max: Duration::from_secs(600),
/// };
/// let options = QueueOptions::default().retry(backoff);
///
/// // A fixed delay (sqs-consumer's `terminateVisibilityTimeout: 30`).
/// let fixed = RetryPolicy::Fixed(Duration::from_secs(30));
/// assert_eq!(fixed.delay_for(4), Some(Duration::from_secs(30)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RetryPolicy {
    /// Leave it in flight: SQS redelivers it when its visibility timeout ends (the default,
    /// and what the queue's RedrivePolicy counts).
    #[default]
    LeaveUntilVisibilityTimeout,
    /// Make it visible again at once.
    ReleaseImmediately,
    /// Make it visible again after this delay, whole seconds (ChangeMessageVisibility), every
    /// time.
    Fixed(Duration),
    /// Make it visible again after `d = initial * 2^(receive count - 1)`, at most `max` (SQS caps
    /// it at 12 hours), with jitter: a whole number of seconds picked at random between `d / 2`
    /// and `d`, so that messages that failed together (an outage) are not retried together.
    ExponentialBackoff {
        /// The delay after the first receive.
        initial: Duration,
        /// The longest delay.
        max: Duration,
    },
}

impl RetryPolicy {
    /// The visibility to set for a message received `receive_count` times; `None` leaves it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sqs_handler::RetryPolicy;
    ///
    /// let policy = RetryPolicy::ExponentialBackoff {
    ///     initial: Duration::from_secs(2),
    ///     max: Duration::from_secs(30),
    /// };
    /// // 2 s, 4 s, 8 s, 16 s, then 30 s at most, each between half and all of that.
    /// for (n, d) in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 30), (6, 30)] {
    ///     let delay = policy.delay_for(n).unwrap().as_secs();
    ///     assert!((d / 2..=d).contains(&delay));
    /// }
    /// assert_eq!(RetryPolicy::ReleaseImmediately.delay_for(3), Some(Duration::ZERO));
    /// assert_eq!(RetryPolicy::LeaveUntilVisibilityTimeout.delay_for(3), None);
    /// ```
    pub fn delay_for(&self, receive_count: u32) -> Option<Duration> {
        match self {
            RetryPolicy::LeaveUntilVisibilityTimeout => None,
            RetryPolicy::ReleaseImmediately => Some(Duration::ZERO),
            RetryPolicy::Fixed(delay) => Some((*delay).min(MAX_VISIBILITY)),
            RetryPolicy::ExponentialBackoff { initial, max } => {
                let exp = receive_count.saturating_sub(1).min(31);
                let delay = initial.saturating_mul(1u32 << exp);
                let secs = delay.min(*max).min(MAX_VISIBILITY).as_secs();
                // Equal jitter in whole seconds: half the delay, plus up to the other half.
                Some(Duration::from_secs(
                    secs / 2 + fastrand::u64(0..=secs - secs / 2),
                ))
            }
        }
    }
}

/// When the consumer deletes a message; see [`QueueOptions::ack_mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AckMode {
    /// Delete on success; a failure follows the retry policy (the default).
    #[default]
    OnSuccess,
    /// Delete whatever the outcome, failures too, after their hooks ran (sqs-consumer's
    /// `alwaysAcknowledge`). Nothing is retried.
    Always,
    /// Never delete on success: the handler deletes with an
    /// [`Acknowledgement`](crate::Acknowledgement), and a message it did not delete comes back
    /// after its visibility timeout (Spring Cloud AWS's MANUAL, sqs-consumer's
    /// `shouldDeleteMessages: false`). Failures follow the retry policy.
    Manual,
}

/// SQS's longest visibility timeout.
pub(crate) const MAX_VISIBILITY: Duration = Duration::from_secs(43_200);

/// Decides whether an error is non-retryable, beside [`NonRetryable`](crate::NonRetryable).
pub type NonRetryablePredicate = Arc<dyn Fn(&BoxError) -> bool + Send + Sync>;

/// How one queue is consumed.
///
/// Give it to [`SqsConsumerBuilder::queue`](crate::SqsConsumerBuilder::queue); a queue without
/// options is consumed with the defaults. What each option changes is described in [How the
/// consumer works](crate::guide::consumer).
///
/// | option | default | |
/// |---|---|---|
/// | [`concurrency`](Self::concurrency) | 10 | messages handled at once |
/// | [`prefetch`](Self::prefetch) | 0 | messages received ahead of free capacity |
/// | [`handler_timeout`](Self::handler_timeout) | none | cancels a handler that runs longer |
/// | [`retry`](Self::retry) | [`RetryPolicy::LeaveUntilVisibilityTimeout`] | what happens to a failed message |
/// | [`non_retryable_if`](Self::non_retryable_if) | none | more errors that are not retried |
/// | [`forward_non_retryable_to`](Self::forward_non_retryable_to) | none (deleted) | where non-retryable messages go |
/// | [`heartbeat`](Self::heartbeat) | on | keeps long-running messages invisible |
/// | [`visibility_timeout`](Self::visibility_timeout) | the queue's attribute | the visibility timeout the heartbeat works with |
/// | [`wait_time`](Self::wait_time) | 20 s | long-poll wait of each receive |
/// | [`max_messages_per_receive`](Self::max_messages_per_receive) | 10 | messages per receive (and per batch) |
/// | [`ack_flush_interval`](Self::ack_flush_interval) | 10 ms | how long a delete waits to join a batch |
/// | [`system_attributes`](Self::system_attributes) | what the extractors read | system attributes received |
/// | [`circuit_breaker`](Self::circuit_breaker) | off | stops receiving while most messages fail |
/// | [`queue_url`](Self::queue_url) | looked up by name | the queue's URL |
///
/// Values out of range are reported by [`build`](crate::SqsConsumerBuilder::build) as
/// [`BuildError::InvalidOption`](crate::BuildError::InvalidOption).
///
/// ```
/// use std::time::Duration;
/// use sqs_handler::{QueueOptions, RetryPolicy};
///
/// let options = QueueOptions::default()
///     .concurrency(64)
///     .handler_timeout(Duration::from_secs(60))
///     .retry(RetryPolicy::ExponentialBackoff {
///         initial: Duration::from_secs(2),
///         max: Duration::from_secs(300),
///     });
/// ```
#[derive(Clone)]
pub struct QueueOptions {
    pub(crate) concurrency: usize,
    pub(crate) prefetch: usize,
    pub(crate) handler_timeout: Option<Duration>,
    pub(crate) wait_time: Duration,
    pub(crate) max_messages: i32,
    pub(crate) visibility_timeout: Option<Duration>,
    pub(crate) heartbeat: bool,
    pub(crate) retry: RetryPolicy,
    pub(crate) forward_non_retryable_to: Option<String>,
    pub(crate) non_retryable_if: Option<NonRetryablePredicate>,
    pub(crate) queue_url: Option<String>,
    pub(crate) ack_flush_interval: Duration,
    pub(crate) system_attributes: Vec<MessageSystemAttributeName>,
    pub(crate) circuit_breaker: Option<CircuitBreaker>,
    pub(crate) ack_mode: AckMode,
    pub(crate) message_type_key: MessageTypeKey,
    #[cfg(feature = "opentelemetry")]
    pub(crate) trace_parent: bool,
}

/// The system attributes received by default: what the extractors, retry backoff and FIFO
/// ordering read. Asking for fewer keeps every ReceiveMessage response smaller.
pub(crate) fn default_system_attributes() -> Vec<MessageSystemAttributeName> {
    use MessageSystemAttributeName as A;
    vec![
        A::ApproximateReceiveCount,
        A::SentTimestamp,
        A::MessageGroupId,
        A::MessageDeduplicationId,
        A::SequenceNumber,
        A::AwsTraceHeader,
    ]
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            concurrency: 10,
            prefetch: 0,
            handler_timeout: None,
            wait_time: Duration::from_secs(20),
            max_messages: 10,
            visibility_timeout: None,
            heartbeat: true,
            retry: RetryPolicy::default(),
            forward_non_retryable_to: None,
            non_retryable_if: None,
            queue_url: None,
            ack_flush_interval: Duration::from_millis(10),
            system_attributes: default_system_attributes(),
            circuit_breaker: None,
            ack_mode: AckMode::OnSuccess,
            message_type_key: MessageTypeKey::default(),
            #[cfg(feature = "opentelemetry")]
            trace_parent: false,
        }
    }
}

impl fmt::Debug for QueueOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueOptions")
            .field("concurrency", &self.concurrency)
            .field("prefetch", &self.prefetch)
            .field("handler_timeout", &self.handler_timeout)
            .field("wait_time", &self.wait_time)
            .field("max_messages", &self.max_messages)
            .field("visibility_timeout", &self.visibility_timeout)
            .field("heartbeat", &self.heartbeat)
            .field("retry", &self.retry)
            .field("forward_non_retryable_to", &self.forward_non_retryable_to)
            .field("non_retryable_if", &self.non_retryable_if.is_some())
            .field("queue_url", &self.queue_url)
            .field("ack_flush_interval", &self.ack_flush_interval)
            .field("system_attributes", &self.system_attributes)
            .field("circuit_breaker", &self.circuit_breaker)
            .field("ack_mode", &self.ack_mode)
            .field("message_type_key", &self.message_type_key)
            .finish()
    }
}

impl QueueOptions {
    /// How many messages are handled at once (default 10, 1 to 100 000). The consumer never
    /// holds more received messages than this (plus the [`prefetch`](Self::prefetch)), and
    /// receives again as soon as there is room. Above 10, several receives run in parallel.
    ///
    /// ```
    /// // I/O-bound handlers: many at once.
    /// let options = sqs_handler::QueueOptions::default().concurrency(256);
    /// ```
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Receives up to `n` messages ahead of free handler capacity (default 0, at most the
    /// concurrency), so that a handler that ends finds the next message already received.
    ///
    /// Without prefetch a freed slot waits one ReceiveMessage round trip (10 to 30 ms against
    /// SQS) before it holds a message again; with I/O-bound handlers of 100 ms that is 10 to
    /// 20% of the throughput. A prefetched message is invisible while
    /// it waits, and the heartbeat extends its visibility like a running handler's (with
    /// prefetch the heartbeat runs even when a short handler timeout would make it unneeded;
    /// with [`heartbeat(false)`](Self::heartbeat) a message that waits longer than the
    /// visibility timeout is delivered again); its handler timeout starts when it starts.
    /// At shutdown, messages still waiting are released without being started. A batch
    /// handler is never given more messages at once than the concurrency (in a worker; a Lambda
    /// function hands it the whole event).
    /// The cost: up to `concurrency + n` messages are held, and on FIFO queues a waiting
    /// message's group waits with it. A Lambda function receives nothing itself (Lambda polls),
    /// so prefetch does not apply there. About the receive latency times the rate (messages per
    /// second) is enough: 500 handlers of 100 ms each, against an endpoint that answers a
    /// receive in 10 to 20 ms, ran at 95% of their 5,000 messages per second with 100, and at
    /// 83% without (the `io` scenario of the repository's BENCHMARKS.md).
    ///
    /// ```
    /// // 500 handlers of about 100 ms each; 100 more messages ready for them.
    /// let options = sqs_handler::QueueOptions::default().concurrency(500).prefetch(100);
    /// ```
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = n;
        self
    }

    /// Cancels a handler that runs longer: its future is dropped, `timeout_error` fires, and
    /// the retry policy applies. No timeout by default.
    ///
    /// Dropping the future stops the work at its next `.await`; code that blocks the thread is
    /// not interrupted. For a batch handler, the timeout covers the whole batch.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let options = sqs_handler::QueueOptions::default().handler_timeout(Duration::from_secs(30));
    /// ```
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.handler_timeout = Some(timeout);
        self
    }

    /// Long-poll wait per receive, 0 to 20 seconds (default 20).
    ///
    /// Shutdown lets a receive in flight run to its end rather than cut it (SQS would keep an
    /// abandoned poll open and take the messages shutdown releases), so this bounds how long
    /// shutdown waits for receives: a shorter wait gives a shorter shutdown, at the cost of
    /// more empty receives on an idle queue (60 / wait per minute per queue).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let options = sqs_handler::QueueOptions::default().wait_time(Duration::from_secs(5));
    /// ```
    pub fn wait_time(mut self, wait: Duration) -> Self {
        self.wait_time = wait;
        self
    }

    /// At most this many messages per receive, 1 to 10 (default 10); for a batch handler, the
    /// largest batch.
    ///
    /// ```
    /// // Batches of at most 5 messages.
    /// let options = sqs_handler::QueueOptions::default().max_messages_per_receive(5);
    /// ```
    pub fn max_messages_per_receive(mut self, n: i32) -> Self {
        self.max_messages = n;
        self
    }

    /// The visibility timeout of received messages, sent with every `ReceiveMessage` and kept
    /// by the heartbeat. By default the queue's `VisibilityTimeout` attribute, read when the
    /// consumer is built, applies.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let options = sqs_handler::QueueOptions::default().visibility_timeout(Duration::from_secs(30));
    /// ```
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = Some(timeout);
        self
    }

    /// Turns the visibility heartbeat on or off (on by default): while a handler runs past half
    /// the visibility timeout, its message's visibility is extended, and so is a waiting
    /// message's (a FIFO group's later messages, prefetched ones). Off, a message that runs or
    /// waits longer than the visibility timeout is received again. See [Visibility
    /// heartbeat](crate::guide::consumer#visibility-heartbeat).
    ///
    /// ```
    /// // Handlers that can take longer than the visibility timeout should be redelivered.
    /// let options = sqs_handler::QueueOptions::default().heartbeat(false);
    /// ```
    pub fn heartbeat(mut self, on: bool) -> Self {
        self.heartbeat = on;
        self
    }

    /// What happens to a failed message (default: left for redelivery).
    ///
    /// ```
    /// use sqs_handler::{QueueOptions, RetryPolicy};
    ///
    /// let options = QueueOptions::default().retry(RetryPolicy::ReleaseImmediately);
    /// ```
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sends messages whose handler failed with a non-retryable error to this queue (by name),
    /// then deletes them. Without it they are deleted.
    ///
    /// The body and message attributes are copied; to a FIFO queue, with the message's group
    /// id and its message id as deduplication id. When the send fails, the message is left for
    /// redelivery and `error` fires. The queue must exist when the consumer is built.
    ///
    /// ```
    /// let options = sqs_handler::QueueOptions::default().forward_non_retryable_to("jobs-rejected");
    /// ```
    pub fn forward_non_retryable_to(mut self, queue: impl Into<String>) -> Self {
        self.forward_non_retryable_to = Some(queue.into());
        self
    }

    /// Treats errors for which `predicate` is true as non-retryable, beside
    /// [`NonRetryable`](crate::NonRetryable).
    ///
    /// ```
    /// use sqs_handler::{ExtractError, QueueOptions};
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("unknown customer")]
    /// struct UnknownCustomer;
    ///
    /// // Messages that do not decode, or name an unknown customer, are not retried.
    /// let options = QueueOptions::default()
    ///     .non_retryable_if(|e| e.is::<ExtractError>() || e.is::<UnknownCustomer>());
    /// ```
    pub fn non_retryable_if(
        mut self,
        predicate: impl Fn(&BoxError) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.non_retryable_if = Some(Arc::new(predicate));
        self
    }

    /// Uses this queue URL instead of resolving it with GetQueueUrl: for a queue of another
    /// account, or a name of your own for the queue (as nestjs-sqs's `name` and `queueUrl`).
    /// FIFO order is applied when the *name* ends in `.fifo`.
    ///
    /// ```
    /// let options = sqs_handler::QueueOptions::default()
    ///     .queue_url("https://sqs.eu-west-1.amazonaws.com/123456789012/jobs");
    /// ```
    pub fn queue_url(mut self, url: impl Into<String>) -> Self {
        self.queue_url = Some(url.into());
        self
    }

    /// How long a successful message's delete may wait to share a DeleteMessageBatch with
    /// others (default 10 ms, at most 60 s; a batch of 10 is sent at once).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // A slow trickle of messages: wait longer to batch their deletes.
    /// let options = sqs_handler::QueueOptions::default().ack_flush_interval(Duration::from_millis(200));
    /// ```
    pub fn ack_flush_interval(mut self, interval: Duration) -> Self {
        self.ack_flush_interval = interval;
        self
    }

    /// The system attributes to receive with each message. The default covers the extractors
    /// (receive count, sent timestamp, group id) plus deduplication id, sequence number and
    /// trace header; pass `[MessageSystemAttributeName::All]` for everything.
    ///
    /// ```
    /// use sqs_handler::QueueOptions;
    /// use sqs_handler::aws_sdk_sqs::types::MessageSystemAttributeName;
    ///
    /// let options = QueueOptions::default().system_attributes([
    ///     MessageSystemAttributeName::ApproximateReceiveCount,
    ///     MessageSystemAttributeName::SenderId,
    /// ]);
    /// ```
    pub fn system_attributes(
        mut self,
        names: impl IntoIterator<Item = MessageSystemAttributeName>,
    ) -> Self {
        self.system_attributes = names.into_iter().collect();
        self
    }

    /// Stops receiving while most recent messages fail, so that an outage of a dependency
    /// costs no receive counts and dead-letters nothing; off by default. See [`CircuitBreaker`].
    ///
    /// ```
    /// use sqs_handler::{CircuitBreaker, QueueOptions};
    ///
    /// let options = QueueOptions::default().circuit_breaker(CircuitBreaker::default());
    /// ```
    pub fn circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.circuit_breaker = Some(breaker);
        self
    }

    /// When messages are deleted: on success (the default), always, or only by the handler
    /// through an [`Acknowledgement`](crate::Acknowledgement). See [`AckMode`].
    ///
    /// ```
    /// use sqs_handler::{AckMode, QueueOptions};
    ///
    /// let options = QueueOptions::default().ack_mode(AckMode::Manual);
    /// ```
    pub fn ack_mode(mut self, mode: AckMode) -> Self {
        self.ack_mode = mode;
        self
    }

    /// Where a message's type is read when the queue's handlers declare message types
    /// (`#[sqs_message_handler("events", message_type = "OrderPlaced")]`, or
    /// [`SqsConsumerBuilder::typed_handler`](crate::SqsConsumerBuilder::typed_handler)). The
    /// default is the `MessageType` string attribute, which
    /// [`OutgoingMessage::message_type`](crate::OutgoingMessage::message_type) sets. Ignored on
    /// a queue whose handler declares no type.
    ///
    /// ```
    /// use sqs_handler::{MessageTypeKey, QueueOptions};
    ///
    /// // CloudEvents-style bodies: {"type": "OrderPlaced", "data": {...}}
    /// let options = QueueOptions::default().message_type_key(MessageTypeKey::json_field("/type"));
    /// # let _ = options;
    /// ```
    pub fn message_type_key(mut self, key: MessageTypeKey) -> Self {
        self.message_type_key = key;
        self
    }

    /// Whether each message's process span takes the trace context the message carries (its
    /// `traceparent` attribute, or `AWSTraceHeader`) as its parent (feature `opentelemetry`).
    /// Off by default: the span *links* to that context, as the OpenTelemetry messaging
    /// conventions recommend, and stays in the consumer's own trace. On, the producer's trace
    /// continues into the handler (one trace from the HTTP request to the worker), and the link
    /// is kept.
    ///
    /// ```
    /// let options = sqs_handler::QueueOptions::default().trace_parent(true);
    /// # let _ = options;
    /// ```
    #[cfg(feature = "opentelemetry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
    pub fn trace_parent(mut self, on: bool) -> Self {
        self.trace_parent = on;
        self
    }

    /// Whether `error` is non-retryable: a [`NonRetryable`](crate::NonRetryable) in its chain,
    /// or what [`non_retryable_if`](Self::non_retryable_if) says.
    pub(crate) fn is_non_retryable(&self, error: &BoxError) -> bool {
        crate::NonRetryable::is_in(&**error)
            || self.non_retryable_if.as_ref().is_some_and(|p| p(error))
    }

    /// What the retry policy does with a retryable failure at this receive count.
    pub(crate) fn retry_action(&self, receive_count: u32) -> MessageAction {
        match self.retry.delay_for(receive_count) {
            None => MessageAction::LeftForRedelivery,
            Some(d) => MessageAction::Released(d),
        }
    }

    /// A failure's action under the ack mode: [`AckMode::Always`] deletes what would be retried.
    pub(crate) fn acknowledged(&self, action: MessageAction) -> MessageAction {
        match (self.ack_mode, action) {
            (AckMode::Always, MessageAction::LeftForRedelivery | MessageAction::Released(_)) => {
                MessageAction::Deleted
            }
            (_, action) => action,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        self.message_type_key.validate()?;
        if let Some(b) = &self.circuit_breaker {
            b.validate()?;
        }
        if !(1..=100_000).contains(&self.concurrency) {
            return Err(format!(
                "concurrency must be 1 to 100000, got {}",
                self.concurrency
            ));
        }
        if self.prefetch > self.concurrency {
            return Err(format!(
                "prefetch must be at most the concurrency ({}), got {}",
                self.concurrency, self.prefetch
            ));
        }
        if self.wait_time > Duration::from_secs(20) {
            return Err(format!(
                "wait_time must be at most 20 s, got {:?}",
                self.wait_time
            ));
        }
        if !(1..=10).contains(&self.max_messages) {
            return Err(format!(
                "max_messages_per_receive must be 1 to 10, got {}",
                self.max_messages
            ));
        }
        match &self.retry {
            RetryPolicy::Fixed(d) if *d > MAX_VISIBILITY || d.subsec_nanos() != 0 => {
                return Err(format!(
                    "retry Fixed delay must be whole seconds up to 12 hours, got {d:?}"
                ));
            }
            RetryPolicy::ExponentialBackoff { initial, max }
                if *max > MAX_VISIBILITY || initial.is_zero() || initial > max =>
            {
                return Err(format!(
                    "retry ExponentialBackoff needs 0 < initial <= max <= 12 hours, got initial {initial:?}, max {max:?}"
                ));
            }
            _ => {}
        }
        if self.ack_flush_interval > Duration::from_secs(60) {
            return Err(format!(
                "ack_flush_interval must be at most 60 s, got {:?}",
                self.ack_flush_interval
            ));
        }
        if self.handler_timeout.is_some_and(|t| t.is_zero()) {
            return Err("handler_timeout must be more than zero".to_owned());
        }
        if self.visibility_timeout.is_some_and(|t| t > MAX_VISIBILITY) {
            return Err("visibility_timeout must be at most 12 hours".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_receive_and_caps() {
        let p = RetryPolicy::ExponentialBackoff {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(30),
        };
        for (n, d) in [
            (1, 2),
            (2, 4),
            (3, 8),
            (4, 16),
            (5, 30),
            (6, 30),
            (10_000, 30),
        ] {
            let seen: std::collections::BTreeSet<u64> = (0..400)
                .map(|_| p.delay_for(n).unwrap().as_secs())
                .collect();
            // Every whole second from half the delay to all of it, and nothing else.
            assert_eq!(seen, (d / 2..=d).collect(), "receive count {n}");
        }
        assert_eq!(
            RetryPolicy::Fixed(Duration::from_secs(30)).delay_for(7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(RetryPolicy::default().delay_for(3), None);
        assert_eq!(
            RetryPolicy::ReleaseImmediately.delay_for(3),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn options_are_validated() {
        assert!(QueueOptions::default().validate().is_ok());
        assert!(QueueOptions::default().concurrency(0).validate().is_err());
        assert!(QueueOptions::default().prefetch(10).validate().is_ok());
        let too_many = QueueOptions::default().prefetch(11).validate().unwrap_err();
        assert_eq!(
            too_many,
            "prefetch must be at most the concurrency (10), got 11"
        );
        assert!(
            QueueOptions::default()
                .wait_time(Duration::from_secs(21))
                .validate()
                .is_err()
        );
        assert!(
            QueueOptions::default()
                .max_messages_per_receive(11)
                .validate()
                .is_err()
        );
        assert!(
            QueueOptions::default()
                .retry(RetryPolicy::Fixed(Duration::from_millis(1500)))
                .validate()
                .is_err()
        );
        assert!(
            QueueOptions::default()
                .retry(RetryPolicy::ExponentialBackoff {
                    initial: Duration::from_secs(2),
                    max: Duration::from_secs(86_400),
                })
                .validate()
                .is_err()
        );
        // Once an overflow in the ack batcher's deadline, which stopped every acknowledgement.
        assert!(
            QueueOptions::default()
                .ack_flush_interval(Duration::MAX)
                .validate()
                .is_err()
        );
    }
}
