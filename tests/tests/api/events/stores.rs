//! Both stores under redelivery, trims and outages: each event once, history from
//! whichever answers.

use std::sync::Arc;

use chat_core::handlers::ably_events::{handle, EventsState};
use chat_core::storage::history::HistorySource;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::helpers::{body_json, flat_batch, redis, s, signed_webhook, EventsApp};
use crate::helpers::{unreachable_dynamo, unreachable_redis};

#[tokio::test]
async fn redelivery_2_and_10_times_and_concurrently_stores_each_event_once() {
    let h = EventsApp::new().await;
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

    let h = Arc::new(EventsApp::new().await);
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
    let h = EventsApp::build(&[("REDIS_EVENT_MAX", "5")], None, None).await;
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

#[tokio::test]
async fn dynamodb_down_is_503_and_a_redelivery_then_stores_everything_once() {
    let down = EventsApp::build(&[], None, Some(unreachable_dynamo())).await;
    let body = flat_batch("c-ddb", 60, 1_700_000_000_000);
    let res = down.post(&body).await;
    assert_eq!(res.status(), 503);
    assert_eq!(body_json(&res)["code"], "storage_unavailable");
    assert_eq!(down.items().await.len(), 0);

    // Ably redelivers once DynamoDB is back: same table, same Redis prefix.
    let config = down.state.config.clone();
    let up = EventsState::with_clients(config, redis(), down.dynamo.clone());
    let res = handle(&up, signed_webhook(&body)).await;
    assert_eq!(res.status(), 200);
    assert_stored_once(&down, "c-ddb", 60).await;
}

#[tokio::test]
async fn redis_down_is_200_dynamodb_holds_everything_and_history_falls_back_to_it() {
    let h = EventsApp::build(&[], Some(unreachable_redis()), None).await;
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
    let res = handle(&back, signed_webhook(&body)).await;
    assert_eq!(body_json(&res)["duplicates"], 25);
    assert_eq!(h.cached("c-redis").await.len(), 25);
}

#[tokio::test]
async fn analytics_keys_are_updated_in_the_same_round_trip() {
    let h = EventsApp::new().await;
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
    let h = EventsApp::new().await;
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
