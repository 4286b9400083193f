//! A typed single pass over well-formed Ably batches, several times faster than building
//! a JSON tree. It gives up (`None`) at anything unusual, and the lenient parser, which
//! explains every entry it skips, takes over; both produce the same events.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ably::webhook::entry::{
    push_message, PayloadError, Place, RawMessage, WebhookBatch, MAX_BATCH_ITEMS,
};

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    items: Option<Vec<Item<'a>>>,
    channel: Option<String>,
    #[serde(borrow)]
    messages: Option<Vec<Message<'a>>>,
    #[serde(borrow)]
    presence: Option<Vec<Message<'a>>>,
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
struct ChannelData<'a> {
    #[serde(rename = "channelId")]
    channel_id: Option<String>,
    #[serde(borrow)]
    messages: Option<Vec<Message<'a>>>,
    #[serde(borrow)]
    presence: Option<Vec<Message<'a>>>,
    status: Option<IgnoredAny>,
}

/// `data` and `action` stay JSON text: the entry decodes them one message at a time.
#[derive(Deserialize)]
struct Message<'a> {
    id: Option<String>,
    #[serde(rename = "clientId")]
    client_id: Option<String>,
    name: Option<String>,
    encoding: Option<String>,
    timestamp: Option<i64>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    action: Option<&'a RawValue>,
    serial: Option<String>,
    #[serde(borrow)]
    version: Option<&'a RawValue>,
    #[serde(borrow)]
    annotations: Option<&'a RawValue>,
    #[serde(borrow)]
    extras: Option<&'a RawValue>,
}

impl<'a> From<Message<'a>> for RawMessage<'a> {
    fn from(m: Message<'a>) -> Self {
        RawMessage {
            id: m.id,
            client_id: m.client_id,
            timestamp: m.timestamp,
            name: m.name,
            data: m.data.map(Cow::Borrowed),
            encoding: m.encoding,
            action: m.action.map(Cow::Borrowed),
            serial: m.serial,
            version: m.version.map(Cow::Borrowed),
            annotations: m.annotations.map(Cow::Borrowed),
            extras: m.extras.map(Cow::Borrowed),
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

fn push_item<'a>(index: usize, item: Item<'a>, batch: &mut WebhookBatch) -> Option<()> {
    if let Some(channel) = item.channel {
        let raw = RawMessage {
            id: item.id,
            client_id: item.client_id,
            timestamp: item.timestamp,
            name: item.name,
            data: item.data.map(Cow::Borrowed),
            encoding: item.encoding,
            ..RawMessage::default()
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
    messages: Option<Vec<Message<'_>>>,
    presence: Option<Vec<Message<'_>>>,
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
