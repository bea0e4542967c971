//! sqs-local's builder creates queues with their attributes and dead-letter queues, so a test
//! needs no `CreateQueue` calls; a bad attribute fails `start` naming the queue.

use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use sqs_local::{LocalSqs, QueueSpec};

async fn attributes(client: &aws_sdk_sqs::Client, queue: &str) -> (String, Vec<(String, String)>) {
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
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let mut attrs: Vec<(String, String)> = out
        .attributes()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
        .collect();
    attrs.sort();
    (url, attrs)
}

fn get<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn queues_are_created_with_attributes_and_dead_letter_queues() {
    let server = LocalSqs::builder()
        .queue_spec(QueueSpec::new("orders-dlq.fifo"))
        .queue_spec(
            QueueSpec::new("jobs")
                .visibility_timeout(Duration::from_secs(7))
                .delay(Duration::from_secs(0))
                .dead_letter_queue("jobs-dlq", 2),
        )
        .queue_spec(
            QueueSpec::new("orders.fifo")
                .content_based_deduplication()
                .dead_letter_queue("orders-dlq.fifo", 5),
        )
        .start()
        .await
        .unwrap();
    let client = server.client();
    let (jobs, attrs) = attributes(&client, "jobs").await;
    assert_eq!(get(&attrs, "VisibilityTimeout"), Some("7"));
    let (_, dlq_attrs) = attributes(&client, "jobs-dlq").await;
    let dlq_arn = get(&dlq_attrs, "QueueArn").unwrap().to_owned();
    let redrive: serde_json::Value =
        serde_json::from_str(get(&attrs, "RedrivePolicy").unwrap()).unwrap();
    assert_eq!(redrive["deadLetterTargetArn"], dlq_arn.as_str());
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "2"
    );
    let (_, fifo) = attributes(&client, "orders.fifo").await;
    assert_eq!(get(&fifo, "FifoQueue"), Some("true"));
    assert_eq!(get(&fifo, "ContentBasedDeduplication"), Some("true"));
    assert!(
        get(&fifo, "RedrivePolicy")
            .unwrap()
            .contains("orders-dlq.fifo")
    );

    // The redrive policy works: the third receive moves the message to jobs-dlq.
    client
        .send_message()
        .queue_url(&jobs)
        .message_body("poison")
        .send()
        .await
        .unwrap();
    for expected in [1, 2] {
        let out = client
            .receive_message()
            .queue_url(&jobs)
            .visibility_timeout(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap();
        let count = out.messages()[0]
            .attributes()
            .unwrap()
            .get(&MessageSystemAttributeName::ApproximateReceiveCount)
            .unwrap()
            .clone();
        assert_eq!(count, expected.to_string());
    }
    let out = client
        .receive_message()
        .queue_url(&jobs)
        .send()
        .await
        .unwrap();
    assert!(
        out.messages().is_empty(),
        "moved, not received a third time"
    );
    let dlq_url = client
        .get_queue_url()
        .queue_name("jobs-dlq")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let out = client
        .receive_message()
        .queue_url(dlq_url)
        .send()
        .await
        .unwrap();
    assert_eq!(out.messages()[0].body(), Some("poison"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_bad_attribute_fails_start_naming_the_queue() {
    let err = LocalSqs::builder()
        .queue_spec(QueueSpec::new("bad").attribute("VisibilityTimeout", "99999"))
        .start()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("sqs-local could not create queue \"bad\": ")
            && text.contains("VisibilityTimeout"),
        "{text}"
    );
}
