//! Every way Ably delivers, through `ably_events::invoke` (what the Lambda runtime and
//! `cargo lambda watch` call) with event JSON shaped as AWS delivers it: API Gateway
//! (non-enveloped, MessagePack, full batches), direct invoke, SQS and Kinesis, over the
//! real local stack.

use base64::Engine;
use chat_core::ably::webhook::signature::sign;
use chat_core::handlers::ably_events::{invoke, EventsState};
use lambda_http::{Context, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::helpers::unreachable_dynamo;
use crate::helpers::{
    counting_redis, redis, refusing_dynamo, s, unique, EventsApp, KEY_NAME, SECRET,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One invocation with `event` as the runtime would hand it over.
async fn call(state: &EventsState, event: &Value) -> Result<Value, String> {
    let payload = RawValue::from_string(event.to_string()).unwrap();
    let mut context = Context::default();
    context.request_id = unique("invocation");
    context.deadline = (chrono::Utc::now().timestamp_millis() + 20_000) as u64;
    invoke(state, LambdaEvent::new(payload, context))
        .await
        .map_err(|e| e.to_string())
}

/// An enveloped message on `conversation:{conv}` from a customer, as Ably's rules send it.
fn enveloped(conv: &str, ids: &[&str], ms: i64) -> Value {
    let messages: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({
                "id": id, "clientId": "customer:u-1", "connectionId": "c0nn",
                "timestamp": ms + i as i64, "name": "message:user",
                "data": json!({"text": format!("hello {id}")}).to_string(), "encoding": "json"
            })
        })
        .collect();
    json!({
        "source": "channel.message", "appId": "aBCdEf", "channel": format!("conversation:{conv}"),
        "site": "eu-central-1-A", "ruleId": "1-a2Bc", "messages": messages
    })
}

/// An API Gateway HTTP API event for `POST /api/ably/events`, signed over `body`.
fn api_event(body: &[u8], headers: &[(&str, &str)]) -> Value {
    let mut all = serde_json::Map::new();
    all.insert("x-ably-key".into(), json!(KEY_NAME));
    all.insert("x-ably-signature".into(), json!(sign(SECRET, body)));
    for (name, value) in headers {
        all.insert(name.to_string(), json!(value));
    }
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/api/ably/events",
        "rawQueryString": "", "headers": all,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api-id", "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": "POST", "path": "/api/ably/events", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "Ably"},
            "requestId": "r", "routeKey": "$default", "stage": "$default",
            "time": "01/Dec/2026:00:00:00 +0000", "timeEpoch": 1796083200000u64
        },
        "body": B64.encode(body),
        "isBase64Encoded": true
    })
}

fn sqs_record(id: &str, body: &str) -> Value {
    json!({
        "messageId": id, "receiptHandle": format!("handle-{id}"), "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1796083200000",
                       "SenderId": "AROAEXAMPLE:ably", "ApproximateFirstReceiveTimestamp": "1796083200001"},
        "messageAttributes": {}, "md5OfBody": "0", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ably-events", "awsRegion": "us-east-1"
    })
}

fn sqs_event(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

fn kinesis_record(sequence: &str, data: &[u8]) -> Value {
    json!({
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "conversation", "sequenceNumber": sequence,
                    "data": B64.encode(data), "approximateArrivalTimestamp": 1796083200.5},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": format!("shardId-000000000000:{sequence}"),
        "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::123456789012:role/ably-events",
        "awsRegion": "us-east-1", "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/ably-events"
    })
}

/// The archived event ids of a conversation, sorted (one per item: duplicates show).
async fn archived_ids(h: &EventsApp, conv: &str) -> Vec<String> {
    let mut ids: Vec<String> = h
        .chat_items()
        .await
        .iter()
        .filter(|i| s(i, "conversation_id") == conv)
        .map(|i| s(i, "event_key").split_once('#').unwrap().1.to_owned())
        .collect();
    ids.sort();
    ids
}

