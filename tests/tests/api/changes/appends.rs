//! An AI answer streamed as appends (Ably AI Transport's message per response): one
//! message in every read, one archive write and one cache entry per delivery whatever
//! the number of tokens, and one latency sample. Write units are measured by DynamoDB
//! Local itself, through the counting forwarder `scripts/cost` uses.

use std::sync::Arc;

use chat_core::storage::analytics;
use chat_core::storage::Keys;
use serde_json::{json, Value};

use crate::helpers::{
    ably_change, ably_create, api_request, bearer, body_json, deliver, metered_events,
    resume_state_over, serial_for, unique, version_of, with, RecordingMail, Via, EVERY_WAY,
};

use super::{a_minute_ago, BROKER};

const APPENDS: u32 = 300;
const DELIVERIES: u32 = 10;

/// Token `n` of the answer.
fn token(n: u32) -> String {
    format!("t{n} ")
}

/// The answer's messages: its create, then its appends, `DELIVERIES` deliveries of them.
fn answer(serial: &str, ms: i64) -> Vec<Vec<Value>> {
    let create = ably_create(
        "ai-1:0",
        serial,
        BROKER,
        "message:ai",
        json!({"text": "", "timing": {"ai_duration_ms": 1234, "queue_duration_ms": 56}}),
        ms,
    );
    let per = APPENDS / DELIVERIES;
    (0..DELIVERIES)
        .map(|d| {
            let mut messages: Vec<Value> = (d * per + 1..=(d + 1) * per)
                .map(|n| {
                    with(
                        ably_change(5, serial, n, BROKER, Some(BROKER), ms),
                        "data",
                        json!(token(n)),
                    )
                })
                .collect();
            if d == 0 {
                messages.insert(0, create.clone());
            }
            messages
        })
        .collect()
}

#[tokio::test]
async fn an_answer_streamed_as_appends_is_one_message_written_once_per_delivery() {
    let full: String = (1..=APPENDS).map(token).collect();
    for via in EVERY_WAY {
        let (h, meter) = metered_events(&[]).await;
        let conv = unique("stream");
        let serial = serial_for("answer");
        let deliveries = answer(&serial, a_minute_ago());
        let mut units = 0.0;
        for (d, messages) in deliveries.iter().enumerate() {
            let before = meter.snapshot();
            deliver(&h, via, &conv, messages).await;
            let used = meter.snapshot().since(&before);
            assert_eq!(
                used.dynamo_items_written, 1,
                "{via:?} delivery {d}: one archive write"
            );
            units += used.dynamo_write_units;
        }
        eprintln!(
            "{via:?}: an answer of 1 create + {APPENDS} appends in {DELIVERIES} deliveries: {units} write units"
        );
        assert!(units <= f64::from(DELIVERIES), "{units}");
        // A redelivery (Ably retries, SQS redelivers) writes the same item again.
        deliver(&h, via, &conv, &deliveries[4]).await;

        let items: Vec<_> = h
            .chat_items()
            .await
            .into_iter()
            .filter(|i| crate::helpers::s(i, "conversation_id") == conv)
            .collect();
        assert_eq!(items.len(), DELIVERIES as usize, "{via:?}");
        assert_eq!(
            h.cached(&conv).await.len(),
            DELIVERIES as usize,
            "one cache entry per delivery"
        );

        // One message with the whole text, in history and in the feed.
        let reader = resume_state_over(&h, &[], Arc::new(RecordingMail::default())).await;
        let (recent, _) = reader.history.recent_events(&conv, 20).await.unwrap();
        assert_eq!(recent.len(), 1, "{via:?}");
        let message = serde_json::to_value(&recent[0]).unwrap();
        assert_eq!(message["payload"]["text"], full.as_str());
        assert_eq!(message["payload"]["timing"]["ai_duration_ms"], 1234);
        assert_eq!(message["id"], "ai-1:0");
        assert_eq!(message["action"], "message.append");
        assert_eq!(
            message["version"]["serial"],
            version_of(&serial, APPENDS).as_str()
        );
        let auth = format!("Bearer {}", bearer("broker-poll", "broker", &[]));
        let response = chat_core::handlers::resume::handle(
            &reader,
            api_request(
                "GET",
                &format!("/api/chat/events?conversationId={conv}&limit=100"),
                &[("authorization", &auth)],
                None,
            ),
        )
        .await;
        let page = body_json(&response)["events"].clone();
        assert_eq!(page, json!([message]), "{via:?}");

        // Analytics count the answer once, with one latency sample.
        let now = chrono::Utc::now().timestamp_millis();
        let counted = analytics::read(&h.redis, &Keys::new(h.prefix.clone()), now)
            .await
            .unwrap();
        assert_eq!(counted.events_mirrored, 1, "{via:?}");
        assert_eq!(counted.ai_duration_ms.samples, 1);
    }
}

/// What streaming the same answer costs when each append is its own delivery (Ably
/// delivers as it goes, one token per webhook): one write per token. Side by side with
/// the batched figure above in the test output.
#[tokio::test]
async fn an_answer_delivered_token_by_token_costs_a_write_per_token() {
    let (h, meter) = metered_events(&[]).await;
    let conv = unique("trickle");
    let serial = serial_for("trickle");
    let messages: Vec<Value> = answer(&serial, a_minute_ago()).concat();
    let before = meter.snapshot();
    for message in &messages {
        deliver(&h, Via::Json, &conv, std::slice::from_ref(message)).await;
    }
    let used = meter.snapshot().since(&before);
    eprintln!(
        "one delivery per message: {} items, {} write units (table and index)",
        used.dynamo_items_written, used.dynamo_write_units
    );
    assert_eq!(used.dynamo_items_written, u64::from(APPENDS) + 1);
    let reader = resume_state_over(&h, &[], Arc::new(RecordingMail::default())).await;
    let (recent, _) = reader.history.recent_events(&conv, 20).await.unwrap();
    assert_eq!(recent.len(), 1);
    let full: String = (1..=APPENDS).map(token).collect();
    assert_eq!(recent[0].payload.to_value()["text"], full.as_str());
}
