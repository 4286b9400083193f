//! Publishing: the exact request, its ids, retries, deadlines and fallback hosts.

use std::time::{Duration, Instant};

use chat_core::ably::config::DEFAULT_ABLY_REST_URL;
use chat_core::ably::{
    message_id_base, AblyClient, AblyError, AttemptFailure, FallbackHosts, OutboundMessage,
    RetryPolicy,
};
use chat_core::ApiError;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::closed_port;
use crate::helpers::SECRET;
use crate::helpers::*;

#[tokio::test]
async fn publish_sends_exactly_the_request_ably_expects() {
    let server = MockServer::start().await;
    let base = message_id_base(Some("request-1"));
    let expected = json!({
        "id": format!("{base}:0"),
        "name": "message:user",
        "data": {"text": "hello", "nested": [1, 2, {"k": null}]},
        "clientId": "user-1",
        "extras": {"headers": {"source": "api"}}
    });
    Mock::given(method("POST"))
        .and(path(PUBLISH_PATH))
        .and(header("authorization", basic_auth().as_str()))
        .and(header("content-type", "application/json"))
        .and(body_json(&expected))
        .respond_with(created())
        .expect(1)
        .mount(&server)
        .await;

    let data = json!({"text": "hello", "nested": [1, 2, {"k": null}]});
    let extras = json!({"headers": {"source": "api"}});
    let message = OutboundMessage::new("message:user", &data)
        .with_client_id("user-1")
        .with_extras(&extras);
    let receipt = mock_client(&server)
        .publish_with_id_base(ABLY_CHANNEL, &base, &[message], ten_seconds_from_now())
        .await
        .expect("published");

    assert_eq!(receipt.channel, ABLY_CHANNEL);
    assert_eq!(receipt.message_ids, [format!("{base}:0")]);
    assert_eq!(receipt.attempts, 1);
    let requests = server.received_requests().await.expect("recording");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].url.path(), PUBLISH_PATH);
    assert_eq!(requests[0].url.query(), None);
    server.verify().await;
}

#[tokio::test]
async fn several_messages_are_one_array_with_indexed_ids() {
    let server = MockServer::start().await;
    publish_mock(created()).expect(1).mount(&server).await;
    let (a, b) = (json!(1), json!({"x": "y"}));
    let receipt = mock_client(&server)
        .publish_with_id_base(
            ABLY_CHANNEL,
            "batch",
            &[
                OutboundMessage::new("typing:start", &a),
                OutboundMessage::new("typing:stop", &b),
            ],
            ten_seconds_from_now(),
        )
        .await
        .expect("published");
    assert_eq!(receipt.message_ids, ["batch:0", "batch:1"]);
    let requests = server.received_requests().await.expect("recording");
    assert_eq!(
        sent_bodies(&requests),
        [json!([
            {"id": "batch:0", "name": "typing:start", "data": 1},
            {"id": "batch:1", "name": "typing:stop", "data": {"x": "y"}}
        ])]
    );
}