async fn cached_ids(h: &EventsApp, conv: &str) -> Vec<String> {
    let mut ids: Vec<String> = h
        .cached(conv)
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_non_enveloped_webhook_is_read_from_its_headers() {
    let h = EventsApp::new().await;
    let conv = unique("ne");
    let channel = format!("conversation:{conv}");
    let headers = |id: &'static str, ct: &'static str| {
        vec![
            ("content-type", ct),
            ("x-ably-version", "1.2"),
            ("x-ably-envelope-appid", "aBCdEf"),
            ("x-ably-envelope-channel", channel.as_str()),
            ("x-ably-envelope-rule-id", "1-a2Bc"),
            ("x-ably-envelope-site", "eu-central-1-A"),
            ("x-ably-envelope-source", "channel.message"),
            ("x-ably-message-client-id", "customer:u-1"),
            ("x-ably-message-connection-id", "c0nn"),
            ("x-ably-message-id", id),
            ("x-ably-message-timestamp", "1796083200123"),
            ("x-ably-message-name", "message:user"),
        ]
    };
    let json_body = br#"{"text":"hi"}"#;
    let answer = call(
        &h.state,
        &api_event(json_body, &headers("n1:0", "application/json")),
    )
    .await
    .unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let receipt: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (receipt["received"].as_u64(), receipt["stored"].as_u64()),
        (Some(1), Some(1))
    );
    call(
        &h.state,
        &api_event(b"plain words", &headers("n2:0", "text/plain")),
    )
    .await
    .unwrap();
    call(
        &h.state,
        &api_event(&[0, 159, 255], &headers("n3:0", "application/octet-stream")),
    )
    .await
    .unwrap();

    let cached = h.cached(&conv).await;
    let by_id = |id: &str| cached.iter().find(|e| e["id"] == id).cloned().unwrap();
    assert_eq!(by_id("n1:0")["payload"], json!({"text": "hi"}));
    assert_eq!(by_id("n1:0")["client_id"], "customer:u-1");
    assert_eq!(by_id("n1:0")["occurred_at"], "2026-12-01T00:00:00.123Z");
    assert_eq!(by_id("n2:0")["payload"], "plain words");
    assert_eq!(by_id("n3:0")["payload"], "AJ//");
    assert_eq!(by_id("n3:0")["encoding"], "base64");
    assert_eq!(archived_ids(&h, &conv).await, ["n1:0", "n2:0", "n3:0"]);
    let items = h.chat_items().await;
    assert!(items.iter().all(|i| i["trusted"].as_bool() == Ok(&true)));

    // The signature still covers the raw body: a changed byte is refused, nothing written.
    let mut forged = api_event(json_body, &headers("n4:0", "application/json"));
    forged["body"] = json!(B64.encode(br#"{"text":"ho"}"#));
    let refused = call(&h.state, &forged).await.unwrap();
    assert_eq!(refused["statusCode"], 401);
    assert_eq!(archived_ids(&h, &conv).await.len(), 3);
}

#[tokio::test]
async fn msgpack_and_json_twins_store_identical_events() {
    let json_side = EventsApp::new().await;
    let packed_side = EventsApp::new().await;
    let conv = unique("mp");
    let body = json!({"items": [
        {"webhookId": "w", "source": "channel.message", "serial": "s", "timestamp": 1796083200000i64,
         "name": "channel.message", "data": {"channelId": format!("conversation:{conv}"), "site": "eu",
         "messages": enveloped(&conv, &["p1:0", "p1:1"], 1796083200000)["messages"].clone()}},
        {"webhookId": "w2", "source": "channel.presence", "timestamp": 1796083200005i64,
         "name": "presence.message", "data": {"channelId": format!("conversation:{conv}"),
         "presence": [{"id": "pr:0", "clientId": "customer:u-1", "timestamp": 1796083200005i64, "action": 2}]}}
    ]});
    let json_bytes = body.to_string().into_bytes();
    let packed = rmp_serde::to_vec_named(&body).unwrap();
    let a = call(
        &json_side.state,
        &api_event(&json_bytes, &[("content-type", "application/json")]),
    )
    .await
    .unwrap();
    let b = call(
        &packed_side.state,
        &api_event(&packed, &[("content-type", "application/x-msgpack")]),
    )
    .await
    .unwrap();
    assert_eq!(
        (a["statusCode"].as_u64(), b["statusCode"].as_u64()),
        (Some(200), Some(200)),
        "{b}"
    );
    assert_eq!(a["body"], b["body"]);
    let strip = |mut items: Vec<
        std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    >| {
        items.sort_by_key(|i| s(i, "event_key"));
        items
    };
    let (json_items, packed_items) = (
        strip(json_side.chat_items().await),
        strip(packed_side.chat_items().await),
    );
    assert_eq!(json_items.len(), 3);
    assert_eq!(json_items, packed_items);
    assert_eq!(
        json_side.cached(&conv).await,
        packed_side.cached(&conv).await
    );
}

#[tokio::test]
async fn a_full_batch_of_multi_message_items_is_stored_whole_in_several_script_calls() {
    let (counted, calls) = counting_redis().await;
    let h = EventsApp::build(&[("REDIS_EVENT_MAX", "5000")], Some(counted), None).await;
    let conv = unique("full");
    // 600 items of 2 messages each: 1200 events, past one script call's 1000.
    let items: Vec<Value> = (0..600)
        .map(|i| {
            let ids = [format!("f{i:03}:0"), format!("f{i:03}:1")];
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            json!({"webhookId": format!("w{i}"), "source": "channel.message", "timestamp": 1796083200000i64 + i,
                   "data": {"channelId": format!("conversation:{conv}"),
                            "messages": enveloped(&conv, &ids, 1796083200000 + 2 * i)["messages"].clone()}})
        })
        .collect();
    let body = json!({ "items": items }).to_string().into_bytes();
    let before = calls.load(std::sync::atomic::Ordering::SeqCst);
    let answer = call(
        &h.state,
        &api_event(&body, &[("content-type", "application/json")]),
    )
    .await
    .unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let receipt: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(receipt["stored"], 1200);
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst) - before,
        2,
        "1200 events in two script calls"
    );
    assert_eq!(archived_ids(&h, &conv).await.len(), 1200);
    let cached = h.cached(&conv).await;
    assert_eq!(cached.len(), 1200);
    // Still newest first across the two calls.
    assert_eq!(cached[0]["id"], "f599:1");
    assert_eq!(cached[1199]["id"], "f000:0");
}

