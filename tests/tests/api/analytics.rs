//! Analytics maintained by `ably-events` and read back in one pipeline, checked against
//! figures computed here independently from the events sent.

use chat_core::storage::analytics;
use chat_core::storage::Keys;
use serde_json::{json, Value};

use crate::helpers::EventsApp;

/// Nearest-rank percentile, written independently of the product's.
fn expected_percentile(values: &[f64], p: usize) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = (p * v.len()).div_ceil(100);
    v[rank - 1]
}

#[tokio::test]
async fn analytics_equal_what_the_sent_events_imply() {
    let h = EventsApp::new().await;
    let ai: Vec<f64> = (0..37)
        .map(|i| f64::from((i * 7919) % 5000 + 100))
        .collect();
    let queue: Vec<f64> = (0..37)
        .map(|i| f64::from((i * 104_729) % 900 + 5))
        .collect();
    let mut items: Vec<Value> = Vec::new();
    for (i, (a, q)) in ai.iter().zip(&queue).enumerate() {
        items.push(json!({"id": format!("ai-{i}"), "name": "message:ai", "channel": format!("conversation:an-{}", i % 4),
                          "timestamp": 1_700_000_000_000i64 + i as i64,
                          "data": {"text": "answer", "timing": {"ai_duration_ms": a, "queue_duration_ms": q}}}));
    }
    for i in 0..3 {
        items.push(json!({"id": format!("w-{i}"), "name": "sla:warning", "channel": "conversation:an-9", "timestamp": 1, "data": {}}));
    }
    items.push(json!({"id": "v-0", "name": "sla:violation", "channel": "conversation:an-9", "timestamp": 1, "data": {}}));
    items.push(json!({"id": "u-0", "name": "message", "channel": "sms:u1:c1", "timestamp": 1, "data": {"text": "hi"}}));
    let body = json!({"items": items}).to_string();
    assert_eq!(h.post(body.as_bytes()).await.status(), 200);
    // A redelivery must not count twice.
    assert_eq!(h.post(body.as_bytes()).await.status(), 200);

    let keys = Keys::new(h.prefix.clone());
    let now = chrono::Utc::now().timestamp_millis();
    let a = analytics::read(&h.redis, &keys, now).await.unwrap();
    assert_eq!(a.active_conversations, 6, "an-0..an-3, an-9 and sms:u1:c1");
    assert_eq!(a.events_mirrored, 37 + 3 + 1 + 1);
    assert_eq!(a.sla_warnings, 3);
    assert_eq!(a.sla_violations, 1);
    assert_eq!(a.ai_duration_ms.samples, 37);
    assert_eq!(a.ai_duration_ms.p50, Some(expected_percentile(&ai, 50)));
    assert_eq!(a.ai_duration_ms.p95, Some(expected_percentile(&ai, 95)));
    assert_eq!(
        a.queue_duration_ms.p50,
        Some(expected_percentile(&queue, 50))
    );
    assert_eq!(
        a.queue_duration_ms.p95,
        Some(expected_percentile(&queue, 95))
    );

    // An hour later, nothing of this is in the window.
    let later = analytics::read(&h.redis, &keys, now + 61 * 60 * 1000)
        .await
        .unwrap();
    assert_eq!(later.active_conversations, 0);
    assert_eq!(later.events_mirrored, 0);
    assert_eq!(later.ai_duration_ms.samples, 0);
    assert_eq!(later.ai_duration_ms.p50, None);
}

#[tokio::test]
async fn forged_staff_events_are_stored_untrusted_and_never_counted() {
    let h = EventsApp::new().await;
    let now = chrono::Utc::now().timestamp_millis();
    let body = crate::helpers::forged_and_genuine("an-forged", now - 1000);
    let response = h.post(&body).await;
    assert_eq!(response.status(), 200);

    // Stored, as the record of what happened, and marked.
    let (forged, genuine) = crate::helpers::forged_ids("an-forged");
    for item in h.chat_items().await {
        let id = crate::helpers::s(&item, "id");
        let trusted = item["trusted"].as_bool().copied();
        assert_eq!(trusted, Ok(genuine.contains(&id)), "{id}");
        assert!(forged.contains(&id) || genuine.contains(&id));
    }
    // Counted: the two genuine AI replies (100 and 200 ms), the broker's SLA violation,
    // and the four genuine events; none of the customer's forgeries.
    let a = analytics::read(&h.redis, &Keys::new(h.prefix.clone()), now)
        .await
        .unwrap();
    assert_eq!(a.ai_duration_ms.samples, 2);
    assert_eq!(a.ai_duration_ms.p50, Some(100.0));
    assert_eq!(a.ai_duration_ms.p95, Some(200.0));
    assert_eq!(a.queue_duration_ms.p95, Some(200.0));
    assert_eq!(a.sla_violations, 1);
    assert_eq!(a.events_mirrored, 4);
    assert_eq!(a.active_conversations, 1);
}
