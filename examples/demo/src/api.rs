//! The HTTP API: create jobs, read their status, health, metrics, OpenAPI and Swagger UI.

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::QueueAttributeName;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use sqs_handler::{CircuitState, OutgoingMessage, Producer, ProducerError, StatusHandle};
use utoipa::{OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use crate::store::{Job, JobStore, Status};
use crate::worker::JobMessage;
use crate::{API_SQS_TIMEOUT, HEALTH_SQS_TIMEOUT, Queues, SqsClients};

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// Statuses.
    pub store: JobStore,
    /// Sends jobs (on the API's client: a request never waits longer than
    /// [`API_SQS_TIMEOUT`] for SQS).
    pub producer: Producer,
    /// The SQS clients: `api` for redrive, `probe` for health.
    pub sqs: SqsClients,
    /// The jobs queue and its dead-letter queue.
    pub queues: Queues,
    /// The SQS endpoint, for error messages (`None`: AWS's, from `AWS_REGION`).
    pub sqs_endpoint: Option<String>,
    /// The worker's status, when it runs in this process.
    pub consumer: Option<StatusHandle>,
    /// The process's Prometheus recorder for `GET /metrics`, or why it could not be
    /// installed.
    pub metrics: Result<PrometheusHandle, String>,
}

impl ApiState {
    fn endpoint(&self) -> String {
        match &self.sqs_endpoint {
            Some(e) => format!("the SQS endpoint {e}"),
            None => "the AWS SQS endpoint".to_owned(),
        }
    }
}

/// What an SQS call's failure means, in words that name the queue or `endpoint` (as
/// [`ApiState::endpoint`] words it); `within` is the call's timeout.
fn sqs_failure<E, R>(
    endpoint: &str,
    operation: &str,
    queue: &str,
    within: std::time::Duration,
    e: &SdkError<E, R>,
) -> SqsFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let timeout = || {
        SqsFailure::Unavailable(format!(
            "{endpoint} did not answer {operation} within {} s",
            within.as_secs()
        ))
    };
    match e {
        SdkError::TimeoutError(_) => timeout(),
        SdkError::DispatchFailure(d) if d.is_timeout() => timeout(),
        SdkError::DispatchFailure(_) => SqsFailure::Unavailable(format!(
            "cannot reach {endpoint}: {}",
            DisplayErrorContext(e)
        )),
        _ => match e.code() {
            Some("QueueDoesNotExist" | "AWS.SimpleQueueService.NonExistentQueue") => {
                SqsFailure::Unavailable(format!(
                    "queue {queue:?} does not exist at {endpoint}: create it (restarting the demo does)"
                ))
            }
            Some(
                "AWS.SimpleQueueService.UnsupportedOperation"
                | "UnsupportedOperation"
                | "InvalidAction"
                | "UnknownOperationException",
            ) => SqsFailure::Unsupported(format!(
                "{endpoint} does not support {operation}: {}",
                DisplayErrorContext(e)
            )),
            Some(_) => SqsFailure::Refused(format!(
                "SQS refused {operation} on queue {queue:?}: {}",
                DisplayErrorContext(e)
            )),
            None => SqsFailure::Unavailable(format!(
                "{operation} on queue {queue:?} failed: {}",
                DisplayErrorContext(e)
            )),
        },
    }
}

/// An SQS call that failed, by what the client can do about it.
#[derive(Debug)]
enum SqsFailure {
    /// The endpoint or the queue is not there, or did not answer: 503.
    Unavailable(String),
    /// The endpoint does not implement the operation: 501.
    Unsupported(String),
    /// SQS answered with an error: 502.
    Refused(String),
}

impl SqsFailure {
    fn into_response(self) -> Response {
        match self {
            SqsFailure::Unavailable(m) => error(StatusCode::SERVICE_UNAVAILABLE, m),
            SqsFailure::Unsupported(m) => error(StatusCode::NOT_IMPLEMENTED, m),
            SqsFailure::Refused(m) => error(StatusCode::BAD_GATEWAY, m),
        }
    }

    fn message(&self) -> &str {
        match self {
            SqsFailure::Unavailable(m) | SqsFailure::Unsupported(m) | SqsFailure::Refused(m) => m,
        }
    }
}

/// `POST /jobs` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateJob {
    /// What to process; "fail" in it makes the job fail, "slow" makes it time out.
    pub message: Option<String>,
}

/// `POST /jobs` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    /// The job id to poll.
    pub id: String,
}

/// `GET /test/{id}/status` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusOnly {
    /// The job's status.
    pub status: Status,
}

