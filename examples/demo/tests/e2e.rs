//! The demo end to end: real Redis (`REDIS_URL` or 127.0.0.1:6379), sqs-local, and LocalStack
//! when `SQS_REFERENCE_ENDPOINT` is set. Each test has its own Redis key prefix.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{
    config, free_port, http, post_job, prefix, redis_url, spawn_demo, status_of, terminate, watch,
};
use demo::Role;

#[tokio::test]
async fn a_job_goes_waiting_processing_done() {
    // The API alone first: the job waits; then a worker (another instance, same Redis prefix
    // and endpoint) takes it.
    let cfg = config("lifecycle");
    let api = demo::start(cfg.clone(), Role::Api).await.unwrap();
    let addr = api.addr.unwrap();
    let id = post_job(addr, "hello").await;
    assert_eq!(status_of(addr, &id).await["status"], "waiting");
    let endpoint = api.sqs_endpoint.clone().unwrap();
    let worker = demo::start_with_sdk_config(
        cfg,
        Role::Worker,
        sqs_local::sdk_config_for(&endpoint),
        Some(endpoint),
        None,
    )
    .await
    .unwrap();
    let (seen, job) = watch(addr, &id, Duration::from_secs(20), "done").await;
    assert_eq!(seen, ["waiting", "processing", "done"]);
    assert!(job["updated_at_ms"].as_u64() >= job["created_at_ms"].as_u64());
    assert_eq!(job["attempts"], 1);
    assert!(job.get("error").is_none());
    worker.stop().await;
    api.stop().await;
}

#[tokio::test]
async fn a_failing_job_is_dead_lettered_and_a_slow_one_retried_with_the_reason() {
    let mut cfg = config("errors");
    cfg.job_timeout = Duration::from_millis(300);
    cfg.job_duration = Duration::from_millis(100);
    let demo = demo::start(cfg, Role::All).await.unwrap();
    let addr = demo.addr.unwrap();
    let failing = post_job(addr, "please fail").await;
    let slow = post_job(addr, "a slow one").await;
    // Non-retryable: forwarded to the dead-letter queue at once.
    let (_, job) = watch(addr, &failing, Duration::from_secs(20), "dead_lettered").await;
    assert_eq!(job["error"], "the job's message asked it to fail");
    assert_eq!(job["attempts"], 1);
    // A timeout is retried (after the 30 s visibility timeout): not an error yet.
    let (seen, job) = watch(addr, &slow, Duration::from_secs(20), "retrying").await;
    assert!(!seen.contains(&"error".to_owned()), "{seen:?}");
    assert_eq!(job["error"], "timed out after 300 ms and was cancelled");
    assert_eq!(job["attempts"], 1);
    let (code, body) = http(addr, "GET", &format!("/test/{failing}/status"), None).await;
    assert_eq!(
        (code, body["status"].as_str()),
        (200, Some("dead_lettered"))
    );
    demo.stop().await;
}

#[tokio::test]
async fn a_hundred_concurrent_jobs_all_reach_done() {
    let demo = demo::start(config("hundred"), Role::All).await.unwrap();
    let addr = demo.addr.unwrap();
    let posts = (0..100).map(|i| async move { post_job(addr, &format!("job {i}")).await });
    let ids = futures_join_all(posts).await;
    for id in &ids {
        watch(addr, id, Duration::from_secs(60), "done").await;
    }
    let (code, health) = http(addr, "GET", "/health", None).await;
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["redis"], "ok");
    assert_eq!(health["sqs"], "ok");
    assert_eq!(health["consumer"][0]["processed"], 100);
    assert_eq!(health["consumer"][0]["failed"], 0);
    demo.stop().await;
}