#[tokio::test]
async fn a_direct_invoke_is_mirrored_and_a_store_failure_is_an_error() {
    let h = EventsApp::new().await;
    let conv = unique("direct");
    let event = enveloped(&conv, &["d1:0", "d1:1"], 1796083200000);
    let receipt = call(&h.state, &event).await.unwrap();
    assert_eq!(
        (receipt["received"].as_u64(), receipt["stored"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(archived_ids(&h, &conv).await, ["d1:0", "d1:1"]);
    assert_eq!(cached_ids(&h, &conv).await, ["d1:0", "d1:1"]);
    // Nothing signs this path: the events are judged on their clientId like any other.
    let forged = json!({"channel": format!("conversation:{conv}"), "messages": [
        {"id": "d2:0", "clientId": "customer:u-1", "timestamp": 1796083200100i64, "name": "message:ai", "data": "{}"}]});
    call(&h.state, &forged).await.unwrap();
    let items = h.chat_items().await;
    let forged_item = items
        .iter()
        .find(|i| s(i, "event_key").ends_with("#d2:0"))
        .unwrap();
    assert_eq!(forged_item["trusted"].as_bool(), Ok(&false));

    let down = EventsState::with_clients(h.state.config.clone(), redis(), unreachable_dynamo());
    let err = call(&down, &enveloped(&conv, &["d3:0"], 1796083200200))
        .await
        .unwrap_err();
    assert!(err.contains("not stored"), "{err}");
    // An unparseable event is kept, and answered (a retry would not parse any better).
    let kept = call(&h.state, &json!({"hello": "world"})).await.unwrap();
    assert_eq!(kept["error"], "invalid_payload");
    let dead = h.dead_letters().await.len();
    assert_eq!(dead, 1);
}

#[tokio::test]
async fn a_queued_record_past_ablys_batch_size_is_kept_as_a_dead_letter() {
    let h = EventsApp::new().await;
    let conv = unique("sqs-big");
    let items: Vec<Value> = (0..1001)
        .map(|i| {
            json!({"id": format!("big-{i}"), "name": "message:user",
            "channel": format!("conversation:{conv}"), "timestamp": 1_796_083_200_000i64 + i})
        })
        .collect();
    let big = json!({ "items": items }).to_string();
    let answer = call(&h.state, &sqs_event(vec![sqs_record("m-big", &big)]))
        .await
        .unwrap();
    // Kept, so let go: not listed for redelivery, and not dropped either.
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(archived_ids(&h, &conv).await, Vec::<String>::new());
    let dead = h.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(s(&dead[0], "raw_body"), big);
    assert!(s(&dead[0], "reason").contains("1001 items"));
    // The same by direct invoke: an answer saying so, not an error for Lambda to retry.
    let answer = call(&h.state, &serde_json::from_str(&big).unwrap())
        .await
        .unwrap();
    assert_eq!(answer["error"], "batch_too_large");
}

#[tokio::test]
async fn an_sqs_batch_reports_exactly_the_records_not_stored() {
    let conv = unique("sqs");
    let poison = unique("poison");
    let h = EventsApp::build(&[], None, Some(refusing_dynamo(&[&poison], usize::MAX))).await;
    let good = enveloped(&conv, &["q1:0", "q1:1"], 1796083200000).to_string();
    let bad = enveloped(&poison, &["q3:0"], 1796083200010).to_string();
    let event = sqs_event(vec![
        sqs_record("m-good", &good),
        sqs_record("m-garbled", "{\"not\": \"an ably payload\"}"),
        sqs_record("m-refused", &bad),
    ]);
    let answer = call(&h.state, &event).await.unwrap();
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "m-refused"}]})
    );
    assert_eq!(archived_ids(&h, &conv).await, ["q1:0", "q1:1"]);
    assert_eq!(cached_ids(&h, &conv).await, ["q1:0", "q1:1"]);
    assert_eq!(archived_ids(&h, &poison).await, Vec::<String>::new());
    let dead = h.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(s(&dead[0], "raw_body"), "{\"not\": \"an ably payload\"}");
}

