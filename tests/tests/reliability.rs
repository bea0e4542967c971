//! Reliability: shutdown with long polls in flight, FIFO order after a failure on every
//! endpoint, and the circuit breaker through a dependency outage. Each check asserts exact
//! outcomes; the ones about SQS semantics also run against the reference endpoint.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use sqs_handler::{Body, Started, Stopped};
use sqs_handler::{
    BoxError, CircuitBreaker, CircuitClosed, CircuitOpened, CircuitState, OutgoingMessage,
    Producer, QueueOptions, ReceiveCount, SqsConsumer, State,
};
use sqs_handler_tests::{Endpoint, Running, conformance, queue_counts, wait_for};
use sqs_local::Operation;

fn consumer(ep: &Endpoint) -> sqs_handler::SqsConsumerBuilder {
    SqsConsumer::builder(&ep.sdk_config).discover(false)
}

async fn send(ep: &Endpoint, queue: &str, messages: Vec<OutgoingMessage>) {
    let report = Producer::with_client(ep.client.clone())
        .send_batch(&ep.name(queue), messages)
        .await
        .expect("send");
    assert!(report.is_complete(), "send failures: {:?}", report.failed);
}

/// A queue with a dead-letter queue after `max_receives` receives; returns both URLs.
async fn queue_with_dlq(
    ep: &Endpoint,
    name: &str,
    max_receives: u32,
    visibility: u32,
) -> (String, String) {
    let fifo = name.ends_with(".fifo");
    let dlq_name = if fifo {
        format!("{}-dlq.fifo", name.trim_end_matches(".fifo"))
    } else {
        format!("{name}-dlq")
    };
    let dlq = ep.create_queue(&dlq_name, &[]).await;
    let dlq_arn = ep.arn(&dlq).await;
    let policy =
        format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receives}"}}"#);
    let url = ep
        .create_queue(
            name,
            &[
                ("VisibilityTimeout", &visibility.to_string()),
                ("RedrivePolicy", &policy),
            ],
        )
        .await;
    (url, dlq)
}

/// Receives every visible message of `url` (expecting `n`), returning body → receive count.
async fn receive_counts(ep: &Endpoint, url: &str, n: usize) -> HashMap<String, u32> {
    let mut counts = HashMap::new();
    let start = std::time::Instant::now();
    while counts.len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "received {} of {n} messages in 30 s",
            counts.len()
        );
        let out = ep
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            let count = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .expect("ApproximateReceiveCount");
            counts.insert(m.body().unwrap_or_default().to_owned(), count);
        }
    }
    counts
}

conformance!(
    shutdown_with_long_polls_in_flight_strands_nothing,
    |ep: Endpoint| async move {
        // Concurrency above the 50 messages: after they are taken, pollers keep long-polling the
        // empty queue, so shutdown begins with receives in flight. Cut, those polls would go on
        // in the server and take the messages released at shutdown.
        let (url, dlq) = queue_with_dlq(&ep, "strand", 2, 60).await;
        send(
            &ep,
            "strand",
            (0..50)
                .map(|i| OutgoingMessage::new(format!("m{i}")))
                .collect(),
        )
        .await;
        let started = Arc::new(AtomicUsize::new(0));
        let running = Running::start(
            consumer(&ep)
                .queue(
                    ep.name("strand"),
                    QueueOptions::default()
                        .concurrency(100)
                        .wait_time(Duration::from_secs(3)),
                )
                .handler(
                    ep.name("strand"),
                    |State(n): State<Arc<AtomicUsize>>| async move {
                        n.fetch_add(1, Ordering::SeqCst);
                        std::future::pending::<()>().await;
                    },
                )
                .state(started.clone())
                .shutdown_timeout(Duration::from_millis(200))
                .build()
                .await
                .unwrap(),
        );
        wait_for("50 handlers running", Duration::from_secs(20), || async {
            (started.load(Ordering::SeqCst) == 50).then_some(())
        })
        .await;
        running.stop().await;
        assert_eq!(
            queue_counts(&ep.client, &url).await,
            (50, 0, 0),
            "every unfinished message visible again, none in flight"
        );
        // Each was received once by the consumer and once here: none spent a receive on an
        // abandoned poll, and none went to the dead-letter queue.
        let counts = receive_counts(&ep, &url, 50).await;
        let expected: HashMap<String, u32> = (0..50).map(|i| (format!("m{i}"), 2)).collect();
        assert_eq!(counts, expected);
        assert_eq!(queue_counts(&ep.client, &dlq).await, (0, 0, 0));
    }
);

