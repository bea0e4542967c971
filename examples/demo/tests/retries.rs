//! A failed attempt that SQS will deliver again is `retrying`, never `error`; the attempt
//! count follows the receive count; the last attempt the RedrivePolicy allows is
//! `dead_lettered`, and the message is then in the dead-letter queue.

mod common;

use std::time::Duration;

use common::{config, post_job, queue_depth, sqs_client, status_of, wait_for, watch_attempts};
use demo::Role;

/// Every distinct (status, attempts), without the `waiting` a quick worker may hide.
fn attempts(seen: &[(String, u64)]) -> Vec<(&str, u64)> {
    seen.iter()
        .map(|(s, n)| (s.as_str(), *n))
        .filter(|(s, _)| *s != "waiting")
        .collect()
}

#[tokio::test]
async fn a_job_that_fails_once_shows_retrying_then_done_never_error() {
    let mut cfg = config("flaky");
    cfg.job_duration = Duration::from_millis(300);
    cfg.retry_delay = Some(Duration::from_millis(400));
    let demo = demo::start(cfg, Role::All).await.unwrap();
    let addr = demo.addr.unwrap();
    let id = post_job(addr, "flaky").await;
    let (seen, job) = watch_attempts(addr, &id, Duration::from_secs(20), "done").await;
    assert_eq!(
        attempts(&seen),
        [
            ("processing", 1),
            ("retrying", 1),
            ("processing", 2),
            ("done", 2)
        ]
    );
    assert!(job.get("error").is_none(), "{job}");
    demo.stop().await;
}

#[tokio::test]
async fn a_job_that_always_times_out_retries_then_is_dead_lettered() {
    let mut cfg = config("deadletter");
    cfg.job_timeout = Duration::from_millis(300);
    cfg.retry_delay = Some(Duration::from_millis(400));
    let demo = demo::start(cfg, Role::All).await.unwrap();
    let addr = demo.addr.unwrap();
    let client = sqs_client(demo.sqs_endpoint.as_deref().unwrap());
    let id = post_job(addr, "slow").await;
    let (seen, job) = watch_attempts(addr, &id, Duration::from_secs(30), "dead_lettered").await;
    assert_eq!(
        attempts(&seen),
        [
            ("processing", 1),
            ("retrying", 1),
            ("processing", 2),
            ("retrying", 2),
            ("processing", 3),
            ("dead_lettered", 3)
        ]
    );
    assert_eq!(job["error"], "timed out after 300 ms and was cancelled");
    // The next receive after the third moves it to the dead-letter queue (after the 1.6 s
    // backoff), and the worker never runs it again.
    wait_for(
        "the job's message in jobs-dlq",
        Duration::from_secs(20),
        || {
            let client = client.clone();
            async move { (queue_depth(&client, "jobs-dlq").await == 1).then_some(()) }
        },
    )
    .await;
    assert_eq!(queue_depth(&client, "jobs").await, 0);
    assert_eq!(status_of(addr, &id).await, job);
    demo.stop().await;
}
