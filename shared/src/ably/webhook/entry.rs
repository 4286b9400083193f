//! One Ably message or presence entry, normalised into a [`ChatEvent`] of a
//! [`WebhookBatch`]: its time, its event type (presence actions by name), its id (or a
//! stable derived one), its `data` decoded along its `encoding`, and whether the channel
//! table trusts its publisher to send it.
//!
//! The parsers hand each entry's `data` over as the JSON text the body holds; it becomes
//! a value only here, one entry at a time, and leaves as the event's compact
//! [`Payload`] text. So a batch never holds more than one message as a tree.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ably::webhook::encoding::decode_data;
use serde::Deserialize;

use crate::channels::{trusts, trusts_change};
use crate::events::change::{Action, Fragments, Version};
use crate::events::event::{conversation_id, ChatEvent, MAX_ITEM_BYTES};
use crate::events::time::iso_millis;
use crate::events::Payload;

/// `data` longer than this is not decoded: no encoding Ably applies shrinks it below a
/// DynamoDB item (binary stays base64; JSON text loses only its escapes).
pub const MAX_DATA_BYTES: usize = 2 * MAX_ITEM_BYTES;

/// An object's members, each as the JSON text the body holds.
pub(crate) type RawMap<'a> = BTreeMap<String, &'a RawValue>;

/// Ably delivers at most this many items in one batched webhook. An item may carry any
/// number of messages (a multi-message publish is one item), so events are not capped:
/// the body's size bounds them.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// What a webhook body held.
#[derive(Debug, Default, PartialEq)]
pub struct WebhookBatch {
    pub events: Vec<ChatEvent>,
    /// Channel lifecycle / occupancy items: counted for analytics, not stored as chat events.
    pub lifecycle: usize,
    /// Entries that could not be used, each with a short reason.
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("body is not valid JSON")]
    NotJson,
    #[error("body is not valid MessagePack")]
    NotMsgpack,
    #[error("body is not an Ably webhook payload")]
    UnknownShape,
    #[error("batch holds {0} items, more than {MAX_BATCH_ITEMS}")]
    TooLarge(usize),
}

/// The fields of one Ably message or presence entry, taken out of the body.
#[derive(Default)]
pub(crate) struct RawMessage<'a> {
    pub id: Option<String>,
    pub client_id: Option<String>,
    pub timestamp: Option<i64>,
    pub name: Option<String>,
    /// `data` as JSON text (`None`: absent).
    pub data: Option<Cow<'a, RawValue>>,
    pub encoding: Option<String>,
    /// `action` as JSON text: a presence action, or a message's (create, update, ...).
    pub action: Option<Cow<'a, RawValue>>,
    /// The message's serial, shared by its versions.
    pub serial: Option<String>,
    /// `version`, `annotations` and `extras` as JSON text.
    pub version: Option<Cow<'a, RawValue>>,
    pub annotations: Option<Cow<'a, RawValue>>,
    pub extras: Option<Cow<'a, RawValue>>,
}

impl<'a> RawMessage<'a> {
    /// `None` when a known field has the wrong type.
    pub(crate) fn from_map(mut map: RawMap<'a>) -> Option<Self> {
        let mut text = |key: &str| -> Result<Option<String>, ()> {
            match map.remove(key) {
                None => Ok(None),
                Some(raw) => serde_json::from_str(raw.get()).map_err(|_| ()),
            }
        };
        let id = text("id").ok()?;
        let client_id = text("clientId").ok()?;
        let name = text("name").ok()?;
        let encoding = text("encoding").ok()?;
        let serial = text("serial").ok()?;
        let timestamp = match map.get("timestamp").map(|raw| raw.get()) {
            None | Some("null") => None,
            Some(raw) => Some(timestamp_ms(&serde_json::from_str(raw).ok()?)?),
        };
        Some(RawMessage {
            id,
            client_id,
            timestamp,
            name,
            data: map.remove("data").map(Cow::Borrowed),
            encoding,
            action: map.remove("action").map(Cow::Borrowed),
            serial,
            version: map.remove("version").map(Cow::Borrowed),
            annotations: map.remove("annotations").map(Cow::Borrowed),
            extras: map.remove("extras").map(Cow::Borrowed),
        })
    }
}

/// Where an entry sat in the body, rendered only when it has to be reported.
#[derive(Clone, Copy)]
pub(crate) enum Place<'a> {
    Item(usize),
    Entry(Option<usize>, &'a str, usize),
}

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Item(i) => write!(f, "item {i}"),
            Place::Entry(Some(i), key, n) => write!(f, "item {i} {key}[{n}]"),
            Place::Entry(None, key, n) => write!(f, "{key}[{n}]"),
        }
    }
}

