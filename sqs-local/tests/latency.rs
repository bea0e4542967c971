//! The latency option on a running server: a delayed operation takes at least its delay, and
//! other operations are not delayed by it.

use std::time::{Duration, Instant};

use sqs_local::{Delay, LocalSqs, Operation};

#[tokio::test]
async fn a_receive_takes_at_least_its_configured_latency() {
    let receive = Duration::from_millis(120);
    let latency = sqs_local::Latency::parse("receive=120ms,send=30ms..40ms").unwrap();
    assert_eq!(
        latency.delay(Operation::ReceiveMessage),
        Delay::fixed(receive)
    );
    let server = LocalSqs::builder()
        .latency(latency)
        .queue("jobs")
        .start()
        .await
        .unwrap();
    let client = server.client();
    let url = client
        .get_queue_url()
        .queue_name("jobs")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();

    let start = Instant::now();
    client
        .send_message()
        .queue_url(&url)
        .message_body("hello")
        .send()
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(30));

    // No wait time: without latency the receive would return at once.
    let start = Instant::now();
    let out = client
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(0)
        .send()
        .await
        .unwrap();
    let took = start.elapsed();
    assert_eq!(out.messages().len(), 1);
    assert_eq!(out.messages()[0].body(), Some("hello"));
    assert!(took >= receive, "the receive took {took:?}");

    // An empty receive is delayed too.
    let start = Instant::now();
    let out = client
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(0)
        .send()
        .await
        .unwrap();
    assert!(out.messages().is_empty());
    assert!(start.elapsed() >= receive);
    assert_eq!(server.stats().calls(Operation::ReceiveMessage), 2);
    server.shutdown().await;
}
