//! The set of queues, and every operation of the API over it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, ApiResult};
use crate::protocol::*;
use crate::queue::{self, ACCOUNT_ID, Queue, QueueConfig, ReceiveOptions};

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

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct ReceiveResponse {
    messages: Vec<ReceivedMessage>,
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

impl SqsState {
    /// Empty state whose ARNs name `region`.
    pub fn new(region: &str) -> Self {
        Self {
            inner: Arc::new(StateInner {
                region: region.to_owned(),
                queues: RwLock::new(HashMap::new()),
                stats: ApiStats::default(),
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
        let now = Instant::now();
        match op {
            Operation::CreateQueue => {
                let req: CreateQueueRequest = parse_json(body)?;
                let name = required(req.queue_name, "QueueName")?;
                self.create(&name, &req.attributes, req.tags)?;
                Ok(reply(&json!({ "QueueUrl": Self::url(base, &name) })))
            }
            Operation::GetQueueUrl => {
                let req: QueueNameRequest = parse_json(body)?;
                let name = required(req.queue_name, "QueueName")?;
                let q = self
                    .queue_by_name(&name)
                    .ok_or_else(ApiError::queue_does_not_exist)?;
                Ok(reply(&json!({ "QueueUrl": Self::url(base, &q.name) })))
            }
            Operation::ListQueues => {
                let req: ListQueuesRequest = parse_json(body)?;
                let prefix = req.queue_name_prefix.unwrap_or_default();
                let names: Vec<String> = self
                    .queue_names()
                    .into_iter()
                    .filter(|n| n.starts_with(&prefix))
                    .collect();
                Ok(reply(&paginate(
                    names,
                    req.next_token,
                    req.max_results,
                    "QueueUrls",
                    |n| Self::url(base, n),
                )?))
            }
            Operation::DeleteQueue => {
                let req: QueueUrlRequest = parse_json(body)?;
                let q = self.queue(req.queue_url)?;
                self.write().remove(&q.name);
                q.notify.notify_waiters();
                Ok(reply(&json!({})))
            }
            Operation::GetQueueAttributes => {
                let req: GetQueueAttributesRequest = parse_json(body)?;
                let q = self.queue(req.queue_url)?;
                Ok(reply(
                    &json!({ "Attributes": queue_attributes(&q, &req.attribute_names, now)? }),
                ))
            }
            Operation::SetQueueAttributes => {
                let req: SetQueueAttributesRequest = parse_json(body)?;
                let q = self.queue(req.queue_url)?;
                let attrs = required(req.attributes, "Attributes")?;
                let mut config = q.lock().config.clone();
                config.apply(q.fifo, &attrs)?;
                self.check_redrive_target(q.fifo, &config)?;
                let mut st = q.lock();
                st.config = config;
                st.last_modified_secs = queue::epoch_millis() / 1000;
                Ok(reply(&json!({})))
            }
            Operation::PurgeQueue => {
                let req: QueueUrlRequest = parse_json(body)?;
                self.queue(req.queue_url)?.purge();
                Ok(reply(&json!({})))
            }
            Operation::SendMessage => {
                let req: SendMessageRequest = parse_json(body)?;
                let q = self.queue(req.queue_url)?;
                let mut entry = req.entry;
                entry.id = None;
                Ok(reply(&q.send(entry, now)?))
            }
            Operation::SendMessageBatch => {
                let req: SendMessageBatchRequest = parse_json(body)?;
                let q = self.queue(req.queue_url)?;
                let entries = required(req.entries, "Entries")?;
                check_batch_ids(entries.iter().map(|e| e.id.as_deref()))?;
                let total: usize = entries
                    .iter()
                    .map(|e| e.message_body.as_ref().map_or(0, String::len))
                    .sum();
                if total > 1_048_576 {
                    return Err(ApiError::batch_request_too_long(total, 1_048_576));
                }
                let mut resp = BatchResponse {
                    successful: Vec::new(),
                    failed: Vec::new(),
                };
                for entry in entries {
                    let id = entry.id.clone().unwrap_or_default();
                    match q.send(entry, now) {
                        Ok(r) => resp.successful.push(r),
                        Err(e) => resp.failed.push(BatchFailure::new(&id, e)),
                    }
                }
                Ok(reply(&resp))
            }
            Operation::ReceiveMessage => {
                let req: ReceiveMessageRequest = parse_json(body)?;
                let q = self.queue(req.queue_url)?;
                let max = opt_range("MaxNumberOfMessages", req.max_number_of_messages, 1, 10)?
                    .unwrap_or(1);
                let vt = opt_range(
                    "VisibilityTimeout",
                    req.visibility_timeout,
                    0,
                    queue::MAX_VISIBILITY_TIMEOUT,
                )?;
                let wait = match opt_range("WaitTimeSeconds", req.wait_time_seconds, 0, 20)? {
                    Some(w) => w as u64,
                    None => q.lock().config.receive_wait_time_seconds.into(),
                };
                let mut system = req.message_system_attribute_names;
                system.extend(req.attribute_names);
                let opts = ReceiveOptions {
                    max: max as usize,
                    visibility_timeout: vt.map(|v| v as u32),
                    system_attributes: system,
                    message_attributes: req.message_attribute_names,
                };
                let messages = self
                    .receive(&q, &opts, Duration::from_secs(wait), closing)
                    .await;
                if messages.is_empty() {
                    self.inner
                        .stats
                        .empty_receives
                        .fetch_add(1, Ordering::Relaxed);
                    Ok(reply(&json!({})))
                } else {
                    Ok(reply(&ReceiveResponse { messages }))
                }
            }
            Operation::DeleteMessage => {
                let req: ReceiptRequest = parse_json(body)?;
                let q = self.queue(req.queue_url)?;
                q.delete(&required(req.receipt_handle, "ReceiptHandle")?)?;
                Ok(reply(&json!({})))
            }
            Operation::DeleteMessageBatch => {
                let req: ReceiptBatchRequest = parse_json(body)?;
                let q = self.queue(req.queue_url)?;
                let entries = required(req.entries, "Entries")?;
                check_batch_ids(entries.iter().map(|e| e.id.as_deref()))?;
                let mut resp = BatchResponse {
                    successful: Vec::new(),
                    failed: Vec::new(),
                };
                for e in entries {
                    let id = e.id.unwrap_or_default();
                    let r = required(e.receipt_handle, "ReceiptHandle").and_then(|h| q.delete(&h));
                    match r {
                        Ok(()) => resp.successful.push(IdOnly { id }),
                        Err(err) => resp.failed.push(BatchFailure::new(&id, err)),
                    }
                }
                Ok(reply(&resp))
            }
            Operation::ChangeMessageVisibility => {
                let req: ReceiptRequest = parse_json(body)?;
                let q = self.queue(req.queue_url)?;
                let handle = required(req.receipt_handle, "ReceiptHandle")?;
                let timeout = required(req.visibility_timeout, "VisibilityTimeout")?;
                q.change_visibility(&handle, timeout, now)?;
                Ok(reply(&json!({})))
            }
            Operation::ChangeMessageVisibilityBatch => {
                let req: ReceiptBatchRequest = parse_json(body)?;
                let q = self.queue(req.queue_url)?;
                let entries = required(req.entries, "Entries")?;
                check_batch_ids(entries.iter().map(|e| e.id.as_deref()))?;
                let mut resp = BatchResponse {
                    successful: Vec::new(),
                    failed: Vec::new(),
                };
                for e in entries {
                    let id = e.id.unwrap_or_default();
                    let r = required(e.receipt_handle, "ReceiptHandle").and_then(|h| {
                        let t = required(e.visibility_timeout, "VisibilityTimeout")?;
                        q.change_visibility(&h, t, now)
                    });
                    match r {
                        Ok(()) => resp.successful.push(IdOnly { id }),
                        Err(err) => resp.failed.push(BatchFailure::new(&id, err)),
                    }
                }
                Ok(reply(&resp))
            }
            Operation::ListDeadLetterSourceQueues => {
                let req: QueueUrlRequest = parse_json(body)?;
                let target = self.queue(req.queue_url)?;
                let queues: Vec<Arc<Queue>> = self.read().values().cloned().collect();
                let mut names: Vec<String> = queues
                    .iter()
                    .filter(|q| {
                        q.lock()
                            .config
                            .redrive
                            .as_ref()
                            .is_some_and(|r| r.target_name == target.name)
                    })
                    .map(|q| q.name.clone())
                    .collect();
                names.sort();
                Ok(reply(&paginate(
                    names,
                    req.next_token,
                    req.max_results,
                    "queueUrls",
                    |n| Self::url(base, n),
                )?))
            }
            Operation::TagQueue => {
                let req: TagQueueRequest = parse_json(body)?;
                let q = self.queue(req.queue_url)?;
                let tags = required(req.tags, "Tags")?;
                q.lock().tags.extend(tags);
                Ok(reply(&json!({})))
            }
            Operation::UntagQueue => {
                let req: UntagQueueRequest = parse_json(body)?;
                let q = self.queue(req.queue_url)?;
                let keys = required(req.tag_keys, "TagKeys")?;
                let mut st = q.lock();
                for k in keys {
                    st.tags.remove(&k);
                }
                Ok(reply(&json!({})))
            }
            Operation::ListQueueTags => {
                let req: QueueUrlRequest = parse_json(body)?;
                let q = self.queue(req.queue_url)?;
                let tags = q.lock().tags.clone();
                Ok(reply(&if tags.is_empty() {
                    json!({})
                } else {
                    json!({ "Tags": tags })
                }))
            }
        }
    }

    /// Receives with long polling: returns as soon as a message is there, when `wait` runs out,
    /// or when the server closes.
    async fn receive(
        &self,
        q: &Arc<Queue>,
        opts: &ReceiveOptions,
        wait: Duration,
        closing: &Closing,
    ) -> Vec<ReceivedMessage> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = q.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = Instant::now();
            let redrive = q.lock().config.redrive.clone();
            let dlq = redrive
                .as_ref()
                .and_then(|r| self.queue_by_name(&r.target_name));
            let (messages, moved) = q.receive(opts, dlq.is_some(), now);
            if let Some(dlq) = dlq.filter(|_| !moved.is_empty()) {
                tracing::debug!(queue = %q.name, dlq = %dlq.name, count = moved.len(), "moved to dead-letter queue");
                dlq.accept_moved(moved, &q.arn, now);
            }
            if !messages.is_empty() || now >= deadline || closing.0.is_cancelled() {
                return messages;
            }
            // Deleted queue: stop waiting.
            if self
                .queue_by_name(&q.name)
                .is_none_or(|current| !Arc::ptr_eq(&current, q))
            {
                return messages;
            }
            let wake = q.next_due(now).map_or(deadline, |due| due.min(deadline));
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = closing.0.cancelled() => {}
            }
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

fn queue_attributes(
    q: &Queue,
    names: &[String],
    now: Instant,
) -> ApiResult<BTreeMap<String, String>> {
    let counts = q.counts(now);
    let st = q.lock();
    let c = &st.config;
    let mut all: BTreeMap<String, String> = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        all.insert(k.to_owned(), v);
    };
    put("ApproximateNumberOfMessages", counts.visible.to_string());
    put(
        "ApproximateNumberOfMessagesNotVisible",
        counts.in_flight.to_string(),
    );
    put(
        "ApproximateNumberOfMessagesDelayed",
        counts.delayed.to_string(),
    );
    put("CreatedTimestamp", q.created_secs.to_string());
    put("LastModifiedTimestamp", st.last_modified_secs.to_string());
    put("DelaySeconds", c.delay_seconds.to_string());
    put("MaximumMessageSize", c.maximum_message_size.to_string());
    put(
        "MessageRetentionPeriod",
        c.message_retention_period.to_string(),
    );
    put("QueueArn", q.arn.clone());
    put(
        "ReceiveMessageWaitTimeSeconds",
        c.receive_wait_time_seconds.to_string(),
    );
    put("VisibilityTimeout", c.visibility_timeout.to_string());
    put("SqsManagedSseEnabled", "false".to_owned());
    if let Some(r) = &c.redrive {
        put(
            "RedrivePolicy",
            json!({ "deadLetterTargetArn": r.target_arn, "maxReceiveCount": r.max_receive_count })
                .to_string(),
        );
    }
    if q.fifo {
        put("FifoQueue", "true".to_owned());
        put(
            "ContentBasedDeduplication",
            c.content_based_deduplication.to_string(),
        );
        put("DeduplicationScope", "queue".to_owned());
        put("FifoThroughputLimit", "perQueue".to_owned());
    }
    for (k, v) in &c.stored {
        put(k, v.clone());
    }
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    if names.iter().any(|n| n == "All") {
        return Ok(all);
    }
    let mut out = BTreeMap::new();
    for n in names {
        if let Some(v) = all.get(n) {
            out.insert(n.clone(), v.clone());
        } else if !KNOWN_QUEUE_ATTRIBUTES.contains(&n.as_str()) {
            return Err(ApiError::invalid_attribute_name(n));
        }
    }
    Ok(out)
}

const KNOWN_QUEUE_ATTRIBUTES: &[&str] = &[
    "Policy",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "FifoQueue",
];
