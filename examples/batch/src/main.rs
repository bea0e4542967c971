//! A batch handler: it takes every message of one receive at once (up to ten), so that the
//! work can be done in one go, and says which messages failed.
//!
//! Run with `cargo run -p example-batch`
//!
//! It starts sqs-local in process, sends eight temperature readings and two messages that are
//! not readings, and stops once all ten were seen. The readings are stored with one insert per
//! receive and deleted; the two others are reported failed, fire the `processing_error` hook
//! and are left for redelivery, while the rest of their batch is deleted.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqs_handler::{
    Batch, BatchOutcome, BoxError, OutgoingMessage, ProcessingError, Producer, QueueOptions,
    SqsConsumer, SqsConsumerBuilder, State, shutdown_signal, sqs_consumer_event_handler,
    sqs_message_handler,
};
use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    celsius: f64,
}

/// Stores the readings of one receive with one insert. A message left out of the outcome is
/// deleted; one marked failed goes through the queue's retry policy.
#[sqs_message_handler("readings", batch)]
async fn store_readings(Batch(messages): Batch, State(db): State<Db>) -> BatchOutcome {
    let mut outcome = BatchOutcome::all_ok();
    let mut rows = Vec::new();
    for message in &messages {
        match serde_json::from_str::<Reading>(message.body()) {
            Ok(reading) => rows.push(reading),
            Err(e) => outcome.record_failure(message, e),
        }
    }
    tracing::info!(
        received = messages.len(),
        stored = rows.len(),
        failed = outcome.failures(),
        "batch handled"
    );
    db.insert(rows);
    // An error for the whole batch (the database is down) would be `Result<BatchOutcome, E>`
    // returning `Err`: every message of the receive fails.
    outcome
}

/// Fires once per failed message of a batch.
#[sqs_consumer_event_handler("readings", processing_error)]
async fn on_error(event: ProcessingError, State(db): State<Db>) {
    db.reject(event.message.body());
}

/// The consumer: the functions above are discovered, the database is their state.
fn consumer(aws_config: &aws_config::SdkConfig, db: Db) -> SqsConsumerBuilder {
    SqsConsumer::builder(aws_config)
        // Shutdown lets a long poll in flight finish: a short one exits quickly.
        .queue(
            "readings",
            QueueOptions::default().wait_time(Duration::from_secs(1)),
        )
        .state(db)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    // SQS in process, with the queue created. Against real SQS, use instead:
    // let aws_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sqs = sqs_local::LocalSqs::builder()
        .queue("readings")
        .start()
        .await?;
    let aws_config = sqs.sdk_config();

    let tables = run(&aws_config, shutdown_signal()).await?;
    println!(
        "stored {} readings in {} insert(s); rejected {:?}",
        tables.readings.len(),
        tables.inserts,
        tables.rejected
    );
    Ok(())
}

/// Sends ten messages, then consumes until all were seen or `stop` completes.
async fn run(
    aws_config: &aws_config::SdkConfig,
    stop: impl Future<Output = ()>,
) -> Result<Tables, BoxError> {
    let mut messages = Vec::new();
    for i in 0..8 {
        let reading = Reading {
            sensor: format!("s{i}"),
            celsius: 20.0 + f64::from(i) / 2.0,
        };
        messages.push(OutgoingMessage::json(&reading)?);
    }
    messages.push(OutgoingMessage::new("garbage"));
    messages.push(OutgoingMessage::new(r#"{"sensor":"s8"}"#));
    let report = Producer::new(aws_config)
        .send_batch("readings", messages)
        .await?;
    if !report.is_complete() {
        return Err(format!("not sent: {:?}", report.failed).into());
    }

    let db = Db::default();
    let all_seen = db.wait_for(10);
    consumer(aws_config, db.clone())
        .build()
        .await?
        .run_until(async {
            tokio::select! {
                () = all_seen => {}
                () = stop => {}
            }
        })
        .await?;
    Ok(db.tables())
}

/// What was stored and rejected: a database, here in memory.
#[derive(Debug, Clone, Default)]
struct Tables {
    readings: Vec<Reading>,
    inserts: usize,
    rejected: Vec<String>,
}

/// The handler's state, shared with `run`.
#[derive(Clone, Default)]
struct Db(Arc<watch::Sender<Tables>>);

impl Db {
    fn insert(&self, rows: Vec<Reading>) {
        if rows.is_empty() {
            return;
        }
        self.0.send_modify(|t| {
            t.readings.extend(rows);
            t.inserts += 1;
        });
    }

    fn reject(&self, body: &str) {
        self.0.send_modify(|t| t.rejected.push(body.to_owned()));
    }

    /// Completes once `n` messages were stored or rejected.
    async fn wait_for(&self, n: usize) {
        let mut tables = self.0.subscribe();
        let _ = tables
            .wait_for(|t| t.readings.len() + t.rejected.len() >= n)
            .await;
    }

    fn tables(&self) -> Tables {
        self.0.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::types::QueueAttributeName;

    use super::*;

    #[tokio::test]
    async fn stores_the_readings_and_leaves_the_two_bad_messages_for_redelivery() {
        let sqs = sqs_local::LocalSqs::builder()
            .queue("readings")
            .start()
            .await
            .unwrap();
        let aws_config = sqs.sdk_config();
        let run = run(&aws_config, std::future::pending());
        let mut tables = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the example finishes by itself")
            .unwrap();
        tables.readings.sort_by(|a, b| a.sensor.cmp(&b.sensor));
        let sensors: Vec<&str> = tables.readings.iter().map(|r| &*r.sensor).collect();
        assert_eq!(sensors, ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"]);
        assert_eq!(tables.readings[3].celsius, 21.5);
        tables.rejected.sort();
        assert_eq!(tables.rejected, ["garbage", r#"{"sensor":"s8"}"#]);
        assert_eq!(
            messages(&sqs, "readings").await,
            (0, 2),
            "the readings deleted, the two failures in flight until their visibility timeout"
        );
    }

    /// (visible, in flight) messages of a queue.
    async fn messages(sqs: &sqs_local::LocalSqs, queue: &str) -> (u64, u64) {
        let client = sqs.client();
        let url = client
            .get_queue_url()
            .queue_name(queue)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let out = client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let count = |name| out.attributes().unwrap()[&name].parse().unwrap();
        (
            count(QueueAttributeName::ApproximateNumberOfMessages),
            count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }
}
