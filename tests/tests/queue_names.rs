//! Queue names as services name them (issue 11 §1): a constant as the attribute's queue, and the
//! builder's queue-name resolver (a prefix per environment or per test, or a URL), against
//! sqs-local. Every test asserts exact outcomes: which bodies each consumer saw, under which
//! name, and what is left in each queue.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqs_handler::{
    Body, BuildError, MessageProcessed, NonRetryable, QueueName, QueueOptions, SqsConsumer,
    SqsConsumerBuilder, State, sqs_consumer_event_handler, sqs_message_handler,
};
use sqs_handler_tests::{Endpoint, Running, queue_counts, wait_for};
use sqs_local::Operation;

/// What handlers and hooks saw, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, entry: String) {
        self.0.lock().unwrap().push(entry);
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn sorted(&self) -> Vec<String> {
        let mut entries = self.0.lock().unwrap().clone();
        entries.sort();
        entries
    }
}

/// The one handler both consumers of the prefix test run.
async fn record(Body(body): Body, QueueName(queue): QueueName, State(log): State<Log>) {
    log.push(format!("{queue}: {body}"));
}

/// A hook on the same declared queue: it reports the real queue too.
async fn processed(event: MessageProcessed, QueueName(queue): QueueName, State(log): State<Log>) {
    log.push(format!(
        "processed on {queue} (event: {}): {}",
        event.queue,
        event.message.body()
    ));
}

/// Creates a queue under exactly this name (each test has its own sqs-local server).
async fn create(ep: &Endpoint, name: &str) -> String {
    ep.client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e:?}"))
        .queue_url
        .expect("CreateQueue returns a QueueUrl")
}

async fn send(ep: &Endpoint, url: &str, bodies: &[&str]) {
    for body in bodies {
        ep.client
            .send_message()
            .queue_url(url)
            .message_body(*body)
            .send()
            .await
            .expect("send");
    }
}

async fn wait_empty(ep: &Endpoint, url: &str) {
    wait_for(
        &format!("{url} to be empty"),
        Duration::from_secs(20),
        || async { (queue_counts(&ep.client, url).await == (0, 0, 0)).then_some(()) },
    )
    .await;
}

async fn wait_len(log: &Log, len: usize) {
    wait_for(
        &format!("{len} log entries"),
        Duration::from_secs(20),
        || async { (log.len() >= len).then_some(()) },
    )
    .await;
}

/// A consumer of the declared queue `jobs` with `record` and `processed`, explicitly registered.
fn jobs_consumer(ep: &Endpoint, log: &Log) -> SqsConsumerBuilder {
    SqsConsumer::builder(&ep.sdk_config)
        .discover(false)
        .queue(
            "jobs",
            QueueOptions::default().wait_time(Duration::from_secs(1)),
        )
        .handler("jobs", record)
        .hook("jobs", processed)
        .state(log.clone())
}

