//! Live counters per queue, for health checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::breaker::{Breaker, CircuitState};

/// Counters one queue's consumer updates.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) running: AtomicBool,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) received: AtomicU64,
    pub(crate) processed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) deleted: AtomicU64,
    /// The circuit breaker, when the queue has one.
    pub(crate) breaker: std::sync::OnceLock<Arc<Breaker>>,
    /// Set by [`ConsumerControl::pause`]: the pollers wait before their next receive.
    pub(crate) paused: AtomicBool,
    /// Wakes paused pollers.
    pub(crate) resumed: tokio::sync::Notify,
    /// Stops this queue's consumer ([`ConsumerControl::stop`], or the whole consumer's
    /// shutdown).
    pub(crate) stop: tokio_util::sync::CancellationToken,
}

impl Counters {
    /// Waits while the queue is paused; false when it is stopped first.
    pub(crate) async fn wait_while_paused(&self) -> bool {
        loop {
            let resumed = self.resumed.notified();
            tokio::pin!(resumed);
            resumed.as_mut().enable();
            if self.stop.is_cancelled() {
                return false;
            }
            if !self.paused.load(Ordering::SeqCst) {
                return true;
            }
            tokio::select! {
                _ = self.stop.cancelled() => return false,
                _ = resumed => {}
            }
        }
    }
}

/// A snapshot of one queue's consumer, from [`StatusHandle`]. The counters count from the
/// start of the consumer.
///
/// ```
/// use sqs_handler::{CircuitState, QueueStatus};
///
/// /// Ready while polling with a closed circuit.
/// fn ready(status: &QueueStatus) -> bool {
///     status.running && status.circuit == CircuitState::Closed
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStatus {
    /// The queue.
    pub queue: String,
    /// True while it polls.
    pub running: bool,
    /// Messages received and not yet settled: being handled, or prefetched and waiting for a
    /// handler slot (a FIFO group's messages waiting for their turn are counted once they
    /// start).
    pub in_flight: usize,
    /// Messages received so far.
    pub received: u64,
    /// Messages handled successfully.
    pub processed: u64,
    /// Messages whose handling failed or timed out.
    pub failed: u64,
    /// Deletes SQS has confirmed.
    pub deleted: u64,
    /// The circuit breaker's state ([`CircuitState::Closed`] when there is none).
    pub circuit: CircuitState,
    /// True while paused with [`ConsumerControl::pause`].
    pub paused: bool,
}

/// Reads the status of a consumer's queues; cheap to clone, usable after the consumer starts.
///
/// Take it with [`SqsConsumer::status`](crate::SqsConsumer::status) before running the
/// consumer; serve it from a health check, or log it.
///
/// ```
/// use std::time::Duration;
/// use sqs_handler::{Producer, QueueOptions, SqsConsumer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = sqs_local::LocalSqs::builder().queue("jobs").start().await?;
/// let config = server.sdk_config();
/// Producer::new(&config).send_json("jobs", &[1, 2, 3]).await?;
///
/// let consumer = SqsConsumer::builder(&config)
///     .discover(false)
///     .queue("jobs", QueueOptions::default().wait_time(Duration::from_secs(1)))
///     .handler("jobs", || async {})
///     .build()
///     .await?;
/// let status = consumer.status();
/// let watcher = status.clone();
/// consumer
///     .run_until(async move {
///         while watcher.queue("jobs").is_none_or(|q| q.processed < 1) {
///             tokio::time::sleep(Duration::from_millis(10)).await;
///         }
///     })
///     .await?;
///
/// let jobs = status.queue("jobs").unwrap();
/// assert_eq!((jobs.received, jobs.processed, jobs.deleted), (1, 1, 1));
/// assert!(!jobs.running);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct StatusHandle {
    pub(crate) queues: Arc<Vec<(String, Arc<Counters>)>>,
}

