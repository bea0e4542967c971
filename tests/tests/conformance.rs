//! SQS semantics, checked through aws-sdk-sqs against sqs-local and (with
//! `SQS_REFERENCE_ENDPOINT`) against LocalStack. Timing checks allow for LocalStack's ~1 s timers.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use sqs_handler_tests::{Endpoint, conformance, wait_for};

fn sys(m: &Message, name: MessageSystemAttributeName) -> Option<String> {
    m.attributes().and_then(|a| a.get(&name)).cloned()
}

async fn count(ep: &Endpoint, url: &str, name: &str) -> u64 {
    ep.attribute(url, name).await.parse().unwrap_or(u64::MAX)
}

conformance!(queue_lifecycle, |ep: Endpoint| async move {
    let url = ep.create_queue("life", &[]).await;
    assert!(
        url.ends_with(&format!("/{}", ep.name("life"))),
        "queue URL {url} ends with the name"
    );
    // CreateQueue again with the same attributes is idempotent; different ones are refused.
    assert_eq!(ep.create_queue("life", &[]).await, url);
    let err = ep
        .client
        .create_queue()
        .queue_name(ep.name("life"))
        .attributes(QueueAttributeName::VisibilityTimeout, "7")
        .send()
        .await
        .expect_err("different attributes");
    assert!(err.into_service_error().is_queue_name_exists());

    let got = ep
        .client
        .get_queue_url()
        .queue_name(ep.name("life"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.queue_url(), Some(url.as_str()));
    let listed = ep
        .client
        .list_queues()
        .queue_name_prefix(ep.name("li"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.queue_urls(), std::slice::from_ref(&url));

    ep.client
        .delete_queue()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    let err = wait_for("the queue to be gone", Duration::from_secs(5), || async {
        ep.client
            .get_queue_url()
            .queue_name(ep.name("life"))
            .send()
            .await
            .err()
    })
    .await;
    assert!(err.into_service_error().is_queue_does_not_exist());
    let err = ep
        .client
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_queue_does_not_exist());
});

conformance!(
    list_queues_pages_with_next_token,
    |ep: Endpoint| async move {
        for name in ["page-a", "page-b", "page-c"] {
            ep.create_queue(name, &[]).await;
        }
        let prefix = ep.name("page-");
        let first = ep
            .client
            .list_queues()
            .queue_name_prefix(&prefix)
            .max_results(2)
            .send()
            .await
            .unwrap();
        assert_eq!(first.queue_urls().len(), 2);
        let token = first.next_token().expect("a second page").to_owned();
        let second = ep
            .client
            .list_queues()
            .queue_name_prefix(&prefix)
            .max_results(2)
            .next_token(token)
            .send()
            .await
            .unwrap();
        assert_eq!(second.queue_urls().len(), 1);
        assert!(second.next_token().is_none());
    }
);

#[tokio::test]
async fn a_huge_next_token_is_answered_not_crashed_on() {
    let ep = Endpoint::local().await;
    let out = ep
        .client
        .list_queues()
        .max_results(5)
        .next_token(usize::MAX.to_string())
        .send()
        .await
        .expect("an answer, not a crash");
    assert!(out.queue_urls().is_empty());
}

conformance!(invalid_queue_names_are_refused, |ep: Endpoint| async move {
    for bad in ["has space", "", &"x".repeat(81)] {
        let err = ep.client.create_queue().queue_name(bad).send().await;
        assert!(err.is_err(), "queue name {bad:?} must be refused");
    }
    // A FIFO name without the FifoQueue attribute, and FifoQueue on a standard name.
    let err = ep
        .client
        .create_queue()
        .queue_name(ep.name("std"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await;
    assert!(err.is_err());
});

conformance!(
    send_receive_delete_with_digests,
    |ep: Endpoint| async move {
        let url = ep.create_queue("basic", &[]).await;
        let sent = ep
            .client
            .send_message()
            .queue_url(&url)
            .message_body("hello world")
            .message_attributes(
                "kind",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("greeting")
                    .build()
                    .unwrap(),
            )
            .message_attributes(
                "n",
                MessageAttributeValue::builder()
                    .data_type("Number")
                    .string_value("42")
                    .build()
                    .unwrap(),
            )
            .message_attributes(
                "raw",
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(aws_sdk_sqs::primitives::Blob::new(vec![0u8, 1, 2, 255]))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            sent.md5_of_message_body(),
            Some("5eb63bbbe01eeed093cb22bb8f5acdc3")
        );
        let attrs_md5 = sent
            .md5_of_message_attributes()
            .expect("attribute digest")
            .to_owned();
        let got = ep.receive(&url, 10, 1).await;
        assert_eq!(got.len(), 1);
        let m = &got[0];
        assert_eq!(m.body(), Some("hello world"));
        assert_eq!(m.message_id(), sent.message_id());
        assert_eq!(m.md5_of_body(), Some("5eb63bbbe01eeed093cb22bb8f5acdc3"));
        assert_eq!(m.md5_of_message_attributes(), Some(attrs_md5.as_str()));
        let a = m.message_attributes().unwrap();
        assert_eq!(a["kind"].string_value(), Some("greeting"));
        assert_eq!(a["n"].data_type(), "Number");
        assert_eq!(
            a["raw"].binary_value().map(|b| b.as_ref().to_vec()),
            Some(vec![0u8, 1, 2, 255])
        );

        ep.delete(&url, m).await;
        // Deleting again with the same handle succeeds (idempotent).
        ep.delete(&url, m).await;
        assert!(ep.receive(&url, 10, 1).await.is_empty());
        assert_eq!(count(&ep, &url, "ApproximateNumberOfMessages").await, 0);
        assert_eq!(
            count(&ep, &url, "ApproximateNumberOfMessagesNotVisible").await,
            0
        );
    }
);

conformance!(
    message_attribute_digest_matches_known_value,
    |ep: Endpoint| async move {
        // The digest of one String attribute, as AWS computes it (computed independently with Python and LocalStack: a18cbb58…).
        let url = ep.create_queue("digest", &[]).await;
        let sent = ep
            .client
            .send_message()
            .queue_url(&url)
            .message_body("b")
            .message_attributes(
                "a",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("v")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            sent.md5_of_message_attributes(),
            Some("a18cbb58171ebf4ce88d9fb787f9210b")
        );
    }
);

conformance!(message_attribute_name_filters, |ep: Endpoint| async move {
    let url = ep.create_queue("filters", &[]).await;
    let v = |s: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(s)
            .build()
            .unwrap()
    };
    ep.client
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .message_attributes("app.one", v("1"))
        .message_attributes("app.two", v("2"))
        .message_attributes("other", v("3"))
        .send()
        .await
        .unwrap();
    let got = ep
        .client
        .receive_message()
        .queue_url(&url)
        .message_attribute_names("app.*")
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let m = &got.messages()[0];
    let names: BTreeSet<&str> = m
        .message_attributes()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, BTreeSet::from(["app.one", "app.two"]));
});

conformance!(
    system_attributes_by_both_parameters,
    |ep: Endpoint| async move {
        let url = ep.create_queue("sysattrs", &[]).await;
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body("x")
            .send()
            .await
            .unwrap();
        #[allow(deprecated)]
        let got = ep
            .client
            .receive_message()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::from("ApproximateReceiveCount"))
            .attribute_names(QueueAttributeName::from("SentTimestamp"))
            .visibility_timeout(0)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let m = &got.messages()[0];
        assert_eq!(
            sys(m, MessageSystemAttributeName::ApproximateReceiveCount).as_deref(),
            Some("1")
        );
        let sent: u64 = sys(m, MessageSystemAttributeName::SentTimestamp)
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            sent + 2000 >= before,
            "SentTimestamp {sent} is epoch milliseconds near {before}"
        );
        assert!(
            sys(m, MessageSystemAttributeName::SenderId).is_none(),
            "only what was asked for"
        );

        let got = ep
            .client
            .receive_message()
            .queue_url(&url)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let m = &got.messages()[0];
        assert_eq!(
            sys(m, MessageSystemAttributeName::ApproximateReceiveCount).as_deref(),
            Some("2")
        );
        assert!(sys(m, MessageSystemAttributeName::SenderId).is_some());
        assert!(
            sys(
                m,
                MessageSystemAttributeName::ApproximateFirstReceiveTimestamp
            )
            .is_some()
        );
    }
);

conformance!(
    visibility_timeout_hides_then_redelivers,
    |ep: Endpoint| async move {
        let url = ep.create_queue("vis", &[("VisibilityTimeout", "1")]).await;
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body("x")
            .send()
            .await
            .unwrap();
        let first = ep.receive(&url, 1, 1).await;
        assert_eq!(first.len(), 1);
        assert!(
            ep.receive(&url, 1, 0).await.is_empty(),
            "invisible while in flight"
        );
        assert_eq!(
            count(&ep, &url, "ApproximateNumberOfMessagesNotVisible").await,
            1
        );
        let again = ep.receive_n(&url, 1, Duration::from_secs(6)).await;
        assert_eq!(again.len(), 1, "redelivered after the visibility timeout");
        assert_eq!(again[0].message_id(), first[0].message_id());
        assert_eq!(
            sys(
                &again[0],
                MessageSystemAttributeName::ApproximateReceiveCount
            )
            .as_deref(),
            Some("2")
        );
        assert_ne!(
            again[0].receipt_handle(),
            first[0].receipt_handle(),
            "a new receipt handle per receive"
        );
    }
);

