//! `Sns<T>`: an SNS notification delivered to the queue (raw message delivery off).

use std::collections::HashMap;
use std::time::SystemTime;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{Body, FromMessage, MessageContext, OptionalFromMessage, extractor_name, rfc3339};
use crate::error::ExtractError;

/// An SNS notification delivered to an SQS queue, its `Message` decoded as JSON into `T`.
///
/// When a queue subscribes to a topic without raw message delivery, SNS wraps each published
/// message in a JSON envelope (`Type`, `MessageId`, `TopicArn`, `Subject`, `Message`,
/// `Timestamp`, `SignatureVersion`, `Signature`, `SigningCertURL`, `UnsubscribeURL`,
/// `MessageAttributes`); this extractor reads the envelope and decodes `Message`. With raw
/// message delivery on, the body is the message itself: take [`Json<T>`](crate::Json).
///
/// A body that is not an SNS `Notification`, a `Message` that does not decode as `T`, or a
/// `Timestamp` that is not a date fails like [`Json<T>`](crate::Json): an
/// [`ExtractError`] naming `Sns<T>` and what is wrong, `processing_error` with
/// [`FailureKind::Extract`](crate::FailureKind::Extract), the message not deleted.
/// `Option<Sns<T>>` is `None` instead.
///
/// `Sns<Body>` gives the `Message` as text, for topics that publish something other than JSON.
///
/// ```
/// use sqs_handler::{Body, Sns, sqs_message_handler};
///
/// #[derive(serde::Deserialize)]
/// struct OrderPlaced {
///     order_id: u64,
/// }
///
/// #[sqs_message_handler("orders-from-sns")]
/// async fn placed(sns: Sns<OrderPlaced>) {
///     println!(
///         "order {} from {} ({:?}), tenant {:?}",
///         sns.message.order_id,
///         sns.topic_arn,
///         sns.subject,
///         sns.string_attribute("tenant"),
///     );
/// }
///
/// #[sqs_message_handler("alerts-from-sns")]
/// async fn alert(Sns { message: Body(text), subject, .. }: Sns<Body>) {
///     println!("{}: {text}", subject.as_deref().unwrap_or("alert"));
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Sns<T> {
    /// The published message (`Message`), decoded.
    pub message: T,
    /// The id SNS gave the published message (`MessageId`); not the SQS message id.
    pub message_id: String,
    /// The topic it was published to (`TopicArn`).
    pub topic_arn: String,
    /// The subject it was published with, if any (`Subject`).
    pub subject: Option<String>,
    /// When it was published (`Timestamp`).
    pub timestamp: SystemTime,
    /// Its message attributes (`MessageAttributes`), empty when it had none.
    pub message_attributes: HashMap<String, SnsAttribute>,
    /// `SignatureVersion`, for verifying the signature.
    pub signature_version: Option<String>,
    /// `Signature`: base64 of the SHA1withRSA (version 1) or SHA256withRSA (version 2)
    /// signature of the notification.
    pub signature: Option<String>,
    /// `SigningCertURL`: the certificate the signature was made with.
    pub signing_cert_url: Option<String>,
    /// `UnsubscribeURL`.
    pub unsubscribe_url: Option<String>,
}

impl<T> Sns<T> {
    /// The value of a String or Number message attribute.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::time::UNIX_EPOCH;
    /// use sqs_handler::{Sns, SnsAttribute};
    ///
    /// let sns = Sns {
    ///     message: (),
    ///     message_id: "5b6b0c2e".into(),
    ///     topic_arn: "arn:aws:sns:us-east-1:123456789012:orders".into(),
    ///     subject: None,
    ///     timestamp: UNIX_EPOCH,
    ///     message_attributes: HashMap::from([
    ///         ("tenant".to_owned(), SnsAttribute::String("acme".into())),
    ///         ("tags".to_owned(), SnsAttribute::StringArray(vec!["a".into()])),
    ///     ]),
    ///     signature_version: None,
    ///     signature: None,
    ///     signing_cert_url: None,
    ///     unsubscribe_url: None,
    /// };
    /// assert_eq!(sns.string_attribute("tenant"), Some("acme"));
    /// assert_eq!(sns.string_attribute("tags"), None);
    /// assert_eq!(sns.string_attribute("missing"), None);
    /// ```
    pub fn string_attribute(&self, name: &str) -> Option<&str> {
        self.message_attributes
            .get(name)
            .and_then(SnsAttribute::as_str)
    }
}

