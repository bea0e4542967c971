//! HTTP: the AWS JSON 1.0 protocol over axum.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::connections::{self, Limits};
use crate::error::ApiError;
use crate::store::{Closing, Operation, SqsState};

/// The largest request body read: a 1 MiB batch, base64 binary attributes and JSON framing.
pub(crate) const MAX_BODY: usize = 4 * 1024 * 1024;
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

#[derive(Debug, Clone)]
struct Ctx {
    state: SqsState,
    closing: Closing,
    /// `http://host:port` that queue URLs start with: the server's own, never a client's
    /// `Host` header (a client must not be able to point other clients' queue URLs elsewhere).
    base_url: String,
    body_read_timeout: Duration,
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(
        &uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes())
            .into_uuid()
            .hyphenated()
            .to_string(),
    ) {
        headers.insert("x-amzn-requestid", id);
    }
    resp
}

fn error_response(err: &ApiError) -> Response {
    let body = serde_json::json!({
        "__type": format!("com.amazonaws.sqs#{}", err.type_name),
        "message": err.message,
    });
    let mut resp = json_response(err.status, body.to_string().into_bytes());
    if let Ok(v) = HeaderValue::from_str(&format!("{};{}", err.query_code, err.fault())) {
        resp.headers_mut().insert("x-amzn-query-error", v);
    }
    resp
}

/// Path of the request counters (`GET`): JSON of calls by operation and empty receives.
pub(crate) const STATS_PATH: &str = "/_sqs-local/stats";

async fn stats(State(ctx): State<Arc<Ctx>>) -> Response {
    let stats = ctx.state.stats();
    let body = serde_json::json!({
        "calls": stats.snapshot(),
        "total": stats.total(),
        "empty_receives": stats.empty_receives(),
    });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

/// Reads a request body within the server's limits of size and time.
async fn read_body(body: Body, timeout: Duration) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY)).await {
        Err(_) => Err(ApiError::request_timeout(timeout)),
        Ok(Ok(bytes)) => Ok(bytes),
        // to_bytes reports only a length-limit error or a transport error.
        Ok(Err(e)) if is_length_limit(&e) => Err(ApiError::request_too_large(MAX_BODY)),
        Ok(Err(e)) => Err(ApiError::serialization(format!(
            "Could not read the request body: {e}."
        ))),
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

fn operation(headers: &HeaderMap) -> Result<Operation, ApiError> {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    target
        .strip_prefix("AmazonSQS.")
        .and_then(Operation::from_name)
        .ok_or_else(|| {
            if target.is_empty() {
                ApiError::invalid_action(
                    "(no X-Amz-Target header: sqs-local speaks the AWS JSON 1.0 protocol, as aws-sdk-sqs and current AWS SDKs do)",
                )
            } else {
                ApiError::invalid_action(target)
            }
        })
}

async fn handle(State(ctx): State<Arc<Ctx>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match read_body(body, ctx.body_read_timeout).await {
        Ok(b) => b,
        Err(err) => return error_response(&err),
    };
    let op = match operation(&parts.headers) {
        Ok(op) => op,
        Err(err) => return error_response(&err),
    };
    // SQS runs a request to its end whether or not the client is still there: a long poll
    // abandoned by its client still takes the messages that arrive while it waits. A request
    // future is dropped when its connection closes, so the operation runs in a task of its own.
    let task = tokio::spawn({
        let ctx = ctx.clone();
        async move {
            ctx.state
                .dispatch(op, &body, &ctx.base_url, &ctx.closing)
                .await
        }
    });
    let result = task.await.unwrap_or_else(|e| {
        tracing::error!(operation = op.name(), error = %e, "operation task failed");
        Err(ApiError::internal(op.name()))
    });
    match result {
        Ok(bytes) => json_response(StatusCode::OK, bytes),
        Err(err) => {
            tracing::debug!(operation = op.name(), error = %err, "request refused");
            error_response(&err)
        }
    }
}

/// Serves `state` on `listener` until `token` is cancelled; long polls in flight return at once.
/// Queue URLs start with `base_url`.
pub(crate) async fn serve(
    listener: TcpListener,
    state: SqsState,
    token: CancellationToken,
    base_url: String,
    limits: Limits,
) {
    let ctx = Arc::new(Ctx {
        state,
        closing: Closing(token.clone()),
        base_url,
        body_read_timeout: limits.read_timeout,
    });
    let app = Router::new()
        .route(STATS_PATH, axum::routing::get(stats))
        .fallback(handle)
        .with_state(ctx);
    connections::serve(listener, app, limits, token).await;
}
