//! Events DynamoDB cannot key or hold (an empty or 2 KB+ channel, a 1 KB+ id or a 2 KB+
//! name, a 400 KB+ item) are skipped and reported, and the rest of their batch is stored.
//! Before, one such event failed its whole `BatchWriteItem` chunk on every redelivery, so
//! the batch was answered 503 until Ably gave up and every event in it was lost.

use serde_json::{json, Value};

use crate::helpers::body_json;
use crate::helpers::{s, EventsApp};

fn item(channel: &str, id: &str, name: &str, data: Value, ts: i64) -> Value {
    json!({"channel": channel, "id": id, "name": name, "data": data, "timestamp": ts})
}

#[tokio::test]
async fn events_dynamodb_cannot_hold_are_skipped_and_the_rest_of_the_batch_is_stored() {
    let h = EventsApp::new().await;
    let ts = 1_700_000_000_000i64;
    // The largest of each that DynamoDB still takes.
    let longest_conversation = "c".repeat(2048);
    let longest_id = "i".repeat(1024 - "2023-11-14T22:13:20.000Z#".len());
    let longest_name = "n".repeat(2048);
    let storable = vec![
        item(
            "conversation:ok",
            "ok-1",
            "message:user",
            json!({"text": "hi"}),
            ts,
        ),
        item(
            &format!("conversation:{longest_conversation}"),
            "ok-2",
            "m",
            json!(1),
            ts,
        ),
        item("conversation:ok", &longest_id, "m", json!(2), ts),
        item("conversation:ok", "ok-4", &longest_name, json!(3), ts),
        item(
            "conversation:ok",
            "ok-5",
            "m",
            json!("x".repeat(395 * 1024)),
            ts,
        ),
    ];
    let unstorable = vec![
        item("", "bad-1", "m", json!(1), ts),
        item(
            &format!("conversation:{longest_conversation}c"),
            "bad-2",
            "m",
            json!(1),
            ts,
        ),
        item(
            "conversation:ok",
            &format!("{longest_id}i"),
            "m",
            json!(1),
            ts,
        ),
        item(
            "conversation:ok",
            "bad-4",
            &format!("{longest_name}n"),
            json!(1),
            ts,
        ),
        item(
            "conversation:ok",
            "bad-5",
            "m",
            json!("x".repeat(401 * 1024)),
            ts,
        ),
    ];
    let mut items = storable.clone();
    items.extend(unstorable);
    let body = json!({ "items": items }).to_string();

    for delivery in 0..2 {
        let res = h.post(body.as_bytes()).await;
        assert_eq!(
            res.status(),
            200,
            "delivery {delivery}: {}",
            body_json(&res)
        );
        let receipt = body_json(&res);
        assert_eq!(receipt["received"], 5);
        assert_eq!(receipt["stored"], 5);
        assert_eq!(receipt["duplicates"], if delivery == 0 { 0 } else { 5 });
        assert_eq!(
            receipt["skipped"],
            json!([
                "event 5: no channel",
                "event 6: channel name longer than a DynamoDB key",
                "event 7: id longer than a DynamoDB key",
                "event 8: name longer than a DynamoDB key",
                "event 9: event larger than a DynamoDB item",
            ])
        );
    }

    let mut stored: Vec<String> = h.chat_items().await.iter().map(|i| s(i, "id")).collect();
    stored.sort();
    let mut expected: Vec<String> = storable
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    assert_eq!(stored, expected);
    let cached: Vec<Value> = h
        .cached("ok")
        .await
        .into_iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(
        cached.len(),
        4,
        "the four storable events of conversation ok"
    );
    assert!(cached
        .iter()
        .all(|id| !id.as_str().unwrap().starts_with("bad-")));
}
