//! Errors keep their typed sources and name what is at fault; the Producer refuses what SQS
//! would refuse, naming the message and the field, instead of dropping or clamping it.

use std::time::Duration;

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::types::MessageAttributeValue;
use sqs_handler::{BuildError, OutgoingMessage, Producer, ProducerError, SqsConsumer};
use sqs_handler_tests::Endpoint;

/// An endpoint where nothing listens: a port that was free a moment ago.
fn unreachable_config() -> aws_config::SdkConfig {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = sqs_local::sdk_config_for(&format!("http://127.0.0.1:{port}"));
    // One attempt: the test is about the error, not the SDK's retries.
    config
        .into_builder()
        .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
        .build()
}

#[tokio::test]
async fn sdk_errors_reach_the_user_typed() {
    let config = unreachable_config();
    let err = Producer::new(&config)
        .send("jobs", OutgoingMessage::new("x"))
        .await
        .unwrap_err();
    let ProducerError::Sqs {
        operation, source, ..
    } = &err
    else {
        panic!("expected ProducerError::Sqs, got {err:?}");
    };
    assert_eq!(*operation, "GetQueueUrl");
    let sdk = source
        .downcast_ref::<SdkError<GetQueueUrlError, HttpResponse>>()
        .expect("the SDK's own error as the source");
    assert!(matches!(sdk, SdkError::DispatchFailure(_)), "{sdk:?}");
    assert!(
        err.to_string()
            .contains("GetQueueUrl to queue \"jobs\" failed: dispatch failure"),
        "the text keeps the SDK's detail: {err}"
    );

    let err = SqsConsumer::builder(&config)
        .discover(false)
        .handler("jobs", || async {})
        .build()
        .await
        .unwrap_err();
    let BuildError::Sqs { source, queue, .. } = &err else {
        panic!("expected BuildError::Sqs, got {err:?}");
    };
    assert_eq!(queue, "jobs");
    assert!(
        source
            .downcast_ref::<SdkError<GetQueueUrlError, HttpResponse>>()
            .is_some(),
        "{source:?}"
    );
}

#[tokio::test]
async fn the_producer_refuses_what_sqs_would_naming_the_field() {
    let ep = Endpoint::local().await;
    ep.create_queue("refused", &[]).await;
    let producer = Producer::with_client(ep.client.clone());
    let number = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("Number")
            .string_value(v)
            .build()
            .unwrap()
    };
    let mut eleven = OutgoingMessage::new("eleven attributes");
    for i in 0..11 {
        eleven = eleven.string_attribute(format!("a{i}"), "v");
    }
    let messages = [
        OutgoingMessage::new("ok").delay(Duration::from_secs(900)),
        OutgoingMessage::new("too late").delay(Duration::from_secs(901)),
        OutgoingMessage::new("not whole").delay(Duration::from_millis(1500)),
        OutgoingMessage::new("bad name").attribute("AWS.reserved", number("1")),
        OutgoingMessage::new("empty").string_attribute("note", ""),
        eleven,
    ];
    let report = producer
        .send_batch(&ep.name("refused"), messages)
        .await
        .unwrap();
    assert_eq!(report.sent.iter().map(|s| s.index).collect::<Vec<_>>(), [0]);
    let failed: Vec<(usize, &str, &str)> = report
        .failed
        .iter()
        .map(|f| (f.index, f.code.as_str(), f.message.as_str()))
        .collect();
    assert_eq!(
        failed,
        [
            (
                1,
                "InvalidParameterValue",
                "message 1: delay is 901s; SQS takes whole seconds from 0 to 900"
            ),
            (
                2,
                "InvalidParameterValue",
                "message 2: delay is 1.5s; SQS takes whole seconds from 0 to 900"
            ),
            (
                3,
                "InvalidParameterValue",
                "message 3: attribute \"AWS.reserved\": names starting with AWS. or Amazon. are reserved"
            ),
            (
                4,
                "InvalidParameterValue",
                "message 4: attribute \"note\" has no value; SQS refuses empty values"
            ),
            (
                5,
                "InvalidParameterValue",
                "message 5: 11 message attributes; SQS takes at most 10"
            ),
        ]
    );
    // One message: the same check, as an error naming the queue and the field.
    let err = producer
        .send(
            &ep.name("refused"),
            OutgoingMessage::new("x").delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProducerError::InvalidMessage { reason, .. } if reason.contains("delay is 3600s")),
        "{err:?}"
    );
}
