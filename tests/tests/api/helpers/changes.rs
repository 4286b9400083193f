//! Messages that change, shaped as Ably delivers them (numeric `action`, `serial`,
//! `version`), and the ways they reach the events function: a signed JSON webhook, its
//! MessagePack twin, and an SQS record through the handler `cargo lambda watch` serves.

use chat_core::handlers::ably_events::invoke;
use lambda_http::{Context, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use std::sync::Arc;

use dev_tools::harness::meter::{self, Meter, Store};

use super::{body_json, stack_var, unique, EventsApp};

/// An events app (with `overrides`) whose DynamoDB requests go through the counting
/// forwarder `scripts/cost` uses, so that DynamoDB Local's own write units can be read.
pub async fn metered_events(overrides: &[(&str, &str)]) -> (EventsApp, Arc<Meter>) {
    let meter = Arc::new(Meter::default());
    let url = meter::start(
        Store::DynamoDb,
        &stack_var("AWS_ENDPOINT_URL_DYNAMODB"),
        &meter,
    )
    .await
    .unwrap();
    let client = aws_sdk_dynamodb::Client::from_conf(
        chat_core::storage::dynamo::config_builder()
            .endpoint_url(url)
            .build(),
    );
    (EventsApp::build(overrides, None, Some(client)).await, meter)
}

/// How a delivery reaches the events function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Json,
    Msgpack,
    Sqs,
}

pub const EVERY_WAY: [Via; 3] = [Via::Json, Via::Msgpack, Via::Sqs];

/// A message's serial, unique per test.
pub fn serial_for(tag: &str) -> String {
    format!("{}@{tag}", chrono::Utc::now().timestamp_millis())
}

/// The version serial of the `n`th change of the message `serial`: greater for later `n`.
pub fn version_of(serial: &str, n: u32) -> String {
    format!("{serial}:{n:05}")
}

/// A published message (`message.create`), at `ms`.
pub fn ably_create(
    id: &str,
    serial: &str,
    publisher: &str,
    name: &str,
    data: Value,
    ms: i64,
) -> Value {
    json!({"id": id, "clientId": publisher, "connectionId": "c0nn", "name": name,
        "timestamp": ms, "serial": serial, "action": 0, "data": data,
        "version": {"serial": serial, "timestamp": ms}})
}

/// The `n`th change (Ably's numeric `action`) of the message `serial` published by
/// `publisher` at `ms`, made by `editor` (`None`: the API key) `n` × 100 ms later, with
/// Ably's own id for it. Add `name` and `data` as the change carries them.
pub fn ably_change(
    action: u8,
    serial: &str,
    n: u32,
    publisher: &str,
    editor: Option<&str>,
    ms: i64,
) -> Value {
    let mut version =
        json!({"serial": version_of(serial, n), "timestamp": ms + 100 * i64::from(n)});
    if let Some(editor) = editor {
        version["clientId"] = json!(editor);
    }
    json!({"id": format!("change-{}", unique("v")), "clientId": publisher, "timestamp": ms,
        "serial": serial, "action": action, "version": version})
}

/// The `n`th change of `serial` as an edit (`message.update`) by `editor`, carrying the
/// whole message as it now stands: its `name` and its new `data`.
pub fn ably_edit(
    serial: &str,
    n: u32,
    publisher: &str,
    editor: &str,
    name: &str,
    data: Value,
    ms: i64,
) -> Value {
    let edit = ably_change(1, serial, n, publisher, Some(editor), ms);
    with(with(edit, "name", json!(name)), "data", data)
}

/// `message` with `field` set to `value`.
pub fn with(mut message: Value, field: &str, value: Value) -> Value {
    message[field] = value;
    message
}

/// The enveloped delivery of `messages` on `conversation:{conv}`.
pub fn envelope(conv: &str, messages: &[Value]) -> Value {
    json!({"source": "channel.message", "appId": "aBCdEf", "channel": format!("conversation:{conv}"),
        "site": "eu-central-1-A", "ruleId": "1-a2Bc", "messages": messages})
}

/// Delivers `messages` on `conversation:{conv}` the way `via` says; panics unless every
/// event was stored. Answers what the function said.
pub async fn deliver(h: &EventsApp, via: Via, conv: &str, messages: &[Value]) -> Value {
    let body = envelope(conv, messages);
    match via {
        Via::Json => {
            let response = h.post(body.to_string().as_bytes()).await;
            assert_eq!(response.status(), 200, "{:?}", body_json(&response));
            body_json(&response)
        }
        Via::Msgpack => {
            let packed = rmp_serde::to_vec_named(&body).unwrap();
            let response = h.post_bytes_as(&packed, "application/x-msgpack").await;
            assert_eq!(response.status(), 200, "{:?}", body_json(&response));
            body_json(&response)
        }
        Via::Sqs => {
            let record = json!({
                "messageId": unique("sqs"), "receiptHandle": "handle", "body": body.to_string(),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1796083200000",
                    "SenderId": "AROAEXAMPLE:ably", "ApproximateFirstReceiveTimestamp": "1796083200001"},
                "messageAttributes": {}, "md5OfBody": "0", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ably-events", "awsRegion": "us-east-1"
            });
            let event = json!({"Records": [record]});
            let payload = RawValue::from_string(event.to_string()).unwrap();
            let mut context = Context::default();
            context.request_id = unique("invocation");
            context.deadline = (chrono::Utc::now().timestamp_millis() + 20_000) as u64;
            let answer = invoke(&h.state, LambdaEvent::new(payload, context))
                .await
                .expect("invocation");
            assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
            answer
        }
    }
}
