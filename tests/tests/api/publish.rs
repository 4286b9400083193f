//! `POST /api/ably/publish` through the real handler, with Ably replaced by wiremock
//! (exact requests asserted) and rate limits over the real Redis.

use std::time::{Duration, Instant};

use base64::Engine;
use chat_core::ably::{AblyClient, FallbackHosts, RetryPolicy};
use chat_core::handlers::publish::{handle, PublishState};
use lambda_http::{Body, Response};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request as MockRequest, ResponseTemplate};

use crate::helpers::{api_request, bearer, body_json, closed_port, session_token, stack_var};
use crate::helpers::{publish_state_with, quick_retries};

const PATH: &str = "/channels/conversation%3Aconv-1/messages";

/// The publish function with Ably at `server`, three attempts and quick retries.
fn state_for(server: &MockServer, overrides: &[(&str, &str)]) -> PublishState {
    publish_state_with(&server.uri(), overrides, |config| {
        AblyClient::new(&config.ably).with_retry_policy(RetryPolicy {
            max_attempts: 3,
            ..quick_retries()
        })
    })
}

async fn publish(state: &PublishState, token: &str, body: &Value) -> Response<Body> {
    let auth = format!("Bearer {token}");
    let req = api_request(
        "POST",
        "/api/ably/publish",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(&body.to_string()),
    );
    handle(state, req).await
}

fn basic_auth() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(stack_var("ABLY_API_KEY"))
    )
}

fn ok_response() -> ResponseTemplate {
    ResponseTemplate::new(201)
        .set_body_json(json!({"channel": "conversation:conv-1", "messageId": "x"}))
}

fn sent_bodies(requests: &[MockRequest]) -> Vec<Value> {
    requests
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn ably_receives_the_exact_request_and_the_caller_a_receipt() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .and(header("authorization", basic_auth().as_str()))
        .and(header("content-type", "application/json"))
        .respond_with(ok_response())
        .expect(1)
        .mount(&server)
        .await;
    let state = state_for(&server, &[]);
    let token = bearer("u-1", "customer", &["conv-1"]);
    let res = publish(
        &state,
        &token,
        &json!({"channelName": "conversation:conv-1", "eventName": "message:user", "data": {"text": "hi"}, "idempotencyKey": "k-1"}),
    )
    .await;
    assert_eq!(res.status(), 200, "{:?}", body_json(&res));
    let receipt = body_json(&res);
    assert_eq!(receipt["success"], true);
    assert_eq!(receipt["channelName"], "conversation:conv-1");
    let message_id = receipt["messageId"].as_str().unwrap().to_owned();
    assert!(message_id.ends_with(":0"), "{message_id}");
    assert!(receipt["timestamp"].as_str().unwrap().ends_with('Z'));

    let requests = server.received_requests().await.unwrap();
    let body = &sent_bodies(&requests)[0];
    assert_eq!(
        body,
        &json!({"name": "message:user", "data": {"text": "hi"}, "id": message_id, "clientId": "customer:u-1"})
    );
}

#[tokio::test]
async fn the_same_idempotency_key_gives_the_same_id_and_attempts_reuse_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .respond_with(ok_response())
        .mount(&server)
        .await;
    let state = state_for(&server, &[]);
    let token = bearer("u-2", "customer", &["conv-1"]);
    let body = json!({"channelName": "conversation:conv-1", "eventName": "message:user", "data": "x", "idempotencyKey": "same"});
    let first = publish(&state, &token, &body).await;
    assert_eq!(first.status(), 200, "{:?}", body_json(&first));
    let second = publish(&state, &token, &body).await;
    assert_eq!(
        body_json(&first)["messageId"],
        body_json(&second)["messageId"]
    );
    let other = publish(&state, &token, &json!({"channelName": "conversation:conv-1", "eventName": "message:user", "data": "x", "idempotencyKey": "other"})).await;
    assert_ne!(
        body_json(&first)["messageId"],
        body_json(&other)["messageId"]
    );
    let no_key =
        json!({"channelName": "conversation:conv-1", "eventName": "message:user", "data": "x"});
    let (a, b) = (
        publish(&state, &token, &no_key).await,
        publish(&state, &token, &no_key).await,
    );
    assert_ne!(body_json(&a)["messageId"], body_json(&b)["messageId"]);

    // Two 503s then success: three attempts for the first request, all with one id.
    let requests = server.received_requests().await.unwrap();
    let ids: Vec<Value> = sent_bodies(&requests)
        .iter()
        .map(|b| b["id"].clone())
        .collect();
    assert_eq!(ids.len(), 3 + 1 + 1 + 2);
    assert!(
        ids[..4]
            .iter()
            .all(|id| *id == body_json(&first)["messageId"]),
        "{ids:?}"
    );
}