#[tokio::test]
async fn two_prefixes_in_one_process_consume_their_own_queues() {
    let ep = Endpoint::local().await;
    let a = create(&ep, "a-jobs").await;
    let b = create(&ep, "b-jobs").await;
    // The declared name exists too: neither consumer may touch it.
    let unprefixed = create(&ep, "jobs").await;
    send(&ep, &a, &["a1", "a2", "a3"]).await;
    send(&ep, &b, &["b1", "b2"]).await;
    send(&ep, &unprefixed, &["declared"]).await;

    let (log_a, log_b) = (Log::default(), Log::default());
    let consumer_a = jobs_consumer(&ep, &log_a)
        .queue_prefix("a-")
        .build()
        .await
        .unwrap();
    let consumer_b = jobs_consumer(&ep, &log_b)
        .queue_prefix("b-")
        .build()
        .await
        .unwrap();
    assert_eq!(consumer_a.queues(), ["a-jobs"]);
    assert_eq!(consumer_b.queues(), ["b-jobs"]);
    let running_a = Running::start(consumer_a);
    let running_b = Running::start(consumer_b);

    wait_len(&log_a, 6).await;
    wait_len(&log_b, 4).await;
    wait_empty(&ep, &a).await;
    wait_empty(&ep, &b).await;
    let (status_a, status_b) = (running_a.status.clone(), running_b.status.clone());
    running_a.stop().await;
    running_b.stop().await;

    assert_eq!(
        log_a.sorted(),
        [
            "a-jobs: a1",
            "a-jobs: a2",
            "a-jobs: a3",
            "processed on a-jobs (event: a-jobs): a1",
            "processed on a-jobs (event: a-jobs): a2",
            "processed on a-jobs (event: a-jobs): a3",
        ]
    );
    assert_eq!(
        log_b.sorted(),
        [
            "b-jobs: b1",
            "b-jobs: b2",
            "processed on b-jobs (event: b-jobs): b1",
            "processed on b-jobs (event: b-jobs): b2",
        ]
    );
    // The status is keyed by the real name, not the declared one.
    let a_status = status_a.queue("a-jobs").expect("a-jobs status");
    assert_eq!(
        (a_status.received, a_status.processed, a_status.deleted),
        (3, 3, 3)
    );
    let b_status = status_b.queue("b-jobs").expect("b-jobs status");
    assert_eq!(
        (b_status.received, b_status.processed, b_status.deleted),
        (2, 2, 2)
    );
    assert!(status_a.queue("jobs").is_none() && status_b.queue("jobs").is_none());
    assert_eq!(queue_counts(&ep.client, &unprefixed).await, (1, 0, 0));
}

#[tokio::test]
async fn a_missing_resolved_queue_is_named_with_its_declared_name() {
    let ep = Endpoint::local().await;
    // `jobs` exists; `c-jobs`, where the prefix sends the handler, does not.
    create(&ep, "jobs").await;
    let err = jobs_consumer(&ep, &Log::default())
        .queue_prefix("c-")
        .build()
        .await
        .unwrap_err();
    match &err {
        BuildError::QueueNotFound {
            queue,
            declared,
            used_by,
            ..
        } => {
            assert_eq!(queue, "c-jobs");
            assert_eq!(declared.as_deref(), Some("jobs"));
            assert_eq!(
                used_by,
                "handler queue_names::record, hook queue_names::processed"
            );
        }
        other => panic!("expected QueueNotFound, got {other}"),
    }
    assert_eq!(
        err.to_string(),
        "queue \"c-jobs\" does not exist (declared as \"jobs\" and renamed by the builder's \
         queue-name resolver; used by handler queue_names::record, hook queue_names::processed): \
         create it, or fix the name"
    );
}

#[tokio::test]
async fn a_resolved_url_is_not_looked_up_and_names_the_queue() {
    let ep = Endpoint::local().await;
    let url = create(&ep, "jobs-eu").await;
    send(&ep, &url, &["u1"]).await;
    let log = Log::default();
    let resolved = url.clone();
    let lookups = || {
        ep.server
            .as_ref()
            .unwrap()
            .stats()
            .calls(Operation::GetQueueUrl)
    };
    let before = lookups();
    let consumer = jobs_consumer(&ep, &log)
        .resolve_queue_names(move |declared| match declared {
            "jobs" => resolved.clone(),
            other => other.to_owned(),
        })
        .build()
        .await
        .unwrap();
    assert_eq!(lookups(), before, "no GetQueueUrl for a resolved URL");
    assert_eq!(consumer.queues(), ["jobs-eu"]);
    let running = Running::start(consumer);
    wait_len(&log, 2).await;
    wait_empty(&ep, &url).await;
    running.stop().await;
    assert_eq!(
        log.sorted(),
        ["jobs-eu: u1", "processed on jobs-eu (event: jobs-eu): u1"]
    );
}

