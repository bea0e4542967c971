//! The consumer of `example_testing`, end to end against sqs-local: real SendMessage,
//! ReceiveMessage and DeleteMessageBatch calls, and the exact outcome of each message.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use example_testing::{Inventory, QUEUE, Reservation, consumer};
use sqs_handler::{
    MessageProcessed, OutgoingMessage, ProcessingError, Producer, SqsMessage, State,
};
use sqs_local::LocalSqs;
use tokio::sync::watch;

#[tokio::test]
async fn each_reservation_is_deleted_or_left_for_redelivery_as_its_outcome_says() {
    let sqs = LocalSqs::builder().queue(QUEUE).start().await.unwrap();
    send(
        &sqs,
        &[("o-1", "apple", 2), ("o-2", "pear", 5), ("o-3", "kiwi", 1)],
    )
    .await;
    let inventory = Inventory::with_stock([("apple", 3), ("pear", 1)]);

    let mut outcomes = run_until(&sqs, inventory.clone(), Outcomes::default(), 3).await;

    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            "o-1: deleted",
            "o-2: LeftForRedelivery, only 1 of pear in stock, 5 wanted",
            "o-3: Deleted, non-retryable: unknown product kiwi",
        ]
    );
    assert_eq!(inventory.stock("apple"), Some(1));
    assert_eq!(inventory.stock("pear"), Some(1), "nothing taken on failure");
    assert_eq!(
        messages(&sqs).await,
        (0, 1),
        "only o-2 is left, in flight until its visibility timeout ends"
    );
}

#[tokio::test]
async fn a_reservation_left_for_redelivery_succeeds_once_stock_arrives() {
    let sqs = LocalSqs::start().await.unwrap();
    // A one-second visibility timeout: SQS delivers the failed message again a second later.
    sqs.client()
        .create_queue()
        .queue_name(QUEUE)
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .unwrap();
    send(&sqs, &[("o-2", "pear", 5)]).await;
    let inventory = Inventory::with_stock([("pear", 1)]);

    // Stock arrives as soon as the first attempt has failed.
    let outcomes = Outcomes::default();
    let mut first = outcomes.0.subscribe();
    let restock = inventory.clone();
    tokio::spawn(async move {
        let _ = first.wait_for(|o| !o.is_empty()).await;
        restock.restock("pear", 10);
    });
    let outcomes = run_until(&sqs, inventory.clone(), outcomes, 2).await;

    assert_eq!(
        outcomes,
        [
            "o-2: LeftForRedelivery, only 1 of pear in stock, 5 wanted",
            "o-2: deleted",
        ]
    );
    assert_eq!(inventory.stock("pear"), Some(6));
    assert_eq!(messages(&sqs).await, (0, 0));
}

/// What became of each message, as two hooks of the test's own report it.
#[derive(Clone, Default)]
struct Outcomes(Arc<watch::Sender<Vec<String>>>);

impl Outcomes {
    fn push(&self, message: &SqsMessage, outcome: String) {
        let order = serde_json::from_str::<Reservation>(message.body())
            .map_or_else(|_| message.body().to_owned(), |r| r.order);
        self.0
            .send_modify(|o| o.push(format!("{order}: {outcome}")));
    }
}

/// Runs the library's consumer, plus the hooks that fill `outcomes`, until `n` outcomes are in;
/// returns them in the order they came.
async fn run_until(
    sqs: &LocalSqs,
    inventory: Inventory,
    outcomes: Outcomes,
    n: usize,
) -> Vec<String> {
    let consumer = consumer(&sqs.sdk_config(), inventory)
        .hook(
            QUEUE,
            |e: MessageProcessed, State(o): State<Outcomes>| async move {
                o.push(&e.message, "deleted".to_owned());
            },
        )
        .hook(
            QUEUE,
            |e: ProcessingError, State(o): State<Outcomes>| async move {
                o.push(&e.message, format!("{:?}, {}", e.action, e.error));
            },
        )
        .state(outcomes.clone())
        .build()
        .await
        .unwrap();
    let mut seen = outcomes.0.subscribe();
    let all_in = async move {
        let _ = seen.wait_for(|o| o.len() >= n).await;
    };
    tokio::time::timeout(Duration::from_secs(8), consumer.run_until(all_in))
        .await
        .expect("the consumer handles every message and stops")
        .unwrap();
    outcomes.0.borrow().clone()
}

async fn send(sqs: &LocalSqs, orders: &[(&str, &str, u32)]) {
    let messages = orders.iter().map(|&(order, sku, quantity)| {
        let reservation = Reservation {
            order: order.into(),
            sku: sku.into(),
            quantity,
        };
        OutgoingMessage::json(&reservation).unwrap()
    });
    let report = Producer::new(&sqs.sdk_config())
        .send_batch(QUEUE, messages)
        .await
        .unwrap();
    assert!(report.is_complete(), "not sent: {:?}", report.failed);
}

/// (visible, in flight) messages of the queue.
async fn messages(sqs: &LocalSqs) -> (u64, u64) {
    let client = sqs.client();
    let url = client
        .get_queue_url()
        .queue_name(QUEUE)
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
