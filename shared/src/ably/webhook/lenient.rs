//! The general webhook parser: walks the body's structure level by level, so it can
//! report every entry it cannot use and keep the rest. [`super::fast`] handles
//! well-formed batches in one typed pass.
//!
//! Each level is read as a map or list of JSON texts borrowed from the body, never as one
//! tree of the whole body: an entry's `data` becomes a value only when its event is built
//! ([`super::entry`]), so a body of many large messages costs about its own size.

use serde_json::value::RawValue;
use serde_json::Value;

use crate::ably::webhook::entry::{
    push_message, timestamp_ms, PayloadError, Place, RawMap, RawMessage, WebhookBatch,
    MAX_BATCH_ITEMS,
};

/// `raw` as an object's members, if it is an object.
fn object(raw: &RawValue) -> Option<RawMap<'_>> {
    serde_json::from_str(raw.get()).ok()
}

/// `raw` as an array's elements, if it is an array.
fn array(raw: &RawValue) -> Option<Vec<&RawValue>> {
    serde_json::from_str(raw.get()).ok()
}

/// `raw` as a string, if it is one.
fn string(raw: &RawValue) -> Option<String> {
    serde_json::from_str(raw.get()).ok()
}

pub(crate) fn parse(body: &[u8]) -> Result<WebhookBatch, PayloadError> {
    let top: &RawValue = serde_json::from_slice(body).map_err(|_| PayloadError::NotJson)?;
    let mut top = object(top).ok_or(PayloadError::UnknownShape)?;
    let mut batch = WebhookBatch::default();
    match top.remove("items") {
        Some(items) => {
            let items = array(items).ok_or(PayloadError::UnknownShape)?;
            if items.len() > MAX_BATCH_ITEMS {
                return Err(PayloadError::TooLarge(items.len()));
            }
            for (index, item) in items.into_iter().enumerate() {
                parse_item(index, item, &mut batch);
            }
        }
        None => {
            let channel = top
                .get("channel")
                .and_then(|c| string(c))
                .filter(|c| !c.is_empty())
                .ok_or(PayloadError::UnknownShape)?;
            if !top.contains_key("messages") && !top.contains_key("presence") {
                return Err(PayloadError::UnknownShape);
            }
            parse_channel_entries(None, &channel, None, &mut top, &mut batch);
        }
    }
    Ok(batch)
}

fn parse_item(index: usize, item: &RawValue, batch: &mut WebhookBatch) {
    let Some(mut item) = object(item) else {
        batch.skipped.push(format!("item {index}: not an object"));
        return;
    };
    // Flat item: the item itself is the message.
    if let Some(channel) = item.remove("channel").and_then(string) {
        match RawMessage::from_map(item) {
            Some(raw) => push_message(Place::Item(index), &channel, raw, None, false, batch),
            None => batch
                .skipped
                .push(format!("item {index}: malformed message")),
        }
        return;
    }
    let item_timestamp = item
        .get("timestamp")
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
        .and_then(|ts| timestamp_ms(&ts));
    let Some(mut data) = item.remove("data").and_then(object) else {
        batch
            .skipped
            .push(format!("item {index}: no channel and no data object"));
        return;
    };
    let channel = match data.get("channelId").and_then(|c| string(c)) {
        Some(c) if !c.is_empty() => c,
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
    container: &mut RawMap<'_>,
    batch: &mut WebhookBatch,
) {
    for (key, presence) in [("messages", false), ("presence", true)] {
        let Some(raw) = container.remove(key) else {
            continue;
        };
        let Some(entries) = array(raw) else {
            batch.skipped.push(match item {
                Some(i) => format!("item {i}: {key} is not an array"),
                None => format!("{key} is not an array"),
            });
            continue;
        };
        for (i, entry) in entries.into_iter().enumerate() {
            let place = Place::Entry(item, key, i);
            match object(entry).and_then(RawMessage::from_map) {
                Some(raw) => push_message(place, channel, raw, fallback_ts, presence, batch),
                None => batch.skipped.push(format!("{place}: malformed entry")),
            }
        }
    }
}
