//! The Redis pub/sub bridge (`REDIS_PUBSUB_BRIDGE=true`): every new conversation event is
//! also published on `{REDIS_KEY_PREFIX}chat:{conversationId}`, in the envelope that
//! self-hosted WebSocket servers already subscribe to:
//! `{"type": "message" | "agent_joined" | "typing" | <event type>, "data": {...}, "timestamp",
//! "clientId", "publisherRole"}`.
//!
//! Messages also carry `serial` and `action` (Ably's names), and a change its `version`
//! and `reactions`, so that a server can apply it: upsert by `serial`, add an append's
//! `data` (the text it added), remove on `message.delete` (see [`crate::events::change`]).
//!
//! Only events the channel table trusts are bridged (see [`crate::channels::trusts`]).
//! `clientId` is the publisher's clientId as Ably verified it (`null`: the API key) and
//! `publisherRole` the role it carries (`customer`, `broker`, `admin`, `service`); both come
//! from Ably, never from the payload, so a subscriber can tell staff from customers.
//!
//! The envelope is built here, once per event, and handed to the mirror script, which
//! publishes it only when it stores the event for the first time (see
//! [`crate::storage::cache`]).
//!
//! | event type | `type` | `data` |
//! |---|---|---|
//! | `message:user`, `message:ai` | `message` | `id`, `content`, `role` (`user` / `assistant`), `timestamp`, `sender` |
//! | `agent_joined` | `agent_joined` | `agentId`, `agentName`, `timestamp` |
//! | `typing:start`, `typing:stop` | `typing` | `userId`, `isTyping` (`true` / `false`) |
//! | anything else | the event type | the payload as it is |
//!
//! `id` and both `timestamp`s are the event's own (Ably's message id and time). A payload
//! field with the envelope field's name is passed on as it is; without one, `content` is
//! the payload's `text` (or the payload itself when it is a string), `sender`, `agentId`
//! and `userId` are the Ably `clientId`, and whatever is still missing is `null`. Those
//! `data` fields are the publisher's word; `clientId` and `publisherRole` are Ably's.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::events::change::{Action, Version};
use crate::events::event::ChatEvent;
use crate::events::Payload;
use crate::identity::Role;

/// The envelope published for `event`; `None` for events outside `conversation:{id}`
/// channels, which are never bridged.
pub fn envelope(event: &ChatEvent) -> Option<String> {
    event
        .channel
        .strip_prefix("conversation:")
        .filter(|id| !id.is_empty())?;
    let payload = &event.payload;
    let fields = payload.fields();
    let given = |name: &str| fields.as_ref().and_then(|f| f.get(name));
    let at = event.occurred_at.as_str();
    let client_id = || event.client_id.as_deref().map_or(Field::Null, Field::Text);
    let json = match event.event_type.as_str() {
        kind @ ("message:user" | "message:ai") => to_json(
            event,
            "message",
            MessageData {
                id: event.message_id(),
                content: given("content")
                    .or_else(|| given("text"))
                    .or_else(|| payload.is_string().then_some(payload.as_raw()))
                    .map_or(Field::Null, Field::Json),
                role: if kind == "message:ai" {
                    "assistant"
                } else {
                    "user"
                },
                timestamp: at,
                sender: given("sender").map_or_else(client_id, Field::Json),
            },
            at,
        ),
        "agent_joined" => to_json(
            event,
            "agent_joined",
            AgentJoinedData {
                agent_id: given("agentId").map_or_else(client_id, Field::Json),
                agent_name: given("agentName").map_or(Field::Null, Field::Json),
                timestamp: at,
            },
            at,
        ),
        kind @ ("typing:start" | "typing:stop") => to_json(
            event,
            "typing",
            TypingData {
                user_id: given("userId").map_or_else(client_id, Field::Json),
                is_typing: kind == "typing:start",
            },
            at,
        ),
        other => to_json(event, other, payload.as_raw(), at),
    };
    Some(json)
}

fn to_json<D: Serialize>(event: &ChatEvent, kind: &str, data: D, timestamp: &str) -> String {
    let client_id = event.client_id.as_deref();
    // Borrowed strings and JSON values always serialise.
    serde_json::to_string(&Envelope {
        kind,
        data,
        timestamp,
        client_id,
        publisher_role: Role::of_publisher(client_id).as_str(),
        serial: event.serial.as_deref(),
        action: event.action.map(Action::as_str),
        version: event.version.as_ref(),
        reactions: event.reactions.as_ref().map(Payload::as_raw),
    })
    .unwrap_or_default()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a, D> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: D,
    timestamp: &'a str,
    client_id: Option<&'a str>,
    publisher_role: &'static str,
    /// The message's serial and what this event did to it: a WebSocket server upserts by
    /// `serial` (an append's `data` holds the text it added; a delete removes).
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a Version>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reactions: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct MessageData<'a> {
    id: &'a str,
    content: Field<'a>,
    role: &'static str,
    timestamp: &'a str,
    sender: Field<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AgentJoinedData<'a> {
    agent_id: Field<'a>,
    agent_name: Field<'a>,
    timestamp: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TypingData<'a> {
    user_id: Field<'a>,
    is_typing: bool,
}