#[tokio::test]
async fn idempotency_keys_decide_the_message_ids() {
    let server = MockServer::start().await;
    publish_mock(created()).expect(6).mount(&server).await;
    let client = mock_client(&server);

    for key in [Some("key-a"), Some("key-a"), Some("key-b"), None, None] {
        publish_one(&client, key).await.expect("published");
    }
    let random = client
        .publish(
            ABLY_CHANNEL,
            &[OutboundMessage::new("read", &json!(null))],
            ten_seconds_from_now(),
        )
        .await
        .expect("published");

    let ids = sent_ids(&server.received_requests().await.expect("recording"));
    let base = |key| format!("{}:0", message_id_base(Some(key)));
    assert_eq!(ids[0], base("key-a"));
    assert_eq!(ids[1], base("key-a"), "the same key gives the same id");
    assert_eq!(ids[2], base("key-b"));
    assert_ne!(ids[0], ids[2], "different keys give different ids");
    assert_ne!(ids[3], ids[4], "no key gives a fresh random id");
    assert_eq!(ids[5], random.message_ids[0]);
    for id in &ids {
        let (base, index) = id.rsplit_once(':').expect("<base>:<index>");
        assert_eq!(index, "0");
        assert_eq!(base.len(), 22, "{id}");
        assert!(!id.contains("key-"), "the key's text never leaks: {id}");
    }
    server.verify().await;
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_ids() {
    for failures in [
        vec![ably_error(503, 50300, "Service unavailable")],
        vec![ResponseTemplate::new(500).set_body_string("<html>oops</html>")],
        vec![
            ResponseTemplate::new(502),
            ably_error(504, 50400, "Timeout"),
        ],
    ] {
        let server = MockServer::start().await;
        let failed = failures.len();
        for failure in failures {
            publish_mock(failure)
                .up_to_n_times(1)
                .expect(1)
                .mount(&server)
                .await;
        }
        publish_mock(created()).expect(1).mount(&server).await;

        let receipt = publish_one(&mock_client(&server), Some("retry-me"))
            .await
            .expect("published after retrying");

        assert_eq!(receipt.attempts as usize, failed + 1);
        let ids = sent_ids(&server.received_requests().await.expect("recording"));
        assert_eq!(ids.len(), failed + 1);
        let expected = format!("{}:0", message_id_base(Some("retry-me")));
        assert!(ids.iter().all(|id| *id == expected), "{ids:?}");
        server.verify().await;
    }
}

#[tokio::test]
async fn a_timed_out_attempt_is_retried_with_the_same_id() {
    let server = MockServer::start().await;
    publish_mock(created().set_delay(Duration::from_secs(3)))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    publish_mock(created()).expect(1).mount(&server).await;
    let client = AblyClient::new(&ably_config(&server.uri())).with_retry_policy(RetryPolicy {
        request_timeout: Duration::from_millis(300),
        ..fast_policy()
    });

    let started = Instant::now();
    let receipt = publish_one(&client, Some("slow")).await.expect("published");

    assert_eq!(receipt.attempts, 2);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the slow attempt was cut at its timeout"
    );
    let ids = sent_ids(&server.received_requests().await.expect("recording"));
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    server.verify().await;
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for (status, code, message) in [
        (400, 40003, "Invalid channel name"),
        (404, 40400, "Not found"),
        (429, 42910, "Rate limit exceeded"),
    ] {
        let server = MockServer::start().await;
        publish_mock(ably_error(status, code, message))
            .expect(1)
            .mount(&server)
            .await;

        let err = publish_one(&mock_client(&server), Some("k"))
            .await
            .unwrap_err();

        assert_eq!(
            err,
            AblyError::Rejected {
                status,
                code: Some(code),
                message: Some(message.to_owned()),
            }
        );
        assert!(!err.is_configuration() && !err.is_transient());
        let api = ApiError::from(err);
        assert_eq!((api.status().as_u16(), api.code()), (502, "ably_rejected"));
        server.verify().await;
    }
}

#[tokio::test]
async fn a_refused_key_is_a_configuration_error_and_not_retried() {
    for (status, code) in [(401, 40140), (401, 40101), (403, 40160)] {
        let server = MockServer::start().await;
        publish_mock(ably_error(status, code, "Key problem"))
            .expect(1)
            .mount(&server)
            .await;

        let err = publish_one(&mock_client(&server), None).await.unwrap_err();

        assert!(err.is_configuration(), "{err:?}");
        assert_eq!(err.ably_code(), Some(code));
        assert!(!err.to_string().contains(SECRET));
        let api = ApiError::from(err);
        assert_eq!(
            (api.status().as_u16(), api.code()),
            (502, "ably_auth_failed")
        );
        server.verify().await;
    }
}

#[tokio::test]
async fn persistent_unavailability_gives_up_after_three_attempts_within_the_deadline() {
    let server = MockServer::start().await;
    publish_mock(ably_error(503, 50300, "Unavailable").set_delay(Duration::from_millis(150)))
        .expect(3)
        .mount(&server)
        .await;
    // Short backoffs: a fourth attempt would fit in the budget, so only the limit stops it.
    let deadline_in = Duration::from_millis(1500);

    let started = Instant::now();
    let data = json!("x");
    let err = mock_client(&server)
        .publish(
            ABLY_CHANNEL,
            &[OutboundMessage::new("read", &data)],
            started + deadline_in,
        )
        .await
        .unwrap_err();
    let elapsed = started.elapsed();

    assert_eq!(
        err,
        AblyError::Unavailable {
            attempts: 3,
            last: AttemptFailure::Status {
                status: 503,
                code: Some(50300),
                message: Some("Unavailable".to_owned()),
            },
        }
    );
    assert!(
        elapsed < deadline_in + Duration::from_millis(200),
        "{elapsed:?}"
    );
    let api = ApiError::from(err);
    assert_eq!(
        (api.status().as_u16(), api.code()),
        (503, "ably_unavailable")
    );
    let ids = sent_ids(&server.received_requests().await.expect("recording"));
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    server.verify().await;
}

