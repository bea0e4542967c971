//! The job-status service of the original NestJS project, on sqs-handler.
//!
//! Run with `cargo run -p demo` (API and worker), `cargo run -p demo -- api` or
//! `cargo run -p demo -- worker`. With no configuration it runs sqs-local in process and keeps
//! statuses in memory; see [`Config`] for the environment variables.

pub mod api;
pub mod config;
pub mod store;
pub mod telemetry;
pub mod worker;

use std::net::SocketAddr;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use sqs_handler::{CircuitBreaker, Producer, QueueOptions, RetryPolicy, SqsConsumer};
use tokio::task::JoinHandle;

pub use api::{ApiDoc, ApiState, app};
pub use config::{Config, ConfigError};
pub use store::{Job, JobStore, Status, StoreError};
pub use worker::{JobMessage, Worker};

/// Which parts run in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The HTTP API and the worker.
    All,
    /// The HTTP API only.
    Api,
    /// The queue worker only.
    Worker,
}

impl Role {
    fn api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }
    fn worker(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The environment is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The status store could not be set up.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The embedded sqs-local or the HTTP port could not be bound.
    #[error("cannot listen on {what}: {source}")]
    Bind {
        /// What was being bound.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The queues could not be created or found.
    #[error(
        "cannot set up queue {queue}: {message}; check AWS_ENDPOINT_URL_SQS, AWS_REGION and the credentials"
    )]
    Queue {
        /// The queue.
        queue: String,
        /// What SQS said.
        message: String,
    },
    /// The consumer could not be built.
    #[error(transparent)]
    Consumer(#[from] sqs_handler::BuildError),
}

/// A running demo: its address, and a way to stop it.
#[derive(Debug)]
pub struct Demo {
    /// Where the API listens, when this process runs it.
    pub addr: Option<SocketAddr>,
    /// The SQS endpoint in use (the embedded sqs-local's, or the configured one).
    pub sqs_endpoint: Option<String>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    embedded: Option<sqs_local::LocalSqs>,
}

impl Demo {
    /// Stops gracefully: the API stops accepting, the worker drains, then this returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.wait().await;
    }

    /// Waits until every part has stopped (after a signal handled elsewhere).
    pub async fn wait(mut self) {
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        if let Some(s) = self.embedded.take() {
            s.shutdown().await;
        }
    }

    /// A future that completes when `stop` is sent.
    fn stopped(
        rx: &tokio::sync::watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// Triggers a graceful stop from a signal; the parts stop and [`Demo::wait`] returns.
    pub fn stop_handle(&self) -> tokio::sync::watch::Sender<bool> {
        self.stop.clone()
    }
}

/// The queues the demo uses, as found or created at start.
#[derive(Debug, Clone)]
pub struct Queues {
    /// The jobs queue's name.
    pub queue: String,
    /// Its URL.
    pub queue_url: String,
    /// Its ARN.
    pub queue_arn: String,
    /// The dead-letter queue's name (`<queue>-dlq`).
    pub dlq: String,
    /// Its URL.
    pub dlq_url: String,
    /// Its ARN.
    pub dlq_arn: String,
    /// The jobs queue's `maxReceiveCount`, when it has a RedrivePolicy.
    pub max_receive_count: Option<u32>,
}

/// How many receives the demo's RedrivePolicy allows before SQS dead-letters a message.
pub const MAX_RECEIVE_COUNT: u32 = 3;

/// Connect timeout of every SQS call.
const SQS_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One attempt of an API call to SQS (the SDK retries a failed attempt).
const API_SQS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// An API call to SQS, retries included: the API answers 503 within this (plus a Redis
/// round trip) when SQS does not answer.
pub const API_SQS_TIMEOUT: Duration = Duration::from_secs(4);
/// One attempt of a worker call: above the 20 s long poll.
const WORKER_SQS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// A worker call, retries included.
const WORKER_SQS_TIMEOUT: Duration = Duration::from_secs(65);
/// `GET /health`'s SQS check: one attempt, no retry.
pub const HEALTH_SQS_TIMEOUT: Duration = Duration::from_secs(2);

/// An SQS client on `sdk` with these timeouts (and no retries when `retry` is false).
fn sqs_client(
    sdk: &aws_config::SdkConfig,
    attempt: Duration,
    operation: Duration,
    retry: bool,
) -> aws_sdk_sqs::Client {
    let timeouts = aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
        .connect_timeout(SQS_CONNECT_TIMEOUT)
        .operation_attempt_timeout(attempt)
        .operation_timeout(operation)
        .build();
    let mut conf = aws_sdk_sqs::config::Builder::from(sdk).timeout_config(timeouts);
    if !retry {
        conf = conf.retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled());
    }
    aws_sdk_sqs::Client::from_conf(conf.build())
}

