//! Observability through the real consumer, on sqs-local and (through `conformance!`)
//! LocalStack: spans exported with the OpenTelemetry SDK's in-memory exporter (names, kinds,
//! messaging attributes, the link or parent from the producer's trace context carried in the
//! message's `traceparent` attribute), and the metrics a recorder receives, with exact values.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use opentelemetry::trace::{SpanKind, Status, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use sqs_handler::{
    Body, BoxError, NonRetryable, OutgoingMessage, Producer, QueueOptions, SqsConsumer, State,
};
use sqs_handler_tests::{Endpoint, Running, conformance, queue_counts, wait_for};
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// An OpenTelemetry pipeline into memory, the global subscriber of this test binary: one for
/// all tests (a thread-local default can miss spans while another thread's subscriber changes
/// a callsite's interest), which tell their spans apart by their unique queue names.
struct Traces {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
}

impl Traces {
    fn install() -> &'static Self {
        static TRACES: std::sync::OnceLock<Traces> = std::sync::OnceLock::new();
        TRACES.get_or_init(|| {
            let exporter = InMemorySpanExporter::default();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(exporter.clone())
                .build();
            let subscriber = tracing_subscriber::registry().with(
                tracing_opentelemetry::layer().with_tracer(provider.tracer("telemetry-test")),
            );
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in this test binary");
            Self { exporter, provider }
        })
    }

    fn spans(&self) -> Vec<SpanData> {
        self.provider.force_flush().expect("flush spans");
        self.exporter.get_finished_spans().expect("finished spans")
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// The messaging conventions every span of `queue` follows: its kind, `messaging.system`,
/// the operation type and name, the destination, and the queue URL.
fn assert_messaging(span: &SpanData, kind: SpanKind, operation: &str, queue: &str) {
    assert_eq!(span.span_kind, kind, "{}", span.name);
    let expected = [
        ("messaging.system", "aws_sqs"),
        ("messaging.operation.type", operation),
        ("messaging.operation.name", operation),
        ("messaging.destination.name", queue),
    ];
    for (key, value) in expected {
        assert_eq!(
            attribute(span, key).as_deref(),
            Some(value),
            "{} {key}",
            span.name
        );
    }
    let url = attribute(span, "aws.sqs.queue.url");
    assert!(
        url.is_some_and(|u| u.ends_with(queue)),
        "{} queue url",
        span.name
    );
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

async fn handler(Body(body): Body, State(seen): State<Seen>) -> Result<(), BoxError> {
    seen.0.lock().unwrap().push(body.clone());
    if body == "bad" {
        return Err(NonRetryable::new("a bad message").into());
    }
    Ok(())
}

/// Sends "good" and "bad" inside a request span, consumes them, and returns the exported spans
/// with the request's trace id and the two message ids.
async fn produce_and_consume(
    ep: &Endpoint,
    queue: &str,
    options: QueueOptions,
    traces: &Traces,
) -> (Vec<SpanData>, TraceId, [String; 2]) {
    let url = ep.create_queue(queue, &[("VisibilityTimeout", "60")]).await;
    let producer = Producer::with_client(ep.client.clone());
    let request_name = format!("request {}", ep.name(queue));
    let request = tracing::info_span!(
        "request",
        otel.name = request_name.as_str(),
        otel.kind = "server"
    );
    let name = ep.name(queue);
    let ids = async {
        let good = producer.send(&name, OutgoingMessage::new("good"));
        let good = good.await.unwrap();
        let bad = producer.send(&name, OutgoingMessage::new("bad"));
        [good, bad.await.unwrap()]
    }
    .instrument(request)
    .await;
    let seen = Seen::default();
    let running = Running::start(
        SqsConsumer::builder(&ep.sdk_config)
            .discover(false)
            .queue(ep.name(queue), options.wait_time(Duration::from_secs(1)))
            .handler(ep.name(queue), handler)
            .state(seen.clone())
            .build()
            .await
            .unwrap(),
    );
    wait_for(
        "both messages handled and deleted",
        Duration::from_secs(20),
        || async {
            (seen.0.lock().unwrap().len() == 2 && queue_counts(&ep.client, &url).await == (0, 0, 0))
                .then_some(())
        },
    )
    .await;
    running.stop().await;
    let spans = traces.spans();
    let request = named(&spans, &request_name);
    assert_eq!(request.len(), 1, "one request span");
    (spans.clone(), request[0].span_context.trace_id(), ids)
}

/// The send and process spans' names, kinds and attributes; returns the process spans by message.
fn check_spans<'a>(
    spans: &'a [SpanData],
    ep: &Endpoint,
    queue: &str,
    trace: TraceId,
    ids: &[String; 2],
) -> (HashMap<String, &'a SpanData>, Vec<&'a SpanData>) {
    let queue = ep.name(queue);
    let sends = named(spans, &format!("send {queue}"));
    assert_eq!(sends.len(), 2, "a send span per message");
    for send in &sends {
        assert_messaging(send, SpanKind::Producer, "send", &queue);
        assert_eq!(
            send.span_context.trace_id(),
            trace,
            "sent inside the request"
        );
    }
    let receives = named(spans, &format!("receive {queue}"));
    assert!(!receives.is_empty(), "receive spans");
    let mut received = 0;
    for r in &receives {
        assert_messaging(r, SpanKind::Client, "receive", &queue);
        let count = attribute(r, "messaging.batch.message_count").expect("message count");
        received += count.parse::<u32>().expect("a count");
    }
    assert_eq!(
        received, 2,
        "each message received once, counted on its receive span"
    );
    let process = named(spans, &format!("process {queue}"));
    assert_eq!(process.len(), 2, "a process span per message");
    let mut by_message = HashMap::new();
    for p in &process {
        assert_messaging(p, SpanKind::Consumer, "process", &queue);
        let id = attribute(p, "messaging.message.id").expect("message id");
        by_message.insert(id, *p);
    }
    let good = by_message[&ids[0]];
    assert_eq!(
        attribute(good, "sqs_handler.outcome").as_deref(),
        Some("deleted")
    );
    assert_eq!(attribute(good, "error.type"), None);
    assert_eq!(good.status, Status::Unset);
    let bad = by_message[&ids[1]];
    assert_eq!(
        attribute(bad, "sqs_handler.outcome").as_deref(),
        Some("deleted")
    );
    assert_eq!(
        attribute(bad, "error.type").as_deref(),
        Some("handler_error")
    );
    assert!(
        matches!(bad.status, Status::Error { .. }),
        "{:?}",
        bad.status
    );
    (by_message, sends)
}

conformance!(
    process_spans_link_to_the_producers_trace,
    |ep: Endpoint| async move {
        let traces = Traces::install();
        let (spans, trace, ids) =
            produce_and_consume(&ep, "traced", QueueOptions::default(), traces).await;
        let (process, sends) = check_spans(&spans, &ep, "traced", trace, &ids);
        for id in &ids {
            let p = process[id];
            assert_ne!(
                p.span_context.trace_id(),
                trace,
                "by default a trace of its own"
            );
            let linked: Vec<_> = p
                .links
                .links
                .iter()
                .map(|l| l.span_context.clone())
                .collect();
            assert_eq!(linked.len(), 1, "one link: the message's creation context");
            assert_eq!(linked[0].trace_id(), trace);
            assert!(
                sends
                    .iter()
                    .any(|s| s.span_context.span_id() == linked[0].span_id()),
                "the link is to a send span"
            );
        }
    }
);

conformance!(
    with_trace_parent_the_handler_continues_the_producers_trace,
    |ep: Endpoint| async move {
        let traces = Traces::install();
        let options = QueueOptions::default().trace_parent(true);
        let (spans, trace, ids) = produce_and_consume(&ep, "parented", options, traces).await;
        let (process, sends) = check_spans(&spans, &ep, "parented", trace, &ids);
        for id in &ids {
            let p = process[id];
            assert_eq!(
                p.span_context.trace_id(),
                trace,
                "the request's trace continues"
            );
            assert!(
                sends
                    .iter()
                    .any(|s| s.span_context.span_id() == p.parent_span_id),
                "the parent is a send span"
            );
        }
    }
);

/// The value of metric `name` with label `queue` (and `kind` when given).
fn metric(
    snapshot: &[(metrics_util::CompositeKey, DebugValue)],
    name: &str,
    queue: &str,
    kind: Option<&str>,
) -> Option<DebugValue> {
    snapshot
        .iter()
        .find(|(k, _)| {
            let key = k.key();
            let label = |l: &str| {
                key.labels()
                    .find(|x| x.key() == l)
                    .map(|x| x.value().to_owned())
            };
            key.name() == name
                && label("queue").as_deref() == Some(queue)
                && label("kind").as_deref() == kind
        })
        .map(|(_, v)| match v {
            DebugValue::Counter(n) => DebugValue::Counter(*n),
            DebugValue::Gauge(g) => DebugValue::Gauge(*g),
            DebugValue::Histogram(h) => DebugValue::Histogram(h.clone()),
        })
}

conformance!(
    metrics_count_what_happened_to_each_message,
    |ep: Endpoint| async move {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        let dlq = ep.create_queue("metered-dlq", &[]).await;
        let dlq_arn = ep.arn(&dlq).await;
        let redrive = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"1"}}"#);
        let url = ep
            .create_queue(
                "metered",
                &[
                    ("VisibilityTimeout", "60"),
                    ("RedrivePolicy", redrive.as_str()),
                ],
            )
            .await;
        let producer = Producer::with_client(ep.client.clone());
        for body in ["a", "b", "c", "retry", "bad"] {
            producer
                .send(&ep.name("metered"), OutgoingMessage::new(body))
                .await
                .unwrap();
        }
        let seen = Seen::default();
        let running = Running::start(
            SqsConsumer::builder(&ep.sdk_config)
                .discover(false)
                .queue(
                    ep.name("metered"),
                    QueueOptions::default().wait_time(Duration::from_secs(1)),
                )
                .handler(
                    ep.name("metered"),
                    |Body(body): Body, State(seen): State<Seen>| async move {
                        seen.0.lock().unwrap().push(body.clone());
                        match body.as_str() {
                            "retry" => Err(BoxError::from("try again")),
                            "bad" => Err(NonRetryable::new("never").into()),
                            _ => Ok(()),
                        }
                    },
                )
                .state(seen.clone())
                .build()
                .await
                .unwrap(),
        );
        wait_for(
            "five handled, four deleted",
            Duration::from_secs(20),
            || async {
                (seen.0.lock().unwrap().len() == 5
                    && queue_counts(&ep.client, &url).await == (0, 1, 0))
                    .then_some(())
            },
        )
        .await;
        running.stop().await;
        let snapshot: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(k, _, _, v)| (k, v))
            .collect();
        let q = ep.name("metered");
        let counter = |name: &str, kind: Option<&str>| match metric(&snapshot, name, &q, kind) {
            Some(DebugValue::Counter(n)) => n,
            other => panic!("{name} {kind:?}: {other:?}"),
        };
        assert_eq!(counter("sqs_handler_messages_received_total", None), 5);
        assert_eq!(counter("sqs_handler_messages_processed_total", None), 3);
        assert_eq!(
            counter("sqs_handler_messages_failed_total", Some("error")),
            2
        );
        assert_eq!(
            counter("sqs_handler_messages_failed_total", Some("panic")),
            0
        );
        assert_eq!(counter("sqs_handler_messages_deleted_total", None), 4);
        assert_eq!(counter("sqs_handler_messages_released_total", None), 0);
        assert_eq!(counter("sqs_handler_messages_forwarded_total", None), 0);
        assert_eq!(
            counter("sqs_handler_messages_dead_letter_bound_total", None),
            1,
            "'retry' failed at its first receive with maxReceiveCount 1"
        );
        let histogram = |name: &str| match metric(&snapshot, name, &q, None) {
            Some(DebugValue::Histogram(v)) => v.len(),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(histogram("sqs_handler_handler_duration_seconds"), 5);
        assert_eq!(histogram("sqs_handler_message_age_seconds"), 5);
        match metric(&snapshot, "sqs_handler_messages_in_flight", &q, None) {
            Some(DebugValue::Gauge(g)) => assert_eq!(g.into_inner(), 0.0),
            other => panic!("in flight: {other:?}"),
        }
    }
);