conformance!(
    receive_visibility_timeout_overrides_queue_default,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("visrecv", &[("VisibilityTimeout", "60")])
            .await;
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body("x")
            .send()
            .await
            .unwrap();
        let got = ep
            .client
            .receive_message()
            .queue_url(&url)
            .visibility_timeout(1)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        assert_eq!(got.messages().len(), 1);
        assert_eq!(ep.receive_n(&url, 1, Duration::from_secs(6)).await.len(), 1);
    }
);

conformance!(
    change_visibility_releases_and_extends,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("chvis", &[("VisibilityTimeout", "30")])
            .await;
        for i in 0..3 {
            ep.client
                .send_message()
                .queue_url(&url)
                .message_body(format!("m{i}"))
                .send()
                .await
                .unwrap();
        }
        let got = ep.receive_n(&url, 3, Duration::from_secs(5)).await;
        assert_eq!(got.len(), 3);
        // Release one now, extend one, keep one.
        ep.client
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(got[0].receipt_handle().unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
        let batch = ep
            .client
            .change_message_visibility_batch()
            .queue_url(&url)
            .entries(
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id("a")
                    .receipt_handle(got[1].receipt_handle().unwrap())
                    .visibility_timeout(120)
                    .build()
                    .unwrap(),
            )
            .entries(
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id("b")
                    .receipt_handle("not-a-handle")
                    .visibility_timeout(5)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            batch
                .successful()
                .iter()
                .map(|s| s.id())
                .collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(
            batch.failed().iter().map(|f| f.id()).collect::<Vec<_>>(),
            ["b"]
        );
        let again = ep.receive(&url, 10, 1).await;
        assert_eq!(again.len(), 1, "only the released message is visible");
        assert_eq!(again[0].message_id(), got[0].message_id());
    }
);

conformance!(
    invalid_receipt_handles_are_typed_errors,
    |ep: Endpoint| async move {
        let url = ep.create_queue("handles", &[]).await;
        let err = ep
            .client
            .delete_message()
            .queue_url(&url)
            .receipt_handle("garbage")
            .send()
            .await
            .unwrap_err();
        assert!(err.into_service_error().is_receipt_handle_is_invalid());
    }
);

conformance!(
    change_visibility_after_delete_fails,
    |ep: Endpoint| async move {
        let url = ep.create_queue("chdel", &[]).await;
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body("x")
            .send()
            .await
            .unwrap();
        let m = ep.receive(&url, 1, 1).await.remove(0);
        let handle = m.receipt_handle().unwrap();
        ep.delete(&url, &m).await;
        let err = ep
            .client
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(handle)
            .visibility_timeout(10)
            .send()
            .await;
        assert!(err.is_err(), "a deleted message's visibility cannot change");
    }
);

conformance!(
    long_poll_returns_when_a_message_arrives,
    |ep: Endpoint| async move {
        let url = ep.create_queue("longpoll", &[]).await;
        let client = ep.client.clone();
        let url2 = url.clone();
        let start = Instant::now();
        let poll = tokio::spawn(async move {
            client
                .receive_message()
                .queue_url(&url2)
                .wait_time_seconds(20)
                .send()
                .await
                .unwrap()
        });
        // The poll is waiting (or about to); the message must end it long before 20 s.
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body("wake")
            .send()
            .await
            .unwrap();
        let got = poll.await.unwrap();
        assert_eq!(got.messages().len(), 1);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "long poll returned in {:?}",
            start.elapsed()
        );
    }
);

conformance!(
    long_poll_waits_on_an_empty_queue,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("emptypoll", &[("ReceiveMessageWaitTimeSeconds", "1")])
            .await;
        let start = Instant::now();
        // No WaitTimeSeconds: the queue's ReceiveMessageWaitTimeSeconds applies.
        let got = ep
            .client
            .receive_message()
            .queue_url(&url)
            .send()
            .await
            .unwrap();
        assert!(got.messages().is_empty());
        assert!(
            start.elapsed() >= Duration::from_millis(900),
            "waited {:?}",
            start.elapsed()
        );
    }
);

conformance!(
    delay_seconds_per_message_and_per_queue,
    |ep: Endpoint| async move {
        let url = ep.create_queue("delay", &[]).await;
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body("later")
            .delay_seconds(2)
            .send()
            .await
            .unwrap();
        assert!(
            ep.receive(&url, 10, 0).await.is_empty(),
            "delayed message is not visible at once"
        );
        assert_eq!(
            count(&ep, &url, "ApproximateNumberOfMessagesDelayed").await,
            1
        );
        assert_eq!(ep.receive_n(&url, 1, Duration::from_secs(8)).await.len(), 1);

        let url = ep.create_queue("qdelay", &[("DelaySeconds", "2")]).await;
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body("later")
            .send()
            .await
            .unwrap();
        assert!(ep.receive(&url, 10, 0).await.is_empty());
        assert_eq!(ep.receive_n(&url, 1, Duration::from_secs(8)).await.len(), 1);
    }
);

conformance!(
    redrive_moves_to_dead_letter_queue,
    |ep: Endpoint| async move {
        let dlq = ep.create_queue("dlq", &[]).await;
        let dlq_arn = ep.arn(&dlq).await;
        let policy = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"2"}}"#);
        let src = ep.create_queue("src", &[("RedrivePolicy", &policy)]).await;
        let sent = ep
            .client
            .send_message()
            .queue_url(&src)
            .message_body("poison")
            .send()
            .await
            .unwrap();
        for attempt in 1..=2 {
            let got = ep
                .client
                .receive_message()
                .queue_url(&src)
                .visibility_timeout(0)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            assert_eq!(got.messages().len(), 1, "receive {attempt} of 2");
        }
        // The third receive from the source finds it over maxReceiveCount and moves it.
        assert!(
            ep.receive(&src, 10, 1).await.is_empty(),
            "not delivered a third time"
        );
        let moved = ep.receive_n(&dlq, 1, Duration::from_secs(8)).await;
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].body(), Some("poison"));
        assert_eq!(moved[0].message_id(), sent.message_id());
        assert_eq!(
            sys(
                &moved[0],
                MessageSystemAttributeName::DeadLetterQueueSourceArn
            ),
            Some(ep.arn(&src).await),
            "DeadLetterQueueSourceArn names the source"
        );
        assert!(ep.receive(&src, 10, 0).await.is_empty());

        let sources = ep
            .client
            .list_dead_letter_source_queues()
            .queue_url(&dlq)
            .send()
            .await
            .unwrap();
        assert_eq!(sources.queue_urls(), std::slice::from_ref(&src));
        let attr = ep.attribute(&src, "RedrivePolicy").await;
        assert!(
            attr.contains(&dlq_arn),
            "RedrivePolicy {attr} names the DLQ"
        );
    }
);

conformance!(
    queue_attributes_validate_and_round_trip,
    |ep: Endpoint| async move {
        let url = ep.create_queue("attrs", &[]).await;
        ep.client
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::VisibilityTimeout, "45")
            .attributes(QueueAttributeName::MessageRetentionPeriod, "60")
            .send()
            .await
            .unwrap();
        assert_eq!(ep.attribute(&url, "VisibilityTimeout").await, "45");
        assert_eq!(ep.attribute(&url, "MessageRetentionPeriod").await, "60");
        assert_eq!(ep.attribute(&url, "MaximumMessageSize").await, "1048576");
        let all = ep
            .client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let all = all.attributes().unwrap();
        for name in [
            "QueueArn",
            "CreatedTimestamp",
            "LastModifiedTimestamp",
            "ApproximateNumberOfMessages",
            "ReceiveMessageWaitTimeSeconds",
            "DelaySeconds",
        ] {
            assert!(
                all.contains_key(&QueueAttributeName::from(name)),
                "All includes {name}"
            );
        }
    }
);

conformance!(
    queue_attribute_ranges_are_enforced,
    skip_reference = "LocalStack 4.9 accepts out-of-range values in SetQueueAttributes (VisibilityTimeout=43201, MessageRetentionPeriod=59, ...) that AWS refuses with InvalidAttributeValue",
    |ep: Endpoint| async move {
        let url = ep.create_queue("ranges", &[]).await;
        for (name, bad) in [
            ("VisibilityTimeout", "43201"),
            ("MessageRetentionPeriod", "59"),
            ("DelaySeconds", "901"),
            ("MaximumMessageSize", "1023"),
            ("ReceiveMessageWaitTimeSeconds", "21"),
        ] {
            let r = ep
                .client
                .set_queue_attributes()
                .queue_url(&url)
                .attributes(QueueAttributeName::from(name), bad)
                .send()
                .await;
            assert!(r.is_err(), "{name}={bad} must be refused");
        }
        let r = ep
            .client
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::from("NoSuchAttribute"), "1")
            .send()
            .await;
        assert!(
            r.unwrap_err()
                .into_service_error()
                .is_invalid_attribute_name()
        );
    }
);

