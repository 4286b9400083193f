//! The worker helpers, Ably's clock and channel status.

use std::time::{Duration, Instant};

use chat_core::ably::{message_id_base, AblyError, AiTiming, SlaLevel};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

#[tokio::test]
async fn worker_helpers_publish_ai_messages_and_sla_events() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/channels/conversation%3Aconv-9/messages"))
        .and(header("authorization", basic_auth().as_str()))
        .respond_with(created())
        .expect(2)
        .mount(&server)
        .await;
    let client = mock_client(&server);

    let ai = client
        .publish_ai_message(
            "conv-9",
            "Here is your answer",
            AiTiming {
                ai_duration_ms: 1234,
                queue_duration_ms: 56,
            },
            Some("job-7"),
            ten_seconds_from_now(),
        )
        .await
        .expect("published");
    let sla = client
        .publish_sla(
            "conv-9",
            SlaLevel::Violation,
            &json!({"thresholdMs": 30000, "waitedMs": 45000}),
            None,
            ten_seconds_from_now(),
        )
        .await
        .expect("published");

    assert_eq!(ai.channel, "conversation:conv-9");
    let bodies = sent_bodies(&server.received_requests().await.expect("recording"));
    assert_eq!(
        bodies[0],
        json!({
            // The key is scoped by channel: the same job key on another conversation is
            // another message.
            "id": format!(
                "{}:0",
                message_id_base(Some("conversation:conv-9\njob-7"))
            ),
            "name": "message:ai",
            "data": {
                "text": "Here is your answer",
                "timing": {"ai_duration_ms": 1234, "queue_duration_ms": 56}
            }
        })
    );
    assert_eq!(
        bodies[1],
        json!({
            "id": sla.message_ids[0],
            "name": "sla:violation",
            "data": {"thresholdMs": 30000, "waitedMs": 45000}
        })
    );

    let err = client
        .publish_sla(
            "conv:*",
            SlaLevel::Warning,
            &json!({}),
            None,
            ten_seconds_from_now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AblyError::InvalidRequest(_)), "{err:?}");
    server.verify().await;
}

#[tokio::test]
async fn time_reads_ablys_clock() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/time"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1_700_000_000_123_i64])))
        .expect(1)
        .mount(&server)
        .await;

    let ms = mock_client(&server)
        .time(Duration::from_secs(1))
        .await
        .expect("time");

    assert_eq!(ms, 1_700_000_000_123);
    server.verify().await;
}

#[tokio::test]
async fn time_is_one_attempt_within_its_timeout() {
    let slow = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/time"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .expect(1)
        .mount(&slow)
        .await;
    let started = Instant::now();
    let err = mock_client(&slow)
        .time(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(err, AblyError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(1));
    slow.verify().await;

    let down = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/time"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&down)
        .await;
    let err = mock_client(&down)
        .time(Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AblyError::Unavailable { attempts: 1, .. }),
        "{err:?}"
    );
    down.verify().await;

    let odd = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/time"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>captive portal</html>"))
        .mount(&odd)
        .await;
    let err = mock_client(&odd)
        .time(Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, AblyError::InvalidResponse(_)), "{err:?}");
}

#[tokio::test]
async fn channel_status_parses_occupancy_and_keeps_unknown_metrics() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/channels/conversation%3Aconv-1"))
        .and(header("authorization", basic_auth().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "channelId": ABLY_CHANNEL,
            "status": {
                "isActive": true,
                "occupancy": {
                    "metrics": {
                        "connections": 3,
                        "publishers": 2,
                        "subscribers": 3,
                        "presenceConnections": 1,
                        "presenceMembers": 1,
                        "presenceSubscribers": 2,
                        "objectPublishers": 0,
                        "objectSubscribers": 1
                    }
                }
            }
        })))
        .expect(1)
        .mount(&server)
        .await;

    let status = mock_client(&server)
        .channel_status(ABLY_CHANNEL, Duration::from_secs(1))
        .await
        .expect("status");

    assert_eq!(status.channel_id, ABLY_CHANNEL);
    assert!(status.status.is_active);
    let metrics = &status.status.occupancy.metrics;
    assert_eq!(
        (
            metrics.connections,
            metrics.publishers,
            metrics.subscribers,
            metrics.presence_connections,
            metrics.presence_members,
            metrics.presence_subscribers
        ),
        (3, 2, 3, 1, 1, 2)
    );
    assert_eq!(metrics.other.get("objectSubscribers"), Some(&json!(1)));
    assert_eq!(
        serde_json::to_value(metrics).expect("serialise")["objectPublishers"],
        json!(0),
        "unknown metrics are passed on"
    );
    server.verify().await;
}

#[tokio::test]
async fn channel_status_of_an_inactive_channel_and_a_refused_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/channels/conversation%3Aquiet"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"channelId": "conversation:quiet"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/channels/conversation%3Aconv-1"))
        .respond_with(ably_error(401, 40140, "Token expired"))
        .expect(1)
        .mount(&server)
        .await;
    let client = mock_client(&server);

    let quiet = client
        .channel_status("conversation:quiet", Duration::from_secs(1))
        .await
        .expect("status");
    assert!(!quiet.status.is_active);
    assert_eq!(quiet.status.occupancy.metrics.connections, 0);

    let err = client
        .channel_status(ABLY_CHANNEL, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(err.is_configuration(), "{err:?}");
    assert_eq!(err.ably_code(), Some(40140));
    server.verify().await;
}
