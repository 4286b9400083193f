//! `POST /api/ably/events` against Redis (through the Upstash-compatible proxy) and
//! DynamoDB Local: what Ably sends ends up in both stores, exactly once.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use chat_core::ably::webhook::signature::sign;
use chat_core::handlers::ably_events::{handle, EventsState};
use chat_core::storage::history::HistorySource;
use chat_core::storage::redis::RedisClient;
use chat_core::storage::RedisConfig;
use serde_json::{json, Value};

use crate::helpers::{
    body_json, closed_port, flat_batch, redis, redis_config, s, signed_request, Harness, KEY_NAME,
    SECRET,
};

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
        let h = Harness::new().await;
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

/// Milliseconds since the epoch as ISO-8601 UTC with milliseconds, computed here without
/// the product's formatter.
fn chrono_iso(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

#[tokio::test]
async fn lifecycle_items_are_counted_not_stored() {
    let h = Harness::new().await;
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
    let h = Harness::new().await;
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
async fn bad_signatures_are_401_and_write_nothing() {
    let h = Harness::new().await;
    let body = flat_batch("c-sig", 3, 1_700_000_000_000);
    let good = sign(SECRET, &body);
    let hex_good = chat_core::ably::webhook::signature::sign_hex(SECRET, &body);
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("x-ably-key", KEY_NAME.into())],
        vec![
            ("x-ably-key", KEY_NAME.into()),
            ("x-ably-signature", String::new()),
        ],
        vec![
            ("x-ably-key", KEY_NAME.into()),
            ("x-ably-signature", "%%%notbase64%%%".into()),
        ],
        vec![
            ("x-ably-key", KEY_NAME.into()),
            ("x-ably-signature", good[..30].to_owned()),
        ],
        vec![
            ("x-ably-key", KEY_NAME.into()),
            ("x-ably-signature", sign("wrong-secret", &body)),
        ],
        vec![
            ("x-ably-key", KEY_NAME.into()),
            ("x-ably-signature", hex_good.to_uppercase()),
        ],
        vec![
            ("x-ably-key", KEY_NAME.into()),
            ("x-ably-signature", sign(SECRET, &body[1..])),
        ],
    ];
    for headers in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = h.send(signed_request(&body, &headers)).await;
        assert_eq!(res.status(), 401, "{headers:?}");
        let b = body_json(&res);
        assert_eq!(b["error"], "Invalid signature");
        assert_eq!(b["code"], "invalid_signature");
        assert!(b["requestId"].is_string());
    }
    h.assert_nothing_written().await;
    // The hex form of the right digest is accepted.
    let res = h
        .send(signed_request(
            &body,
            &[("x-ably-key", KEY_NAME), ("x-ably-signature", &hex_good)],
        ))
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn rotated_keys_and_the_legacy_secret_are_accepted() {
    let h = Harness::build(
        &[
            ("ABLY_WEBHOOK_KEYS", "app.new:new-secret,app.old:old-secret"),
            ("ABLY_WEBHOOK_SIGNING_KEY", "legacy-secret"),
        ],
        None,
        None,
    )
    .await;
    let body = flat_batch("c-rot", 1, 1_700_000_000_000);
    // Ably names the key it signed with; the legacy secret's key is not configured by name.
    for (key, secret) in [
        ("app.new", "new-secret"),
        ("app.old", "old-secret"),
        ("app.legacy", "legacy-secret"),
    ] {
        let sig = sign(secret, &body);
        let res = h
            .send(signed_request(
                &body,
                &[("x-ably-key", key), ("x-ably-signature", &sig)],
            ))
            .await;
        assert_eq!(res.status(), 200, "{key}");
    }
    let sig = sign("old-secret", &body);
    let res = h
        .send(signed_request(
            &body,
            &[("x-ably-key", "app.new"), ("x-ably-signature", &sig)],
        ))
        .await;
    assert_eq!(
        res.status(),
        401,
        "a key named but signed with another must fail"
    );
    // With several keys, a request that names none is refused before any HMAC.
    for secret in ["new-secret", "legacy-secret"] {
        let res = h
            .send(signed_request(
                &body,
                &[("x-ably-signature", &sign(secret, &body))],
            ))
            .await;
        assert_eq!(res.status(), 401, "no X-Ably-Key, signed with {secret}");
    }
    assert_eq!(h.chat_items().await.len(), 1);
}

