//! Several message types on one queue, each with its handler: routed by the `MessageType`
//! attribute the Producer sets, or by a JSON field; an unknown type fails with
//! `UnknownMessageType` (the `processing_error` hook fires, then the queue's retry policy keeps
//! the message) unless the queue has an untyped handler, which then takes it. On sqs-local and,
//! through `conformance!`, LocalStack.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqs_handler::{
    Body, BuildError, Json, MessageTypeKey, OutgoingMessage, ProcessingError, Producer,
    QueueOptions, SqsConsumer, State, UnknownMessageType, sqs_message_handler,
};
use sqs_handler_tests::{Endpoint, Running, conformance, queue_counts, wait_for};

/// What the handlers saw ("<handler> <body>") and the `processing_error`s that fired.
#[derive(Clone, Default)]
struct Log {
    seen: Arc<Mutex<Vec<String>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Log {
    fn saw(&self, what: String) {
        self.seen.lock().unwrap().push(what);
    }
    fn seen(&self) -> Vec<String> {
        let mut seen = self.seen.lock().unwrap().clone();
        seen.sort();
        seen
    }
    fn errors(&self) -> Vec<String> {
        let mut errors = self.errors.lock().unwrap().clone();
        errors.sort();
        errors
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct OrderPlaced {
    order: u64,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct OrderCancelled {
    order: u64,
    reason: String,
}

async fn placed(Json(e): Json<OrderPlaced>, State(log): State<Log>) {
    log.saw(format!("placed {}", e.order));
}

async fn cancelled(Json(e): Json<OrderCancelled>, State(log): State<Log>) {
    log.saw(format!("cancelled {} {}", e.order, e.reason));
}

async fn other(Body(body): Body, State(log): State<Log>) {
    log.saw(format!("other {body}"));
}

/// Records the unknown type of each `processing_error` ("unknown <type or none> known <types>").
async fn record_unknown(e: ProcessingError, State(log): State<Log>) {
    let line = match e.error.downcast_ref::<UnknownMessageType>() {
        Some(u) => format!(
            "unknown {} known {}",
            u.message_type.as_deref().unwrap_or("<none>"),
            u.known.join(",")
        ),
        None => format!("other error {}", e.error),
    };
    log.errors.lock().unwrap().push(line);
}

/// Sends two placed, one cancelled, one of a type nobody handles and one without a type.
async fn send_mix(ep: &Endpoint, queue: &str) {
    let producer = Producer::with_client(ep.client.clone());
    let queue = ep.name(queue);
    for order in [1, 2] {
        producer
            .send_typed(&queue, "OrderPlaced", &OrderPlaced { order })
            .await
            .unwrap();
    }
    let cancel = OrderCancelled {
        order: 3,
        reason: "changed mind".into(),
    };
    producer
        .send_typed(&queue, "OrderCancelled", &cancel)
        .await
        .unwrap();
    producer
        .send(&queue, OutgoingMessage::new("r4").message_type("Refunded"))
        .await
        .unwrap();
    producer
        .send(&queue, OutgoingMessage::new("plain"))
        .await
        .unwrap();
}

fn typed(ep: &Endpoint, queue: &str, log: &Log) -> sqs_handler::SqsConsumerBuilder {
    SqsConsumer::builder(&ep.sdk_config)
        .discover(false)
        .queue(
            ep.name(queue),
            QueueOptions::default().wait_time(Duration::from_secs(1)),
        )
        .typed_handler(ep.name(queue), "OrderPlaced", placed)
        .typed_handler(ep.name(queue), "OrderCancelled", cancelled)
        .hook(ep.name(queue), record_unknown)
        .state(log.clone())
}

/// Waits for `seen` handler calls, `errors` processing errors and the queue at
/// (0 visible, `in_flight`, 0 delayed); then stops the consumer.
async fn settle(
    ep: &Endpoint,
    url: &str,
    running: Running,
    log: &Log,
    seen: usize,
    errors: usize,
    in_flight: u64,
) {
    wait_for(
        "handler calls and errors",
        Duration::from_secs(20),
        || async { (log.seen().len() >= seen && log.errors().len() >= errors).then_some(()) },
    )
    .await;
    wait_for("the queue to settle", Duration::from_secs(20), || async {
        (queue_counts(&ep.client, url).await == (0, in_flight, 0)).then_some(())
    })
    .await;
    running.stop().await;
}

conformance!(
    each_type_reaches_its_handler_and_an_unknown_type_stays_for_redelivery,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("orders", &[("VisibilityTimeout", "60")])
            .await;
        send_mix(&ep, "orders").await;
        let log = Log::default();
        let running = Running::start(typed(&ep, "orders", &log).build().await.unwrap());
        settle(&ep, &url, running, &log, 3, 2, 2).await;
        assert_eq!(
            log.seen(),
            ["cancelled 3 changed mind", "placed 1", "placed 2"]
        );
        assert_eq!(
            log.errors(),
            [
                "unknown <none> known OrderCancelled,OrderPlaced",
                "unknown Refunded known OrderCancelled,OrderPlaced",
            ],
            "processing_error fired once for each message without a handler"
        );
        // The two without a handler were left for redelivery (the default retry policy):
        // still in flight, not deleted; the three handled ones were deleted.
        let received = ep.receive(&url, 10, 0).await;
        assert!(received.is_empty(), "nothing visible: {received:?}");
    }
);

conformance!(
    an_untyped_handler_takes_the_types_without_a_handler,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("orders", &[("VisibilityTimeout", "60")])
            .await;
        send_mix(&ep, "orders").await;
        let log = Log::default();
        let running = Running::start(
            typed(&ep, "orders", &log)
                .handler(ep.name("orders"), other)
                .build()
                .await
                .unwrap(),
        );
        settle(&ep, &url, running, &log, 5, 0, 0).await;
        assert_eq!(
            log.seen(),
            [
                "cancelled 3 changed mind",
                "other plain",
                "other r4",
                "placed 1",
                "placed 2"
            ]
        );
        assert_eq!(log.errors(), Vec::<String>::new());
    }
);

conformance!(
    eventbridge_events_route_by_their_detail_type,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("events", &[("VisibilityTimeout", "60")])
            .await;
        let producer = Producer::with_client(ep.client.clone());
        for (detail_type, order) in [("OrderPlaced", 7), ("Shipped", 8)] {
            let event = serde_json::json!({
                "version": "0",
                "id": format!("event-{order}"),
                "detail-type": detail_type,
                "source": "shop",
                "account": "111122223333",
                "time": "2026-11-29T18:43:48Z",
                "region": "us-east-1",
                "resources": [],
                "detail": {"order": order}
            });
            producer
                .send(&ep.name("events"), OutgoingMessage::new(event.to_string()))
                .await
                .unwrap();
        }
        let log = Log::default();
        let running = Running::start(
            SqsConsumer::builder(&ep.sdk_config)
                .discover(false)
                .queue(
                    ep.name("events"),
                    QueueOptions::default()
                        .wait_time(Duration::from_secs(1))
                        .message_type_key(MessageTypeKey::json_field("/detail-type")),
                )
                .typed_handler(
                    ep.name("events"),
                    "OrderPlaced",
                    |e: sqs_handler::EventBridge<OrderPlaced>, State(log): State<Log>| async move {
                        log.saw(format!("placed {} from {}", e.detail.order, e.source));
                    },
                )
                .hook(ep.name("events"), record_unknown)
                .state(log.clone())
                .build()
                .await
                .unwrap(),
        );
        settle(&ep, &url, running, &log, 1, 1, 1).await;
        assert_eq!(log.seen(), ["placed 7 from shop"]);
        assert_eq!(log.errors(), ["unknown Shipped known OrderPlaced"]);
    }
);

// Declared with the attribute, on a queue the test renames with a resolver.
#[sqs_message_handler("typed-attr", message_type = "OrderPlaced")]
async fn attr_placed(Json(e): Json<OrderPlaced>, State(log): State<Log>) {
    log.saw(format!("attr placed {}", e.order));
}

const CANCELLED: &str = "OrderCancelled";

#[sqs_message_handler("typed-attr", message_type = CANCELLED)]
async fn attr_cancelled(Json(e): Json<OrderCancelled>, State(log): State<Log>) {
    log.saw(format!("attr cancelled {}", e.order));
}

conformance!(
    handlers_declared_with_message_type_are_discovered_and_routed,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("typed-attr", &[("VisibilityTimeout", "60")])
            .await;
        let producer = Producer::with_client(ep.client.clone());
        let queue = ep.name("typed-attr");
        producer
            .send_typed(&queue, "OrderPlaced", &OrderPlaced { order: 11 })
            .await
            .unwrap();
        let cancel = OrderCancelled {
            order: 12,
            reason: "late".into(),
        };
        producer
            .send_typed(&queue, "OrderCancelled", &cancel)
            .await
            .unwrap();
        let log = Log::default();
        let prefix = queue.trim_end_matches("typed-attr").to_owned();
        let running = Running::start(
            SqsConsumer::builder(&ep.sdk_config)
                .only_queues(["typed-attr"])
                .queue_prefix(prefix)
                .queue(
                    "typed-attr",
                    QueueOptions::default().wait_time(Duration::from_secs(1)),
                )
                .state(log.clone())
                .build()
                .await
                .unwrap(),
        );
        settle(&ep, &url, running, &log, 2, 0, 0).await;
        assert_eq!(log.seen(), ["attr cancelled 12", "attr placed 11"]);
    }
);

