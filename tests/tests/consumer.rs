//! The consumer end to end: real aws-sdk-sqs calls against sqs-local (volume) and, through
//! `conformance!`, LocalStack (semantics, small counts). Every test asserts exact outcomes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqs_handler::{
    Batch, BatchOutcome, Body, BoxError, BuildError, ConsumerError, Json, MessageProcessed,
    MessageReceived, NonRetryable, OutgoingMessage, ProcessingError, Producer, QueueOptions,
    ReceiveCount, ResponseProcessed, RetryPolicy, SqsConsumer, SqsMessage, State, Stopped,
    TimeoutError,
};
use sqs_handler_tests::{Endpoint, Running, conformance, queue_counts, wait_for};
use sqs_local::Operation;

/// Records what handlers and hooks saw.
#[derive(Clone, Default)]
struct Log {
    bodies: Arc<Mutex<Vec<String>>>,
    events: Arc<Mutex<Vec<String>>>,
}

impl Log {
    fn push(&self, body: &str) {
        self.bodies.lock().unwrap().push(body.to_owned());
    }
    fn event(&self, e: String) {
        self.events.lock().unwrap().push(e);
    }
    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

async fn send(ep: &Endpoint, queue: &str, bodies: impl IntoIterator<Item = String>) {
    let producer = Producer::with_client(ep.client.clone());
    let report = producer
        .send_batch(
            &ep.name(queue),
            bodies.into_iter().map(OutgoingMessage::new),
        )
        .await
        .expect("send");
    assert!(report.is_complete(), "send failures: {:?}", report.failed);
}

/// A consumer of `queue` that releases a failed message at once, with 1 s long polls.
fn releasing_consumer(ep: &Endpoint, queue: &str) -> sqs_handler::SqsConsumerBuilder {
    let options = QueueOptions::default()
        .retry(RetryPolicy::ReleaseImmediately)
        .wait_time(Duration::from_secs(1));
    consumer(ep).queue(ep.name(queue), options)
}

/// Sends `(group, body)` pairs to a FIFO queue in order, each body its own deduplication id.
async fn send_fifo(
    ep: &Endpoint,
    queue: &str,
    messages: impl IntoIterator<Item = (String, String)>,
) {
    let messages = messages.into_iter().map(|(group, body)| {
        OutgoingMessage::new(body.clone())
            .group_id(group)
            .deduplication_id(body)
    });
    let producer = Producer::with_client(ep.client.clone());
    let report = producer
        .send_batch(&ep.name(queue), messages)
        .await
        .expect("send");
    assert!(report.is_complete(), "send failures: {:?}", report.failed);
}

/// A queue whose visibility timeout is 1 s, or 2 s on LocalStack (its timers are about 1 s
/// coarse): the timeout in seconds, and the queue's URL.
async fn short_visibility_queue(ep: &Endpoint, name: &str) -> (u64, String) {
    let vt: u64 = if ep.reference { 2 } else { 1 };
    let url = ep
        .create_queue(name, &[("VisibilityTimeout", &vt.to_string())])
        .await;
    (vt, url)
}

async fn wait_empty(ep: &Endpoint, url: &str) {
    wait_for("the queue to be empty", Duration::from_secs(20), || async {
        (queue_counts(&ep.client, url).await == (0, 0, 0)).then_some(())
    })
    .await;
}

fn consumer(ep: &Endpoint) -> sqs_handler::SqsConsumerBuilder {
    SqsConsumer::builder(&ep.sdk_config).discover(false)
}

#[tokio::test]
async fn thousand_messages_at_concurrency_50_each_processed_once_and_deleted() {
    let ep = Endpoint::local().await;
    let url = ep.create_queue("volume", &[]).await;
    send(&ep, "volume", (0..1000).map(|i| format!("m{i}"))).await;
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let running = Running::start(
        consumer(&ep)
            .queue(ep.name("volume"), QueueOptions::default().concurrency(50))
            .handler(
                ep.name("volume"),
                |Body(b): Body, State(seen): State<Arc<Mutex<HashMap<String, u32>>>>| async move {
                    *seen.lock().unwrap().entry(b).or_default() += 1;
                },
            )
            .state(seen.clone())
            .build()
            .await
            .unwrap(),
    );
    wait_for("1000 messages handled", Duration::from_secs(60), || async {
        (seen.lock().unwrap().len() == 1000).then_some(())
    })
    .await;
    wait_empty(&ep, &url).await;
    let status = running.status.queue(&ep.name("volume")).unwrap();
    running.stop().await;
    let seen = seen.lock().unwrap();
    assert!(seen.values().all(|n| *n == 1), "every message exactly once");
    assert_eq!((status.processed, status.failed), (1000, 0));
    let stats = ep.server.as_ref().unwrap().stats();
    assert_eq!(
        stats.calls(Operation::DeleteMessage),
        0,
        "deletes are batched"
    );
    let batches = stats.calls(Operation::DeleteMessageBatch);
    assert!(
        (100..=500).contains(&batches),
        "1000 deletes in {batches} DeleteMessageBatch calls"
    );
}

conformance!(
    failing_message_is_redelivered_then_dead_lettered,
    |ep: Endpoint| async move {
        let dlq = ep.create_queue("poison-dlq", &[]).await;
        let arn = ep.arn(&dlq).await;
        let policy = format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"2"}}"#);
        let url = ep
            .create_queue("poison", &[("RedrivePolicy", &policy)])
            .await;
        send(&ep, "poison", ["bad".to_owned(), "good".to_owned()]).await;
        let log = Log::default();
        let running = Running::start(
        consumer(&ep)
            .queue(ep.name("poison"), QueueOptions::default().retry(RetryPolicy::ReleaseImmediately).wait_time(Duration::from_secs(1)))
            .handler(ep.name("poison"), |Body(b): Body, ReceiveCount(n): ReceiveCount, State(log): State<Log>| async move {
                log.push(&format!("{b}#{n}"));
                if b == "bad" { Err::<(), BoxError>("refused".into()) } else { Ok(()) }
            })
            .hook(ep.name("poison"), |e: ProcessingError, State(log): State<Log>| async move {
                log.event(format!("processing_error {} {:?} {:?} {}", e.message.body(), e.kind, e.action, e.error));
            })
            .state(log.clone())
            .build()
            .await
            .unwrap(),
    );
        let moved = wait_for(
            "the poison message in the DLQ",
            Duration::from_secs(30),
            || async { ep.receive(&dlq, 1, 1).await.pop() },
        )
        .await;
        running.stop().await;
        assert_eq!(moved.body(), Some("bad"));
        let mut bodies = log.bodies();
        bodies.sort();
        assert_eq!(
            bodies,
            ["bad#1", "bad#2", "good#1"],
            "handled twice, then moved; the good one once"
        );
        assert_eq!(
            log.events(),
            [
                "processing_error bad Handler Released(0ns) refused",
                "processing_error bad Handler Released(0ns) refused"
            ]
        );
        assert_eq!(queue_counts(&ep.client, &url).await, (0, 0, 0));
    }
);

