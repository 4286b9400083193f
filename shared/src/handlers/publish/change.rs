//! Changing a published message: `"action": "message.update" | "message.delete" |
//! "message.append"` with the message's `"serial"`.
//!
//! The caller must be allowed on the channel as for a publish (and to send `eventName`
//! there, when it names one). The message is then read from Ably
//! (`GET /channels/{channel}/messages/{serial}`, 404 `message_not_found` when Ably knows
//! none): only its original publisher (its `clientId` is the caller's) or an admin or
//! service may change it (403 `not_message_owner`), and an update or append without an
//! `eventName` keeps the message's name, which the caller's role must be allowed to send.
//! The change goes to Ably as ably-js sends it (`PATCH`, see [`crate::ably::change`]),
//! with the caller's clientId as the new version's `clientId` (the mirror judges a change
//! by it), retried as publishes are.

use std::collections::BTreeMap;
use std::time::Instant;

use http::StatusCode;
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::ably::{AblyError, ChangeAction, MessageChange, Operation};
use crate::channels::{may_publish, may_send, may_use, ChannelName, Denial};
use crate::events::time::iso_millis;
use crate::identity::{Caller, Role};
use crate::platform::clock;
use crate::platform::error::ApiError;
use crate::platform::http::json_response;

use super::{check_data_size, check_event_name, count_retries, PublishBody, PublishState};

/// Longest message serial, in bytes (Ably's are about 40).
pub const MAX_SERIAL_BYTES: usize = 256;
/// Longest version description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 1024;
/// Most metadata entries of a version; each key 1 to 64 bytes, each value at most 1024.
pub const MAX_METADATA_ENTRIES: usize = 32;
const MAX_METADATA_KEY_BYTES: usize = 64;
const MAX_METADATA_VALUE_BYTES: usize = 1024;

/// A change request that passed every check that needs no answer from Ably.
#[derive(Debug)]
pub struct ValidChange<'a> {
    pub action: ChangeAction,
    pub channel: ChannelName,
    pub channel_name: String,
    pub serial: String,
    pub event_name: Option<String>,
    pub data: Option<&'a RawValue>,
    pub description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub client_id: String,
}

/// Shapes and sizes (400/413), then the channel and the event named (403).
pub(super) fn validate<'a>(
    caller: &Caller,
    body: PublishBody<'a>,
    action: ChangeAction,
) -> Result<ValidChange<'a>, ApiError> {
    let serial = match body.serial {
        Some(serial)
            if !serial.is_empty()
                && serial.len() <= MAX_SERIAL_BYTES
                && !serial.chars().any(char::is_control) =>
        {
            serial
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_serial",
                "serial (the message's, 1 to 256 bytes, no control characters) is required with this action",
            ))
        }
    };
    if let Some(event_name) = &body.event_name {
        check_event_name(event_name)?;
    }
    if body.data.is_none() && action != ChangeAction::Delete {
        return Err(ApiError::bad_request(
            "invalid_body",
            "data is required to update or append to a message",
        ));
    }
    if body.idempotency_key.is_some() {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "idempotencyKey is for new messages; a change is sent as it is on every retry",
        ));
    }
    check_version(body.description.as_deref(), body.metadata.as_ref())?;
    let channel = ChannelName::parse(&body.channel_name)?;
    if let Some(data) = body.data {
        check_data_size(data)?;
    }
    match &body.event_name {
        Some(event_name) => may_publish(caller, &channel, event_name)?,
        None if !may_use(caller, &channel) => return Err(Denial::ChannelNotOwned.into()),
        None => {}
    }
    Ok(ValidChange {
        action,
        channel,
        channel_name: body.channel_name,
        serial,
        event_name: body.event_name,
        data: body.data,
        description: body.description,
        metadata: body.metadata,
        client_id: caller.client_id(),
    })
}

fn check_version(
    description: Option<&str>,
    metadata: Option<&BTreeMap<String, String>>,
) -> Result<(), ApiError> {
    let description_ok = description.is_none_or(|d| d.len() <= MAX_DESCRIPTION_BYTES);
    let metadata_ok = metadata.is_none_or(|m| {
        m.len() <= MAX_METADATA_ENTRIES
            && m.iter().all(|(k, v)| {
                (1..=MAX_METADATA_KEY_BYTES).contains(&k.len())
                    && v.len() <= MAX_METADATA_VALUE_BYTES
            })
    });
    if description_ok && metadata_ok {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "invalid_version",
        "description is at most 1024 bytes; metadata at most 32 string entries, keys 1 to 64 bytes, values at most 1024",
    ))
}