/// Every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do.
    pub error: String,
}

/// `POST /dlq/redrive` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RedriveStarted {
    /// The move task's handle (for `CancelMessageMoveTask`, and `ListMessageMoveTasks` on the
    /// source ARN shows its progress).
    pub task_handle: String,
    /// The dead-letter queue's ARN: where the messages come from.
    pub source_arn: String,
    /// The jobs queue's ARN: where they go.
    pub destination_arn: String,
}

/// `GET /health` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    /// `ok`, `memory`, or why Redis is unreachable.
    pub redis: String,
    /// `ok`, or what failed: the queue is missing, the endpoint is unreachable, or it did not
    /// answer within 2 s (GetQueueAttributes on the jobs queue, one attempt).
    pub sqs: String,
    /// Messages waiting in the jobs queue (ApproximateNumberOfMessages), when SQS answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<u64>,
    /// The worker's queues, when it runs in this process.
    pub consumer: Vec<ConsumerHealth>,
}

/// One queue of the worker.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumerHealth {
    /// The queue.
    pub queue: String,
    /// True while it polls.
    pub running: bool,
    /// Jobs running now.
    pub in_flight: usize,
    /// Jobs done.
    pub processed: u64,
    /// Jobs failed or timed out.
    pub failed: u64,
    /// The circuit breaker: `closed` (receiving), `open` (paused after most jobs failed),
    /// or `half_open` (probing with one job).
    pub circuit: String,
}

/// The largest SQS message: what `POST /jobs` can accept.
const MAX_MESSAGE: usize = sqs_handler::MAX_BATCH_BYTES;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.into(),
        }),
    )
        .into_response()
}

fn store_error(e: impl std::fmt::Display) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{e}; try again when Redis is back"),
    )
}

/// The characters SQS accepts in a message: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to
/// #xFFFD | #x10000 to #x10FFFF.
fn sqs_accepts(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// The first character of a job's message that SQS would refuse, with its position (in
/// characters, from 0). Control characters do not count: the job's JSON escapes them.
fn forbidden_char(message: &str) -> Option<(usize, char)> {
    message
        .chars()
        .enumerate()
        .find(|&(_, c)| c >= ' ' && !sqs_accepts(c))
}

/// Why a job's message cannot go on the queue as it is: 400 naming the character.
fn check_message(message: &str) -> Result<(), (StatusCode, String)> {
    match forbidden_char(message) {
        None => Ok(()),
        Some((at, c)) => Err((
            StatusCode::BAD_REQUEST,
            format!(
                "\"message\" has character U+{:04X} at position {at} (counted in characters from 0), which SQS does not accept; SQS accepts #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
                u32::from(c)
            ),
        )),
    }
}

/// What a failed send means for the client.
fn send_failure(state: &ApiState, e: ProducerError) -> (StatusCode, String) {
    let queue = &state.queues.queue;
    match e {
        ProducerError::QueueNotFound { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "could not queue the job: queue {queue:?} does not exist at {}",
                state.endpoint()
            ),
        ),
        // A queue deleted since its URL was cached.
        ProducerError::InvalidMessage { reason, .. }
            if [
                "AWS.SimpleQueueService.NonExistentQueue",
                "QueueDoesNotExist",
            ]
            .iter()
            .any(|code| reason.starts_with(code)) =>
        {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "could not queue the job: queue {queue:?} does not exist at {}",
                    state.endpoint()
                ),
            )
        }
        // Checked above; SQS's own word if it still refuses the content.
        ProducerError::InvalidMessage { reason, .. }
            if ["InvalidMessageContents", "MessageTooLong"]
                .iter()
                .any(|code| reason.starts_with(code)) =>
        {
            (
                StatusCode::BAD_REQUEST,
                format!("SQS refused the job's message: {reason}"),
            )
        }
        e => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "could not queue the job: {e}; try again when {} answers",
                state.endpoint()
            ),
        ),
    }
}