#[derive(Clone)]
struct Gate {
    release: Arc<tokio::sync::Notify>,
    side_effect: Arc<AtomicUsize>,
    started: Arc<AtomicUsize>,
}

conformance!(
    timed_out_handler_is_cancelled_and_its_side_effect_never_happens,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("slow", &[("VisibilityTimeout", "30")])
            .await;
        send(&ep, "slow", ["slow job".to_owned()]).await;
        let gate = Gate {
            release: Arc::new(tokio::sync::Notify::new()),
            side_effect: Arc::new(AtomicUsize::new(0)),
            started: Arc::new(AtomicUsize::new(0)),
        };
        let log = Log::default();
        let running = Running::start(
            consumer(&ep)
                .queue(
                    ep.name("slow"),
                    QueueOptions::default().handler_timeout(Duration::from_millis(300)),
                )
                .handler(ep.name("slow"), |State(g): State<Gate>| async move {
                    g.started.fetch_add(1, Ordering::SeqCst);
                    g.release.notified().await;
                    g.side_effect.fetch_add(1, Ordering::SeqCst);
                })
                .hook(
                    ep.name("slow"),
                    |e: TimeoutError, State(log): State<Log>| async move {
                        log.event(format!(
                            "timeout {} {:?} {:?}",
                            e.message.body(),
                            e.timeout,
                            e.action
                        ));
                    },
                )
                .state(gate.clone())
                .state(log.clone())
                .build()
                .await
                .unwrap(),
        );
        wait_for("the timeout hook", Duration::from_secs(10), || async {
            (!log.events().is_empty()).then_some(())
        })
        .await;
        // The handler's future held a clone of the gate; once dropped only ours and the state's remain.
        wait_for(
            "the handler future to be dropped",
            Duration::from_secs(5),
            || async { (Arc::strong_count(&gate.release) == 2).then_some(()) },
        )
        .await;
        gate.release.notify_waiters();
        tokio::task::yield_now().await;
        running.stop().await;
        assert_eq!(gate.started.load(Ordering::SeqCst), 1);
        assert_eq!(
            gate.side_effect.load(Ordering::SeqCst),
            0,
            "the cancelled handler never finished its work"
        );
        assert_eq!(log.events(), ["timeout slow job 300ms LeftForRedelivery"]);
        // Left for redelivery: still in flight, not deleted.
        assert_eq!(queue_counts(&ep.client, &url).await.1, 1);
    }
);

conformance!(
    heartbeat_keeps_a_long_handler_from_redelivery,
    |ep: Endpoint| async move {
        let (vt, url) = short_visibility_queue(&ep, "long").await;
        send(&ep, "long", ["long job".to_owned()]).await;
        let log = Log::default();
        let run_for = Duration::from_secs(3 * vt);
        let running = Running::start(
            consumer(&ep)
                .queue(
                    ep.name("long"),
                    QueueOptions::default()
                        .concurrency(5)
                        .wait_time(Duration::from_secs(1)),
                )
                .handler(
                    ep.name("long"),
                    move |Body(b): Body, State(log): State<Log>| async move {
                        log.push(&b);
                        // The work itself: a handler that runs three visibility timeouts.
                        tokio::time::sleep(run_for).await;
                    },
                )
                .state(log.clone())
                .build()
                .await
                .unwrap(),
        );
        wait_for(
            "the long handler to finish and delete",
            Duration::from_secs(30),
            || async {
                let done = running
                    .status
                    .queue(&ep.name("long"))
                    .is_some_and(|s| s.processed == 1);
                (done && queue_counts(&ep.client, &url).await == (0, 0, 0)).then_some(())
            },
        )
        .await;
        running.stop().await;
        assert_eq!(
            log.bodies(),
            ["long job"],
            "never redelivered while running"
        );
        if let Some(server) = &ep.server {
            assert!(
                server
                    .stats()
                    .calls(Operation::ChangeMessageVisibilityBatch)
                    >= 2,
                "the heartbeat extended it"
            );
        }
    }
);

