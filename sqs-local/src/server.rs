//! HTTP: the AWS JSON 1.0 protocol over axum.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::store::{Closing, Operation, SqsState};

/// The largest request body read: a 1 MiB batch, base64 binary attributes and JSON framing.
pub(crate) const MAX_BODY: usize = 4 * 1024 * 1024;
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

#[derive(Debug, Clone)]
struct Ctx {
    state: SqsState,
    closing: Closing,
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

async fn handle(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let err = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::request_too_large(MAX_BODY)
            } else {
                ApiError::serialization(format!("Could not read the request body: {e}."))
            };
            return error_response(&err);
        }
    };
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(op) = target
        .strip_prefix("AmazonSQS.")
        .and_then(Operation::from_name)
    else {
        let err = if target.is_empty() {
            ApiError::invalid_action(
                "(no X-Amz-Target header: sqs-local speaks the AWS JSON 1.0 protocol, as aws-sdk-sqs and current AWS SDKs do)",
            )
        } else {
            ApiError::invalid_action(target)
        };
        return error_response(&err);
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let base = format!("http://{host}");
    match ctx.state.dispatch(op, &body, &base, &ctx.closing).await {
        Ok(bytes) => json_response(StatusCode::OK, bytes),
        Err(err) => {
            tracing::debug!(operation = op.name(), error = %err, "request refused");
            error_response(&err)
        }
    }
}

/// Serves `state` on `listener` until `token` is cancelled; long polls in flight return at once.
pub(crate) async fn serve(listener: TcpListener, state: SqsState, token: CancellationToken) {
    let ctx = Arc::new(Ctx {
        state,
        closing: Closing(token.clone()),
    });
    let app = Router::new()
        .route(STATS_PATH, axum::routing::get(stats))
        .fallback(handle)
        .with_state(ctx)
        .layer(DefaultBodyLimit::max(MAX_BODY));
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(token.cancelled_owned())
        .await;
    if let Err(e) = result {
        tracing::error!(?addr, error = %e, "sqs-local server stopped with an error");
    }
}