#[tokio::test]
async fn unparseable_signed_bodies_are_400_and_kept_as_dead_letters() {
    let h = Harness::new().await;
    for body in [&b"this is not json"[..], br#"{"unexpected":"shape"}"#, b""] {
        let res = h.post(body).await;
        assert_eq!(res.status(), 400, "{:?}", String::from_utf8_lossy(body));
        assert_eq!(body_json(&res)["code"], "invalid_payload");
    }
    let items = h.items().await;
    assert_eq!(items.len(), 3);
    for item in &items {
        assert_eq!(s(item, "conversation_id"), "_dead_letter");
        let raw = s(item, "raw_body");
        let sha = hex_sha256(raw.as_bytes());
        assert_eq!(s(item, "sha256"), sha);
        assert_eq!(s(item, "event_key"), sha);
    }
    assert_eq!(h.redis_keys().await, Vec::<String>::new());
    // Redelivering the same bad body overwrites its dead letter instead of adding one.
    h.post(b"this is not json").await;
    assert_eq!(h.items().await.len(), 3);
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn oversized_bodies_and_batches_are_413_and_only_the_signed_batch_is_kept() {
    let h = Harness::new().await;
    let big = format!(r#"{{"items":[],"pad":"{}"}}"#, "x".repeat(6 * 1024 * 1024));
    let res = h.post(big.as_bytes()).await;
    assert_eq!(res.status(), 413);
    h.assert_nothing_written().await;
    // A signed batch past Ably's 1000 items is refused, and kept whole as a dead letter.
    let batch = flat_batch("c-big", 1001, 1_700_000_000_000);
    let res = h.post(&batch).await;
    assert_eq!(res.status(), 413);
    assert_eq!(body_json(&res)["code"], "batch_too_large");
    assert_eq!(h.chat_items().await.len(), 0);
    assert_eq!(h.redis_keys().await, Vec::<String>::new());
    let kept = h.items().await;
    assert_eq!(kept.len(), 1);
    assert_eq!(s(&kept[0], "conversation_id"), "_dead_letter");
    assert_eq!(s(&kept[0], "sha256"), hex_sha256(&batch));
    assert_eq!(s(&kept[0], "raw_body").as_bytes(), &batch[..]);
    assert!(
        s(&kept[0], "reason").contains("1001 items"),
        "{:?}",
        kept[0]
    );
}

#[tokio::test]
async fn a_dead_letter_larger_than_an_item_is_kept_whole_in_parts() {
    let h = Harness::new().await;
    // 1 MB that does not parse, with bytes that are not UTF-8 near a part boundary.
    let mut body = b"{\"items\": [".to_vec();
    body.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    body[360_000] = 0xff;
    let res = h.post_bytes(&body).await;
    assert_eq!(res.status(), 400);
    assert_eq!(body_json(&res)["code"], "invalid_payload");
    let mut parts = h.items().await;
    parts.sort_by_key(|item| s(item, "event_key"));
    let sha = hex_sha256(&body);
    assert_eq!(parts.len(), 3);
    let mut whole = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        assert_eq!(s(part, "conversation_id"), "_dead_letter");
        assert_eq!(s(part, "event_key"), format!("{sha}#{i:04}"));
        assert_eq!(s(part, "sha256"), sha);
        assert_eq!(part["part"].as_n().unwrap(), &i.to_string());
        assert_eq!(part["parts"].as_n().unwrap(), "3");
        assert_eq!(part["bytes"].as_n().unwrap(), &body.len().to_string());
        whole.extend_from_slice(part["raw_part"].as_b().unwrap().as_ref());
    }
    assert_eq!(whole, body);
}

async fn assert_stored_once(h: &Harness, conv: &str, n: usize) {
    let items = h.chat_items().await;
    assert_eq!(items.len(), n, "dynamodb items");
    let mut ids: Vec<String> = items.iter().map(|i| s(i, "id")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "distinct ids in dynamodb");
    let cached = h.cached(conv).await;
    assert_eq!(cached.len(), n.min(100), "redis list entries");
    let mut cached_ids: Vec<&str> = cached.iter().map(|e| e["id"].as_str().unwrap()).collect();
    cached_ids.dedup();
    assert_eq!(cached_ids.len(), n.min(100), "distinct ids in redis");
}

#[tokio::test]
async fn redelivery_2_and_10_times_and_concurrently_stores_each_event_once() {
    let h = Harness::new().await;
    let body = flat_batch("c-dup", 30, 1_700_000_000_000);
    for attempt in 0..10 {
        let res = h.post(&body).await;
        assert_eq!(res.status(), 200);
        let receipt = body_json(&res);
        assert_eq!(receipt["stored"], 30);
        assert_eq!(receipt["duplicates"], if attempt == 0 { 0 } else { 30 });
        if attempt == 1 {
            assert_stored_once(&h, "c-dup", 30).await;
        }
    }
    assert_stored_once(&h, "c-dup", 30).await;

    let h = Arc::new(Harness::new().await);
    let body = Arc::new(flat_batch("c-conc", 40, 1_700_000_000_000));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (h, body) = (Arc::clone(&h), Arc::clone(&body));
            tokio::spawn(async move { h.post(&body).await.status().as_u16() })
        })
        .collect();
    let mut new_total = 0;
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_stored_once(&h, "c-conc", 40).await;
    // Exactly one of the concurrent deliveries pushed each event.
    let minute = chrono::Utc::now().timestamp_millis() / 60_000;
    for m in [minute - 1, minute] {
        let v = h
            .redis
            .command(&["HGET", &format!("{}stats:minute:{m}", h.prefix), "events"])
            .await
            .unwrap();
        new_total += v.as_str().map_or(0, |s| s.parse::<i64>().unwrap());
    }
    assert_eq!(new_total, 40);
}