impl StatusHandle {
    /// One snapshot per queue.
    ///
    /// ```
    /// # fn log(status: &sqs_handler::StatusHandle) {
    /// for queue in status.snapshot() {
    ///     println!("{}: {} in flight, {} failed", queue.queue, queue.in_flight, queue.failed);
    /// }
    /// # }
    /// ```
    pub fn snapshot(&self) -> Vec<QueueStatus> {
        self.queues
            .iter()
            .map(|(queue, c)| QueueStatus {
                queue: queue.clone(),
                running: c.running.load(Ordering::Relaxed),
                in_flight: c.in_flight.load(Ordering::Relaxed),
                received: c.received.load(Ordering::Relaxed),
                processed: c.processed.load(Ordering::Relaxed),
                failed: c.failed.load(Ordering::Relaxed),
                deleted: c.deleted.load(Ordering::Relaxed),
                circuit: c.breaker.get().map(|b| b.state()).unwrap_or_default(),
                paused: c.paused.load(Ordering::SeqCst),
            })
            .collect()
    }

    /// The snapshot of one queue.
    ///
    /// ```
    /// # fn check(status: &sqs_handler::StatusHandle) {
    /// let healthy = status.queue("jobs").is_some_and(|q| q.running);
    /// # }
    /// ```
    pub fn queue(&self, name: &str) -> Option<QueueStatus> {
        self.snapshot().into_iter().find(|s| s.queue == name)
    }
}

/// Pauses, resumes and stops one queue's consumer while the others run; cheap to clone, taken
/// with [`SqsConsumer::control`](crate::SqsConsumer::control) before running.
///
/// - [`pause`](Self::pause): no new receive starts; a receive in flight finishes and its
///   messages are handled, as are the messages already held. Nothing is released.
/// - [`resume`](Self::resume): receiving starts again.
/// - [`stop`](Self::stop): that queue's consumer shuts down as the whole consumer does at
///   shutdown (see [`SqsConsumer::run_until`](crate::SqsConsumer::run_until)) and fires
///   `stopped`; the others go on. `run_until` returns when its signal fires or every queue
///   has stopped.
///
/// ```no_run
/// # async fn run(consumer: sqs_handler::SqsConsumer) -> Result<(), Box<dyn std::error::Error>> {
/// let control = consumer.control();
/// tokio::spawn(async move {
///     // For example from an admin endpoint: stop taking reports during a migration.
///     control.pause("reports")?;
///     tokio::time::sleep(std::time::Duration::from_secs(60)).await;
///     control.resume("reports")
/// });
/// consumer.run().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConsumerControl {
    pub(crate) queues: Arc<Vec<(String, Arc<Counters>)>>,
}

/// [`ConsumerControl`] was given a queue this consumer does not consume.
#[derive(Debug, thiserror::Error)]
#[error("queue {queue:?} is not consumed here; the consumer's queues are {known:?}")]
pub struct UnknownQueue {
    /// The name given.
    pub queue: String,
    /// The queues the consumer has.
    pub known: Vec<String>,
}

impl ConsumerControl {
    fn get(&self, queue: &str) -> Result<&Counters, UnknownQueue> {
        self.queues
            .iter()
            .find(|(q, _)| q == queue)
            .map(|(_, c)| &**c)
            .ok_or_else(|| UnknownQueue {
                queue: queue.to_owned(),
                known: self.queues.iter().map(|(q, _)| q.clone()).collect(),
            })
    }

    /// Stops starting receives for `queue` until [`resume`](Self::resume).
    ///
    /// # Errors
    /// When the consumer has no such queue.
    pub fn pause(&self, queue: &str) -> Result<(), UnknownQueue> {
        let c = self.get(queue)?;
        if !c.paused.swap(true, Ordering::SeqCst) {
            tracing::info!(queue, "consumer paused");
        }
        Ok(())
    }

    /// Starts receiving again.
    ///
    /// # Errors
    /// When the consumer has no such queue.
    pub fn resume(&self, queue: &str) -> Result<(), UnknownQueue> {
        let c = self.get(queue)?;
        if c.paused.swap(false, Ordering::SeqCst) {
            tracing::info!(queue, "consumer resumed");
        }
        c.resumed.notify_waiters();
        Ok(())
    }

    /// Shuts `queue`'s consumer down for good; the other queues go on.
    ///
    /// # Errors
    /// When the consumer has no such queue.
    pub fn stop(&self, queue: &str) -> Result<(), UnknownQueue> {
        self.get(queue)?.stop.cancel();
        Ok(())
    }
}