conformance!(maximum_message_size, |ep: Endpoint| async move {
    let url = ep
        .create_queue("size", &[("MaximumMessageSize", "1024")])
        .await;
    ep.client
        .send_message()
        .queue_url(&url)
        .message_body("x".repeat(1024))
        .send()
        .await
        .unwrap();
    let err = ep
        .client
        .send_message()
        .queue_url(&url)
        .message_body("x".repeat(1025))
        .send()
        .await;
    assert!(err.is_err(), "over MaximumMessageSize");
    let big = ep.create_queue("bigmsg", &[]).await;
    ep.client
        .send_message()
        .queue_url(&big)
        .message_body("y".repeat(1_048_576))
        .send()
        .await
        .unwrap();
    let got = ep.receive(&big, 1, 1).await;
    assert_eq!(got[0].body().map(str::len), Some(1_048_576));
});

conformance!(
    invalid_body_characters_are_refused,
    |ep: Endpoint| async move {
        let url = ep.create_queue("chars", &[]).await;
        let err = ep
            .client
            .send_message()
            .queue_url(&url)
            .message_body("bad \u{1} char")
            .send()
            .await
            .unwrap_err();
        assert!(err.into_service_error().is_invalid_message_contents());
    }
);

conformance!(batch_calls_report_each_entry, |ep: Endpoint| async move {
    let url = ep
        .create_queue("batch", &[("MaximumMessageSize", "1024")])
        .await;
    let entry = |id: &str, body: &str| {
        SendMessageBatchRequestEntry::builder()
            .id(id)
            .message_body(body)
            .build()
            .unwrap()
    };
    let out = ep
        .client
        .send_message_batch()
        .queue_url(&url)
        .entries(entry("ok1", "a"))
        .entries(entry("toolong", &"z".repeat(2000)))
        .entries(entry("ok2", "b"))
        .send()
        .await
        .unwrap();
    let ok: BTreeSet<&str> = out.successful().iter().map(|s| s.id()).collect();
    assert_eq!(ok, BTreeSet::from(["ok1", "ok2"]));
    assert_eq!(out.failed().len(), 1);
    assert_eq!(out.failed()[0].id(), "toolong");
    assert!(out.failed()[0].sender_fault());

    let dup = ep
        .client
        .send_message_batch()
        .queue_url(&url)
        .entries(entry("a", "1"))
        .entries(entry("a", "2"))
        .send()
        .await
        .unwrap_err();
    assert!(dup.into_service_error().is_batch_entry_ids_not_distinct());
    let mut many = ep.client.send_message_batch().queue_url(&url);
    for i in 0..11 {
        many = many.entries(entry(&format!("e{i}"), "x"));
    }
    assert!(
        many.send()
            .await
            .unwrap_err()
            .into_service_error()
            .is_too_many_entries_in_batch_request()
    );
    let bad_id = ep
        .client
        .send_message_batch()
        .queue_url(&url)
        .entries(entry("no spaces", "1"))
        .send()
        .await
        .unwrap_err();
    assert!(bad_id.into_service_error().is_invalid_batch_entry_id());
    let empty = ep
        .client
        .delete_message_batch()
        .queue_url(&url)
        .set_entries(Some(vec![]))
        .send()
        .await
        .unwrap_err();
    assert!(empty.into_service_error().is_empty_batch_request());

    let got = ep.receive_n(&url, 2, Duration::from_secs(5)).await;
    let del = ep
        .client
        .delete_message_batch()
        .queue_url(&url)
        .entries(
            DeleteMessageBatchRequestEntry::builder()
                .id("d1")
                .receipt_handle(got[0].receipt_handle().unwrap())
                .build()
                .unwrap(),
        )
        .entries(
            DeleteMessageBatchRequestEntry::builder()
                .id("d2")
                .receipt_handle("junk")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        del.successful().iter().map(|s| s.id()).collect::<Vec<_>>(),
        ["d1"]
    );
    assert_eq!(del.failed()[0].id(), "d2");
    assert_eq!(del.failed()[0].code(), "ReceiptHandleIsInvalid");
});

conformance!(batch_total_size_limit, |ep: Endpoint| async move {
    let url = ep.create_queue("batchsize", &[]).await;
    let mut req = ep.client.send_message_batch().queue_url(&url);
    for i in 0..3 {
        req = req.entries(
            SendMessageBatchRequestEntry::builder()
                .id(format!("e{i}"))
                .message_body("q".repeat(400_000))
                .build()
                .unwrap(),
        );
    }
    let err = req.send().await.unwrap_err();
    assert!(err.into_service_error().is_batch_request_too_long());
});

conformance!(
    fifo_requires_group_and_keeps_order,
    |ep: Endpoint| async move {
        let url = ep.create_queue("order.fifo", &[]).await;
        let err = ep
            .client
            .send_message()
            .queue_url(&url)
            .message_body("x")
            .message_deduplication_id("d")
            .send()
            .await;
        assert!(err.is_err(), "MessageGroupId is required on a FIFO queue");
        let mut seqs = Vec::new();
        for i in 0..6 {
            let group = if i % 2 == 0 { "a" } else { "b" };
            let out = ep
                .client
                .send_message()
                .queue_url(&url)
                .message_body(format!("{group}{i}"))
                .message_group_id(group)
                .message_deduplication_id(format!("d{i}"))
                .send()
                .await
                .unwrap();
            seqs.push(
                out.sequence_number()
                    .expect("SequenceNumber on send")
                    .to_owned(),
            );
        }
        let numeric: Vec<u128> = seqs.iter().map(|s| s.parse().unwrap()).collect();
        assert!(
            numeric.windows(2).all(|w| w[0] < w[1]),
            "sequence numbers increase: {seqs:?}"
        );

        // Receive one at a time; a group stays held while its message is in flight.
        let first = ep.receive(&url, 1, 1).await;
        assert_eq!(first[0].body(), Some("a0"));
        let second = ep.receive(&url, 1, 1).await;
        assert_eq!(
            second[0].body(),
            Some("b1"),
            "group a is held while a0 is in flight"
        );
        assert!(ep.receive(&url, 10, 0).await.is_empty(), "both groups held");
        for m in first.iter().chain(&second) {
            ep.delete(&url, m).await;
        }
        let rest = ep.receive_n(&url, 4, Duration::from_secs(5)).await;
        let mut per_group: HashMap<String, Vec<String>> = HashMap::new();
        for m in &rest {
            let g = sys(m, MessageSystemAttributeName::MessageGroupId).unwrap();
            assert!(sys(m, MessageSystemAttributeName::SequenceNumber).is_some());
            per_group
                .entry(g)
                .or_default()
                .push(m.body().unwrap().to_owned());
        }
        assert_eq!(per_group["a"], ["a2", "a4"]);
        assert_eq!(per_group["b"], ["b3", "b5"]);
    }
);

conformance!(
    fifo_failed_message_comes_back_first,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("retry.fifo", &[("VisibilityTimeout", "30")])
            .await;
        for i in 0..3 {
            ep.client
                .send_message()
                .queue_url(&url)
                .message_body(format!("m{i}"))
                .message_group_id("g")
                .message_deduplication_id(format!("d{i}"))
                .send()
                .await
                .unwrap();
        }
        let got = ep.receive(&url, 10, 1).await;
        let bodies: Vec<&str> = got.iter().filter_map(|m| m.body()).collect();
        assert_eq!(bodies, ["m0", "m1", "m2"]);
        // Release all: they come back in the same order.
        for m in &got {
            ep.client
                .change_message_visibility()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap())
                .visibility_timeout(0)
                .send()
                .await
                .unwrap();
        }
        let again = ep.receive_n(&url, 3, Duration::from_secs(5)).await;
        let bodies: Vec<&str> = again.iter().filter_map(|m| m.body()).collect();
        assert_eq!(bodies, ["m0", "m1", "m2"]);
    }
);