conformance!(
    prefetch_holds_messages_ahead_of_capacity_and_keeps_them_invisible,
    |ep: Endpoint| async move {
        // Concurrency 2, prefetch 2: four messages held, two running. Each handler runs 1.5
        // visibility timeouts, so the two waiting for a slot would be redelivered unless the
        // heartbeat covers their wait.
        let (vt, url) = short_visibility_queue(&ep, "ahead").await;
        send(&ep, "ahead", (0..6).map(|i| format!("m{i}"))).await;
        let log = Log::default();
        let run_for = Duration::from_millis(1500 * vt);
        let running =
            Running::start(
                consumer(&ep)
                    .queue(
                        ep.name("ahead"),
                        QueueOptions::default()
                            .concurrency(2)
                            .prefetch(2)
                            .wait_time(Duration::from_secs(1)),
                    )
                    .handler(
                        ep.name("ahead"),
                        move |Body(b): Body,
                              ReceiveCount(n): ReceiveCount,
                              State(log): State<Log>| async move {
                            log.push(&format!("{b} receive {n}"));
                            tokio::time::sleep(run_for).await;
                        },
                    )
                    .state(log.clone())
                    .build()
                    .await
                    .unwrap(),
            );
        wait_for(
            "two running, four held",
            Duration::from_secs(10),
            || async {
                let counts = queue_counts(&ep.client, &url).await;
                (log.bodies().len() == 2 && counts == (2, 4, 0)).then_some(())
            },
        )
        .await;
        wait_for(
            "all six handled and deleted",
            Duration::from_secs(40),
            || async {
                let done = log.bodies().len() == 6;
                (done && queue_counts(&ep.client, &url).await == (0, 0, 0)).then_some(())
            },
        )
        .await;
        running.stop().await;
        let mut handled = log.bodies();
        handled.sort();
        let expected: Vec<String> = (0..6).map(|i| format!("m{i} receive 1")).collect();
        assert_eq!(handled, expected, "each received once, none redelivered");
    }
);

#[tokio::test]
async fn shutdown_releases_prefetched_messages_without_starting_them() {
    let ep = Endpoint::local().await;
    let url = ep
        .create_queue("ahead-stop", &[("VisibilityTimeout", "60")])
        .await;
    send(&ep, "ahead-stop", ["m0".to_owned(), "m1".to_owned()]).await;
    let log = Log::default();
    let running = Running::start(
        consumer(&ep)
            .queue(
                ep.name("ahead-stop"),
                QueueOptions::default()
                    .concurrency(1)
                    .prefetch(1)
                    .wait_time(Duration::from_secs(1)),
            )
            .handler(
                ep.name("ahead-stop"),
                |Body(b): Body, State(log): State<Log>| async move {
                    log.push(&b);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                },
            )
            .state(log.clone())
            .build()
            .await
            .unwrap(),
    );
    wait_for("one running, one held", Duration::from_secs(10), || async {
        let counts = queue_counts(&ep.client, &url).await;
        (log.bodies().len() == 1 && counts == (0, 2, 0)).then_some(())
    })
    .await;
    running.stop().await;
    let started = log.bodies();
    assert_eq!(started.len(), 1, "the waiting message never started");
    assert_eq!(
        queue_counts(&ep.client, &url).await,
        (1, 0, 0),
        "the running one deleted, the waiting one visible again at once"
    );
}

/// One FIFO group received at once, its handlers running `ms` milliseconds per message,
/// with a 1 s visibility timeout: every message is handled once, in order, never received
/// again while it waits its turn.
///
/// On sqs-local only: LocalStack refuses to delete a FIFO message whose receive is older than
/// its latest visibility timeout value, however it was extended (`_pre_delete_checks` in
/// `localstack/services/sqs/models.py` compares the time since the receive with
/// `visibility_timeout`; SQS measures a receipt handle's expiry from the last visibility
/// change), so no FIFO message can outlive its visibility timeout there.
async fn fifo_group_waits_invisible(queue: &str, ms: &[u64], options: QueueOptions) {
    let ep = Endpoint::local().await;
    let (_, url) = short_visibility_queue(&ep, queue).await;
    let runs: HashMap<String, u64> = (0..ms.len()).map(|i| (format!("m{i}"), ms[i])).collect();
    let bodies = (0..ms.len()).map(|i| ("G".to_owned(), format!("m{i}")));
    send_fifo(&ep, queue, bodies).await;
    let log = Log::default();
    let handler = move |Body(b): Body, ReceiveCount(n): ReceiveCount, State(log): State<Log>| {
        let run = Duration::from_millis(runs[&b]);
        async move {
            log.push(&format!("{b} receive {n}"));
            tokio::time::sleep(run).await;
        }
    };
    let running = Running::start(
        consumer(&ep)
            .queue(ep.name(queue), options.wait_time(Duration::from_secs(1)))
            .handler(ep.name(queue), handler)
            .state(log.clone())
            .build()
            .await
            .unwrap(),
    );
    wait_for(
        "all handled and deleted",
        Duration::from_secs(30),
        || async {
            let done = log.bodies().len() >= ms.len();
            (done && queue_counts(&ep.client, &url).await == (0, 0, 0)).then_some(())
        },
    )
    .await;
    running.stop().await;
    let expected: Vec<String> = (0..ms.len()).map(|i| format!("m{i} receive 1")).collect();
    assert_eq!(log.bodies(), expected);
}

#[tokio::test]
async fn fifo_messages_waiting_their_turn_stay_invisible() {
    // m0 runs 1.5 visibility timeouts while m1 waits its turn: m1 must not become visible
    // (and be received again) when m0 is deleted.
    fifo_group_waits_invisible("turn.fifo", &[1500, 500], QueueOptions::default()).await;
}

#[tokio::test]
async fn fifo_messages_behind_short_timeouts_stay_invisible() {
    // A handler timeout of half the visibility makes the heartbeat unneeded for a running
    // handler, but m3 waits three handlers (1.35 visibility timeouts) for its turn.
    let options = QueueOptions::default().handler_timeout(Duration::from_millis(500));
    fifo_group_waits_invisible("short.fifo", &[450, 450, 450, 100], options).await;
}

