//! The chat event: what every Ably message or presence entry becomes, what Redis and
//! DynamoDB hold and what history answers. Its keys and the limits they live under are
//! defined here, beside it.

use serde::{Deserialize, Serialize};

use crate::events::payload::Payload;
use crate::events::version::{Action, Fragments, Version};

/// DynamoDB's limits on an archived event: partition keys (the table's and the `by_type`
/// index's) of 1 to 2048 bytes, sort keys up to 1024 bytes, items up to 400 KB.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
pub const MAX_SORT_KEY_BYTES: usize = 1024;
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Partitions whose name starts with this are reserved (the dead letters) and are never
/// chat history.
const RESERVED_PARTITION_PREFIX: char = '_';

/// A chat event as mirrored to Redis and DynamoDB and served back to clients.
///
/// Its JSON opens with `occurred_at`: the cache's scripts read an entry's time from its
/// first bytes (`storage/scripts/times.lua`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredEvent")]
pub struct ChatEvent {
    /// ISO-8601 UTC with milliseconds, e.g. `2026-11-22T03:04:05.678Z`.
    pub occurred_at: String,
    pub id: String,
    /// The history the event is kept in: the conversation id of a `conversation:{id}`
    /// channel, else the whole channel name (see [`conversation_id`]). It is the DynamoDB
    /// partition and the Redis list, and keeps the name `conversation_id` in JSON and in
    /// the table.
    #[serde(rename = "conversation_id")]
    pub history_id: String,
    pub channel: String,
    pub event_type: String,
    /// The publisher's clientId as Ably verified it; `None`: the API key (a server).
    pub client_id: Option<String>,
    /// Whether the channel table lets the publisher's role send this event here (see
    /// [`crate::channels::trusts`]). Untrusted events are kept as the record of what
    /// happened, but never counted, bridged or served as history.
    pub trusted: bool,
    pub payload: Payload,
    /// The part of the message's `encoding` that could not be decoded, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// The message's Ably serial, shared by all its versions (see [`crate::events::change`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// What this entry did to its message; `None` for presence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// Who made this version and when: on changes (update, delete, append, summary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    /// On a change, the time of the message it changes (Ably's top-level `timestamp`);
    /// `occurred_at` is then the time of the change, the entry's place in the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_at: Option<String>,
    /// `extras.headers` as Ably delivered them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Payload>,
    /// The latest reaction summary (`annotations.summary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reactions: Option<Payload>,
    /// Appends held by this entry, oldest first: the payload's text ends with them.
    #[serde(default, skip_serializing_if = "Fragments::is_empty")]
    pub fragments: Fragments,
}

/// A chat event as stored; one written before events carried `trusted` is judged again
/// from its channel, type and clientId.
#[derive(Deserialize)]
struct StoredEvent {
    id: String,
    conversation_id: String,
    channel: String,
    event_type: String,
    client_id: Option<String>,
    trusted: Option<bool>,
    payload: Payload,
    occurred_at: String,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    serial: Option<String>,
    #[serde(default)]
    action: Option<Action>,
    #[serde(default)]
    version: Option<Version>,
    #[serde(default)]
    message_at: Option<String>,
    #[serde(default)]
    headers: Option<Payload>,
    #[serde(default)]
    reactions: Option<Payload>,
    #[serde(default)]
    fragments: Fragments,
}

impl From<StoredEvent> for ChatEvent {
    fn from(stored: StoredEvent) -> Self {
        let trusted = stored.trusted.unwrap_or_else(|| {
            crate::channels::trusts(
                &stored.channel,
                &stored.event_type,
                stored.client_id.as_deref(),
            )
        });
        ChatEvent {
            id: stored.id,
            history_id: stored.conversation_id,
            channel: stored.channel,
            event_type: stored.event_type,
            client_id: stored.client_id,
            trusted,
            payload: stored.payload,
            occurred_at: stored.occurred_at,
            encoding: stored.encoding,
            serial: stored.serial,
            action: stored.action,
            version: stored.version,
            message_at: stored.message_at,
            headers: stored.headers,
            reactions: stored.reactions,
            fragments: stored.fragments,
        }
    }
}

impl ChatEvent {
    /// An event with every field empty, to build others from (`..ChatEvent::plain()`).
    pub fn plain() -> Self {
        ChatEvent {
            occurred_at: String::new(),
            id: String::new(),
            history_id: String::new(),
            channel: String::new(),
            event_type: String::new(),
            client_id: None,
            trusted: false,
            payload: Payload::null(),
            encoding: None,
            serial: None,
            action: None,
            version: None,
            message_at: None,
            headers: None,
            reactions: None,
            fragments: Fragments::default(),
        }
    }

    /// The DynamoDB sort key: time-ordered, unique per event, the same on every redelivery.
    pub fn event_key(&self) -> String {
        format!("{}#{}", self.occurred_at, self.id)
    }
}

/// `conversation:{id}` -> `{id}`; any other channel is its own conversation.
pub fn conversation_id(channel: &str) -> &str {
    match channel.strip_prefix("conversation:") {
        Some(id) if !id.is_empty() => id,
        _ => channel,
    }
}

/// Whether `conversation_id` names a reserved partition (the dead letters), which is
/// never served as history.
pub fn is_reserved(conversation_id: &str) -> bool {
    conversation_id.starts_with(RESERVED_PARTITION_PREFIX)
}

/// A `message:user` event of conversation `c` at `ms`, for unit tests.
#[cfg(test)]
pub(crate) fn sample(ms: i64, id: &str) -> ChatEvent {
    ChatEvent {
        id: id.into(),
        history_id: "c".into(),
        channel: "conversation:c".into(),
        event_type: "message:user".into(),
        client_id: Some("customer-c".into()),
        trusted: true,
        payload: serde_json::json!({"text": id}).into(),
        occurred_at: crate::events::time::iso_millis(ms).unwrap_or_default(),
        ..ChatEvent::plain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversations_and_other_channels_and_reserved_partitions() {
        assert_eq!(conversation_id("conversation:c-1"), "c-1");
        assert_eq!(conversation_id("conversation:"), "conversation:");
        assert_eq!(conversation_id("sms:u:c"), "sms:u:c");
        assert!(is_reserved("_dead_letter"));
        assert!(!is_reserved("c-1"));
    }

    #[test]
    fn trust_is_written_and_an_event_stored_without_it_is_judged_again() {
        let mut forged = sample(1, "f");
        forged.event_type = "message:ai".into();
        forged.trusted = false;
        let json = serde_json::to_value(&forged).unwrap();
        assert_eq!(json["trusted"], false);
        assert_eq!(json["conversation_id"], "c");
        assert_eq!(
            serde_json::from_value::<ChatEvent>(json.clone()).unwrap(),
            forged
        );
        let mut legacy = json;
        legacy.as_object_mut().unwrap().remove("trusted");
        assert!(
            !serde_json::from_value::<ChatEvent>(legacy.clone())
                .unwrap()
                .trusted
        );
        legacy["client_id"] = serde_json::Value::Null;
        assert!(serde_json::from_value::<ChatEvent>(legacy).unwrap().trusted);
    }
}
