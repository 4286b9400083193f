//! Messages that change after they are published (channels with Ably's "Message
//! annotations, updates, deletes, and appends" rule): the request that updates, deletes
//! or appends to a message, built as ably-js 2.x builds it, and what Ably answers about a
//! message and about a change.
//!
//! ably-js (`RestChannelMixin.updateDeleteMessage`) sends
//! `PATCH /channels/{channel}/messages/{serial}` (both segments percent-encoded) with the
//! message's `serial`, the numeric `action` (1 update, 2 delete, 5 append), `name` and
//! `data` when given, and `version` = the operation `{clientId, description, metadata}`.
//! Data that is not a string is sent as its JSON text with `encoding: "json"`, as ably-js
//! encodes objects. `getMessage` sends `GET /channels/{channel}/messages/{serial}`.
//! `tests/fixtures/ably-js/` holds both as ably-js sent them.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ably::error::AblyError;
use crate::ably::message::encode_segment;

/// A change to a published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeAction {
    Update,
    Delete,
    Append,
}

impl ChangeAction {
    /// From Ably's name of the action (`message.update`, `message.delete`, `message.append`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "message.update" => Some(ChangeAction::Update),
            "message.delete" => Some(ChangeAction::Delete),
            "message.append" => Some(ChangeAction::Append),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ChangeAction::Update => "message.update",
            ChangeAction::Delete => "message.delete",
            ChangeAction::Append => "message.append",
        }
    }

    /// The number Ably's wire protocol uses (ably-js `actions` index).
    pub fn wire(self) -> u8 {
        match self {
            ChangeAction::Update => 1,
            ChangeAction::Delete => 2,
            ChangeAction::Append => 5,
        }
    }
}

/// Who makes a change and why: the new version's `{clientId, description, metadata}`
/// (ably-js `MessageOperation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<&'a BTreeMap<String, String>>,
}

/// One change of the message `serial`. `data` is JSON text, sent as ably-js sends it.
#[derive(Debug, Clone, Copy)]
pub struct MessageChange<'a> {
    pub action: ChangeAction,
    pub serial: &'a str,
    pub name: Option<&'a str>,
    pub data: Option<&'a RawValue>,
    pub operation: Operation<'a>,
}

/// `data` on the wire: a string or null as it is, anything else as JSON text.
#[derive(Serialize)]
#[serde(untagged)]
enum WireData<'a> {
    AsIs(&'a RawValue),
    Text(&'a str),
}

#[derive(Serialize)]
struct WireChange<'a> {
    serial: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<WireData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
    action: u8,
    version: Operation<'a>,
}

/// The path of one message: `/channels/{channel}/messages/{serial}`, both encoded.
pub fn message_path(channel: &str, serial: &str) -> Result<String, AblyError> {
    if channel.is_empty() {
        return Err(AblyError::InvalidRequest("channel name is empty"));
    }
    if serial.is_empty() {
        return Err(AblyError::InvalidRequest("message serial is empty"));
    }
    Ok(format!(
        "/channels/{}/messages/{}",
        encode_segment(channel),
        encode_segment(serial)
    ))
}

/// Builds the PATCH of a change once, for every attempt: `(path, body)`.
pub fn prepare_change(
    channel: &str,
    change: &MessageChange<'_>,
) -> Result<(String, Bytes), AblyError> {
    let path = message_path(channel, change.serial)?;
    let (data, encoding) = match change.data {
        None => (None, None),
        Some(raw) if raw.get().starts_with('"') || raw.get() == "null" => {
            (Some(WireData::AsIs(raw)), None)
        }
        Some(raw) => (Some(WireData::Text(raw.get())), Some("json")),
    };
    let wire = WireChange {
        serial: change.serial,
        name: change.name,
        data,
        encoding,
        action: change.action.wire(),
        version: change.operation,
    };
    let body = serde_json::to_vec(&wire)
        .map_err(|_| AblyError::InvalidRequest("message change is not serialisable as JSON"))?;
    Ok((path, Bytes::from(body)))
}

/// What `GET /channels/{channel}/messages/{serial}` says of a message: enough to judge
/// who may change it. Fields Ably leaves out are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMessage {
    #[serde(default)]
    pub serial: Option<String>,
    /// The original publisher's clientId (the same in every version); `None` when it was
    /// published with the API key.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// The latest version's action as Ably's number (0 create ... 5 append).
    #[serde(default)]
    pub action: Option<u8>,
}

/// What Ably accepted for a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeReceipt {
    /// The new version's serial (`UpdateDeleteResult.versionSerial`), when Ably gave one:
    /// none when a later change superseded it before it was published.
    pub version_serial: Option<String>,
    /// Attempts it took (1 when the first one succeeded).
    pub attempts: u32,
}

