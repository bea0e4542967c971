//! The job-status service of the original NestJS project, on sqs-handler.
//!
//! Run with `cargo run -p demo` (API and worker), `cargo run -p demo -- api` or
//! `cargo run -p demo -- worker`. With no configuration it runs sqs-local in process and keeps
//! statuses in memory; see [`Config`] for the environment variables.

pub mod api;
pub mod config;
pub mod store;
pub mod worker;

use std::net::SocketAddr;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use sqs_handler::{Producer, QueueOptions, SqsConsumer};
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

/// Creates the dead-letter queue and the jobs queue (redrive after 3 receives) if missing.
async fn ensure_queues(client: &aws_sdk_sqs::Client, queue: &str) -> Result<String, DemoError> {
    fn fail(queue: &str, e: &(dyn std::error::Error + 'static)) -> DemoError {
        DemoError::Queue {
            queue: queue.to_owned(),
            message: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
        }
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
    let arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| fail(&dlq, &e))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    let policy = format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"3"}}"#);
    let created = client
        .create_queue()
        .queue_name(queue)
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .send()
        .await;
    match created {
        Ok(_) => {}
        // It exists with other attributes: use it as it is.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_name_exists()) => {}
        Err(e) => {
            return Err(fail(queue, &e));
        }
    }
    Ok(dlq)
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
    let client = aws_sdk_sqs::Client::new(&sdk_config);
    let dlq = ensure_queues(&client, &config.queue).await?;

    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let mut status = None;
    if role.worker() {
        let consumer = SqsConsumer::builder_with_client(client.clone())
            .only_queues([config.queue.clone()])
            .queue(
                &config.queue,
                QueueOptions::default()
                    .concurrency(config.concurrency)
                    .handler_timeout(config.job_timeout)
                    .forward_non_retryable_to(&dlq),
            )
            .state(Worker {
                store: store.clone(),
                job_duration: config.job_duration,
                job_timeout: config.job_timeout,
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
        let state = ApiState {
            store,
            producer: Producer::with_client(client),
            queue: config.queue.clone(),
            consumer: status,
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