#[tokio::test]
async fn the_cache_list_is_newest_first_trimmed_and_recent_events_reads_it() {
    let h = Harness::build(&[("REDIS_EVENT_MAX", "5")], None, None).await;
    // Delivered out of order across two batches.
    let first: Vec<Value> = [3, 1, 2].iter().map(|i| flat_item("c-order", *i)).collect();
    let second: Vec<Value> = [5, 4, 6, 7]
        .iter()
        .map(|i| flat_item("c-order", *i))
        .collect();
    h.post(json!({"items": first}).to_string().as_bytes()).await;
    h.post(json!({"items": second}).to_string().as_bytes())
        .await;
    let cached = h.cached("c-order").await;
    let ids: Vec<&str> = cached.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["m7", "m6", "m5", "m4", "m3"]);
    // A list the mirror made is no proof of what DynamoDB holds: the first read goes
    // there and proves it; from then on the list answers.
    let history = h.state.stores.history();
    for expected in [HistorySource::Archive, HistorySource::Cache] {
        let (events, source) = history.recent_events("c-order", 3).await.unwrap();
        assert_eq!(source, expected);
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["m7", "m6", "m5"]);
    }
}

fn flat_item(conv: &str, i: i64) -> Value {
    json!({"id": format!("m{i}"), "name": "message:user", "channel": format!("conversation:{conv}"),
           "data": {"n": i}, "timestamp": 1_700_000_000_000i64 + i * 1000})
}

