//! Helpers for the cross-crate integration tests: an SQS endpoint to test against (sqs-local
//! in process, or the reference named by `SQS_REFERENCE_ENDPOINT`), unique queue names, and
//! waiting on a condition with a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use sqs_local::LocalSqs;

pub mod lambda_api;

/// Environment variable naming the reference endpoint (LocalStack) for the conformance suite.
pub const REFERENCE_ENV: &str = "SQS_REFERENCE_ENDPOINT";

/// An endpoint under test and a client for it.
#[derive(Debug)]
pub struct Endpoint {
    /// A client configured for the endpoint.
    pub client: Client,
    /// The SDK configuration the client was made from.
    pub sdk_config: aws_config::SdkConfig,
    /// True for the reference endpoint (LocalStack), false for sqs-local.
    pub reference: bool,
    /// The in-process server, when this endpoint is one.
    pub server: Option<LocalSqs>,
    prefix: String,
}

impl Endpoint {
    /// An sqs-local server started for this test alone.
    pub async fn local() -> Self {
        let server = LocalSqs::start()
            .await
            .expect("start sqs-local on a loopback port");
        let sdk_config = server.sdk_config();
        Self {
            client: Client::new(&sdk_config),
            sdk_config,
            reference: false,
            server: Some(server),
            prefix: unique_prefix(),
        }
    }

    /// The reference endpoint, when `SQS_REFERENCE_ENDPOINT` is set.
    pub fn reference() -> Option<Self> {
        let url = std::env::var(REFERENCE_ENV)
            .ok()
            .filter(|u| !u.is_empty())?;
        let sdk_config = sqs_local::sdk_config_for(&url);
        Some(Self {
            client: Client::new(&sdk_config),
            sdk_config,
            reference: true,
            server: None,
            prefix: unique_prefix(),
        })
    }

    /// A queue name unique to this test run: `<prefix>-<name>` (`.fifo` kept at the end).
    pub fn name(&self, name: &str) -> String {
        match name.strip_suffix(".fifo") {
            Some(stem) => format!("{}-{stem}.fifo", self.prefix),
            None => format!("{}-{name}", self.prefix),
        }
    }

    /// Creates a queue with attributes and returns its URL.
    pub async fn create_queue(&self, name: &str, attrs: &[(&str, &str)]) -> String {
        let mut req = self.client.create_queue().queue_name(self.name(name));
        if name.ends_with(".fifo") {
            req = req.attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true");
        }
        for (k, v) in attrs {
            req = req.attributes(aws_sdk_sqs::types::QueueAttributeName::from(*k), *v);
        }
        let out = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("create queue {name}: {e:?}"));
        out.queue_url.expect("CreateQueue returns a QueueUrl")
    }

    /// The ARN of a queue.
    pub async fn arn(&self, url: &str) -> String {
        self.attribute(url, "QueueArn").await
    }

    /// One queue attribute, by name.
    pub async fn attribute(&self, url: &str, name: &str) -> String {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::from(name))
            .send()
            .await
            .unwrap_or_else(|e| panic!("get attribute {name}: {e:?}"));
        out.attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::from(name)))
            .cloned()
            .unwrap_or_default()
    }

    /// One ReceiveMessage of up to `max` messages, long-polling `wait` seconds, with every
    /// system and message attribute.
    pub async fn receive(&self, url: &str, max: i32, wait: i32) -> Vec<Message> {
        self.client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap_or_else(|e| panic!("receive from {url}: {e:?}"))
            .messages
            .unwrap_or_default()
    }

    /// Receives until `count` messages came or `deadline` passed; returns them in arrival order.
    pub async fn receive_n(&self, url: &str, count: usize, deadline: Duration) -> Vec<Message> {
        let start = Instant::now();
        let mut out = Vec::new();
        while out.len() < count && start.elapsed() < deadline {
            out.extend(self.receive(url, 10, 1).await);
        }
        out
    }

    /// Deletes a received message with DeleteMessage.
    pub async fn delete(&self, url: &str, message: &Message) {
        let handle = message.receipt_handle().unwrap_or_default();
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(handle)
            .send()
            .await
            .unwrap_or_else(|e| panic!("delete from {url}: {e:?}"));
    }
}

/// A consumer running in the background, stopped by [`Running::stop`].
#[derive(Debug)]
pub struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), sqs_handler::RunError>>,
    /// The consumer's status.
    pub status: sqs_handler::StatusHandle,
}

