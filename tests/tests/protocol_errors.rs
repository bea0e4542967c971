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

/// Reads until the server closes the connection, for at most `bound`; returns what was read,
/// or `None` when the connection was still open at the bound.
async fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> Option<String> {
    let mut out = Vec::new();
    match tokio::time::timeout(bound, stream.read_to_end(&mut out)).await {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_connection_that_stalls_in_its_headers_is_closed() {
    let server = LocalSqs::builder()
        .read_timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let started = std::time::Instant::now();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AmazonSQS.Lis")
        .await
        .unwrap();
    let text = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("the server closed the connection");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "closed by the timeout, not at once: {:?} {text:?}",
        started.elapsed()
    );
    // An idle kept-alive connection is closed the same way.
    let mut idle = TcpStream::connect(server.addr()).await.unwrap();
    assert!(
        read_until_closed(&mut idle, Duration::from_secs(10))
            .await
            .is_some_and(|t| t.is_empty()),
        "an idle connection is closed without a response"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_whose_body_stalls_gets_a_timeout_and_is_closed() {
    let server = LocalSqs::builder()
        .read_timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let head = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AmazonSQS.ListQueues\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 100\r\n\r\n{\"Queue";
    stream.write_all(head.as_bytes()).await.unwrap();
    let text = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("the server closed the connection");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("RequestTimeout"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_limit_wait_to_be_served() {
    let server = LocalSqs::builder()
        .max_connections(1)
        .read_timeout(Duration::from_secs(30))
        .start()
        .await
        .unwrap();
    let mut first = TcpStream::connect(server.addr()).await.unwrap();
    // The first connection holds the only slot once it has been served a request.
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nX-Amz-Target: AmazonSQS.ListQueues\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{{}}",
        server.addr()
    );
    first.write_all(request.as_bytes()).await.unwrap();
    let mut buf = [0u8; 12];
    first.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");

    let mut second = TcpStream::connect(server.addr()).await.unwrap();
    let closing = request.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
    second.write_all(closing.as_bytes()).await.unwrap();
    assert!(
        read_until_closed(&mut second, Duration::from_millis(500))
            .await
            .is_none(),
        "not served while the first connection holds the slot"
    );
    drop(first);
    let text = read_until_closed(&mut second, Duration::from_secs(10))
        .await
        .expect("served once the first connection closed");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    server.shutdown().await;
}

/// The `QueueUrl` of a raw CreateQueue request sent with `host` as its Host header.
async fn queue_url_with_host(server: &LocalSqs, host: &str, name: &str) -> String {
    let body = format!(r#"{{"QueueName":"{name}"}}"#);
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nX-Amz-Target: AmazonSQS.CreateQueue\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let text = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("a response");
    let json = text.split("\r\n\r\n").nth(1).expect("a body");
    let value: serde_json::Value = serde_json::from_str(json).expect("JSON");
    value["QueueUrl"].as_str().expect("a QueueUrl").to_owned()
}

#[tokio::test]
async fn queue_urls_name_the_server_not_the_host_header() {
    let server = LocalSqs::start().await.unwrap();
    let url = queue_url_with_host(&server, "attacker.example:80", "hosted").await;
    assert_eq!(
        url,
        format!("{}/000000000000/hosted", server.endpoint_url())
    );
    server.shutdown().await;

    let server = LocalSqs::builder()
        .advertised_url("http://sqs.internal:9324/")
        .start()
        .await
        .unwrap();
    let url = queue_url_with_host(&server, "attacker.example:80", "advertised").await;
    assert_eq!(url, "http://sqs.internal:9324/000000000000/advertised");
    // The advertised URL is the one clients use; the server still finds its queue by name.
    let client = server.client();
    client
        .send_message()
        .queue_url(&url)
        .message_body("via the advertised URL")
        .send()
        .await
        .unwrap();
    server.shutdown().await;
}
