//! `GET /metrics`: the API's request metrics and the worker's (sqs-handler's `metrics`
//! feature), read from the Prometheus text the demo serves, with exact values. Real Redis
//! (`REDIS_URL` or 127.0.0.1:6379) under the test's own key prefix, and the demo's own
//! sqs-local. One demo in this process: the recorder is the process's, so its counts are
//! this test's alone.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::{config, post_job, request, watch};
use demo::Role;

/// One sample of the text format: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text exposition format: comments and blank lines skipped, label
/// values unescaped (`\\`, `\"`, `\n`), an optional timestamp after the value ignored.
fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .ok_or_else(|| bad("no value"))?;
        let name = line[..name_end].to_owned();
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(after) = rest.strip_prefix('{') {
            let mut chars = after.char_indices();
            let mut key = String::new();
            let end = loop {
                let Some((i, c)) = chars.next() else {
                    return Err(bad("unterminated labels"));
                };
                match c {
                    '}' if key.trim().is_empty() => break i + 1,
                    ',' if key.trim().is_empty() => {}
                    '=' => {
                        if chars.next().map(|(_, c)| c) != Some('"') {
                            return Err(bad("label value not quoted"));
                        }
                        let mut value = String::new();
                        loop {
                            match chars.next().map(|(_, c)| c) {
                                None => return Err(bad("unterminated label value")),
                                Some('"') => break,
                                Some('\\') => match chars.next().map(|(_, c)| c) {
                                    Some('n') => value.push('\n'),
                                    Some(c @ ('\\' | '"')) => value.push(c),
                                    _ => return Err(bad("bad escape")),
                                },
                                Some(c) => value.push(c),
                            }
                        }
                        labels.insert(std::mem::take(&mut key).trim().to_owned(), value);
                    }
                    c => key.push(c),
                }
            };
            rest = &after[end..];
        }
        let value = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| bad("no value"))?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| bad("value is not a number"))?,
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    Ok(samples)
}

/// The value of the sample named `name` with exactly these labels.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .map(|s| s.value)
}

