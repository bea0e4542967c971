//! Extractors through the real consumer: SNS and EventBridge envelopes (on sqs-local and,
//! through `conformance!`, LocalStack), `Option`/`Result` extractors, and an async custom
//! extractor that reads the state. Every test asserts what the handler saw, which messages
//! were deleted and which hooks fired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use sqs_handler::extract::{FromMessage, Requirement};
use sqs_handler::{
    BuildError, EventBridge, ExtractError, Json, MessageContext, OutgoingMessage, ProcessingError,
    Producer, QueueOptions, SqsConsumer, State,
};
use sqs_handler_tests::{Endpoint, Running, conformance, queue_counts, wait_for};

/// Records what handlers saw and which `processing_error`s fired.
#[derive(Clone, Default)]
struct Log {
    seen: Arc<Mutex<Vec<String>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Log {
    fn saw(&self, what: String) {
        self.seen.lock().unwrap().push(what);
    }
    fn seen(&self) -> Vec<String> {
        let mut seen = self.seen.lock().unwrap().clone();
        seen.sort();
        seen
    }
    fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }
}

fn consumer(ep: &Endpoint) -> sqs_handler::SqsConsumerBuilder {
    SqsConsumer::builder(&ep.sdk_config).discover(false)
}

/// Options for a queue whose failed messages must stay in flight while the test looks.
fn options() -> QueueOptions {
    QueueOptions::default().wait_time(Duration::from_secs(1))
}

/// Records each `processing_error` as "<kind> <error>".
async fn record_error(e: ProcessingError, State(log): State<Log>) {
    log.errors
        .lock()
        .unwrap()
        .push(format!("{:?} {}", e.kind, e.error));
}

async fn send(ep: &Endpoint, queue: &str, messages: impl IntoIterator<Item = OutgoingMessage>) {
    let producer = Producer::with_client(ep.client.clone());
    for message in messages {
        producer
            .send(&ep.name(queue), message)
            .await
            .unwrap_or_else(|e| panic!("send to {queue}: {e}"));
    }
}

/// Waits until `seen` handler calls and `errors` processing errors were recorded, and the queue
/// holds `in_flight` messages and no visible one; then stops the consumer.
async fn settle(
    ep: &Endpoint,
    url: &str,
    running: Running,
    log: &Log,
    (seen, errors, in_flight): (usize, usize, u64),
) {
    wait_for(
        "the handler calls and errors",
        Duration::from_secs(20),
        || async {
            (log.seen.lock().unwrap().len() >= seen && log.errors().len() >= errors).then_some(())
        },
    )
    .await;
    wait_for("the queue to settle", Duration::from_secs(20), || async {
        (queue_counts(&ep.client, url).await == (0, in_flight, 0)).then_some(())
    })
    .await;
    running.stop().await;
}

#[derive(Debug, serde::Deserialize)]
struct Order {
    order_id: u64,
}

/// A notification as SNS delivers it to a subscribed queue with raw message delivery off.
fn sns_notification(message: &str) -> String {
    serde_json::json!({
        "Type": "Notification",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:orders",
        "Subject": "order placed",
        "Message": message,
        "Timestamp": "2019-01-02T12:45:07.000Z",
        "SignatureVersion": "1",
        "Signature": "tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j...65r==",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ac565b8b1a6c5d002d285f9598aa1d9b.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:123456789012:orders:21be56ed-a058-49f5-8c98-aedd2564c486",
        "MessageAttributes": {
            "tenant": {"Type": "String", "Value": "acme"},
            "weight": {"Type": "Number", "Value": "2"}
        }
    })
    .to_string()
}