conformance!(fifo_deduplication, |ep: Endpoint| async move {
    let url = ep.create_queue("dedup.fifo", &[]).await;
    let a = ep
        .client
        .send_message()
        .queue_url(&url)
        .message_body("one")
        .message_group_id("g")
        .message_deduplication_id("same")
        .send()
        .await
        .unwrap();
    let b = ep
        .client
        .send_message()
        .queue_url(&url)
        .message_body("two")
        .message_group_id("g")
        .message_deduplication_id("same")
        .send()
        .await
        .unwrap();
    assert_eq!(
        a.message_id(),
        b.message_id(),
        "a duplicate send answers with the original message"
    );
    let err = ep
        .client
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .message_group_id("g")
        .send()
        .await;
    assert!(
        err.is_err(),
        "no dedup id and no content-based deduplication"
    );

    let cb = ep
        .create_queue("cbd.fifo", &[("ContentBasedDeduplication", "true")])
        .await;
    for _ in 0..3 {
        ep.client
            .send_message()
            .queue_url(&cb)
            .message_body("same body")
            .message_group_id("g")
            .send()
            .await
            .unwrap();
    }
    ep.client
        .send_message()
        .queue_url(&cb)
        .message_body("other body")
        .message_group_id("g")
        .send()
        .await
        .unwrap();
    let got = ep.receive_n(&url, 1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body(), Some("one"));
    let got = ep.receive_n(&cb, 2, Duration::from_secs(3)).await;
    let bodies: Vec<&str> = got.iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, ["same body", "other body"]);
});

conformance!(fifo_refuses_per_message_delay, |ep: Endpoint| async move {
    let url = ep
        .create_queue("nodelay.fifo", &[("ContentBasedDeduplication", "true")])
        .await;
    let err = ep
        .client
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .message_group_id("g")
        .delay_seconds(5)
        .send()
        .await;
    assert!(err.is_err());
});

conformance!(
    standard_queue_refuses_deduplication_id,
    |ep: Endpoint| async move {
        let url = ep.create_queue("nodedup", &[]).await;
        let err = ep
            .client
            .send_message()
            .queue_url(&url)
            .message_body("x")
            .message_deduplication_id("d")
            .send()
            .await;
        assert!(err.is_err());
    }
);

conformance!(purge_removes_everything, |ep: Endpoint| async move {
    let url = ep.create_queue("purge", &[]).await;
    for i in 0..5 {
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body(format!("{i}"))
            .send()
            .await
            .unwrap();
    }
    ep.client
        .purge_queue()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    wait_for("purge to take effect", Duration::from_secs(5), || async {
        (count(&ep, &url, "ApproximateNumberOfMessages").await == 0).then_some(())
    })
    .await;
    assert!(ep.receive(&url, 10, 0).await.is_empty());
});

conformance!(tags, |ep: Endpoint| async move {
    let url = ep.create_queue("tags", &[]).await;
    ep.client
        .tag_queue()
        .queue_url(&url)
        .tags("team", "a")
        .tags("env", "test")
        .send()
        .await
        .unwrap();
    ep.client
        .untag_queue()
        .queue_url(&url)
        .tag_keys("env")
        .send()
        .await
        .unwrap();
    let tags = ep
        .client
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    let tags = tags.tags().unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags["team"], "a");
});

conformance!(approximate_counters, |ep: Endpoint| async move {
    let url = ep.create_queue("counters", &[]).await;
    for i in 0..4 {
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body(format!("{i}"))
            .send()
            .await
            .unwrap();
    }
    ep.client
        .send_message()
        .queue_url(&url)
        .message_body("d")
        .delay_seconds(60)
        .send()
        .await
        .unwrap();
    let got = ep
        .client
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(1)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert_eq!(got.messages().len(), 1);
    assert_eq!(count(&ep, &url, "ApproximateNumberOfMessages").await, 3);
    assert_eq!(
        count(&ep, &url, "ApproximateNumberOfMessagesNotVisible").await,
        1
    );
    assert_eq!(
        count(&ep, &url, "ApproximateNumberOfMessagesDelayed").await,
        1
    );
});

conformance!(
    many_messages_each_delivered_once,
    |ep: Endpoint| async move {
        let url = ep.create_queue("volume", &[]).await;
        let n = if ep.reference { 50 } else { 2000 };
        for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
            let mut req = ep.client.send_message_batch().queue_url(&url);
            for i in chunk {
                req = req.entries(
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("e{i}"))
                        .message_body(format!("{i}"))
                        .build()
                        .unwrap(),
                );
            }
            assert!(req.send().await.unwrap().failed().is_empty());
        }
        let mut seen = BTreeSet::new();
        let start = Instant::now();
        while seen.len() < n && start.elapsed() < Duration::from_secs(60) {
            let got = ep.receive(&url, 10, 1).await;
            let mut del = ep.client.delete_message_batch().queue_url(&url);
            for (i, m) in got.iter().enumerate() {
                assert!(
                    seen.insert(m.body().unwrap().to_owned()),
                    "{:?} delivered twice",
                    m.body()
                );
                del = del.entries(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(format!("{i}"))
                        .receipt_handle(m.receipt_handle().unwrap())
                        .build()
                        .unwrap(),
                );
            }
            if !got.is_empty() {
                assert!(del.send().await.unwrap().failed().is_empty());
            }
        }
        assert_eq!(seen.len(), n);
    }
);

/// The ApproximateReceiveCount of a message received with every system attribute.
fn receive_count(m: &Message) -> Option<String> {
    sys(m, MessageSystemAttributeName::ApproximateReceiveCount)
}

/// Starts a long poll of `wait` seconds in a task, waits until it is waiting, then abandons it
/// as a client that gives up does (a consumer shutting down, a request timeout): the request
/// future is dropped and its connection closed.
async fn abandon_a_long_poll(ep: &Endpoint, url: &str, wait: i32) {
    let before = ep.receive_calls();
    let poll = tokio::spawn({
        let client = ep.client.clone();
        let url = url.to_owned();
        async move {
            client
                .receive_message()
                .queue_url(url)
                .wait_time_seconds(wait)
                .send()
                .await
        }
    });
    ep.until_receive_started(before).await;
    poll.abort();
    assert!(
        poll.await.is_err_and(|e| e.is_cancelled()),
        "the poll was still waiting when abandoned"
    );
}

conformance!(
    an_abandoned_long_poll_takes_a_released_message,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("stranded", &[("VisibilityTimeout", "2")])
            .await;
        ep.send(&url, "x").await;
        let first = ep.receive(&url, 1, 1).await;
        assert_eq!(first.len(), 1);
        abandon_a_long_poll(&ep, &url, 3).await;
        // The consumer releases the message for another to take. The server still holds the
        // abandoned poll open, and it takes the message for a reader that is gone.
        ep.client
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(first[0].receipt_handle().unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
        assert!(
            ep.receive(&url, 10, 0).await.is_empty(),
            "the abandoned poll took the released message"
        );
        assert_eq!(
            count(&ep, &url, "ApproximateNumberOfMessagesNotVisible").await,
            1
        );
        // Visible again after the queue's visibility timeout, with a receive spent on it.
        let again = ep.receive_n(&url, 1, Duration::from_secs(10)).await;
        assert_eq!(again.len(), 1, "redelivered after the visibility timeout");
        assert_eq!(again[0].message_id(), first[0].message_id());
        assert_eq!(receive_count(&again[0]).as_deref(), Some("3"));
    }
);

conformance!(
    an_abandoned_long_poll_takes_a_new_message,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("stranded-new", &[("VisibilityTimeout", "2")])
            .await;
        abandon_a_long_poll(&ep, &url, 3).await;
        ep.send(&url, "sent after the poll was abandoned").await;
        assert!(
            ep.receive(&url, 10, 0).await.is_empty(),
            "the abandoned poll took the new message"
        );
        let again = ep.receive_n(&url, 1, Duration::from_secs(10)).await;
        assert_eq!(again.len(), 1, "redelivered after the visibility timeout");
        assert_eq!(again[0].body(), Some("sent after the poll was abandoned"));
        assert_eq!(receive_count(&again[0]).as_deref(), Some("2"));
    }
);

/// Starts a ReceiveMessage of one message waiting up to 10 s, and returns once it waits.
async fn waiting_receive(ep: &Endpoint, url: &str) -> tokio::task::JoinHandle<Vec<Message>> {
    let before = ep.receive_calls();
    let task = tokio::spawn({
        let client = ep.client.clone();
        let url = url.to_owned();
        async move {
            client
                .receive_message()
                .queue_url(url)
                .wait_time_seconds(10)
                .send()
                .await
                .expect("the waiting receive")
                .messages
                .unwrap_or_default()
        }
    });
    ep.until_receive_started(before).await;
    task
}

