//! An SQS-compatible server for tests, local development and benchmarks.
//!
//! sqs-local speaks the AWS JSON 1.0 protocol that `aws-sdk-sqs` uses, keeps everything in
//! memory, and implements the semantics AWS documents: visibility timeouts, long polling,
//! delays, message attributes and their MD5 digests, redrive to dead-letter queues, FIFO queues
//! with ordering per message group and deduplication, batch calls with per-entry results, and
//! dead-letter queue redrive (`StartMessageMoveTask`, `ListMessageMoveTasks`,
//! `CancelMessageMoveTask`).
//!
//! It also behaves like SQS where SQS surprises consumers: a request runs to its end even when
//! its client has gone, so a long poll abandoned by its client still takes (and hides for the
//! visibility timeout) the messages that arrive while it waits; a waiting receive on a FIFO
//! queue is woken as soon as a delete or a visibility change unlocks a message group; receipt
//! handles are keyed digests that cannot be forged.
//!
//! Clients it does not control cannot hold it: connections are limited
//! ([`LocalSqsBuilder::max_connections`]) and a request must arrive within a read timeout
//! ([`LocalSqsBuilder::read_timeout`]). Queue URLs start with the server's own address (or
//! [`LocalSqsBuilder::advertised_url`]), never with a request's `Host` header.
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
//! [`LocalSqsBuilder::latency`] (and `--latency` standalone) makes calls take as long as they
//! do on SQS, fixed or with jitter, per operation: see [`Latency`].
//!
//! Request counters by operation are served as JSON at `GET /_sqs-local/stats` (and in process
//! by [`LocalSqs::stats`]): what benchmarks use to count API calls.
//!
//! Run it standalone with `cargo run --release -p sqs-local --features cli -- --port 9324 --queue jobs`, then
//! point any AWS SDK at it with `AWS_ENDPOINT_URL_SQS=http://127.0.0.1:9324`.

mod connections;
mod digest;
mod error;
mod latency;
mod policy;
mod protocol;
mod queue;
mod server;
mod spec;
mod store;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;
pub use latency::{Delay, Latency, LatencyError};
pub use protocol::MessageAttributeValue;
pub use spec::QueueSpec;
pub use store::{ApiStats, Operation, SqsState};

/// The region of the clients and configurations this crate makes, unless a server is given
/// another with [`LocalSqsBuilder::region`].
pub const REGION: &str = "us-east-1";

/// The account that owns a server's queues unless it is given another with
/// [`LocalSqsBuilder::account_id`].
pub const DEFAULT_ACCOUNT_ID: &str = queue::DEFAULT_ACCOUNT_ID;

/// Builds a [`LocalSqs`]: where to listen, on what state, with which queues.
#[derive(Debug)]
pub struct LocalSqsBuilder {
    addr: SocketAddr,
    state: Option<SqsState>,
    queues: Vec<QueueSpec>,
    advertised_url: Option<String>,
    limits: connections::Limits,
    region: Option<String>,
    account_id: String,
    latency: Latency,
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
        self.queues.push(QueueSpec::new(name));
        self
    }

    /// A queue to create at start with its attributes and dead-letter queue: see
    /// [`QueueSpec`].
    pub fn queue_spec(mut self, spec: QueueSpec) -> Self {
        self.queues.push(spec);
        self
    }

    /// The `http://host:port` that queue URLs start with, for clients that reach the server by
    /// another name (a container's, a proxy's). The default is the bound address, with
    /// `127.0.0.1` standing for an unspecified one (`0.0.0.0`). A request's `Host` header never
    /// changes it, as it never changes the queue URLs AWS returns.
    pub fn advertised_url(mut self, url: impl Into<String>) -> Self {
        self.advertised_url = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// The region of the queues created at start, of requests that carry no signature, and of
    /// [`LocalSqs::client`]. The default is the state's region ([`REGION`] for new state). A
    /// signed request acts in the region of its signature, as on SQS, where queues are per
    /// region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The account that owns the queues this server creates and serves: it is in their URLs
    /// and ARNs (default [`DEFAULT_ACCOUNT_ID`]). Servers on one [`SqsState`] with different
    /// accounts do not see each other's queues.
    pub fn account_id(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = account_id.into();
        self
    }

    /// How many connections are served at once (default 4096); more wait to be accepted.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.limits.max_connections = max.max(1);
        self
    }

    /// How long a client may take to send a request's headers, and then its body (default
    /// 30 s). A kept-alive connection with no request for this long is closed.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.read_timeout = timeout;
        self
    }

    /// Latency added to every request, per operation: see [`Latency`] (default none). With
    /// [`Latency::aws`] calls take about as long as on SQS in one region, to measure a consumer's
    /// throughput, or to test timeouts and visibility heartbeats, under realistic delays.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let latency: sqs_local::Latency = "receive=15ms,send=8ms,delete=8ms".parse()?;
    /// let server = sqs_local::LocalSqs::builder().latency(latency).start().await?;
    /// # server.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
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
        let scope = store::Scope {
            region: self.region.unwrap_or_else(|| state.region().to_owned()),
            account: self.account_id,
        };
        create_queues(&state, &scope, &self.queues)?;
        let base_url = self
            .advertised_url
            .unwrap_or_else(|| default_base_url(addr));
        let token = CancellationToken::new();
        let task = tokio::spawn(server::serve(
            listener,
            state.clone(),
            token.clone(),
            server::Site {
                base_url,
                scope: scope.clone(),
            },
            self.limits,
            self.latency,
        ));
        tracing::info!(%addr, region = %scope.region, account = %scope.account, "sqs-local listening");
        Ok(LocalSqs {
            addr,
            scope,
            state,
            token,
            task: Some(task),
        })
    }
}