#[tokio::test]
async fn queue_url_option_wins_over_the_resolver() {
    let ep = Endpoint::local().await;
    let url = create(&ep, "jobs").await;
    send(&ep, &url, &["w1"]).await;
    let log = Log::default();
    let lookups = || {
        ep.server
            .as_ref()
            .unwrap()
            .stats()
            .calls(Operation::GetQueueUrl)
    };
    let before = lookups();
    // `x-jobs` does not exist: the option's URL is used, not the resolved name.
    let consumer = jobs_consumer(&ep, &log)
        .queue(
            "jobs",
            QueueOptions::default()
                .queue_url(url.clone())
                .wait_time(Duration::from_secs(1)),
        )
        .queue_prefix("x-")
        .build()
        .await
        .unwrap();
    assert_eq!(lookups(), before);
    let running = Running::start(consumer);
    wait_len(&log, 2).await;
    wait_empty(&ep, &url).await;
    running.stop().await;
    assert_eq!(
        log.sorted(),
        ["processed on x-jobs (event: x-jobs): w1", "x-jobs: w1"]
    );
}

#[tokio::test]
async fn forward_non_retryable_to_is_resolved_too() {
    let ep = Endpoint::local().await;
    let url = create(&ep, "t-orders").await;
    let rejected = create(&ep, "t-rejected").await;
    // The declared forward target exists too, and must stay empty.
    let declared_rejected = create(&ep, "rejected").await;
    send(&ep, &url, &["bad"]).await;
    let consumer = SqsConsumer::builder(&ep.sdk_config)
        .discover(false)
        .queue_prefix("t-")
        .queue(
            "orders",
            QueueOptions::default()
                .wait_time(Duration::from_secs(1))
                .forward_non_retryable_to("rejected"),
        )
        .handler("orders", |Body(b): Body| async move {
            Err::<(), _>(NonRetryable::new(format!("cannot place {b}")))
        })
        .build()
        .await
        .unwrap();
    let running = Running::start(consumer);
    let forwarded = ep.receive_n(&rejected, 1, Duration::from_secs(20)).await;
    wait_empty(&ep, &url).await;
    running.stop().await;
    let bodies: Vec<&str> = forwarded.iter().map(|m| m.body().unwrap_or("")).collect();
    assert_eq!(bodies, ["bad"]);
    assert_eq!(
        queue_counts(&ep.client, &declared_rejected).await,
        (0, 0, 0)
    );
}

// Discovery: a handler and a hook that declare their queue with constants, consumed under a
// prefix. `only_queues` takes the declared name.

const DISCOVERED_JOBS: &str = "discovered-jobs";

mod queues {
    pub(crate) static DISCOVERED_HOOKED: &str = "discovered-jobs";
}

#[sqs_message_handler(DISCOVERED_JOBS)]
async fn discovered(Body(body): Body, QueueName(queue): QueueName, State(log): State<Log>) {
    log.push(format!("{queue}: {body}"));
}

#[sqs_consumer_event_handler(crate::queues::DISCOVERED_HOOKED, message_processed)]
async fn discovered_processed(event: MessageProcessed, State(log): State<Log>) {
    log.push(format!(
        "processed on {}: {}",
        event.queue,
        event.message.body()
    ));
}

#[tokio::test]
async fn discovered_constant_queues_run_under_a_prefix() {
    let ep = Endpoint::local().await;
    let url = create(&ep, "p-discovered-jobs").await;
    send(&ep, &url, &["c1", "c2"]).await;
    let log = Log::default();
    let consumer = SqsConsumer::builder(&ep.sdk_config)
        .only_queues([DISCOVERED_JOBS])
        .queue_prefix("p-")
        .queue(
            DISCOVERED_JOBS,
            QueueOptions::default().wait_time(Duration::from_secs(1)),
        )
        .state(log.clone())
        .build()
        .await
        .unwrap();
    assert_eq!(consumer.queues(), ["p-discovered-jobs"]);
    let running = Running::start(consumer);
    wait_len(&log, 4).await;
    wait_empty(&ep, &url).await;
    running.stop().await;
    assert_eq!(
        log.sorted(),
        [
            "p-discovered-jobs: c1",
            "p-discovered-jobs: c2",
            "processed on p-discovered-jobs: c1",
            "processed on p-discovered-jobs: c2",
        ]
    );
}