/// The SQS clients of the demo's parts: a worker's calls must outlast the 20 s long poll, an
/// API request must not wait that long.
#[derive(Debug, Clone)]
pub struct SqsClients {
    /// The worker's, and queue setup's: attempts of 30 s, 65 s in all.
    pub worker: aws_sdk_sqs::Client,
    /// The API's producer and redrive: attempts of 2 s, 4 s in all.
    pub api: aws_sdk_sqs::Client,
    /// The health check's: one attempt of 2 s.
    pub probe: aws_sdk_sqs::Client,
}

impl SqsClients {
    /// The three clients on one SDK configuration.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            worker: sqs_client(sdk, WORKER_SQS_ATTEMPT_TIMEOUT, WORKER_SQS_TIMEOUT, true),
            api: sqs_client(sdk, API_SQS_ATTEMPT_TIMEOUT, API_SQS_TIMEOUT, true),
            probe: sqs_client(sdk, HEALTH_SQS_TIMEOUT, HEALTH_SQS_TIMEOUT, false),
        }
    }
}

/// `maxReceiveCount` of a RedrivePolicy (AWS writes it as a string, some emulators as a
/// number).
fn max_receive_count(policy: &str) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(policy).ok()?;
    match &v["maxReceiveCount"] {
        serde_json::Value::String(s) => s.parse().ok(),
        n => n.as_u64().and_then(|n| u32::try_from(n).ok()),
    }
}

/// Creates the dead-letter queue and the jobs queue (redrive after [`MAX_RECEIVE_COUNT`]
/// receives) if missing, and reads what the demo needs of them.
async fn ensure_queues(client: &aws_sdk_sqs::Client, queue: &str) -> Result<Queues, DemoError> {
    fn fail(queue: &str, e: &(dyn std::error::Error + 'static)) -> DemoError {
        DemoError::Queue {
            queue: queue.to_owned(),
            message: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
        }
    }
    async fn attributes(
        client: &aws_sdk_sqs::Client,
        queue: &str,
        url: &str,
    ) -> Result<std::collections::HashMap<QueueAttributeName, String>, DemoError> {
        Ok(client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| fail(queue, &e))?
            .attributes
            .unwrap_or_default())
    }
    let dlq = format!("{queue}-dlq");
    let dlq_url = client
        .create_queue()
        .queue_name(&dlq)
        .send()
        .await
        .map_err(|e| fail(&dlq, &e))?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = attributes(client, &dlq, &dlq_url)
        .await?
        .remove(&QueueAttributeName::QueueArn)
        .unwrap_or_default();
    let policy =
        format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{MAX_RECEIVE_COUNT}"}}"#);
    let created = client
        .create_queue()
        .queue_name(queue)
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .send()
        .await;
    let queue_url = match created {
        Ok(out) => out.queue_url.unwrap_or_default(),
        // It exists with other attributes: use it as it is.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_name_exists()) =>
        {
            client
                .get_queue_url()
                .queue_name(queue)
                .send()
                .await
                .map_err(|e| fail(queue, &e))?
                .queue_url
                .unwrap_or_default()
        }
        Err(e) => {
            return Err(fail(queue, &e));
        }
    };
    let mut attrs = attributes(client, queue, &queue_url).await?;
    let max_receive_count = attrs
        .get(&QueueAttributeName::RedrivePolicy)
        .and_then(|p| max_receive_count(p));
    Ok(Queues {
        queue: queue.to_owned(),
        queue_url,
        queue_arn: attrs
            .remove(&QueueAttributeName::QueueArn)
            .unwrap_or_default(),
        dlq,
        dlq_url,
        dlq_arn,
        max_receive_count,
    })
}

/// Starts the demo's parts for `role`, with the SQS configuration [`Config`] describes.
///
/// # Errors
/// A [`DemoError`] naming what could not start.
pub async fn start(config: Config, role: Role) -> Result<Demo, DemoError> {
    if config.use_aws_chain {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let endpoint = config.sqs_endpoint.clone();
        start_with_sdk_config(config, role, sdk, endpoint, None).await
    } else {
        let server = sqs_local::LocalSqs::builder()
            .bind(SocketAddr::from(([127, 0, 0, 1], config.sqs_local_port)))
            .start()
            .await
            .map_err(|source| DemoError::Bind {
                what: format!(
                    "127.0.0.1:{} for the embedded sqs-local (set SQS_LOCAL_PORT)",
                    config.sqs_local_port
                ),
                source,
            })?;
        tracing::info!(endpoint = %server.endpoint_url(), "no SQS endpoint configured: running sqs-local in process");
        let endpoint = server.endpoint_url();
        start_with_sdk_config(
            config,
            role,
            server.sdk_config(),
            Some(endpoint),
            Some(server),
        )
        .await
    }
}

