//! The messages of one Lambda invocation, handled by the consumer's own worker: the same
//! extractors, layers, hooks, timeouts and outcome rules, without polling, heartbeat or deletes.
//! Lambda deletes every message the function does not report, so the worker's deletes are only
//! recorded: a message is reported unless it was deleted (handled, non-retryable, forwarded, or
//! deleted by its handler's `Acknowledgement`).

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::StreamExt as _;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Shared;
use super::ack::{AckOp, Acks};
use super::worker::{Dispatch, Worker, fifo_groups};
use crate::handler::{BatchFn, HandlerService};
use crate::message::SqsMessage;

/// One queue as a Lambda function serves it.
#[derive(Debug, Clone)]
pub(crate) struct QueueInvoker {
    pub(crate) shared: Arc<Shared>,
    pub(crate) dispatch: Dispatch,
}

impl QueueInvoker {
    /// Handles `messages` (in the event's order) and returns the message ids to report as
    /// failed, in the event's order.
    pub(crate) async fn handle(&self, messages: Vec<SqsMessage>, deadline: Instant) -> Vec<String> {
        let order: Vec<String> = messages.iter().map(|m| m.message_id().to_owned()).collect();
        let failed: HashSet<String> = match &self.dispatch {
            Dispatch::Batch(f) => self.batch(f.clone(), messages, deadline).await,
            Dispatch::Message(svc) => self.each(svc, messages, deadline).await,
        };
        order.into_iter().filter(|id| failed.contains(id)).collect()
    }

    /// A worker whose acknowledgements are recorded, for one message or one batch.
    fn worker(
        &self,
        deadline: Instant,
    ) -> (Arc<Worker>, tokio::sync::mpsc::UnboundedReceiver<AckOp>) {
        let (acks, ops) = Acks::recording();
        let worker = Arc::new(Worker {
            shared: self.shared.clone(),
            dispatch: self.dispatch.clone(),
            heartbeat: None,
            acks,
            tasks: std::sync::Mutex::new(JoinSet::new()),
            capacity: Arc::new(Semaphore::new(self.shared.options.concurrency)),
            running: None,
            backlog: tokio::sync::watch::channel(false).0,
            deadline: Some(deadline),
            shutdown: tokio_util::sync::CancellationToken::new(),
            collecting: tokio::sync::Mutex::new(()),
        });
        (worker, ops)
    }

    /// The batch handler's messages; on a FIFO queue the worker deletes none of a group's
    /// messages after one that failed, so they are reported with it.
    async fn batch(
        &self,
        f: BatchFn,
        messages: Vec<SqsMessage>,
        deadline: Instant,
    ) -> HashSet<String> {
        let (worker, mut ops) = self.worker(deadline);
        let all = messages.clone();
        worker
            .process_batch(f, messages, Vec::new(), None, Instant::now())
            .await;
        let deleted = deleted(&mut ops);
        all.iter()
            .filter(|m| !deleted.contains(m.receipt_handle()))
            .map(|m| m.message_id().to_owned())
            .collect()
    }

    /// Message by message, up to the queue's concurrency; a FIFO queue's groups in parallel,
    /// each in order, stopping at its first failure (reported with every later message of the
    /// group, which is not handled).
    async fn each(
        &self,
        svc: &HandlerService,
        messages: Vec<SqsMessage>,
        deadline: Instant,
    ) -> HashSet<String> {
        let groups = if self.shared.fifo {
            fifo_groups(messages, |m| m)
        } else {
            messages.into_iter().map(|m| vec![m]).collect()
        };
        futures_util::stream::iter(groups)
            .map(|group| self.group(svc.clone(), group, deadline))
            .buffer_unordered(self.shared.options.concurrency)
            .flat_map(futures_util::stream::iter)
            .collect()
            .await
    }

    /// One group's messages in order (a standard queue's message alone), through one worker
    /// whose deletes are recorded; the message ids to report.
    async fn group(
        &self,
        svc: HandlerService,
        group: Vec<SqsMessage>,
        deadline: Instant,
    ) -> Vec<String> {
        let (worker, mut ops) = self.worker(deadline);
        let mut rest = group.into_iter();
        while let Some(message) = rest.next() {
            if Instant::now() >= deadline {
                // Past the deadline less the margin: reported without running, so that the
                // function answers before Lambda stops it.
                return std::iter::once(message)
                    .chain(rest)
                    .map(|m| m.message_id().to_owned())
                    .collect();
            }
            let handle = message.receipt_handle().to_owned();
            let id = message.message_id().to_owned();
            worker
                .handle(svc.clone(), message, Instant::now(), false)
                .await;
            if !deleted(&mut ops).contains(&handle) {
                return std::iter::once(id)
                    .chain(rest.map(|m| m.message_id().to_owned()))
                    .collect();
            }
        }
        Vec::new()
    }
}

/// The receipt handles the worker deleted since the last call.
fn deleted(ops: &mut tokio::sync::mpsc::UnboundedReceiver<AckOp>) -> HashSet<String> {
    let mut deleted = HashSet::new();
    while let Ok(op) = ops.try_recv() {
        if let AckOp::Delete(handle) = op {
            deleted.insert(handle);
        }
    }
    deleted
}
