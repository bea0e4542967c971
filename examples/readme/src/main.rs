//! A worker for a `jobs` queue: the program the README's "Using sqs-handler" section quotes.
//!
//! Run with `cargo run -p example-readme`
//!
//! It starts sqs-local in process, queues three jobs (one asks to fail), and stops once all
//! three have run, or on Ctrl-C or SIGTERM. `Job`, `JobStore` and `JobError` are in `jobs.rs`.

mod jobs;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use sqs_handler::{
    BoxError, Json, ProcessingError, Producer, QueueOptions, SqsConsumer, SqsConsumerBuilder,
    State, shutdown_signal, sqs_consumer_event_handler, sqs_message_handler,
};

use jobs::{Job, JobError, JobStore, Status};

#[sqs_message_handler("jobs")] // or env = "JOBS_QUEUE", default = "jobs"
async fn run_job(Json(job): Json<Job>, State(store): State<JobStore>) -> Result<(), JobError> {
    store.process(job).await // Ok deletes; Err leaves it for redelivery
}

#[sqs_consumer_event_handler("jobs", processing_error)]
async fn on_failed(event: ProcessingError, State(store): State<JobStore>) {
    store.mark_failed(event.message.body(), &event.error).await;
}

fn consumer(aws_config: &aws_config::SdkConfig, store: JobStore) -> SqsConsumerBuilder {
    let options = QueueOptions::default()
        .concurrency(64) // messages in flight at most
        .handler_timeout(Duration::from_secs(60)) // then cancelled, and retried
        .wait_time(Duration::from_secs(1)); // long poll (default 20 s); shutdown lets one finish
    SqsConsumer::builder(aws_config) // discovers the handlers above
        .queue("jobs", options)
        .state(store)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    // SQS in process, with the queue created. Against real SQS, use instead:
    // let aws_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sqs = sqs_local::LocalSqs::builder().queue("jobs").start().await?;
    let aws_config = sqs.sdk_config();

    // Ctrl-C or SIGTERM stops it early: running jobs finish, the rest is released.
    for (id, status) in run(&aws_config, shutdown_signal()).await? {
        println!("{id}: {status:?}");
    }
    Ok(())
}

/// Queues three jobs (one asks to fail), then consumes until all three have run or `stop`
/// completes. Returns each job's status.
async fn run(
    aws_config: &aws_config::SdkConfig,
    stop: impl Future<Output = ()>,
) -> Result<BTreeMap<String, Status>, BoxError> {
    let producer = Producer::new(aws_config);
    for (id, input) in [
        ("job-1", "resize"),
        ("job-2", "encode"),
        ("job-3", "please fail"),
    ] {
        let job = Job {
            id: id.into(),
            input: input.into(),
        };
        producer.send_json("jobs", &job).await?;
    }

    let store = JobStore::default();
    let all_run = store.wait_until_settled(3);
    consumer(aws_config, store.clone())
        .build()
        .await? // resolves queue URLs, checks registrations
        .run_until(async {
            tokio::select! {
                () = all_run => {}
                () = stop => {}
            }
        })
        .await?; // then drains: running jobs finish, deletes are flushed
    Ok(store.statuses())
}

#[cfg(test)]
mod tests {
    /// The README quotes this file from `use std::time::Duration;` to the end of `consumer`:
    /// the quote must stay word for word what compiles here.
    #[test]
    fn the_readme_quotes_this_file() {
        let source = include_str!("main.rs");
        let start = source.find("use std::time::Duration;").unwrap();
        let consumer = source.find("fn consumer(").unwrap();
        let end = consumer + source[consumer..].find("\n}\n").unwrap() + 3;
        let quoted = &source[start..end];
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(quoted),
            "README.md's \"Using sqs-handler\" must quote examples/readme/src/main.rs:\n{quoted}"
        );
    }

    use aws_sdk_sqs::types::QueueAttributeName;

    use super::*;

    #[tokio::test]
    async fn runs_the_jobs_and_leaves_the_failed_one_for_redelivery() {
        let sqs = sqs_local::LocalSqs::builder()
            .queue("jobs")
            .start()
            .await
            .unwrap();
        let aws_config = sqs.sdk_config();
        let run = run(&aws_config, std::future::pending());
        let statuses = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the example finishes by itself")
            .unwrap();
        let statuses: Vec<(&str, &Status)> = statuses.iter().map(|(k, v)| (&**k, v)).collect();
        assert_eq!(
            statuses,
            [
                ("job-1", &Status::Done),
                ("job-2", &Status::Done),
                (
                    "job-3",
                    &Status::Failed("job job-3 failed: its input asked it to fail".into())
                ),
            ]
        );
        assert_eq!(
            messages(&sqs, "jobs").await,
            (0, 1),
            "job-1 and job-2 deleted, job-3 in flight until its visibility timeout ends"
        );
    }

    /// (visible, in flight) messages of a queue.
    async fn messages(sqs: &sqs_local::LocalSqs, queue: &str) -> (u64, u64) {
        let client = sqs.client();
        let url = client
            .get_queue_url()
            .queue_name(queue)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let out = client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let count = |name| out.attributes().unwrap()[&name].parse().unwrap();
        (
            count(QueueAttributeName::ApproximateNumberOfMessages),
            count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }
}
