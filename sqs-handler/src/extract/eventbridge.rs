//! `EventBridge<T>`: an EventBridge event delivered to the queue by a rule's SQS target.

use std::time::SystemTime;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{FromMessage, MessageContext, OptionalFromMessage, extractor_name, rfc3339};
use crate::error::ExtractError;

/// An EventBridge event delivered to an SQS queue, its `detail` decoded into `T`.
///
/// A rule with an SQS target (and no input transformer) sends the whole event as the body:
/// `version`, `id`, `detail-type`, `source`, `account`, `time`, `region`, `resources` and
/// `detail`. A body that is not such an event, a `detail` that does not decode as `T`, or a
/// `time` that is not a date fails like [`Json<T>`](crate::Json): an [`ExtractError`] naming
/// `EventBridge<T>` and what is wrong, `processing_error` with
/// [`FailureKind::Extract`](crate::FailureKind::Extract), the message not deleted.
/// `Option<EventBridge<T>>` is `None` instead. Take `EventBridge<serde_json::Value>` to route
/// on `detail_type` before decoding.
///
/// ```
/// use sqs_handler::{EventBridge, sqs_message_handler};
///
/// #[derive(serde::Deserialize)]
/// struct InstanceState {
///     #[serde(rename = "instance-id")]
///     instance_id: String,
///     state: String,
/// }
///
/// #[sqs_message_handler("ec2-events")]
/// async fn state_changed(event: EventBridge<InstanceState>) {
///     println!(
///         "{} in {}/{}: {} is {}",
///         event.detail_type, event.account, event.region, event.detail.instance_id, event.detail.state
///     );
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EventBridge<T> {
    /// The event's `detail`, decoded.
    pub detail: T,
    /// `detail-type`: with `source`, says what `detail` holds.
    pub detail_type: String,
    /// `source`: the service or application that sent it (`aws.ec2`, `com.example.orders`).
    pub source: String,
    /// `id`: unique per event.
    pub id: String,
    /// `time`: when it happened, as its source says.
    pub time: SystemTime,
    /// `region` it came from.
    pub region: String,
    /// `account`: the 12-digit AWS account it came from.
    pub account: String,
    /// `resources`: ARNs of the resources it concerns (often empty).
    pub resources: Vec<String>,
    /// `version`: `0` for every event today.
    pub version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Envelope {
    version: String,
    id: String,
    detail_type: String,
    source: String,
    account: String,
    time: String,
    region: String,
    #[serde(default)]
    resources: Vec<String>,
    detail: serde_json::Value,
}

fn decode<T: DeserializeOwned>(body: &str) -> Result<EventBridge<T>, ExtractError> {
    let fail = |why: String| ExtractError::new(extractor_name::<EventBridge<T>>(), why);
    let envelope: Envelope = serde_json::from_str(body)
        .map_err(|e| fail(format!("the body is not an EventBridge event: {e}")))?;
    let time = rfc3339::parse(&envelope.time).ok_or_else(|| {
        fail(format!(
            "the event's time {:?} is not an RFC 3339 date-time",
            envelope.time
        ))
    })?;
    let detail = serde_json::from_value(envelope.detail)
        .map_err(|e| fail(format!("the event's detail does not decode: {e}")))?;
    Ok(EventBridge {
        detail,
        detail_type: envelope.detail_type,
        source: envelope.source,
        id: envelope.id,
        time,
        region: envelope.region,
        account: envelope.account,
        resources: envelope.resources,
        version: envelope.version,
    })
}

impl<T: DeserializeOwned> FromMessage for EventBridge<T> {
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        decode(ctx.message.body())
    }
}

/// `None` when the body is not an EventBridge event of a `T`.
impl<T: DeserializeOwned> OptionalFromMessage for EventBridge<T> {
    async fn from_message_optional(ctx: &MessageContext) -> Result<Option<Self>, ExtractError> {
        Ok(decode(ctx.message.body()).ok())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// EventBridge's example event (user guide, "Amazon EventBridge events").
    const EVENT: &str = r#"{
      "version": "0",
      "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
      "detail-type": "EC2 Instance State-change Notification",
      "source": "aws.ec2",
      "account": "111122223333",
      "time": "2017-12-22T18:43:48Z",
      "region": "us-west-1",
      "resources": [
        "arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"
      ],
      "detail": {
        "instance-id": "i-1234567890abcdef0",
        "state": "terminated"
      }
    }"#;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct InstanceState {
        #[serde(rename = "instance-id")]
        instance_id: String,
        state: String,
    }

    #[test]
    fn an_event_is_decoded_with_its_metadata() {
        let event: EventBridge<InstanceState> = decode(EVENT).unwrap();
        assert_eq!(
            event.detail,
            InstanceState {
                instance_id: "i-1234567890abcdef0".into(),
                state: "terminated".into()
            }
        );
        assert_eq!(event.detail_type, "EC2 Instance State-change Notification");
        assert_eq!(event.source, "aws.ec2");
        assert_eq!(event.id, "6a7e8feb-b491-4cf7-a9f1-bf3703467718");
        assert_eq!(event.time, UNIX_EPOCH + Duration::from_secs(1_513_968_228));
        assert_eq!(event.region, "us-west-1");
        assert_eq!(event.account, "111122223333");
        assert_eq!(
            event.resources,
            ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"]
        );
        assert_eq!(event.version, "0");
    }

    #[test]
    fn resources_may_be_absent() {
        let body = EVENT.replace(
            r#""resources": [
        "arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"
      ],"#,
            "",
        );
        assert_ne!(body, EVENT);
        let event: EventBridge<serde_json::Value> = decode(&body).unwrap();
        assert!(event.resources.is_empty());
        assert_eq!(event.detail["state"], "terminated");
    }

    #[test]
    fn failures_name_the_extractor_and_what_is_wrong() {
        let cases = [
            (
                "true".to_owned(),
                "the body is not an EventBridge event: invalid type: boolean `true`, expected struct Envelope",
            ),
            (
                EVENT.replace(
                    r#""detail-type": "EC2 Instance State-change Notification","#,
                    "",
                ),
                "the body is not an EventBridge event: missing field `detail-type`",
            ),
            (
                EVENT.replace(r#""state": "terminated""#, r#""state": 3"#),
                "the event's detail does not decode: invalid type: integer `3`, expected a string",
            ),
            (
                EVENT.replace(r#""instance-id": "i-1234567890abcdef0","#, ""),
                "the event's detail does not decode: missing field `instance-id`",
            ),
            (
                EVENT.replace("2017-12-22T18:43:48Z", "2017-12-22"),
                "the event's time \"2017-12-22\" is not an RFC 3339 date-time",
            ),
        ];
        for (body, expected) in cases {
            assert_ne!(body, EVENT, "the case changes the event");
            let error = decode::<InstanceState>(&body).unwrap_err();
            assert!(
                error
                    .extractor
                    .starts_with("sqs_handler::extract::EventBridge<"),
                "{}",
                error.extractor
            );
            let message = error.source.to_string();
            assert!(
                message.starts_with(expected),
                "expected {expected:?}, got {message:?}"
            );
        }
    }
}
