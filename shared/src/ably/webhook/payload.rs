//! Every Ably webhook payload shape, normalised to [`ChatEvent`]s.
//!
//! Shapes are told apart by the keys present, never by `source` (Ably's own examples
//! mislabel presence):
//! - batched: `{"items":[{..., "data": {"channelId", "messages"|"presence"|"status"}}]}`
//! - enveloped single: `{"channel", "messages"|"presence", ...}`
//! - flat items (the seed's format): `{"items":[{"name","channel","data","timestamp"}]}`
//!
//! Each comes as JSON or MessagePack; a non-enveloped single message comes with its
//! metadata in headers instead ([`unenveloped`]).
//!
//! [`ChatEvent`]: crate::events::ChatEvent

use crate::ably::webhook::entry::{PayloadError, WebhookBatch};
use crate::ably::webhook::unenveloped::{self, media_type, CHANNEL_HEADER};
use crate::ably::webhook::{fast, lenient, msgpack};

/// Parses and normalises a JSON webhook body (batched, enveloped or flat items).
/// A message's appends in the body are collapsed into one entry
/// ([`crate::events::change::collapse`]).
pub fn parse(body: &[u8]) -> Result<WebhookBatch, PayloadError> {
    let mut batch = match fast::parse(body) {
        Some(result) => result,
        None => lenient::parse(body),
    }?;
    crate::events::change::collapse(&mut batch.events);
    Ok(batch)
}

/// The same for a MessagePack body: the events its JSON twin gives.
pub fn parse_msgpack(body: &[u8]) -> Result<WebhookBatch, PayloadError> {
    parse(&msgpack::to_json_text(body)?)
}

/// Whether a `Content-Type` names MessagePack.
pub fn is_msgpack(content_type: Option<&str>) -> bool {
    matches!(
        media_type(content_type).as_deref(),
        Some("application/x-msgpack" | "application/msgpack" | "application/vnd.msgpack")
    )
}

