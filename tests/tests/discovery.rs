//! Handlers and hooks declared with the attributes are discovered at build time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqs_handler::{
    Body, BuildError, MessageProcessed, QueueName, SqsConsumer, State, sqs_consumer_event_handler,
    sqs_message_handler,
};
use sqs_handler_tests::{Endpoint, Running, queue_counts, wait_for};

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

/// Cargo sets CARGO_PKG_NAME (`sqs-handler-tests`) for test binaries: a queue name from the
/// environment without mutating it.
const QUEUE: &str = env!("CARGO_PKG_NAME");

#[sqs_message_handler(env = "CARGO_PKG_NAME")]
async fn discovered(Body(body): Body, QueueName(q): QueueName, State(log): State<Log>) {
    log.0.lock().unwrap().push(format!("{q}: {body}"));
}

#[sqs_consumer_event_handler(env = "CARGO_PKG_NAME", message_processed)]
async fn after(event: MessageProcessed, State(log): State<Log>) {
    log.0
        .lock()
        .unwrap()
        .push(format!("processed {}", event.message.body()));
}

#[sqs_message_handler(env = "SQS_HANDLER_TEST_SURELY_UNSET")]
async fn unset_env_handler() {}

#[sqs_message_handler("orders-not-created")]
async fn other_queue() {}

#[tokio::test]
async fn the_attribute_leaves_the_function_callable() {
    let log = Log::default();
    discovered(
        Body("direct".into()),
        QueueName("q".into()),
        State(log.clone()),
    )
    .await;
    assert_eq!(*log.0.lock().unwrap(), ["q: direct"]);
}

#[tokio::test]
async fn build_names_an_unset_environment_variable() {
    let ep = Endpoint::local().await;
    let err = SqsConsumer::builder(&ep.sdk_config)
        .state(Log::default())
        .build()
        .await
        .unwrap_err();
    match &err {
        BuildError::EnvVarMissing { var, used_by } => {
            assert_eq!(var, "SQS_HANDLER_TEST_SURELY_UNSET");
            assert!(
                used_by.ends_with("discovery::unset_env_handler"),
                "{used_by}"
            );
        }
        other => panic!("expected EnvVarMissing, got {other}"),
    }
    assert!(err.to_string().contains("set it"), "{err}");
}

#[tokio::test]
async fn discovered_handlers_and_hooks_run() {
    let ep = Endpoint::local().await;
    let client = ep.client.clone();
    let url = client
        .create_queue()
        .queue_name(QUEUE)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for b in ["one", "two", "three"] {
        client
            .send_message()
            .queue_url(&url)
            .message_body(b)
            .send()
            .await
            .unwrap();
    }
    let log = Log::default();
    let consumer = SqsConsumer::builder(&ep.sdk_config)
        .only_queues([QUEUE])
        .state(log.clone())
        .build()
        .await
        .unwrap();
    assert_eq!(consumer.queues(), [QUEUE]);
    let running = Running::start(consumer);
    wait_for("three handled", Duration::from_secs(10), || async {
        (log.0.lock().unwrap().len() == 6).then_some(())
    })
    .await;
    wait_for("deleted", Duration::from_secs(10), || async {
        (queue_counts(&client, &url).await == (0, 0, 0)).then_some(())
    })
    .await;
    running.stop().await;
    let mut entries = log.0.lock().unwrap().clone();
    entries.sort();
    assert_eq!(
        entries,
        [
            "processed one",
            "processed three",
            "processed two",
            "sqs-handler-tests: one",
            "sqs-handler-tests: three",
            "sqs-handler-tests: two",
        ]
    );
}
