//! A FIFO queue: the messages of one group are handled one at a time, in the order they were
//! sent; different groups run in parallel.
//!
//! Run with `cargo run -p example-fifo`
//!
//! It starts sqs-local in process, sends three steps of an order for each of three customers
//! (the customer is the message group), and stops once every step was handled. Alice's payment
//! fails at its first attempt: it is released and retried, and her `shipped` step waits for it
//! while Bob's and Carol's orders go on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqs_handler::{
    BoxError, Json, MessageGroupId, OutgoingMessage, Producer, QueueOptions, ReceiveCount,
    RetryPolicy, SqsConsumer, SqsConsumerBuilder, State, shutdown_signal, sqs_message_handler,
};
use tokio::sync::watch;

const QUEUE: &str = "orders.fifo";
const STEPS: [&str; 3] = ["created", "paid", "shipped"];
const CUSTOMERS: [&str; 3] = ["alice", "bob", "carol"];

#[derive(Debug, Serialize, Deserialize)]
struct OrderEvent {
    order: u32,
    step: String,
}

/// One step of a customer's order. The group id says whose it is.
#[sqs_message_handler("orders.fifo")]
async fn record_step(
    Json(event): Json<OrderEvent>,
    MessageGroupId(group): MessageGroupId,
    ReceiveCount(attempt): ReceiveCount,
    State(ledger): State<Ledger>,
) -> Result<(), BoxError> {
    let customer = group.unwrap_or_default();
    if customer == "alice" && event.step == "paid" && attempt == 1 {
        ledger.write(&customer, "paid failed");
        return Err("the payment service did not answer".into());
    }
    tracing::info!(%customer, order = event.order, step = %event.step, "recorded");
    ledger.write(&customer, &event.step);
    Ok(())
}

/// The consumer: the handler above is discovered, the ledger is its state.
fn consumer(aws_config: &aws_config::SdkConfig, ledger: Ledger) -> SqsConsumerBuilder {
    SqsConsumer::builder(aws_config)
        .queue(
            QUEUE,
            QueueOptions::default()
                .concurrency(10)
                // A failed message is visible again at once (by default it waits for its
                // visibility timeout); the rest of its group waits behind it either way.
                .retry(RetryPolicy::ReleaseImmediately)
                // Shutdown lets a long poll in flight finish: a short one exits quickly.
                .wait_time(Duration::from_secs(1)),
        )
        .state(ledger)
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
    let sqs = sqs_local::LocalSqs::builder().queue(QUEUE).start().await?;
    let aws_config = sqs.sdk_config();

    for (customer, steps) in run(&aws_config, shutdown_signal()).await? {
        println!("{customer}: {}", steps.join(" -> "));
    }
    Ok(())
}

/// Sends every step, then consumes until all were recorded or `stop` completes. Returns each
/// customer's steps in the order they were handled.
async fn run(
    aws_config: &aws_config::SdkConfig,
    stop: impl Future<Output = ()>,
) -> Result<Vec<(String, Vec<String>)>, BoxError> {
    // Step by step, customers interleaved: the queue orders each group, not the whole queue.
    let mut messages = Vec::new();
    for step in STEPS {
        for (order, customer) in (1..).zip(CUSTOMERS) {
            let event = OrderEvent {
                order,
                step: step.to_owned(),
            };
            messages.push(
                OutgoingMessage::json(&event)?
                    .group_id(customer)
                    .deduplication_id(format!("{customer}-{step}")),
            );
        }
    }
    let report = Producer::new(aws_config)
        .send_batch(QUEUE, messages)
        .await?;
    if !report.is_complete() {
        return Err(format!("not sent: {:?}", report.failed).into());
    }

    let ledger = Ledger::default();
    // Nine steps, plus the one failed attempt.
    let all_done = ledger.wait_for(CUSTOMERS.len() * STEPS.len() + 1);
    consumer(aws_config, ledger.clone())
        .build()
        .await?
        .run_until(async {
            tokio::select! {
                () = all_done => {}
                () = stop => {}
            }
        })
        .await?;
    Ok(ledger.by_customer())
}

/// What the handler recorded, as (customer, step), shared with `run` through the state.
#[derive(Clone, Default)]
struct Ledger(Arc<watch::Sender<Vec<(String, String)>>>);

impl Ledger {
    fn write(&self, customer: &str, step: &str) {
        self.0
            .send_modify(|rows| rows.push((customer.to_owned(), step.to_owned())));
    }

    /// Completes once `n` rows were written.
    async fn wait_for(&self, n: usize) {
        let _ = self.0.subscribe().wait_for(|rows| rows.len() >= n).await;
    }

    fn by_customer(&self) -> Vec<(String, Vec<String>)> {
        let rows = self.0.borrow();
        CUSTOMERS
            .iter()
            .map(|&c| {
                let steps = rows.iter().filter(|(r, _)| r == c);
                (c.to_owned(), steps.map(|(_, s)| s.clone()).collect())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::types::QueueAttributeName;

    use super::*;

    #[tokio::test]
    async fn each_group_in_order_and_a_failed_step_retried_before_the_next() {
        let sqs = sqs_local::LocalSqs::builder()
            .queue(QUEUE)
            .start()
            .await
            .unwrap();
        let aws_config = sqs.sdk_config();
        let run = run(&aws_config, std::future::pending());
        let by_customer = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the example finishes by itself")
            .unwrap();
        let steps = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            by_customer,
            [
                (
                    "alice".to_owned(),
                    steps(&["created", "paid failed", "paid", "shipped"])
                ),
                ("bob".to_owned(), steps(&STEPS)),
                ("carol".to_owned(), steps(&STEPS)),
            ]
        );
        assert_eq!(messages(&sqs, QUEUE).await, (0, 0), "every step deleted");
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