/// An SNS message attribute, by its `Type`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SnsAttribute {
    /// `String` (or `String.<label>`).
    String(String),
    /// `Number`, as SNS sends it (a decimal up to 10^9 with 5 decimal places, as text).
    Number(String),
    /// `String.Array`: a JSON array of strings, numbers, booleans and nulls.
    StringArray(Vec<serde_json::Value>),
    /// `Binary`, base64-encoded as SNS sends it.
    Binary(String),
}

impl SnsAttribute {
    /// The value of a String or Number attribute.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) | Self::Number(s) => Some(s),
            Self::StringArray(_) | Self::Binary(_) => None,
        }
    }

    fn decode(kind: &str, value: String) -> Result<Self, String> {
        let base = kind.split('.').next().unwrap_or(kind);
        match (kind, base) {
            ("String.Array", _) => serde_json::from_str(&value)
                .map(Self::StringArray)
                .map_err(|e| format!("its String.Array value is not a JSON array: {e}")),
            (_, "String") => Ok(Self::String(value)),
            (_, "Number") => Ok(Self::Number(value)),
            (_, "Binary") => Ok(Self::Binary(value)),
            _ => Err(format!(
                "its Type {kind:?} is not String, String.Array, Number or Binary"
            )),
        }
    }
}

/// The envelope as SNS writes it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    #[serde(rename = "Type")]
    kind: String,
    message_id: String,
    topic_arn: String,
    #[serde(default)]
    subject: Option<String>,
    message: String,
    timestamp: String,
    #[serde(default)]
    signature_version: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    // Lambda's SNS events spell these `SigningCertUrl` and `UnsubscribeUrl`.
    #[serde(rename = "SigningCertURL", alias = "SigningCertUrl", default)]
    signing_cert_url: Option<String>,
    #[serde(rename = "UnsubscribeURL", alias = "UnsubscribeUrl", default)]
    unsubscribe_url: Option<String>,
    #[serde(default)]
    message_attributes: HashMap<String, WireAttribute>,
}

#[derive(Deserialize)]
struct WireAttribute {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Value")]
    value: String,
}

/// Reads the envelope in `body` and decodes its `Message` with `decode`.
fn decode<T>(
    body: &str,
    decode_message: impl FnOnce(String) -> Result<T, String>,
) -> Result<Sns<T>, String> {
    let envelope: Envelope = serde_json::from_str(body)
        .map_err(|e| format!("the body is not an SNS notification: {e}"))?;
    match envelope.kind.as_str() {
        "Notification" => {}
        "SubscriptionConfirmation" => {
            return Err(
                "the body is an SNS SubscriptionConfirmation, not a Notification: confirm the \
                 subscription by visiting its SubscribeURL"
                    .to_owned(),
            );
        }
        other => {
            return Err(format!(
                "the body is an SNS {other:?} message, not a Notification"
            ));
        }
    }
    let timestamp = rfc3339::parse(&envelope.timestamp).ok_or_else(|| {
        format!(
            "the SNS Timestamp {:?} is not an RFC 3339 date-time",
            envelope.timestamp
        )
    })?;
    let message_attributes = envelope
        .message_attributes
        .into_iter()
        .map(|(name, a)| match SnsAttribute::decode(&a.kind, a.value) {
            Ok(attribute) => Ok((name, attribute)),
            Err(e) => Err(format!("SNS message attribute {name:?}: {e}")),
        })
        .collect::<Result<_, _>>()?;
    let message = decode_message(envelope.message)?;
    Ok(Sns {
        message,
        message_id: envelope.message_id,
        topic_arn: envelope.topic_arn,
        subject: envelope.subject,
        timestamp,
        message_attributes,
        signature_version: envelope.signature_version,
        signature: envelope.signature,
        signing_cert_url: envelope.signing_cert_url,
        unsubscribe_url: envelope.unsubscribe_url,
    })
}

