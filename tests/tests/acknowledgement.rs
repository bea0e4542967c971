//! Acknowledgement modes: the handler deletes or releases its message itself
//! (`Acknowledgement`, `AckMode::Manual`), or the consumer deletes whatever the outcome
//! (`AckMode::Always`). Exact outcomes on sqs-local and, for the SQS semantics, LocalStack.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqs_handler::{
    AckMode, Acknowledgement, Body, BoxError, MessageAction, OutgoingMessage, ProcessingError,
    Producer, QueueOptions, ReceiveCount, SqsConsumer, State,
};
use sqs_handler_tests::{Endpoint, Running, conformance, queue_counts, wait_for};

#[derive(Clone, Default)]
struct Seen {
    /// Body → the receive counts it was handled with.
    handled: Arc<Mutex<HashMap<String, Vec<u32>>>>,
    actions: Arc<Mutex<Vec<(String, MessageAction)>>>,
}

impl Seen {
    fn times(&self, body: &str) -> Vec<u32> {
        self.handled
            .lock()
            .unwrap()
            .get(body)
            .cloned()
            .unwrap_or_default()
    }
}

async fn send(ep: &Endpoint, queue: &str, bodies: &[&str]) {
    let report = Producer::with_client(ep.client.clone())
        .send_batch(
            &ep.name(queue),
            bodies.iter().map(|b| OutgoingMessage::new(*b)),
        )
        .await
        .unwrap();
    assert!(report.is_complete());
}

conformance!(
    manual_mode_deletes_only_what_the_handler_acknowledges,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("manual", &[("VisibilityTimeout", "2")])
            .await;
        send(&ep, "manual", &["del", "keep", "rel"]).await;
        let seen = Seen::default();
        let running = Running::start(
            SqsConsumer::builder(&ep.sdk_config)
                .discover(false)
                .queue(
                    ep.name("manual"),
                    QueueOptions::default()
                        .ack_mode(AckMode::Manual)
                        .wait_time(Duration::from_secs(1)),
                )
                .handler(
                    ep.name("manual"),
                    |Body(b): Body,
                     ReceiveCount(n): ReceiveCount,
                     ack: Acknowledgement,
                     State(s): State<Seen>| async move {
                        s.handled
                            .lock()
                            .unwrap()
                            .entry(b.clone())
                            .or_default()
                            .push(n);
                        match (b.as_str(), n) {
                            ("del", _) | ("rel", 2..) => ack.delete(),
                            // Released by the handler, which then fails: the consumer leaves it.
                            ("rel", _) => {
                                ack.release(Duration::ZERO);
                                return Err::<(), BoxError>("not yet".into());
                            }
                            // Success without an acknowledgement: not deleted in manual mode.
                            _ => {}
                        }
                        Ok(())
                    },
                )
                .hook(
                    ep.name("manual"),
                    |e: ProcessingError, State(s): State<Seen>| async move {
                        s.actions
                            .lock()
                            .unwrap()
                            .push((e.message.body().to_owned(), e.action));
                    },
                )
                .state(seen.clone())
                .build()
                .await
                .unwrap(),
        );
        wait_for("keep delivered twice", Duration::from_secs(30), || async {
            (seen.times("keep").len() >= 2 && seen.times("rel").len() == 2).then_some(())
        })
        .await;
        running.stop().await;
        assert_eq!(
            seen.times("del"),
            [1],
            "deleted by the handler: handled once"
        );
        assert_eq!(
            seen.times("rel"),
            [1, 2],
            "released by the handler, at once"
        );
        assert_eq!(
            &seen.times("keep")[..2],
            [1, 2],
            "not acknowledged: delivered again"
        );
        assert_eq!(
            *seen.actions.lock().unwrap(),
            [("rel".to_owned(), MessageAction::Acknowledged)]
        );
        // Only "keep" is left, visible again once its visibility timeout ends.
        wait_for("only keep left", Duration::from_secs(10), || async {
            (queue_counts(&ep.client, &url).await == (1, 0, 0)).then_some(())
        })
        .await;
    }
);

#[tokio::test]
async fn always_mode_deletes_failures_after_their_hooks() {
    let ep = Endpoint::local().await;
    let url = ep.create_queue("always", &[]).await;
    send(&ep, "always", &["ok", "bad"]).await;
    let seen = Seen::default();
    let running = Running::start(
        SqsConsumer::builder(&ep.sdk_config)
            .discover(false)
            .queue(
                ep.name("always"),
                QueueOptions::default()
                    .ack_mode(AckMode::Always)
                    .wait_time(Duration::from_secs(1)),
            )
            .handler(
                ep.name("always"),
                |Body(b): Body, ReceiveCount(n): ReceiveCount, State(s): State<Seen>| async move {
                    s.handled
                        .lock()
                        .unwrap()
                        .entry(b.clone())
                        .or_default()
                        .push(n);
                    if b == "bad" {
                        return Err::<(), BoxError>("always fails".into());
                    }
                    Ok(())
                },
            )
            .hook(
                ep.name("always"),
                |e: ProcessingError, State(s): State<Seen>| async move {
                    s.actions
                        .lock()
                        .unwrap()
                        .push((e.message.body().to_owned(), e.action));
                },
            )
            .state(seen.clone())
            .build()
            .await
            .unwrap(),
    );
    wait_for("both gone", Duration::from_secs(20), || async {
        (queue_counts(&ep.client, &url).await == (0, 0, 0) && seen.times("bad").len() == 1)
            .then_some(())
    })
    .await;
    running.stop().await;
    assert_eq!(seen.times("ok"), [1]);
    assert_eq!(seen.times("bad"), [1]);
    assert_eq!(
        *seen.actions.lock().unwrap(),
        [("bad".to_owned(), MessageAction::Deleted)]
    );
}