conformance!(
    fifo_response_processed_fires_once_per_receive,
    |ep: Endpoint| async move {
        // One receive of A (group GA) and B (group GB); B fails once and stops its group.
        let url = ep.create_queue("resp.fifo", &[]).await;
        let messages = [("GA", "A"), ("GB", "B")].map(|(g, b)| (g.to_owned(), b.to_owned()));
        send_fifo(&ep, "resp.fifo", messages).await;
        let log = Log::default();
        let failed_once = Arc::new(AtomicUsize::new(0));
        let running = Running::start(
            releasing_consumer(&ep, "resp.fifo")
                .handler(
                    ep.name("resp.fifo"),
                    |Body(b): Body,
                     State(log): State<Log>,
                     State(failed): State<Arc<AtomicUsize>>| async move {
                        log.push(&b);
                        if b == "B" && failed.fetch_add(1, Ordering::SeqCst) == 0 {
                            return Err::<(), BoxError>("first attempt fails".into());
                        }
                        Ok(())
                    },
                )
                .hook(
                    ep.name("resp.fifo"),
                    |e: ResponseProcessed, State(log): State<Log>| async move {
                        log.event(format!("response of {}", e.messages));
                    },
                )
                .state(log.clone())
                .state(failed_once.clone())
                .build()
                .await
                .unwrap(),
        );
        wait_for(
            "B handled twice and both deleted",
            Duration::from_secs(30),
            || async {
                let done = log.bodies().len() == 3;
                (done && queue_counts(&ep.client, &url).await == (0, 0, 0)).then_some(())
            },
        )
        .await;
        running.stop().await;
        let mut first = log.bodies()[..2].to_vec();
        first.sort();
        assert_eq!(first, ["A", "B"], "A and B came in one receive");
        assert_eq!(log.events(), ["response of 2", "response of 1"]);
    }
);

#[tokio::test]
async fn shutdown_under_load_loses_nothing_and_leaves_nothing_invisible() {
    let ep = Endpoint::local().await;
    let url = ep
        .create_queue("drain", &[("VisibilityTimeout", "60")])
        .await;
    send(&ep, "drain", (0..300).map(|i| format!("m{i}"))).await;
    let log = Log::default();
    let running = Running::start(
        consumer(&ep)
            .queue(ep.name("drain"), QueueOptions::default().concurrency(20))
            .handler(
                ep.name("drain"),
                |Body(b): Body, State(log): State<Log>| async move {
                    tokio::time::sleep(Duration::from_millis(20 + fastrand_ms(&b))).await;
                    log.push(&b);
                },
            )
            .state(log.clone())
            .shutdown_timeout(Duration::from_secs(10))
            .build()
            .await
            .unwrap(),
    );
    wait_for("some messages handled", Duration::from_secs(20), || async {
        (log.bodies().len() >= 40).then_some(())
    })
    .await;
    running.stop().await;
    let handled = log.bodies();
    let (visible, invisible, delayed) = queue_counts(&ep.client, &url).await;
    assert_eq!(invisible, 0, "nothing left in flight after shutdown");
    assert_eq!(delayed, 0);
    assert_eq!(
        handled.len() as u64 + visible,
        300,
        "every message handled or back in the queue"
    );
    let mut unique = handled.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), handled.len(), "none handled twice");
}

fn fastrand_ms(seed: &str) -> u64 {
    seed.bytes().map(u64::from).sum::<u64>() % 40
}

#[tokio::test]
async fn shutdown_deadline_cancels_handlers_and_releases_their_messages() {
    let ep = Endpoint::local().await;
    let url = ep
        .create_queue("stuck", &[("VisibilityTimeout", "300")])
        .await;
    send(&ep, "stuck", (0..5).map(|i| format!("m{i}"))).await;
    let started = Arc::new(AtomicUsize::new(0));
    let log = Log::default();
    let running = Running::start(
        consumer(&ep)
            .queue(ep.name("stuck"), QueueOptions::default().concurrency(5))
            .handler(
                ep.name("stuck"),
                |State(n): State<Arc<AtomicUsize>>| async move {
                    n.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                },
            )
            .hook(
                ep.name("stuck"),
                |_: Stopped, State(log): State<Log>| async move { log.event("stopped".into()) },
            )
            .state(started.clone())
            .state(log.clone())
            .shutdown_timeout(Duration::from_millis(200))
            .build()
            .await
            .unwrap(),
    );
    wait_for("5 handlers running", Duration::from_secs(10), || async {
        (started.load(Ordering::SeqCst) == 5).then_some(())
    })
    .await;
    running.stop().await;
    assert_eq!(
        queue_counts(&ep.client, &url).await,
        (5, 0, 0),
        "all five released, none deleted"
    );
    assert_eq!(log.events(), ["stopped"]);
}

conformance!(
    fifo_order_per_group_at_high_concurrency,
    |ep: Endpoint| async move {
        let (groups, per_group) = if ep.reference { (3, 5) } else { (10, 40) };
        let url = ep.create_queue("order.fifo", &[]).await;
        let messages = (0..per_group)
            .flat_map(|i| (0..groups).map(move |g| (format!("g{g}"), format!("g{g}:{i}"))));
        send_fifo(&ep, "order.fifo", messages).await;
        let log = Log::default();
        let failed_once = Arc::new(AtomicUsize::new(0));
        let running = Running::start(
            consumer(&ep)
                .queue(
                    ep.name("order.fifo"),
                    QueueOptions::default()
                        .concurrency(50)
                        .retry(RetryPolicy::ReleaseImmediately)
                        .wait_time(Duration::from_secs(1)),
                )
                .handler(
                    ep.name("order.fifo"),
                    |Body(b): Body,
                     State(log): State<Log>,
                     State(failed): State<Arc<AtomicUsize>>| async move {
                        // g1:2 fails the first time: nothing after it in g1 may run before it succeeds.
                        if b == "g1:2" && failed.fetch_add(1, Ordering::SeqCst) == 0 {
                            return Err::<(), BoxError>("first attempt fails".into());
                        }
                        tokio::time::sleep(Duration::from_millis(fastrand_ms(&b) % 3)).await;
                        log.push(&b);
                        Ok(())
                    },
                )
                .state(log.clone())
                .state(failed_once.clone())
                .build()
                .await
                .unwrap(),
        );
        wait_for("every message handled", Duration::from_secs(60), || async {
            (log.bodies().len() == groups * per_group).then_some(())
        })
        .await;
        wait_empty(&ep, &url).await;
        running.stop().await;
        let mut per: HashMap<String, Vec<usize>> = HashMap::new();
        for b in log.bodies() {
            let (g, i) = b.split_once(':').unwrap();
            per.entry(g.to_owned())
                .or_default()
                .push(i.parse().unwrap());
        }
        for (g, order) in &per {
            assert_eq!(
                *order,
                (0..per_group).collect::<Vec<_>>(),
                "group {g} handled in order, each once"
            );
        }
        assert_eq!(
            failed_once.load(Ordering::SeqCst),
            2,
            "g1:2 failed once, then succeeded"
        );
    }
);

