//! An SQS-compatible server for tests, local development and benchmarks.
//!
//! sqs-local speaks the AWS JSON 1.0 protocol that `aws-sdk-sqs` uses, keeps everything in
//! memory, and implements the semantics AWS documents: visibility timeouts, long polling,
//! delays, message attributes and their MD5 digests, redrive to dead-letter queues, FIFO queues
//! with ordering per message group and deduplication, and batch calls with per-entry results.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = sqs_local::LocalSqs::start().await?;
//! let client = server.client();
//! let url = client.create_queue().queue_name("jobs").send().await?
//!     .queue_url.unwrap_or_default();
//! client.send_message().queue_url(&url).message_body("hello").send().await?;
//! let received = client.receive_message().queue_url(&url).send().await?;
//! assert_eq!(received.messages()[0].body(), Some("hello"));
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Request counters by operation are served as JSON at `GET /_sqs-local/stats` (and in process
//! by [`LocalSqs::stats`]): what benchmarks use to count API calls.
//!
//! Run it standalone with `cargo run --release -p sqs-local -- --port 9324 --queue jobs`, then
//! point any AWS SDK at it with `AWS_ENDPOINT_URL_SQS=http://127.0.0.1:9324`.

mod digest;
mod error;
mod protocol;
mod queue;
mod server;
mod store;

use std::net::{Ipv4Addr, SocketAddr};

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;
pub use protocol::MessageAttributeValue;
pub use store::{ApiStats, Operation, SqsState};

/// The region of the clients and configurations this crate makes.
pub const REGION: &str = "us-east-1";

/// Builds a [`LocalSqs`]: where to listen, on what state, with which queues.
#[derive(Debug)]
pub struct LocalSqsBuilder {
    addr: SocketAddr,
    state: Option<SqsState>,
    queues: Vec<String>,
}

impl LocalSqsBuilder {
    /// The address to listen on; the default is `127.0.0.1:0` (any free port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Serves existing state, for example that of a server stopped earlier.
    pub fn state(mut self, state: SqsState) -> Self {
        self.state = Some(state);
        self
    }

    /// A queue to create at start (a name ending in `.fifo` makes a FIFO queue).
    pub fn queue(mut self, name: impl Into<String>) -> Self {
        self.queues.push(name.into());
        self
    }

    /// Binds and starts serving in a background task.
    ///
    /// # Errors
    /// When the address cannot be bound, or a queue name is invalid.
    pub async fn start(self) -> std::io::Result<LocalSqs> {
        let listener = TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let state = self.state.unwrap_or_else(|| SqsState::new(REGION));
        for name in &self.queues {
            let mut attrs = std::collections::BTreeMap::new();
            if name.ends_with(".fifo") {
                attrs.insert("FifoQueue".to_owned(), "true".to_owned());
            }
            state
                .create_queue(name, &attrs)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        }
        let token = CancellationToken::new();
        let task = tokio::spawn(server::serve(listener, state.clone(), token.clone()));
        tracing::info!(%addr, "sqs-local listening");
        Ok(LocalSqs {
            addr,
            state,
            token,
            task: Some(task),
        })
    }
}

/// A running sqs-local server. Dropping it stops the server; [`LocalSqs::shutdown`] also waits
/// until the port is closed.
#[derive(Debug)]
pub struct LocalSqs {
    addr: SocketAddr,
    state: SqsState,
    token: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl LocalSqs {
    /// Starts a server on a free loopback port.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start() -> std::io::Result<Self> {
        Self::builder().start().await
    }

    /// A builder, to choose the address, the state or queues to create.
    pub fn builder() -> LocalSqsBuilder {
        LocalSqsBuilder {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            state: None,
            queues: Vec::new(),
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, for `endpoint_url` or `AWS_ENDPOINT_URL_SQS`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The queues and messages served.
    pub fn state(&self) -> &SqsState {
        &self.state
    }

    /// Requests answered, by operation.
    pub fn stats(&self) -> &ApiStats {
        self.state.stats()
    }

    /// An AWS SDK configuration for this server: its endpoint, region `us-east-1` and static
    /// test credentials; nothing read from the environment.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config_for(&self.endpoint_url())
    }

    /// An `aws-sdk-sqs` client for this server.
    pub fn client(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config())
    }

    /// Stops accepting, ends long polls in flight, and waits until the server has stopped.
    pub async fn shutdown(mut self) {
        self.token.cancel();
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "sqs-local server task failed");
        }
    }
}

impl Drop for LocalSqs {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// An AWS SDK configuration for an SQS-compatible endpoint, with region `us-east-1` and static
/// test credentials.
pub fn sdk_config_for(endpoint_url: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint_url)
        .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
            Credentials::new("test", "test", None, None, "sqs-local"),
        ))
        .build()
}