#[tokio::test]
async fn the_deadline_bounds_every_attempt() {
    let server = MockServer::start().await;
    // Slower than the whole budget: the one attempt is cut at deadline - margin (1 s).
    publish_mock(created().set_delay(Duration::from_secs(5)))
        .expect(1)
        .mount(&server)
        .await;
    let deadline_in = Duration::from_millis(1500);

    let started = Instant::now();
    let err = AblyClient::new(&ably_config(&server.uri()))
        .publish(
            ABLY_CHANNEL,
            &[OutboundMessage::new("read", &json!(1))],
            started + deadline_in,
        )
        .await
        .unwrap_err();
    let elapsed = started.elapsed();

    assert_eq!(
        err,
        AblyError::Unavailable {
            attempts: 1,
            last: AttemptFailure::Timeout
        }
    );
    assert!(
        elapsed < deadline_in + Duration::from_millis(200),
        "{elapsed:?}"
    );
    server.verify().await;
}

#[tokio::test]
async fn no_attempt_once_the_deadline_has_passed() {
    let server = MockServer::start().await;
    publish_mock(created()).expect(0).mount(&server).await;

    let err = AblyClient::new(&ably_config(&server.uri()))
        .publish(
            ABLY_CHANNEL,
            &[OutboundMessage::new("read", &json!(1))],
            Instant::now() + Duration::from_millis(400), // inside the 500 ms margin
        )
        .await
        .unwrap_err();

    assert_eq!(err, AblyError::Timeout);
    assert_eq!(ApiError::from(err).code(), "ably_unavailable");
    server.verify().await;
}

#[tokio::test]
async fn with_the_default_host_a_retry_goes_to_a_fallback_host() {
    let primary = MockServer::start().await;
    let fallback = MockServer::start().await;
    publish_mock(ably_error(503, 50300, "Unavailable"))
        .expect(1)
        .mount(&primary)
        .await;
    Mock::given(method("POST"))
        .and(path(PUBLISH_PATH))
        .and(header("authorization", basic_auth().as_str()))
        .respond_with(created())
        .expect(1)
        .mount(&fallback)
        .await;
    let client = mock_client(&primary).with_fallback_hosts(FallbackHosts {
        default_rest_url: primary.uri(),
        urls: vec![fallback.uri()],
    });
    assert_eq!(client.fallback_urls(), [fallback.uri()]);

    let receipt = publish_one(&client, Some("fallback"))
        .await
        .expect("published");

    assert_eq!(receipt.attempts, 2);
    let first = sent_ids(&primary.received_requests().await.expect("recording"));
    let second = sent_ids(&fallback.received_requests().await.expect("recording"));
    assert_eq!(first, second, "the same id on the fallback host");
    primary.verify().await;
    fallback.verify().await;
}

#[tokio::test]
async fn an_unreachable_default_host_falls_back() {
    let fallback = MockServer::start().await;
    publish_mock(created()).expect(1).mount(&fallback).await;
    let primary = format!("http://127.0.0.1:{}", closed_port());
    let client = AblyClient::new(&ably_config(&primary))
        .with_retry_policy(fast_policy())
        .with_fallback_hosts(FallbackHosts {
            default_rest_url: primary.clone(),
            urls: vec![fallback.uri()],
        });

    let receipt = publish_one(&client, None).await.expect("published");

    assert_eq!(receipt.attempts, 2);
    fallback.verify().await;
}

#[tokio::test]
async fn a_custom_rest_url_never_uses_fallback_hosts() {
    let primary = MockServer::start().await;
    let fallback = MockServer::start().await;
    publish_mock(ably_error(503, 50300, "Unavailable"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&primary)
        .await;
    publish_mock(created()).expect(1).mount(&primary).await;
    publish_mock(created()).expect(0).mount(&fallback).await;
    let client = mock_client(&primary).with_fallback_hosts(FallbackHosts {
        default_rest_url: DEFAULT_ABLY_REST_URL.to_owned(),
        urls: vec![fallback.uri()],
    });
    assert!(client.fallback_urls().is_empty());

    let receipt = publish_one(&client, None).await.expect("published");

    assert_eq!(receipt.attempts, 3);
    primary.verify().await;
    fallback.verify().await;
}
