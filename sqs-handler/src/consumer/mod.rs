//! The consumer: one poll loop per queue, handlers dispatched under a concurrency limit,
//! acknowledgements batched, a visibility heartbeat, and a graceful shutdown.
//!
//! The messages of one receive are handled concurrently within one task (a slow message never
//! holds back the others), and the receives run in parallel on the runtime's threads. A handler
//! that burns CPU for long should move that work to `tokio::task::spawn_blocking` or its own
//! task, as in any async code.
//!
//! Shutdown ([`SqsConsumer::run_until`]): receiving stops at once, except that a receive in
//! flight is let run to its end: SQS keeps serving a long poll whose client went away, and it
//! would take the messages released below and strand them, invisible, with a receive count
//! spent. Messages that receive returns are handled like any others. Then running handlers get
//! up to the shutdown timeout to finish, pending deletes are flushed, whatever did not finish
//! is released (visibility 0), `stopped` fires, and `run_until` returns: at most the wait time
//! plus the shutdown timeout after the signal.

mod ack;
mod breaker;
mod builder;
mod heartbeat;
#[cfg(feature = "lambda")]
pub(crate) mod invoke;
mod poll;
mod status;
pub(crate) mod worker;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[cfg(feature = "test-util")]
pub(crate) use ack::AckOp;
pub(crate) use ack::Acks;
pub use breaker::{CircuitBreaker, CircuitState, Failure, FailureFilter};
pub use builder::SqsConsumerBuilder;
pub use status::{ConsumerControl, QueueStatus, StatusHandle, UnknownQueue};

use crate::events::Hooks;
use crate::extract::HookContext;
use crate::options::QueueOptions;
use crate::state::StateMap;
use status::Counters;
use worker::Dispatch;

/// What every part of one queue's consumer shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) queue: Arc<str>,
    pub(crate) url: String,
    pub(crate) client: Client,
    pub(crate) fifo: bool,
    pub(crate) options: QueueOptions,
    pub(crate) visibility: Duration,
    pub(crate) hooks: Hooks,
    pub(crate) hook_ctx: HookContext,
    pub(crate) state: Arc<StateMap>,
    pub(crate) counters: Arc<Counters>,
    /// Name and URL of the queue non-retryable messages are forwarded to.
    pub(crate) forward: Option<(String, String)>,
    /// The queue's circuit breaker, when it has one.
    pub(crate) breaker: Option<Arc<breaker::Breaker>>,
    /// Span names, metric handles, and the queue's `maxReceiveCount`.
    pub(crate) telemetry: crate::telemetry::Telemetry,
}

/// A built consumer, ready to run: one poll loop per queue, started by [`run`](Self::run) or
/// [`run_until`](Self::run_until), which return after a graceful shutdown.
///
/// Make one with [`SqsConsumer::builder`]. What it does with each message (concurrency,
/// deletes, retries, the heartbeat, timeouts, FIFO order, the circuit breaker, shutdown) is
/// described in [How the consumer works](crate::guide::consumer).
///
/// ```no_run
/// use sqs_handler::{Body, SqsConsumer, sqs_message_handler};
///
/// #[sqs_message_handler("jobs")]
/// async fn run_job(Body(body): Body) {
///     println!("{body}");
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
///     let consumer = SqsConsumer::builder(&config).build().await?;
///     consumer.run().await?;
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct SqsConsumer {
    queues: Vec<(Arc<Shared>, Dispatch)>,
    status: StatusHandle,
    shutdown_timeout: Duration,
}

/// A queue's consumer task ended abnormally (it panicked); the others were shut down.
///
/// Handler panics are caught and never cause this; it means a bug in the consumer itself, and
/// the process should exit (and be restarted) rather than go on without consuming the queue.
///
/// ```no_run
/// # async fn run(consumer: sqs_handler::SqsConsumer) {
/// if let Err(e) = consumer.run().await {
///     eprintln!("consumer of {} failed: {}", e.queue, e.source);
///     std::process::exit(1);
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[error("the consumer task of queue {queue:?} ended unexpectedly: {source}")]
#[non_exhaustive]
pub struct RunError {
    /// The queue.
    pub queue: String,
    /// The task's end: [`JoinError::is_panic`](tokio::task::JoinError::is_panic) and
    /// [`JoinError::into_panic`](tokio::task::JoinError::into_panic) give the panic.
    #[source]
    pub source: tokio::task::JoinError,
}

