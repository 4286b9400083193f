//! The events function over the stack: a fresh table and Redis key prefix per test, signed
//! deliveries, and what the stores then hold.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chat_core::ably::webhook::signature::sign;
use chat_core::handlers::ably_events::{handle, EventsConfig, EventsState};
use chat_core::storage::redis::RedisClient;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use super::{api_request, env_with, redis, unique, KEY_NAME, SECRET, WEBHOOK_KEY};

/// The [`EventsApp`]'s `EVENT_RETENTION_DAYS`.
pub const RETENTION_DAYS: &str = "36500";

pub struct EventsApp {
    pub state: EventsState,
    pub table: String,
    pub prefix: String,
    pub redis: RedisClient,
    pub dynamo: aws_sdk_dynamodb::Client,
}

impl EventsApp {
    pub async fn new() -> Self {
        Self::build(&[], None, None).await
    }

    /// A fresh table and Redis prefix; optional replacement clients for fault injection.
    pub async fn build(
        overrides: &[(&str, &str)],
        redis_client: Option<RedisClient>,
        dynamo_client: Option<aws_sdk_dynamodb::Client>,
    ) -> Self {
        let table = crate::helpers::fresh_table().await;
        let prefix = format!("{}:", unique("t"));
        let mut vars = vec![
            ("CHAT_EVENTS_TABLE", table.as_str()),
            ("REDIS_KEY_PREFIX", prefix.as_str()),
            ("ABLY_WEBHOOK_KEYS", WEBHOOK_KEY),
            // Retention runs from each event's own time; Ably's documented payloads are
            // from 2005 and 2020, and many tests send fixed early times, so a century keeps
            // them all inside it. Tests of expiry set their own.
            ("EVENT_RETENTION_DAYS", RETENTION_DAYS),
        ];
        vars.extend_from_slice(overrides);
        let config = EventsConfig::load(env_with(&vars)).expect("config");
        let dynamo = crate::helpers::dynamo().await;
        let state = EventsState::with_clients(
            config,
            redis_client.unwrap_or_else(redis),
            dynamo_client.unwrap_or_else(|| dynamo.clone()),
        );
        EventsApp {
            state,
            table,
            prefix,
            redis: redis(),
            dynamo,
        }
    }

    pub async fn post(&self, body: &[u8]) -> Response<Body> {
        self.send(signed_webhook(body)).await
    }

    /// A signed body that need not be UTF-8 (sent base64, as API Gateway passes binary).
    pub async fn post_bytes(&self, body: &[u8]) -> Response<Body> {
        self.post_bytes_as(body, "application/json").await
    }

    /// The same with its own `content-type` (MessagePack, say).
    pub async fn post_bytes_as(&self, body: &[u8], content_type: &str) -> Response<Body> {
        use base64::Engine as _;
        let signature = sign(SECRET, body);
        let event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/api/ably/events",
            "rawQueryString": "",
            "headers": {"content-type": content_type, "x-ably-key": KEY_NAME,
                "x-ably-signature": signature},
            "requestContext": {"accountId": "1", "apiId": "a", "domainName": "localhost",
                "domainPrefix": "localhost",
                "http": {"method": "POST", "path": "/api/ably/events", "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1", "userAgent": "Ably-Webhooks"},
                "requestId": "bytes", "routeKey": "$default", "stage": "$default",
                "time": "22/Nov/2026:00:00:00 +0000", "timeEpoch": 1795305600000u64},
            "body": base64::engine::general_purpose::STANDARD.encode(body),
            "isBase64Encoded": true
        });
        let req = lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event");
        self.send(req).await
    }

    pub async fn send(&self, req: Request) -> Response<Body> {
        handle(&self.state, req).await
    }

    /// Every item in the table.
    pub async fn items(&self) -> Vec<HashMap<String, AttributeValue>> {
        crate::helpers::scan_table(&self.dynamo, &self.table).await
    }

    /// The dead letters: deliveries kept whole because they could not be stored as events.
    pub async fn dead_letters(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.items()
            .await
            .into_iter()
            .filter(|i| s(i, "conversation_id") == "_dead_letter")
            .collect()
    }

    /// Every chat event item: not the reserved partitions (the dead letters, the cache
    /// epoch).
    pub async fn chat_items(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.items()
            .await
            .into_iter()
            .filter(|i| !s(i, "conversation_id").starts_with('_'))
            .collect()
    }

    /// The cached list of a conversation, newest first, as JSON.
    pub async fn cached(&self, conversation: &str) -> Vec<Value> {
        let key = format!("{}chat:conversation:{conversation}:events", self.prefix);
        let list = self
            .redis
            .command(&["LRANGE", &key, "0", "-1"])
            .await
            .unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|v| serde_json::from_str(v.as_str().unwrap()).unwrap())
            .collect()
    }

    /// Every Redis key under this test's prefix.
    pub async fn redis_keys(&self) -> Vec<String> {
        let keys = self
            .redis
            .command(&["KEYS", &format!("{}*", self.prefix)])
            .await
            .unwrap();
        let mut keys: Vec<String> = keys
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        keys.sort();
        keys
    }

    pub async fn assert_nothing_written(&self) {
        assert_eq!(self.items().await.len(), 0, "dynamodb must be untouched");
        assert_eq!(
            self.redis_keys().await,
            Vec::<String>::new(),
            "redis must be untouched"
        );
    }
}