#[tokio::test]
async fn endpoint_stopped_and_restarted_mid_run_loses_nothing() {
    let ep = Endpoint::local().await;
    let server = ep.server.as_ref().unwrap();
    let (addr, state) = (server.addr(), server.state().clone());
    let url = ep
        .create_queue("outage", &[("VisibilityTimeout", "5")])
        .await;
    send(&ep, "outage", (0..50).map(|i| format!("a{i}"))).await;
    let log = Log::default();
    let errors = Arc::new(AtomicUsize::new(0));
    let running = Running::start(
        consumer(&ep)
            .queue(
                ep.name("outage"),
                QueueOptions::default()
                    .concurrency(10)
                    .wait_time(Duration::from_secs(1)),
            )
            .handler(
                ep.name("outage"),
                |Body(b): Body, State(log): State<Log>| async move { log.push(&b) },
            )
            .hook(
                ep.name("outage"),
                |e: ConsumerError, State(n): State<Arc<AtomicUsize>>| async move {
                    assert_eq!(e.operation, "ReceiveMessage");
                    n.fetch_add(1, Ordering::SeqCst);
                },
            )
            .state(log.clone())
            .state(errors.clone())
            .build()
            .await
            .unwrap(),
    );
    wait_for("the first 50", Duration::from_secs(20), || async {
        (log.bodies().len() == 50).then_some(())
    })
    .await;
    wait_empty(&ep, &url).await;
    let Endpoint { server, client, .. } = ep;
    server.unwrap().shutdown().await;
    wait_for(
        "receive errors while the endpoint is down",
        Duration::from_secs(20),
        || async { (errors.load(Ordering::SeqCst) >= 2).then_some(()) },
    )
    .await;
    let again = sqs_local::LocalSqs::builder()
        .bind(addr)
        .state(state)
        .start()
        .await
        .unwrap();
    let producer = Producer::with_client(client.clone());
    let name = url.rsplit('/').next().unwrap().to_owned();
    let report = producer
        .send_batch(
            &name,
            (0..50).map(|i| OutgoingMessage::new(format!("b{i}"))),
        )
        .await
        .unwrap();
    assert!(report.is_complete());
    wait_for(
        "the second 50 after recovery",
        Duration::from_secs(40),
        || async { (log.bodies().len() == 100).then_some(()) },
    )
    .await;
    wait_for("the queue to be empty", Duration::from_secs(20), || async {
        (queue_counts(&client, &url).await == (0, 0, 0)).then_some(())
    })
    .await;
    running.stop().await;
    let mut bodies = log.bodies();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 100, "all 100 handled exactly once");
    again.shutdown().await;
}

conformance!(hooks_fire_with_what_happened, |ep: Endpoint| async move {
    let url = ep.create_queue("hooks", &[]).await;
    send(
        &ep,
        "hooks",
        ["ok".to_owned(), "boom".to_owned(), "{bad json".to_owned()],
    )
    .await;
    let log = Log::default();
    let q = ep.name("hooks");
    #[derive(serde::Deserialize)]
    struct Payload {
        value: String,
    }
    let running = Running::start(
        consumer(&ep)
            .queue(
                &q,
                QueueOptions::default().wait_time(Duration::from_secs(1)),
            )
            .handler(&q, |m: SqsMessage, State(log): State<Log>| async move {
                match m.body() {
                    "boom" => panic!("handler exploded"),
                    "ok" => Ok::<(), BoxError>(()),
                    other => {
                        let p: Payload = serde_json::from_str(other)?;
                        log.push(&p.value);
                        Ok(())
                    }
                }
            })
            .hook(
                &q,
                |e: MessageReceived, State(log): State<Log>| async move {
                    log.event(format!("received {}", e.message.body()));
                },
            )
            .hook(
                &q,
                |e: MessageProcessed, State(log): State<Log>| async move {
                    log.event(format!("processed {}", e.message.body()));
                },
            )
            .hook(
                &q,
                |e: ProcessingError, State(log): State<Log>| async move {
                    log.event(format!(
                        "error {} {:?} {:?}",
                        e.message.body(),
                        e.kind,
                        e.action
                    ));
                },
            )
            // A failing hook and a panicking hook do not stop the consumer or the hooks after them.
            .hook(&q, |_: ProcessingError| async move {
                Err::<(), BoxError>("hook failed".into())
            })
            .hook(&q, |e: MessageProcessed| async move {
                if !e.message.body().is_empty() {
                    panic!("hook panicked");
                }
            })
            .hook(
                &q,
                |e: ResponseProcessed, State(log): State<Log>| async move {
                    log.event(format!("response {}", e.messages));
                },
            )
            .hook(&q, |_: Stopped, State(log): State<Log>| async move {
                log.event("stopped".into());
            })
            .state(log.clone())
            .build()
            .await
            .unwrap(),
    );
    wait_for("three outcomes", Duration::from_secs(20), || async {
        let e = log.events();
        (e.iter()
            .filter(|x| x.starts_with("processed") || x.starts_with("error"))
            .count()
            == 3)
            .then_some(())
    })
    .await;
    running.stop().await;
    let mut events = log.events();
    let last = events.pop();
    assert_eq!(last.as_deref(), Some("stopped"), "stopped fires last");
    events.retain(|e| !e.starts_with("response"));
    events.sort();
    assert_eq!(
        events,
        [
            "error boom Panic LeftForRedelivery",
            "error {bad json Handler LeftForRedelivery",
            "processed ok",
            "received boom",
            "received ok",
            "received {bad json",
        ]
    );
    assert!(
        log.events().iter().any(|e| e.starts_with("response ")),
        "response_processed fired"
    );
    // ok deleted; the other two left in flight for redelivery.
    assert_eq!(queue_counts(&ep.client, &url).await, (0, 2, 0));
});