impl SqsConsumer {
    /// Starts a builder with a client made from an AWS SDK configuration
    /// (`aws_config::load_defaults(..)`: credentials, region and `AWS_ENDPOINT_URL_SQS` from the
    /// standard chain). Handlers declared with `#[sqs_message_handler]` are discovered.
    ///
    /// ```no_run
    /// use sqs_handler::{QueueOptions, SqsConsumer};
    ///
    /// # async fn build() -> Result<sqs_handler::SqsConsumer, Box<dyn std::error::Error>> {
    /// let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    /// let consumer = SqsConsumer::builder(&config)
    ///     .queue("jobs", QueueOptions::default().concurrency(50))
    ///     .build()
    ///     .await?;
    /// # Ok(consumer)
    /// # }
    /// ```
    pub fn builder(config: &aws_types::SdkConfig) -> SqsConsumerBuilder {
        SqsConsumerBuilder::new(Client::new(config))
    }

    /// Starts a builder with an existing client: one configured by hand (retries, timeouts,
    /// an HTTP client of your choice without the `default-https-client` feature), or shared
    /// with the rest of the application.
    ///
    /// ```no_run
    /// use sqs_handler::SqsConsumer;
    /// use sqs_handler::aws_sdk_sqs::{self, config::retry::RetryConfig};
    ///
    /// # async fn build() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    /// let sqs = aws_sdk_sqs::config::Builder::from(&config)
    ///     .retry_config(RetryConfig::standard().with_max_attempts(5))
    ///     .build();
    /// let consumer = SqsConsumer::builder_with_client(aws_sdk_sqs::Client::from_conf(sqs))
    ///     .build()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder_with_client(client: Client) -> SqsConsumerBuilder {
        SqsConsumerBuilder::new(client)
    }

    /// A handle to read the status of each queue; take it before running (`run` consumes the
    /// consumer), and read it from a health check while it runs.
    ///
    /// ```no_run
    /// # async fn run(consumer: sqs_handler::SqsConsumer) -> Result<(), sqs_handler::RunError> {
    /// let status = consumer.status();
    /// tokio::spawn(async move {
    ///     loop {
    ///         tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    ///         for queue in status.snapshot() {
    ///             println!("{}: {} in flight, {} failed", queue.queue, queue.in_flight, queue.failed);
    ///         }
    ///     }
    /// });
    /// consumer.run().await
    /// # }
    /// ```
    pub fn status(&self) -> StatusHandle {
        self.status.clone()
    }

    /// The queues this consumer polls, by name.
    ///
    /// ```
    /// use sqs_handler::SqsConsumer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = sqs_local::LocalSqs::builder().queue("a").queue("b").start().await?;
    /// let consumer = SqsConsumer::builder(&server.sdk_config())
    ///     .discover(false)
    ///     .handler("a", || async {})
    ///     .handler("b", || async {})
    ///     .build()
    ///     .await?;
    /// assert_eq!(consumer.queues(), ["a", "b"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn queues(&self) -> Vec<&str> {
        self.queues.iter().map(|(s, _)| &*s.queue).collect()
    }

    /// Runs until `signal` completes, then shuts down gracefully:
    ///
    /// 1. Receiving stops at once, except that a receive in flight runs to its end (at most
    ///    the queue's [wait time](QueueOptions::wait_time)). Cutting it would not stop it in
    ///    SQS: the server keeps an abandoned long poll open and hands it the messages released
    ///    in step 3, which would stay invisible for the visibility timeout with a receive count
    ///    spent. What it returns is handled like any other message.
    /// 2. Running handlers get up to the
    ///    [shutdown timeout](SqsConsumerBuilder::shutdown_timeout) to finish; then they are
    ///    cancelled.
    /// 3. Deletes are flushed and every message that did not finish is released (visibility
    ///    0), so it is visible again at once; `stopped` fires.
    ///
    /// So it returns at most the wait time plus the shutdown timeout after `signal`, plus the
    /// final SQS calls.
    ///
    /// # Errors
    /// When a queue's consumer task panicked, which the consumer's own code never does.
    ///
    /// # Example
    ///
    /// Stop after a deadline, or on Ctrl-C or SIGTERM, whichever comes first (here against a
    /// local server, and with a short long poll so that the shutdown is quick):
    ///
    /// ```
    /// use std::time::Duration;
    /// use sqs_handler::{QueueOptions, SqsConsumer, shutdown_signal};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = sqs_local::LocalSqs::builder().queue("jobs").start().await?;
    /// # let config = server.sdk_config();
    /// let consumer = SqsConsumer::builder(&config)
    ///     .discover(false)
    ///     .queue("jobs", QueueOptions::default().wait_time(Duration::from_secs(1)))
    ///     .handler("jobs", || async {})
    ///     .build()
    ///     .await?;
    /// consumer
    ///     .run_until(async {
    ///         tokio::select! {
    ///             _ = tokio::time::sleep(Duration::from_millis(100)) => {}
    ///             _ = shutdown_signal() => {}
    ///         }
    ///     })
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<(), RunError> {
        let stops: Vec<CancellationToken> = self
            .queues
            .iter()
            .map(|(shared, _)| shared.counters.stop.clone())
            .collect();
        let mut set = JoinSet::new();
        let mut names = std::collections::HashMap::new();
        for (shared, dispatch) in self.queues {
            let queue = shared.queue.to_string();
            let stop = shared.counters.stop.clone();
            let handle = set.spawn(worker::run_queue(
                shared,
                dispatch,
                stop,
                self.shutdown_timeout,
            ));
            names.insert(handle.id(), queue);
        }
        let mut errors = Vec::new();
        let mut signal = std::pin::pin!(signal);
        loop {
            tokio::select! {
                _ = &mut signal => break,
                ended = set.join_next() => match ended {
                    // Every queue was stopped through `ConsumerControl`.
                    None => break,
                    Some(Ok(())) => {}
                    Some(Err(e)) => {
                        errors.push(e);
                        break;
                    }
                },
            }
        }
        tracing::info!("consumer shutting down");
        for stop in &stops {
            stop.cancel();
        }
        while let Some(r) = set.join_next().await {
            if let Err(e) = r {
                errors.push(e);
            }
        }
        match errors.into_iter().next() {
            None => Ok(()),
            Some(e) => Err(RunError {
                queue: names.get(&e.id()).cloned().unwrap_or_default(),
                source: e,
            }),
        }
    }

    /// A handle to pause, resume and stop each queue's consumer while it runs; take it before
    /// running. See [`ConsumerControl`].
    pub fn control(&self) -> ConsumerControl {
        ConsumerControl {
            queues: self.status.queues.clone(),
        }
    }

    /// Runs until Ctrl-C or SIGTERM ([`shutdown_signal`]), then shuts down gracefully as
    /// [`run_until`](Self::run_until) describes.
    ///
    /// ```no_run
    /// # async fn run(config: &aws_config::SdkConfig) -> Result<(), Box<dyn std::error::Error>> {
    /// sqs_handler::SqsConsumer::builder(config).build().await?.run().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`SqsConsumer::run_until`].
    pub async fn run(self) -> Result<(), RunError> {
        self.run_until(shutdown_signal()).await
    }
}

/// Completes on Ctrl-C, or on SIGTERM on Unix (what Kubernetes sends before stopping a pod).
///
/// [`SqsConsumer::run`] waits for it. To stop an HTTP server and the consumer together, share
/// one signal:
///
/// ```no_run
/// use sqs_handler::shutdown_signal;
/// use tokio::sync::watch;
///
/// # async fn run(consumer: sqs_handler::SqsConsumer) -> Result<(), sqs_handler::RunError> {
/// let (stop, mut stopping) = watch::channel(false);
/// tokio::spawn(async move {
///     shutdown_signal().await;
///     let _ = stop.send(true);
/// });
/// let mut for_http = stopping.clone();
/// // ... give `for_http.wait_for(|s| *s)` to the HTTP server's graceful shutdown ...
/// consumer.run_until(async move { let _ = stopping.wait_for(|s| *s).await; }).await
/// # }
/// ```
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
