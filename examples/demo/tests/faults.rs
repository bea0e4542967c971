//! The demo when SQS fails: a missing queue, an endpoint that is frozen (SIGSTOP) or killed,
//! and a message SQS refuses. Health says what failed, requests answer within the documented
//! bound, and no status is left for a job the client never got an id for.

mod common;

use std::time::Duration;

use common::{SqsLocalProcess, config, http, post_job, redis_keys, sqs_client, timed, wait_for};
use demo::Role;

/// The README's bound: the API answers 503 within 5 s when SQS does not answer.
const BOUND: Duration = Duration::from_secs(5);

#[tokio::test]
async fn health_names_a_missing_queue_and_a_job_for_it_leaves_no_record() {
    let cfg = config("noqueue");
    let prefix = cfg.key_prefix.clone();
    let demo = demo::start(cfg, Role::Api).await.unwrap();
    let addr = demo.addr.unwrap();
    let endpoint = demo.sqs_endpoint.clone().unwrap();
    let kept = post_job(addr, "before the queue goes").await;
    let (code, health) = http(addr, "GET", "/health", None).await;
    assert_eq!(
        (code, &health["sqs"], &health["queued"]),
        (200, &"ok".into(), &1.into())
    );

    let client = sqs_client(&endpoint);
    let url = client
        .get_queue_url()
        .queue_name("jobs")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    client.delete_queue().queue_url(url).send().await.unwrap();

    let (code, health) = http(addr, "GET", "/health", None).await;
    assert_eq!(code, 503, "{health}");
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["redis"], "ok");
    assert_eq!(
        health["sqs"],
        format!(
            "queue \"jobs\" does not exist at the SQS endpoint {endpoint}: create it (restarting the demo does)"
        )
    );
    assert!(health.get("queued").is_none(), "{health}");

    let (code, body) = http(addr, "POST", "/jobs", Some(r#"{"message":"after"}"#)).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(
        body["error"],
        format!(
            "could not queue the job: queue \"jobs\" does not exist at the SQS endpoint {endpoint}"
        )
    );
    assert_eq!(redis_keys(&prefix).await, [format!("{prefix}{kept}")]);
    demo.stop().await;
}

#[tokio::test]
async fn a_frozen_then_killed_endpoint_gets_503_within_the_bound_and_no_orphan_records() {
    let mut sqs = SqsLocalProcess::start().await;
    let endpoint = sqs.endpoint.clone();
    let cfg = config("frozen");
    let prefix = cfg.key_prefix.clone();
    let demo = demo::start_with_sdk_config(
        cfg,
        Role::Api,
        sqs_local::sdk_config_for(&endpoint),
        Some(endpoint.clone()),
        None,
    )
    .await
    .unwrap();
    let addr = demo.addr.unwrap();
    let kept = post_job(addr, "while SQS answers").await;
    let only_kept = [format!("{prefix}{kept}")];

    sqs.freeze();
    let (code, health, took) = timed(addr, "GET", "/health", None).await;
    assert_eq!(code, 503, "{health}");
    assert_eq!(
        health["sqs"],
        format!("the SQS endpoint {endpoint} did not answer GetQueueAttributes within 2 s")
    );
    assert_eq!(health["redis"], "ok");
    assert!(took < Duration::from_secs(3), "health took {took:?}");

    let (code, body, took) = timed(addr, "POST", "/jobs", Some(r#"{"message":"frozen"}"#)).await;
    assert_eq!(code, 503, "{body}");
    assert!(took < BOUND, "POST /jobs took {took:?}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "could not queue the job: SendMessageBatch to queue \"jobs\" failed: TransportError: "
        ) && error.ends_with(&format!(
            "; try again when the SQS endpoint {endpoint} answers"
        )),
        "{error}"
    );
    assert_eq!(redis_keys(&prefix).await, only_kept);

    sqs.thaw();
    wait_for("health is ok again", Duration::from_secs(10), || async {
        let (code, _) = http(addr, "GET", "/health", None).await;
        (code == 200).then_some(())
    })
    .await;
    let after = post_job(addr, "thawed").await;
    let mut both = vec![format!("{prefix}{kept}"), format!("{prefix}{after}")];
    both.sort();
    assert_eq!(redis_keys(&prefix).await, both);

    sqs.kill();
    let (code, health, took) = timed(addr, "GET", "/health", None).await;
    assert_eq!(code, 503, "{health}");
    let why = health["sqs"].as_str().unwrap();
    assert!(
        why.starts_with(&format!("cannot reach the SQS endpoint {endpoint}: "))
            && why.contains("onnection refused"),
        "{why}"
    );
    assert!(took < Duration::from_secs(3), "health took {took:?}");

    let (code, body, took) = timed(addr, "POST", "/jobs", Some(r#"{"message":"killed"}"#)).await;
    assert_eq!(code, 503, "{body}");
    assert!(took < BOUND, "POST /jobs took {took:?}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("could not queue the job: SendMessageBatch to queue \"jobs\" failed: "),
        "{body}"
    );
    assert_eq!(redis_keys(&prefix).await, both);
    demo.stop().await;
}

#[tokio::test]
async fn a_character_sqs_refuses_gets_400_naming_it_and_nothing_is_written() {
    let cfg = config("badchar");
    let prefix = cfg.key_prefix.clone();
    let demo = demo::start(cfg, Role::Api).await.unwrap();
    let addr = demo.addr.unwrap();
    let expected = "\"message\" has character U+FFFF at position 3 (counted in characters from 0), which SQS does not accept; SQS accepts #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF";
    for path in ["/jobs", "/test/send-async-message"] {
        let (code, body) = http(addr, "POST", path, Some(r#"{"message":"é🎉a\uffffb"}"#)).await;
        assert_eq!(
            (code, body["error"].as_str()),
            (400, Some(expected)),
            "{path}"
        );
    }
    assert_eq!(redis_keys(&prefix).await, Vec::<String>::new());
    // Control characters are escaped in the job's JSON: SQS takes them.
    let id = post_job(addr, "tab\t nul\u{0} bell\u{7}").await;
    assert_eq!(redis_keys(&prefix).await, [format!("{prefix}{id}")]);
    demo.stop().await;
}
