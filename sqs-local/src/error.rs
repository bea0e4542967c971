//! AWS-style errors as aws-sdk-sqs reads them.

use axum::http::StatusCode;

/// An error answered to a client: an HTTP status, the smithy shape name written as `__type`, the
/// AWS query-protocol code written in `x-amzn-query-error` (that header is what aws-sdk-sqs
/// maps to its typed errors), and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status of the response.
    pub status: StatusCode,
    /// Smithy shape name (`QueueDoesNotExist`), sent as `com.amazonaws.sqs#<type_name>`.
    pub type_name: &'static str,
    /// Query-protocol code (`AWS.SimpleQueueService.NonExistentQueue`).
    pub query_code: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    fn new(type_name: &'static str, query_code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            type_name,
            query_code,
            message: message.into(),
        }
    }

    /// The queue named by a URL or name does not exist.
    pub fn queue_does_not_exist() -> Self {
        Self::new(
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            "The specified queue does not exist.",
        )
    }

    /// A resource named by a parameter (a message move task's queue or the task) does not exist.
    pub fn resource_not_found(message: impl Into<String>) -> Self {
        let mut e = Self::new(
            "ResourceNotFoundException",
            "ResourceNotFoundException",
            message,
        );
        e.status = StatusCode::NOT_FOUND;
        e
    }

    /// A parameter has a value outside what SQS accepts.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterValue", "InvalidParameterValue", message)
    }

    /// A required parameter is absent.
    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            "MissingParameter",
            "MissingParameter",
            format!("The request must contain the parameter {name}."),
        )
    }

    /// An attribute name that this queue type does not know.
    pub fn invalid_attribute_name(name: &str) -> Self {
        Self::new(
            "InvalidAttributeName",
            "InvalidAttributeName",
            format!("Unknown Attribute {name}."),
        )
    }

    /// An attribute value outside its allowed range.
    pub fn invalid_attribute_value(name: &str, reason: &str) -> Self {
        Self::new(
            "InvalidAttributeValue",
            "InvalidAttributeValue",
            format!("Invalid value for the parameter {name}. Reason: {reason}"),
        )
    }

    /// A receipt handle that this server never issued.
    pub fn receipt_handle_invalid(handle: &str) -> Self {
        Self::new(
            "ReceiptHandleIsInvalid",
            "ReceiptHandleIsInvalid",
            format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
        )
    }

    /// ChangeMessageVisibility on a message that is not in flight.
    pub fn message_not_inflight() -> Self {
        Self::new(
            "MessageNotInflight",
            "AWS.SimpleQueueService.MessageNotInflight",
            "The message referred to isn't in flight.",
        )
    }

    /// A queue with this name exists with another value for `attribute`.
    // Text: LocalStack's AWS-validated snapshot (tests/aws/services/sqs/test_sqs.snapshot.json,
    // test_create_queue_with_different_attributes_raises_exception), no final period.
    pub fn queue_name_exists(attribute: &str) -> Self {
        Self::new(
            "QueueNameExists",
            "QueueAlreadyExists",
            format!(
                "A queue already exists with the same name and a different value for attribute {attribute}"
            ),
        )
    }

    /// A batch request with no entries; `entry_type` names them, as
    /// `SendMessageBatchRequestEntry`.
    // Text: a connector test run against AWS (ballerina module-ballerinax-aws.sqs,
    // "There should be at least one SendMessageBatchRequestEntry in the request."), and moto.
    pub fn empty_batch(entry_type: &str) -> Self {
        Self::new(
            "EmptyBatchRequest",
            "AWS.SimpleQueueService.EmptyBatchRequest",
            format!("There should be at least one {entry_type} in the request."),
        )
    }

    /// AddPermission with more actions than a policy statement takes.
    // Code, status: the SQS service model (OverLimit, 403). Text: moto's test_add_permission_errors.
    pub fn too_many_actions(count: usize) -> Self {
        let mut e = Self::new(
            "OverLimit",
            "OverLimit",
            format!("{count} Actions were found, maximum allowed is 7."),
        );
        e.status = StatusCode::FORBIDDEN;
        e
    }

    /// A batch request with more than ten entries.
    pub fn too_many_entries(count: usize) -> Self {
        Self::new(
            "TooManyEntriesInBatchRequest",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            format!("Maximum number of entries per request are 10. You have sent {count}."),
        )
    }

    /// Two batch entries share an id.
    pub fn batch_ids_not_distinct(id: &str) -> Self {
        Self::new(
            "BatchEntryIdsNotDistinct",
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
            format!("Id {id} repeated."),
        )
    }

    /// A batch entry id with characters or a length SQS refuses.
    // Text: LocalStack's AWS-validated snapshot (test_send_batch_invalid_batch_id...).
    pub fn invalid_batch_entry_id() -> Self {
        Self::new(
            "InvalidBatchEntryId",
            "AWS.SimpleQueueService.InvalidBatchEntryId",
            "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
        )
    }

    /// The entries of a batch add up to more than the size limit.
    pub fn batch_request_too_long(size: usize, limit: usize) -> Self {
        Self::new(
            "BatchRequestTooLong",
            "AWS.SimpleQueueService.BatchRequestTooLong",
            format!(
                "Batch requests cannot be longer than {limit} bytes. You have sent {size} bytes."
            ),
        )
    }

    /// A message body with characters outside what SQS allows.
    pub fn invalid_message_contents() -> Self {
        Self::new(
            "InvalidMessageContents",
            "InvalidMessageContents",
            "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
        )
    }

    /// A request body that is not the JSON this operation takes.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new("SerializationException", "SerializationException", message)
    }

    /// An operation this server does not implement.
    pub fn invalid_action(target: &str) -> Self {
        Self::new(
            "InvalidAction",
            "AWS.SimpleQueueService.UnsupportedOperation",
            format!("The action or operation requested is invalid or not supported: {target:?}."),
        )
    }

    /// A request body over the size this server reads.
    pub fn request_too_large(limit: usize) -> Self {
        let mut e = Self::new(
            "RequestEntityTooLarge",
            "RequestEntityTooLarge",
            format!("The request body is larger than {limit} bytes."),
        );
        e.status = StatusCode::PAYLOAD_TOO_LARGE;
        e
    }

    /// A request body that did not arrive within the server's read timeout.
    pub fn request_timeout(timeout: std::time::Duration) -> Self {
        let mut e = Self::new(
            "RequestTimeout",
            "RequestTimeout",
            format!("The request body did not arrive within {timeout:?}."),
        );
        e.status = StatusCode::REQUEST_TIMEOUT;
        e
    }

    /// The server failed while running an operation (a bug in sqs-local, logged).
    pub fn internal(operation: &str) -> Self {
        let mut e = Self::new(
            "InternalError",
            "InternalError",
            format!("sqs-local failed while running {operation}; its log has the cause."),
        );
        e.status = StatusCode::INTERNAL_SERVER_ERROR;
        e
    }

    /// The server is shutting down.
    pub fn service_unavailable() -> Self {
        let mut e = Self::new(
            "ServiceUnavailable",
            "ServiceUnavailable",
            "The server is shutting down.",
        );
        e.status = StatusCode::SERVICE_UNAVAILABLE;
        e
    }

    /// The query code's fault side, as AWS writes it after the `;`.
    pub fn fault(&self) -> &'static str {
        if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.query_code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Shorthand for the result of an operation.
pub(crate) type ApiResult<T> = Result<T, ApiError>;