/// Starts the demo's parts for `role` on a given AWS SDK configuration (tests use it to point
/// at an endpoint without touching the environment). `embedded` is stopped with the demo.
///
/// # Errors
/// A [`DemoError`] naming what could not start.
pub async fn start_with_sdk_config(
    config: Config,
    role: Role,
    sdk_config: aws_config::SdkConfig,
    sqs_endpoint: Option<String>,
    embedded: Option<sqs_local::LocalSqs>,
) -> Result<Demo, DemoError> {
    let store = match &config.redis_url {
        Some(url) => JobStore::redis(url, &config.key_prefix, config.status_ttl)?,
        None => {
            tracing::info!(
                "REDIS_URL is not set: statuses are kept in this process's memory (lost on exit, not shared with another process)"
            );
            JobStore::memory()
        }
    };
    // Installed with the API, which serves it (a worker alone has no HTTP listener), and
    // before the consumer is built: sqs-handler takes its metric handles from the recorder
    // installed when it builds.
    let metrics = if role.api() {
        telemetry::prometheus().map_err(|e| {
            tracing::warn!(error = %e, "GET /metrics will answer 503");
            e.to_string()
        })
    } else {
        Err("no API in this process".to_owned())
    };
    let clients = SqsClients::new(&sdk_config);
    let queues = ensure_queues(&clients.worker, &config.queue).await?;

    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let mut status = None;
    if role.worker() {
        let retry = match config.retry_delay {
            None => RetryPolicy::LeaveUntilVisibilityTimeout,
            Some(initial) => RetryPolicy::ExponentialBackoff {
                initial,
                max: Duration::from_secs(900),
            },
        };
        let consumer = SqsConsumer::builder_with_client(clients.worker.clone())
            .only_queues([config.queue.clone()])
            .queue(
                &config.queue,
                QueueOptions::default()
                    .concurrency(config.concurrency)
                    .handler_timeout(config.job_timeout)
                    .wait_time(config.wait_time)
                    .retry(retry)
                    .forward_non_retryable_to(&queues.dlq)
                    // A Redis outage fails every job: stop receiving instead of spending the
                    // messages' receive counts until the dead-letter queue takes them.
                    .circuit_breaker(CircuitBreaker::default().open_for(config.breaker_open_for))
                    // One trace from `POST /jobs` to the job's handler: the process span's
                    // parent is the context the message carries (its `traceparent`).
                    .trace_parent(true),
            )
            .state(Worker {
                store: store.clone(),
                job_duration: config.job_duration,
                job_timeout: config.job_timeout,
                dlq: queues.dlq.clone(),
                max_receive_count: queues.max_receive_count,
            })
            .shutdown_timeout(config.job_duration + Duration::from_secs(5))
            .build()
            .await?;
        status = Some(consumer.status());
        let signal = Demo::stopped(&stop_rx);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = consumer.run_until(signal).await {
                tracing::error!(error = %e, "the worker stopped with an error");
            }
        }));
    }
    let mut addr = None;
    if role.api() {
        let upkeep = metrics.as_ref().ok().cloned();
        let state = ApiState {
            store,
            producer: Producer::with_client(clients.api.clone()),
            sqs: clients,
            queues,
            sqs_endpoint: sqs_endpoint.clone(),
            consumer: status,
            metrics,
        };
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], config.port)))
                .await
                .map_err(|source| DemoError::Bind {
                    what: format!("127.0.0.1:{} for the API (set PORT)", config.port),
                    source,
                })?;
        let local = listener.local_addr().map_err(|source| DemoError::Bind {
            what: "the API port".into(),
            source,
        })?;
        addr = Some(local);
        if let Some(handle) = upkeep {
            let stop = Demo::stopped(&stop_rx);
            tasks.push(tokio::spawn(telemetry::run_upkeep(handle, stop)));
        }
        let signal = Demo::stopped(&stop_rx);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app(state))
                .with_graceful_shutdown(signal)
                .await
            {
                tracing::error!(error = %e, "the API stopped with an error");
            }
        }));
    }
    Ok(Demo {
        addr,
        sqs_endpoint,
        stop,
        tasks,
        embedded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_receive_count_reads_strings_and_numbers() {
        assert_eq!(
            max_receive_count(r#"{"deadLetterTargetArn":"a","maxReceiveCount":"3"}"#),
            Some(3)
        );
        assert_eq!(max_receive_count(r#"{"maxReceiveCount":5}"#), Some(5));
        assert_eq!(max_receive_count(r#"{"maxReceiveCount":"x"}"#), None);
        assert_eq!(max_receive_count("not json"), None);
    }
}
