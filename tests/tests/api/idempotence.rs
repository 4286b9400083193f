//! Property: mirroring a batch twice leaves Redis and DynamoDB exactly as mirroring it
//! once, for generated batches (mixed shapes, duplicates inside a batch, several
//! conversations), against the real stores.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::helpers::EventsApp;

/// Everything the stores hold for this harness, `expires_at` included: it runs from the
/// event's own time, so a redelivery cannot extend retention.
async fn snapshot(h: &EventsApp) -> (BTreeMap<String, String>, Vec<String>) {
    let mut redis = BTreeMap::new();
    for key in h.redis_keys().await {
        let kind = h.redis.command(&["TYPE", &key]).await.unwrap();
        let value = match kind.as_str().unwrap() {
            "list" => h.redis.command(&["LRANGE", &key, "0", "-1"]).await.unwrap(),
            "string" => h.redis.command(&["GET", &key]).await.unwrap(),
            "hash" => h.redis.command(&["HGETALL", &key]).await.unwrap(),
            "zset" => h.redis.command(&["ZRANGE", &key, "0", "-1"]).await.unwrap(),
            other => json!(other),
        };
        redis.insert(key, value.to_string());
    }
    let mut items: Vec<String> = h
        .items()
        .await
        .into_iter()
        .map(|item| {
            let sorted: BTreeMap<_, _> = item
                .into_iter()
                .map(|(k, v)| (k, format!("{v:?}")))
                .collect();
            format!("{sorted:?}")
        })
        .collect();
    items.sort();
    (redis, items)
}

fn entry(i: usize, conv: usize, with_id: bool, ts: i64, text: &str) -> Value {
    let mut m =
        json!({"name": "message:user", "clientId": "c", "timestamp": ts, "data": {"text": text}});
    if with_id {
        m["id"] = json!(format!("id-{i}"));
    }
    m["channel"] = json!(format!("conversation:p{conv}"));
    m
}

fn batch() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((0usize..3, any::<bool>(), 0i64..5, "[a-z ]{0,8}"), 1..25),
        any::<bool>(),
    )
        .prop_map(|(entries, batched)| {
            let messages: Vec<Value> = entries
                .iter()
                .enumerate()
                // Some entries repeat an earlier one exactly (a batch may carry duplicates).
                .map(|(i, (conv, with_id, ts, text))| entry(if *ts == 0 { 0 } else { i }, *conv, *with_id, 1_700_000_000_000 + ts, text))
                .collect();
            if batched {
                let items: Vec<Value> = messages
                    .into_iter()
                    .map(|mut m| {
                        let channel = m["channel"].as_str().unwrap().to_owned();
                        m.as_object_mut().unwrap().remove("channel");
                        json!({"name": "channel.message", "timestamp": 1, "data": {"channelId": channel, "messages": [m]}})
                    })
                    .collect();
                json!({ "items": items }).to_string().into_bytes()
            } else {
                json!({ "items": messages }).to_string().into_bytes()
            }
        })
}

#[test]
fn mirroring_a_batch_twice_equals_mirroring_it_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = ProptestConfig {
        cases: 12,
        ..ProptestConfig::default()
    };
    proptest!(config, |(body in batch())| {
        runtime.block_on(async {
            let h = EventsApp::new().await;
            let first = h.post(&body).await;
            assert_eq!(first.status(), 200);
            let once = snapshot(&h).await;
            let second = h.post(&body).await;
            assert_eq!(second.status(), 200);
            let twice = snapshot(&h).await;
            assert_eq!(once, twice, "{}", String::from_utf8_lossy(&body));
        });
    });
}
