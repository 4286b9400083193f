//! What is published and what Ably answers about channels: outbound messages with their
//! idempotent ids (`<base>:<index>`), the request body built once for every attempt, and
//! the typed answers of `GET /channels/{id}`.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ably::error::AblyError;

/// Everything outside RFC 3986's unreserved characters is encoded in a path segment,
/// so `conversation:abc` becomes `conversation%3Aabc` and `/`, `?`, `#` cannot escape it.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One message to publish. `data` is any serialisable value (a `serde_json::Value` by default).
#[derive(Debug, Clone, Copy)]
pub struct OutboundMessage<'a, D: ?Sized = Value> {
    pub name: &'a str,
    pub data: &'a D,
    pub client_id: Option<&'a str>,
    pub extras: Option<&'a Value>,
}

impl<'a, D: ?Sized> OutboundMessage<'a, D> {
    pub fn new(name: &'a str, data: &'a D) -> Self {
        OutboundMessage {
            name,
            data,
            client_id: None,
            extras: None,
        }
    }

    pub fn with_client_id(mut self, client_id: &'a str) -> Self {
        self.client_id = Some(client_id);
        self
    }

    pub fn with_extras(mut self, extras: &'a Value) -> Self {
        self.extras = Some(extras);
        self
    }
}

/// What Ably accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReceipt {
    pub channel: String,
    /// The ids the messages were published with, in order (`<base>:<index>`).
    pub message_ids: Vec<String>,
    /// The serials Ably gave the messages, in order (`PublishResult.serials`): empty when
    /// its answer had none, `None` for a message it discarded (conflation).
    pub serials: Vec<Option<String>>,
    /// Attempts it took (1 when the first one succeeded), for the retry metric.
    pub attempts: u32,
}

/// `timing` of an AI reply, read by the stats analytics (`timing.ai_duration_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiTiming {
    pub ai_duration_ms: u64,
    pub queue_duration_ms: u64,
}

/// Severity of an SLA event on a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaLevel {
    Warning,
    Violation,
}

impl SlaLevel {
    /// The Ably message name: `sla:warning` or `sla:violation`.
    pub fn event_name(self) -> &'static str {
        match self {
            SlaLevel::Warning => "sla:warning",
            SlaLevel::Violation => "sla:violation",
        }
    }
}