/// Records the job as waiting, sends it, and answers with its id; when the send fails the
/// record is removed, so that no status exists for an id the client never received.
async fn enqueue(state: &ApiState, message: String) -> Response {
    if let Err((status, reason)) = check_message(&message) {
        return error(status, reason);
    }
    let id = uuid::Uuid::new_v4().to_string();
    let body = match serde_json::to_string(&JobMessage {
        id: id.clone(),
        message,
    }) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode the job: {e}"),
            );
        }
    };
    if body.len() > MAX_MESSAGE {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the job is {} bytes as an SQS message; the limit is {MAX_MESSAGE}",
                body.len()
            ),
        );
    }
    // Recorded before the send: a worker quick enough to take the job first must find it, and
    // must not have its `processing` overwritten by a late `waiting`.
    if let Err(e) = state.store.create(&id).await {
        return store_error(e);
    }
    // The client's timeouts bound the send; this bounds it even if they do not apply.
    let sent = tokio::time::timeout(
        API_SQS_TIMEOUT + std::time::Duration::from_millis(500),
        state
            .producer
            .send(&state.queues.queue, OutgoingMessage::new(body)),
    )
    .await;
    let failure = match sent {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(send_failure(state, e)),
        Err(_) => Some((
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "could not queue the job: {} did not answer within {} s",
                state.endpoint(),
                API_SQS_TIMEOUT.as_secs()
            ),
        )),
    };
    if let Some((status, reason)) = failure {
        if let Err(e) = state.store.remove(&id).await {
            tracing::warn!(%id, error = %e, "could not remove the record of a job that was not queued; it expires with the status TTL");
        }
        tracing::warn!(%id, %reason, "job refused");
        return error(status, reason);
    }
    tracing::info!(%id, "job accepted");
    (StatusCode::ACCEPTED, Json(Created { id })).into_response()
}

/// The job's message, or the status and reason to refuse it with.
fn message_of(
    body: Result<Json<CreateJob>, JsonRejection>,
) -> Result<String, (StatusCode, String)> {
    let Json(req) = body.map_err(|rejection| {
        let status = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        (
            status,
            format!(
                "{}; send {{\"message\": \"...\"}} as application/json",
                rejection.body_text()
            ),
        )
    })?;
    match req.message {
        Some(m) if !m.trim().is_empty() => Ok(m),
        _ => Err((
            StatusCode::BAD_REQUEST,
            "\"message\" is missing or empty: send {\"message\": \"...\"}".to_owned(),
        )),
    }
}

/// Accepts a job and answers at once with its id.
#[utoipa::path(post, path = "/jobs", request_body = CreateJob,
    responses(
        (status = 202, description = "Accepted; poll GET /jobs/{id}", body = Created),
        (status = 400, description = "Not JSON, no message, or a character SQS does not accept (the error names it and its position)", body = ErrorBody),
        (status = 413, description = "Larger than an SQS message", body = ErrorBody),
        (status = 503, description = "Redis unreachable, or SQS unreachable, not answering within 5 s, or without the queue; nothing was recorded", body = ErrorBody),
    ))]
async fn create_job(
    State(state): State<ApiState>,
    body: Result<Json<CreateJob>, JsonRejection>,
) -> Response {
    match message_of(body) {
        Ok(m) => enqueue(&state, m).await,
        Err((status, reason)) => error(status, reason),
    }
}

/// A job's status.
#[utoipa::path(get, path = "/jobs/{id}", params(("id" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody),
    ))]
async fn get_job(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.store.get(&id).await {
        Ok(Some(job)) => Json(job).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no job {id}")),
        Err(e) => store_error(e),
    }
}

/// The original's route: queue a job (the body is optional).
#[utoipa::path(post, path = "/test/send-async-message",
    responses((status = 202, body = Created), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn send_async_message(
    State(state): State<ApiState>,
    body: Option<Json<CreateJob>>,
) -> Response {
    let message = body
        .and_then(|Json(b)| b.message)
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| "async message".to_owned());
    enqueue(&state, message).await
}

/// The original's route: a job's status alone.
#[utoipa::path(get, path = "/test/{id}/status", params(("id" = String, Path, description = "The job id")),
    responses((status = 200, body = StatusOnly), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn test_status(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.store.get(&id).await {
        Ok(Some(job)) => Json(StatusOnly { status: job.status }).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no job {id}")),
        Err(e) => store_error(e),
    }
}

/// Asks SQS for the jobs queue's attributes: one attempt of at most 2 s, so that a missing
/// queue, an endpoint that is down and one that hangs each show as what they are.
async fn sqs_check(state: &ApiState) -> Result<Option<u64>, String> {
    let queue = &state.queues.queue;
    let call = state
        .sqs
        .probe
        .get_queue_attributes()
        .queue_url(&state.queues.queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send();
    let timeout = || {
        format!(
            "{} did not answer GetQueueAttributes within {} s",
            state.endpoint(),
            HEALTH_SQS_TIMEOUT.as_secs()
        )
    };
    match tokio::time::timeout(
        HEALTH_SQS_TIMEOUT + std::time::Duration::from_millis(500),
        call,
    )
    .await
    {
        Err(_) => Err(timeout()),
        Ok(Err(e)) => Err(sqs_failure(
            &state.endpoint(),
            "GetQueueAttributes",
            queue,
            HEALTH_SQS_TIMEOUT,
            &e,
        )
        .message()
        .to_owned()),
        Ok(Ok(out)) => Ok(out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse().ok())),
    }
}

/// Redis and SQS reachability and the worker's status.
#[utoipa::path(get, path = "/health",
    responses((status = 200, description = "All reachable", body = Health), (status = 503, description = "Degraded: `redis` or `sqs` says what failed", body = Health)))]