pub fn s(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// The webhook Ably sends with `body`: signed with the test webhook key.
pub fn signed_webhook(body: &[u8]) -> Request {
    let signature = sign(SECRET, body);
    signed_request(
        body,
        &[("x-ably-key", KEY_NAME), ("x-ably-signature", &signature)],
    )
}

pub fn signed_request(body: &[u8], headers: &[(&str, &str)]) -> Request {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    api_request(
        "POST",
        "/api/ably/events",
        &all,
        Some(std::str::from_utf8(body).expect("utf-8 body")),
    )
}

/// A batch of flat items on `conversation:{conv}` with `n` messages.
pub fn flat_batch(conv: &str, n: usize, start_ms: i64) -> Vec<u8> {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "id": format!("{conv}-m{i}"),
                "name": "message:user",
                "channel": format!("conversation:{conv}"),
                "clientId": "customer-1",
                "data": {"text": format!("message {i}")},
                "timestamp": start_ms + i as i64
            })
        })
        .collect();
    json!({ "items": items }).to_string().into_bytes()
}

/// A delivery on `conversation:{conv}` of staff-only events forged by customers (Ably
/// verified their clientIds: `customer-{conv}` for the chat session, `customer:u1` for a
/// customer JWT) beside genuine ones (a `service:` clientId, no clientId at all: the API
/// key, and a broker), plus the customer's own message. Times from `start_ms`.
pub fn forged_and_genuine(conv: &str, start_ms: i64) -> Vec<u8> {
    let session = format!("customer-{conv}");
    let item = |i: i64, name: &str, client_id: Option<&str>, data: Value| {
        let mut item = json!({"id": format!("{conv}-{i}"), "name": name,
            "channel": format!("conversation:{conv}"), "timestamp": start_ms + i, "data": data});
        if let Some(client_id) = client_id {
            item["clientId"] = json!(client_id);
        }
        item
    };
    let timing = |ms: u64| json!({"text": "answer", "timing": {"ai_duration_ms": ms, "queue_duration_ms": ms}});
    json!({"items": [
        item(0, "message:ai", Some(&session), timing(99_999)),
        item(1, "message:ai", Some("customer:u1"), timing(99_999)),
        item(2, "sla:violation", Some(&session), json!({"forged": true})),
        item(3, "agent_joined", Some("customer:u1"), json!({"agentId": "fake", "agentName": "Eve"})),
        item(4, "message:ai", Some("service:s1"), timing(100)),
        item(5, "message:ai", None, timing(200)),
        item(6, "sla:violation", Some("broker:b1"), json!({"minutes": 5})),
        item(7, "message:user", Some(&session), json!({"text": "hello"})),
    ]})
    .to_string()
    .into_bytes()
}

/// The ids [`forged_and_genuine`] forges, and those it sends genuinely.
pub fn forged_ids(conv: &str) -> (Vec<String>, Vec<String>) {
    let ids = |range: std::ops::Range<i64>| range.map(|i| format!("{conv}-{i}")).collect();
    (ids(0..4), ids(4..8))
}

/// Milliseconds since the epoch as ISO-8601 UTC with milliseconds, computed here without
/// the product's formatter.
pub fn chrono_iso(ms: i64) -> String {
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

pub fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

pub async fn assert_stored_once(h: &EventsApp, conv: &str, n: usize) {
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

pub fn flat_item(conv: &str, i: i64) -> Value {
    json!({"id": format!("m{i}"), "name": "message:user", "channel": format!("conversation:{conv}"),
           "data": {"n": i}, "timestamp": 1_700_000_000_000i64 + i * 1000})
}