#[tokio::test]
async fn decode_failure_is_a_processing_error_and_the_message_stays() {
    let ep = Endpoint::local().await;
    let url = ep.create_queue("decode", &[]).await;
    send(&ep, "decode", ["not json".to_owned()]).await;
    #[derive(serde::Deserialize)]
    struct Job {
        #[allow(dead_code)]
        id: u32,
    }
    let log = Log::default();
    let running = Running::start(
        consumer(&ep)
            .handler(ep.name("decode"), |Json(_job): Json<Job>| async move {})
            .hook(
                ep.name("decode"),
                |e: ProcessingError, State(log): State<Log>| async move {
                    log.event(format!("{:?} {}", e.kind, e.error));
                },
            )
            .state(log.clone())
            .build()
            .await
            .unwrap(),
    );
    wait_for("the decode error", Duration::from_secs(10), || async {
        (!log.events().is_empty()).then_some(())
    })
    .await;
    running.stop().await;
    let events = log.events();
    assert!(
        events[0].starts_with("Extract cannot extract sqs_handler::extract::Json<"),
        "{events:?}"
    );
    assert_eq!(
        queue_counts(&ep.client, &url).await,
        (0, 1, 0),
        "not deleted"
    );
}

#[tokio::test]
async fn non_retryable_errors_delete_or_forward() {
    let ep = Endpoint::local().await;
    let del = ep.create_queue("nr-delete", &[]).await;
    let fwd = ep.create_queue("nr-forward", &[]).await;
    let parked = ep.create_queue("parked", &[]).await;
    send(&ep, "nr-delete", ["x".to_owned()]).await;
    send(&ep, "nr-forward", ["y".to_owned(), "retry-me".to_owned()]).await;
    let log = Log::default();
    let fail = |Body(b): Body| async move {
        if b == "retry-me" {
            return Err::<(), BoxError>("transient".into());
        }
        Err(NonRetryable::new(format!("cannot ever handle {b}")).into())
    };
    let record = |e: ProcessingError, State(log): State<Log>| async move {
        log.event(format!("{} {:?}", e.message.body(), e.action));
    };
    let running = Running::start(
        consumer(&ep)
            .queue(
                ep.name("nr-forward"),
                QueueOptions::default()
                    .forward_non_retryable_to(ep.name("parked"))
                    .non_retryable_if(|e| e.to_string() == "never matches"),
            )
            .handler(ep.name("nr-delete"), fail)
            .handler(ep.name("nr-forward"), fail)
            .hook(ep.name("nr-delete"), record)
            .hook(ep.name("nr-forward"), record)
            .state(log.clone())
            .build()
            .await
            .unwrap(),
    );
    wait_for("three failures", Duration::from_secs(10), || async {
        (log.events().len() == 3).then_some(())
    })
    .await;
    running.stop().await;
    let mut events = log.events();
    events.sort();
    assert_eq!(
        events,
        [
            "retry-me LeftForRedelivery",
            "x Deleted",
            format!("y Forwarded({:?})", ep.name("parked")).as_str()
        ]
    );
    assert_eq!(queue_counts(&ep.client, &del).await, (0, 0, 0));
    assert_eq!(
        queue_counts(&ep.client, &fwd).await,
        (0, 1, 0),
        "only the retryable one remains"
    );
    let got = ep.receive(&parked, 1, 0).await;
    assert_eq!(got[0].body(), Some("y"));
}

#[tokio::test]
async fn backoff_policy_sets_visibility_by_receive_count() {
    let ep = Endpoint::local().await;
    let url = ep
        .create_queue("backoff", &[("VisibilityTimeout", "600")])
        .await;
    send(&ep, "backoff", ["again".to_owned()]).await;
    let log = Log::default();
    let running = Running::start(
        consumer(&ep)
            .queue(
                ep.name("backoff"),
                QueueOptions::default()
                    .retry(RetryPolicy::ExponentialBackoff {
                        initial: Duration::from_secs(1),
                        max: Duration::from_secs(60),
                    })
                    .wait_time(Duration::from_secs(1)),
            )
            .handler(
                ep.name("backoff"),
                |ReceiveCount(n): ReceiveCount, State(log): State<Log>| async move {
                    log.push(&n.to_string());
                    if n < 3 {
                        Err::<(), BoxError>("not yet".into())
                    } else {
                        Ok(())
                    }
                },
            )
            .hook(
                ep.name("backoff"),
                |e: ProcessingError, State(log): State<Log>| async move {
                    log.event(format!("{:?}", e.action));
                },
            )
            .state(log.clone())
            .build()
            .await
            .unwrap(),
    );
    wait_for(
        "the third attempt to succeed",
        Duration::from_secs(20),
        || async { (log.bodies().len() == 3).then_some(()) },
    )
    .await;
    wait_empty(&ep, &url).await;
    running.stop().await;
    assert_eq!(log.bodies(), ["1", "2", "3"]);
    // 1 s after the first receive, 2 s after the second, each with jitter down to half.
    let events = log.events();
    assert!(
        matches!(events[0].as_str(), "Released(0ns)" | "Released(1s)")
            && matches!(events[1].as_str(), "Released(1s)" | "Released(2s)")
            && events.len() == 2,
        "{events:?}"
    );
}

