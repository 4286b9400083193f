//! A chat event as a DynamoDB item and back: the attribute layout, and the size rules
//! that decide whether DynamoDB can hold an event at all.
//!
//! The payload is stored as its JSON text (`payload_json`, a string): one string per
//! item to build, whatever the payload holds, where a DynamoDB map costs an attribute
//! object per element (a message of 17 000 numbers was a megabyte and a half of them).
//! A reader of the table outside this code parses `payload_json`; DynamoDB's filter
//! expressions cannot look inside it, and nothing here asks them to. Items written with
//! a `payload` map are still read.

use std::borrow::Cow;
use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};

use crate::events::change::{Action, Version};
use crate::events::Payload;

use crate::ably::webhook::WebhookBatch;
use crate::events::event::{MAX_ITEM_BYTES, MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES};
use crate::events::ChatEvent;
use crate::storage::dynamo::{PARTITION_KEY, REPORT_KEY, SORT_KEY, TTL_ATTRIBUTE};

/// The attribute that records whether the channel table trusted the event's publisher.
pub const TRUSTED_ATTRIBUTE: &str = "trusted";
/// The payload's JSON text.
pub const PAYLOAD_ATTRIBUTE: &str = "payload_json";
/// The payload as a map, in items written before payloads were kept as text.
const LEGACY_PAYLOAD_ATTRIBUTE: &str = "payload";

pub(crate) fn event_item(
    event: &ChatEvent,
    event_key: String,
    expires_at: String,
) -> HashMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let mut item = HashMap::with_capacity(12);
    item.insert(PARTITION_KEY.to_owned(), s(&event.history_id));
    item.insert(SORT_KEY.to_owned(), AttributeValue::S(event_key));
    item.insert("id".to_owned(), s(&event.id));
    item.insert("event_type".to_owned(), s(&event.event_type));
    item.insert("channel".to_owned(), s(&event.channel));
    item.insert("occurred_at".to_owned(), s(&event.occurred_at));
    item.insert(TTL_ATTRIBUTE.to_owned(), AttributeValue::N(expires_at));
    item.insert(
        TRUSTED_ATTRIBUTE.to_owned(),
        AttributeValue::Bool(event.trusted),
    );
    if let Some(client_id) = &event.client_id {
        item.insert("client_id".to_owned(), s(client_id));
    }
    if let Some(encoding) = &event.encoding {
        item.insert("encoding".to_owned(), s(encoding));
    }
    item.insert(
        PAYLOAD_ATTRIBUTE.to_owned(),
        AttributeValue::S(event.payload.json().to_owned()),
    );
    for (name, value) in change_attributes(event) {
        item.insert(name.to_owned(), AttributeValue::S(value.into_owned()));
    }
    if let Some(key) = report_key(event) {
        item.insert(REPORT_KEY.to_owned(), AttributeValue::S(key));
    }
    item
}

/// The report types `GET /api/chat/reports` serves: three trusted event types, and every
/// untrusted event whatever its type.
pub const REPORT_TYPES: [&str; 4] = ["sla:warning", "sla:violation", "agent_joined", "untrusted"];

/// The report type of `event`, if it is report-worthy.
pub fn report_type(event: &ChatEvent) -> Option<&'static str> {
    if !event.trusted {
        return Some("untrusted");
    }
    REPORT_TYPES[..3]
        .iter()
        .find(|t| **t == event.event_type)
        .copied()
}

/// The reports index's partition key of a report type and a day (`YYYY-MM-DD`).
pub fn report_partition(report_type: &str, day: &str) -> String {
    format!("{report_type}#{day}")
}

/// The reports index's key of `event` (`{type}#{day of occurred_at}`); `None` for an
/// ordinary event, which the sparse index never holds.
pub fn report_key(event: &ChatEvent) -> Option<String> {
    let day = event.occurred_at.get(..10)?;
    report_type(event).map(|t| report_partition(t, day))
}