#[tokio::test]
async fn an_sqs_batch_while_dynamodb_is_down_fails_every_record_then_redelivery_stores_once() {
    let h = EventsApp::new().await;
    let conv = unique("outage");
    let records: Vec<Value> = (0..4)
        .map(|i| {
            let id = format!("o{i}:0");
            sqs_record(
                &format!("m{i}"),
                &enveloped(&conv, &[&id], 1796083200000 + i).to_string(),
            )
        })
        .collect();
    let down = EventsState::with_clients(h.state.config.clone(), redis(), unreachable_dynamo());
    let answer = call(&down, &sqs_event(records.clone())).await.unwrap();
    let failed: Vec<&str> = answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["m0", "m1", "m2", "m3"]);
    assert_eq!(archived_ids(&h, &conv).await, Vec::<String>::new());
    // SQS redelivers them (the cache took them the first time): each is stored once.
    for _ in 0..2 {
        let answer = call(&h.state, &sqs_event(records.clone())).await.unwrap();
        assert_eq!(answer, json!({"batchItemFailures": []}));
    }
    assert_eq!(
        archived_ids(&h, &conv).await,
        ["o0:0", "o1:0", "o2:0", "o3:0"]
    );
    assert_eq!(
        cached_ids(&h, &conv).await,
        ["o0:0", "o1:0", "o2:0", "o3:0"]
    );
}

#[tokio::test]
async fn the_same_events_by_webhook_then_by_sqs_are_stored_once() {
    let h = EventsApp::new().await;
    let conv = unique("both");
    let payload = enveloped(&conv, &["b1:0", "b1:1", "b1:2"], 1796083200000);
    let body = payload.to_string().into_bytes();
    let answer = call(
        &h.state,
        &api_event(&body, &[("content-type", "application/json")]),
    )
    .await
    .unwrap();
    assert_eq!(answer["statusCode"], 200);
    let answer = call(
        &h.state,
        &sqs_event(vec![sqs_record("m1", &payload.to_string())]),
    )
    .await
    .unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(archived_ids(&h, &conv).await, ["b1:0", "b1:1", "b1:2"]);
    assert_eq!(cached_ids(&h, &conv).await, ["b1:0", "b1:1", "b1:2"]);
}

#[tokio::test]
async fn a_kinesis_batch_resumes_at_the_first_record_not_stored() {
    let conv = unique("kin");
    let poison = unique("kpoison");
    let h = EventsApp::build(&[], None, Some(refusing_dynamo(&[&poison], usize::MAX))).await;
    let json_record = enveloped(&conv, &["k1:0"], 1796083200000)
        .to_string()
        .into_bytes();
    let packed_record =
        rmp_serde::to_vec_named(&enveloped(&conv, &["k2:0"], 1796083200001)).unwrap();
    let refused = enveloped(&poison, &["k3:0"], 1796083200002)
        .to_string()
        .into_bytes();
    let after = enveloped(&conv, &["k4:0"], 1796083200003)
        .to_string()
        .into_bytes();
    let event = json!({"Records": [
        kinesis_record("4959000000000000000000000001", &json_record),
        kinesis_record("4959000000000000000000000002", &packed_record),
        kinesis_record("4959000000000000000000000003", &refused),
        kinesis_record("4959000000000000000000000004", &after),
    ]});
    let answer = call(&h.state, &event).await.unwrap();
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "4959000000000000000000000003"}]})
    );
    // JSON and MessagePack records alike; the one after the failure is stored too, and
    // its redelivery from the resumed shard overwrites itself.
    assert_eq!(archived_ids(&h, &conv).await, ["k1:0", "k2:0", "k4:0"]);
    let clean = json!({"Records": [kinesis_record("4959000000000000000000000004", &after)]});
    let answer = call(&h.state, &clean).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(archived_ids(&h, &conv).await, ["k1:0", "k2:0", "k4:0"]);
}

