//! OTLP export: the demo binary, with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a collector
//! this test runs on 127.0.0.1, sends its spans as http/protobuf, and one trace goes from the
//! caller's `traceparent` through `POST /jobs` and the send to the worker's process span.
//! Real Redis (`REDIS_URL` or 127.0.0.1:6379) under the test's own key prefix; the demo runs
//! its own sqs-local.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{prefix, redis_url, request, spawn_demo, terminate, watch};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One POST the collector received.
#[derive(Debug, Clone)]
struct Export {
    path: String,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// A minimal OTLP/HTTP collector: records each request and answers 200 with an empty
/// (protobuf) body, over keep-alive connections.
async fn collector() -> (SocketAddr, Arc<Mutex<Vec<Export>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(serve(conn, store.clone()));
        }
    });
    (addr, seen)
}

async fn serve(mut conn: tokio::net::TcpStream, store: Arc<Mutex<Vec<Export>>>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0; 8192];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("")
            .to_owned();
        let header = |name: &str| {
            head.split("\r\n")
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0; 8192];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end..head_end + length].to_vec();
        buf.drain(..head_end + length);
        store.lock().unwrap().push(Export {
            path,
            content_type: header("content-type"),
            body,
        });
        let answer =
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
        if conn.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A span as exported, with what the test checks.
#[derive(Debug, Clone)]
struct Span {
    service: Option<String>,
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: Vec<KeyValue>,
}

impl Span {
    fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v: &AnyValue| v.value.as_ref())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every span of every export, decoded; an export that is not an OTLP trace request fails.
fn spans(exports: &[Export]) -> Vec<Span> {
    let mut out = Vec::new();
    for e in exports {
        let request = ExportTraceServiceRequest::decode(e.body.as_slice())
            .unwrap_or_else(|err| panic!("an export to {} did not decode: {err}", e.path));
        for rs in request.resource_spans {
            let service = rs.resource.as_ref().and_then(|r| {
                r.attributes
                    .iter()
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref())
                    .and_then(|v| match &v.value {
                        Some(Value::StringValue(s)) => Some(s.clone()),
                        _ => None,
                    })
            });
            for ss in rs.scope_spans {
                for s in ss.spans {
                    out.push(Span {
                        service: service.clone(),
                        name: s.name,
                        kind: s.kind,
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent_span_id: hex(&s.parent_span_id),
                        attributes: s.attributes,
                    });
                }
            }
        }
    }
    out
}

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// The spans of one job's trace, once all are exported: the API's server span (child of the
/// caller's), sqs-handler's send span under it, and the worker's process span under that
/// (through the message's `traceparent`).
fn job_trace(spans: &[Span]) -> Option<(Span, Span, Span)> {
    let server = spans.iter().find(|s| {
        s.name == "POST /jobs" && s.trace_id == CALLER_TRACE && s.parent_span_id == CALLER_SPAN
    })?;
    let send = spans
        .iter()
        .find(|s| s.name == "send jobs" && s.parent_span_id == server.span_id)?;
    let process = spans
        .iter()
        .find(|s| s.name == "process jobs" && s.parent_span_id == send.span_id)?;
    Some((server.clone(), send.clone(), process.clone()))
}

#[tokio::test]
async fn spans_are_exported_over_otlp_as_one_trace_from_the_request_to_the_worker() {
    let (collector, exports) = collector().await;
    let env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}")),
        // Export every 100 ms instead of every 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ("REDIS_URL", redis_url()),
        ("REDIS_KEY_PREFIX", prefix("otlp")),
        ("PORT", "0".to_owned()),
        ("JOB_DURATION_MS", "50".to_owned()),
        ("SQS_WAIT_TIME_SECS", "1".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let (mut demo, line) = spawn_demo(&[], &env, "listening on http://").await;
    let addr: SocketAddr = line
        .trim_start_matches("listening on http://")
        .trim()
        .parse()
        .unwrap();

    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let created = request(
        addr,
        "POST",
        "/jobs",
        &[("traceparent", &traceparent)],
        Some(r#"{"message":"traced"}"#),
    )
    .await;
    assert_eq!(created.status, 202, "{}", created.body);
    let id: serde_json::Value = serde_json::from_str(&created.body).unwrap();
    let id = id["id"].as_str().expect("an id").to_owned();
    watch(addr, &id, Duration::from_secs(20), "done").await;

    let started = Instant::now();
    let (server, send, process) = loop {
        let all = spans(&exports.lock().unwrap());
        if let Some(found) = job_trace(&all) {
            break found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the job's trace was not exported within 20 s; spans: {:#?}",
            all.iter()
                .map(|s| (&s.name, &s.trace_id, &s.span_id, &s.parent_span_id))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for e in exports.lock().unwrap().iter() {
        assert_eq!(e.path, "/v1/traces");
        assert_eq!(e.content_type.as_deref(), Some("application/x-protobuf"));
    }
    assert_eq!(server.service.as_deref(), Some("sqs-handler-demo"));
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(
        server.attribute("http.route"),
        Some(&Value::StringValue("/jobs".to_owned()))
    );
    assert_eq!(
        server.attribute("http.response.status_code"),
        Some(&Value::IntValue(202))
    );
    assert_eq!(send.kind, SpanKind::Producer as i32);
    assert_eq!(process.kind, SpanKind::Consumer as i32);
    assert_eq!(send.trace_id, CALLER_TRACE);
    assert_eq!(process.trace_id, CALLER_TRACE);
    assert_eq!(
        process.attribute("messaging.destination.name"),
        Some(&Value::StringValue("jobs".to_owned()))
    );

    let status = terminate(&mut demo).await;
    assert!(status.success(), "the demo exits cleanly: {status}");
}