conformance!(
    fifo_order_holds_after_a_failure_left_for_redelivery,
    |ep: Endpoint| async move {
        // The default retry policy leaves a failed message in flight. The group's later
        // messages of that receive must not be handed out before it, on any endpoint.
        let (groups, per_group) = (3, 12);
        let url = ep
            .create_queue("order2.fifo", &[("VisibilityTimeout", "2")])
            .await;
        let mut messages = Vec::new();
        for i in 0..per_group {
            for g in 0..groups {
                messages.push(
                    OutgoingMessage::new(format!("g{g}:{i}"))
                        .group_id(format!("g{g}"))
                        .deduplication_id(format!("g{g}-{i}")),
                );
            }
        }
        send(&ep, "order2.fifo", messages).await;
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let failures = Arc::new(AtomicUsize::new(0));
        let running = Running::start(
            consumer(&ep)
                .queue(
                    ep.name("order2.fifo"),
                    QueueOptions::default()
                        .concurrency(30)
                        .wait_time(Duration::from_secs(1)),
                )
                .handler(
                    ep.name("order2.fifo"),
                    |Body(b): Body,
                     State(log): State<Arc<Mutex<Vec<String>>>>,
                     State(failures): State<Arc<AtomicUsize>>| async move {
                        // g1:3 and g2:7 fail twice each.
                        if (b == "g1:3" || b == "g2:7")
                            && failures.fetch_add(1, Ordering::SeqCst) < 4
                        {
                            return Err::<(), BoxError>("fails".into());
                        }
                        log.lock().unwrap().push(b);
                        Ok(())
                    },
                )
                .state(log.clone())
                .state(failures.clone())
                .build()
                .await
                .unwrap(),
        );
        wait_for("every message handled", Duration::from_secs(60), || async {
            (log.lock().unwrap().len() >= groups * per_group).then_some(())
        })
        .await;
        running.stop().await;
        assert_eq!(queue_counts(&ep.client, &url).await, (0, 0, 0));
        let mut per: HashMap<String, Vec<usize>> = HashMap::new();
        for b in log.lock().unwrap().iter() {
            let (g, i) = b.split_once(':').unwrap();
            per.entry(g.to_owned())
                .or_default()
                .push(i.parse().unwrap());
        }
        for g in 0..groups {
            assert_eq!(
                per[&format!("g{g}")],
                (0..per_group).collect::<Vec<_>>(),
                "group g{g} handled in order, each once"
            );
        }
        assert_eq!(
            failures.load(Ordering::SeqCst),
            6,
            "4 failures, then 2 successes"
        );
    }
);

/// What the breaker test's handler and hooks saw.
#[derive(Clone, Default)]
struct Outage {
    down: Arc<AtomicBool>,
    handled: Arc<Mutex<Vec<(String, u32)>>>,
    failed_while_down: Arc<AtomicUsize>,
    events: Arc<Mutex<Vec<String>>>,
}

