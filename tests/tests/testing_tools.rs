//! `sqs_handler::testing`: handlers and hooks run on built messages, without a server, report
//! what the consumer would do; checked on a handler declared with the attribute.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqs_handler::testing::{HandlerTest, TestFailure, TestMessage};
use sqs_handler::{
    AckMode, Acknowledgement, BoxError, FailureKind, MessageAction, MessageGroupId, QueueOptions,
    ReceiveCount, RetryPolicy, State, sqs_message_handler,
};

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

const QUEUE: &str = "testing-tools";

#[sqs_message_handler(QUEUE)]
async fn handle(
    sqs_handler::Body(body): sqs_handler::Body,
    ReceiveCount(n): ReceiveCount,
    MessageGroupId(group): MessageGroupId,
    ack: Acknowledgement,
    State(log): State<Log>,
) -> Result<(), BoxError> {
    log.0
        .lock()
        .unwrap()
        .push(format!("{body} #{n} in {}", group.unwrap_or_default()));
    match body.as_str() {
        "fail" => Err("it failed".into()),
        "panic" => panic!("it panicked"),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        }
        "later" => {
            ack.release(Duration::from_secs(30));
            Ok(())
        }
        _ => Ok(()),
    }
}

fn message(body: &str) -> TestMessage {
    TestMessage::new(body).group_id("g1").receive_count(2)
}

#[tokio::test]
async fn every_outcome_is_what_the_consumer_would_do() {
    let log = Log::default();
    let test = HandlerTest::new(QUEUE).state(log.clone()).options(
        QueueOptions::default()
            .handler_timeout(Duration::from_millis(50))
            .retry(RetryPolicy::Fixed(Duration::from_secs(9))),
    );

    let ok = test.run(handle, message("fine")).await;
    assert_eq!(ok.action, MessageAction::Deleted);
    assert!(ok.failure.is_none());

    let failed = test.run(handle, message("fail")).await;
    assert_eq!(
        failed.action,
        MessageAction::Released(Duration::from_secs(9))
    );
    assert!(matches!(
        failed.failure,
        Some(TestFailure::Error { kind: FailureKind::Handler, ref error }) if error.to_string() == "it failed"
    ));

    let panicked = test.run(handle, message("panic")).await;
    assert!(matches!(
        panicked.failure,
        Some(TestFailure::Error {
            kind: FailureKind::Panic,
            ..
        })
    ));

    let slow = test.run(handle, message("slow")).await;
    assert_eq!(slow.action, MessageAction::Released(Duration::from_secs(9)));
    assert!(
        matches!(slow.failure, Some(TestFailure::TimedOut(t)) if t == Duration::from_millis(50))
    );

    let later = test.run(handle, message("later")).await;
    assert_eq!(later.action, MessageAction::Acknowledged);
    assert_eq!(later.acknowledgements, ["visibility 30 s"]);

    // An argument that cannot be extracted: the handler never runs.
    let not_json = test
        .run(
            |sqs_handler::Json(_): sqs_handler::Json<serde_json::Value>| async {},
            message("not json"),
        )
        .await;
    assert_eq!(
        not_json.action,
        MessageAction::Released(Duration::from_secs(9))
    );
    assert!(matches!(
        not_json.failure,
        Some(TestFailure::Error {
            kind: FailureKind::Extract,
            ..
        })
    ));
    assert_eq!(
        *log.0.lock().unwrap(),
        [
            "fine #2 in g1",
            "fail #2 in g1",
            "panic #2 in g1",
            "slow #2 in g1",
            "later #2 in g1"
        ]
    );

    // Manual and always modes.
    let manual = HandlerTest::new(QUEUE)
        .state(log.clone())
        .options(QueueOptions::default().ack_mode(AckMode::Manual));
    assert_eq!(
        manual.run(handle, message("fine")).await.action,
        MessageAction::LeftForRedelivery
    );
    let always = HandlerTest::new(QUEUE)
        .state(log.clone())
        .options(QueueOptions::default().ack_mode(AckMode::Always));
    assert_eq!(
        always.run(handle, message("fail")).await.action,
        MessageAction::Deleted
    );
}

#[tokio::test]
async fn a_hook_runs_on_an_event_with_the_state() {
    let log = Log::default();
    let test = HandlerTest::new(QUEUE).state(log.clone());
    test.run_hook(
        |event: sqs_handler::Empty, State(log): State<Log>| async move {
            log.0
                .lock()
                .unwrap()
                .push(format!("{} is empty", event.queue));
        },
        sqs_handler::Empty::new(QUEUE),
    )
    .await
    .unwrap();
    assert_eq!(*log.0.lock().unwrap(), [format!("{QUEUE} is empty")]);
}