/// `GET /metrics`, parsed; checks the status and the content type.
async fn scrape(addr: SocketAddr) -> (String, Vec<Sample>) {
    let answer = request(addr, "GET", "/metrics", &[], None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let samples = parse(&answer.body).unwrap_or_else(|e| panic!("{e}\n{}", answer.body));
    (answer.body, samples)
}

#[test]
fn the_parser_reads_labels_escapes_and_special_values() {
    let text = "# HELP x y\n# TYPE x counter\nx 1\ny{a=\"1\",b=\"q\\\"\\\\\\n,}\"} 2.5 1700000000\nz_bucket{le=\"+Inf\"} 3\nw{} +Inf\n";
    let samples = parse(text).unwrap();
    assert_eq!(value(&samples, "x", &[]), Some(1.0));
    assert_eq!(
        value(&samples, "y", &[("a", "1"), ("b", "q\"\\\n,}")]),
        Some(2.5)
    );
    assert_eq!(value(&samples, "z_bucket", &[("le", "+Inf")]), Some(3.0));
    assert_eq!(value(&samples, "w", &[]), Some(f64::INFINITY));
    assert_eq!(
        value(&samples, "y", &[("a", "1")]),
        None,
        "labels match exactly"
    );
    assert!(parse("broken{a=\"1\" 2").is_err());
    assert!(parse("n{a=1} 2").is_err());
    assert!(parse("n x").is_err());
}

const OK_JOBS: usize = 5;
const FAILING_JOBS: usize = 1;

#[tokio::test]
async fn metrics_count_the_requests_by_route_and_the_worker_by_queue() {
    let mut cfg = config("metrics");
    cfg.job_duration = Duration::from_millis(50);
    let queue = cfg.queue.clone();
    let demo = demo::start(cfg, Role::All).await.unwrap();
    let addr = demo.addr.unwrap();

    let mut ok = Vec::new();
    for i in 0..OK_JOBS {
        ok.push(post_job(addr, &format!("job {i}")).await);
    }
    let mut failing = Vec::new();
    for _ in 0..FAILING_JOBS {
        failing.push(post_job(addr, "please fail").await);
    }
    for id in &ok {
        watch(addr, id, Duration::from_secs(20), "done").await;
    }
    for id in &failing {
        watch(addr, id, Duration::from_secs(20), "dead_lettered").await;
    }
    // A 404 and a refused body.
    assert_eq!(
        request(addr, "GET", "/no/such/route", &[], None)
            .await
            .status,
        404
    );
    let refused = request(addr, "POST", "/jobs", &[], Some("{}")).await;
    assert_eq!(refused.status, 400, "{}", refused.body);

    let (text, samples) = scrape(addr).await;
    let jobs = (OK_JOBS + FAILING_JOBS) as f64;
    let requests = |method, route, status| {
        value(
            &samples,
            "http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("POST", "/jobs", "202"), Some(jobs), "{text}");
    assert_eq!(requests("POST", "/jobs", "400"), Some(1.0), "{text}");
    assert_eq!(requests("GET", "unmatched", "404"), Some(1.0), "{text}");
    // Every poll of a job is under the template; no id is a label value.
    let polls = requests("GET", "/jobs/{id}", "200").unwrap_or(0.0);
    assert!(polls >= jobs, "{text}");
    for s in &samples {
        if let Some(route) = s.labels.get("route") {
            assert!(
                ok.iter()
                    .chain(&failing)
                    .all(|id| !route.contains(id.as_str())),
                "a job id in a route label: {s:?}"
            );
        }
    }
    // The request histogram is a histogram, with buckets, not a summary.
    assert!(
        text.contains("# TYPE http_request_duration_seconds histogram"),
        "{text}"
    );
    let post = [("method", "POST"), ("route", "/jobs")];
    assert_eq!(
        value(&samples, "http_request_duration_seconds_count", &post),
        Some(jobs + 1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            "http_request_duration_seconds_bucket",
            &[("method", "POST"), ("route", "/jobs"), ("le", "+Inf")]
        ),
        Some(jobs + 1.0),
        "{text}"
    );

    assert_consumer_metrics(addr, &queue).await;
    demo.stop().await;
}

/// sqs-handler's metrics for `queue` after [`OK_JOBS`] jobs done and [`FAILING_JOBS`]
/// forwarded to the dead-letter queue (non-retryable): each message received once, deleted
/// once (a forwarded one too) once the delete batches are flushed.
async fn assert_consumer_metrics(addr: SocketAddr, queue: &str) {
    let q = [("queue", queue)];
    let ok = OK_JOBS as f64;
    let failed = FAILING_JOBS as f64;
    // Deletes are batched and confirmed after the statuses are written: wait for them, and
    // for the last handler to be counted out.
    let started = std::time::Instant::now();
    let samples = loop {
        let (text, samples) = scrape(addr).await;
        if value(&samples, "sqs_handler_messages_deleted_total", &q) == Some(ok + failed)
            && value(&samples, "sqs_handler_messages_in_flight", &q) == Some(0.0)
        {
            break samples;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not every message deleted within 20 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let get = |name: &str| value(&samples, name, &q);
    assert_eq!(
        get("sqs_handler_messages_received_total"),
        Some(ok + failed)
    );
    assert_eq!(get("sqs_handler_messages_processed_total"), Some(ok));
    assert_eq!(
        value(
            &samples,
            "sqs_handler_messages_failed_total",
            &[("queue", queue), ("kind", "error")]
        ),
        Some(failed)
    );
    for kind in ["panic", "timeout", "decode"] {
        assert_eq!(
            value(
                &samples,
                "sqs_handler_messages_failed_total",
                &[("queue", queue), ("kind", kind)]
            )
            .unwrap_or(0.0),
            0.0,
            "{kind}"
        );
    }
    assert_eq!(
        get("sqs_handler_messages_forwarded_total").unwrap_or(0.0),
        failed
    );
    assert_eq!(
        get("sqs_handler_messages_released_total").unwrap_or(0.0),
        0.0
    );
    assert_eq!(
        get("sqs_handler_messages_dead_letter_bound_total").unwrap_or(0.0),
        0.0
    );
    assert_eq!(
        get("sqs_handler_handler_duration_seconds_count"),
        Some(ok + failed)
    );
    assert_eq!(
        get("sqs_handler_message_age_seconds_count"),
        Some(ok + failed)
    );
    assert_eq!(get("sqs_handler_circuit_state").unwrap_or(0.0), 0.0);
}