#[tokio::test]
async fn batch_handler_reports_partial_success() {
    let ep = Endpoint::local().await;
    let url = ep.create_queue("batch", &[]).await;
    send(&ep, "batch", (0..10).map(|i| format!("m{i}"))).await;
    let log = Log::default();
    let running = Running::start(
        consumer(&ep)
            .queue(
                ep.name("batch"),
                QueueOptions::default().wait_time(Duration::from_secs(1)),
            )
            .batch_handler(
                ep.name("batch"),
                |Batch(messages): Batch, State(log): State<Log>| async move {
                    let mut outcome = BatchOutcome::all_ok();
                    for m in &messages {
                        log.push(m.body());
                        if m.body() == "m3" || m.body() == "m7" {
                            outcome.record_failure(m, "odd one out");
                        }
                    }
                    outcome
                },
            )
            .hook(
                ep.name("batch"),
                |e: ProcessingError, State(log): State<Log>| async move {
                    log.event(e.message.body().to_owned());
                },
            )
            .state(log.clone())
            .build()
            .await
            .unwrap(),
    );
    wait_for("ten handled", Duration::from_secs(10), || async {
        (log.bodies().len() == 10).then_some(())
    })
    .await;
    wait_for("eight deleted", Duration::from_secs(10), || async {
        (queue_counts(&ep.client, &url).await == (0, 2, 0)).then_some(())
    })
    .await;
    running.stop().await;
    let mut failed = log.events();
    failed.sort();
    assert_eq!(failed, ["m3", "m7"]);
}

conformance!(
    fifo_batch_failure_holds_the_groups_later_messages,
    |ep: Endpoint| async move {
        // One receive of A:0 B:0 A:1 B:1 A:2. The batch handler fails A:1 once and says the rest
        // succeeded: A:2 must not be deleted ahead of A:1, but come back with it.
        let url = ep.create_queue("held.fifo", &[]).await;
        let order = [("A", 0), ("B", 0), ("A", 1), ("B", 1), ("A", 2)];
        let messages = order
            .iter()
            .map(|(g, i)| (g.to_string(), format!("{g}:{i}")));
        send_fifo(&ep, "held.fifo", messages).await;
        let log = Log::default();
        let failed_once = Arc::new(AtomicUsize::new(0));
        let running = Running::start(
            releasing_consumer(&ep, "held.fifo")
                .batch_handler(
                    ep.name("held.fifo"),
                    |Batch(messages): Batch,
                     State(log): State<Log>,
                     State(failed): State<Arc<AtomicUsize>>| async move {
                        let bodies: Vec<&str> = messages.iter().map(|m| m.body()).collect();
                        log.push(&bodies.join(" "));
                        let mut outcome = BatchOutcome::all_ok();
                        for m in &messages {
                            if m.body() == "A:1" && failed.fetch_add(1, Ordering::SeqCst) == 0 {
                                outcome.record_failure(m, "first attempt fails");
                            }
                        }
                        outcome
                    },
                )
                .hook(
                    ep.name("held.fifo"),
                    |e: MessageProcessed, State(log): State<Log>| async move {
                        log.event(format!("processed {}", e.message.body()));
                    },
                )
                .hook(
                    ep.name("held.fifo"),
                    |e: ProcessingError, State(log): State<Log>| async move {
                        log.event(format!("failed {}", e.message.body()));
                    },
                )
                .state(log.clone())
                .state(failed_once.clone())
                .build()
                .await
                .unwrap(),
        );
        wait_for(
            "every message processed",
            Duration::from_secs(30),
            || async {
                let processed = log
                    .events()
                    .iter()
                    .filter(|e| e.starts_with("processed"))
                    .count();
                (processed == order.len()).then_some(())
            },
        )
        .await;
        wait_empty(&ep, &url).await;
        running.stop().await;
        // SQS returns a receive's messages group by group, so only the set is asserted.
        let batches = log.bodies();
        let mut first: Vec<&str> = batches[0].split(' ').collect();
        first.sort_unstable();
        assert_eq!(
            first,
            ["A:0", "A:1", "A:2", "B:0", "B:1"],
            "the first receive held all five"
        );
        let events = log.events();
        let in_group = |g: &str| -> Vec<&str> {
            events
                .iter()
                .map(String::as_str)
                .filter(|e| e.ends_with(&format!("{g}:0")) || e.contains(&format!(" {g}:")))
                .collect()
        };
        assert_eq!(
            in_group("A"),
            [
                "processed A:0",
                "failed A:1",
                "processed A:1",
                "processed A:2"
            ],
            "A:2 is deleted only after A:1 succeeded; all: {events:?}"
        );
        assert_eq!(in_group("B"), ["processed B:0", "processed B:1"]);
    }
);

#[tokio::test]
async fn tower_layers_wrap_handlers_and_a_concurrency_limit_throttles() {
    let ep = Endpoint::local().await;
    let url = ep.create_queue("layered", &[]).await;
    send(&ep, "layered", (0..40).map(|i| format!("m{i}"))).await;
    let current = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let running = Running::start(
        consumer(&ep)
            .queue(ep.name("layered"), QueueOptions::default().concurrency(30))
            .handler(
                ep.name("layered"),
                |State((cur, peak)): State<(Arc<AtomicUsize>, Arc<AtomicUsize>)>| async move {
                    let now = cur.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    cur.fetch_sub(1, Ordering::SeqCst);
                },
            )
            .layer(tower::layer::layer_fn(
                move |svc: sqs_handler::HandlerService| {
                    let counted = counted.clone();
                    tower::util::MapRequest::new(svc, move |req| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        req
                    })
                },
            ))
            .layer(tower::limit::ConcurrencyLimitLayer::new(2))
            .state((current.clone(), peak.clone()))
            .build()
            .await
            .unwrap(),
    );
    wait_empty(&ep, &url).await;
    running.stop().await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        40,
        "the outer layer saw every message"
    );
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "the concurrency-limit layer held handlers to 2"
    );
}

