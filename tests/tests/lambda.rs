//! The Lambda adapter against the Lambda Runtime API protocol: the `lambda-fn` binary (a
//! function built with `sqs_handler::lambda` on `lambda_runtime`) runs as a child process
//! against a local Runtime API, which feeds it SQS events and records its answers. Each test
//! asserts the exact `batchItemFailures` (or error) JSON, which handlers ran and which hooks
//! fired with what; a forwarded message is checked in its queue on sqs-local.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sqs_handler_tests::lambda_api::{Answer, RuntimeApi};
use sqs_handler_tests::wait_for;
use tokio::io::AsyncBufReadExt as _;

const FUNCTION: &str = env!("CARGO_BIN_EXE_lambda-fn");
const ANSWER: Duration = Duration::from_secs(30);

/// The function process, the Runtime API it polls, and its stdout lines.
struct Function {
    api: RuntimeApi,
    lines: Arc<Mutex<Vec<String>>>,
    _child: tokio::process::Child,
    _sqs: sqs_local::LocalSqs,
}

impl Function {
    async fn start(partial: bool) -> Self {
        let sqs = sqs_local::LocalSqs::builder()
            .queue("jobs-dlq")
            .start()
            .await
            .expect("start sqs-local");
        let api = RuntimeApi::start().await;
        let scratch = std::env::temp_dir().join(format!("lambda-fn-{}", std::process::id()));
        let mut child = tokio::process::Command::new(FUNCTION)
            .env("AWS_LAMBDA_RUNTIME_API", api.address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "lambda-fn")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_ENDPOINT_URL_SQS", sqs.endpoint_url())
            .env("AWS_REGION", sqs_local::REGION)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", scratch.join("no-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                scratch.join("no-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("LAMBDA_PARTIAL", if partial { "1" } else { "0" })
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn lambda-fn");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let sink = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        let function = Self {
            api,
            lines,
            _child: child,
            _sqs: sqs,
        };
        wait_for("lambda-fn to print READY", ANSWER, || async {
            function.lines_starting("READY").first().cloned()
        })
        .await;
        function
    }

    /// Invokes the function with `records` and returns its answer.
    async fn invoke(&mut self, id: &str, records: Vec<Value>, time_left: Duration) -> Answer {
        self.api
            .invoke(id, json!({ "Records": records }), time_left);
        let (answered, answer) = self.api.answer(ANSWER).await;
        assert_eq!(answered, id, "the answer is for the invocation");
        answer
    }

    /// The stdout lines starting with `prefix`, sorted.
    fn lines_starting(&self, prefix: &str) -> Vec<String> {
        let mut lines: Vec<String> = self
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .cloned()
            .collect();
        lines.sort();
        lines
    }
}

/// A record as the SQS event source mapping delivers it.
fn record(queue: &str, id: &str, body: &str, group: Option<&str>) -> Value {
    let mut attributes = json!({
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1764441600000",
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp": "1764441600100"
    });
    if let Some(g) = group {
        attributes["MessageGroupId"] = json!(g);
        attributes["MessageDeduplicationId"] = json!(id);
        attributes["SequenceNumber"] = json!("18849496460467696128");
    }
    json!({
        "messageId": id,
        "receiptHandle": format!("rh-{id}"),
        "body": body,
        "attributes": attributes,
        "messageAttributes": {
            "tenant": {"stringValue": "acme", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
        },
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
        "awsRegion": "us-east-1"
    })
}

fn job(queue: &str, id: &str, action: &str) -> Value {
    record(queue, id, &json!({ "action": action }).to_string(), None)
}

fn fifo(id: &str, group: &str, action: &str) -> Value {
    record(
        "orders.fifo",
        id,
        &json!({ "action": action }).to_string(),
        Some(group),
    )
}

fn failures(ids: &[&str]) -> Answer {
    let items: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "itemIdentifier": id }))
        .collect();
    Answer::Response(json!({ "batchItemFailures": items }))
}

