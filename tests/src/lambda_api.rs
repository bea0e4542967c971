//! A local implementation of the AWS Lambda Runtime API (version 2018-06-01), for running a
//! function built with `lambda_runtime` as Lambda would: `GET /runtime/invocation/next` hands
//! out queued events with their request id and deadline headers; `POST
//! /runtime/invocation/{id}/response` and `/error` record what the function answered.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::{Notify, mpsc};

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `POST /runtime/invocation/{id}/response` with this JSON body.
    Response(serde_json::Value),
    /// `POST /runtime/invocation/{id}/error`: the `Lambda-Runtime-Function-Error-Type` header
    /// and the JSON body (`errorType`, `errorMessage`).
    Error(Option<String>, serde_json::Value),
}

#[derive(Default)]
struct Inner {
    events: Mutex<VecDeque<(String, serde_json::Value, Duration)>>,
    ready: Notify,
}

/// The Runtime API server, on a loopback port; it stops when dropped.
#[derive(Debug)]
pub struct RuntimeApi {
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub address: SocketAddr,
    inner: Arc<Inner>,
    answers: mpsc::UnboundedReceiver<(String, Answer)>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuntimeApi")
    }
}

impl RuntimeApi {
    /// Starts the server on 127.0.0.1.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let inner = Arc::new(Inner::default());
        let (tx, answers) = mpsc::unbounded_channel();
        let state = (inner.clone(), tx);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (inner, tx) = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        serve(inner.clone(), tx.clone(), req)
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Self {
            address,
            inner,
            answers,
            task,
        }
    }

    /// Queues an invocation with request id `id`, whose deadline is `time_left` after the
    /// function receives it.
    pub fn invoke(&self, id: &str, event: serde_json::Value, time_left: Duration) {
        self.inner
            .events
            .lock()
            .unwrap()
            .push_back((id.to_owned(), event, time_left));
        self.inner.ready.notify_one();
    }

    /// The next answer, or a panic after `deadline`.
    pub async fn answer(&mut self, deadline: Duration) -> (String, Answer) {
        tokio::time::timeout(deadline, self.answers.recv())
            .await
            .unwrap_or_else(|_| panic!("no answer from the function within {deadline:?}"))
            .expect("the Runtime API server is running")
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Body = Full<Bytes>;

fn reply(status: StatusCode, body: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() = status;
    r
}

async fn serve(
    inner: Arc<Inner>,
    answers: mpsc::UnboundedSender<(String, Answer)>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/invocation/") else {
        return Ok(reply(StatusCode::NOT_FOUND, "unknown path"));
    };
    if req.method() == Method::GET && rest == "next" {
        return Ok(next(&inner).await);
    }
    let Some((id, kind)) = rest.split_once('/') else {
        return Ok(reply(StatusCode::NOT_FOUND, "unknown path"));
    };
    let (id, kind) = (id.to_owned(), kind.to_owned());
    let error_type = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, "unreadable body")),
    };
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into()));
    let answer = match kind.as_str() {
        "response" => Answer::Response(json),
        "error" => Answer::Error(error_type, json),
        _ => return Ok(reply(StatusCode::NOT_FOUND, "unknown path")),
    };
    let _ = answers.send((id, answer));
    Ok(reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#))
}

/// Waits for a queued event and hands it out, as Lambda does (no timeout on this request).
async fn next(inner: &Inner) -> Response<Body> {
    loop {
        let notified = inner.ready.notified();
        let event = inner.events.lock().unwrap().pop_front();
        if let Some((id, event, time_left)) = event {
            let deadline = (SystemTime::now() + time_left)
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            let mut r = reply(StatusCode::OK, &event.to_string());
            let h = r.headers_mut();
            h.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
            h.insert(
                "lambda-runtime-deadline-ms",
                deadline.to_string().parse().unwrap(),
            );
            h.insert(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:lambda-fn"
                    .parse()
                    .unwrap(),
            );
            h.insert("content-type", "application/json".parse().unwrap());
            return r;
        }
        notified.await;
    }
}