/// Reads `{"versionSerial": ...}` from a PATCH answer; anything else gives none.
pub(crate) fn version_serial(answer: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        version_serial: Option<String>,
    }
    serde_json::from_slice::<Answer>(answer)
        .ok()
        .and_then(|a| a.version_serial)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const SERIAL: &str = "01726232498871-001@e8FcVjXqBAmH3q:001";

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    fn body(change: &MessageChange<'_>) -> (String, Value) {
        let (path, body) = prepare_change("conversation:conv-1", change).unwrap();
        (path, serde_json::from_slice(&body).unwrap())
    }

    #[test]
    fn actions_by_name_and_number() {
        for (name, wire) in [
            ("message.update", 1),
            ("message.delete", 2),
            ("message.append", 5),
        ] {
            let action = ChangeAction::from_name(name).unwrap();
            assert_eq!((action.name(), action.wire()), (name, wire));
        }
        for other in ["message.create", "meta", "message.summary", "update", ""] {
            assert_eq!(ChangeAction::from_name(other), None, "{other}");
        }
    }

    #[test]
    fn an_update_is_the_message_as_it_now_stands_with_its_version() {
        let data = raw(r#"{"text":"hello, edited"}"#);
        let metadata = BTreeMap::from([("reason".to_owned(), "spelling".to_owned())]);
        let (path, sent) = body(&MessageChange {
            action: ChangeAction::Update,
            serial: SERIAL,
            name: Some("message:user"),
            data: Some(&data),
            operation: Operation {
                client_id: Some("customer:u-1"),
                description: Some("typo"),
                metadata: Some(&metadata),
            },
        });
        assert_eq!(
            path,
            "/channels/conversation%3Aconv-1/messages/01726232498871-001%40e8FcVjXqBAmH3q%3A001"
        );
        assert_eq!(
            sent,
            json!({
                "serial": SERIAL,
                "name": "message:user",
                "data": "{\"text\":\"hello, edited\"}",
                "encoding": "json",
                "action": 1,
                "version": {"clientId": "customer:u-1", "description": "typo", "metadata": {"reason": "spelling"}}
            })
        );
    }

    #[test]
    fn a_delete_needs_no_data_and_strings_and_null_go_as_they_are() {
        let (_, sent) = body(&MessageChange {
            action: ChangeAction::Delete,
            serial: SERIAL,
            name: None,
            data: None,
            operation: Operation::default(),
        });
        assert_eq!(sent, json!({"serial": SERIAL, "action": 2, "version": {}}));
        for (text, data, encoding) in [
            (r#"" and more""#, json!(" and more"), Value::Null),
            ("null", Value::Null, Value::Null),
            ("[1,2]", json!("[1,2]"), json!("json")),
            ("42", json!("42"), json!("json")),
            ("true", json!("true"), json!("json")),
        ] {
            let data_raw = raw(text);
            let (_, sent) = body(&MessageChange {
                action: ChangeAction::Append,
                serial: SERIAL,
                name: Some("message:ai"),
                data: Some(&data_raw),
                operation: Operation {
                    client_id: Some("broker:b-1"),
                    ..Operation::default()
                },
            });
            assert_eq!(sent["action"], 5);
            assert_eq!(sent["data"], data, "{text}");
            assert_eq!(sent["encoding"], encoding, "{text}");
            assert_eq!(sent["version"], json!({"clientId": "broker:b-1"}));
        }
    }

    #[test]
    fn empty_names_are_refused_and_answers_are_read_leniently() {
        let change = MessageChange {
            action: ChangeAction::Delete,
            serial: "",
            name: None,
            data: None,
            operation: Operation::default(),
        };
        assert!(prepare_change("conversation:c", &change).is_err());
        assert!(message_path("", SERIAL).is_err());
        assert_eq!(
            message_path("a/b", "x/y?z").unwrap(),
            "/channels/a%2Fb/messages/x%2Fy%3Fz"
        );
        assert_eq!(
            version_serial(br#"{"versionSerial":"v1"}"#).as_deref(),
            Some("v1")
        );
        assert_eq!(version_serial(br#"{"versionSerial":null}"#), None);
        assert_eq!(version_serial(b""), None);
        assert_eq!(version_serial(b"<html>"), None);
        let stored: StoredMessage = serde_json::from_value(json!({
            "serial": SERIAL, "clientId": "customer:u-1", "name": "message:user",
            "data": "hello", "action": 0, "timestamp": 1, "version": {"serial": SERIAL}
        }))
        .unwrap();
        assert_eq!(stored.client_id.as_deref(), Some("customer:u-1"));
        assert_eq!(stored.action, Some(0));
        assert_eq!(
            serde_json::from_value::<StoredMessage>(json!({})).unwrap(),
            StoredMessage::default()
        );
    }
}