conformance!(
    fifo_delete_wakes_a_waiting_receive,
    |ep: Endpoint| async move {
        // The visibility timeout (30 s) outlasts the wait (10 s): a receive that is not woken
        // when the group unlocks returns empty.
        let url = ep
            .create_queue("wake.fifo", &[("VisibilityTimeout", "30")])
            .await;
        for i in 0..3 {
            ep.client
                .send_message()
                .queue_url(&url)
                .message_body(format!("m{i}"))
                .message_group_id("g")
                .message_deduplication_id(format!("d{i}"))
                .send()
                .await
                .unwrap();
        }
        let first = ep.receive(&url, 1, 0).await;
        assert_eq!(first[0].body(), Some("m0"));
        let waiting = waiting_receive(&ep, &url).await;
        ep.delete(&url, &first[0]).await;
        let second = waiting.await.unwrap();
        let bodies: Vec<_> = second.iter().filter_map(Message::body).collect();
        assert_eq!(bodies, ["m1"], "the delete unlocked the group");

        let waiting = waiting_receive(&ep, &url).await;
        let batch = ep
            .client
            .delete_message_batch()
            .queue_url(&url)
            .entries(
                DeleteMessageBatchRequestEntry::builder()
                    .id("m1")
                    .receipt_handle(second[0].receipt_handle().unwrap())
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert!(batch.failed().is_empty());
        let third = waiting.await.unwrap();
        let bodies: Vec<_> = third.iter().filter_map(Message::body).collect();
        assert_eq!(bodies, ["m2"], "the batch delete unlocked the group");
    }
);

conformance!(
    fifo_shorter_visibility_wakes_a_waiting_receive,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("shorten.fifo", &[("VisibilityTimeout", "30")])
            .await;
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body("m0")
            .message_group_id("g")
            .message_deduplication_id("d0")
            .send()
            .await
            .unwrap();
        let first = ep.receive(&url, 1, 0).await;
        let waiting = waiting_receive(&ep, &url).await;
        // Shortened from 30 s to 1 s: the waiting receive must look again at the new deadline.
        ep.client
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(first[0].receipt_handle().unwrap())
            .visibility_timeout(1)
            .send()
            .await
            .unwrap();
        let again = waiting.await.unwrap();
        assert_eq!(again.len(), 1, "received within the 10 s wait");
        assert_eq!(again[0].message_id(), first[0].message_id());
    }
);

/// A receipt handle with one character changed, keeping it the same length and alphabet.
fn altered(handle: &str) -> String {
    let mut bytes = handle.as_bytes().to_vec();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
    String::from_utf8(bytes).expect("receipt handles are ASCII")
}

conformance!(
    a_forged_receipt_handle_is_refused,
    |ep: Endpoint| async move {
        let url = ep.create_queue("forged", &[]).await;
        ep.send(&url, "x").await;
        let got = ep.receive(&url, 1, 1).await;
        let forged = altered(got[0].receipt_handle().unwrap());
        let err = ep
            .client
            .delete_message()
            .queue_url(&url)
            .receipt_handle(&forged)
            .send()
            .await
            .unwrap_err();
        assert!(err.into_service_error().is_receipt_handle_is_invalid());
        assert_eq!(
            count(&ep, &url, "ApproximateNumberOfMessagesNotVisible").await,
            1,
            "the message is still in flight"
        );
    }
);

conformance!(
    number_attributes_must_be_numbers,
    skip_reference = "LocalStack 4.9 accepts Number attributes whose value is NaN, inf or not a number at all; AWS refuses them with InvalidParameterValue",
    |ep: Endpoint| async move {
        let url = ep.create_queue("numbers", &[]).await;
        for bad in ["NaN", "inf", "-inf", "Infinity", "1e", "0x1F"] {
            let err = ep
                .client
                .send_message()
                .queue_url(&url)
                .message_body("x")
                .message_attributes(
                    "n",
                    MessageAttributeValue::builder()
                        .data_type("Number")
                        .string_value(bad)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .expect_err(bad);
            assert_eq!(err.code(), Some("InvalidParameterValue"), "{bad}");
        }
        assert!(ep.receive(&url, 10, 0).await.is_empty(), "nothing was sent");
    }
);

conformance!(
    a_queue_has_at_most_50_tags,
    skip_reference = "LocalStack 4.9 accepts any number of tags on a queue; AWS's quota is 50 per queue, over which TagQueue and CreateQueue answer InvalidParameterValue",
    |ep: Endpoint| async move {
        let url = ep.create_queue("tagged", &[]).await;
        let mut req = ep.client.tag_queue().queue_url(&url);
        for i in 0..50 {
            req = req.tags(format!("k{i}"), "v");
        }
        req.send().await.expect("50 tags are allowed");
        let err = ep
            .client
            .tag_queue()
            .queue_url(&url)
            .tags("one-more", "v")
            .send()
            .await
            .expect_err("a 51st tag");
        assert_eq!(err.code(), Some("InvalidParameterValue"));
        // Replacing an existing tag's value adds none.
        ep.client
            .tag_queue()
            .queue_url(&url)
            .tags("k0", "w")
            .send()
            .await
            .expect("an existing key is replaced");

        let mut create = ep.client.create_queue().queue_name(ep.name("overtagged"));
        for i in 0..51 {
            create = create.tags(format!("k{i}"), "v");
        }
        let err = create.send().await.expect_err("51 tags at creation");
        assert_eq!(err.code(), Some("InvalidParameterValue"));
    }
);

/// A dead-letter queue and its source (maxReceiveCount 1): `(dlq url, dlq arn, source url)`.
async fn dead_letter_pair(ep: &Endpoint, stem: &str) -> (String, String, String) {
    let dlq = ep.create_queue(&format!("{stem}-dlq"), &[]).await;
    let dlq_arn = ep.arn(&dlq).await;
    let policy = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"1"}}"#);
    let src = ep
        .create_queue(&format!("{stem}-src"), &[("RedrivePolicy", &policy)])
        .await;
    (dlq, dlq_arn, src)
}

/// The newest move tasks of a source queue, up to `max`.
async fn move_tasks(
    ep: &Endpoint,
    source_arn: &str,
    max: Option<i32>,
) -> Vec<aws_sdk_sqs::types::ListMessageMoveTasksResultEntry> {
    ep.client
        .list_message_move_tasks()
        .source_arn(source_arn)
        .set_max_results(max)
        .send()
        .await
        .expect("ListMessageMoveTasks")
        .results
        .unwrap_or_default()
}

/// Waits until the newest move task of `source_arn` has `status`.
async fn until_task_status(ep: &Endpoint, source_arn: &str, status: &str) {
    wait_for(
        &format!("the move task to be {status}"),
        Duration::from_secs(15),
        || async {
            let tasks = move_tasks(ep, source_arn, None).await;
            (tasks.first().and_then(|t| t.status()) == Some(status)).then_some(())
        },
    )
    .await;
}

conformance!(
    message_move_task_redrives_to_the_source,
    |ep: Endpoint| async move {
        let (dlq, dlq_arn, src) = dead_letter_pair(&ep, "redrive").await;
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("kept")
            .build()
            .unwrap();
        let sent = ep
            .client
            .send_message()
            .queue_url(&src)
            .message_body("poison")
            .message_attributes("a", attribute.clone())
            .send()
            .await
            .unwrap();
        let got = ep
            .client
            .receive_message()
            .queue_url(&src)
            .visibility_timeout(0)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        assert_eq!(got.messages().len(), 1);
        // The second receive finds it over maxReceiveCount and moves it to the DLQ.
        assert!(ep.receive(&src, 10, 1).await.is_empty());
        wait_for(
            "the message in the DLQ",
            Duration::from_secs(10),
            || async { (count(&ep, &dlq, "ApproximateNumberOfMessages").await == 1).then_some(()) },
        )
        .await;

        let started = ep
            .client
            .start_message_move_task()
            .source_arn(&dlq_arn)
            .send()
            .await
            .expect("StartMessageMoveTask on a DLQ");
        assert!(started.task_handle().is_some_and(|h| !h.is_empty()));

        // No DestinationArn: back to the queue it was dead-lettered from, intact.
        let back = ep.receive_n(&src, 1, Duration::from_secs(10)).await;
        assert_eq!(back.len(), 1, "redriven to the source queue");
        let m = &back[0];
        assert_eq!(m.body(), Some("poison"));
        assert_eq!(m.message_attributes().unwrap()["a"], attribute);
        assert_eq!(
            m.md5_of_message_attributes(),
            sent.md5_of_message_attributes()
        );

        until_task_status(&ep, &dlq_arn, "COMPLETED").await;
        let tasks = move_tasks(&ep, &dlq_arn, None).await;
        assert_eq!(tasks.len(), 1);
        let t = &tasks[0];
        assert_eq!(t.source_arn(), Some(dlq_arn.as_str()));
        assert_eq!(t.approximate_number_of_messages_moved(), 1);
        assert_eq!(t.approximate_number_of_messages_to_move(), Some(1));
        assert!(
            t.task_handle().is_none(),
            "only a running task has a handle"
        );
        assert!(t.started_timestamp() > 0);
        assert_eq!(count(&ep, &dlq, "ApproximateNumberOfMessages").await, 0);
    }
);

