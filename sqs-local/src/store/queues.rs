//! The operations on queues themselves: create, find, list, delete, attributes, tags, purge.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::{Call, QueueKey, SqsState, paginate, parse_json, reply};
use crate::error::{ApiError, ApiResult};
use crate::protocol::*;
use crate::queue::{self, Queue};

/// AWS's limit of tags on one queue.
pub(super) const MAX_TAGS: usize = 50;

/// Refuses a tag set over AWS's limit.
pub(super) fn check_tag_count(queue: &str, count: usize) -> ApiResult<()> {
    if count > MAX_TAGS {
        return Err(ApiError::invalid_parameter(format!(
            "Too many tags added for queue {queue}: a queue has at most {MAX_TAGS} tags."
        )));
    }
    Ok(())
}

pub(super) fn create_queue(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: CreateQueueRequest = parse_json(c.body)?;
    let name = required(req.queue_name, "QueueName")?;
    s.create(c.scope, &name, &req.attributes, req.tags)?;
    Ok(reply(&json!({ "QueueUrl": c.url(&name) })))
}

pub(super) fn get_queue_url(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: QueueNameRequest = parse_json(c.body)?;
    let name = required(req.queue_name, "QueueName")?;
    let q = s
        .queue_by_name(c.scope, &name)
        .ok_or_else(ApiError::queue_does_not_exist)?;
    Ok(reply(&json!({ "QueueUrl": c.url(&q.name) })))
}

pub(super) fn list_queues(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: ListQueuesRequest = parse_json(c.body)?;
    let prefix = req.queue_name_prefix.unwrap_or_default();
    let mut names: Vec<String> = s
        .read()
        .keys()
        .filter(|k| k.scope == *c.scope && k.name.starts_with(&prefix))
        .map(|k| k.name.clone())
        .collect();
    names.sort();
    Ok(reply(&paginate(
        names,
        req.next_token,
        req.max_results,
        "QueueUrls",
        |n| c.url(n),
    )?))
}

pub(super) fn delete_queue(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: QueueUrlRequest = parse_json(c.body)?;
    let q = s.queue(c.scope, req.queue_url)?;
    s.write().remove(&QueueKey::of(&q));
    q.notify.notify_waiters();
    Ok(reply(&json!({})))
}

pub(super) fn get_queue_attributes(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: GetQueueAttributesRequest = parse_json(c.body)?;
    let q = s.queue(c.scope, req.queue_url)?;
    let attributes = queue_attributes(&q, &req.attribute_names, c.now)?;
    // SQS leaves the key out when no attribute is answered (none asked for, or none set).
    Ok(reply(&if attributes.is_empty() {
        json!({})
    } else {
        json!({ "Attributes": attributes })
    }))
}

pub(super) fn set_queue_attributes(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: SetQueueAttributesRequest = parse_json(c.body)?;
    let q = s.queue(c.scope, req.queue_url)?;
    let attrs = required(req.attributes, "Attributes")?;
    let mut config = q.lock().config.clone();
    config.apply(q.fifo, &attrs)?;
    s.check_redrive_target(q.fifo, &config)?;
    let mut st = q.lock();
    st.config = config;
    st.last_modified_secs = queue::epoch_millis() / 1000;
    Ok(reply(&json!({})))
}

pub(super) fn purge_queue(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: QueueUrlRequest = parse_json(c.body)?;
    s.queue(c.scope, req.queue_url)?.purge();
    Ok(reply(&json!({})))
}

pub(super) fn list_dead_letter_source_queues(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: QueueUrlRequest = parse_json(c.body)?;
    let target = s.queue(c.scope, req.queue_url)?;
    let names = s.dead_letter_sources(&target);
    Ok(reply(&paginate(
        names,
        req.next_token,
        req.max_results,
        "queueUrls",
        |n| c.url(n),
    )?))
}

pub(super) fn tag_queue(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: TagQueueRequest = parse_json(c.body)?;
    let q = s.queue(c.scope, req.queue_url)?;
    let tags = required(req.tags, "Tags")?;
    if tags.is_empty() {
        // SQS refuses an empty tag map. Text: moto's test_tag_queue_errors.
        return Err(ApiError::missing_parameter("Tags"));
    }
    let mut st = q.lock();
    let added = tags.keys().filter(|k| !st.tags.contains_key(*k)).count();
    check_tag_count(&q.name, st.tags.len() + added)?;
    st.tags.extend(tags);
    Ok(reply(&json!({})))
}

pub(super) fn untag_queue(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: UntagQueueRequest = parse_json(c.body)?;
    let q = s.queue(c.scope, req.queue_url)?;
    let keys = required(req.tag_keys, "TagKeys")?;
    if keys.is_empty() {
        // SQS refuses an empty key list. Text: moto's test_untag_queue_errors.
        return Err(ApiError::invalid_parameter(
            "Tag keys must be between 1 and 128 characters in length.",
        ));
    }
    let mut st = q.lock();
    for k in keys {
        st.tags.remove(&k);
    }
    Ok(reply(&json!({})))
}

pub(super) fn list_queue_tags(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: QueueUrlRequest = parse_json(c.body)?;
    let q = s.queue(c.scope, req.queue_url)?;
    let tags = q.lock().tags.clone();
    Ok(reply(&if tags.is_empty() {
        json!({})
    } else {
        json!({ "Tags": tags })
    }))
}

fn queue_attributes(
    q: &Arc<Queue>,
    names: &[String],
    now: Instant,
) -> ApiResult<BTreeMap<String, String>> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let all = all_attributes(q, now);
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

fn all_attributes(q: &Queue, now: Instant) -> BTreeMap<String, String> {
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
    all
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
