//! The set of queues, and the dispatch of each operation of the API to its function: queue
//! operations in `store/queues.rs`, message operations in `store/messages.rs`, dead-letter
//! queue redrive in `store/move_tasks.rs`, queue permissions in `store/permissions.rs`.

mod messages;
mod move_tasks;
mod permissions;
mod queues;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, ApiResult};
use crate::protocol::required;
use crate::queue::{self, Queue, QueueConfig};

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
    AddPermission,
    RemovePermission,
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
    queues: RwLock<QueueMap>,
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

/// Refuses `FifoQueue=true` on a standard queue's name, and a `.fifo` name without it.
fn check_fifo_attribute(
    name: &str,
    fifo: bool,
    attributes: &BTreeMap<String, String>,
) -> ApiResult<()> {
    let asked = attributes
        .get("FifoQueue")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if asked && !fifo {
        return Err(ApiError::invalid_parameter(
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix.",
        ));
    }
    if fifo && !asked {
        return Err(ApiError::invalid_parameter(format!(
            "The queue {name} ends in .fifo: create it with the attribute FifoQueue=true."
        )));
    }
    Ok(())
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

/// Where a request acts: the region it was signed for and the account of the server. Queues
/// are kept apart by both, as on SQS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Scope {
    pub(crate) region: String,
    pub(crate) account: String,
}

/// A queue's identity: its scope and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct QueueKey {
    scope: Scope,
    name: String,
}

impl QueueKey {
    fn of(queue: &Queue) -> Self {
        Self {
            scope: Scope {
                region: queue.region.clone(),
                account: queue.account.clone(),
            },
            name: queue.name.clone(),
        }
    }
}

/// One request, as every operation function takes it.
struct Call<'a> {
    body: &'a [u8],
    /// `http://host:port` that queue URLs start with.
    base: &'a str,
    scope: &'a Scope,
    closing: &'a Closing,
    now: Instant,
}

impl Call<'_> {
    /// The URL of a queue of this request's account.
    fn url(&self, name: &str) -> String {
        SqsState::url(self.base, &self.scope.account, name)
    }
}

type QueueMap = HashMap<QueueKey, Arc<Queue>>;

impl SqsState {
    /// Empty state. `region` is the one of queues created with [`SqsState::create_queue`] and
    /// of requests that carry no signature to take a region from.
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

    /// The region of queues created without a request, and of unsigned requests.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// The names of the queues that exist, in every region and account, sorted.
    pub fn queue_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read().keys().map(|k| k.name.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Creates a queue with attributes in the state's region and the default account
    /// (`000000000000`), or checks that an existing one has the same.
    pub fn create_queue(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        let scope = Scope {
            region: self.inner.region.clone(),
            account: queue::DEFAULT_ACCOUNT_ID.to_owned(),
        };
        self.create_in(&scope, name, attributes)
    }

    /// Creates a queue in `scope`, or checks that an existing one has the same attributes.
    pub(crate) fn create_in(
        &self,
        scope: &Scope,
        name: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        self.create(scope, name, attributes, BTreeMap::new())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, QueueMap> {
        self.inner.queues.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, QueueMap> {
        self.inner.queues.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The queue a `QueueUrl` names, in the request's scope. A URL whose path names another
    /// account (`/<12 digits>/<name>`) names no queue of this one.
    fn queue(&self, scope: &Scope, url: Option<String>) -> ApiResult<Arc<Queue>> {
        let url = required(url, "QueueUrl")?;
        let mut segments = url.trim_end_matches('/').rsplit('/');
        let name = segments.next().unwrap_or("");
        let account = segments.next().unwrap_or("");
        let is_account = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        if is_account && account != scope.account {
            return Err(ApiError::queue_does_not_exist());
        }
        self.queue_by_name(scope, name)
            .ok_or_else(ApiError::queue_does_not_exist)
    }

    fn queue_by_name(&self, scope: &Scope, name: &str) -> Option<Arc<Queue>> {
        let key = QueueKey {
            scope: scope.clone(),
            name: name.to_owned(),
        };
        self.read().get(&key).cloned()
    }

    /// The queue an ARN (`arn:<partition>:sqs:<region>:<account>:<name>`) names.
    fn queue_by_arn(&self, arn: &str) -> Option<Arc<Queue>> {
        let mut parts = arn.rsplitn(4, ':');
        let (name, account, region) = (parts.next()?, parts.next()?, parts.next()?);
        let scope = Scope {
            region: region.to_owned(),
            account: account.to_owned(),
        };
        self.queue_by_name(&scope, name).filter(|q| q.arn == arn)
    }

    /// Whether `queue` is still the queue of its name (it was not deleted, or deleted and made
    /// again).
    fn is_current(&self, queue: &Arc<Queue>) -> bool {
        self.read()
            .get(&QueueKey::of(queue))
            .is_some_and(|current| Arc::ptr_eq(current, queue))
    }

    /// The names of the queues whose redrive policy targets the queue `dlq`, sorted.
    fn dead_letter_sources(&self, dlq: &Queue) -> Vec<String> {
        let queues: Vec<Arc<Queue>> = self.read().values().cloned().collect();
        let mut names: Vec<String> = queues
            .iter()
            .filter(|q| {
                q.lock()
                    .config
                    .redrive
                    .as_ref()
                    .is_some_and(|r| r.target_arn == dlq.arn)
            })
            .map(|q| q.name.clone())
            .collect();
        names.sort();
        names
    }

    fn url(base: &str, account: &str, name: &str) -> String {
        format!("{base}/{account}/{name}")
    }

    fn check_redrive_target(&self, fifo: bool, config: &QueueConfig) -> ApiResult<()> {
        if let Some(r) = &config.redrive {
            let target = self.queue_by_arn(&r.target_arn).ok_or_else(|| {
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
        scope: &Scope,
        name: &str,
        attributes: &BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> ApiResult<()> {
        queue::validate_name(name)?;
        let fifo = name.ends_with(".fifo");
        check_fifo_attribute(name, fifo, attributes)?;
        queues::check_tag_count(name, tags.len())?;
        let mut config = QueueConfig::default();
        config.apply(fifo, attributes)?;
        self.check_redrive_target(fifo, &config)?;
        let key = QueueKey {
            scope: scope.clone(),
            name: name.to_owned(),
        };
        let mut queues = self.write();
        if let Some(existing) = queues.get(&key) {
            if let Some(attribute) = existing.lock().config.differing_attribute(fifo, attributes) {
                return Err(ApiError::queue_name_exists(attribute));
            }
            return Ok(());
        }
        let q = Queue::new(name, &scope.region, &scope.account, config, tags);
        queues.insert(key, Arc::new(q));
        tracing::debug!(queue = name, region = %scope.region, account = %scope.account, "queue created");
        Ok(())
    }

    /// Runs one operation on a JSON body; `base` is the `http://host:port` queue URLs start
    /// with, `scope` the region and account the request acts in.
    pub(crate) async fn dispatch(
        &self,
        op: Operation,
        body: &[u8],
        base: &str,
        scope: &Scope,
        closing: &Closing,
    ) -> ApiResult<Vec<u8>> {
        self.inner.stats.record(op);
        let c = &Call {
            body,
            base,
            scope,
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
            Operation::AddPermission => permissions::add_permission(self, c),
            Operation::RemovePermission => permissions::remove_permission(self, c),
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
