//! The general webhook parser: builds a JSON tree first, so it can report every entry it
//! cannot use and keep the rest. [`super::fast`] handles well-formed batches without
//! the tree.

use serde_json::{Map, Value};

use crate::ably::webhook::entry::{
    push_message, timestamp_ms, PayloadError, Place, RawMessage, WebhookBatch, MAX_BATCH_ITEMS,
};

pub(crate) fn parse(body: &[u8]) -> Result<WebhookBatch, PayloadError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| PayloadError::NotJson)?;
    parse_value(value)
}

/// The same, over a tree already built (e.g. from MessagePack).
pub(crate) fn parse_value(value: Value) -> Result<WebhookBatch, PayloadError> {
    let Value::Object(mut top) = value else {
        return Err(PayloadError::UnknownShape);
    };
    let mut batch = WebhookBatch::default();
    match top.remove("items") {
        Some(Value::Array(items)) => {
            if items.len() > MAX_BATCH_ITEMS {
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