#[tokio::test]
async fn server_errors_and_timeouts_are_retried_then_succeed() {
    for failure in [
        ResponseTemplate::new(500),
        ResponseTemplate::new(503),
        ResponseTemplate::new(201).set_delay(Duration::from_secs(3)),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(PATH))
            .respond_with(failure)
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(PATH))
            .respond_with(ok_response())
            .expect(1)
            .mount(&server)
            .await;
        // An attempt slower than 500 ms counts as a timeout.
        let state = publish_state_with(&server.uri(), &[], |config| {
            AblyClient::new(&config.ably).with_retry_policy(RetryPolicy {
                request_timeout: Duration::from_millis(500),
                ..quick_retries()
            })
        });
        let res = publish(&state, &bearer("u-3", "customer", &["conv-1"]), &json!({"channelName": "conversation:conv-1", "eventName": "typing:start", "data": null})).await;
        assert_eq!(res.status(), 200, "{:?}", body_json(&res));
        server.verify().await;
    }
}

#[tokio::test]
async fn client_errors_are_not_retried_and_answer_502() {
    for status in [400u16, 404] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(PATH))
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({"error": {"code": 40000 + u32::from(status % 100), "statusCode": status, "message": "nope", "href": "https://help.ably.io/error/40000"}})))
            .expect(1)
            .mount(&server)
            .await;
        let state = state_for(&server, &[]);
        let res = publish(
            &state,
            &bearer("u-4", "customer", &["conv-1"]),
            &json!({"channelName": "conversation:conv-1", "eventName": "read", "data": {}}),
        )
        .await;
        assert_eq!(res.status(), 502);
        assert_eq!(body_json(&res)["code"], "ably_rejected");
        server.verify().await;
    }
}

#[tokio::test]
async fn persistent_503_is_503_within_the_time_bound() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    let state = state_for(&server, &[]);
    let started = Instant::now();
    let res = publish(
        &state,
        &bearer("u-5", "customer", &["conv-1"]),
        &json!({"channelName": "conversation:conv-1", "eventName": "read", "data": {}}),
    )
    .await;
    assert_eq!(res.status(), 503);
    assert_eq!(body_json(&res)["code"], "ably_unavailable");
    // The budget without a Lambda deadline is 10 s.
    assert!(started.elapsed() < Duration::from_secs(11));
    server.verify().await;
}

#[tokio::test]
async fn ownership_and_event_rules() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok_response())
        .mount(&server)
        .await;
    let state = state_for(&server, &[]);
    let customer = bearer("u-6", "customer", &["conv-6"]);
    let broker = bearer("b-1", "broker", &[]);
    let admin = bearer("a-1", "admin", &[]);
    let service = bearer("s-1", "service", &[]);
    let session = session_token("conv-7");
    let cases: Vec<(&str, &str, &str, u16)> = vec![
        // Own channels.
        (&customer, "conversation:conv-6", "message:user", 200),
        (&customer, "sms:u-6:contact-1", "message", 200),
        (&customer, "contacts:u-6", "update", 200),
        (
            &customer,
            "notifications:u-6",
            "phone_number_assignment",
            200,
        ),
        // Another user's channels.
        (&customer, "conversation:conv-9", "message:user", 403),
        (&customer, "sms:u-9:contact-1", "message", 403),
        (&customer, "contacts:u-9", "update", 403),
        (&customer, "notifications:u-9", "update", 403),
        // Staff-only events.
        (&customer, "conversation:conv-6", "message:ai", 403),
        (&customer, "conversation:conv-6", "sla:warning", 403),
        (&customer, "conversation:conv-6", "sla:violation", 403),
        (&customer, "conversation:conv-6", "agent_joined", 403),
        (&broker, "conversation:any-conv", "message:ai", 200),
        (&broker, "sms:u-9:contact-1", "message", 403),
        (&service, "conversation:conv-6", "sla:violation", 200),
        (&service, "notifications:u-9", "update", 200),
        (&admin, "contacts:u-9", "update", 200),
        // Events a channel does not accept.
        (&customer, "conversation:conv-6", "message", 400),
        // Malformed channel names and injected ids.
        (&customer, "conversation:*", "message:user", 400),
        (&customer, "conversation:a:b", "message:user", 400),
        (&customer, "conversation:[x]", "message:user", 400),
        (&customer, "sms:u-6", "message", 400),
        (&customer, "unknown:u-6", "update", 400),
        (&customer, "", "update", 400),
    ];
    for (token, channel, event, expected) in &cases {
        let res = publish(
            &state,
            token,
            &json!({"channelName": channel, "eventName": event, "data": {"t": 1}}),
        )
        .await;
        assert_eq!(
            res.status(),
            *expected,
            "{channel} {event}: {:?}",
            body_json(&res)
        );
        if *expected != 200 {
            assert!(body_json(&res)["requestId"].is_string());
        }
    }
    // A session publishes in its own conversation only.
    let cookie = format!("__Host-chat_session={session}");
    for (channel, expected) in [("conversation:conv-7", 200), ("conversation:conv-6", 403)] {
        let body =
            json!({"channelName": channel, "eventName": "message:user", "data": "hi"}).to_string();
        let req = api_request(
            "POST",
            "/api/ably/publish",
            &[("cookie", &cookie)],
            Some(&body),
        );
        assert_eq!(handle(&state, req).await.status(), expected, "{channel}");
    }
    let received = server.received_requests().await.unwrap().len();
    assert_eq!(
        received,
        cases.iter().filter(|c| c.3 == 200).count() + 1,
        "refused requests never reach Ably"
    );
}

