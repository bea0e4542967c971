//! The set of queues, and the dispatch of each operation of the API to its function: queue
//! operations in `store/queues.rs`, message operations in `store/messages.rs`, dead-letter
//! queue redrive in `store/move_tasks.rs`.

mod messages;
mod move_tasks;
mod queues;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, ApiResult};
use crate::protocol::required;
use crate::queue::{self, ACCOUNT_ID, Queue, QueueConfig};

macro_rules! operations {
    ($($name:ident),* $(,)?) => {
        /// An operation of the SQS API that sqs-local serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Operation {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $name,
            )*
        }

        impl Operation {
            /// Every operation, in the order of [`ApiStats`] counters.
            pub const ALL: &'static [Operation] = &[$(Operation::$name),*];

            /// The operation's name as in `X-Amz-Target: AmazonSQS.<name>`.
            pub fn name(self) -> &'static str {
                match self { $(Operation::$name => stringify!($name)),* }
            }

            /// Looks an operation up by name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $(stringify!($name) => Some(Operation::$name),)* _ => None }
            }
        }
    };
}

operations!(
    CreateQueue,
    GetQueueUrl,
    ListQueues,
    DeleteQueue,
    GetQueueAttributes,
    SetQueueAttributes,
    PurgeQueue,
    SendMessage,
    SendMessageBatch,
    ReceiveMessage,
    DeleteMessage,
    DeleteMessageBatch,
    ChangeMessageVisibility,
    ChangeMessageVisibilityBatch,
    ListDeadLetterSourceQueues,
    TagQueue,
    UntagQueue,
    ListQueueTags,
    StartMessageMoveTask,
    ListMessageMoveTasks,
    CancelMessageMoveTask,
);

/// Counts of the requests a server answered, by operation, since it started (or since the
/// last [`ApiStats::reset`]).
#[derive(Debug, Default)]
pub struct ApiStats {
    calls: [AtomicU64; Operation::ALL.len()],
    empty_receives: AtomicU64,
}