conformance!(
    message_move_task_cancel_and_list,
    |ep: Endpoint| async move {
        let (dlq, dlq_arn, _src) = dead_letter_pair(&ep, "cancel").await;
        let other = ep.create_queue("cancel-other", &[]).await;
        let other_arn = ep.arn(&other).await;
        for i in 0..20 {
            ep.send(&dlq, &format!("m{i}")).await;
        }
        let start = || {
            ep.client
                .start_message_move_task()
                .source_arn(&dlq_arn)
                .destination_arn(&other_arn)
                .max_number_of_messages_per_second(1)
                .send()
        };
        let handle = start().await.unwrap().task_handle.unwrap();
        let err = start()
            .await
            .expect_err("a second active task on one source");
        assert_eq!(err.code(), Some("InvalidParameterValue"));

        let running = move_tasks(&ep, &dlq_arn, None).await;
        assert_eq!(running[0].status(), Some("RUNNING"));
        assert_eq!(running[0].task_handle(), Some(handle.as_str()));
        assert_eq!(running[0].destination_arn(), Some(other_arn.as_str()));
        assert_eq!(running[0].max_number_of_messages_per_second(), Some(1));
        assert_eq!(
            running[0].approximate_number_of_messages_to_move(),
            Some(20)
        );

        let cancelled = ep
            .client
            .cancel_message_move_task()
            .task_handle(&handle)
            .send()
            .await
            .expect("CancelMessageMoveTask");
        assert!(cancelled.approximate_number_of_messages_moved() < 20);
        until_task_status(&ep, &dlq_arn, "CANCELLED").await;
        let moved = move_tasks(&ep, &dlq_arn, None).await[0].approximate_number_of_messages_moved();
        assert_eq!(
            count(&ep, &other, "ApproximateNumberOfMessages").await,
            moved as u64,
            "the destination has what the task says it moved"
        );

        // A new task may start once the last is cancelled; the list is newest first.
        ep.client
            .start_message_move_task()
            .source_arn(&dlq_arn)
            .destination_arn(&other_arn)
            .send()
            .await
            .expect("a task after the cancelled one");
        until_task_status(&ep, &dlq_arn, "COMPLETED").await;
        let tasks = move_tasks(&ep, &dlq_arn, Some(10)).await;
        let statuses: Vec<_> = tasks.iter().filter_map(|t| t.status()).collect();
        assert_eq!(statuses, ["COMPLETED", "CANCELLED"]);
        assert_eq!(count(&ep, &other, "ApproximateNumberOfMessages").await, 20);
        assert_eq!(
            move_tasks(&ep, &dlq_arn, None).await.len(),
            1,
            "MaxResults defaults to 1"
        );
    }
);

conformance!(
    message_move_task_needs_a_dead_letter_queue,
    |ep: Endpoint| async move {
        let (_dlq, _dlq_arn, src) = dead_letter_pair(&ep, "notdlq").await;
        let src_arn = ep.arn(&src).await;
        let err = ep
            .client
            .start_message_move_task()
            .source_arn(&src_arn)
            .send()
            .await
            .expect_err("the source is not a DLQ");
        assert_eq!(err.code(), Some("InvalidParameterValue"));
        let missing = src_arn.replace("notdlq-src", "no-such-queue");
        let err = ep
            .client
            .start_message_move_task()
            .source_arn(&missing)
            .send()
            .await
            .expect_err("no such queue");
        assert!(err.into_service_error().is_resource_not_found_exception());
        let err = ep
            .client
            .list_message_move_tasks()
            .source_arn(&missing)
            .send()
            .await
            .expect_err("no such queue");
        assert!(err.into_service_error().is_resource_not_found_exception());
    }
);

conformance!(
    message_move_task_rate_and_handle_are_checked,
    skip_reference = "LocalStack 4.9 takes any MaxNumberOfMessagesPerSecond (AWS: 1 to 500)",
    |ep: Endpoint| async move {
        let (_dlq, dlq_arn, _src) = dead_letter_pair(&ep, "rate").await;
        for bad in [0, 501] {
            let err = ep
                .client
                .start_message_move_task()
                .source_arn(&dlq_arn)
                .max_number_of_messages_per_second(bad)
                .send()
                .await
                .expect_err("out of 1..=500");
            assert_eq!(err.code(), Some("InvalidParameterValue"), "{bad}");
        }
        let err = ep
            .client
            .cancel_message_move_task()
            .task_handle("not-a-handle")
            .send()
            .await
            .expect_err("a made-up handle");
        assert_eq!(err.code(), Some("InvalidParameterValue"));
        assert!(move_tasks(&ep, &dlq_arn, Some(10)).await.is_empty());
    }
);

conformance!(
    a_redriven_message_is_a_new_message,
    skip_reference = "LocalStack 4.9 redrives a message with its old MessageId, receive count and DeadLetterQueueSourceArn; AWS documents that a redriven message is a new message, with a new MessageId and enqueue time",
    |ep: Endpoint| async move {
        let (dlq, dlq_arn, src) = dead_letter_pair(&ep, "renewed").await;
        ep.send(&src, "again").await;
        let first = ep.receive(&src, 1, 1).await;
        ep.client
            .change_message_visibility()
            .queue_url(&src)
            .receipt_handle(first[0].receipt_handle().unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
        assert!(ep.receive(&src, 10, 0).await.is_empty(), "moved to the DLQ");
        assert_eq!(count(&ep, &dlq, "ApproximateNumberOfMessages").await, 1);
        ep.client
            .start_message_move_task()
            .source_arn(&dlq_arn)
            .send()
            .await
            .unwrap();
        let back = ep.receive_n(&src, 1, Duration::from_secs(10)).await;
        assert_eq!(back[0].body(), Some("again"));
        assert_ne!(
            back[0].message_id(),
            first[0].message_id(),
            "a new MessageId"
        );
        assert_eq!(
            receive_count(&back[0]).as_deref(),
            Some("1"),
            "never received"
        );
        assert!(
            sys(
                &back[0],
                MessageSystemAttributeName::DeadLetterQueueSourceArn
            )
            .is_none(),
            "no longer a dead letter"
        );
        let sent_first = sys(&first[0], MessageSystemAttributeName::SentTimestamp).unwrap();
        let sent_back = sys(&back[0], MessageSystemAttributeName::SentTimestamp).unwrap();
        assert!(
            sent_back.parse::<u64>().unwrap() >= sent_first.parse::<u64>().unwrap(),
            "a new enqueue time"
        );
    }
);

conformance!(
    queue_urls_ignore_the_host_header,
    |ep: Endpoint| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A client cannot point the queue URLs the server hands out at a host of its choosing.
        let endpoint = ep
            .sdk_config
            .endpoint_url()
            .expect("an endpoint URL")
            .to_owned();
        let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
        let body = format!(r#"{{"QueueName":"{}"}}"#, ep.name("hosted"));
        let request = format!(
            "POST / HTTP/1.1\r\nHost: attacker.example:80\r\nX-Amz-Target: AmazonSQS.CreateQueue\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut text = String::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut text))
            .await
            .expect("a response within 10 s")
            .unwrap();
        let json = text.split("\r\n\r\n").nth(1).expect("a body");
        let value: serde_json::Value = serde_json::from_str(json).expect("JSON");
        let url = value["QueueUrl"].as_str().expect("a QueueUrl");
        assert!(url.starts_with(&endpoint), "{url} starts with {endpoint}");
        assert!(url.ends_with(&format!("/{}", ep.name("hosted"))), "{url}");
    }
);

/// The code (as aws-sdk-sqs reports it), message and HTTP status of a failed call.
fn failure<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, SdkError<E, HttpResponse>>,
) -> (String, String, u16) {
    let err = result.expect_err("the call must fail");
    let status = err.raw_response().map_or(0, |r| r.status().as_u16());
    let code = err.code().unwrap_or_default().to_owned();
    let message = err.message().unwrap_or_default().to_owned();
    (code, message, status)
}

fn string_attr(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .unwrap()
}

/// The queue's policy document, parsed.
async fn policy(ep: &Endpoint, url: &str) -> Option<serde_json::Value> {
    let out = ep
        .client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::Policy)
        .send()
        .await
        .unwrap();
    let text = out.attributes()?.get(&QueueAttributeName::Policy)?;
    Some(serde_json::from_str(text).expect("the Policy is JSON"))
}

