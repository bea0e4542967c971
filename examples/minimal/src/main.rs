//! The smallest consumer: one handler that takes JSON, one event hook, and a consumer that
//! runs until its work is done.
//!
//! Run with `cargo run -p example-minimal`
//!
//! It starts sqs-local (an SQS-compatible server) in process, sends three greetings and one
//! message that is not JSON, and stops once all four were seen: the greetings are handled and
//! deleted, the bad message fires the `processing_error` hook and is left for redelivery.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqs_handler::{
    BoxError, Json, OutgoingMessage, ProcessingError, Producer, QueueOptions, SqsConsumer,
    SqsConsumerBuilder, State, shutdown_signal, sqs_consumer_event_handler, sqs_message_handler,
};
use tokio::sync::watch;

#[derive(Debug, Serialize, Deserialize)]
struct Greeting {
    name: String,
}

/// Ok deletes the message; a body that is not a `Greeting` never reaches this function.
#[sqs_message_handler("greetings")]
async fn greet(Json(greeting): Json<Greeting>, State(book): State<Guestbook>) {
    tracing::info!(name = %greeting.name, "hello");
    book.write(format!("hello, {}", greeting.name));
}

/// Fires when a message fails; here, when a body does not decode. (The consumer logs every
/// failure already: a hook is for what the application does about it.)
#[sqs_consumer_event_handler("greetings", processing_error)]
async fn on_error(event: ProcessingError, State(book): State<Guestbook>) {
    book.write(format!(
        "rejected {:?}: {:?}",
        event.message.body(),
        event.action
    ));
}

/// The consumer: the two functions above are discovered, the guestbook is their state.
fn consumer(aws_config: &aws_config::SdkConfig, book: Guestbook) -> SqsConsumerBuilder {
    SqsConsumer::builder(aws_config)
        // Shutdown lets a long poll in flight finish, so a short one makes the example exit
        // quickly; the default (20 s) makes fewer calls on an idle queue.
        .queue(
            "greetings",
            QueueOptions::default().wait_time(Duration::from_secs(1)),
        )
        .state(book)
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
        .queue("greetings")
        .start()
        .await?;
    let aws_config = sqs.sdk_config();

    let book = run(&aws_config, shutdown_signal()).await?;
    println!("{}", book.join("\n"));
    Ok(())
}

/// Sends the messages, then consumes until all four were seen or `stop` completes.
async fn run(
    aws_config: &aws_config::SdkConfig,
    stop: impl Future<Output = ()>,
) -> Result<Vec<String>, BoxError> {
    let producer = Producer::new(aws_config);
    for name in ["Ada", "Grace", "Linus"] {
        let greeting = Greeting { name: name.into() };
        producer.send_json("greetings", &greeting).await?;
    }
    producer
        .send("greetings", OutgoingMessage::new("not json"))
        .await?;

    let book = Guestbook::default();
    let all_seen = book.wait_for(4);
    consumer(aws_config, book.clone())
        .build()
        .await?
        .run_until(async {
            tokio::select! {
                () = all_seen => {}
                () = stop => {}
            }
        })
        .await?;
    Ok(book.lines())
}

/// What the handler and the hook wrote, shared with `run` through the consumer's state.
#[derive(Clone, Default)]
struct Guestbook(Arc<watch::Sender<Vec<String>>>);

impl Guestbook {
    fn write(&self, line: String) {
        self.0.send_modify(|lines| lines.push(line));
    }

    /// Completes once `n` lines were written.
    async fn wait_for(&self, n: usize) {
        let _ = self.0.subscribe().wait_for(|lines| lines.len() >= n).await;
    }

    fn lines(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::types::QueueAttributeName;

    use super::*;

    #[tokio::test]
    async fn greets_every_name_and_leaves_the_bad_message_for_redelivery() {
        let sqs = sqs_local::LocalSqs::builder()
            .queue("greetings")
            .start()
            .await
            .unwrap();
        let aws_config = sqs.sdk_config();
        let run = run(&aws_config, std::future::pending());
        let mut lines = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the example finishes by itself")
            .unwrap();
        lines.sort();
        assert_eq!(
            lines,
            [
                "hello, Ada",
                "hello, Grace",
                "hello, Linus",
                "rejected \"not json\": LeftForRedelivery",
            ]
        );
        // The greetings were deleted; the bad message is in flight until its visibility
        // timeout ends, then SQS delivers it again.
        assert_eq!(messages(&sqs, "greetings").await, (0, 1));
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
