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
use crate::latency::{self, Latency};
use crate::store::{Closing, Operation, Scope, SqsState};

/// The largest request body read: a 1 MiB batch, base64 binary attributes and JSON framing.
pub(crate) const MAX_BODY: usize = 4 * 1024 * 1024;
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// Where a server is: what its queue URLs start with, and its account and default region.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    /// `http://host:port` that queue URLs start with: the server's own, never a client's
    /// `Host` header (a client must not be able to point other clients' queue URLs elsewhere).
    pub(crate) base_url: String,
    /// The server's account, and the region of requests that carry no signature.
    pub(crate) scope: Scope,
}

#[derive(Debug, Clone)]
struct Ctx {
    state: SqsState,
    closing: Closing,
    site: Site,
    body_read_timeout: Duration,
    latency: Latency,
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

/// The region a request was signed for: the third part of the SigV4 credential scope,
/// `Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/sqs/aws4_request, ...`. sqs-local
/// does not check signatures; it only reads where the client meant to act.
fn signing_region(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    let region = credential.split([',', ' ']).next()?.split('/').nth(2)?;
    let valid = !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then(|| region.to_owned())
}

/// The scope a request acts in: its signing region (or the server's), the server's account.
fn request_scope(site: &Site, headers: &HeaderMap) -> Scope {
    Scope {
        region: signing_region(headers).unwrap_or_else(|| site.scope.region.clone()),
        account: site.scope.account.clone(),
    }
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
    // Simulated latency: half on the request's way (the operation takes effect after it), the
    // rest on the response's way back; deadlines, so that timer rounding is paid once.
    let delay = ctx.latency.delay(op).sample();
    let arrived = tokio::time::Instant::now();
    let scope = request_scope(&ctx.site, &parts.headers);
    let task = tokio::spawn({
        let ctx = ctx.clone();
        async move {
            latency::wait_until(arrived + delay / 2, &ctx.closing.0).await;
            let started = tokio::time::Instant::now();
            let result = ctx
                .state
                .dispatch(op, &body, &ctx.site.base_url, &scope, &ctx.closing)
                .await;
            (result, started.elapsed())
        }
    });
    let (result, took) = task.await.unwrap_or_else(|e| {
        tracing::error!(operation = op.name(), error = %e, "operation task failed");
        (Err(ApiError::internal(op.name())), Duration::ZERO)
    });
    latency::wait_until(arrived + delay + took, &ctx.closing.0).await;
    match result {
        Ok(bytes) => json_response(StatusCode::OK, bytes),
        Err(err) => {
            tracing::debug!(operation = op.name(), error = %err, "request refused");
            error_response(&err)
        }
    }
}

/// Serves `state` on `listener` until `token` is cancelled; long polls in flight return at once.
/// Queue URLs start with `site.base_url`.
pub(crate) async fn serve(
    listener: TcpListener,
    state: SqsState,
    token: CancellationToken,
    site: Site,
    limits: Limits,
    latency: Latency,
) {
    let ctx = Arc::new(Ctx {
        state,
        closing: Closing(token.clone()),
        site,
        body_read_timeout: limits.read_timeout,
        latency,
    });
    let app = Router::new()
        .route(STATS_PATH, axum::routing::get(stats))
        .fallback(handle)
        .with_state(ctx);
    connections::serve(listener, app, limits, token).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn the_region_comes_from_the_credential_scope() {
        let h = headers(
            "AWS4-HMAC-SHA256 Credential=test/20240101/us-west-2/sqs/aws4_request, SignedHeaders=host, Signature=abc",
        );
        assert_eq!(signing_region(&h).as_deref(), Some("us-west-2"));
        for bad in [
            "",
            "Bearer x",
            "AWS4-HMAC-SHA256 Credential=test/20240101",
            "AWS4-HMAC-SHA256 Credential=a/b/..%2F/sqs/aws4_request",
        ] {
            assert_eq!(signing_region(&headers(bad)), None, "{bad}");
        }
        assert_eq!(signing_region(&HeaderMap::new()), None);
    }
}