/// The attributes of a message that can change (see [`crate::events::change`]), as
/// strings: `serial`, `action` (Ably's name), `version_serial`; on a change also
/// `version_client_id` (absent: the API key), `updated_at` and `message_at`; and
/// `headers_json`, `reactions_json` and `fragments_json` when the entry has them.
fn change_attributes(event: &ChatEvent) -> Vec<(&'static str, Cow<'_, str>)> {
    let mut out = Vec::new();
    if let Some(action) = event.action {
        out.push(("action", Cow::Borrowed(action.as_str())));
    }
    if let Some(serial) = &event.serial {
        out.push(("serial", Cow::Borrowed(serial.as_str())));
        out.push(("version_serial", Cow::Borrowed(event.version_serial())));
    }
    if let Some(version) = &event.version {
        if let Some(editor) = &version.client_id {
            out.push(("version_client_id", Cow::Borrowed(editor.as_str())));
        }
        out.push(("updated_at", Cow::Borrowed(version.updated_at.as_str())));
    }
    if let Some(at) = &event.message_at {
        out.push(("message_at", Cow::Borrowed(at.as_str())));
    }
    if let Some(headers) = &event.headers {
        out.push(("headers_json", Cow::Borrowed(headers.json())));
    }
    if let Some(reactions) = &event.reactions {
        out.push(("reactions_json", Cow::Borrowed(reactions.json())));
    }
    if !event.fragments.is_empty() {
        let text = serde_json::to_string(&event.fragments).unwrap_or_default();
        out.push(("fragments_json", Cow::Owned(text)));
    }
    out
}

/// Why DynamoDB could not hold `event`, if it could not. Such an event would make its
/// whole `BatchWriteItem` chunk fail on every redelivery (and with it the batch, until
/// Ably gives up), so the handler skips it and reports it instead.
pub fn unstorable(event: &ChatEvent) -> Option<&'static str> {
    if event.history_id.is_empty() {
        return Some("no channel");
    }
    if event.history_id.len() > MAX_PARTITION_KEY_BYTES {
        return Some("channel name longer than a DynamoDB key");
    }
    // The sort key is `{occurred_at}#{id}`.
    if event.occurred_at.len() + 1 + event.id.len() > MAX_SORT_KEY_BYTES {
        return Some("id longer than a DynamoDB key");
    }
    if event.event_type.is_empty() || event.event_type.len() > MAX_PARTITION_KEY_BYTES {
        return Some("name longer than a DynamoDB key");
    }
    if item_bytes(event) > MAX_ITEM_BYTES {
        return Some("event larger than a DynamoDB item");
    }
    None
}

/// Moves the events DynamoDB could not hold out of `batch`, into its skipped reasons.
pub fn skip_unstorable(batch: &mut WebhookBatch) {
    skip(batch, unstorable);
}

/// Moves the events `reason` names a reason for out of `batch`, into its skipped reasons
/// (`event {index}: {reason}`).
pub fn skip(batch: &mut WebhookBatch, reason: impl Fn(&ChatEvent) -> Option<&'static str>) {
    let skipped = &mut batch.skipped;
    let mut index = 0;
    batch.events.retain(|event| {
        index += 1;
        match reason(event) {
            Some(reason) => {
                skipped.push(format!("event {}: {reason}", index - 1));
                false
            }
            None => true,
        }
    });
}

/// The size DynamoDB counts for the item [`event_item`] builds (attribute names plus
/// values), rounded up where DynamoDB's own rule is approximate.
fn item_bytes(event: &ChatEvent) -> usize {
    let text = |name: &str, value: &str| name.len() + value.len();
    let mut size = text(PARTITION_KEY, &event.history_id)
        + text(SORT_KEY, &event.occurred_at)
        + 1
        + event.id.len()
        + text("id", &event.id)
        + text("event_type", &event.event_type)
        + text("channel", &event.channel)
        + text("occurred_at", &event.occurred_at)
        + TTL_ATTRIBUTE.len()
        + 21
        + TRUSTED_ATTRIBUTE.len()
        + 1;
    if let Some(client_id) = &event.client_id {
        size += text("client_id", client_id);
    }
    if let Some(encoding) = &event.encoding {
        size += text("encoding", encoding);
    }
    size + text(PAYLOAD_ATTRIBUTE, event.payload.json())
        + report_key(event).map_or(0, |key| text(REPORT_KEY, &key))
        + change_attributes(event)
            .iter()
            .map(|(name, value)| text(name, value))
            .sum::<usize>()
}