#[tokio::test]
async fn each_outcome_is_reported_as_lambda_expects() {
    let mut f = Function::start(true).await;
    let records = vec![
        job("jobs", "j-ok", "ok"),
        job("jobs", "j-err", "error"),
        job("jobs", "j-panic", "panic"),
        job("jobs", "j-slow", "slow"),
        record("jobs", "j-bad", "not json", None),
        job("jobs", "j-drop", "drop"),
        fifo("a1", "A", "ok"),
        fifo("b1", "B", "drop"),
        fifo("a2", "A", "error"),
        fifo("b2", "B", "ok"),
        fifo("a3", "A", "ok"),
        record("rows", "r1", "1.5", None),
        record("rows", "r2", "x", None),
        record("nobody", "u1", "{}", None),
        record("rows.fifo", "x1", "x", Some("X")),
        record("rows.fifo", "x2", "2.5", Some("X")),
        record("rows.fifo", "y1", "3", Some("Y")),
    ];
    // 4 s left, less the default 1 s margin: the slow handler is cancelled after about 3 s.
    let answer = f.invoke("inv-1", records, Duration::from_secs(4)).await;
    assert_eq!(
        answer,
        failures(&[
            "j-err", "j-panic", "j-slow", "j-bad", "a2", "a3", "r2", "u1", "x1", "x2"
        ])
    );
    assert_eq!(
        f.lines_starting("HANDLED"),
        [
            "HANDLED jobs j-drop",
            "HANDLED jobs j-err",
            "HANDLED jobs j-ok",
            "HANDLED jobs j-panic",
            "HANDLED jobs j-slow",
            "HANDLED orders.fifo a1",
            "HANDLED orders.fifo a2",
            "HANDLED orders.fifo b1",
            "HANDLED orders.fifo b2",
            "HANDLED rows r1",
            "HANDLED rows r2",
            "HANDLED rows x1",
            "HANDLED rows x2",
            "HANDLED rows y1",
        ],
        "j-bad never reached its handler (it did not extract); a3 waited behind a2's failure"
    );
    assert_eq!(
        f.lines_starting("HOOK"),
        [
            "HOOK message_processed jobs j-ok",
            "HOOK processing_error jobs j-bad Extract LeftForRedelivery",
            "HOOK processing_error jobs j-drop Handler Forwarded(\"jobs-dlq\")",
            "HOOK processing_error jobs j-err Handler LeftForRedelivery",
            "HOOK processing_error jobs j-panic Panic LeftForRedelivery",
            "HOOK processing_error orders.fifo a2 Handler LeftForRedelivery",
            "HOOK processing_error orders.fifo b1 Handler Deleted",
            "HOOK processing_error rows r2 Handler LeftForRedelivery",
            "HOOK processing_error rows.fifo x1 Handler LeftForRedelivery",
            "HOOK timeout_error jobs j-slow",
        ]
    );
    // The non-retryable job was forwarded, then left out of the failures (Lambda deletes it).
    let client = aws_sdk_sqs::Client::new(&f._sqs.sdk_config());
    let url = client
        .get_queue_url()
        .queue_name("jobs-dlq")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let got = client
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let bodies: Vec<&str> = got.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, [r#"{"action":"drop"}"#]);

    // The function serves the next invocation: an all-good one reports nothing.
    let answer = f
        .invoke(
            "inv-2",
            vec![job("jobs", "k1", "ok"), fifo("k2", "C", "ok")],
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(answer, failures(&[]));
}

#[tokio::test]
async fn without_partial_batch_responses_a_failure_fails_the_invocation() {
    let mut f = Function::start(false).await;
    let answer = f
        .invoke(
            "inv-1",
            vec![job("jobs", "j-ok", "ok"), job("jobs", "j-err", "error")],
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        answer,
        Answer::Error(
            Some("unhandled".to_owned()),
            json!({
                "errorType": "SqsHandler.BatchFailed",
                "errorMessage": "1 of 2 messages failed (j-err); without ReportBatchItemFailures \
                                 the whole batch returns to the queue"
            })
        )
    );
    let answer = f
        .invoke(
            "inv-2",
            vec![job("jobs", "j2", "ok")],
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(answer, failures(&[]));
}

#[tokio::test]
async fn options_a_lambda_function_cannot_apply_are_refused_at_build() {
    let config = sqs_local::sdk_config_for("http://127.0.0.1:1");
    let retry = sqs_handler::QueueOptions::default()
        .retry(sqs_handler::RetryPolicy::Fixed(Duration::from_secs(5)));
    let breaker = sqs_handler::QueueOptions::default()
        .circuit_breaker(sqs_handler::CircuitBreaker::default());
    for (options, what) in [
        (
            retry,
            "a retry policy other than LeaveUntilVisibilityTimeout",
        ),
        (breaker, "a circuit breaker"),
    ] {
        let err = sqs_handler::SqsConsumer::builder(&config)
            .discover(false)
            .queue("jobs", options)
            .handler("jobs", || async {})
            .build_lambda()
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "queue \"jobs\": it is configured with {what}, which a Lambda function cannot \
                 apply (the event source mapping decides when a reported message returns): \
                 remove it from this queue's options for Lambda"
            )
        );
    }
}