conformance!(
    sns_notification_is_decoded_and_a_bad_one_stays_with_an_extract_error,
    |ep: Endpoint| async move {
        let url = ep.create_queue("sns", &[("VisibilityTimeout", "60")]).await;
        send(
            &ep,
            "sns",
            [
                OutgoingMessage::new(sns_notification(r#"{"order_id":42}"#)),
                OutgoingMessage::new(sns_notification(r#"{"order_id":"x"}"#)),
            ],
        )
        .await;
        let log = Log::default();
        let running = Running::start(
            consumer(&ep)
                .queue(ep.name("sns"), options())
                .handler(
                    ep.name("sns"),
                    |sns: sqs_handler::Sns<Order>, State(log): State<Log>| async move {
                        let millis = sns.timestamp.duration_since(UNIX_EPOCH).unwrap().as_millis();
                        log.saw(format!(
                            "order {} from {} subject {:?} sns id {} at {millis} tenant {:?} weight {:?}",
                            sns.message.order_id,
                            sns.topic_arn,
                            sns.subject,
                            sns.message_id,
                            sns.string_attribute("tenant"),
                            sns.message_attributes.get("weight"),
                        ));
                    },
                )
                .hook(ep.name("sns"), record_error)
                .state(log.clone())
                .build()
                .await
                .unwrap(),
        );
        settle(&ep, &url, running, &log, (1, 1, 1)).await;
        assert_eq!(
            log.seen(),
            [
                "order 42 from arn:aws:sns:us-east-1:123456789012:orders subject Some(\"order placed\") \
                 sns id 95df01b4-ee98-5cb9-9903-4c221d41eb5e at 1546433107000 tenant Some(\"acme\") \
                 weight Some(Number(\"2\"))"
            ]
        );
        assert_eq!(
            log.errors(),
            [
                "Extract cannot extract sqs_handler::extract::Sns<extractors::Order> from message: \
                 the SNS Message does not decode: invalid type: string \"x\", expected u64 at line 1 column 15"
            ],
            "the bad one failed extraction; the handler did not see it"
        );
    }
);

#[derive(Debug, serde::Deserialize)]
struct InstanceState {
    #[serde(rename = "instance-id")]
    instance_id: String,
    state: String,
}

/// An event as an EventBridge rule with an SQS target delivers it.
fn eventbridge_event(detail: serde_json::Value) -> String {
    serde_json::json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "111122223333",
        "time": "2017-12-22T18:43:48Z",
        "region": "us-west-1",
        "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
        "detail": detail
    })
    .to_string()
}

conformance!(
    eventbridge_event_is_decoded_and_a_bad_one_stays_with_an_extract_error,
    |ep: Endpoint| async move {
        let url = ep
            .create_queue("events", &[("VisibilityTimeout", "60")])
            .await;
        send(
            &ep,
            "events",
            [
                OutgoingMessage::new(eventbridge_event(
                    serde_json::json!({"instance-id": "i-1234567890abcdef0", "state": "terminated"}),
                )),
                OutgoingMessage::new(eventbridge_event(serde_json::json!({"state": "terminated"}))),
            ],
        )
        .await;
        let log = Log::default();
        let running = Running::start(
            consumer(&ep)
                .queue(ep.name("events"), options())
                .handler(
                    ep.name("events"),
                    |event: EventBridge<InstanceState>, State(log): State<Log>| async move {
                        let secs = event.time.duration_since(UNIX_EPOCH).unwrap().as_secs();
                        log.saw(format!(
                            "{} {} is {} ({} from {} in {}/{} at {secs}, {:?}, v{})",
                            event.id,
                            event.detail.instance_id,
                            event.detail.state,
                            event.detail_type,
                            event.source,
                            event.account,
                            event.region,
                            event.resources,
                            event.version,
                        ));
                    },
                )
                .hook(ep.name("events"), record_error)
                .state(log.clone())
                .build()
                .await
                .unwrap(),
        );
        settle(&ep, &url, running, &log, (1, 1, 1)).await;
        assert_eq!(
            log.seen(),
            [
                "6a7e8feb-b491-4cf7-a9f1-bf3703467718 i-1234567890abcdef0 is terminated \
                 (EC2 Instance State-change Notification from aws.ec2 in 111122223333/us-west-1 \
                 at 1513968228, [\"arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0\"], v0)"
            ]
        );
        assert_eq!(
            log.errors(),
            [
                "Extract cannot extract sqs_handler::extract::EventBridge<extractors::InstanceState> \
                 from message: the event's detail does not decode: missing field `instance-id`"
            ]
        );
    }
);

#[derive(Debug, serde::Deserialize)]
struct Job {
    id: u32,
}

#[tokio::test]
async fn option_and_result_extractors_let_the_handler_decide() {
    let ep = Endpoint::local().await;
    let optional = ep.create_queue("optional", &[]).await;
    let result = ep.create_queue("result", &[]).await;
    for queue in ["optional", "result"] {
        send(
            &ep,
            queue,
            [
                OutgoingMessage::new("not json"),
                OutgoingMessage::new(r#"{"id":3}"#),
            ],
        )
        .await;
    }
    let log = Log::default();
    let running = Running::start(
        consumer(&ep)
            .queue(ep.name("optional"), options())
            .queue(ep.name("result"), options())
            .handler(
                ep.name("optional"),
                |job: Option<Json<Job>>, State(log): State<Log>| async move {
                    log.saw(format!("option {:?}", job.map(|Json(j)| j.id)));
                },
            )
            .handler(
                ep.name("result"),
                |job: Result<Json<Job>, ExtractError>, State(log): State<Log>| async move {
                    match job {
                        Ok(Json(job)) => log.saw(format!("result ok {}", job.id)),
                        Err(e) => log.saw(format!("result err {e}")),
                    }
                },
            )
            .hook(ep.name("optional"), record_error)
            .hook(ep.name("result"), record_error)
            .state(log.clone())
            .build()
            .await
            .unwrap(),
    );
    wait_for("four handler calls", Duration::from_secs(20), || async {
        (log.seen.lock().unwrap().len() == 4).then_some(())
    })
    .await;
    for url in [&optional, &result] {
        wait_for("the queue to be empty", Duration::from_secs(20), || async {
            (queue_counts(&ep.client, url).await == (0, 0, 0)).then_some(())
        })
        .await;
    }
    running.stop().await;
    assert_eq!(
        log.seen(),
        [
            "option None",
            "option Some(3)",
            "result err cannot extract sqs_handler::extract::Json<extractors::Job> from message: \
             expected ident at line 1 column 2",
            "result ok 3",
        ]
    );
    assert_eq!(
        log.errors(),
        Vec::<String>::new(),
        "no processing error: all deleted"
    );
}

/// A user store: what a real application would query over the network.
#[derive(Clone, Default)]
struct Users(Arc<HashMap<String, String>>);

/// The user named by the `user-id` message attribute, loaded from `Users` in the state.
#[derive(Debug)]
struct User {
    name: String,
}

impl FromMessage for User {
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        let id = ctx
            .message()
            .message_attributes()
            .get("user-id")
            .and_then(|v| v.string_value())
            .ok_or_else(|| ExtractError::new("User", "no user-id attribute"))?;
        let users = ctx
            .state::<Users>()
            .ok_or_else(|| ExtractError::new("User", "no Users in the state"))?;
        // The lookup is async: the handler's future waits on it.
        tokio::task::yield_now().await;
        match users.0.get(id) {
            Some(name) => Ok(User { name: name.clone() }),
            None => Err(ExtractError::new("User", format!("no user {id:?}"))),
        }
    }

    fn requirement() -> Option<Requirement> {
        Some(Requirement::state::<Users>())
    }
}

#[tokio::test]
async fn an_async_extractor_loads_from_the_state_and_its_failure_keeps_the_message() {
    let ep = Endpoint::local().await;
    let url = ep
        .create_queue("greetings", &[("VisibilityTimeout", "60")])
        .await;
    send(
        &ep,
        "greetings",
        [
            OutgoingMessage::new("hi").string_attribute("user-id", "u1"),
            OutgoingMessage::new("hi").string_attribute("user-id", "u9"),
        ],
    )
    .await;
    let users = Users(Arc::new(HashMap::from([(
        "u1".to_owned(),
        "Ada".to_owned(),
    )])));
    let log = Log::default();
    let running = Running::start(
        consumer(&ep)
            .queue(ep.name("greetings"), options())
            .handler(
                ep.name("greetings"),
                |user: User, State(log): State<Log>| async move {
                    log.saw(format!("hello {}", user.name));
                },
            )
            .hook(ep.name("greetings"), record_error)
            .state(log.clone())
            .state(users)
            .build()
            .await
            .unwrap(),
    );
    settle(&ep, &url, running, &log, (1, 1, 1)).await;
    assert_eq!(log.seen(), ["hello Ada"]);
    assert_eq!(
        log.errors(),
        ["Extract cannot extract User from message: no user \"u9\""]
    );
}

#[tokio::test]
async fn a_custom_extractors_state_is_checked_at_build() {
    let ep = Endpoint::local().await;
    ep.create_queue("greetings", &[]).await;
    let error = consumer(&ep)
        .handler(ep.name("greetings"), |_: User| async {})
        .build()
        .await
        .unwrap_err();
    match error {
        BuildError::MissingState { type_name, .. } => {
            assert_eq!(type_name, "extractors::Users");
        }
        other => panic!("expected MissingState, got {other}"),
    }
}