#[tokio::test]
async fn bad_bodies_oversize_data_and_no_identity() {
    let server = MockServer::start().await;
    let state = state_for(&server, &[]);
    let token = bearer("u-7", "customer", &["conv-1"]);
    let auth = format!("Bearer {token}");
    for (body, expected, code) in [
        ("not json", 400, "invalid_json"),
        ("{}", 400, "invalid_body"),
        (
            r#"{"channelName":"conversation:conv-1","eventName":"read"}"#,
            400,
            "invalid_body",
        ),
        (
            r#"{"channelName":"conversation:conv-1","eventName":"","data":1}"#,
            400,
            "invalid_event",
        ),
        (
            r#"{"channelName":"conversation:conv-1","eventName":"read","data":1,"idempotencyKey":""}"#,
            400,
            "invalid_idempotency_key",
        ),
    ] {
        let req = api_request(
            "POST",
            "/api/ably/publish",
            &[("authorization", &auth)],
            Some(body),
        );
        let res = handle(&state, req).await;
        assert_eq!(res.status(), expected, "{body}");
        assert_eq!(body_json(&res)["code"], code, "{body}");
    }
    let big = json!({"channelName": "conversation:conv-1", "eventName": "message:user", "data": "x".repeat(64 * 1024)});
    let res = publish(&state, &token, &big).await;
    assert_eq!(res.status(), 413);
    assert_eq!(body_json(&res)["code"], "data_too_large");
    let req = api_request(
        "POST",
        "/api/ably/publish",
        &[],
        Some(r#"{"channelName":"conversation:conv-1","eventName":"read","data":1}"#),
    );
    assert_eq!(handle(&state, req).await.status(), 401);
    assert_eq!(server.received_requests().await.unwrap().len(), 0);
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after_and_fails_open_without_redis() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok_response())
        .mount(&server)
        .await;
    let state = state_for(&server, &[("RATE_LIMIT_PUBLISH_MAX", "3")]);
    let token = bearer("u-8", "customer", &["conv-1"]);
    let body =
        json!({"channelName": "conversation:conv-1", "eventName": "typing:stop", "data": null});
    for _ in 0..3 {
        assert_eq!(publish(&state, &token, &body).await.status(), 200);
    }
    let limited = publish(&state, &token, &body).await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = crate::helpers::header(&limited, "retry-after")
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));

    let down = format!("http://127.0.0.1:{}", closed_port());
    let open = state_for(
        &server,
        &[
            ("RATE_LIMIT_PUBLISH_MAX", "1"),
            ("UPSTASH_REDIS_REST_URL", down.as_str()),
        ],
    );
    for _ in 0..3 {
        assert_eq!(
            publish(&open, &token, &body).await.status(),
            200,
            "publish fails open"
        );
    }
}

#[tokio::test]
async fn retries_go_to_fallback_hosts_only_for_the_default_endpoint() {
    let primary = MockServer::start().await;
    let fallback = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&primary)
        .await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .respond_with(ok_response())
        .expect(1)
        .mount(&fallback)
        .await;
    let uri = primary.uri();
    let state = publish_state_with(&uri, &[], |config| {
        AblyClient::new(&config.ably)
            .with_fallback_hosts(FallbackHosts {
                // The configured URL counts as "the default", so its retries may fall back.
                default_rest_url: uri.clone(),
                urls: vec![fallback.uri()],
            })
            .with_retry_policy(quick_retries())
    });
    let res = publish(
        &state,
        &bearer("u-9", "customer", &["conv-1"]),
        &json!({"channelName": "conversation:conv-1", "eventName": "read", "data": 1}),
    )
    .await;
    assert_eq!(res.status(), 200);
    primary.verify().await;
    fallback.verify().await;
}

#[tokio::test]
async fn a_session_publish_from_another_origin_is_refused_before_ably_sees_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .respond_with(ok_response())
        .expect(1)
        .mount(&server)
        .await;
    let state = state_for(&server, &[]);
    let cookie = format!("__Host-chat_session={}", session_token("conv-1"));
    let body =
        json!({"channelName": "conversation:conv-1", "eventName": "typing:start", "data": null})
            .to_string();
    let send = |origin: &'static str| {
        let req = api_request(
            "POST",
            "/api/ably/publish",
            &[
                ("cookie", cookie.as_str()),
                ("content-type", "text/plain"),
                ("origin", origin),
            ],
            Some(&body),
        );
        handle(&state, req)
    };
    let refused = send("https://evil.example").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(body_json(&refused)["code"], json!("origin_forbidden"));
    assert_eq!(send("http://localhost:3000").await.status(), 200);
    server.verify().await;
}