/// Any delivery Ably makes over HTTP: non-enveloped when the channel comes in a header,
/// otherwise a body in the encoding its `Content-Type` names (JSON by default).
/// `header` looks a request header up by its lowercase name.
pub fn parse_delivery<'h>(
    body: &[u8],
    header: impl Fn(&str) -> Option<&'h str>,
) -> Result<WebhookBatch, PayloadError> {
    let content_type = header("content-type");
    if header(CHANNEL_HEADER).is_some() {
        unenveloped::parse(body, content_type, header)
    } else if is_msgpack(content_type) {
        parse_msgpack(body)
    } else {
        parse(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ChatEvent;
    use serde_json::{json, Value};

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../../../tests/fixtures/ably-webhooks/", $name))
        };
    }

    /// Ably's documented example bodies, one per shape.
    fn documented_bodies() -> Vec<Vec<u8>> {
        vec![
            fixture!("batched-message.json").to_vec(),
            fixture!("batched-presence.json").to_vec(),
            fixture!("batched-lifecycle.json").to_vec(),
            fixture!("enveloped-message.json").to_vec(),
            fixture!("enveloped-presence.json").to_vec(),
        ]
    }

    #[test]
    fn batched_message() {
        let batch = parse(fixture!("batched-message.json")).unwrap();
        assert_eq!(
            batch.events,
            vec![ChatEvent {
                id: "ABcDefgHIj:1:0".into(),
                history_id: "chat-channel-4".into(),
                channel: "chat-channel-4".into(),
                event_type: "a message name".into(),
                client_id: Some("user-3".into()),
                // A channel outside the table: nothing on it is trusted.
                trusted: false,
                payload: json!("the message data").into(),
                occurred_at: "2005-08-04T08:54:38.900Z".into(),
                ..ChatEvent::plain()
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
        assert_eq!(e.history_id, "c-1");
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
    fn the_fast_and_lenient_parsers_agree() {
        let mut bodies = documented_bodies();
        bodies.extend([
            json!({"items": [{"name": "n", "channel": "conversation:a", "data": {"x": [1, 2]}, "timestamp": 5, "clientId": "c"}]}).to_string().into_bytes(),
            json!({"items": [{"data": {"channelId": "conversation:b", "messages": [
                {"id": "1", "timestamp": 7, "name": "m", "data": "eyJhIjoxfQ==", "encoding": "json/base64"},
                {"timestamp": 8, "data": null}
            ], "presence": [{"clientId": "p", "action": 2, "timestamp": 9}]}, "timestamp": 6}]}).to_string().into_bytes(),
        ]);
        for body in bodies {
            let fast = fast::parse(&body).expect("fast path applies").unwrap();
            assert_eq!(
                fast,
                lenient::parse(&body).unwrap(),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
        // Unusual input is left to the lenient parser.
        assert!(fast::parse(br#"{"items":[{"channel":"c","timestamp":1.5}]}"#).is_none());
        assert!(fast::parse(br#"{"items":[{"data":{"channelId":"c"}}]}"#).is_none());
        assert!(fast::parse(b"not json").is_none());
    }

    /// Ably's "MsgPack" encoding of each JSON body: the same events. `rmp-serde` writes
    /// the twin from the JSON tree, independently of the `rmp` walker.
    #[test]
    fn msgpack_twins_give_the_same_events() {
        let mut bodies = documented_bodies();
        bodies.extend([
            json!({"items": [{"data": {"channelId": "conversation:b", "messages": [
                {"id": "1", "clientId": "customer:u", "timestamp": 7, "name": "message:user", "data": "eyJhIjoxfQ==", "encoding": "json/base64"},
                {"timestamp": 8, "data": {"nested": [1, 2.5, null, true]}}
            ]}, "timestamp": 6}]}).to_string().into_bytes(),
        ]);
        for body in bodies {
            let value: Value = serde_json::from_slice(&body).unwrap();
            let packed = rmp_serde::to_vec_named(&value).unwrap();
            let header = |name: &str| (name == "content-type").then_some("application/x-msgpack");
            assert_eq!(
                parse_delivery(&packed, header).unwrap(),
                parse(&body).unwrap(),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    /// Binary data: `bin` in MessagePack, base64 with `encoding` in JSON; stored alike.
    #[test]
    fn msgpack_binary_data_is_stored_as_its_json_twin_is() {
        let message = |data: rmpv::Value, encoding: Option<&str>| {
            let mut entries = vec![
                (rmpv::Value::from("id"), rmpv::Value::from("b:0")),
                (rmpv::Value::from("timestamp"), rmpv::Value::from(9)),
                (rmpv::Value::from("data"), data),
            ];
            if let Some(e) = encoding {
                entries.push((rmpv::Value::from("encoding"), rmpv::Value::from(e)));
            }
            rmpv::Value::Map(entries)
        };
        let envelope = |m: rmpv::Value| {
            let body = rmpv::Value::Map(vec![
                (
                    rmpv::Value::from("channel"),
                    rmpv::Value::from("conversation:b"),
                ),
                (rmpv::Value::from("messages"), rmpv::Value::Array(vec![m])),
            ]);
            let mut out = Vec::new();
            rmpv::encode::write_value(&mut out, &body).unwrap();
            out
        };
        let packed = parse_msgpack(&envelope(message(
            rmpv::Value::Binary(vec![0, 159, 255]),
            None,
        )))
        .unwrap();
        let twin = parse(br#"{"channel":"conversation:b","messages":[{"id":"b:0","timestamp":9,"data":"AJ//","encoding":"base64"}]}"#).unwrap();
        assert_eq!(packed, twin);
        assert_eq!(packed.events[0].payload, json!("AJ//"));
        assert_eq!(packed.events[0].encoding.as_deref(), Some("base64"));
        // UTF-8 JSON sent as binary decodes all the way, as it would from JSON.
        let json_bytes = parse_msgpack(&envelope(message(
            rmpv::Value::Binary(br#"{"a":1}"#.to_vec()),
            Some("json/utf-8"),
        )))
        .unwrap();
        assert_eq!(json_bytes.events[0].payload, json!({"a": 1}));
        assert_eq!(json_bytes.events[0].encoding, None);
        assert_eq!(parse_msgpack(&[0x81]), Err(PayloadError::NotMsgpack));
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
        // Ably's 1000 items bound a batch; the messages inside them are not capped.
        let many: Vec<Value> = (0..600)
            .map(|i| json!({"data": {"channelId": "c", "messages": [
                {"id": format!("{i}:0"), "timestamp": i}, {"id": format!("{i}:1"), "timestamp": i}
            ]}}))
            .collect();
        let batch = parse(json!({ "items": many }).to_string().as_bytes()).unwrap();
        assert_eq!((batch.events.len(), batch.skipped.len()), (1200, 0));
        let items: Vec<Value> = (0..1001)
            .map(|i| json!({"channel": "c", "name": "n", "timestamp": i}))
            .collect();
        assert_eq!(
            parse(json!({"items": items}).to_string().as_bytes()),
            Err(PayloadError::TooLarge(1001))
        );
    }
}
