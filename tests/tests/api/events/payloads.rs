//! Every payload shape and encoding Ably sends lands in both stores as the event it is.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::helpers::{body_json, s, signed_request, EventsApp, KEY_NAME};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/ably-webhooks/",
            $name
        ))
    };
}
#[tokio::test]
async fn ablys_documented_payloads_signed_as_ably_signs_land_in_both_stores() {
    // (file, the signature Ably's documentation gives for it, channel, event type)
    let cases: [(&[u8], &str, &str, &str); 4] = [
        (
            fixture!("batched-message.json"),
            "hlh5fA7R3lPEp9v0lAI4TwLpnFWn5J8d8PFJ1k45akk=",
            "chat-channel-4",
            "a message name",
        ),
        (
            fixture!("batched-presence.json"),
            "ZSALtHzqET9Xo2PFeDuyl9MUgPO7Nv6OENFQFz6VY+w=",
            "education-channel",
            "presence:update",
        ),
        (
            fixture!("enveloped-message.json"),
            "YjMQ4VR4p824VZI4TS2+Qk3vwhflAilSV1K8mCG/hog=",
            "channel-name",
            "greeting",
        ),
        (
            fixture!("enveloped-presence.json"),
            "acFHHwTUtiygBXyjh56vwU7c3pnYaDbUx9X2DSglWBA=",
            "channel-name",
            "presence:update",
        ),
    ];
    for (body, signature, channel, event_type) in cases {
        let h = EventsApp::new().await;
        let res = h
            .send(signed_request(
                body,
                &[("x-ably-key", KEY_NAME), ("x-ably-signature", signature)],
            ))
            .await;
        assert_eq!(res.status(), 200, "{channel}: {:?}", body_json(&res));
        let receipt = body_json(&res);
        assert_eq!(receipt["received"], 1);
        assert_eq!(receipt["stored"], 1);
        assert_eq!(receipt["duplicates"], 0);

        let items = h.chat_items().await;
        assert_eq!(items.len(), 1);
        let item = &items[0];
        let original: Value = serde_json::from_slice(body).unwrap();
        let entry = original
            .pointer("/items/0/data/messages/0")
            .or_else(|| original.pointer("/items/0/data/presence/0"))
            .or_else(|| original.pointer("/messages/0"))
            .or_else(|| original.pointer("/presence/0"))
            .unwrap();
        let ts = entry["timestamp"].as_i64().unwrap();
        let iso = chrono_iso(ts);
        assert_eq!(s(item, "conversation_id"), channel);
        assert_eq!(s(item, "channel"), channel);
        assert_eq!(s(item, "event_type"), event_type);
        assert_eq!(s(item, "id"), entry["id"].as_str().unwrap());
        assert_eq!(s(item, "client_id"), entry["clientId"].as_str().unwrap());
        assert_eq!(s(item, "occurred_at"), iso);
        assert_eq!(
            s(item, "event_key"),
            format!("{iso}#{}", entry["id"].as_str().unwrap())
        );
        // The payload is kept as its JSON text.
        assert_eq!(
            item.get("payload_json"),
            Some(&AttributeValue::S(entry["data"].to_string()))
        );
        // Retention runs from the event's own time, not from its delivery.
        let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
        let retention: i64 = crate::helpers::RETENTION_DAYS.parse().unwrap();
        assert_eq!(expires, ts.div_euclid(1000) + retention * 86_400);

        let cached = h.cached(channel).await;
        assert_eq!(cached.len(), 1);
        assert_eq!(cached[0]["id"], entry["id"]);
        assert_eq!(cached[0]["event_type"], event_type);
        assert_eq!(cached[0]["payload"], entry["data"]);
        assert_eq!(cached[0]["occurred_at"], json!(iso));
        let ttl = h
            .redis
            .command(&[
                "TTL",
                &format!("{}chat:conversation:{channel}:events", h.prefix),
            ])
            .await
            .unwrap();
        assert!(
            (86_300..=86_400).contains(&ttl.as_i64().unwrap()),
            "ttl {ttl}"
        );
    }
}

#[tokio::test]
async fn lifecycle_items_are_counted_not_stored() {
    let h = EventsApp::new().await;
    let body = fixture!("batched-lifecycle.json");
    let res = h
        .send(signed_request(
            body,
            &[
                ("x-ably-key", KEY_NAME),
                (
                    "x-ably-signature",
                    "JsRx0szppVwZL79BvKpQPzeF3Cw9tKTpVOGxQEihH/M=",
                ),
            ],
        ))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(body_json(&res)["lifecycle"], 1);
    assert_eq!(body_json(&res)["received"], 0);
    assert_eq!(h.items().await.len(), 0);
    let minute = chrono::Utc::now().timestamp_millis() / 60_000;
    let bucket = h
        .redis
        .command(&[
            "HGET",
            &format!("{}stats:minute:{minute}", h.prefix),
            "lifecycle",
        ])
        .await
        .unwrap();
    let previous = h
        .redis
        .command(&[
            "HGET",
            &format!("{}stats:minute:{}", h.prefix, minute - 1),
            "lifecycle",
        ])
        .await
        .unwrap();
    assert!(
        bucket == json!("1") || previous == json!("1"),
        "{bucket} {previous}"
    );
}