/// A value from the payload as it is, a fallback string, or `null`.
#[derive(Serialize)]
#[serde(untagged)]
enum Field<'a> {
    Json(&'a RawValue),
    Text(&'a str),
    Null,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn event(name: &str, client_id: Option<&str>, payload: Value) -> ChatEvent {
        let payload = payload.into();
        ChatEvent {
            id: "m-1".into(),
            history_id: "c1".into(),
            channel: "conversation:c1".into(),
            event_type: name.into(),
            client_id: client_id.map(str::to_owned),
            trusted: true,
            payload,
            occurred_at: "2026-01-02T03:04:05.678Z".into(),
            ..ChatEvent::plain()
        }
    }

    fn published(event: &ChatEvent) -> Value {
        serde_json::from_str(&envelope(event).expect("bridged")).unwrap()
    }

    const AT: &str = "2026-01-02T03:04:05.678Z";

    #[test]
    fn messages_carry_content_role_and_sender() {
        assert_eq!(
            published(&event(
                "message:user",
                Some("customer-c1"),
                json!({"text": "hi"})
            )),
            json!({"type": "message", "timestamp": AT, "clientId": "customer-c1", "publisherRole": "customer", "data": {
                "id": "m-1", "content": "hi", "role": "user", "timestamp": AT, "sender": "customer-c1"}})
        );
        assert_eq!(
            published(&event(
                "message:ai",
                Some("broker:b1"),
                json!({"text": "ignored", "content": "answer", "sender": {"id": "bot", "name": "Bot"},
                    "timing": {"ai_duration_ms": 5}, "clientId": "x", "publisherRole": "admin"})
            )),
            json!({"type": "message", "timestamp": AT, "clientId": "broker:b1", "publisherRole": "broker", "data": {
                "id": "m-1", "content": "answer", "role": "assistant", "timestamp": AT,
                "sender": {"id": "bot", "name": "Bot"}}})
        );
        // A bare string is the content; nothing to go on is null.
        assert_eq!(
            published(&event("message:user", None, json!("plain")))["data"],
            json!({"id": "m-1", "content": "plain", "role": "user", "timestamp": AT, "sender": null})
        );
        assert_eq!(
            published(&event(
                "message:user",
                Some("u"),
                json!({"content": null, "n": 1})
            ))["data"],
            json!({"id": "m-1", "content": null, "role": "user", "timestamp": AT, "sender": "u"})
        );
    }

    #[test]
    fn agents_typing_and_other_events() {
        assert_eq!(
            published(&event(
                "agent_joined",
                Some("agent-7"),
                json!({"agentName": "Ann"})
            )),
            json!({"type": "agent_joined", "timestamp": AT, "clientId": "agent-7", "publisherRole": "customer",
                "data": {"agentId": "agent-7", "agentName": "Ann", "timestamp": AT}})
        );
        assert_eq!(
            published(&event(
                "agent_joined",
                Some("svc"),
                json!({"agentId": "a-2"})
            ))["data"],
            json!({"agentId": "a-2", "agentName": null, "timestamp": AT})
        );
        assert_eq!(
            published(&event("typing:start", Some("customer-c1"), Value::Null)),
            json!({"type": "typing", "timestamp": AT, "clientId": "customer-c1", "publisherRole": "customer",
                "data": {"userId": "customer-c1", "isTyping": true}})
        );
        assert_eq!(
            published(&event("typing:stop", Some("x"), json!({"userId": "u-9"})))["data"],
            json!({"userId": "u-9", "isTyping": false})
        );
        assert_eq!(
            published(&event(
                "sla:warning",
                None,
                json!({"minutes": 5, "role": "customer"})
            )),
            json!({"type": "sla:warning", "timestamp": AT, "clientId": null, "publisherRole": "service",
                "data": {"minutes": 5, "role": "customer"}})
        );
        assert_eq!(
            published(&event("presence:enter", Some("u"), Value::Null)),
            json!({"type": "presence:enter", "timestamp": AT, "clientId": "u", "publisherRole": "customer", "data": null})
        );
    }

    #[test]
    fn only_conversation_channels_are_bridged() {
        let mut sms = event("message", Some("u"), json!({"text": "hi"}));
        sms.channel = "sms:u1:c1".into();
        sms.history_id = "sms:u1:c1".into();
        assert_eq!(envelope(&sms), None);
        let mut bare = event("message:user", None, json!({}));
        bare.channel = "conversation:".into();
        bare.history_id = "conversation:".into();
        assert_eq!(envelope(&bare), None);
    }
}
