//! A typed single pass over well-formed Ably batches, several times faster than building
//! a JSON tree. It gives up (`None`) at anything unusual, and the lenient parser, which
//! explains every entry it skips, takes over; both produce the same events.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::ably::webhook::entry::{
    push_message, PayloadError, Place, RawMessage, WebhookBatch, MAX_BATCH_ITEMS,
};

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

pub(crate) fn parse(body: &[u8]) -> Option<Result<WebhookBatch, PayloadError>> {
    let parsed: Body<'_> = serde_json::from_slice(body).ok()?;
    let mut batch = WebhookBatch::default();
    match parsed {
        Body {
            items: Some(items), ..
        } => {
            if items.len() > MAX_BATCH_ITEMS {
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
    for (key, is_presence, entries) in [("messages", false, messages), ("presence", true, presence)]
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