pub(crate) fn push_message(
    label: Place<'_>,
    channel: &str,
    raw: RawMessage<'_>,
    fallback_ts: Option<i64>,
    presence: bool,
    batch: &mut WebhookBatch,
) {
    let Some(ms) = raw.timestamp.or(fallback_ts) else {
        batch.skipped.push(format!("{label}: no timestamp"));
        return;
    };
    let action_value = raw
        .action
        .as_deref()
        .and_then(|a| serde_json::from_str::<Value>(a.get()).ok());
    // A message's action, and whether it came with one (or a serial): only a message
    // that can change says what it is.
    let (event_type, named, action) = if presence {
        let action = presence_action(action_value.as_ref());
        (format!("presence:{action}"), true, None)
    } else {
        let action = match &action_value {
            None | Some(Value::Null) => Action::Create,
            Some(value) => match Action::of_wire(value) {
                Some(action) => action,
                None => {
                    batch
                        .skipped
                        .push(format!("{label}: unknown action {value}"));
                    return;
                }
            },
        };
        if action == Action::Meta {
            // Ably's own notices about a message: counted like channel lifecycle events.
            batch.lifecycle += 1;
            return;
        }
        match raw.name.filter(|name| !name.is_empty()) {
            Some(name) => (name, true, Some(action)),
            None if action == Action::Create => ("message".to_owned(), false, Some(action)),
            None => (action.as_str().to_owned(), false, Some(action)),
        }
    };
    let change = action.filter(|a| *a != Action::Create);
    let version = match change {
        None => WireVersion::default(),
        Some(_) => match WireVersion::of(raw.version.as_deref()) {
            Ok(version) => version,
            Err(()) => {
                batch.skipped.push(format!("{label}: malformed version"));
                return;
            }
        },
    };
    let when = version.timestamp.filter(|_| change.is_some()).unwrap_or(ms);
    let Some(occurred_at) = iso_millis(when) else {
        batch
            .skipped
            .push(format!("{label}: timestamp out of range"));
        return;
    };
    let raw_data = match raw.data.as_deref().map(RawValue::get) {
        Some(text) if text.len() > MAX_DATA_BYTES => {
            batch
                .skipped
                .push(format!("{label}: event larger than a DynamoDB item"));
            return;
        }
        // The body held it as JSON: it parses.
        Some(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        None => Value::Null,
    };
    let serial = raw.serial.filter(|s| !s.is_empty());
    let (id, trusted, version, message_at) = match change {
        Some(change) => {
            let Some(serial) = &serial else {
                batch
                    .skipped
                    .push(format!("{label}: {} without serial", change.as_str()));
                return;
            };
            let version_serial = version
                .serial
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| derived_id(channel, when, &event_type, &raw_data));
            // Judged on who made the change (see `channels::trusts_change`); a summary is
            // Ably's own count.
            let trusted = change == Action::Summary
                || trusts_change(
                    channel,
                    named.then_some(event_type.as_str()),
                    raw.client_id.as_deref(),
                    version.client_id.as_deref(),
                );
            let id = format!("{serial}@{version_serial}");
            let version = Version {
                serial: version_serial,
                client_id: version.client_id,
                updated_at: occurred_at.clone(),
            };
            (id, trusted, Some(version), iso_millis(ms))
        }
        None => {
            let id = match raw.id {
                Some(id) if !id.is_empty() => id,
                _ => derived_id(channel, ms, &event_type, &raw_data),
            };
            // Judged on the clientId as Ably sent it: an empty one is no API-key message.
            let trusted = trusts(channel, &event_type, raw.client_id.as_deref());
            (id, trusted, None, None)
        }
    };
    let action = action.filter(|_| serial.is_some() || action_value.is_some());
    let (payload, encoding) = decode_data(raw_data, raw.encoding.as_deref());
    batch.events.push(ChatEvent {
        id,
        history_id: conversation_id(channel).to_owned(),
        channel: channel.to_owned(),
        event_type,
        client_id: raw.client_id.filter(|c| !c.is_empty()),
        trusted,
        payload: Payload::from_value(&payload),
        occurred_at,
        encoding,
        serial,
        action,
        version,
        message_at,
        headers: member(raw.extras.as_deref(), "headers"),
        reactions: member(raw.annotations.as_deref(), "summary"),
        fragments: Fragments::default(),
    });
}

/// `version` as Ably sends it: who made this version of the message, and when.
#[derive(Default, serde::Deserialize)]
struct WireVersion {
    serial: Option<String>,
    #[serde(rename = "clientId")]
    client_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_timestamp")]
    timestamp: Option<i64>,
}

impl WireVersion {
    /// Absent or `null`: no version.
    fn of(raw: Option<&RawValue>) -> Result<Self, ()> {
        match raw.map(RawValue::get) {
            None | Some("null") => Ok(WireVersion::default()),
            Some(text) => serde_json::from_str(text).map_err(|_| ()),
        }
    }
}

fn lenient_timestamp<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(value.as_ref().and_then(timestamp_ms))
}

/// An object member of an object given as JSON text (`extras.headers`,
/// `annotations.summary`), when it is an object.
fn member(raw: Option<&RawValue>, name: &str) -> Option<Payload> {
    let map: RawMap<'_> = serde_json::from_str(raw?.get()).ok()?;
    let value: Value = serde_json::from_str(map.get(name)?.get()).ok()?;
    value.is_object().then(|| Payload::from_value(&value))
}

fn presence_action(action: Option<&Value>) -> &'static str {
    match action {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => "absent",
            Some(1) => "present",
            Some(2) => "enter",
            Some(3) => "leave",
            Some(4) => "update",
            _ => "unknown",
        },
        Some(Value::String(s)) => match s.as_str() {
            "absent" => "absent",
            "present" => "present",
            "enter" => "enter",
            "leave" => "leave",
            "update" => "update",
            _ => "unknown",
        },
        _ => "unknown",
    }
}

pub(crate) fn timestamp_ms(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}

/// A stable id for a message Ably sent without one: the same message always gets the
/// same id, so a redelivery overwrites instead of duplicating.
fn derived_id(channel: &str, ms: i64, name: &str, data: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(channel.as_bytes());
    hasher.update([0]);
    hasher.update(ms.to_string().as_bytes());
    hasher.update([0]);
    hasher.update(name.as_bytes());
    hasher.update([0]);
    // serde_json's map is ordered by key, so equal data serialises identically.
    hasher.update(data.to_string().as_bytes());
    format!("derived:{}", hex::encode(&hasher.finalize()[..16]))
}