/// DynamoDB attribute -> JSON, for the payload maps of items written before payloads
/// were kept as text.
pub fn attr_to_json(attr: &AttributeValue) -> Value {
    match attr {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| n.parse::<u64>().map(Value::from))
            .ok()
            .or_else(|| {
                n.parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
            })
            .unwrap_or_else(|| Value::String(n.clone())),
        AttributeValue::L(items) => Value::Array(items.iter().map(attr_to_json).collect()),
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), attr_to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        AttributeValue::Ss(items) => {
            Value::Array(items.iter().cloned().map(Value::String).collect())
        }
        _ => Value::Null,
    }
}

/// A stored item back as a chat event; `None` for items that are not events.
pub fn item_event(item: &HashMap<String, AttributeValue>) -> Option<ChatEvent> {
    let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let payload = match (s(PAYLOAD_ATTRIBUTE), item.get(LEGACY_PAYLOAD_ATTRIBUTE)) {
        (Some(text), _) => Payload::from_stored_text(text),
        (None, Some(attr)) => Payload::from_value(&attr_to_json(attr)),
        (None, None) => Payload::null(),
    };
    let (channel, event_type, client_id) = (s("channel")?, s("event_type")?, s("client_id"));
    // An item written before events carried `trusted` is judged again from what it holds.
    let trusted = match item.get(TRUSTED_ATTRIBUTE) {
        Some(AttributeValue::Bool(trusted)) => *trusted,
        _ => crate::channels::trusts(&channel, &event_type, client_id.as_deref()),
    };
    let json = |name: &str| s(name).map(Payload::from_stored_text);
    let action = s("action").and_then(|name| Action::of_name(&name));
    let version = match (action, s("version_serial")) {
        (Some(action), Some(serial)) if action != Action::Create => Some(Version {
            serial,
            client_id: s("version_client_id"),
            updated_at: s("updated_at").or_else(|| s("occurred_at"))?,
        }),
        _ => None,
    };
    Some(ChatEvent {
        id: s("id")?,
        history_id: s(PARTITION_KEY)?,
        channel,
        event_type,
        client_id,
        trusted,
        payload,
        occurred_at: s("occurred_at")?,
        encoding: s("encoding"),
        serial: s("serial"),
        action,
        version,
        message_at: s("message_at"),
        headers: json("headers_json"),
        reactions: json("reactions_json"),
        fragments: s("fragments_json")
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// JSON -> DynamoDB attribute, as items were written before payloads were text.
    fn json_to_attr(value: &Value) -> AttributeValue {
        match value {
            Value::Null => AttributeValue::Null(true),
            Value::Bool(b) => AttributeValue::Bool(*b),
            Value::Number(n) => AttributeValue::N(n.to_string()),
            Value::String(s) => AttributeValue::S(s.clone()),
            Value::Array(items) => AttributeValue::L(items.iter().map(json_to_attr).collect()),
            Value::Object(map) => AttributeValue::M(
                map.iter()
                    .map(|(k, v)| (k.clone(), json_to_attr(v)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn payloads_are_written_as_text_and_legacy_payload_maps_still_read() {
        let value =
            json!({"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "big": 18446744073709551615u64});
        assert_eq!(attr_to_json(&json_to_attr(&value)), value);
        let mut event = crate::events::event::sample(1_700_000_000_000, "m1");
        event.payload = Payload::from_value(&value);
        let mut item = event_item(&event, event.event_key(), "1".into());
        assert_eq!(
            item.get(PAYLOAD_ATTRIBUTE),
            Some(&AttributeValue::S(event.payload.json().to_owned()))
        );
        assert!(!item.contains_key(LEGACY_PAYLOAD_ATTRIBUTE));
        assert_eq!(item_event(&item).as_ref(), Some(&event));
        // Written before payloads were text: a map.
        item.remove(PAYLOAD_ATTRIBUTE);
        item.insert(LEGACY_PAYLOAD_ATTRIBUTE.into(), json_to_attr(&value));
        assert_eq!(item_event(&item).as_ref(), Some(&event));
        // Written as text because it was too deep for a map.
        item.remove(LEGACY_PAYLOAD_ATTRIBUTE);
        item.insert(
            PAYLOAD_ATTRIBUTE.into(),
            AttributeValue::S(value.to_string()),
        );
        assert_eq!(item_event(&item).as_ref(), Some(&event));
    }

    #[test]
    fn a_change_keeps_its_version_in_the_item_and_an_item_without_one_reads_as_before() {
        let mut body = json!({"channel": "conversation:c", "messages": [
            {"id": "m:0", "clientId": "customer:u", "name": "message:user", "timestamp": 1_700_000_000_000i64,
             "serial": "s1", "action": 0, "data": "hi"},
            {"clientId": "customer:u", "timestamp": 1_700_000_000_000i64, "serial": "s1", "action": 5,
             "data": " there", "version": {"serial": "s1:2", "clientId": "customer:u", "timestamp": 1_700_000_000_500i64},
             "extras": {"headers": {"k": "v"}}},
            {"clientId": "customer:u", "timestamp": 1_700_000_000_000i64, "serial": "s1", "action": 4,
             "annotations": {"summary": {"reaction:total.v1": {"total": 3}}},
             "version": {"serial": "s1:3", "timestamp": 1_700_000_000_900i64}}
        ]});
        let batch = crate::ably::webhook::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(batch.events.len(), 2, "the append joined its create");
        for event in &batch.events {
            let item = event_item(event, event.event_key(), "1".into());
            assert_eq!(item_event(&item).as_ref(), Some(event));
        }
        let item = event_item(&batch.events[1], String::new(), "1".into());
        let attr = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        assert_eq!(attr("action").as_deref(), Some("message.summary"));
        assert_eq!(attr("version_serial").as_deref(), Some("s1:3"));
        assert_eq!(attr("version_client_id"), None, "the API key");
        assert_eq!(
            attr("message_at").as_deref(),
            Some("2023-11-14T22:13:20.000Z")
        );
        assert!(attr("reactions_json").is_some());
        // An item written before messages changed: no action, serial or version.
        body["messages"] =
            json!([{"id": "old", "name": "message:user", "timestamp": 1, "data": "x"}]);
        let old = crate::ably::webhook::parse(body.to_string().as_bytes()).unwrap();
        let mut item = event_item(&old.events[0], old.events[0].event_key(), "1".into());
        item.remove("action");
        let read = item_event(&item).unwrap();
        assert_eq!(
            (&read.action, &read.serial, &read.version),
            (&None, &None, &None)
        );
        assert_eq!(read.payload, json!("x"));
        assert_eq!(
            crate::events::view::fold([&read]),
            crate::events::view::State::Shown(read.clone())
        );
    }

    #[test]
    fn events_at_dynamodbs_limits_are_storable_and_past_them_are_not() {
        let event = |conversation: &str, id: &str, name: &str, payload: Value| ChatEvent {
            payload: payload.into(),
            id: id.into(),
            history_id: conversation.into(),
            channel: format!("conversation:{conversation}"),
            event_type: name.into(),
            client_id: None,
            trusted: true,
            occurred_at: "2023-11-14T22:13:20.000Z".into(),
            ..ChatEvent::plain()
        };
        let longest_id = "i".repeat(MAX_SORT_KEY_BYTES - 25);
        let key = "k".repeat(MAX_PARTITION_KEY_BYTES);
        for ok in [
            event("c", "1", "m", json!({"a": [1, "b"]})),
            event(&key, &longest_id, &key, json!("x".repeat(390 * 1024))),
        ] {
            assert_eq!(unstorable(&ok), None);
        }
        for (bad, reason) in [
            (event("", "1", "m", json!(1)), "no channel"),
            (
                event(&format!("{key}k"), "1", "m", json!(1)),
                "channel name longer than a DynamoDB key",
            ),
            (
                event("c", &format!("{longest_id}i"), "m", json!(1)),
                "id longer than a DynamoDB key",
            ),
            (
                event("c", "1", &format!("{key}k"), json!(1)),
                "name longer than a DynamoDB key",
            ),
            (
                event("c", "1", "m", json!("x".repeat(MAX_ITEM_BYTES))),
                "event larger than a DynamoDB item",
            ),
            // The JSON text counts, escapes and all.
            (
                event(
                    "c",
                    "1",
                    "m",
                    json!({"deep": nested(40), "s": "\u{1}".repeat(70_000)}),
                ),
                "event larger than a DynamoDB item",
            ),
        ] {
            assert_eq!(unstorable(&bad), Some(reason));
        }
    }

    fn nested(depth: usize) -> Value {
        (0..depth).fold(json!(1), |v, _| json!([v]))
    }
}