#[tokio::test]
async fn two_handlers_for_one_type_or_a_batch_beside_types_do_not_build() {
    let ep = Endpoint::local().await;
    ep.create_queue("orders", &[]).await;
    let err = SqsConsumer::builder(&ep.sdk_config)
        .discover(false)
        .typed_handler(ep.name("orders"), "OrderPlaced", || async {})
        .typed_handler(ep.name("orders"), "OrderPlaced", || async {})
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BuildError::DuplicateTypeHandler { message_type, .. } if message_type == "OrderPlaced"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("two handlers for message type \"OrderPlaced\""),
        "{err}"
    );

    let err = SqsConsumer::builder(&ep.sdk_config)
        .discover(false)
        .typed_handler(ep.name("orders"), "OrderPlaced", || async {})
        .batch_handler(ep.name("orders"), |_b: sqs_handler::Batch| async {})
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BuildError::InvalidOption { message, .. } if message.contains("batch handler and handlers with a message_type")),
        "{err}"
    );

    let err = SqsConsumer::builder(&ep.sdk_config)
        .discover(false)
        .queue(
            ep.name("orders"),
            QueueOptions::default().message_type_key(MessageTypeKey::json_field("type")),
        )
        .typed_handler(ep.name("orders"), "OrderPlaced", || async {})
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("must start with '/'"), "{err}");
}