/// Whether `caller` may change a message whose original publisher is `publisher` (its
/// clientId; `None`: the API key): admin and service any, anyone else its own.
pub fn may_change(caller: &Caller, publisher: Option<&str>) -> bool {
    matches!(caller.role(), Some(Role::Admin | Role::Service))
        || publisher.is_some_and(|p| p == caller.client_id())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangeResponse<'a> {
    success: bool,
    channel_name: &'a str,
    action: &'static str,
    serial: &'a str,
    /// The new version's serial, when Ably's answer carried one.
    #[serde(skip_serializing_if = "Option::is_none")]
    version_serial: Option<String>,
    timestamp: String,
}

fn not_found() -> ApiError {
    ApiError::not_found(
        "message_not_found",
        "No message with this serial on this channel",
    )
}

/// Reads the message, judges the caller against it, and sends the change.
pub(super) async fn apply(
    state: &PublishState,
    caller: &Caller,
    valid: ValidChange<'_>,
    until: Instant,
) -> Result<Response<Body>, ApiError> {
    let stored = state
        .ably
        .get_message(&valid.channel_name, &valid.serial, until)
        .await?
        .ok_or_else(not_found)?;
    if !may_change(caller, stored.client_id.as_deref()) {
        return Err(ApiError::forbidden(
            "not_message_owner",
            "Only the message's publisher, an admin or a service may change it",
        ));
    }
    // An update or append without a name keeps the message's, which the caller's role
    // must be allowed to send there; a delete sends nothing of it.
    if let (None, Some(name), false) = (
        &valid.event_name,
        &stored.name,
        valid.action == ChangeAction::Delete,
    ) {
        may_send(caller.acting_role(), valid.channel.family(), name)?;
    }
    let change = MessageChange {
        action: valid.action,
        serial: &valid.serial,
        name: valid.event_name.as_deref(),
        data: valid.data,
        operation: Operation {
            client_id: Some(&valid.client_id),
            description: valid.description.as_deref(),
            metadata: valid.metadata.as_ref(),
        },
    };
    let receipt = match state
        .ably
        .change_message(&valid.channel_name, &change, until)
        .await
    {
        Err(AblyError::Rejected { status: 404, .. }) => return Err(not_found()),
        other => other?,
    };
    count_retries(receipt.attempts);
    Ok(json_response(
        StatusCode::OK,
        &ChangeResponse {
            success: true,
            channel_name: &valid.channel_name,
            action: valid.action.name(),
            serial: &valid.serial,
            version_serial: receipt.version_serial,
            timestamp: iso_millis(clock::now_ms()).unwrap_or_default(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{validate_request, Valid};
    use super::*;
    use crate::identity::caller::samples::{session, user};
    use serde_json::json;

    fn check(caller: &Caller, body: serde_json::Value) -> Result<ValidChange<'static>, ApiError> {
        let bytes: &'static [u8] = Box::leak(body.to_string().into_bytes().into_boxed_slice());
        match validate_request(caller, bytes)? {
            Valid::Change(change) => Ok(change),
            Valid::Publish(_) => panic!("a publish"),
        }
    }

    fn code(result: Result<ValidChange<'_>, ApiError>) -> (u16, &'static str) {
        let err = result.unwrap_err();
        (err.status().as_u16(), err.code())
    }

    const SERIAL: &str = "01726232498871-001@e8FcVjXqBAmH3q:001";

    #[test]
    fn a_change_names_its_message_and_carries_what_its_action_needs() {
        let customer = user("u1", Role::Customer, &["c1"]);
        let update = check(
            &customer,
            json!({"channelName": "conversation:c1", "action": "message.update", "serial": SERIAL,
                   "eventName": "message:user", "data": {"text": "x"}, "description": "typo",
                   "metadata": {"reason": "spelling"}}),
        )
        .unwrap();
        assert_eq!(update.action, ChangeAction::Update);
        assert_eq!(update.serial, SERIAL);
        assert_eq!(update.client_id, "customer:u1");
        assert_eq!(update.data.unwrap().get(), r#"{"text":"x"}"#);
        let delete = check(
            &session("c1"),
            json!({"channelName": "conversation:c1", "action": "message.delete", "serial": SERIAL}),
        )
        .unwrap();
        assert_eq!(
            (delete.action, delete.data.is_none()),
            (ChangeAction::Delete, true)
        );
        assert_eq!(delete.client_id, "customer-c1");

        let base = |extra: serde_json::Value| {
            let mut body = json!({"channelName": "conversation:c1", "action": "message.append",
                                  "serial": SERIAL, "data": " more"});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            body
        };
        for (extra, expected) in [
            (json!({"serial": ""}), (400, "invalid_serial")),
            (json!({"serial": "x".repeat(257)}), (400, "invalid_serial")),
            (json!({"serial": "a\nb"}), (400, "invalid_serial")),
            (json!({"serial": null}), (400, "invalid_serial")),
            (json!({"eventName": ""}), (400, "invalid_event")),
            (
                json!({"idempotencyKey": "k"}),
                (400, "invalid_idempotency_key"),
            ),
            (
                json!({"description": "d".repeat(1025)}),
                (400, "invalid_version"),
            ),
            (json!({"metadata": {"": "v"}}), (400, "invalid_version")),
            (json!({"metadata": {"k": 1}}), (400, "invalid_body")),
            (
                json!({"channelName": "conversation:*"}),
                (400, "invalid_channel"),
            ),
            (
                json!({"data": "x".repeat(64 * 1024)}),
                (413, "data_too_large"),
            ),
            (
                json!({"channelName": "conversation:c2"}),
                (403, "channel_forbidden"),
            ),
            (json!({"eventName": "message:ai"}), (403, "event_forbidden")),
            (json!({"eventName": "message"}), (400, "invalid_event")),
            (
                json!({"action": "message.summary"}),
                (400, "invalid_action"),
            ),
            (json!({"action": "meta"}), (400, "invalid_action")),
            (json!({"action": 1}), (400, "invalid_body")),
        ] {
            assert_eq!(
                code(check(&customer, base(extra.clone()))),
                expected,
                "{extra}"
            );
        }
        // `data: null` is data (sent as it is); no data at all only a delete may have.
        assert!(check(&customer, base(json!({"data": null}))).is_ok());
        for (action, ok) in [
            ("message.delete", true),
            ("message.update", false),
            ("message.append", false),
        ] {
            let mut body = base(json!({"action": action}));
            body.as_object_mut().unwrap().remove("data");
            match ok {
                true => assert!(check(&customer, body).is_ok()),
                false => assert_eq!(
                    code(check(&customer, body)),
                    (400, "invalid_body"),
                    "{action}"
                ),
            }
        }
    }

    #[test]
    fn a_publish_takes_no_serial_nor_version() {
        let customer = user("u1", Role::Customer, &["c1"]);
        for (extra, expected) in [
            (json!({"serial": SERIAL}), "invalid_serial"),
            (
                json!({"action": "message.create", "serial": SERIAL}),
                "invalid_serial",
            ),
            (json!({"description": "d"}), "invalid_version"),
            (json!({"metadata": {}}), "invalid_version"),
        ] {
            let mut body =
                json!({"channelName": "conversation:c1", "eventName": "read", "data": 1});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            let err = validate_request(&customer, body.to_string().as_bytes()).unwrap_err();
            assert_eq!(
                (err.status().as_u16(), err.code()),
                (400, expected),
                "{extra}"
            );
        }
        let created = json!({"channelName": "conversation:c1", "action": "message.create",
                             "eventName": "read", "data": 1});
        assert!(matches!(
            validate_request(&customer, created.to_string().as_bytes()),
            Ok(Valid::Publish(_))
        ));
    }

    #[test]
    fn the_publisher_or_admin_and_service_may_change_a_message() {
        let customer = user("u1", Role::Customer, &["c1"]);
        assert!(may_change(&customer, Some("customer:u1")));
        assert!(!may_change(&customer, Some("customer:u2")));
        assert!(!may_change(&customer, Some("broker:u1")));
        assert!(!may_change(&customer, None));
        let broker = user("b1", Role::Broker, &[]);
        assert!(may_change(&broker, Some("broker:b1")));
        assert!(!may_change(&broker, Some("broker:b2")));
        assert!(!may_change(&broker, Some("customer:u1")));
        assert!(may_change(&session("c1"), Some("customer-c1")));
        assert!(!may_change(&session("c1"), Some("customer-c2")));
        for role in [Role::Admin, Role::Service] {
            let staff = user("a1", role, &[]);
            assert!(may_change(&staff, Some("customer:u1")));
            assert!(may_change(&staff, Some("broker:b1")));
            assert!(may_change(&staff, None));
        }
    }
}
