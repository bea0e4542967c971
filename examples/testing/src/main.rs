//! Runs the reservations consumer of this example's library.
//!
//! Run with `cargo run -p example-testing`
//!
//! It starts sqs-local in process, sends three reservations (one that fits the stock, one that
//! does not, one for an unknown product), and stops once all three were handled.

use std::time::Duration;

use example_testing::{Inventory, QUEUE, Reservation, consumer};
use sqs_handler::{BoxError, OutgoingMessage, Producer, shutdown_signal};

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

    let orders = [("o-1", "apple", 2), ("o-2", "pear", 5), ("o-3", "kiwi", 1)];
    let messages = orders.map(|(order, sku, quantity)| {
        let reservation = Reservation {
            order: order.into(),
            sku: sku.into(),
            quantity,
        };
        OutgoingMessage::json(&reservation)
    });
    let messages = messages.into_iter().collect::<Result<Vec<_>, _>>()?;
    Producer::new(&aws_config)
        .send_batch(QUEUE, messages)
        .await?;

    let inventory = Inventory::with_stock([("apple", 3), ("pear", 1)]);
    let consumer = consumer(&aws_config, inventory.clone()).build().await?;
    // The status handle counts what the consumer did: stop once all three were handled.
    let status = consumer.status();
    let all_handled = async move {
        while status
            .queue(QUEUE)
            .is_none_or(|s| s.processed + s.failed < 3)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    consumer
        .run_until(async {
            tokio::select! {
                () = all_handled => {}
                () = shutdown_signal() => {}
            }
        })
        .await?;
    println!(
        "in stock: apple {:?}, pear {:?}",
        inventory.stock("apple"),
        inventory.stock("pear")
    );
    Ok(())
}