/// Every sample under `events/ably-events/` (what `cargo lambda invoke ably-events
/// --data-file` sends), through the same entry point.
#[tokio::test]
async fn the_sample_events_are_answered() {
    // The samples are signed with the dev webhook key of `.env.example`.
    let key = crate::helpers::stack_var("ABLY_WEBHOOK_KEYS");
    let h = EventsApp::build(&[("ABLY_WEBHOOK_KEYS", key.as_str())], None, None).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/ably-events");
    let mut kinds = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.ends_with("-body.json") {
            continue;
        }
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let answer = call(&h.state, &event)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let kind = if event.get("requestContext").is_some() {
            let expected = if name == "bad-signature.json" {
                401
            } else {
                200
            };
            assert_eq!(answer["statusCode"], expected, "{name}: {answer}");
            "api-gateway"
        } else if event.get("Records").is_some() {
            assert_eq!(answer, json!({"batchItemFailures": []}), "{name}");
            event["Records"][0]["eventSource"].as_str().unwrap()
        } else {
            assert!(answer["stored"].as_u64() > Some(0), "{name}: {answer}");
            "direct"
        };
        kinds.insert(kind.to_owned());
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["api-gateway", "aws:kinesis", "aws:sqs", "direct"]
    );
    assert!(!h.chat_items().await.is_empty());
}

#[tokio::test]
async fn records_from_another_source_are_an_error() {
    let h = EventsApp::new().await;
    let event = json!({"Records": [{"eventSource": "aws:s3", "s3": {}}]});
    let err = call(&h.state, &event).await.unwrap_err();
    assert!(err.contains("aws:s3"), "{err}");
    let empty = call(&h.state, &json!({"Records": []})).await.unwrap();
    assert_eq!(empty, json!({"batchItemFailures": []}));
    h.assert_nothing_written().await;
}

/// A batch whose cache writes pass Upstash's 10 MB request limit (here with the pub/sub
/// bridge, which sends each payload twice) is split, and the proxy, which refuses what
/// Upstash refuses, takes every call.
#[tokio::test]
async fn the_cache_never_sends_a_request_over_upstashs_limit() {
    assert_eq!(
        chat_core::storage::redis::MAX_REQUEST_BYTES,
        dev_tools::upstash_proxy::MAX_REQUEST_BYTES
    );
    let h = EventsApp::build(
        &[("REDIS_PUBSUB_BRIDGE", "true"), ("REDIS_EVENT_MAX", "100")],
        None,
        None,
    )
    .await;
    let conv = unique("big");
    let text = "x".repeat(300 * 1024);
    let events: Vec<chat_core::events::ChatEvent> = (0..30)
        .map(|i| chat_core::events::ChatEvent {
            id: format!("big{i:02}:0"),
            history_id: conv.clone(),
            channel: format!("conversation:{conv}"),
            event_type: "message:user".into(),
            client_id: Some("customer:u-1".into()),
            trusted: true,
            payload: json!({ "text": text }).into(),
            occurred_at: format!("2026-12-01T00:00:{i:02}.000Z"),
            ..chat_core::events::ChatEvent::plain()
        })
        .collect();
    let whole = h.state.stores.cache.mirror_call(&events, 0, 0);
    let whole_bytes: usize = whole.keys.iter().chain(&whole.args).map(String::len).sum();
    assert!(
        whole_bytes > chat_core::storage::redis::MAX_REQUEST_BYTES,
        "one call would be refused"
    );
    let calls = h.state.stores.cache.planned_calls(&events, 0, 0);
    assert!(calls.len() >= 2, "18 MB of arguments in one call");
    let outcome = h.state.stores.cache.mirror(&events, 0, 0).await.unwrap();
    assert_eq!((outcome.stored, outcome.duplicates), (30, 0));
    let cached = h.cached(&conv).await;
    assert_eq!(cached.len(), 30);
    assert_eq!(cached[0]["id"], "big29:0");
}
