//! Queue policies as AddPermission and RemovePermission write them: a policy document whose
//! statements are labelled by `Sid`, rendered with SQS's key order.
//!
//! The shape follows what SQS returns (LocalStack's AWS-validated snapshot of
//! `test_sqs_permission_lifecycle`): `{"Version": "2008-10-17", "Id": "<queue arn>/SQSDefaultPolicy",
//! "Statement": [{"Sid": label, "Effect": "Allow", "Principal": {"AWS": ...}, "Action": ...,
//! "Resource": <queue arn>}]}`, where `AWS` and `Action` are a string for one value and a list
//! for more. Removing the last statement removes the policy.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Document {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<Value>,
    #[serde(default, deserialize_with = "one_or_many")]
    statement: Vec<Statement>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Statement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    effect: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    principal: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    action: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource: Option<Value>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

impl Statement {
    fn has_label(&self, label: &str) -> bool {
        self.sid.as_ref().and_then(Value::as_str) == Some(label)
    }
}

/// A policy's `Statement`: a list, or a single statement written without one.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Statement>, D::Error> {
    match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom),
        one => Ok(vec![
            serde_json::from_value(one).map_err(serde::de::Error::custom)?,
        ]),
    }
}

/// A string for one value, a list for more, as SQS writes `Principal.AWS` and `Action`.
fn one_or_list(values: Vec<String>) -> Value {
    match <[String; 1]>::try_from(values) {
        Ok([one]) => json!(one),
        Err(many) => json!(many),
    }
}

/// Reads the queue's current policy. A policy SQS would have refused can only have come from
/// sqs-local's SetQueueAttributes, which stores policies unchecked: it is reported, not
/// overwritten.
fn parse(policy: Option<&str>, queue_arn: &str) -> ApiResult<Document> {
    match policy {
        None => Ok(Document {
            version: Some(json!("2008-10-17")),
            id: Some(json!(format!("{queue_arn}/SQSDefaultPolicy"))),
            ..Document::default()
        }),
        Some(text) => serde_json::from_str(text).map_err(|_| {
            ApiError::invalid_attribute_value(
                "Policy",
                "the queue's Policy is not a JSON policy document; set a valid one with SetQueueAttributes first.",
            )
        }),
    }
}

fn render(doc: &Document) -> String {
    serde_json::to_string(doc).unwrap_or_default()
}

/// The policy with a statement labelled `label` added, allowing `actions` (without the `SQS:`
/// prefix) to the root principals of `accounts`.
pub(crate) fn add_statement(
    policy: Option<&str>,
    queue_arn: &str,
    label: &str,
    accounts: &[&str],
    actions: &[String],
) -> ApiResult<String> {
    let mut doc = parse(policy, queue_arn)?;
    if doc.statement.iter().any(|s| s.has_label(label)) {
        // Text: LocalStack's AWS-validated snapshot (test_sqs_permission_lifecycle).
        return Err(ApiError::invalid_parameter(format!(
            "Value {label} for parameter Label is invalid. Reason: Already exists."
        )));
    }
    let principals = accounts
        .iter()
        .map(|a| format!("arn:aws:iam::{a}:root"))
        .collect();
    let actions = actions.iter().map(|a| format!("SQS:{a}")).collect();
    doc.statement.push(Statement {
        sid: Some(json!(label)),
        effect: Some(json!("Allow")),
        principal: Some(json!({ "AWS": one_or_list(principals) })),
        action: Some(one_or_list(actions)),
        resource: Some(json!(queue_arn)),
        other: BTreeMap::new(),
    });
    Ok(render(&doc))
}

/// The policy without the statement labelled `label`; `None` when no statement is left.
pub(crate) fn remove_statement(
    policy: Option<&str>,
    queue_arn: &str,
    label: &str,
) -> ApiResult<Option<String>> {
    let mut doc = parse(policy, queue_arn)?;
    let before = doc.statement.len();
    doc.statement.retain(|s| !s.has_label(label));
    if doc.statement.len() == before {
        // Text: LocalStack's AWS-validated snapshot (test_sqs_permission_lifecycle).
        return Err(ApiError::invalid_parameter(format!(
            "Value {label} for parameter Label is invalid. Reason: can't find label."
        )));
    }
    Ok((!doc.statement.is_empty()).then(|| render(&doc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:sqs:us-east-1:000000000000:q";

    #[test]
    fn statements_render_as_sqs_writes_them() {
        let one =
            add_statement(None, ARN, "a", &["111111111111"], &["SendMessage".into()]).unwrap();
        assert_eq!(
            one,
            r#"{"Version":"2008-10-17","Id":"arn:aws:sqs:us-east-1:000000000000:q/SQSDefaultPolicy","Statement":[{"Sid":"a","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"SQS:SendMessage","Resource":"arn:aws:sqs:us-east-1:000000000000:q"}]}"#
        );
        let two = add_statement(
            Some(&one),
            ARN,
            "b",
            &["111111111111", "222222222222"],
            &["SendMessage".into(), "*".into()],
        )
        .unwrap();
        let v: Value = serde_json::from_str(&two).unwrap();
        assert_eq!(
            v["Statement"][1]["Action"],
            json!(["SQS:SendMessage", "SQS:*"])
        );
        assert_eq!(
            v["Statement"][1]["Principal"]["AWS"][1],
            "arn:aws:iam::222222222222:root"
        );
        assert!(add_statement(Some(&two), ARN, "a", &["1"], &["*".into()]).is_err());
        let left = remove_statement(Some(&two), ARN, "a").unwrap().unwrap();
        assert!(remove_statement(Some(&left), ARN, "a").is_err());
        assert_eq!(remove_statement(Some(&left), ARN, "b").unwrap(), None);
    }

    #[test]
    fn a_single_statement_object_and_unknown_keys_are_kept() {
        let custom = r#"{"Statement":{"Sid":"x","Effect":"Deny","Condition":{"Bool":{"aws:SecureTransport":"false"}}}}"#;
        let out = add_statement(Some(custom), ARN, "y", &["111111111111"], &["*".into()]).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"],
            "false"
        );
        assert_eq!(v["Statement"][1]["Sid"], "y");
        assert!(add_statement(Some("not json"), ARN, "y", &["1"], &["*".into()]).is_err());
    }
}