async fn health(State(state): State<ApiState>) -> Response {
    let redis = match state.store.kind() {
        "memory" => "memory".to_owned(),
        _ => match state.store.ping().await {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.to_string(),
        },
    };
    let (sqs, queued) = match sqs_check(&state).await {
        Ok(n) => ("ok".to_owned(), n),
        Err(why) => (why, None),
    };
    let consumer = state
        .consumer
        .as_ref()
        .map(|s| {
            s.snapshot()
                .into_iter()
                .map(|q| ConsumerHealth {
                    queue: q.queue,
                    running: q.running,
                    in_flight: q.in_flight,
                    processed: q.processed,
                    failed: q.failed,
                    circuit: match q.circuit {
                        CircuitState::Open => "open",
                        CircuitState::HalfOpen => "half_open",
                        _ => "closed",
                    }
                    .to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    let ok = (redis == "ok" || redis == "memory") && sqs == "ok";
    let body = Health {
        status: if ok { "ok" } else { "degraded" }.to_owned(),
        redis,
        sqs,
        queued,
        consumer,
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// Moves every message of the dead-letter queue back to the jobs queue (SQS
/// `StartMessageMoveTask`) and answers with the task's handle at once; the move runs in SQS.
/// Redriven jobs go through the worker again: their status turns `processing`, then `done`,
/// `retrying` or `dead_lettered` again.
#[utoipa::path(post, path = "/dlq/redrive",
    responses(
        (status = 202, description = "The move task started", body = RedriveStarted),
        (status = 501, description = "The SQS endpoint does not implement StartMessageMoveTask", body = ErrorBody),
        (status = 502, description = "SQS refused the task (for example, one is already running)", body = ErrorBody),
        (status = 503, description = "SQS unreachable or not answering within 5 s", body = ErrorBody),
    ))]
async fn redrive(State(state): State<ApiState>) -> Response {
    let q = &state.queues;
    let call = state
        .sqs
        .api
        .start_message_move_task()
        .source_arn(&q.dlq_arn)
        .destination_arn(&q.queue_arn)
        .send();
    match tokio::time::timeout(
        API_SQS_TIMEOUT + std::time::Duration::from_millis(500),
        call,
    )
    .await
    {
        Ok(Ok(out)) => {
            tracing::info!(task = out.task_handle().unwrap_or(""), from = %q.dlq, to = %q.queue, "dead-letter redrive started");
            (
                StatusCode::ACCEPTED,
                Json(RedriveStarted {
                    task_handle: out.task_handle().unwrap_or_default().to_owned(),
                    source_arn: q.dlq_arn.clone(),
                    destination_arn: q.queue_arn.clone(),
                }),
            )
                .into_response()
        }
        Ok(Err(e)) => sqs_failure(
            &state.endpoint(),
            "StartMessageMoveTask",
            &q.dlq,
            API_SQS_TIMEOUT,
            &e,
        )
        .into_response(),
        Err(_) => SqsFailure::Unavailable(format!(
            "{} did not answer StartMessageMoveTask within {} s",
            state.endpoint(),
            API_SQS_TIMEOUT.as_secs()
        ))
        .into_response(),
    }
}

/// The Prometheus text exposition of this process's metrics: the API's requests
/// (`http_requests_total`, `http_request_duration_seconds`, by route template) and the
/// worker's, when it runs in this process (`sqs_handler_*`, by queue).
#[utoipa::path(get, path = "/metrics",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 503, description = "The metrics recorder could not be installed in this process (another one was first)", body = ErrorBody),
    ))]
async fn metrics(State(state): State<ApiState>) -> Response {
    match &state.metrics {
        Ok(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        Err(why) => error(StatusCode::SERVICE_UNAVAILABLE, why.clone()),
    }
}

/// The OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "sqs-handler demo: job status",
        description = "Accept work at once, process it from SQS, poll its status."
    ),
    paths(
        create_job,
        get_job,
        send_async_message,
        test_status,
        health,
        redrive,
        metrics
    ),
    components(schemas(
        CreateJob,
        Created,
        Job,
        Status,
        StatusOnly,
        ErrorBody,
        Health,
        ConsumerHealth,
        RedriveStarted
    ))
)]
pub struct ApiDoc;

