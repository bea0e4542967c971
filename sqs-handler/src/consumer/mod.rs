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
mod poll;
mod status;
mod worker;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use breaker::{CircuitBreaker, CircuitState, Failure, FailureFilter};
pub use builder::SqsConsumerBuilder;
pub use status::{QueueStatus, StatusHandle};

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
}

/// A built consumer, ready to run. See [`SqsConsumer::builder`].
#[derive(Debug)]
pub struct SqsConsumer {
    queues: Vec<(Arc<Shared>, Dispatch)>,
    status: StatusHandle,
    shutdown_timeout: Duration,
}

/// A queue's consumer task ended abnormally (it panicked); the others were shut down.
#[derive(Debug, thiserror::Error)]
#[error("the consumer task of queue {queue:?} ended unexpectedly: {message}")]
pub struct RunError {
    /// The queue.
    pub queue: String,
    /// What happened.
    pub message: String,
}

impl SqsConsumer {
    /// Starts a builder with a client made from an AWS SDK configuration
    /// (`aws_config::load_defaults(..)`: credentials, region and `AWS_ENDPOINT_URL_SQS` from the
    /// standard chain). Handlers declared with `#[sqs_message_handler]` are discovered.
    pub fn builder(config: &aws_config::SdkConfig) -> SqsConsumerBuilder {
        SqsConsumerBuilder::new(Client::new(config))
    }

    /// Starts a builder with an existing client.
    pub fn builder_with_client(client: Client) -> SqsConsumerBuilder {
        SqsConsumerBuilder::new(client)
    }

    /// A handle to read the status of each queue; take it before running.
    pub fn status(&self) -> StatusHandle {
        self.status.clone()
    }

    /// The queues this consumer polls.
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
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<(), RunError> {
        let token = CancellationToken::new();
        let mut set = JoinSet::new();
        let mut names = std::collections::HashMap::new();
        for (shared, dispatch) in self.queues {
            let queue = shared.queue.to_string();
            let handle = set.spawn(worker::run_queue(
                shared,
                dispatch,
                token.clone(),
                self.shutdown_timeout,
            ));
            names.insert(handle.id(), queue);
        }
        let mut errors = Vec::new();
        tokio::select! {
            _ = signal => {}
            Some(Err(e)) = set.join_next() => errors.push(e),
        }
        tracing::info!("consumer shutting down");
        token.cancel();
        while let Some(r) = set.join_next().await {
            if let Err(e) = r {
                errors.push(e);
            }
        }
        match errors.into_iter().next() {
            None => Ok(()),
            Some(e) => Err(RunError {
                queue: names.get(&e.id()).cloned().unwrap_or_default(),
                message: e.to_string(),
            }),
        }
    }

    /// Runs until Ctrl-C or SIGTERM, then shuts down gracefully.
    ///
    /// # Errors
    /// As [`SqsConsumer::run_until`].
    pub async fn run(self) -> Result<(), RunError> {
        self.run_until(shutdown_signal()).await
    }
}

/// Completes on Ctrl-C, or on SIGTERM on Unix (what Kubernetes sends before stopping a pod).
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