async fn futures_join_all<F: std::future::Future<Output = String> + Send + 'static>(
    fs: impl Iterator<Item = F>,
) -> Vec<String> {
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn bad_input_gets_json_errors() {
    let demo = demo::start(config("badinput"), Role::Api).await.unwrap();
    let addr = demo.addr.unwrap();
    let (code, body) = http(addr, "POST", "/jobs", Some("not json")).await;
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap().contains("JSON"), "{body}");
    let (code, body) = http(addr, "POST", "/jobs", Some(r#"{"message":"   "}"#)).await;
    assert_eq!(code, 400);
    assert!(
        body["error"].as_str().unwrap().contains("message"),
        "{body}"
    );
    let (code, _) = http(addr, "POST", "/jobs", Some("{}")).await;
    assert_eq!(code, 400);
    let huge = serde_json::json!({ "message": "x".repeat(1_100_000) }).to_string();
    let (code, body) = http(addr, "POST", "/jobs", Some(&huge)).await;
    assert_eq!(code, 413, "{body}");
    assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");
    let (code, body) = http(addr, "GET", "/jobs/no-such-job", None).await;
    assert_eq!(code, 404);
    assert!(body["error"].as_str().unwrap().contains("no-such-job"));
    let (code, body) = http(addr, "GET", "/openapi.json", None).await;
    assert_eq!(code, 200);
    assert!(
        body["paths"]["/jobs/{id}"].is_object(),
        "the OpenAPI document lists the routes"
    );
    assert!(body["paths"]["/dlq/redrive"]["post"].is_object(), "{body}");
    assert_eq!(
        body["components"]["schemas"]["Status"]["enum"],
        serde_json::json!([
            "waiting",
            "processing",
            "retrying",
            "done",
            "error",
            "dead_lettered"
        ])
    );
    assert!(
        body["components"]["schemas"]["Job"]["properties"]["attempts"].is_object(),
        "{body}"
    );
    demo.stop().await;
}

#[tokio::test]
async fn redis_unreachable_answers_503() {
    let mut cfg = config("noredis");
    cfg.redis_url = Some("redis://127.0.0.1:1".to_owned());
    let demo = demo::start(cfg, Role::Api).await.unwrap();
    let addr = demo.addr.unwrap();
    let (code, body) = http(addr, "POST", "/jobs", Some(r#"{"message":"hi"}"#)).await;
    assert_eq!(code, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("Redis"), "{body}");
    let (code, _) = http(addr, "GET", "/jobs/anything", None).await;
    assert_eq!(code, 503);
    let (code, health) = http(addr, "GET", "/health", None).await;
    assert_eq!(code, 503);
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["sqs"], "ok");
    demo.stop().await;
}

#[tokio::test]
async fn api_and_worker_as_separate_processes_complete_a_job_and_drain_on_sigterm() {
    let sqs_port = free_port();
    let prefix = prefix("processes");
    let common = vec![
        ("REDIS_URL", redis_url()),
        ("REDIS_KEY_PREFIX", prefix),
        ("JOB_DURATION_MS", "1500".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let mut api_env = common.clone();
    api_env.push(("PORT", "0".to_owned()));
    api_env.push(("SQS_LOCAL_PORT", sqs_port.to_string()));
    let (mut api, line) = spawn_demo(&["api"], &api_env, "listening on http://").await;
    let addr: SocketAddr = line
        .trim_start_matches("listening on http://")
        .trim()
        .parse()
        .unwrap();
    let mut worker_env = common;
    worker_env.extend([
        (
            "AWS_ENDPOINT_URL_SQS",
            format!("http://127.0.0.1:{sqs_port}"),
        ),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
    ]);
    let (mut worker, _) = spawn_demo(&["worker"], &worker_env, "worker running").await;
    let id = post_job(addr, "from another process").await;
    watch(addr, &id, Duration::from_secs(30), "processing").await;
    // SIGTERM while the job runs: the worker finishes it before exiting.
    let status = terminate(&mut worker).await;
    assert!(status.success(), "the worker exits cleanly: {status}");
    assert_eq!(
        status_of(addr, &id).await["status"],
        "done",
        "drained, not abandoned"
    );
    let status = terminate(&mut api).await;
    assert!(status.success(), "the API exits cleanly: {status}");
}

#[tokio::test]
async fn a_job_completes_against_the_reference_endpoint() {
    let Ok(endpoint) = std::env::var("SQS_REFERENCE_ENDPOINT") else {
        eprintln!("SQS_REFERENCE_ENDPOINT is not set: LocalStack run skipped");
        return;
    };
    let cfg = config("localstack");
    let demo = demo::start_with_sdk_config(
        cfg,
        Role::All,
        sqs_local::sdk_config_for(&endpoint),
        Some(endpoint),
        None,
    )
    .await
    .unwrap();
    let addr = demo.addr.unwrap();
    let id = post_job(addr, "on localstack").await;
    let (seen, _) = watch(addr, &id, Duration::from_secs(30), "done").await;
    assert!(seen.ends_with(&["done".to_owned()]));
    demo.stop().await;
}