fn decode_json<T: DeserializeOwned>(body: &str) -> Result<Sns<T>, ExtractError> {
    decode(body, |message| {
        serde_json::from_str(&message).map_err(|e| format!("the SNS Message does not decode: {e}"))
    })
    .map_err(|e| ExtractError::new(extractor_name::<Sns<T>>(), e))
}

fn decode_text(body: &str) -> Result<Sns<Body>, ExtractError> {
    decode(body, |message| Ok(Body(message)))
        .map_err(|e| ExtractError::new(extractor_name::<Sns<Body>>(), e))
}

impl<T: DeserializeOwned> FromMessage for Sns<T> {
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        decode_json(ctx.message.body())
    }
}

/// The `Message` as text: [`Body`] is not JSON-decodable, so this does not overlap the impl
/// for `T: DeserializeOwned`.
impl FromMessage for Sns<Body> {
    async fn from_message(ctx: &MessageContext) -> Result<Self, ExtractError> {
        decode_text(ctx.message.body())
    }
}

/// `None` when the body is not an SNS notification of a `T`.
impl<T: DeserializeOwned> OptionalFromMessage for Sns<T> {
    async fn from_message_optional(ctx: &MessageContext) -> Result<Option<Self>, ExtractError> {
        Ok(decode_json(ctx.message.body()).ok())
    }
}

