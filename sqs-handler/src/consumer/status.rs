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
}

/// A snapshot of one queue's consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStatus {
    /// The queue.
    pub queue: String,
    /// True while it polls.
    pub running: bool,
    /// Messages being handled now.
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
}

/// Reads the status of a consumer's queues; cheap to clone, usable after the consumer starts.
#[derive(Debug, Clone, Default)]
pub struct StatusHandle {
    pub(crate) queues: Arc<Vec<(String, Arc<Counters>)>>,
}

impl StatusHandle {
    /// One snapshot per queue.
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
            })
            .collect()
    }

    /// The snapshot of one queue.
    pub fn queue(&self, name: &str) -> Option<QueueStatus> {
        self.snapshot().into_iter().find(|s| s.queue == name)
    }
}