impl Running {
    /// Starts `consumer` in a task.
    pub fn start(consumer: sqs_handler::SqsConsumer) -> Self {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let status = consumer.status();
        let task = tokio::spawn(consumer.run_until(async move {
            let _ = rx.await;
        }));
        Self {
            stop: Some(tx),
            task,
            status,
        }
    }

    /// Signals shutdown and waits until `run_until` returns.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task)
            .await
            .expect("consumer task")
            .expect("consumer ran without error");
    }
}

/// The numbers of visible, in-flight and delayed messages of a queue.
pub async fn queue_counts(client: &Client, url: &str) -> (u64, u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(A::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .expect("GetQueueAttributes");
    let get = |n: A| {
        out.attributes()
            .and_then(|a| a.get(&n))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    };
    (
        get(A::ApproximateNumberOfMessages),
        get(A::ApproximateNumberOfMessagesNotVisible),
        get(A::ApproximateNumberOfMessagesDelayed),
    )
}

fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t{}x{nanos:x}", std::process::id())
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a conformance check against sqs-local and, in a second test, against the reference
/// endpoint when `SQS_REFERENCE_ENDPOINT` is set. `skip_reference = "why"` marks a check where the
/// reference departs from AWS's documentation; the reason stays in the code.
#[macro_export]
macro_rules! conformance {
    ($name:ident, skip_reference = $why:literal, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn local() {
                let ep = $crate::Endpoint::local().await;
                ($body)(ep).await;
            }

            #[tokio::test]
            async fn reference() {
                if $crate::Endpoint::reference().is_some() {
                    eprintln!("skipped against the reference: {}", $why);
                }
            }
        }
    };
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn local() {
                let ep = $crate::Endpoint::local().await;
                ($body)(ep).await;
            }

            #[tokio::test]
            async fn reference() {
                match $crate::Endpoint::reference() {
                    Some(ep) => ($body)(ep).await,
                    None => eprintln!(
                        "{} is not set: reference run skipped",
                        $crate::REFERENCE_ENV
                    ),
                }
            }
        }
    };
}

/// How long to let a request reach the reference endpoint, which cannot tell when it has.
const REFERENCE_SETTLE: Duration = Duration::from_millis(300);

impl Endpoint {
    /// ReceiveMessage calls the endpoint has begun so far: sqs-local counts them; 0 for the
    /// reference endpoint, which does not.
    pub fn receive_calls(&self) -> u64 {
        self.server
            .as_ref()
            .map_or(0, |s| s.stats().calls(sqs_local::Operation::ReceiveMessage))
    }

    /// Waits until the endpoint has begun more than `before` ReceiveMessage calls (from
    /// [`Endpoint::receive_calls`]), so that a long poll started in another task is waiting.
    /// sqs-local counts a call before its poll waits, on the test's own thread; the reference
    /// endpoint cannot tell, so there a few hundred milliseconds are given instead.
    pub async fn until_receive_started(&self, before: u64) {
        if self.server.is_none() {
            tokio::time::sleep(REFERENCE_SETTLE).await;
            return;
        }
        wait_for(
            "a ReceiveMessage call to reach the server",
            Duration::from_secs(5),
            || async { (self.receive_calls() > before).then_some(()) },
        )
        .await;
    }

    /// Sends one message with a body and no attributes.
    pub async fn send(&self, url: &str, body: &str) {
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("send to {url}: {e:?}"));
    }
}

impl Endpoint {
    /// A client for the same endpoint signing for `region` (queues are per region).
    pub fn client_in(&self, region: &str) -> Client {
        let config = aws_sdk_sqs::config::Builder::from(&self.sdk_config)
            .region(aws_sdk_sqs::config::Region::new(region.to_owned()))
            .build();
        Client::from_conf(config)
    }

    /// A client acting as another AWS account (12 digits), and the server that serves it when
    /// there is one to keep running. sqs-local takes the account from a server option, so a
    /// second server on the same state serves that account; LocalStack takes a 12-digit access
    /// key id as the account id.
    pub async fn client_as(&self, account: &str) -> (Client, Option<LocalSqs>) {
        match &self.server {
            Some(server) => {
                let other = LocalSqs::builder()
                    .state(server.state().clone())
                    .account_id(account)
                    .start()
                    .await
                    .expect("start a second sqs-local for another account");
                (other.client(), Some(other))
            }
            None => {
                let credentials =
                    aws_sdk_sqs::config::Credentials::new(account, "test", None, None, "test");
                let config = aws_sdk_sqs::config::Builder::from(&self.sdk_config)
                    .credentials_provider(credentials)
                    .build();
                (Client::from_conf(config), None)
            }
        }
    }
}