/// The router: the API, `/metrics`, `/openapi.json` and Swagger UI at `/docs`; every request
/// runs in a span and is counted (see [`crate::telemetry::observe`]).
pub fn app(state: ApiState) -> Router {
    Router::new()
        .route("/jobs", post(create_job))
        .route("/jobs/{id}", get(get_job))
        .route("/test/send-async-message", post(send_async_message))
        .route("/test/{id}/status", get(test_status))
        .route("/health", get(health))
        .route("/dlq/redrive", post(redrive))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(2 * MAX_MESSAGE))
        .with_state(state)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
        .layer(middleware::from_fn(crate::telemetry::observe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_characters_sqs_refuses_and_json_keeps_as_they_are_are_forbidden() {
        assert_eq!(forbidden_char("plain, é, 日本, 🎉"), None);
        // JSON escapes control characters, so SQS never sees them raw.
        assert_eq!(forbidden_char("\u{0}\u{1}\u{1f}\t\n"), None);
        assert_eq!(forbidden_char("ab\u{FFFF}"), Some((2, '\u{FFFF}')));
        assert_eq!(forbidden_char("🎉\u{FFFE}x"), Some((1, '\u{FFFE}')));
        let (status, reason) = check_message("ab\u{FFFF}").unwrap_err();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            reason.starts_with("\"message\" has character U+FFFF at position 2 "),
            "{reason}"
        );
    }

    #[test]
    fn sqs_errors_map_to_what_the_client_can_do() {
        use aws_sdk_sqs::error::ErrorMetadata;
        use aws_sdk_sqs::operation::start_message_move_task::StartMessageMoveTaskError;
        use aws_sdk_sqs::types::error::UnsupportedOperation;

        let ep = "the SQS endpoint http://x";
        let within = std::time::Duration::from_secs(4);
        let meta = |code: &str| ErrorMetadata::builder().code(code).message("m").build();
        let unsupported: SdkError<_, ()> = SdkError::service_error(
            StartMessageMoveTaskError::UnsupportedOperation(
                UnsupportedOperation::builder()
                    .message("m")
                    .meta(meta("AWS.SimpleQueueService.UnsupportedOperation"))
                    .build(),
            ),
            (),
        );
        let failure = sqs_failure(ep, "StartMessageMoveTask", "jobs-dlq", within, &unsupported);
        assert!(
            matches!(&failure, SqsFailure::Unsupported(m) if m.starts_with("the SQS endpoint http://x does not support StartMessageMoveTask: ")),
            "{failure:?}"
        );
        assert_eq!(
            failure.into_response().status(),
            StatusCode::NOT_IMPLEMENTED
        );

        let refused: SdkError<_, ()> = SdkError::service_error(
            StartMessageMoveTaskError::generic(meta("AWS.SimpleQueueService.Throttled")),
            (),
        );
        let failure = sqs_failure(ep, "StartMessageMoveTask", "jobs-dlq", within, &refused);
        assert_eq!(failure.into_response().status(), StatusCode::BAD_GATEWAY);

        let missing: SdkError<_, ()> = SdkError::service_error(
            StartMessageMoveTaskError::generic(meta("AWS.SimpleQueueService.NonExistentQueue")),
            (),
        );
        let failure = sqs_failure(ep, "StartMessageMoveTask", "jobs-dlq", within, &missing);
        assert_eq!(
            failure.message(),
            "queue \"jobs-dlq\" does not exist at the SQS endpoint http://x: create it (restarting the demo does)"
        );
        assert_eq!(
            failure.into_response().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );

        let timeout: SdkError<StartMessageMoveTaskError, ()> =
            SdkError::timeout_error("operation timeout");
        let failure = sqs_failure(ep, "StartMessageMoveTask", "jobs-dlq", within, &timeout);
        assert_eq!(
            failure.message(),
            "the SQS endpoint http://x did not answer StartMessageMoveTask within 4 s"
        );
    }

    #[test]
    fn every_message_that_passes_the_check_encodes_to_an_sqs_body() {
        let all: String = (0..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|c| forbidden_char(&c.to_string()).is_none())
            .collect();
        let body = serde_json::to_string(&JobMessage {
            id: "x".into(),
            message: all,
        })
        .unwrap();
        assert_eq!(body.chars().find(|&c| !sqs_accepts(c)), None);
    }
}
