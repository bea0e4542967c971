//! Tower layers around every message handler: a log line per message (`map_request`), a
//! custom layer that times each handler, and a concurrency limit.
//!
//! Run with `cargo run -p example-layers`
//!
//! It starts sqs-local in process, sends twelve emails to send, and stops once all were sent.
//! The queue may hold ten messages at once, but the limit layer lets only two handlers run:
//! the consumer waits for the layers to be ready before it receives, so the other messages
//! wait in the queue, not in memory.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqs_handler::{
    BoxError, Json, MessageContext, OutgoingMessage, Producer, QueueOptions, SqsConsumer,
    SqsConsumerBuilder, State, shutdown_signal, sqs_message_handler,
};
use tokio::sync::watch;
use tower::{Layer, Service, ServiceBuilder};

#[derive(Debug, Serialize, Deserialize)]
struct Email {
    to: String,
}

#[sqs_message_handler("emails")]
async fn send_email(Json(email): Json<Email>, State(outbox): State<Outbox>) {
    let now = outbox.sending.fetch_add(1, Ordering::SeqCst) + 1;
    outbox.peak.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await; // an SMTP call
    outbox.sending.fetch_sub(1, Ordering::SeqCst);
    outbox.sent.send_modify(|sent| sent.push(email.to));
}

/// The consumer: the handler above is discovered; every message goes through the layers,
/// first to last, before it reaches it.
fn consumer(aws_config: &aws_config::SdkConfig, outbox: Outbox) -> SqsConsumerBuilder {
    SqsConsumer::builder(aws_config)
        .queue(
            "emails",
            QueueOptions::default()
                .concurrency(10)
                // Shutdown lets a long poll in flight finish: a short one exits quickly.
                .wait_time(Duration::from_secs(1)),
        )
        .layer(
            ServiceBuilder::new()
                .map_request(log_message)
                .layer(TimingLayer::new(outbox.timings.clone()))
                .concurrency_limit(2),
        )
        .state(outbox)
}

/// Runs inside the consumer's span for the message (queue, message id, receive count).
fn log_message(ctx: MessageContext) -> MessageContext {
    tracing::info!(body = ctx.message().body(), "message in");
    ctx
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
        .queue("emails")
        .start()
        .await?;
    let aws_config = sqs.sdk_config();

    let outbox = run(&aws_config, shutdown_signal()).await?;
    let timings = outbox.timings.lock().unwrap_or_else(|e| e.into_inner());
    println!(
        "{} emails sent, at most {} at once, slowest handler {:?}",
        outbox.sent.borrow().len(),
        outbox.peak.load(Ordering::SeqCst),
        timings.iter().max().copied().unwrap_or_default(),
    );
    Ok(())
}

/// Sends twelve messages, then consumes until all were sent or `stop` completes.
async fn run(
    aws_config: &aws_config::SdkConfig,
    stop: impl Future<Output = ()>,
) -> Result<Outbox, BoxError> {
    let emails = (1..=12).map(|i| Email {
        to: format!("user{i:02}@example.com"),
    });
    let messages = emails
        .map(|email| OutgoingMessage::json(&email))
        .collect::<Result<Vec<_>, _>>()?;
    let report = Producer::new(aws_config)
        .send_batch("emails", messages)
        .await?;
    if !report.is_complete() {
        return Err(format!("not sent: {:?}", report.failed).into());
    }

    let outbox = Outbox::default();
    let mut sent = outbox.sent.subscribe();
    let all_sent = async move {
        let _ = sent.wait_for(|sent| sent.len() >= 12).await;
    };
    consumer(aws_config, outbox.clone())
        .build()
        .await?
        .run_until(async {
            tokio::select! {
                () = all_sent => {}
                () = stop => {}
            }
        })
        .await?;
    Ok(outbox)
}

/// The handler's state, shared with `run`.
#[derive(Clone, Default)]
struct Outbox {
    sending: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    sent: Arc<watch::Sender<Vec<String>>>,
    timings: Arc<Mutex<Vec<Duration>>>,
}

/// A custom layer: times each handler and logs how long it took.
#[derive(Clone)]
struct TimingLayer {
    timings: Arc<Mutex<Vec<Duration>>>,
}

impl TimingLayer {
    fn new(timings: Arc<Mutex<Vec<Duration>>>) -> Self {
        Self { timings }
    }
}

impl<S> Layer<S> for TimingLayer {
    type Service = Timed<S>;

    fn layer(&self, inner: S) -> Timed<S> {
        Timed {
            inner,
            timings: self.timings.clone(),
        }
    }
}

/// The service [`TimingLayer`] wraps a handler in.
#[derive(Clone)]
struct Timed<S> {
    inner: S,
    timings: Arc<Mutex<Vec<Duration>>>,
}

impl<S> Service<MessageContext> for Timed<S>
where
    S: Service<MessageContext>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // Readiness passes through, so the limit below still holds back receiving.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, ctx: MessageContext) -> Self::Future {
        let started = Instant::now();
        let timings = self.timings.clone();
        let handled = self.inner.call(ctx);
        Box::pin(async move {
            let result = handled.await;
            let elapsed = started.elapsed();
            tracing::info!(?elapsed, ok = result.is_ok(), "message out");
            timings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(elapsed);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::types::QueueAttributeName;

    use super::*;

    #[tokio::test]
    async fn every_message_goes_through_the_layers_two_at_a_time() {
        let sqs = sqs_local::LocalSqs::builder()
            .queue("emails")
            .start()
            .await
            .unwrap();
        let aws_config = sqs.sdk_config();
        let run = run(&aws_config, std::future::pending());
        let outbox = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the example finishes by itself")
            .unwrap();
        let mut sent = outbox.sent.borrow().clone();
        sent.sort();
        let expected: Vec<String> = (1..=12)
            .map(|i| format!("user{i:02}@example.com"))
            .collect();
        assert_eq!(sent, expected);
        assert_eq!(
            outbox.peak.load(Ordering::SeqCst),
            2,
            "the concurrency limit held handlers to 2 of the queue's 10"
        );
        let timings = outbox.timings.lock().unwrap().clone();
        assert_eq!(timings.len(), 12, "the timing layer saw every message");
        assert!(
            timings.iter().all(|t| *t >= Duration::from_millis(50)),
            "it timed the handler: {timings:?}"
        );
        assert_eq!(messages(&sqs, "emails").await, (0, 0), "all deleted");
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
