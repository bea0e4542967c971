//! AddPermission and RemovePermission: labelled statements in the queue's `Policy` attribute.

use serde_json::json;

use super::{Call, SqsState, parse_json, reply};
use crate::error::{ApiError, ApiResult};
use crate::policy;
use crate::protocol::*;

/// Actions a permission can grant. Others are refused, the queue owner's own ones with a
/// reason of their own. Lists and texts: Eucalyptus's SQS clone (SimpleQueueService.java,
/// addPermission), which reproduces SQS's messages; moto's test_add_permission_errors has the
/// owner-only one.
const GRANTABLE_ACTIONS: &[&str] = &[
    "*",
    "SendMessage",
    "ReceiveMessage",
    "DeleteMessage",
    "ChangeMessageVisibility",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "PurgeQueue",
];
const OWNER_ONLY_ACTIONS: &[&str] = &[
    "AddPermission",
    "CreateQueue",
    "DeleteQueue",
    "ListQueues",
    "SetQueueAttributes",
    "RemovePermission",
    "TagQueue",
    "UntagQueue",
];
/// AWS's limit of actions in one statement.
const MAX_ACTIONS: usize = 7;

pub(super) fn add_permission(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: AddPermissionRequest = parse_json(c.body)?;
    let q = s.queue(c.scope, req.queue_url)?;
    let label = required(req.label, "Label")?;
    check_label(&label)?;
    let actions = req.actions.unwrap_or_default();
    if actions.is_empty() {
        return Err(ApiError::missing_parameter("Actions"));
    }
    if actions.len() > MAX_ACTIONS {
        return Err(ApiError::too_many_actions(actions.len()));
    }
    actions.iter().try_for_each(|a| check_action(a))?;
    let ids = req.aws_account_ids.unwrap_or_default();
    let accounts = verified_accounts(&ids)?;
    let mut st = q.lock();
    let current = st.config.stored.get("Policy").map(String::as_str);
    let updated = policy::add_statement(current, &q.arn, &label, &accounts, &actions)?;
    st.config.stored.insert("Policy".to_owned(), updated);
    Ok(reply(&json!({})))
}

pub(super) fn remove_permission(s: &SqsState, c: &Call<'_>) -> ApiResult<Vec<u8>> {
    let req: RemovePermissionRequest = parse_json(c.body)?;
    let q = s.queue(c.scope, req.queue_url)?;
    let label = required(req.label, "Label")?;
    let mut st = q.lock();
    let current = st.config.stored.get("Policy").map(String::as_str);
    match policy::remove_statement(current, &q.arn, &label)? {
        Some(updated) => st.config.stored.insert("Policy".to_owned(), updated),
        None => st.config.stored.remove("Policy"),
    };
    Ok(reply(&json!({})))
}

/// A label as the AddPermission reference allows: 1 to 80 letters, digits, `-` and `_`.
// Text: from a reimplementation (no AWS capture was found); it follows SQS's queue-name text.
fn check_label(label: &str) -> ApiResult<()> {
    let ok = !label.is_empty()
        && label.len() <= 80
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        return Ok(());
    }
    Err(ApiError::invalid_parameter(format!(
        "Value {label} for parameter Label is invalid. Reason: Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length."
    )))
}

fn check_action(action: &str) -> ApiResult<()> {
    if GRANTABLE_ACTIONS.contains(&action) {
        return Ok(());
    }
    let reason = if OWNER_ONLY_ACTIONS.contains(&action) {
        "Only the queue owner is allowed to invoke this action."
    } else {
        "Please refer to the appropriate WSDL for a list of valid actions."
    };
    Err(ApiError::invalid_parameter(format!(
        "Value SQS:{action} for parameter ActionName is invalid. Reason: {reason}"
    )))
}

/// The account ids SQS can verify (12 digits). As on SQS, ids it cannot verify are left out
/// when at least one can be, and refused together when none can. Behaviour: Eucalyptus's
/// clone (a comment there records it); text: moto's test_add_permission_errors
/// ("Value [] for parameter PrincipalId is invalid. Reason: Unable to verify.").
fn verified_accounts(ids: &[String]) -> ApiResult<Vec<&str>> {
    let verified: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    if verified.is_empty() {
        return Err(ApiError::invalid_parameter(format!(
            "Value [{}] for parameter PrincipalId is invalid. Reason: Unable to verify.",
            ids.join(", ")
        )));
    }
    Ok(verified)
}
