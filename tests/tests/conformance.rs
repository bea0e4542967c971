//! SQS semantics, checked through aws-sdk-sqs against sqs-local and (with
//! `SQS_REFERENCE_ENDPOINT`) against LocalStack. Timing checks allow for LocalStack's ~1 s timers.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

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