impl ApiStats {
    pub(crate) fn record(&self, op: Operation) {
        self.calls[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered for one operation.
    pub fn calls(&self, op: Operation) -> u64 {
        self.calls[op as usize].load(Ordering::Relaxed)
    }

    /// Requests answered for every operation together.
    pub fn total(&self) -> u64 {
        self.calls.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// ReceiveMessage requests that returned no message.
    pub fn empty_receives(&self) -> u64 {
        self.empty_receives.load(Ordering::Relaxed)
    }

    /// Sets every counter back to zero.
    pub fn reset(&self) {
        for c in &self.calls {
            c.store(0, Ordering::Relaxed);
        }
        self.empty_receives.store(0, Ordering::Relaxed);
    }

    /// The non-zero counters, by operation name.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        Operation::ALL
            .iter()
            .map(|op| (op.name(), self.calls(*op)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// The queues and messages of a server. Cloning shares them, so a server can be stopped and
/// another started on the same state (to test a consumer across an endpoint outage).
#[derive(Debug, Clone)]
pub struct SqsState {
    inner: Arc<StateInner>,
}

#[derive(Debug)]
struct StateInner {
    region: String,
    queues: RwLock<HashMap<String, Arc<Queue>>>,
    stats: ApiStats,
    move_tasks: Mutex<Vec<Arc<move_tasks::MoveTask>>>,
}

impl Default for SqsState {
    fn default() -> Self {
        Self::new("us-east-1")
    }
}

fn parse_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::serialization(format!(
            "The request body is not valid for this operation: {e}."
        ))
    })
}

/// Serializes a response body. Our response types have string keys only, so this cannot fail;
/// an empty object stands in if it ever did.
fn reply<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec())
}

/// The queue name a queue URL ends with.
fn name_from_url(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

fn opt_range(name: &str, value: Option<i64>, min: i64, max: i64) -> ApiResult<Option<i64>> {
    match value {
        Some(v) if !(min..=max).contains(&v) => Err(ApiError::invalid_parameter(format!(
            "Value {v} for parameter {name} is invalid. Reason: must be between {min} and {max}."
        ))),
        v => Ok(v),
    }
}

/// What a long poll may be cut short by.
#[derive(Debug, Clone)]
pub(crate) struct Closing(pub(crate) CancellationToken);

/// One request, as every operation function takes it.
struct Call<'a> {
    body: &'a [u8],
    /// `http://host:port` that queue URLs start with.
    base: &'a str,
    closing: &'a Closing,
    now: Instant,
}

impl SqsState {
    /// Empty state whose ARNs name `region`.
    pub fn new(region: &str) -> Self {
        Self {
            inner: Arc::new(StateInner {
                region: region.to_owned(),
                queues: RwLock::new(HashMap::new()),
                stats: ApiStats::default(),
                move_tasks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Request counters, by operation.
    pub fn stats(&self) -> &ApiStats {
        &self.inner.stats
    }

    /// The names of the queues that exist.
    pub fn queue_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// Creates a queue with attributes, or checks that an existing one has the same.
    pub fn create_queue(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        self.create(name, attributes, BTreeMap::new())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Queue>>> {
        self.inner.queues.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Queue>>> {
        self.inner.queues.write().unwrap_or_else(|e| e.into_inner())
    }

    fn queue(&self, url: Option<String>) -> ApiResult<Arc<Queue>> {
        let url = required(url, "QueueUrl")?;
        self.read()
            .get(name_from_url(&url))
            .cloned()
            .ok_or_else(ApiError::queue_does_not_exist)
    }

    fn queue_by_name(&self, name: &str) -> Option<Arc<Queue>> {
        self.read().get(name).cloned()
    }

    fn queue_by_arn(&self, arn: &str) -> Option<Arc<Queue>> {
        let name = arn.rsplit(':').next()?;
        self.queue_by_name(name).filter(|q| q.arn == arn)
    }

    /// The names of the queues whose redrive policy targets the queue `dlq`, sorted.
    fn dead_letter_sources(&self, dlq: &str) -> Vec<String> {
        let queues: Vec<Arc<Queue>> = self.read().values().cloned().collect();
        let mut names: Vec<String> = queues
            .iter()
            .filter(|q| {
                q.lock()
                    .config
                    .redrive
                    .as_ref()
                    .is_some_and(|r| r.target_name == dlq)
            })
            .map(|q| q.name.clone())
            .collect();
        names.sort();
        names
    }

    fn url(base: &str, name: &str) -> String {
        format!("{base}/{ACCOUNT_ID}/{name}")
    }

    fn check_redrive_target(&self, fifo: bool, config: &QueueConfig) -> ApiResult<()> {
        if let Some(r) = &config.redrive {
            let target = self.queue_by_name(&r.target_name).ok_or_else(|| {
                ApiError::invalid_attribute_value(
                    "RedrivePolicy",
                    &format!("Dead letter target does not exist: {}.", r.target_arn),
                )
            })?;
            if target.fifo != fifo {
                return Err(ApiError::invalid_attribute_value(
                    "RedrivePolicy",
                    "Dead-letter queue must be the same type of queue as the source queue (standard or FIFO).",
                ));
            }
        }
        Ok(())
    }

    fn create(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> ApiResult<()> {
        queue::validate_name(name)?;
        let fifo = name.ends_with(".fifo");
        if !fifo
            && attributes
                .get("FifoQueue")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(ApiError::invalid_parameter(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix.",
            ));
        }
        if fifo
            && !attributes
                .get("FifoQueue")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(ApiError::invalid_parameter(format!(
                "The queue {name} ends in .fifo: create it with the attribute FifoQueue=true."
            )));
        }
        queues::check_tag_count(name, tags.len())?;
        let mut config = QueueConfig::default();
        config.apply(fifo, attributes)?;
        self.check_redrive_target(fifo, &config)?;
        let mut queues = self.write();
        if let Some(existing) = queues.get(name) {
            if existing.lock().config != config {
                return Err(ApiError::queue_name_exists(name));
            }
            return Ok(());
        }
        let q = Queue::new(name, &self.inner.region, config, tags);
        queues.insert(name.to_owned(), Arc::new(q));
        tracing::debug!(queue = name, "queue created");
        Ok(())
    }

    /// Runs one operation on a JSON body; `base` is the `http://host:port` queue URLs start with.
    pub(crate) async fn dispatch(
        &self,
        op: Operation,
        body: &[u8],
        base: &str,
        closing: &Closing,
    ) -> ApiResult<Vec<u8>> {
        self.inner.stats.record(op);
        let c = &Call {
            body,
            base,
            closing,
            now: Instant::now(),
        };
        match op {
            Operation::CreateQueue => queues::create_queue(self, c),
            Operation::GetQueueUrl => queues::get_queue_url(self, c),
            Operation::ListQueues => queues::list_queues(self, c),
            Operation::DeleteQueue => queues::delete_queue(self, c),
            Operation::GetQueueAttributes => queues::get_queue_attributes(self, c),
            Operation::SetQueueAttributes => queues::set_queue_attributes(self, c),
            Operation::PurgeQueue => queues::purge_queue(self, c),
            Operation::ListDeadLetterSourceQueues => {
                queues::list_dead_letter_source_queues(self, c)
            }
            Operation::TagQueue => queues::tag_queue(self, c),
            Operation::UntagQueue => queues::untag_queue(self, c),
            Operation::ListQueueTags => queues::list_queue_tags(self, c),
            Operation::SendMessage => messages::send_message(self, c),
            Operation::SendMessageBatch => messages::send_message_batch(self, c),
            Operation::ReceiveMessage => messages::receive_message(self, c).await,
            Operation::DeleteMessage => messages::delete_message(self, c),
            Operation::DeleteMessageBatch => messages::delete_message_batch(self, c),
            Operation::ChangeMessageVisibility => messages::change_message_visibility(self, c),
            Operation::ChangeMessageVisibilityBatch => {
                messages::change_message_visibility_batch(self, c)
            }
            Operation::StartMessageMoveTask => move_tasks::start_message_move_task(self, c),
            Operation::ListMessageMoveTasks => move_tasks::list_message_move_tasks(self, c),
            Operation::CancelMessageMoveTask => move_tasks::cancel_message_move_task(self, c),
        }
    }
}

fn paginate(
    names: Vec<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    key: &str,
    url: impl Fn(&str) -> String,
) -> ApiResult<Value> {
    let max = opt_range("MaxResults", max_results, 1, 1000)?;
    let start = match &next_token {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ApiError::invalid_parameter(format!("Invalid NextToken {t:?}.")))?,
        None => 0,
    };
    // The token comes from the client: saturate rather than overflow on a huge one.
    let end = max.map_or(names.len(), |m| {
        start.saturating_add(m as usize).min(names.len())
    });
    let page: Vec<String> = names
        .get(start..end)
        .unwrap_or(&[])
        .iter()
        .map(|n| url(n))
        .collect();
    let mut out = serde_json::Map::new();
    if !page.is_empty() {
        out.insert(key.to_owned(), json!(page));
    }
    if max.is_some() && end < names.len() {
        out.insert("NextToken".to_owned(), json!(end.to_string()));
    }
    Ok(Value::Object(out))
}
