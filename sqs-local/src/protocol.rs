//! Request and response shapes of the AWS JSON 1.0 protocol, named as in the SQS API reference.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

/// Unwraps a required request member, or answers `MissingParameter` naming it.
pub(crate) fn required<T>(value: Option<T>, name: &str) -> ApiResult<T> {
    value.ok_or_else(|| ApiError::missing_parameter(name))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateQueueRequest {
    pub(crate) queue_name: Option<String>,
    #[serde(default)]
    pub(crate) attributes: BTreeMap<String, String>,
    #[serde(default, rename = "tags")]
    pub(crate) tags: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct QueueNameRequest {
    pub(crate) queue_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListQueuesRequest {
    pub(crate) queue_name_prefix: Option<String>,
    pub(crate) next_token: Option<String>,
    pub(crate) max_results: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct QueueUrlRequest {
    pub(crate) queue_url: Option<String>,
    pub(crate) next_token: Option<String>,
    pub(crate) max_results: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetQueueAttributesRequest {
    pub(crate) queue_url: Option<String>,
    #[serde(default)]
    pub(crate) attribute_names: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SetQueueAttributesRequest {
    pub(crate) queue_url: Option<String>,
    pub(crate) attributes: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagQueueRequest {
    pub(crate) queue_url: Option<String>,
    pub(crate) tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UntagQueueRequest {
    pub(crate) queue_url: Option<String>,
    pub(crate) tag_keys: Option<Vec<String>>,
}

/// A message attribute value as sent and received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageAttributeValue {
    /// `String`, `Number`, `Binary`, optionally with a `.custom` suffix.
    pub data_type: String,
    /// The value of a `String` or `Number` attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    /// The value of a `Binary` attribute, base64 on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "base64_opt")]
    pub binary_value: Option<Vec<u8>>,
}

mod base64_opt {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_str(&STANDARD.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| STANDARD.decode(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SendMessageRequest {
    pub(crate) queue_url: Option<String>,
    #[serde(flatten)]
    pub(crate) entry: SendEntry,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SendEntry {
    pub(crate) id: Option<String>,
    pub(crate) message_body: Option<String>,
    pub(crate) delay_seconds: Option<i64>,
    #[serde(default)]
    pub(crate) message_attributes: BTreeMap<String, MessageAttributeValue>,
    #[serde(default)]
    pub(crate) message_system_attributes: BTreeMap<String, MessageAttributeValue>,
    pub(crate) message_deduplication_id: Option<String>,
    pub(crate) message_group_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SendMessageBatchRequest {
    pub(crate) queue_url: Option<String>,
    pub(crate) entries: Option<Vec<SendEntry>>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SendResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    pub(crate) message_id: String,
    #[serde(rename = "MD5OfMessageBody")]
    pub(crate) md5_of_message_body: String,
    #[serde(
        rename = "MD5OfMessageAttributes",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) md5_of_message_attributes: Option<String>,
    #[serde(
        rename = "MD5OfMessageSystemAttributes",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) md5_of_message_system_attributes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sequence_number: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchFailure {
    pub(crate) id: String,
    pub(crate) sender_fault: bool,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl BatchFailure {
    pub(crate) fn new(id: &str, err: ApiError) -> Self {
        Self {
            id: id.to_owned(),
            sender_fault: !err.status.is_server_error(),
            code: err.type_name,
            message: err.message,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchResponse<T> {
    pub(crate) successful: Vec<T>,
    pub(crate) failed: Vec<BatchFailure>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct IdOnly {
    pub(crate) id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ReceiveMessageRequest {
    pub(crate) queue_url: Option<String>,
    #[serde(default)]
    pub(crate) attribute_names: Vec<String>,
    #[serde(default)]
    pub(crate) message_system_attribute_names: Vec<String>,
    #[serde(default)]
    pub(crate) message_attribute_names: Vec<String>,
    pub(crate) max_number_of_messages: Option<i64>,
    pub(crate) visibility_timeout: Option<i64>,
    pub(crate) wait_time_seconds: Option<i64>,
    #[allow(dead_code)]
    pub(crate) receive_request_attempt_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ReceivedMessage {
    pub(crate) message_id: String,
    pub(crate) receipt_handle: String,
    #[serde(rename = "MD5OfBody")]
    pub(crate) md5_of_body: String,
    pub(crate) body: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) attributes: BTreeMap<&'static str, String>,
    #[serde(
        rename = "MD5OfMessageAttributes",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) md5_of_message_attributes: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) message_attributes: BTreeMap<String, MessageAttributeValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ReceiptRequest {
    pub(crate) queue_url: Option<String>,
    pub(crate) receipt_handle: Option<String>,
    pub(crate) visibility_timeout: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ReceiptBatchRequest {
    pub(crate) queue_url: Option<String>,
    pub(crate) entries: Option<Vec<ReceiptEntry>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ReceiptEntry {
    pub(crate) id: Option<String>,
    pub(crate) receipt_handle: Option<String>,
    pub(crate) visibility_timeout: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AddPermissionRequest {
    pub(crate) queue_url: Option<String>,
    pub(crate) label: Option<String>,
    #[serde(rename = "AWSAccountIds")]
    pub(crate) aws_account_ids: Option<Vec<String>>,
    pub(crate) actions: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RemovePermissionRequest {
    pub(crate) queue_url: Option<String>,
    pub(crate) label: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StartMessageMoveTaskRequest {
    pub(crate) source_arn: Option<String>,
    pub(crate) destination_arn: Option<String>,
    pub(crate) max_number_of_messages_per_second: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListMessageMoveTasksRequest {
    pub(crate) source_arn: Option<String>,
    pub(crate) max_results: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CancelMessageMoveTaskRequest {
    pub(crate) task_handle: Option<String>,
}

/// Checks the ids of a batch request: present, well formed, distinct, at most ten.
/// `entry_type` names the entries in the error for an empty batch.
pub(crate) fn check_batch_ids<'a>(
    entry_type: &str,
    ids: impl ExactSizeIterator<Item = Option<&'a str>>,
) -> ApiResult<()> {
    let count = ids.len();
    if count == 0 {
        return Err(ApiError::empty_batch(entry_type));
    }
    if count > 10 {
        return Err(ApiError::too_many_entries(count));
    }
    let mut seen: Vec<&str> = Vec::with_capacity(count);
    for id in ids {
        let id = required(id, "Id")?;
        let valid = !id.is_empty()
            && id.len() <= 80
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(ApiError::invalid_batch_entry_id());
        }
        if seen.contains(&id) {
            return Err(ApiError::batch_ids_not_distinct(id));
        }
        seen.push(id);
    }
    Ok(())
}
