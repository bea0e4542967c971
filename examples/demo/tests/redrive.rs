//! `POST /dlq/redrive` moves the dead-letter queue's messages back to the jobs queue, and the
//! worker runs them again: against sqs-local and, when `SQS_REFERENCE_ENDPOINT` is set,
//! LocalStack.

mod common;

use std::time::Duration;

use common::{config, http, post_job, queue_depth, sqs_client, status_of, wait_for, watch};
use demo::Role;

async fn start(test: &str, prefix: &str, role: Role, endpoint: &str) -> demo::Demo {
    let mut cfg = config(test);
    cfg.key_prefix = prefix.to_owned();
    demo::start_with_sdk_config(
        cfg,
        role,
        sqs_local::sdk_config_for(endpoint),
        Some(endpoint.to_owned()),
        None,
    )
    .await
    .unwrap()
}

async fn depths(client: &aws_sdk_sqs::Client) -> (u64, u64) {
    (
        queue_depth(client, "jobs").await,
        queue_depth(client, "jobs-dlq").await,
    )
}

/// Deletes every message of `queue`, when it exists: a reference endpoint keeps the queues of
/// earlier runs, and redrive moves everything in the dead-letter queue.
async fn drain(client: &aws_sdk_sqs::Client, queue: &str) {
    let Ok(out) = client.get_queue_url().queue_name(queue).send().await else {
        return;
    };
    let url = out.queue_url.unwrap();
    loop {
        let received = client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .send()
            .await
            .unwrap();
        if received.messages().is_empty() && queue_depth(client, queue).await == 0 {
            return;
        }
        for m in received.messages() {
            client
                .delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

async fn redrive_brings_a_dead_letter_back(endpoint: &str, test: &str) {
    let prefix = common::prefix(test);
    let client = sqs_client(endpoint);
    drain(&client, "jobs").await;
    drain(&client, "jobs-dlq").await;

    // A worker dead-letters a failing job.
    let all = start(test, &prefix, Role::All, endpoint).await;
    let addr = all.addr.unwrap();
    let id = post_job(addr, "please fail").await;
    let (_, job) = watch(addr, &id, Duration::from_secs(30), "dead_lettered").await;
    let dead_at = job["updated_at_ms"].as_u64().unwrap();
    all.stop().await;
    wait_for("the job in jobs-dlq", Duration::from_secs(20), || {
        let client = client.clone();
        async move { (depths(&client).await == (0, 1)).then_some(()) }
    })
    .await;

    // The API alone redrives it: back in the jobs queue, nothing takes it yet.
    let api = start(test, &prefix, Role::Api, endpoint).await;
    let addr = api.addr.unwrap();
    let (code, body) = http(addr, "POST", "/dlq/redrive", None).await;
    assert_eq!(code, 202, "{body}");
    assert!(
        !body["task_handle"].as_str().unwrap_or("").is_empty(),
        "{body}"
    );
    assert!(
        body["source_arn"].as_str().unwrap().ends_with(":jobs-dlq"),
        "{body}"
    );
    assert!(
        body["destination_arn"].as_str().unwrap().ends_with(":jobs"),
        "{body}"
    );
    wait_for(
        "the job moved back to jobs",
        Duration::from_secs(30),
        || {
            let client = client.clone();
            async move { (depths(&client).await == (1, 0)).then_some(()) }
        },
    )
    .await;
    assert_eq!(status_of(addr, &id).await["status"], "dead_lettered");

    // A worker runs it again; it fails again and is dead-lettered again.
    let worker = start(test, &prefix, Role::Worker, endpoint).await;
    wait_for("the job ran again", Duration::from_secs(30), || async {
        let job = status_of(addr, &id).await;
        (job["status"] == "dead_lettered" && job["updated_at_ms"].as_u64().unwrap() > dead_at)
            .then_some(())
    })
    .await;
    worker.stop().await;
    wait_for("the job in jobs-dlq again", Duration::from_secs(20), || {
        let client = client.clone();
        async move { (depths(&client).await == (0, 1)).then_some(()) }
    })
    .await;
    api.stop().await;
}

#[tokio::test]
async fn redrive_brings_a_dead_letter_back_on_sqs_local() {
    let server = sqs_local::LocalSqs::start().await.unwrap();
    redrive_brings_a_dead_letter_back(&server.endpoint_url(), "redrive-local").await;
    server.shutdown().await;
}

#[tokio::test]
async fn redrive_brings_a_dead_letter_back_on_the_reference_endpoint() {
    let Ok(endpoint) = std::env::var("SQS_REFERENCE_ENDPOINT") else {
        eprintln!("SQS_REFERENCE_ENDPOINT is not set: LocalStack run skipped");
        return;
    };
    redrive_brings_a_dead_letter_back(&endpoint, "redrive-reference").await;
}
