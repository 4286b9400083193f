//! Every Ably webhook payload shape, normalised to [`ChatEvent`]s.
//!
//! Shapes are told apart by the keys present, never by `source` (Ably's own examples
//! mislabel presence):
//! - batched: `{"items":[{..., "data": {"channelId", "messages"|"presence"|"status"}}]}`
//! - enveloped single: `{"channel", "messages"|"presence", ...}`
//! - flat items (the seed's format): `{"items":[{"name","channel","data","timestamp"}]}`

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Ably delivers at most this many events in one batch.
pub const MAX_BATCH_EVENTS: usize = 1000;

/// A chat event as mirrored to Redis and DynamoDB and served back to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatEvent {
    pub id: String,
    pub conversation_id: String,
    pub channel: String,
    pub event_type: String,
    pub client_id: Option<String>,
    pub payload: Value,
    /// ISO-8601 UTC with milliseconds, e.g. `2026-11-22T03:04:05.678Z`.
    pub occurred_at: String,
    /// The part of the message's `encoding` that could not be decoded, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}

impl ChatEvent {
    /// The DynamoDB sort key: time-ordered, unique per event, the same on every redelivery.
    pub fn event_key(&self) -> String {
        format!("{}#{}", self.occurred_at, self.id)
    }
}

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
    #[error("body is not an Ably webhook payload")]
    UnknownShape,
    #[error("batch holds {0} events, more than {MAX_BATCH_EVENTS}")]
    TooLarge(usize),
}

/// The fields of one Ably message or presence entry, moved out of the parsed JSON.
struct RawMessage {
    id: Option<String>,
    client_id: Option<String>,
    timestamp: Option<i64>,
    name: Option<String>,
    data: Value,
    encoding: Option<String>,
    action: Option<Value>,
}

impl RawMessage {
    /// `None` when the entry is not an object or a known field has the wrong type.
    fn from_map(mut map: Map<String, Value>) -> Option<Self> {
        let mut text = |key: &str| -> Result<Option<String>, ()> {
            match map.remove(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(()),
            }
        };
        let id = text("id").ok()?;
        let client_id = text("clientId").ok()?;
        let name = text("name").ok()?;
        let encoding = text("encoding").ok()?;
        let timestamp = match map.get("timestamp") {
            None | Some(Value::Null) => None,
            Some(v) => Some(timestamp_ms(v)?),
        };
        Some(RawMessage {
            id,
            client_id,
            timestamp,
            name,
            data: map.remove("data").unwrap_or(Value::Null),
            encoding,
            action: map.remove("action"),
        })
    }
}

/// Where an entry sat in the body, rendered only when it has to be reported.
#[derive(Clone, Copy)]
enum Place<'a> {
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

/// Parses and normalises a webhook body.
pub fn parse(body: &[u8]) -> Result<WebhookBatch, PayloadError> {
    match fast::parse(body) {
        Some(result) => result,
        None => parse_lenient(body),
    }
}

/// The general parser: builds a JSON tree first, so it can report every entry it cannot
/// use and keep the rest. [`fast`] handles well-formed batches without the tree.
fn parse_lenient(body: &[u8]) -> Result<WebhookBatch, PayloadError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| PayloadError::NotJson)?;
    let Value::Object(mut top) = value else {
        return Err(PayloadError::UnknownShape);
    };
    let mut batch = WebhookBatch::default();
    match top.remove("items") {
        Some(Value::Array(items)) => {
            if items.len() > MAX_BATCH_EVENTS {
                return Err(PayloadError::TooLarge(items.len()));
            }
            for (index, item) in items.into_iter().enumerate() {
                parse_item(index, item, &mut batch);
            }
        }
        Some(_) => return Err(PayloadError::UnknownShape),
        None => {
            let channel = match top.get("channel") {
                Some(Value::String(c)) if !c.is_empty() => c.clone(),
                _ => return Err(PayloadError::UnknownShape),
            };
            if !top.contains_key("messages") && !top.contains_key("presence") {
                return Err(PayloadError::UnknownShape);
            }
            parse_channel_entries(None, &channel, None, &mut top, &mut batch);
        }
    }
    if batch.events.len() > MAX_BATCH_EVENTS {
        return Err(PayloadError::TooLarge(batch.events.len()));
    }
    Ok(batch)
}