#[tokio::test]
async fn build_reports_configuration_errors_by_name() {
    let ep = Endpoint::local().await;
    ep.create_queue("exists", &[]).await;
    let missing = consumer(&ep)
        .handler("no-such-queue", || async {})
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&missing, BuildError::QueueNotFound { queue, .. } if queue == "no-such-queue"),
        "{missing}"
    );
    assert!(missing.to_string().contains("no-such-queue"));

    let no_handler = consumer(&ep)
        .queue(ep.name("exists"), QueueOptions::default())
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(no_handler, BuildError::NoHandler { .. }),
        "{no_handler}"
    );

    let dup = consumer(&ep)
        .handler(ep.name("exists"), || async {})
        .handler(ep.name("exists"), || async {})
        .build()
        .await
        .unwrap_err();
    assert!(matches!(dup, BuildError::DuplicateHandler { .. }), "{dup}");

    #[derive(Clone)]
    struct Store;
    let state = consumer(&ep)
        .handler(ep.name("exists"), |State(_): State<Store>| async {})
        .build()
        .await
        .unwrap_err();
    let text = state.to_string();
    assert!(matches!(state, BuildError::MissingState { .. }));
    assert!(
        text.contains("State<") && text.contains("::Store") && text.contains("call .state(value)"),
        "{text}"
    );

    let bad = consumer(&ep)
        .queue(ep.name("exists"), QueueOptions::default().concurrency(0))
        .handler(ep.name("exists"), || async {})
        .build()
        .await
        .unwrap_err();
    assert!(matches!(bad, BuildError::InvalidOption { .. }), "{bad}");

    let none = consumer(&ep).build().await.unwrap_err();
    assert!(matches!(none, BuildError::NoHandlers), "{none}");
    let text = none.to_string();
    assert!(
        text.contains("reference that crate") && text.contains(".handler("),
        "names both fixes: {text}"
    );
}

#[tokio::test]
async fn producer_chunks_and_reports_each_message() {
    let ep = Endpoint::local().await;
    let url = ep.create_queue("produce", &[]).await;
    let producer = Producer::with_client(ep.client.clone());
    let stats = ep.server.as_ref().unwrap().stats();
    stats.reset();
    let mut messages: Vec<OutgoingMessage> = (0..25)
        .map(|i| OutgoingMessage::new(format!("m{i}")))
        .collect();
    messages[7] = OutgoingMessage::new("bad \u{1} char");
    let report = producer
        .send_batch(&ep.name("produce"), messages)
        .await
        .unwrap();
    assert_eq!(report.sent.len(), 24);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].index, 7);
    assert!(report.failed[0].sender_fault);
    assert_eq!(
        stats.calls(Operation::SendMessageBatch),
        3,
        "25 messages in 3 batches"
    );
    // Size-based chunking: three 400 KB messages cannot share one 1 MiB batch.
    let big: Vec<OutgoingMessage> = (0..3)
        .map(|_| OutgoingMessage::new("z".repeat(400_000)))
        .collect();
    let report = producer.send_batch(&ep.name("produce"), big).await.unwrap();
    assert!(report.is_complete());
    assert_eq!(stats.calls(Operation::SendMessageBatch), 5);
    assert_eq!(queue_counts(&ep.client, &url).await.0, 27);
    let err = producer
        .send("no-such-queue", OutgoingMessage::new("x"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no-such-queue"));
}

conformance!(
    producer_keeps_fifo_order_across_chunks,
    |ep: Endpoint| async move {
        let n = if ep.reference { 100 } else { 300 };
        let url = ep.create_queue("sent-in-order.fifo", &[]).await;
        let producer = Producer::with_client(ep.client.clone());
        let messages = (0..n).map(|i| {
            OutgoingMessage::new(format!("{i}"))
                .group_id("one-group")
                .deduplication_id(format!("d{i}"))
        });
        let report = producer
            .send_batch(&ep.name("sent-in-order.fifo"), messages)
            .await
            .unwrap();
        assert!(report.is_complete());
        let mut received = Vec::new();
        while received.len() < n {
            let messages = ep.receive(&url, 10, 1).await;
            assert!(!messages.is_empty(), "all {n} are visible");
            for m in &messages {
                received.push(m.body().unwrap().parse::<usize>().unwrap());
                ep.delete(&url, m).await;
            }
        }
        assert_eq!(
            received,
            (0..n).collect::<Vec<_>>(),
            "chunks of 10 arrive in input order"
        );
    }
);

#[tokio::test]
async fn status_counts_and_empty_events() {
    let ep = Endpoint::local().await;
    ep.create_queue("idle", &[]).await;
    let empties = Arc::new(AtomicUsize::new(0));
    let running = Running::start(
        consumer(&ep)
            .queue(
                ep.name("idle"),
                QueueOptions::default().wait_time(Duration::from_millis(0)),
            )
            .handler(ep.name("idle"), || async {})
            .hook(
                ep.name("idle"),
                |_: sqs_handler::Empty, State(n): State<Arc<AtomicUsize>>| async move {
                    n.fetch_add(1, Ordering::SeqCst);
                },
            )
            .state(empties.clone())
            .build()
            .await
            .unwrap(),
    );
    wait_for("empty events", Duration::from_secs(10), || async {
        (empties.load(Ordering::SeqCst) >= 3).then_some(())
    })
    .await;
    let status = running.status.queue(&ep.name("idle")).unwrap();
    assert!(status.running);
    assert_eq!(
        (status.in_flight, status.processed, status.failed),
        (0, 0, 0)
    );
    let handle = running.status.clone();
    running.stop().await;
    assert!(
        !handle.queue(&ep.name("idle")).unwrap().running,
        "not running after stop"
    );
}