#[tokio::test]
async fn circuit_breaker_rides_out_an_outage_without_dead_letters() {
    let ep = Endpoint::local().await;
    let (url, dlq) = queue_with_dlq(&ep, "outage", 3, 4).await;
    let outage = Outage::default();
    outage.down.store(true, Ordering::SeqCst);
    send(
        &ep,
        "outage",
        (0..40)
            .map(|i| OutgoingMessage::new(format!("m{i}")))
            .collect(),
    )
    .await;
    let breaker = CircuitBreaker::default()
        .minimum_messages(5)
        .open_for(Duration::from_secs(1))
        .max_open_for(Duration::from_secs(2));
    let running = Running::start(
        consumer(&ep)
            .queue(
                ep.name("outage"),
                QueueOptions::default()
                    .concurrency(10)
                    .wait_time(Duration::from_secs(1))
                    .circuit_breaker(breaker),
            )
            .handler(
                ep.name("outage"),
                |Body(b): Body, ReceiveCount(n): ReceiveCount, State(o): State<Outage>| async move {
                    if o.down.load(Ordering::SeqCst) {
                        o.failed_while_down.fetch_add(1, Ordering::SeqCst);
                        return Err::<(), BoxError>("the dependency is down".into());
                    }
                    o.handled.lock().unwrap().push((b, n));
                    Ok(())
                },
            )
            .hook(
                ep.name("outage"),
                |e: CircuitOpened, State(o): State<Outage>| async move {
                    o.events
                        .lock()
                        .unwrap()
                        .push(format!("opened:{:?}", e.open_for));
                },
            )
            .hook(
                ep.name("outage"),
                |_: CircuitClosed, State(o): State<Outage>| async move {
                    o.events.lock().unwrap().push("closed".into());
                },
            )
            .state(outage.clone())
            .build()
            .await
            .unwrap(),
    );
    // The outage lasts through three probes: opened for 1 s, then 2 s, then 2 s (the cap).
    wait_for("three failed probes", Duration::from_secs(30), || async {
        (outage.events.lock().unwrap().len() >= 3).then_some(())
    })
    .await;
    assert_eq!(
        running.status.queue(&ep.name("outage")).unwrap().circuit,
        CircuitState::Open
    );
    let failed_while_down = outage.failed_while_down.load(Ordering::SeqCst);
    outage.down.store(false, Ordering::SeqCst);
    wait_for("every message handled", Duration::from_secs(60), || async {
        (outage.handled.lock().unwrap().len() >= 40).then_some(())
    })
    .await;
    running.stop().await;

    let events = outage.events.lock().unwrap().clone();
    assert_eq!(
        events[..3],
        ["opened:1s", "opened:2s", "opened:2s"],
        "opened, then reopened by failed probes with the period doubled up to its cap"
    );
    assert_eq!(events.last().map(String::as_str), Some("closed"));
    assert!(events[3..events.len() - 1].iter().all(|e| e == "opened:2s"));
    // While open only probes were received: the receives of 10 in flight when it tripped
    // (at most two: the first receive's failures free capacity for a second one), then one
    // message per probe.
    let probes = events.len() - 1;
    assert!(
        failed_while_down <= 20 + probes,
        "{failed_while_down} failures while down with {probes} probes"
    );
    let handled = outage.handled.lock().unwrap().clone();
    let mut bodies: Vec<&str> = handled.iter().map(|(b, _)| b.as_str()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 40, "every message handled once");
    assert_eq!(handled.len(), 40);
    assert!(
        handled.iter().all(|(_, n)| *n <= 3),
        "no message needed more receives than the redrive policy allows: {handled:?}"
    );
    assert_eq!(queue_counts(&ep.client, &url).await, (0, 0, 0));
    assert_eq!(
        queue_counts(&ep.client, &dlq).await,
        (0, 0, 0),
        "nothing dead-lettered"
    );
}

#[tokio::test]
async fn the_visibility_timeout_option_applies_to_received_messages() {
    // The queue's attribute says 60 s; the option says 1 s. A failed message left for
    // redelivery must come back after the option's timeout, as the heartbeat assumes.
    let ep = Endpoint::local().await;
    let url = ep.create_queue("vis", &[("VisibilityTimeout", "60")]).await;
    send(&ep, "vis", vec![OutgoingMessage::new("once")]).await;
    let attempts: Arc<Mutex<Vec<u32>>> = Arc::default();
    let running = Running::start(
        consumer(&ep)
            .queue(
                ep.name("vis"),
                QueueOptions::default()
                    .visibility_timeout(Duration::from_secs(1))
                    .wait_time(Duration::from_secs(1)),
            )
            .handler(
                ep.name("vis"),
                |ReceiveCount(n): ReceiveCount, State(a): State<Arc<Mutex<Vec<u32>>>>| async move {
                    a.lock().unwrap().push(n);
                    if n == 1 {
                        return Err::<(), BoxError>("first attempt fails".into());
                    }
                    Ok(())
                },
            )
            .state(attempts.clone())
            .build()
            .await
            .unwrap(),
    );
    // Well inside the queue's 60 s: only the option's 1 s explains a second attempt.
    wait_for("the second attempt", Duration::from_secs(20), || async {
        (attempts.lock().unwrap().len() == 2).then_some(())
    })
    .await;
    running.stop().await;
    assert_eq!(*attempts.lock().unwrap(), [1, 2]);
    assert_eq!(queue_counts(&ep.client, &url).await, (0, 0, 0));
}