fn parse_item(index: usize, item: Value, batch: &mut WebhookBatch) {
    let Value::Object(mut item) = item else {
        batch.skipped.push(format!("item {index}: not an object"));
        return;
    };
    // Flat item: the item itself is the message.
    if let Some(Value::String(channel)) = item.remove("channel") {
        match RawMessage::from_map(item) {
            Some(raw) => push_message(Place::Item(index), &channel, raw, None, false, batch),
            None => batch
                .skipped
                .push(format!("item {index}: malformed message")),
        }
        return;
    }
    let item_timestamp = item.get("timestamp").and_then(timestamp_ms);
    let Some(Value::Object(mut data)) = item.remove("data") else {
        batch
            .skipped
            .push(format!("item {index}: no channel and no data object"));
        return;
    };
    let channel = match data.get("channelId") {
        Some(Value::String(c)) if !c.is_empty() => c.clone(),
        _ => {
            batch.skipped.push(format!("item {index}: no channelId"));
            return;
        }
    };
    if data.contains_key("messages") || data.contains_key("presence") {
        parse_channel_entries(Some(index), &channel, item_timestamp, &mut data, batch);
    } else if data.contains_key("status") {
        batch.lifecycle += 1;
    } else {
        batch
            .skipped
            .push(format!("item {index}: no messages, presence or status"));
    }
}

fn parse_channel_entries(
    item: Option<usize>,
    channel: &str,
    fallback_ts: Option<i64>,
    container: &mut Map<String, Value>,
    batch: &mut WebhookBatch,
) {
    for (key, presence) in [("messages", false), ("presence", true)] {
        match container.remove(key) {
            None => {}
            Some(Value::Array(entries)) => {
                for (i, entry) in entries.into_iter().enumerate() {
                    let place = Place::Entry(item, key, i);
                    let raw = match entry {
                        Value::Object(map) => RawMessage::from_map(map),
                        _ => None,
                    };
                    match raw {
                        Some(raw) => {
                            push_message(place, channel, raw, fallback_ts, presence, batch)
                        }
                        None => batch.skipped.push(format!("{place}: malformed entry")),
                    }
                }
            }
            Some(_) => batch.skipped.push(match item {
                Some(i) => format!("item {i}: {key} is not an array"),
                None => format!("{key} is not an array"),
            }),
        }
    }
}

fn push_message(
    label: Place<'_>,
    channel: &str,
    raw: RawMessage,
    fallback_ts: Option<i64>,
    presence: bool,
    batch: &mut WebhookBatch,
) {
    let Some(ms) = raw.timestamp.or(fallback_ts) else {
        batch.skipped.push(format!("{label}: no timestamp"));
        return;
    };
    let Some(occurred_at) = iso_millis(ms) else {
        batch
            .skipped
            .push(format!("{label}: timestamp out of range"));
        return;
    };
    let event_type = if presence {
        format!("presence:{}", presence_action(raw.action.as_ref()))
    } else {
        raw.name
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "message".to_owned())
    };
    let raw_data = raw.data;
    let id = match raw.id {
        Some(id) if !id.is_empty() => id,
        _ => derived_id(channel, ms, &event_type, &raw_data),
    };
    let (payload, encoding) = decode_data(raw_data, raw.encoding.as_deref());
    batch.events.push(ChatEvent {
        id,
        conversation_id: conversation_id(channel).to_owned(),
        channel: channel.to_owned(),
        event_type,
        client_id: raw.client_id.filter(|c| !c.is_empty()),
        payload,
        occurred_at,
        encoding,
    });
}

/// A typed single pass over well-formed Ably batches, several times faster than building
/// a JSON tree. It gives up (`None`) at anything unusual, and the lenient parser, which
/// explains every entry it skips, takes over; both produce the same events.
mod fast {
    use serde::de::IgnoredAny;
    use serde::Deserialize;
    use serde_json::value::RawValue;
    use serde_json::Value;