conformance!(permissions_edit_the_policy, |ep: Endpoint| async move {
    let url = ep.create_queue("perm", &[]).await;
    let arn = ep.arn(&url).await;
    ep.client
        .add_permission()
        .queue_url(&url)
        .label("crossaccount")
        .aws_account_ids("111111111111")
        .aws_account_ids("222222222222")
        .actions("ReceiveMessage")
        .send()
        .await
        .unwrap();
    let doc = policy(&ep, &url)
        .await
        .expect("AddPermission writes a Policy");
    assert_eq!(doc["Version"], "2008-10-17");
    assert_eq!(doc["Id"], format!("{arn}/SQSDefaultPolicy"));
    let statement = &doc["Statement"][0];
    assert_eq!(statement["Sid"], "crossaccount");
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(statement["Action"], "SQS:ReceiveMessage");
    assert_eq!(statement["Resource"], arn);
    let mut principals: Vec<&str> = statement["Principal"]["AWS"]
        .as_array()
        .expect("two principals make a list")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    principals.sort_unstable();
    assert_eq!(
        principals,
        [
            "arn:aws:iam::111111111111:root",
            "arn:aws:iam::222222222222:root"
        ]
    );

    let duplicate = ep
        .client
        .add_permission()
        .queue_url(&url)
        .label("crossaccount")
        .aws_account_ids("111111111111")
        .actions("SendMessage")
        .send()
        .await;
    assert_eq!(
        failure(duplicate),
        (
            "InvalidParameterValue".to_owned(),
            "Value crossaccount for parameter Label is invalid. Reason: Already exists.".to_owned(),
            400
        )
    );
    ep.client
        .add_permission()
        .queue_url(&url)
        .label("second")
        .aws_account_ids("111111111111")
        .actions("SendMessage")
        .actions("DeleteMessage")
        .send()
        .await
        .unwrap();
    let doc = policy(&ep, &url).await.unwrap();
    assert_eq!(
        doc["Statement"][1]["Action"],
        serde_json::json!(["SQS:SendMessage", "SQS:DeleteMessage"])
    );
    assert_eq!(
        doc["Statement"][1]["Principal"]["AWS"],
        "arn:aws:iam::111111111111:root"
    );

    for label in ["crossaccount", "second"] {
        ep.client
            .remove_permission()
            .queue_url(&url)
            .label(label)
            .send()
            .await
            .unwrap();
    }
    assert!(
        policy(&ep, &url).await.is_none(),
        "removing the last statement removes the Policy"
    );
    let unknown = ep
        .client
        .remove_permission()
        .queue_url(&url)
        .label("second")
        .send()
        .await;
    assert_eq!(
        failure(unknown),
        (
            "InvalidParameterValue".to_owned(),
            "Value second for parameter Label is invalid. Reason: can't find label.".to_owned(),
            400
        )
    );
});

conformance!(
    permission_errors,
    skip_reference = "LocalStack 4.9 accepts account ids it cannot verify, more than 7 actions, and actions a permission cannot grant (RemovePermission, SendMessageBatch)",
    |ep: Endpoint| async move {
        let url = ep.create_queue("permerr", &[]).await;
        let add = |accounts: &[&str], actions: &[&str]| {
            let mut req = ep.client.add_permission().queue_url(&url).label("l");
            for a in accounts {
                req = req.aws_account_ids(*a);
            }
            for a in actions {
                req = req.actions(*a);
            }
            req.send()
        };
        let (code, message, _) = failure(add(&["111111111111"], &["RemovePermission"]).await);
        assert_eq!(code, "InvalidParameterValue");
        assert_eq!(
            message,
            "Value SQS:RemovePermission for parameter ActionName is invalid. Reason: Only the queue owner is allowed to invoke this action."
        );
        let (_, message, _) = failure(add(&["111111111111"], &["SendMessageBatch"]).await);
        assert_eq!(
            message,
            "Value SQS:SendMessageBatch for parameter ActionName is invalid. Reason: Please refer to the appropriate WSDL for a list of valid actions."
        );
        let (code, message, _) = failure(add(&["not-an-account"], &["SendMessage"]).await);
        assert_eq!(code, "InvalidParameterValue");
        assert_eq!(
            message,
            "Value [not-an-account] for parameter PrincipalId is invalid. Reason: Unable to verify."
        );
        let eight = [
            "SendMessage",
            "ReceiveMessage",
            "DeleteMessage",
            "ChangeMessageVisibility",
            "GetQueueAttributes",
            "GetQueueUrl",
            "ListDeadLetterSourceQueues",
            "PurgeQueue",
        ];
        assert_eq!(
            failure(add(&["111111111111"], &eight).await),
            (
                "OverLimit".to_owned(),
                "8 Actions were found, maximum allowed is 7.".to_owned(),
                403
            )
        );
        assert!(policy(&ep, &url).await.is_none(), "nothing was written");
    }
);

conformance!(
    fifo_takes_an_explicit_zero_delay,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("zerodelay.fifo", &[("ContentBasedDeduplication", "true")])
            .await;
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body("single")
            .message_group_id("g")
            .delay_seconds(0)
            .send()
            .await
            .expect("DelaySeconds=0 on a FIFO message is accepted");
        let out = ep
            .client
            .send_message_batch()
            .queue_url(&url)
            .entries(
                SendMessageBatchRequestEntry::builder()
                    .id("zero")
                    .message_body("batched")
                    .message_group_id("g")
                    .delay_seconds(0)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert!(out.failed().is_empty(), "{:?}", out.failed());
        let got = ep.receive_n(&url, 2, Duration::from_secs(5)).await;
        let bodies: Vec<&str> = got.iter().filter_map(|m| m.body()).collect();
        assert_eq!(bodies, ["single", "batched"]);
        let (code, message, status) = failure(
            ep.client
                .send_message()
                .queue_url(&url)
                .message_body("late")
                .message_group_id("g")
                .delay_seconds(5)
                .send()
                .await,
        );
        assert_eq!((code.as_str(), status), ("InvalidParameterValue", 400));
        assert_eq!(
            message,
            "Value 5 for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type."
        );
    }
);

conformance!(
    fifo_batch_without_group_or_deduplication_id_fails_whole,
    |ep: Endpoint| async move {
        let url = ep.create_queue("batchreq.fifo", &[]).await;
        let entry = |id: &str, group: Option<&str>, dedup: Option<&str>| {
            SendMessageBatchRequestEntry::builder()
                .id(id)
                .message_body(id)
                .set_message_group_id(group.map(str::to_owned))
                .set_message_deduplication_id(dedup.map(str::to_owned))
                .build()
                .unwrap()
        };
        let no_group = ep
            .client
            .send_message_batch()
            .queue_url(&url)
            .entries(entry("ok", Some("g"), Some("d1")))
            .entries(entry("nogroup", None, Some("d2")))
            .send()
            .await;
        assert_eq!(
            failure(no_group),
            (
                "InvalidParameterValue".to_owned(),
                "The request must contain the parameter MessageGroupId.".to_owned(),
                400
            )
        );
        let no_dedup = ep
            .client
            .send_message_batch()
            .queue_url(&url)
            .entries(entry("ok", Some("g"), Some("d3")))
            .entries(entry("nodedup", Some("g"), None))
            .send()
            .await;
        assert_eq!(
            failure(no_dedup),
            (
                "InvalidParameterValue".to_owned(),
                "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly".to_owned(),
                400
            )
        );
        assert!(
            ep.receive(&url, 10, 1).await.is_empty(),
            "no entry of a refused batch was sent"
        );
    }
);

conformance!(
    content_based_deduplication_id_is_the_body_sha256,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("sha.fifo", &[("ContentBasedDeduplication", "true")])
            .await;
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body("hello")
            .message_group_id("g")
            .send()
            .await
            .unwrap();
        let got = ep.receive_n(&url, 1, Duration::from_secs(5)).await;
        assert_eq!(
            sys(&got[0], MessageSystemAttributeName::MessageDeduplicationId).as_deref(),
            // sha256("hello"), lower-case hex.
            Some("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
    }
);

/// Sets each of `names` on a queue, then sets it to `""`, and checks that it is gone.
async fn set_then_clear(ep: &Endpoint, url: &str, values: &[(&str, String)]) {
    let set = |name: &str, value: String| {
        ep.client
            .set_queue_attributes()
            .queue_url(url)
            .attributes(QueueAttributeName::from(name), value)
            .send()
    };
    for (name, value) in values {
        set(name, value.clone()).await.unwrap();
        assert!(!ep.attribute(url, name).await.is_empty(), "{name} is set");
        set(name, String::new()).await.unwrap();
    }
    let all = ep
        .client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let names: BTreeSet<&str> = all
        .attributes()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    for (name, _) in values {
        assert!(!names.contains(name), "{name} was removed: {names:?}");
    }
}

conformance!(
    empty_redrive_allow_policy_is_removed,
    skip_reference = "LocalStack 4.9 keeps RedriveAllowPolicy with an empty value; SQS removes it",
    |ep: Endpoint| async move {
        let url = ep.create_queue("emptyallow", &[]).await;
        let allow = serde_json::json!({"redrivePermission": "allowAll"});
        set_then_clear(&ep, &url, &[("RedriveAllowPolicy", allow.to_string())]).await;
    }
);

conformance!(empty_policies_are_removed, |ep: Endpoint| async move {
    let dlq = ep.create_queue("emptypol-dlq", &[]).await;
    let dlq_arn = ep.arn(&dlq).await;
    let url = ep.create_queue("emptypol", &[]).await;
    let arn = ep.arn(&url).await;
    let doc = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "s", "Effect": "Allow", "Principal": {"AWS": "*"},
                       "Action": "sqs:SendMessage", "Resource": arn}]
    });
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3});
    set_then_clear(
        &ep,
        &url,
        &[
            ("Policy", doc.to_string()),
            ("RedrivePolicy", redrive.to_string()),
        ],
    )
    .await;
});

conformance!(
    get_queue_attributes_without_names_has_no_attributes,
    |ep: Endpoint| async move {
        let url = ep.create_queue("noattrs", &[]).await;
        let out = ep
            .client
            .get_queue_attributes()
            .queue_url(&url)
            .send()
            .await
            .unwrap();
        assert_eq!(out.attributes(), None, "no Attributes key at all");
    }
);

