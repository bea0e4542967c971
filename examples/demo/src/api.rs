//! The HTTP API: create jobs, read their status, health, OpenAPI and Swagger UI.

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqs_handler::{OutgoingMessage, Producer, StatusHandle};
use utoipa::{OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use crate::store::{Job, JobStore, Status};
use crate::worker::JobMessage;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// Statuses.
    pub store: JobStore,
    /// Sends jobs.
    pub producer: Producer,
    /// The jobs queue.
    pub queue: String,
    /// The worker's status, when it runs in this process.
    pub consumer: Option<StatusHandle>,
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

/// `GET /health` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    /// `ok`, `memory`, or why Redis is unreachable.
    pub redis: String,
    /// `ok`, or why SQS is unreachable.
    pub sqs: String,
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

async fn enqueue(state: &ApiState, message: String) -> Response {
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
    if let Err(e) = state.store.create(&id).await {
        return store_error(e);
    }
    if let Err(e) = state
        .producer
        .send(&state.queue, OutgoingMessage::new(body))
        .await
    {
        let reason = format!("could not queue the job: {e}");
        let _ = state
            .store
            .set(&id, Status::Error, Some(reason.clone()))
            .await;
        return error(StatusCode::SERVICE_UNAVAILABLE, reason);
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
        (status = 400, description = "Not JSON, or no message", body = ErrorBody),
        (status = 413, description = "Larger than an SQS message", body = ErrorBody),
        (status = 503, description = "Redis or SQS unreachable", body = ErrorBody),
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
    responses((status = 202, body = Created), (status = 503, body = ErrorBody)))]
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

/// Redis and SQS reachability and the worker's status.
#[utoipa::path(get, path = "/health",
    responses((status = 200, description = "All reachable", body = Health), (status = 503, description = "Degraded", body = Health)))]
async fn health(State(state): State<ApiState>) -> Response {
    let redis = match state.store.kind() {
        "memory" => "memory".to_owned(),
        _ => match state.store.ping().await {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.to_string(),
        },
    };
    let sqs = match tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.producer.queue_url(&state.queue),
    )
    .await
    {
        Ok(Ok(_)) => "ok".to_owned(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "SQS did not answer within 2 s".to_owned(),
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
                })
                .collect()
        })
        .unwrap_or_default();
    let ok = (redis == "ok" || redis == "memory") && sqs == "ok";
    let body = Health {
        status: if ok { "ok" } else { "degraded" }.to_owned(),
        redis,
        sqs,
        consumer,
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// The OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "sqs-handler demo: job status",
        description = "Accept work at once, process it from SQS, poll its status."
    ),
    paths(create_job, get_job, send_async_message, test_status, health),
    components(schemas(
        CreateJob,
        Created,
        Job,
        Status,
        StatusOnly,
        ErrorBody,
        Health,
        ConsumerHealth
    ))
)]
pub struct ApiDoc;

/// The router: the API, `/openapi.json` and Swagger UI at `/docs`.
pub fn app(state: ApiState) -> Router {
    Router::new()
        .route("/jobs", post(create_job))
        .route("/jobs/{id}", get(get_job))
        .route("/test/send-async-message", post(send_async_message))
        .route("/test/{id}/status", get(test_status))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(2 * MAX_MESSAGE))
        .with_state(state)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
}