    use super::{push_message, PayloadError, Place, RawMessage, WebhookBatch, MAX_BATCH_EVENTS};

    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        items: Option<Vec<Item<'a>>>,
        channel: Option<String>,
        messages: Option<Vec<Message>>,
        presence: Option<Vec<Message>>,
    }

    #[derive(Deserialize)]
    struct Item<'a> {
        channel: Option<String>,
        id: Option<String>,
        #[serde(rename = "clientId")]
        client_id: Option<String>,
        name: Option<String>,
        encoding: Option<String>,
        timestamp: Option<i64>,
        #[serde(borrow)]
        data: Option<&'a RawValue>,
    }

    #[derive(Deserialize)]
    struct ChannelData {
        #[serde(rename = "channelId")]
        channel_id: Option<String>,
        messages: Option<Vec<Message>>,
        presence: Option<Vec<Message>>,
        status: Option<IgnoredAny>,
    }

    #[derive(Deserialize)]
    struct Message {
        id: Option<String>,
        #[serde(rename = "clientId")]
        client_id: Option<String>,
        name: Option<String>,
        encoding: Option<String>,
        timestamp: Option<i64>,
        data: Option<Value>,
        action: Option<Value>,
    }

    impl From<Message> for RawMessage {
        fn from(m: Message) -> Self {
            RawMessage {
                id: m.id,
                client_id: m.client_id,
                timestamp: m.timestamp,
                name: m.name,
                data: m.data.unwrap_or(Value::Null),
                encoding: m.encoding,
                action: m.action,
            }
        }
    }

    pub(super) fn parse(body: &[u8]) -> Option<Result<WebhookBatch, PayloadError>> {
        let parsed: Body<'_> = serde_json::from_slice(body).ok()?;
        let mut batch = WebhookBatch::default();
        match parsed {
            Body {
                items: Some(items), ..
            } => {
                if items.len() > MAX_BATCH_EVENTS {
                    return Some(Err(PayloadError::TooLarge(items.len())));
                }
                for (index, item) in items.into_iter().enumerate() {
                    push_item(index, item, &mut batch)?;
                }
            }
            Body {
                channel: Some(channel),
                messages,
                presence,
                ..
            } if !channel.is_empty() && (messages.is_some() || presence.is_some()) => {
                push_entries(None, &channel, None, messages, presence, &mut batch);
            }
            _ => return None,
        }
        // Anything skipped is left to the lenient parser, which says why.
        if !batch.skipped.is_empty() {
            return None;
        }
        if batch.events.len() > MAX_BATCH_EVENTS {
            return Some(Err(PayloadError::TooLarge(batch.events.len())));
        }
        Some(Ok(batch))
    }

    fn push_item(index: usize, item: Item<'_>, batch: &mut WebhookBatch) -> Option<()> {
        if let Some(channel) = item.channel {
            let data = match item.data {
                Some(raw) => serde_json::from_str(raw.get()).ok()?,
                None => Value::Null,
            };
            let raw = RawMessage {
                id: item.id,
                client_id: item.client_id,
                timestamp: item.timestamp,
                name: item.name,
                data,
                encoding: item.encoding,
                action: None,
            };
            push_message(Place::Item(index), &channel, raw, None, false, batch);
            return Some(());
        }
        let data: ChannelData = serde_json::from_str(item.data?.get()).ok()?;
        let channel = data.channel_id.filter(|c| !c.is_empty())?;
        if data.messages.is_some() || data.presence.is_some() {
            push_entries(
                Some(index),
                &channel,
                item.timestamp,
                data.messages,
                data.presence,
                batch,
            );
            Some(())
        } else if data.status.is_some() {
            batch.lifecycle += 1;
            Some(())
        } else {
            None
        }
    }

    fn push_entries(
        item: Option<usize>,
        channel: &str,
        fallback_ts: Option<i64>,
        messages: Option<Vec<Message>>,
        presence: Option<Vec<Message>>,
        batch: &mut WebhookBatch,
    ) {
        for (key, is_presence, entries) in
            [("messages", false, messages), ("presence", true, presence)]
        {
            for (i, entry) in entries.into_iter().flatten().enumerate() {
                push_message(
                    Place::Entry(item, key, i),
                    channel,
                    entry.into(),
                    fallback_ts,
                    is_presence,
                    batch,
                );
            }
        }
    }
}