#[tokio::test]
async fn flat_items_with_encodings_are_decoded_and_stored() {
    let h = EventsApp::new().await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let body = json!({"items": [
        {"id": "e1", "name": "message:user", "channel": "conversation:c-enc", "timestamp": 1_700_000_000_000i64,
         "data": b64(r#"{"text":"hé"}"#), "encoding": "json/utf-8/base64"},
        {"id": "e2", "name": "message:user", "channel": "conversation:c-enc", "timestamp": 1_700_000_000_001i64,
         "data": "opaque", "encoding": "cipher+aes-256-cbc/base64"}
    ]})
    .to_string();
    let res = h.post(body.as_bytes()).await;
    assert_eq!(res.status(), 200, "{:?}", body_json(&res));
    let cached = h.cached("c-enc").await;
    assert_eq!(cached[1]["payload"], json!({"text": "hé"}));
    assert_eq!(cached[1].get("encoding"), None);
    assert_eq!(cached[0]["payload"], json!("opaque"));
    assert_eq!(cached[0]["encoding"], json!("cipher+aes-256-cbc/base64"));
    let items = h.chat_items().await;
    let e1 = items.iter().find(|i| s(i, "id") == "e1").unwrap();
    assert_eq!(s(e1, "payload_json"), r#"{"text":"hé"}"#);
    let e2 = items.iter().find(|i| s(i, "id") == "e2").unwrap();
    assert_eq!(s(e2, "encoding"), "cipher+aes-256-cbc/base64");
}

#[tokio::test]
async fn a_1000_event_batch_across_conversations_is_stored() {
    let h = EventsApp::new().await;
    let items: Vec<Value> = (0..1000)
        .map(|i| {
            json!({"id": format!("big-{i}"), "name": "message:user", "channel": format!("conversation:big-{}", i % 7),
                   "data": {"i": i}, "timestamp": 1_700_000_000_000i64 + i})
        })
        .collect();
    let res = h.post(json!({"items": items}).to_string().as_bytes()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(body_json(&res)["stored"], 1000);
    assert_eq!(h.chat_items().await.len(), 1000);
    for c in 0..7 {
        assert_eq!(h.cached(&format!("big-{c}")).await.len(), 100);
    }
}

#[tokio::test]
async fn a_body_base64_encoded_by_api_gateway_verifies_like_the_plain_one() {
    let h = EventsApp::new().await;
    let body = fixture!("batched-message.json");
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/api/ably/events",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "x-ably-key": KEY_NAME,
                    "x-ably-signature": "hlh5fA7R3lPEp9v0lAI4TwLpnFWn5J8d8PFJ1k45akk="},
        "requestContext": {"http": {"method": "POST", "path": "/api/ably/events", "protocol": "HTTP/1.1",
                           "sourceIp": "127.0.0.1", "userAgent": "ably"},
                           "requestId": "b64", "routeKey": "$default", "stage": "$default",
                           "accountId": "1", "apiId": "a", "domainName": "localhost", "domainPrefix": "localhost",
                           "time": "22/Nov/2026:00:00:00 +0000", "timeEpoch": 0},
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true
    });
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    let res = h.send(req).await;
    assert_eq!(res.status(), 200, "{:?}", body_json(&res));
    assert_eq!(h.chat_items().await.len(), 1);
}

#[tokio::test]
async fn the_same_message_id_in_two_conversations_is_kept_in_both() {
    let h = EventsApp::new().await;
    // Ably lets publishers choose message ids: one conversation's must not silence another's.
    let item = |conv: &str| {
        json!({"id": "chosen-id:0", "name": "message:user",
        "channel": format!("conversation:{conv}"), "clientId": format!("customer-{conv}"),
        "timestamp": 1_767_323_045_000i64, "data": {"text": conv}})
    };
    for conv in ["c-one", "c-two"] {
        let body = json!({"items": [item(conv)]}).to_string();
        let response = h.post(body.as_bytes()).await;
        assert_eq!(body_json(&response)["duplicates"], json!(0), "{conv}");
    }
    for conv in ["c-one", "c-two"] {
        let cached = h.cached(conv).await;
        assert_eq!(cached.len(), 1, "{conv}");
        assert_eq!(cached[0]["payload"]["text"], json!(conv));
    }
    assert_eq!(h.chat_items().await.len(), 2);
    // Within one conversation, the id is still a duplicate.
    let body = json!({"items": [item("c-one")]}).to_string();
    assert_eq!(
        body_json(&h.post(body.as_bytes()).await)["duplicates"],
        json!(1)
    );
}

#[tokio::test]
async fn a_replay_keeps_the_original_expiry_and_an_event_past_retention_is_skipped() {
    let h = EventsApp::build(&[("EVENT_RETENTION_DAYS", "90")], None, None).await;
    let now = chrono::Utc::now().timestamp_millis();
    let ten_days_ago = now - 10 * 86_400_000;
    let event = |id: &str, ms: i64| {
        json!({"id": id, "name": "message:user",
        "channel": "conversation:c-replay", "clientId": "customer-c-replay",
        "timestamp": ms, "data": {"text": id}})
    };
    let body = json!({"items": [event("old", ten_days_ago), event("gone", now - 91 * 86_400_000)]})
        .to_string();
    let expires = || async {
        let items = h.chat_items().await;
        assert_eq!(items.len(), 1, "the expired one is not archived");
        items[0]["expires_at"]
            .as_n()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    let receipt = body_json(&h.post(body.as_bytes()).await);
    assert_eq!(receipt["stored"], json!(1));
    assert_eq!(receipt["skipped"], json!(["event 1: expired"]));
    let first = expires().await;
    assert_eq!(first, ten_days_ago.div_euclid(1000) + 90 * 86_400);
    // Replayed later: the same expiry, not a fresh 90 days.
    let receipt = body_json(&h.post(body.as_bytes()).await);
    assert_eq!(receipt["skipped"], json!(["event 1: expired"]));
    assert_eq!(expires().await, first);
    assert_eq!(h.cached("c-replay").await.len(), 1);
}
