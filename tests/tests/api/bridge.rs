//! The Redis pub/sub bridge (`REDIS_PUBSUB_BRIDGE`), seen by a real subscriber connected
//! straight to the `redis-server` behind the Upstash proxy: signed webhooks go through the
//! real events handler, and the subscriber must receive exactly one message per new
//! conversation event, in order, in the envelope self-hosted WebSocket servers read, and
//! nothing on redelivery or with the bridge off.

use std::time::Duration;

use dev_tools::resp::{Connection, Frame};
use serde_json::{json, Value};

use crate::helpers::EventsApp;
use crate::helpers::{
    ably_change, ably_create, ably_edit, body_json, deliver, redis_addr, serial_for, unique, with,
    Via,
};

/// A connection subscribed to channel patterns.
struct Subscriber {
    conn: Connection,
}

impl Subscriber {
    async fn new(patterns: &[&str]) -> Self {
        let mut conn = Connection::connect(&redis_addr())
            .await
            .expect("connect to redis-server");
        let mut command = vec![b"PSUBSCRIBE".to_vec()];
        command.extend(patterns.iter().map(|p| p.as_bytes().to_vec()));
        conn.send(vec![command]).await.expect("PSUBSCRIBE");
        for (n, pattern) in patterns.iter().enumerate() {
            let confirmation = next(&mut conn).await;
            assert_eq!(
                confirmation,
                Frame::Array(vec![
                    bulk("psubscribe"),
                    bulk(pattern),
                    Frame::Integer(n as i64 + 1)
                ])
            );
        }
        Subscriber { conn }
    }

