//! Bad requests at the HTTP level get AWS-style errors, and the server keeps serving.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use sqs_local::LocalSqs;

/// Sends one raw HTTP/1.1 request and returns (status, headers and body as text).
async fn raw(server: &LocalSqs, target: Option<&str>, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let mut head = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n",
        server.addr(),
        body.len()
    );
    if let Some(t) = target {
        head.push_str(&format!("X-Amz-Target: {t}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    // A body over the limit may be refused before it is all read.
    let _ = stream.write_all(body).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn malformed_requests_get_aws_errors_and_the_server_keeps_serving() {
    let server = LocalSqs::builder().queue("q").start().await.unwrap();

    let (status, text) = raw(&server, Some("AmazonSQS.SendMessage"), b"{not json").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("SerializationException"), "{text}");

    let (status, text) = raw(&server, Some("AmazonSQS.NoSuchThing"), b"{}").await;
    assert_eq!(status, 400);
    assert!(text.contains("InvalidAction"), "{text}");

    let (status, text) = raw(&server, None, b"Action=ListQueues").await;
    assert_eq!(status, 400);
    assert!(text.contains("X-Amz-Target"), "{text}");

    let (status, text) = raw(
        &server,
        Some("AmazonSQS.SendMessage"),
        br#"{"MessageBody":"x"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        text.contains("MissingParameter") && text.contains("QueueUrl"),
        "{text}"
    );
    assert!(
        text.to_ascii_lowercase()
            .contains("x-amzn-query-error: missingparameter;sender"),
        "{text}"
    );

    let (status, text) = raw(&server, Some("AmazonSQS.SendMessage"), br#"{"QueueUrl":7}"#).await;
    assert_eq!(status, 400, "{text}");

    let big = vec![b' '; 5 * 1024 * 1024];
    let (status, text) = raw(&server, Some("AmazonSQS.ListQueues"), &big).await;
    assert_eq!(status, 413, "{text}");

    // Still serving.
    let client = server.client();
    let url = client
        .get_queue_url()
        .queue_name("q")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    client
        .send_message()
        .queue_url(&url)
        .message_body("still here")
        .send()
        .await
        .unwrap();
    let got = client
        .receive_message()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(got.messages()[0].body(), Some("still here"));
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_long_polls_and_state_survives_a_restart() {
    let server = LocalSqs::builder().queue("keep").start().await.unwrap();
    let addr = server.addr();
    let client = server.client();
    let url = client
        .get_queue_url()
        .queue_name("keep")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    client
        .send_message()
        .queue_url(&url)
        .message_body("persisted")
        .send()
        .await
        .unwrap();
    let other = client
        .create_queue()
        .queue_name("idle")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let poll = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .receive_message()
                .queue_url(&other)
                .wait_time_seconds(20)
                .send()
                .await
        }
    });
    let state = server.state().clone();
    let started = std::time::Instant::now();
    server.shutdown().await;
    let _ = poll.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown waited {:?} for a long poll",
        started.elapsed()
    );

    let again = LocalSqs::builder()
        .bind(addr)
        .state(state)
        .start()
        .await
        .unwrap();
    let got = again
        .client()
        .receive_message()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(got.messages()[0].body(), Some("persisted"));
    again.shutdown().await;
}

#[tokio::test]
async fn stats_endpoint_counts_calls_by_operation() {
    let server = LocalSqs::builder().queue("counted").start().await.unwrap();
    let client = server.client();
    let url = client
        .get_queue_url()
        .queue_name("counted")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for _ in 0..3 {
        client
            .send_message()
            .queue_url(&url)
            .message_body("x")
            .send()
            .await
            .unwrap();
    }
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let req = format!(
        "GET /_sqs-local/stats HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["calls"]["SendMessage"], 3);
    assert_eq!(json["calls"]["GetQueueUrl"], 1);
    assert_eq!(json["total"], 4);
    server.shutdown().await;
}