/// `conversation:{id}` -> `{id}`; any other channel is its own conversation.
pub fn conversation_id(channel: &str) -> &str {
    match channel.strip_prefix("conversation:") {
        Some(id) if !id.is_empty() => id,
        _ => channel,
    }
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

fn timestamp_ms(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}

/// ISO-8601 UTC with milliseconds (`2026-11-22T03:04:05.678Z`), for years 0 to 9999.
/// Written by hand: it runs for every event and chrono's formatter is several times slower.
pub fn iso_millis(ms: i64) -> Option<String> {
    // 0000-01-01T00:00:00.000Z ..= 9999-12-31T23:59:59.999Z
    if !(-62_167_219_200_000..=253_402_300_799_999).contains(&ms) {
        return None;
    }
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(24);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    );
    Some(out)
}

/// Days since 1970-01-01 -> (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
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

enum Decoded {
    Json(Value),
    Bytes(Vec<u8>),
}

/// Applies the `encoding` chain right to left (`json`, `base64`, `utf-8`). Stops at the
/// first step it cannot apply and returns the data as it was then, with the steps left.
pub fn decode_data(data: Value, encoding: Option<&str>) -> (Value, Option<String>) {
    // An empty step (`/utf-8`, `json//base64`) is no transformation.
    let steps: Vec<&str> = encoding
        .unwrap_or_default()
        .split('/')
        .filter(|step| !step.is_empty())
        .collect();
    if steps.is_empty() {
        return (data, None);
    }
    let mut current = Decoded::Json(data);
    let mut remaining = steps.len();
    while remaining > 0 {
        match apply(steps[remaining - 1], current) {
            Ok(decoded) => {
                current = decoded;
                remaining -= 1;
            }
            Err(unchanged) => {
                current = unchanged;
                break;
            }
        }
    }
    let mut left: Vec<&str> = steps[..remaining].to_vec();
    let value = match current {
        Decoded::Json(v) => v,
        Decoded::Bytes(bytes) => {
            // Binary data stays base64 in JSON, and says so.
            left.push("base64");
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
    };
    let left = if left.is_empty() {
        None
    } else {
        Some(left.join("/"))
    };
    (value, left)
}

/// One decoding step; gives the input back unchanged when the step does not apply.
fn apply(step: &str, current: Decoded) -> Result<Decoded, Decoded> {
    let engine = &base64::engine::general_purpose::STANDARD;
    match (step, current) {
        ("base64", Decoded::Json(Value::String(s))) => match engine.decode(&s) {
            Ok(bytes) => Ok(Decoded::Bytes(bytes)),
            Err(_) => Err(Decoded::Json(Value::String(s))),
        },
        ("utf-8" | "utf8", Decoded::Bytes(bytes)) => match String::from_utf8(bytes) {
            Ok(s) => Ok(Decoded::Json(Value::String(s))),
            Err(e) => Err(Decoded::Bytes(e.into_bytes())),
        },
        // Text that is already text: nothing to do.
        ("utf-8" | "utf8", text @ Decoded::Json(Value::String(_))) => Ok(text),
        ("json", Decoded::Json(Value::String(s))) => match serde_json::from_str(&s) {
            Ok(v) => Ok(Decoded::Json(v)),
            Err(_) => Err(Decoded::Json(Value::String(s))),
        },
        ("json", Decoded::Bytes(bytes)) => match serde_json::from_slice(&bytes) {
            Ok(v) => Ok(Decoded::Json(v)),
            Err(_) => Err(Decoded::Bytes(bytes)),
        },
        (_, other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../../tests/fixtures/ably-webhooks/", $name))
        };
    }

    #[test]
    fn batched_message() {
        let batch = parse(fixture!("batched-message.json")).unwrap();
        assert_eq!(
            batch.events,
            vec![ChatEvent {
                id: "ABcDefgHIj:1:0".into(),
                conversation_id: "chat-channel-4".into(),
                channel: "chat-channel-4".into(),
                event_type: "a message name".into(),
                client_id: Some("user-3".into()),
                payload: json!("the message data"),
                occurred_at: "2005-08-04T08:54:38.900Z".into(),
                encoding: None,
            }]
        );
        assert_eq!((batch.lifecycle, batch.skipped.len()), (0, 0));
    }

    #[test]
    fn batched_presence_maps_the_action() {
        let batch = parse(fixture!("batched-presence.json")).unwrap();
        assert_eq!(batch.events.len(), 1);
        let e = &batch.events[0];
        assert_eq!(e.event_type, "presence:update");
        assert_eq!(e.channel, "education-channel");
        assert_eq!(e.client_id.as_deref(), Some("bob"));
    }

    #[test]
    fn batched_lifecycle_is_counted_not_stored() {
        let batch = parse(fixture!("batched-lifecycle.json")).unwrap();
        assert!(batch.events.is_empty());
        assert_eq!(batch.lifecycle, 1);
    }

    #[test]
    fn enveloped_message_and_presence_despite_their_source_label() {
        let batch = parse(fixture!("enveloped-message.json")).unwrap();
        assert_eq!(batch.events[0].event_type, "greeting");
        assert_eq!(batch.events[0].payload, json!("Hello World"));
        assert_eq!(batch.events[0].occurred_at, "2020-02-21T07:28:57.276Z");
        let batch = parse(fixture!("enveloped-presence.json")).unwrap();
        assert_eq!(batch.events[0].event_type, "presence:update");
        assert_eq!(batch.events[0].id, "abCdEFgHIJ:1:0");
    }

    #[test]
    fn flat_items_and_conversation_channels() {
        let body = json!({"items": [
            {"name": "message:user", "channel": "conversation:c-1", "data": {"text": "hi"}, "timestamp": 1700000000123i64},
            {"name": "typing:start", "channel": "conversation:c-1", "data": null, "timestamp": 1700000000124i64, "id": "given"}
        ]});
        let batch = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(batch.events.len(), 2);
        let e = &batch.events[0];
        assert_eq!(e.conversation_id, "c-1");
        assert_eq!(e.channel, "conversation:c-1");
        assert_eq!(e.payload, json!({"text": "hi"}));
        assert_eq!(e.occurred_at, "2023-11-14T22:13:20.123Z");
        assert!(e.id.starts_with("derived:"));
        assert_eq!(batch.events[1].id, "given");
        // Deterministic: the same body gives the same ids.
        assert_eq!(
            parse(body.to_string().as_bytes()).unwrap().events[0].id,
            e.id
        );
    }

    #[test]
    fn encodings_are_decoded_right_to_left() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            decode_data(json!(r#"{"a":1}"#), Some("json")),
            (json!({"a": 1}), None)
        );
        assert_eq!(
            decode_data(json!(b64(r#"{"a":[1,2]}"#)), Some("json/utf-8/base64")),
            (json!({"a": [1, 2]}), None)
        );
        assert_eq!(
            decode_data(json!(b64("héllo")), Some("utf-8/base64")),
            (json!("héllo"), None)
        );
        // Binary stays base64 and says so.
        assert_eq!(
            decode_data(json!(b64("\u{1}\u{2}")), Some("base64")),
            (json!(b64("\u{1}\u{2}")), Some("base64".into()))
        );
        // An encoding we cannot decode keeps the data and the remaining chain.
        assert_eq!(
            decode_data(
                json!("c2VjcmV0"),
                Some("json/utf-8/cipher+aes-128-cbc/base64")
            ),
            (
                json!("c2VjcmV0"),
                Some("json/utf-8/cipher+aes-128-cbc/base64".into())
            )
        );
        assert_eq!(
            decode_data(json!("not json"), Some("json")),
            (json!("not json"), Some("json".into()))
        );
        assert_eq!(
            decode_data(json!("%%%"), Some("base64")),
            (json!("%%%"), Some("base64".into()))
        );
        assert_eq!(
            decode_data(json!("plain"), Some("utf-8")),
            (json!("plain"), None)
        );
    }

    #[test]
    fn empty_encoding_steps_are_no_steps() {
        // Found by fuzzing: "/utf8" left the event with an empty leftover encoding.
        assert_eq!(
            decode_data(json!("r32;"), Some("/utf8")),
            (json!("r32;"), None)
        );
        assert_eq!(decode_data(json!("x"), Some("//")), (json!("x"), None));
        let b64 = base64::engine::general_purpose::STANDARD.encode(r#"{"a":1}"#);
        assert_eq!(
            decode_data(json!(b64), Some("json//base64/")),
            (json!({"a": 1}), None)
        );
        assert_eq!(
            decode_data(json!("x"), Some("cipher//utf-8")),
            (json!("x"), Some("cipher".into()))
        );
    }

    #[test]
    fn iso_timestamps_match_chrono_across_the_range() {
        for ms in [
            0i64,
            1,
            -1,
            951_782_400_000,
            1_123_145_678_900,
            4_102_444_800_000,
            -62_167_219_200_000,
            253_402_300_799_999,
            1_700_000_000_123,
        ] {
            let expected = chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string();
            assert_eq!(iso_millis(ms).unwrap(), expected, "{ms}");
        }
        assert_eq!(iso_millis(253_402_300_800_000), None);
        assert_eq!(iso_millis(-62_167_219_200_001), None);
    }

    #[test]
    fn the_fast_and_lenient_parsers_agree() {
        let bodies: Vec<Vec<u8>> = vec![
            fixture!("batched-message.json").to_vec(),
            fixture!("batched-presence.json").to_vec(),
            fixture!("batched-lifecycle.json").to_vec(),
            fixture!("enveloped-message.json").to_vec(),
            fixture!("enveloped-presence.json").to_vec(),
            json!({"items": [{"name": "n", "channel": "conversation:a", "data": {"x": [1, 2]}, "timestamp": 5, "clientId": "c"}]}).to_string().into_bytes(),
            json!({"items": [{"data": {"channelId": "conversation:b", "messages": [
                {"id": "1", "timestamp": 7, "name": "m", "data": "eyJhIjoxfQ==", "encoding": "json/base64"},
                {"timestamp": 8, "data": null}
            ], "presence": [{"clientId": "p", "action": 2, "timestamp": 9}]}, "timestamp": 6}]}).to_string().into_bytes(),
        ];
        for body in bodies {
            let fast = fast::parse(&body).expect("fast path applies").unwrap();
            assert_eq!(
                fast,
                parse_lenient(&body).unwrap(),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
        // Unusual input is left to the lenient parser.
        assert!(fast::parse(br#"{"items":[{"channel":"c","timestamp":1.5}]}"#).is_none());
        assert!(fast::parse(br#"{"items":[{"data":{"channelId":"c"}}]}"#).is_none());
        assert!(fast::parse(b"not json").is_none());
    }

    #[test]
    fn every_presence_action() {
        for (action, name) in [
            (0, "absent"),
            (1, "present"),
            (2, "enter"),
            (3, "leave"),
            (4, "update"),
            (9, "unknown"),
        ] {
            let body = json!({"channel": "c", "presence": [{"clientId": "x", "timestamp": 1, "action": action}]});
            let batch = parse(body.to_string().as_bytes()).unwrap();
            assert_eq!(batch.events[0].event_type, format!("presence:{name}"));
        }
    }

    #[test]
    fn bad_bodies_and_bad_entries() {
        assert_eq!(parse(b"not json"), Err(PayloadError::NotJson));
        assert_eq!(parse(b"[1,2]"), Err(PayloadError::UnknownShape));
        assert_eq!(
            parse(br#"{"hello":"world"}"#),
            Err(PayloadError::UnknownShape)
        );
        assert_eq!(parse(br#"{"items":{}}"#), Err(PayloadError::UnknownShape));
        assert_eq!(
            parse(br#"{"channel":"c"}"#),
            Err(PayloadError::UnknownShape)
        );
        let batch = parse(br#"{"items":[1,{"data":{}},{"name":"x","channel":"c"},{"data":{"channelId":"c","messages":[{"timestamp":"soon"}]}}]}"#).unwrap();
        assert_eq!(batch.skipped[3], "item 3 messages[0]: malformed entry");
        assert!(batch.events.is_empty());
        assert_eq!(batch.skipped.len(), 4, "{:?}", batch.skipped);
        let items: Vec<Value> = (0..1001)
            .map(|i| json!({"channel": "c", "name": "n", "timestamp": i}))
            .collect();
        assert_eq!(
            parse(json!({"items": items}).to_string().as_bytes()),
            Err(PayloadError::TooLarge(1001))
        );
    }
}