/// `None` when the body is not an SNS notification.
impl OptionalFromMessage for Sns<Body> {
    async fn from_message_optional(ctx: &MessageContext) -> Result<Option<Self>, ExtractError> {
        Ok(decode_text(ctx.message.body()).ok())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// SNS's example of a notification delivered to SQS (developer guide, "Fanout to Amazon
    /// SQS queues"), with a JSON message, and message attributes as SNS writes them.
    const NOTIFICATION: &str = r#"{
      "Type" : "Notification",
      "MessageId" : "63a3f6b6-d533-4a47-aef9-fcf5cf758c76",
      "TopicArn" : "arn:aws:sns:us-west-2:123456789012:MyTopic",
      "Subject" : "Testing publish to subscribed queues",
      "Message" : "{\"order_id\":42,\"items\":[\"book\"]}",
      "Timestamp" : "2012-03-29T05:12:16.901Z",
      "SignatureVersion" : "1",
      "Signature" : "EXAMPLEnTrFPa3...",
      "SigningCertURL" : "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
      "UnsubscribeURL" : "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-west-2:123456789012:MyTopic:c7fe3a54-ab0e-4ec2-88e0-db410a0f2bee",
      "MessageAttributes" : {
        "tenant" : {"Type":"String","Value":"acme"},
        "weight" : {"Type":"Number","Value":"1.5"},
        "tags" : {"Type":"String.Array","Value":"[\"a\",1,true,null]"},
        "blob" : {"Type":"Binary","Value":"AQID"}
      }
    }"#;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Order {
        order_id: u64,
        items: Vec<String>,
    }

    fn text(error: ExtractError) -> String {
        error.to_string()
    }

    #[test]
    fn a_notification_is_decoded_with_its_metadata() {
        let sns: Sns<Order> = decode_json(NOTIFICATION).unwrap();
        assert_eq!(
            sns.message,
            Order {
                order_id: 42,
                items: vec!["book".into()]
            }
        );
        assert_eq!(sns.message_id, "63a3f6b6-d533-4a47-aef9-fcf5cf758c76");
        assert_eq!(sns.topic_arn, "arn:aws:sns:us-west-2:123456789012:MyTopic");
        assert_eq!(
            sns.subject.as_deref(),
            Some("Testing publish to subscribed queues")
        );
        assert_eq!(
            sns.timestamp,
            UNIX_EPOCH + Duration::from_millis(1_332_997_936_901)
        );
        assert_eq!(sns.signature_version.as_deref(), Some("1"));
        assert!(sns.signing_cert_url.unwrap().ends_with(".pem"));
        assert!(sns.unsubscribe_url.unwrap().contains("Action=Unsubscribe"));
        let attributes = &sns.message_attributes;
        assert_eq!(attributes["tenant"], SnsAttribute::String("acme".into()));
        assert_eq!(attributes["weight"], SnsAttribute::Number("1.5".into()));
        assert_eq!(
            attributes["tags"],
            SnsAttribute::StringArray(vec![
                "a".into(),
                1.into(),
                true.into(),
                serde_json::Value::Null
            ])
        );
        assert_eq!(attributes["blob"], SnsAttribute::Binary("AQID".into()));
    }

    #[test]
    fn subject_and_attributes_are_optional() {
        let body = r#"{"Type":"Notification","MessageId":"m","TopicArn":"arn:t","Message":"{\"order_id\":1,\"items\":[]}","Timestamp":"2024-01-01T00:00:00.000Z"}"#;
        let sns: Sns<Order> = decode_json(body).unwrap();
        assert_eq!(sns.subject, None);
        assert!(sns.message_attributes.is_empty());
        assert_eq!(sns.signature, None);
        assert_eq!(sns.message.order_id, 1);
    }

    #[test]
    fn a_text_message_is_read_as_body() {
        let body = r#"{"Type":"Notification","MessageId":"m","TopicArn":"arn:t","Message":"Hello world!","Timestamp":"2012-03-29T05:12:16.901Z"}"#;
        let sns = decode_text(body).unwrap();
        assert_eq!(sns.message, Body("Hello world!".into()));
        let error = text(decode_json::<Order>(body).unwrap_err());
        assert!(
            error.starts_with("cannot extract sqs_handler::extract::Sns<")
                && error.contains(
                    "::Order> from message: the SNS Message does not decode: expected value"
                ),
            "{error}"
        );
    }

    #[test]
    fn failures_name_the_extractor_and_what_is_wrong() {
        let cases = [
            (
                "not json".to_owned(),
                "the body is not an SNS notification: expected ident at line 1 column 2",
            ),
            (
                r#"{"order_id":42,"items":[]}"#.to_owned(),
                "the body is not an SNS notification: missing field `Type`",
            ),
            (
                NOTIFICATION.replace(
                    r#""TopicArn" : "arn:aws:sns:us-west-2:123456789012:MyTopic","#,
                    "",
                ),
                "the body is not an SNS notification: missing field `TopicArn`",
            ),
            (
                NOTIFICATION.replace(r#"{\"order_id\":42,"#, r#"{\"order_id\":\"x\","#),
                "the SNS Message does not decode: invalid type: string \"x\", expected u64",
            ),
            (
                NOTIFICATION.replace(r#""Notification""#, r#""SubscriptionConfirmation""#),
                "the body is an SNS SubscriptionConfirmation, not a Notification: confirm",
            ),
            (
                NOTIFICATION.replace("2012-03-29T05:12:16.901Z", "yesterday"),
                "the SNS Timestamp \"yesterday\" is not an RFC 3339 date-time",
            ),
            (
                NOTIFICATION.replace(r#"[\"a\",1,true,null]"#, "a,b"),
                "SNS message attribute \"tags\": its String.Array value is not a JSON array",
            ),
            (
                NOTIFICATION.replace(r#""Type":"Binary""#, r#""Type":"Blob""#),
                "SNS message attribute \"blob\": its Type \"Blob\" is not String, String.Array, Number or Binary",
            ),
        ];
        for (body, expected) in cases {
            assert_ne!(body, NOTIFICATION, "the case changes the notification");
            let error = decode_json::<Order>(&body).unwrap_err();
            assert!(
                error.extractor.starts_with("sqs_handler::extract::Sns<")
                    && error.extractor.ends_with("::Order>"),
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