    /// Every message published so far, as `(channel, message as JSON)`: a `PING` on this
    /// connection is answered after every message Redis delivered to it before, so
    /// reading up to its `pong` is a barrier, without sleeping.
    async fn received(&mut self) -> Vec<(String, Value)> {
        self.conn
            .send(vec![vec![b"PING".to_vec()]])
            .await
            .expect("PING");
        let mut messages = Vec::new();
        loop {
            let reply = next(&mut self.conn).await;
            let Frame::Array(parts) = &reply else {
                panic!("unexpected reply {reply:?}");
            };
            match parts.as_slice() {
                [kind, _] if *kind == bulk("pong") => return messages,
                [kind, _pattern, channel, payload] if *kind == bulk("pmessage") => {
                    let text = |r: &Frame| match r {
                        Frame::BulkString(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
                        other => panic!("expected a bulk string, got {other:?}"),
                    };
                    let message: Value = serde_json::from_str(&text(payload))
                        .unwrap_or_else(|e| panic!("message is not JSON ({e}): {payload:?}"));
                    messages.push((text(channel), message));
                }
                _ => panic!("unexpected reply {reply:?}"),
            }
        }
    }
}

async fn next(conn: &mut Connection) -> Frame {
    tokio::time::timeout(Duration::from_secs(10), conn.next_reply())
        .await
        .expect("redis answered within 10 s")
        .expect("read from redis")
}

fn bulk(text: &str) -> Frame {
    Frame::BulkString(text.as_bytes().to_vec().into())
}

/// 2026-01-02T03:04:05.000Z plus `offset` ms, in ms and as the ISO text events carry.
fn at(offset: i64) -> (i64, String) {
    let ms = 1_767_323_045_000 + offset;
    let text = chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    (ms, text)
}

fn item(channel: &str, id: &str, name: &str, client_id: &str, data: Value, offset: i64) -> Value {
    json!({"id": id, "name": name, "channel": channel, "clientId": client_id,
        "data": data, "timestamp": at(offset).0})
}

fn batch(items: &[Value]) -> Vec<u8> {
    json!({ "items": items }).to_string().into_bytes()
}

#[tokio::test]
async fn each_new_conversation_event_is_published_once_in_order_in_its_envelope() {
    let h = EventsApp::build(&[("REDIS_PUBSUB_BRIDGE", "true")], None, None).await;
    let mut subscriber = Subscriber::new(&[&format!("{}*", h.prefix)]).await;
    let (conv, other) = ("conv-bridge", "conv-bridge-2");
    let ch = format!("conversation:{conv}");
    // Out of order in the body: subscribers get them in the order they happened.
    let first = batch(&[
        item(
            &ch,
            "m-3",
            "message:ai",
            "broker:b-1",
            json!({"text": "How can I help?", "timing": {"ai_duration_ms": 900, "queue_duration_ms": 12}}),
            3,
        ),
        item(
            &ch,
            "m-1",
            "message:user",
            "customer-conv-bridge",
            json!({"text": "Hello"}),
            1,
        ),
        item(&ch, "t-2", "typing:start", "broker:b-1", Value::Null, 2),
        item(
            "sms:u-1:c-1",
            "s-1",
            "message",
            "u-1",
            json!({"text": "sms"}),
            2,
        ),
        item(&ch, "t-4", "typing:stop", "broker:b-1", Value::Null, 4),
        item(
            &ch,
            "a-5",
            "agent_joined",
            "broker:agent-7",
            json!({"agentName": "Ann"}),
            5,
        ),
        item(
            &format!("conversation:{other}"),
            "o-1",
            "message:user",
            "customer-x",
            json!({"content": "elsewhere", "sender": {"id": "x", "name": "X"}}),
            0,
        ),
        item(
            &ch,
            "w-6",
            "sla:warning",
            "service:s-1",
            json!({"minutes": 5}),
            6,
        ),
    ]);
    let response = h.post(&first).await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    assert_eq!(body_json(&response)["stored"], json!(8));

    let channel = format!("{}chat:{conv}", h.prefix);
    let other_channel = format!("{}chat:{other}", h.prefix);
    let t = |offset| at(offset).1;
    let expected = vec![
        (
            other_channel.clone(),
            json!({"type": "message", "timestamp": t(0), "clientId": "customer-x", "publisherRole": "customer", "data": {"id": "o-1",
                "content": "elsewhere", "role": "user", "timestamp": t(0),
                "sender": {"id": "x", "name": "X"}}}),
        ),
        (
            channel.clone(),
            json!({"type": "message", "timestamp": t(1), "clientId": "customer-conv-bridge", "publisherRole": "customer", "data": {"id": "m-1",
                "content": "Hello", "role": "user", "timestamp": t(1),
                "sender": "customer-conv-bridge"}}),
        ),
        (
            channel.clone(),
            json!({"type": "typing", "timestamp": t(2), "clientId": "broker:b-1", "publisherRole": "broker",
                "data": {"userId": "broker:b-1", "isTyping": true}}),
        ),
        (
            channel.clone(),
            json!({"type": "message", "timestamp": t(3), "clientId": "broker:b-1", "publisherRole": "broker", "data": {"id": "m-3",
                "content": "How can I help?", "role": "assistant", "timestamp": t(3),
                "sender": "broker:b-1"}}),
        ),
        (
            channel.clone(),
            json!({"type": "typing", "timestamp": t(4), "clientId": "broker:b-1", "publisherRole": "broker",
                "data": {"userId": "broker:b-1", "isTyping": false}}),
        ),
        (
            channel.clone(),
            json!({"type": "agent_joined", "timestamp": t(5), "clientId": "broker:agent-7", "publisherRole": "broker",
                "data": {"agentId": "broker:agent-7", "agentName": "Ann", "timestamp": t(5)}}),
        ),
        (
            channel.clone(),
            json!({"type": "sla:warning", "timestamp": t(6), "clientId": "service:s-1", "publisherRole": "service", "data": {"minutes": 5}}),
        ),
    ];
    assert_eq!(subscriber.received().await, expected);

    // Redelivered, whole or in part: nothing is published again.
    for _ in 0..2 {
        let again = h.post(&first).await;
        assert_eq!(body_json(&again)["duplicates"], json!(8));
    }
    assert_eq!(subscriber.received().await, Vec::new());

    // A redelivery with one new event publishes only that one.
    let mixed = batch(&[
        item(
            &ch,
            "m-1",
            "message:user",
            "customer-conv-bridge",
            json!({"text": "Hello"}),
            1,
        ),
        item(
            &ch,
            "m-7",
            "message:user",
            "customer-conv-bridge",
            json!("Thanks"),
            7,
        ),
    ]);
    let response = h.post(&mixed).await;
    assert_eq!(body_json(&response)["stored"], json!(2));
    assert_eq!(body_json(&response)["duplicates"], json!(1));
    assert_eq!(
        subscriber.received().await,
        vec![(
            channel.clone(),
            json!({"type": "message", "timestamp": t(7), "clientId": "customer-conv-bridge", "publisherRole": "customer", "data": {"id": "m-7",
                "content": "Thanks", "role": "user", "timestamp": t(7),
                "sender": "customer-conv-bridge"}}),
        )]
    );
    assert_eq!(subscriber.received().await, Vec::new());
}

#[tokio::test]
async fn with_the_bridge_off_nothing_is_published() {
    let h = EventsApp::new().await;
    assert!(!h.state.config.pubsub_bridge, "off unless configured");
    let mut subscriber = Subscriber::new(&[&format!("{}*", h.prefix)]).await;
    let ch = "conversation:conv-quiet";
    let body = batch(&[
        item(
            ch,
            "q-1",
            "message:user",
            "customer-conv-quiet",
            json!({"text": "hi"}),
            1,
        ),
        item(ch, "q-2", "typing:start", "broker-1", Value::Null, 2),
    ]);
    let response = h.post(&body).await;
    assert_eq!(body_json(&response)["stored"], json!(2));
    assert_eq!(subscriber.received().await, Vec::new());
    // The events were mirrored all the same.
    assert_eq!(h.cached("conv-quiet").await.len(), 2);
}

#[tokio::test]
async fn without_a_key_prefix_the_channel_is_exactly_chat_conversation_id() {
    let h = EventsApp::build(
        &[("REDIS_PUBSUB_BRIDGE", "true"), ("REDIS_KEY_PREFIX", "")],
        None,
        None,
    )
    .await;
    assert_eq!(h.state.stores.cache.keys().prefix(), "");
    let conv = unique("conv-noprefix");
    let mut subscriber = Subscriber::new(&[&format!("*{conv}*")]).await;
    let id = unique("np");
    let body = batch(&[item(
        &format!("conversation:{conv}"),
        &id,
        "typing:start",
        "customer-1",
        json!({"userId": "u-1"}),
        1,
    )]);
    assert_eq!(h.post(&body).await.status(), 200);
    assert_eq!(
        subscriber.received().await,
        vec![(
            format!("chat:{conv}"),
            json!({"type": "typing", "timestamp": at(1).1, "clientId": "customer-1", "publisherRole": "customer",
                "data": {"userId": "u-1", "isTyping": true}}),
        )]
    );
    // Leave nothing behind in the shared, unprefixed namespace.
    let list = format!("chat:conversation:{conv}:events");
    let marker = format!("chat:event:{id}");
    h.redis
        .command(&["DEL", list.as_str(), marker.as_str()])
        .await
        .unwrap();
}

#[tokio::test]
async fn the_bridge_adds_no_round_trip() {
    let (counting, requests) = crate::helpers::counting_redis().await;
    let h = EventsApp::build(&[("REDIS_PUBSUB_BRIDGE", "true")], Some(counting), None).await;
    let mut subscriber = Subscriber::new(&[&format!("{}*", h.prefix)]).await;
    let body = crate::helpers::flat_batch("conv-one-trip", 50, at(0).0);
    assert_eq!(h.post(&body).await.status(), 200);
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
    let received = subscriber.received().await;
    let ids: Vec<&str> = received
        .iter()
        .map(|(_, m)| m["data"]["id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..50).map(|i| format!("conv-one-trip-m{i}")).collect();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn forged_staff_events_are_never_bridged_and_genuine_ones_carry_their_clientid() {
    let h = EventsApp::build(&[("REDIS_PUBSUB_BRIDGE", "true")], None, None).await;
    let conv = unique("conv-forged");
    let mut subscriber = Subscriber::new(&[&format!("{}chat:{conv}", h.prefix)]).await;
    let body = crate::helpers::forged_and_genuine(&conv, at(0).0);
    assert_eq!(h.post(&body).await.status(), 200);

    let received = subscriber.received().await;
    let seen: Vec<(&str, &str)> = received
        .iter()
        .map(|(_, m)| {
            (
                m["type"].as_str().unwrap(),
                m["clientId"].as_str().unwrap_or("(API key)"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("message", "service:s1"),
            ("message", "(API key)"),
            ("sla:violation", "broker:b1"),
            ("message", &*format!("customer-{conv}")),
        ]
    );
    let roles: Vec<&str> = received
        .iter()
        .map(|(_, m)| m["publisherRole"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["service", "service", "broker", "customer"]);
    // The forgeries are in the conversation's list, marked, for the record.
    let cached = h.cached(&conv).await;
    assert_eq!(cached.len(), 8);
    assert_eq!(cached.iter().filter(|e| e["trusted"] == false).count(), 4);
}

#[tokio::test]
async fn each_trusted_change_is_bridged_once_with_its_serial_and_action() {
    let h = EventsApp::build(&[("REDIS_PUBSUB_BRIDGE", "true")], None, None).await;
    let conv = unique("conv-changes");
    let mut subscriber = Subscriber::new(&[&format!("{}chat:{conv}", h.prefix)]).await;
    let serial = serial_for("bridged");
    let ms = chrono::Utc::now().timestamp_millis() - 60_000;
    let create = ably_create("b:0", &serial, "broker:b-1", "message:ai", json!("Hel"), ms);
    let append = with(
        ably_change(5, &serial, 1, "broker:b-1", Some("broker:b-1"), ms),
        "data",
        json!("lo"),
    );
    let forged = ably_edit(
        &serial,
        2,
        "broker:b-1",
        "customer:u-1",
        "message:ai",
        json!("forged"),
        ms,
    );
    let delete = ably_change(2, &serial, 3, "broker:b-1", Some("admin:a-1"), ms);
    let deliveries = [vec![create], vec![append, forged], vec![delete]];
    // Delivered, then redelivered (as Ably retries, or SQS redelivers): published once.
    for _ in 0..2 {
        for messages in &deliveries {
            deliver(&h, Via::Json, &conv, messages).await;
        }
    }

    let received: Vec<Value> = subscriber
        .received()
        .await
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    let seen: Vec<(&str, &str, &str)> = received
        .iter()
        .map(|m| {
            (
                m["type"].as_str().unwrap(),
                m["action"].as_str().unwrap(),
                m["serial"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("message", "message.create", serial.as_str()),
            ("message.append", "message.append", serial.as_str()),
            ("message.delete", "message.delete", serial.as_str()),
        ],
        "the customer's edit is not bridged: {received:?}"
    );
    assert_eq!(received[0]["data"]["content"], "Hel");
    assert_eq!(received[0]["data"]["id"], "b:0");
    assert_eq!(received[1]["data"], "lo", "the text the append adds");
    assert_eq!(received[2]["version"]["client_id"], "admin:a-1");
}
