//! `QueueSpec`: a queue for the builder to create, with its attributes.

use std::collections::BTreeMap;
use std::time::Duration;

/// A queue for [`LocalSqsBuilder::queue_spec`](crate::LocalSqsBuilder::queue_spec) to create
/// when the server starts, with its attributes, so that a test needs no `CreateQueue` calls.
/// A name ending in `.fifo` makes a FIFO queue.
///
/// ```
/// use std::time::Duration;
/// use sqs_local::{LocalSqs, QueueSpec};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = LocalSqs::builder()
///     .queue_spec(
///         QueueSpec::new("jobs")
///             .visibility_timeout(Duration::from_secs(5))
///             .dead_letter_queue("jobs-dlq", 3), // created too, when not declared
///     )
///     .start()
///     .await?;
/// let url = server.client().get_queue_url().queue_name("jobs-dlq").send().await?;
/// assert!(url.queue_url().is_some());
/// server.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub(crate) name: String,
    pub(crate) attributes: BTreeMap<String, String>,
    pub(crate) dead_letter: Option<(String, u32)>,
}

impl QueueSpec {
    /// A queue named `name`; FIFO when it ends in `.fifo`.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        let mut attributes = BTreeMap::new();
        if name.ends_with(".fifo") {
            attributes.insert("FifoQueue".to_owned(), "true".to_owned());
        }
        Self {
            name,
            attributes,
            dead_letter: None,
        }
    }

    /// Any queue attribute, as `CreateQueue` takes it (validated as SQS does when the server
    /// starts).
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// `VisibilityTimeout`, in whole seconds.
    pub fn visibility_timeout(self, timeout: Duration) -> Self {
        self.attribute("VisibilityTimeout", timeout.as_secs().to_string())
    }

    /// `DelaySeconds`, in whole seconds.
    pub fn delay(self, delay: Duration) -> Self {
        self.attribute("DelaySeconds", delay.as_secs().to_string())
    }

    /// `ContentBasedDeduplication` (FIFO queues).
    pub fn content_based_deduplication(self) -> Self {
        self.attribute("ContentBasedDeduplication", "true")
    }

    /// A `RedrivePolicy` to the queue `dead_letter_queue` after `max_receive_count` receives.
    /// That queue is created first when no spec declares it (FIFO when its name ends in
    /// `.fifo`).
    pub fn dead_letter_queue(
        mut self,
        dead_letter_queue: impl Into<String>,
        max_receive_count: u32,
    ) -> Self {
        self.dead_letter = Some((dead_letter_queue.into(), max_receive_count));
        self
    }
}
