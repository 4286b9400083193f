//! Every Ably webhook payload shape, normalised to [`ChatEvent`]s.
//!
//! Shapes are told apart by the keys present, never by `source` (Ably's own examples
//! mislabel presence):
//! - batched: `{"items":[{..., "data": {"channelId", "messages"|"presence"|"status"}}]}`
//! - enveloped single: `{"channel", "messages"|"presence", ...}`
//! - flat items (the seed's format): `{"items":[{"name","channel","data","timestamp"}]}`
//!
//! [`ChatEvent`]: crate::events::ChatEvent

use crate::ably::webhook::entry::{PayloadError, WebhookBatch};
use crate::ably::webhook::{fast, lenient};

/// Parses and normalises a webhook body.
pub fn parse(body: &[u8]) -> Result<WebhookBatch, PayloadError> {
    match fast::parse(body) {
        Some(result) => result,
        None => lenient::parse(body),
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