conformance!(
    attribute_name_wildcards_match_prefixes,
    |ep: Endpoint| async move {
        let url = ep.create_queue("wild", &[]).await;
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body("x")
            .message_attributes("Custom", string_attr("1"))
            .message_attributes("Custom.Id", string_attr("2"))
            .message_attributes("Other", string_attr("3"))
            .send()
            .await
            .unwrap();
        let names_for = |filter: &'static str| {
            let ep = &ep;
            let url = &url;
            async move {
                let got = ep
                    .client
                    .receive_message()
                    .queue_url(url)
                    .message_attribute_names(filter)
                    .visibility_timeout(0)
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .unwrap();
                let m = &got.messages()[0];
                m.message_attributes()
                    .map(|a| a.keys().cloned().collect::<BTreeSet<String>>())
                    .unwrap_or_default()
            }
        };
        let all = BTreeSet::from(["Custom".into(), "Custom.Id".into(), "Other".into()]);
        assert_eq!(names_for("All").await, all);
        assert_eq!(names_for(".*").await, all);
        assert_eq!(
            names_for("Custom.*").await,
            BTreeSet::from(["Custom".to_owned(), "Custom.Id".to_owned()])
        );
    }
);

conformance!(
    visibility_of_a_lapsed_message_can_still_change,
    skip_reference = "LocalStack 4.9 accepts the change but leaves the message visible; SQS hides it again for the new timeout",
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("lapsed", &[("VisibilityTimeout", "1")])
            .await;
        ep.send(&url, "m").await;
        let got = ep.receive_n(&url, 1, Duration::from_secs(5)).await;
        let handle = got[0].receipt_handle().unwrap().to_owned();
        // Let the visibility timeout lapse (LocalStack's timers tick about once a second).
        tokio::time::sleep(Duration::from_millis(2500)).await;
        ep.client
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(&handle)
            .visibility_timeout(30)
            .send()
            .await
            .expect("the latest handle still works after the timeout lapsed");
        assert!(
            ep.receive(&url, 10, 1).await.is_empty(),
            "the message is hidden again"
        );
    }
);

conformance!(
    tagging_nothing_is_refused,
    skip_reference = "LocalStack 4.9 accepts TagQueue with no tags and UntagQueue with no keys; SQS refuses both",
    |ep: Endpoint| async move {
        let url = ep.create_queue("notags", &[]).await;
        let (code, message, _) = failure(
            ep.client
                .tag_queue()
                .queue_url(&url)
                .set_tags(Some(HashMap::new()))
                .send()
                .await,
        );
        assert_eq!(code, "MissingParameter");
        assert_eq!(message, "The request must contain the parameter Tags.");
        let (code, message, _) = failure(
            ep.client
                .untag_queue()
                .queue_url(&url)
                .set_tag_keys(Some(Vec::new()))
                .send()
                .await,
        );
        assert_eq!(code, "InvalidParameterValue");
        assert_eq!(
            message,
            "Tag keys must be between 1 and 128 characters in length."
        );
    }
);

conformance!(queues_are_per_region, |ep: Endpoint| async move {
    let west2 = ep.client_in("us-west-2");
    let west1 = ep.client_in("us-west-1");
    let name = ep.name("regional");
    let url = west2
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = west2
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap();
    assert!(arn.starts_with("arn:aws:sqs:us-west-2:"), "{arn}");
    let listed = west1
        .list_queues()
        .queue_name_prefix(&name)
        .send()
        .await
        .unwrap();
    assert!(listed.queue_urls().is_empty(), "{listed:?}");
    let err = west1.get_queue_url().queue_name(&name).send().await;
    assert!(
        err.unwrap_err()
            .into_service_error()
            .is_queue_does_not_exist()
    );
    let listed = west2
        .list_queues()
        .queue_name_prefix(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.queue_urls().len(), 1);
});

conformance!(queues_are_per_account, |ep: Endpoint| async move {
    let url = ep.create_queue("owned", &[]).await;
    let (other, _server) = ep.client_as("111111111111").await;
    let name = ep.name("owned");
    let listed = other
        .list_queues()
        .queue_name_prefix(&name)
        .send()
        .await
        .unwrap();
    assert!(listed.queue_urls().is_empty(), "{listed:?}");
    let err = other.get_queue_url().queue_name(&name).send().await;
    assert!(
        err.unwrap_err()
            .into_service_error()
            .is_queue_does_not_exist()
    );
    let theirs = other
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    assert_ne!(theirs, url);
    assert!(theirs.contains("/111111111111/"), "{theirs}");
    let arn = other
        .get_queue_attributes()
        .queue_url(&theirs)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap();
    assert!(arn.contains(":111111111111:"), "{arn}");
});

conformance!(error_messages_match_sqs, |ep: Endpoint| async move {
    let (code, message, _) = failure(
        ep.client
            .create_queue()
            .queue_name("has space")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidParameterValue");
    assert_eq!(
        message,
        "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
    );
    let url = ep
        .create_queue(
            "errs",
            &[
                ("DelaySeconds", "1"),
                ("ReceiveMessageWaitTimeSeconds", "1"),
            ],
        )
        .await;
    // Attributes not given are not compared; a given one that differs is named.
    ep.create_queue("errs", &[]).await;
    ep.create_queue("errs", &[("DelaySeconds", "1")]).await;
    let (code, message, _) = failure(
        ep.client
            .create_queue()
            .queue_name(ep.name("errs"))
            .attributes(QueueAttributeName::DelaySeconds, "2")
            .send()
            .await,
    );
    assert_eq!(code, "QueueAlreadyExists");
    assert_eq!(
        message,
        "A queue already exists with the same name and a different value for attribute DelaySeconds"
    );
    let (code, message, _) = failure(
        ep.client
            .send_message_batch()
            .queue_url(&url)
            .entries(
                SendMessageBatchRequestEntry::builder()
                    .id("bad id!")
                    .message_body("x")
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    );
    assert_eq!(code, "AWS.SimpleQueueService.InvalidBatchEntryId");
    assert_eq!(
        message,
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long."
    );
    let (code, message, _) = failure(
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body("x")
            .message_attributes(
                "Empty",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("")
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    );
    assert_eq!(code, "InvalidParameterValue");
    assert_eq!(
        message,
        "Message (user) attribute 'Empty' must contain a non-empty value of type 'String'."
    );
    let (_, message, _) = failure(
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body("x")
            .message_attributes("AWS.Reserved", string_attr("v"))
            .send()
            .await,
    );
    assert_eq!(
        message,
        "You can't use message attribute names beginning with 'AWS.' or 'Amazon.'. These strings are reserved for internal use. Additionally, they cannot start or end with '.'."
    );
    let (_, message, _) = failure(
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body("x")
            .message_attributes("bad name", string_attr("v"))
            .send()
            .await,
    );
    assert_eq!(
        message,
        "Message (user) attributes name can only contain upper and lower score characters, digits, periods, hyphens and underscores. "
    );
    let (code, message, _) = failure(
        ep.client
            .send_message()
            .queue_url(&url)
            .message_body("x")
            .message_deduplication_id("d")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidParameterValue");
    assert_eq!(
        message,
        "Value d for parameter MessageDeduplicationId is invalid. Reason: The request includes a parameter that is not valid for this queue type."
    );
});

conformance!(
    error_messages_sqs_only,
    skip_reference = "LocalStack 4.9 answers an empty batch with no message, and words the error for an unknown attribute data type its own way",
    |ep: Endpoint| async move {
        let url = ep.create_queue("errs2", &[]).await;
        let (code, message, _) = failure(
            ep.client
                .send_message_batch()
                .queue_url(&url)
                .set_entries(Some(Vec::new()))
                .send()
                .await,
        );
        assert_eq!(code, "AWS.SimpleQueueService.EmptyBatchRequest");
        assert_eq!(
            message,
            "There should be at least one SendMessageBatchRequestEntry in the request."
        );
        let (code, message, _) = failure(
            ep.client
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(Vec::new()))
                .send()
                .await,
        );
        assert_eq!(code, "AWS.SimpleQueueService.EmptyBatchRequest");
        assert_eq!(
            message,
            "There should be at least one DeleteMessageBatchRequestEntry in the request."
        );
        let (_, message, _) = failure(
            ep.client
                .change_message_visibility_batch()
                .queue_url(&url)
                .set_entries(Some(Vec::new()))
                .send()
                .await,
        );
        assert_eq!(
            message,
            "There should be at least one ChangeMessageVisibilityBatchRequestEntry in the request."
        );
        let (code, message, _) = failure(
            ep.client
                .send_message()
                .queue_url(&url)
                .message_body("x")
                .message_attributes(
                    "Typed",
                    MessageAttributeValue::builder()
                        .data_type("Text")
                        .string_value("v")
                        .build()
                        .unwrap(),
                )
                .send()
                .await,
        );
        assert_eq!(code, "InvalidParameterValue");
        assert_eq!(
            message,
            "The type of message (user) attribute 'Typed' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
        );
    }
);