/// Creates the builder's queues: dead-letter queues that no spec declares first, then each spec
/// in order (a declared dead-letter queue must come before the queues that use it).
fn create_queues(
    state: &SqsState,
    scope: &store::Scope,
    specs: &[QueueSpec],
) -> std::io::Result<()> {
    let invalid = |name: &str, e: ApiError| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("sqs-local could not create queue {name:?}: {e}"),
        )
    };
    let declared = |name: &str| specs.iter().any(|s| s.name == name);
    for (dlq, _) in specs.iter().filter_map(|s| s.dead_letter.as_ref()) {
        if !declared(dlq) {
            let spec = QueueSpec::new(dlq.clone());
            state
                .create_in(scope, &spec.name, &spec.attributes)
                .map_err(|e| invalid(dlq, e))?;
        }
    }
    for spec in specs {
        let mut attributes = spec.attributes.clone();
        if let Some((dlq, max)) = &spec.dead_letter {
            let arn = format!("arn:aws:sqs:{}:{}:{dlq}", scope.region, scope.account);
            attributes.insert(
                "RedrivePolicy".to_owned(),
                serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max.to_string() })
                    .to_string(),
            );
        }
        state
            .create_in(scope, &spec.name, &attributes)
            .map_err(|e| invalid(&spec.name, e))?;
    }
    Ok(())
}

/// A running sqs-local server. Dropping it stops the server; [`LocalSqs::shutdown`] also waits
/// until the port is closed.
#[derive(Debug)]
pub struct LocalSqs {
    addr: SocketAddr,
    scope: store::Scope,
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
            advertised_url: None,
            limits: connections::Limits::default(),
            region: None,
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            latency: Latency::none(),
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

    /// The region of [`LocalSqs::client`], of the queues created at start and of unsigned
    /// requests.
    pub fn region(&self) -> &str {
        &self.scope.region
    }

    /// The account that owns this server's queues.
    pub fn account_id(&self) -> &str {
        &self.scope.account
    }

    /// The queues and messages served.
    pub fn state(&self) -> &SqsState {
        &self.state
    }

    /// Requests answered, by operation.
    pub fn stats(&self) -> &ApiStats {
        self.state.stats()
    }

    /// An AWS SDK configuration for this server: its endpoint, its region (`us-east-1` unless
    /// [`LocalSqsBuilder::region`] chose another) and static test credentials; nothing read
    /// from the environment.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config_in(&self.endpoint_url(), &self.scope.region)
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

/// `http://<addr>`, with a loopback address standing for an unspecified one.
fn default_base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// An AWS SDK configuration for an SQS-compatible endpoint, with region `us-east-1` and static
/// test credentials.
pub fn sdk_config_for(endpoint_url: &str) -> aws_config::SdkConfig {
    sdk_config_in(endpoint_url, REGION)
}

/// An AWS SDK configuration for an SQS-compatible endpoint in `region` (queues are per
/// region), with static test credentials.
pub fn sdk_config_in(endpoint_url: &str, region: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint_url)
        .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
            Credentials::new("test", "test", None, None, "sqs-local"),
        ))
        .build()
}