/// `GET /channels/{id}`: whether a channel is active and who is attached to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelStatus {
    pub channel_id: String,
    #[serde(default)]
    pub status: ChannelState,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelState {
    #[serde(default)]
    pub is_active: bool,
    #[serde(default)]
    pub occupancy: Occupancy,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Occupancy {
    #[serde(default)]
    pub metrics: OccupancyMetrics,
}

/// Occupancy counters; metrics Ably adds later (e.g. `objectPublishers`) are kept in `other`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OccupancyMetrics {
    #[serde(default)]
    pub connections: u64,
    #[serde(default)]
    pub publishers: u64,
    #[serde(default)]
    pub subscribers: u64,
    #[serde(default)]
    pub presence_connections: u64,
    #[serde(default)]
    pub presence_members: u64,
    #[serde(default)]
    pub presence_subscribers: u64,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// The id base for a publish: derived from the caller's idempotency key, or random.
///
/// With a key: the first 128 bits of SHA-256 over a domain tag and the key, URL-safe
/// base64 (22 characters). The same key always gives the same base, so a retried request
/// is de-duplicated by Ably; the key's text never appears in the id. Without a key: 128
/// random bits in the same form. Ably de-duplicates ids across callers, so a handler
/// taking keys from callers should scope them (e.g. caller id and channel) before calling.
pub fn message_id_base(idempotency_key: Option<&str>) -> String {
    let mut bytes = [0u8; 16];
    match idempotency_key {
        Some(key) => {
            let digest = Sha256::new()
                .chain_update(b"ably-chat-message-id:v1\n")
                .chain_update(key.as_bytes())
                .finalize();
            bytes.copy_from_slice(&digest[..16]);
        }
        None => rand::rng().fill(&mut bytes),
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Validates a publish and builds its path, message ids and JSON body once, for every
/// attempt: `(path, ids, body)`.
pub fn prepare_publish<D: Serialize + ?Sized>(
    channel: &str,
    id_base: &str,
    messages: &[OutboundMessage<'_, D>],
) -> Result<(String, Vec<String>, Bytes), AblyError> {
    if channel.is_empty() {
        return Err(AblyError::InvalidRequest("channel name is empty"));
    }
    if id_base.is_empty() {
        return Err(AblyError::InvalidRequest("message id base is empty"));
    }
    if messages.is_empty() {
        return Err(AblyError::InvalidRequest("no messages to publish"));
    }
    let path = format!("/channels/{}/messages", encode_segment(channel));
    let ids: Vec<String> = (0..messages.len())
        .map(|i| format!("{id_base}:{i}"))
        .collect();
    let body = encode_messages(messages, &ids)?;
    Ok((path, ids, body))
}

#[derive(Serialize)]
struct WireMessage<'a, D: ?Sized> {
    id: &'a str,
    name: &'a str,
    data: &'a D,
    #[serde(rename = "clientId", skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extras: Option<&'a Value>,
}

/// One message as a JSON object, several as an array.
fn encode_messages<D: Serialize + ?Sized>(
    messages: &[OutboundMessage<'_, D>],
    ids: &[String],
) -> Result<Bytes, AblyError> {
    let wire = messages.iter().zip(ids).map(|(m, id)| WireMessage {
        id,
        name: m.name,
        data: m.data,
        client_id: m.client_id,
        extras: m.extras,
    });
    let mut out = Vec::with_capacity(256);
    let written = match messages.len() {
        1 => wire
            .into_iter()
            .next()
            .map_or(Ok(()), |m| serde_json::to_writer(&mut out, &m)),
        _ => serde_json::to_writer(&mut out, &wire.collect::<Vec<_>>()),
    };
    written.map_err(|_| AblyError::InvalidRequest("message data is not serialisable as JSON"))?;
    Ok(Bytes::from(out))
}

/// Reads `serials` from a publish answer (`{"channel", "messageId", "serials": [...]}`);
/// anything else gives none.
pub(crate) fn published_serials(answer: &[u8]) -> Vec<Option<String>> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        serials: Vec<Option<String>>,
    }
    serde_json::from_slice::<Answer>(answer)
        .map(|a| a.serials)
        .unwrap_or_default()
}

/// A channel name (or a message serial) as one path segment.
pub fn encode_segment(channel: &str) -> Cow<'_, str> {
    utf8_percent_encode(channel, PATH_SEGMENT).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn id_base_from_a_key_is_stable_opaque_and_distinct() {
        let a = message_id_base(Some("order-42"));
        assert_eq!(a, message_id_base(Some("order-42")));
        assert_ne!(a, message_id_base(Some("order-43")));
        assert_ne!(a, message_id_base(Some("")));
        assert_eq!(a.len(), 22);
        assert!(!a.contains("order"));
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        // Pinned, so a change of derivation (which would break de-duplication across a
        // deployment) is a conscious one.
        let digest = Sha256::digest(b"ably-chat-message-id:v1\norder-42");
        assert_eq!(a, URL_SAFE_NO_PAD.encode(&digest[..16]));
    }

    #[test]
    fn id_base_without_a_key_is_random() {
        let a = message_id_base(None);
        let b = message_id_base(None);
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 16);
    }

    #[test]
    fn serials_are_read_from_a_publish_answer() {
        let answer = br#"{"channel":"c","messageId":"m","serials":["s1",null]}"#;
        assert_eq!(published_serials(answer), [Some("s1".to_owned()), None]);
        assert!(published_serials(br#"{"channel":"c","messageId":"m"}"#).is_empty());
        assert!(published_serials(b"").is_empty());
        assert!(published_serials(br#"{"serials":"nope"}"#).is_empty());
    }

    #[test]
    fn channel_names_are_one_encoded_segment() {
        assert_eq!(encode_segment("conversation:abc"), "conversation%3Aabc");
        assert_eq!(encode_segment("sms:u-1:c_2"), "sms%3Au-1%3Ac_2");
        assert_eq!(encode_segment("a/b?c#d e~.%"), "a%2Fb%3Fc%23d%20e~.%25");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    #[test]
    fn one_message_is_an_object_several_an_array() {
        let data = json!({"text": "hi"});
        let extras = json!({"headers": {"k": "v"}});
        let one = [OutboundMessage::new("message:user", &data)];
        let (path, ids, body) = prepare_publish("conversation:c1", "base", &one).unwrap();
        assert_eq!(path, "/channels/conversation%3Ac1/messages");
        assert_eq!(ids, ["base:0"]);
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            json!({"id": "base:0", "name": "message:user", "data": {"text": "hi"}})
        );
        let two = [
            OutboundMessage::new("typing:start", &data).with_client_id("user-1"),
            OutboundMessage::new("read", &data).with_extras(&extras),
        ];
        let (_, ids, body) = prepare_publish("conversation:c1", "base", &two).unwrap();
        assert_eq!(ids, ["base:0", "base:1"]);
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            json!([
                {"id": "base:0", "name": "typing:start", "data": {"text": "hi"}, "clientId": "user-1"},
                {"id": "base:1", "name": "read", "data": {"text": "hi"}, "extras": {"headers": {"k": "v"}}}
            ])
        );
        let none: [OutboundMessage<'_>; 0] = [];
        assert!(prepare_publish("c", "base", &none).is_err());
        assert!(prepare_publish("", "base", &one).is_err());
        assert!(prepare_publish("c", "", &one).is_err());
    }
}