/// What the control test's handlers and hooks saw, per queue.
#[derive(Clone, Default)]
struct Seen {
    handled: Arc<Mutex<Vec<String>>>,
    events: Arc<Mutex<Vec<String>>>,
}

impl Seen {
    fn handled(&self, prefix: &str) -> usize {
        let handled = self.handled.lock().unwrap();
        handled.iter().filter(|b| b.starts_with(prefix)).count()
    }
}

#[tokio::test]
async fn one_queue_is_paused_resumed_and_stopped_while_the_other_runs() {
    let ep = Endpoint::local().await;
    let (a, b) = (ep.name("ctl-a"), ep.name("ctl-b"));
    let url_a = ep.create_queue("ctl-a", &[]).await;
    let url_b = ep.create_queue("ctl-b", &[]).await;
    let seen = Seen::default();
    let mut builder = consumer(&ep).state(seen.clone());
    for q in [&a, &b] {
        builder = builder
            .queue(q, QueueOptions::default().wait_time(Duration::from_secs(1)))
            .handler(q, |Body(body): Body, State(s): State<Seen>| async move {
                s.handled.lock().unwrap().push(body);
            })
            .hook(q, |e: Started, State(s): State<Seen>| async move {
                s.events
                    .lock()
                    .unwrap()
                    .push(format!("started {}", e.queue));
            })
            .hook(q, |e: Stopped, State(s): State<Seen>| async move {
                s.events
                    .lock()
                    .unwrap()
                    .push(format!("stopped {}", e.queue));
            });
    }
    let consumer = builder.build().await.unwrap();
    let control = consumer.control();
    let unknown = control.pause("nope").unwrap_err();
    assert_eq!(unknown.queue, "nope");
    control.pause(&a).unwrap();
    let running = Running::start(consumer);
    let status = |q: &str| running.status.queue(q).unwrap();
    assert!(status(&a).paused);

    let bodies = |p: &str| {
        (0..5)
            .map(|i| OutgoingMessage::new(format!("{p}{i}")))
            .collect()
    };
    send(&ep, "ctl-a", bodies("a")).await;
    send(&ep, "ctl-b", bodies("b")).await;
    wait_for("b's messages handled", Duration::from_secs(20), || async {
        (seen.handled("b") == 5).then_some(())
    })
    .await;
    // Two more long polls of b's, time in which a would have received had it not been paused.
    let server = ep.server.as_ref().unwrap();
    let receives = server.stats().calls(Operation::ReceiveMessage);
    wait_for("two more receives", Duration::from_secs(10), || async {
        (server.stats().calls(Operation::ReceiveMessage) >= receives + 2).then_some(())
    })
    .await;
    assert_eq!(seen.handled("a"), 0, "paused: nothing received");
    assert_eq!(queue_counts(&ep.client, &url_a).await, (5, 0, 0));

    control.resume(&a).unwrap();
    wait_for("a's messages handled", Duration::from_secs(20), || async {
        (seen.handled("a") == 5).then_some(())
    })
    .await;
    assert!(!status(&a).paused);

    control.stop(&a).unwrap();
    wait_for("a stopped", Duration::from_secs(20), || async {
        (!status(&a).running).then_some(())
    })
    .await;
    send(&ep, "ctl-a", vec![OutgoingMessage::new("a-late")]).await;
    send(&ep, "ctl-b", vec![OutgoingMessage::new("b-late")]).await;
    wait_for("b still consuming", Duration::from_secs(20), || async {
        (seen.handled("b") == 6).then_some(())
    })
    .await;
    assert_eq!(seen.handled("a"), 5, "stopped: a-late stays in its queue");
    assert_eq!(queue_counts(&ep.client, &url_a).await, (1, 0, 0));
    running.stop().await;
    assert_eq!(queue_counts(&ep.client, &url_b).await, (0, 0, 0));

    let events = seen.events.lock().unwrap().clone();
    let mut started = events[..2].to_vec();
    started.sort();
    assert_eq!(started, [format!("started {a}"), format!("started {b}")]);
    assert_eq!(
        events[2..],
        [format!("stopped {a}"), format!("stopped {b}")]
    );
}
