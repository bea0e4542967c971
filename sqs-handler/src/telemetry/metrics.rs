//! Metrics through the `metrics` facade (feature `metrics`): the application installs a
//! recorder (Prometheus, StatsD, OpenTelemetry...), and without one every call is a no-op.
//! Handles are registered once per queue, so the hot path does no label lookups.

use std::time::{Duration, SystemTime};

use metrics::{Counter, Gauge, Histogram};

use super::FailureClass;
use crate::events::MessageAction;
use crate::message::SqsMessage;

/// One queue's metric handles, labelled `queue`.
#[derive(Debug)]
pub(super) struct QueueMetrics {
    received: Counter,
    processed: Counter,
    failed: [Counter; 4],
    deleted: Counter,
    released: Counter,
    forwarded: Counter,
    dead_letter_bound: Counter,
    empty_receives: Counter,
    handler_duration: Histogram,
    message_age: Histogram,
    in_flight: Gauge,
    circuit: Gauge,
}

const CLASSES: [FailureClass; 4] = [
    FailureClass::Error,
    FailureClass::Panic,
    FailureClass::Timeout,
    FailureClass::Decode,
];

impl QueueMetrics {
    pub(super) fn new(queue: &str) -> Self {
        let q = queue.to_owned();
        let failed = CLASSES.map(|c| {
            metrics::counter!("sqs_handler_messages_failed_total", "queue" => q.clone(), "kind" => c.label())
        });
        Self {
            received: metrics::counter!("sqs_handler_messages_received_total", "queue" => q.clone()),
            processed: metrics::counter!("sqs_handler_messages_processed_total", "queue" => q.clone()),
            failed,
            deleted: metrics::counter!("sqs_handler_messages_deleted_total", "queue" => q.clone()),
            released: metrics::counter!("sqs_handler_messages_released_total", "queue" => q.clone()),
            forwarded: metrics::counter!("sqs_handler_messages_forwarded_total", "queue" => q.clone()),
            dead_letter_bound: metrics::counter!("sqs_handler_messages_dead_letter_bound_total", "queue" => q.clone()),
            empty_receives: metrics::counter!("sqs_handler_empty_receives_total", "queue" => q.clone()),
            handler_duration: metrics::histogram!("sqs_handler_handler_duration_seconds", "queue" => q.clone()),
            message_age: metrics::histogram!("sqs_handler_message_age_seconds", "queue" => q.clone()),
            in_flight: metrics::gauge!("sqs_handler_messages_in_flight", "queue" => q.clone()),
            circuit: metrics::gauge!("sqs_handler_circuit_state", "queue" => q),
        }
    }

    pub(super) fn received(&self, message: &SqsMessage) {
        self.received.increment(1);
        if let Some(age) = message
            .sent_timestamp()
            .and_then(|sent| SystemTime::now().duration_since(sent).ok())
        {
            self.message_age.record(age.as_secs_f64());
        }
    }

    pub(super) fn in_flight(&self, delta: i64) {
        if delta >= 0 {
            self.in_flight.increment(delta as f64);
        } else {
            self.in_flight.decrement(delta.unsigned_abs() as f64);
        }
    }

    pub(super) fn handler_time(&self, took: Duration) {
        self.handler_duration.record(took.as_secs_f64());
    }

    pub(super) fn processed(&self) {
        self.processed.increment(1);
    }

    pub(super) fn failed(&self, class: FailureClass) {
        let i = CLASSES.iter().position(|c| *c == class).unwrap_or(0);
        self.failed[i].increment(1);
    }

    pub(super) fn failure_action(&self, action: &MessageAction, dead_letter_bound: bool) {
        match action {
            MessageAction::Released(_) => self.released.increment(1),
            MessageAction::Forwarded(_) => self.forwarded.increment(1),
            _ => {}
        }
        if dead_letter_bound {
            self.dead_letter_bound.increment(1);
        }
    }

    pub(super) fn deleted(&self, n: u64) {
        self.deleted.increment(n);
    }

    pub(super) fn empty_receive(&self) {
        self.empty_receives.increment(1);
    }

    pub(super) fn circuit(&self, state: crate::CircuitState) {
        let value = match state {
            crate::CircuitState::Closed => 0.0,
            crate::CircuitState::HalfOpen => 1.0,
            crate::CircuitState::Open => 2.0,
        };
        self.circuit.set(value);
    }
}