/// A DynamoDB client pointed at a closed port: every request fails to connect.
async fn unreachable_dynamo() -> aws_sdk_dynamodb::Client {
    let config = chat_core::storage::dynamo::config_builder()
        .endpoint_url(format!("http://127.0.0.1:{}", closed_port()))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn unreachable_redis() -> RedisClient {
    RedisClient::new(&RedisConfig {
        url: format!("http://127.0.0.1:{}", closed_port()),
        ..redis_config()
    })
}

#[tokio::test]
async fn dynamodb_down_is_503_and_a_redelivery_then_stores_everything_once() {
    let down = Harness::build(&[], None, Some(unreachable_dynamo().await)).await;
    let body = flat_batch("c-ddb", 60, 1_700_000_000_000);
    let res = down.post(&body).await;
    assert_eq!(res.status(), 503);
    assert_eq!(body_json(&res)["code"], "storage_unavailable");
    assert_eq!(down.items().await.len(), 0);

    // Ably redelivers once DynamoDB is back: same table, same Redis prefix.
    let config = down.state.config.clone();
    let up = EventsState::with_clients(config, redis(), down.dynamo.clone());
    let res = handle(
        &up,
        signed_request(
            &body,
            &[
                ("x-ably-key", KEY_NAME),
                ("x-ably-signature", &sign(SECRET, &body)),
            ],
        ),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_stored_once(&down, "c-ddb", 60).await;
}

#[tokio::test]
async fn redis_down_is_200_dynamodb_holds_everything_and_history_falls_back_to_it() {
    let h = Harness::build(&[], Some(unreachable_redis()), None).await;
    let body = flat_batch("c-redis", 25, 1_700_000_000_000);
    let res = h.post(&body).await;
    assert_eq!(res.status(), 200);
    let receipt = body_json(&res);
    assert_eq!(receipt["stored"], 25);
    assert_eq!(receipt["cache"], "unavailable");
    assert_eq!(h.chat_items().await.len(), 25);
    assert_eq!(h.redis_keys().await, Vec::<String>::new());

    // While Redis is down, history comes from DynamoDB, newest first.
    let (events, source) = h
        .state
        .stores
        .history()
        .recent_events("c-redis", 20)
        .await
        .unwrap();
    assert_eq!(source, HistorySource::Archive);
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let expected: Vec<String> = (5..25).rev().map(|i| format!("c-redis-m{i}")).collect();
    assert_eq!(ids, expected);

    // With Redis back but empty, once the failed mirror's writes have settled, the
    // archive answers and refills the cache.
    crate::helpers::until_epoch_settles(&h.state.stores).await;
    let back = EventsState::with_clients(h.state.config.clone(), redis(), h.dynamo.clone());
    let (events, source) = back
        .stores
        .history()
        .recent_events("c-redis", 20)
        .await
        .unwrap();
    assert_eq!(source, HistorySource::Archive);
    assert_eq!(events.len(), 20);
    // Refilled with every event DynamoDB holds (the list holds up to 100).
    let cached = h.cached("c-redis").await;
    let cached_ids: Vec<String> = cached
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let all: Vec<String> = (0..25).rev().map(|i| format!("c-redis-m{i}")).collect();
    assert_eq!(cached_ids, all);
    let (_, source) = back
        .stores
        .history()
        .recent_events("c-redis", 20)
        .await
        .unwrap();
    assert_eq!(source, HistorySource::Cache);
    // A redelivery after the refill does not push the refilled events again.
    let res = handle(
        &back,
        signed_request(
            &body,
            &[
                ("x-ably-key", KEY_NAME),
                ("x-ably-signature", &sign(SECRET, &body)),
            ],
        ),
    )
    .await;
    assert_eq!(body_json(&res)["duplicates"], 25);
    assert_eq!(h.cached("c-redis").await.len(), 25);
}

#[tokio::test]
async fn a_1000_event_batch_across_conversations_is_stored() {
    let h = Harness::new().await;
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
    let h = Harness::new().await;
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
async fn analytics_keys_are_updated_in_the_same_round_trip() {
    let h = Harness::new().await;
    let body = json!({"items": [
        {"id": "ai-1", "name": "message:ai", "channel": "conversation:c-an", "timestamp": 1,
         "data": {"text": "hi", "timing": {"ai_duration_ms": 1200, "queue_duration_ms": 30}}},
        {"id": "sla-1", "name": "sla:warning", "channel": "conversation:c-an", "timestamp": 2, "data": {}},
        {"id": "sla-2", "name": "sla:violation", "channel": "conversation:c-an2", "timestamp": 3, "data": {}}
    ]})
    .to_string();
    assert_eq!(h.post(body.as_bytes()).await.status(), 200);
    let active = h
        .redis
        .command(&["ZRANGE", &format!("{}stats:active", h.prefix), "0", "-1"])
        .await
        .unwrap();
    assert_eq!(active, json!(["c-an", "c-an2"]));
    let ai = h
        .redis
        .command(&[
            "ZRANGE",
            &format!("{}stats:samples:ai_duration_ms", h.prefix),
            "0",
            "-1",
        ])
        .await
        .unwrap();
    assert_eq!(ai, json!(["1200|ai-1"]));
    let queue = h
        .redis
        .command(&[
            "ZRANGE",
            &format!("{}stats:samples:queue_duration_ms", h.prefix),
            "0",
            "-1",
        ])
        .await
        .unwrap();
    assert_eq!(queue, json!(["30|ai-1"]));
    let keys = h.redis_keys().await;
    let bucket = keys.iter().find(|k| k.contains("stats:minute:")).unwrap();
    let counts = h.redis.command(&["HGETALL", bucket]).await.unwrap();
    assert_eq!(
        counts,
        json!(["events", "3", "sla:warning", "1", "sla:violation", "1"])
    );
}

#[tokio::test]
async fn the_history_reader_serves_no_forged_staff_event_from_either_store() {
    let h = Harness::new().await;
    let conv = "c-forged-reader";
    let body = crate::helpers::forged_and_genuine(conv, 1_767_323_045_000);
    assert_eq!(h.post(&body).await.status(), 200);
    let (forged, genuine) = crate::helpers::forged_ids(conv);
    for item in h.chat_items().await {
        let id = s(&item, "id");
        assert_eq!(
            item["trusted"].as_bool().copied(),
            Ok(!forged.contains(&id)),
            "{id}"
        );
    }
    let newest_first: Vec<String> = genuine.iter().rev().cloned().collect();
    let ids = |events: &[chat_core::events::ChatEvent]| -> Vec<String> {
        events.iter().map(|e| e.id.clone()).collect()
    };
    let history = h.state.stores.history();
    // The first read proves the list from DynamoDB, the second is the list's.
    for expected in [HistorySource::Archive, HistorySource::Cache] {
        let (events, source) = history.recent_events(conv, 20).await.unwrap();
        assert_eq!((ids(&events), source), (newest_first.clone(), expected));
        assert!(events.iter().all(|e| e.trusted));
    }
    // The same from DynamoDB.
    let list = format!("{}chat:conversation:{conv}:events", h.prefix);
    h.redis.command(&["DEL", list.as_str()]).await.unwrap();
    let (events, source) = history.recent_events(conv, 20).await.unwrap();
    assert_eq!(
        (ids(&events), source),
        (newest_first, HistorySource::Archive)
    );
}

#[tokio::test]
async fn the_same_message_id_in_two_conversations_is_kept_in_both() {
    let h = Harness::new().await;
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
    let h = Harness::build(&[("EVENT_RETENTION_DAYS", "90")], None, None).await;
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
