//! `POST /api/ably/publish` changing a message (`action` `message.update`,
//! `message.delete`, `message.append` with its `serial`) through the real handler, with
//! Ably replaced by wiremock: the `GET` that reads the message and the `PATCH` that
//! changes it are compared with what ably-js 2.x sends for the same change
//! (`tests/fixtures/ably-js/`, recorded by `tests/node/record-message-changes.mjs`).
//!
//! Nothing in these requests is random per call: ably-js gives a `PATCH` no message id
//! (ids are for publishes), and the version's `clientId` is the caller's, fixed here. So
//! method, path, query, content type and body are compared whole.

use std::time::Duration;

use chat_core::ably::{AblyClient, RetryPolicy};
use chat_core::handlers::publish::{handle, PublishState};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    ably_error, api_request, as_recorded, bearer, body_json, post_publish, publish_state_with,
    quick_retries, recorded_ably_js, session_token, stored_message, RECORDED_SERIAL,
    RECORDED_VERSION_SERIAL,
};

const CHANNEL: &str = "conversation:conv-1";
const MESSAGE_PATH: &str =
    "/channels/conversation%3Aconv-1/messages/01726232498871-001%40e8FcVjXqBAmH3q%3A001";

enum Caller {
    Bearer(String),
    Session(String),
}

fn state_for(server: &MockServer) -> PublishState {
    publish_state_with(&server.uri(), &[], |config| {
        AblyClient::new(&config.ably).with_retry_policy(RetryPolicy {
            max_attempts: 3,
            ..quick_retries()
        })
    })
}

/// Ably holding the recorded message, published by `publisher` as `name`; a `PATCH`
/// answered with the recorded version serial, expected `patches` times.
async fn ably_with_message(publisher: Option<&str>, name: &str, patches: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGE_PATH))
        .respond_with(stored_message(publisher, name))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(MESSAGE_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"versionSerial": RECORDED_VERSION_SERIAL})),
        )
        .expect(patches)
        .mount(&server)
        .await;
    server
}

/// The requests Ably received, each in the fixture's shape, by method.
async fn received(server: &MockServer, verb: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == verb)
        .map(as_recorded)
        .collect()
}

fn change(action: &str, extra: Value) -> Value {
    let mut body = json!({"channelName": CHANNEL, "action": action, "serial": RECORDED_SERIAL});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// Sends `body` as `token`; asserts the change answer and that Ably saw ably-js's `GET`
/// and `PATCH` (the fixture `patch`).
async fn assert_changed_as_ably_js(server: &MockServer, token: &str, body: Value, patch: &str) {
    let res = post_publish(&state_for(server), token, &body).await;
    assert_eq!(res.status(), 200, "{:?}", body_json(&res));
    let answer = body_json(&res);
    assert_eq!(answer["success"], true);
    assert_eq!(answer["channelName"], CHANNEL);
    assert_eq!(answer["action"], body["action"]);
    assert_eq!(answer["serial"], RECORDED_SERIAL);
    assert_eq!(answer["versionSerial"], RECORDED_VERSION_SERIAL);
    assert!(answer["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(answer.get("messageId").is_none(), "{answer}");
    assert_eq!(received(server, "GET").await, [recorded_ably_js("get")]);
    assert_eq!(received(server, "PATCH").await, [recorded_ably_js(patch)]);
    server.verify().await;
}

#[tokio::test]
async fn an_update_by_its_publisher_is_sent_as_ably_js_sends_it() {
    let server = ably_with_message(Some("customer:u-1"), "message:user", 1).await;
    let body = change(
        "message.update",
        json!({"eventName": "message:user", "data": {"text": "hello, edited"},
               "description": "typo", "metadata": {"reason": "spelling"}}),
    );
    let customer = bearer("u-1", "customer", &["conv-1"]);
    assert_changed_as_ably_js(&server, &customer, body, "patch-update").await;
}

#[tokio::test]
async fn an_admin_deletes_a_customers_message_as_ably_js_does() {
    let server = ably_with_message(Some("customer:u-1"), "message:user", 1).await;
    let body = change("message.delete", json!({"description": "moderated"}));
    let admin = bearer("a-1", "admin", &[]);
    assert_changed_as_ably_js(&server, &admin, body, "patch-delete").await;
}

#[tokio::test]
async fn a_broker_appends_to_its_own_answer_as_ably_js_does() {
    let server = ably_with_message(Some("broker:b-1"), "message:ai", 1).await;
    let body = change(
        "message.append",
        json!({"eventName": "message:ai", "data": " and more"}),
    );
    let broker = bearer("b-1", "broker", &[]);
    assert_changed_as_ably_js(&server, &broker, body, "patch-append").await;
}

#[tokio::test]
async fn only_the_publisher_or_admin_and_service_may_change_a_message() {
    let update = change(
        "message.update",
        json!({"eventName": "message:user", "data": "x"}),
    );
    let customer = bearer("u-1", "customer", &["conv-1"]);
    // (publisher, its message's name, the caller's bearer JWT or session, the change)
    let cases = [
        // Another broker's answer.
        (
            "broker:b-1",
            "message:ai",
            Caller::Bearer(bearer("b-2", "broker", &[])),
            change("message.append", json!({"data": "x"})),
        ),
        // A broker's message, by the customer of the conversation.
        (
            "broker:b-1",
            "message:user",
            Caller::Bearer(customer.clone()),
            update.clone(),
        ),
        // Another customer's message in the same conversation.
        (
            "customer:u-2",
            "message:user",
            Caller::Bearer(customer.clone()),
            update.clone(),
        ),
        // The customer's message, by the conversation's session (another clientId).
        (
            "customer:u-1",
            "message:user",
            Caller::Session(session_token("conv-1")),
            change("message.delete", json!({})),
        ),
    ];
    for (publisher, name, caller, body) in cases {
        let server = ably_with_message(Some(publisher), name, 0).await;
        let state = state_for(&server);
        let res = match caller {
            Caller::Bearer(token) => post_publish(&state, &token, &body).await,
            Caller::Session(session) => {
                let cookie = format!("__Host-chat_session={session}");
                let req = api_request(
                    "POST",
                    "/api/ably/publish",
                    &[("cookie", &cookie)],
                    Some(&body.to_string()),
                );
                handle(&state, req).await
            }
        };
        assert_eq!(res.status(), 403, "{publisher}: {:?}", body_json(&res));
        assert_eq!(body_json(&res)["code"], "not_message_owner", "{publisher}");
        // The GET happened once, the PATCH never (`expect(0)`).
        server.verify().await;
    }
    // A message published with the API key (no clientId): staff's alone.
    let server = ably_with_message(None, "message:ai", 1).await;
    let res = post_publish(
        &state_for(&server),
        &bearer("s-1", "service", &[]),
        &change("message.delete", json!({})),
    )
    .await;
    assert_eq!(res.status(), 200, "{:?}", body_json(&res));
    server.verify().await;
}

#[tokio::test]
async fn a_change_keeps_the_messages_name_which_the_role_must_be_allowed_to_send() {
    // A customer that published `message:ai` straight to Ably cannot grow it here.
    let server = ably_with_message(Some("customer:u-1"), "message:ai", 0).await;
    let res = post_publish(
        &state_for(&server),
        &bearer("u-1", "customer", &["conv-1"]),
        &change("message.append", json!({"data": " more"})),
    )
    .await;
    assert_eq!(res.status(), 403, "{:?}", body_json(&res));
    assert_eq!(body_json(&res)["code"], "event_forbidden");
    server.verify().await;
    // Deleting it sends nothing of its name: allowed to its publisher.
    let server = ably_with_message(Some("customer:u-1"), "message:ai", 1).await;
    let res = post_publish(
        &state_for(&server),
        &bearer("u-1", "customer", &["conv-1"]),
        &change("message.delete", json!({})),
    )
    .await;
    assert_eq!(res.status(), 200, "{:?}", body_json(&res));
    server.verify().await;
}

#[tokio::test]
async fn an_unknown_serial_is_404_and_nothing_is_changed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGE_PATH))
        .respond_with(ably_error(404, 40400, "message not found"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let res = post_publish(
        &state_for(&server),
        &bearer("a-1", "admin", &[]),
        &change("message.delete", json!({})),
    )
    .await;
    assert_eq!(res.status(), 404, "{:?}", body_json(&res));
    assert_eq!(body_json(&res)["code"], "message_not_found");
    assert!(body_json(&res)["requestId"].is_string());
    server.verify().await;
}

#[tokio::test]
async fn bad_actions_and_serials_are_400_before_ably_is_asked() {
    let server = MockServer::start().await;
    let state = state_for(&server);
    let admin = bearer("a-1", "admin", &[]);
    for (body, code) in [
        (change("message.summary", json!({})), "invalid_action"),
        (change("meta", json!({})), "invalid_action"),
        (change("delete", json!({})), "invalid_action"),
        (
            change("message.delete", json!({"serial": ""})),
            "invalid_serial",
        ),
        (
            change("message.delete", json!({"serial": "s".repeat(257)})),
            "invalid_serial",
        ),
        (
            json!({"channelName": CHANNEL, "action": "message.update", "data": "x"}),
            "invalid_serial",
        ),
        (
            json!({"channelName": CHANNEL, "eventName": "read", "data": 1, "serial": RECORDED_SERIAL}),
            "invalid_serial",
        ),
        (change("message.update", json!({})), "invalid_body"),
        (
            change(
                "message.append",
                json!({"data": "x", "idempotencyKey": "k"}),
            ),
            "invalid_idempotency_key",
        ),
    ] {
        let res = post_publish(&state, &admin, &body).await;
        assert_eq!(res.status(), 400, "{body}");
        assert_eq!(body_json(&res)["code"], code, "{body}");
    }
    let big = change("message.update", json!({"data": "x".repeat(64 * 1024)}));
    assert_eq!(post_publish(&state, &admin, &big).await.status(), 413);
    assert_eq!(server.received_requests().await.unwrap().len(), 0);
}

#[tokio::test]
async fn ably_server_errors_are_retried_for_the_read_and_the_change() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGE_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(MESSAGE_PATH))
        .respond_with(stored_message(Some("customer:u-1"), "message:user"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(MESSAGE_PATH))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(MESSAGE_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"versionSerial": RECORDED_VERSION_SERIAL})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let body = change(
        "message.update",
        json!({"eventName": "message:user", "data": {"text": "hello, edited"},
               "description": "typo", "metadata": {"reason": "spelling"}}),
    );
    let res = post_publish(
        &state_for(&server),
        &bearer("u-1", "customer", &["conv-1"]),
        &body,
    )
    .await;
    assert_eq!(res.status(), 200, "{:?}", body_json(&res));
    assert_eq!(body_json(&res)["versionSerial"], RECORDED_VERSION_SERIAL);
    // Three attempts, each the same request as ably-js's.
    let patches = received(&server, "PATCH").await;
    assert_eq!(patches, vec![recorded_ably_js("patch-update"); 3]);
    server.verify().await;

    // Persistent 503s: 503 within the budget, three attempts.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(stored_message(Some("customer:u-1"), "message:user"))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let res = post_publish(
        &state_for(&server),
        &bearer("u-1", "customer", &["conv-1"]),
        &change("message.append", json!({"data": "x"})),
    )
    .await;
    assert_eq!(res.status(), 503);
    assert_eq!(body_json(&res)["code"], "ably_unavailable");
    assert!(started.elapsed() < Duration::from_secs(11));
    server.verify().await;
}

#[tokio::test]
async fn a_publish_answers_the_serial_ably_gave_it() {
    for (answer, serial) in [
        (
            json!({"channel": CHANNEL, "messageId": "m", "serials": [RECORDED_SERIAL]}),
            json!(RECORDED_SERIAL),
        ),
        (
            json!({"channel": CHANNEL, "messageId": "m", "serials": [null]}),
            Value::Null,
        ),
        (json!({"channel": CHANNEL, "messageId": "m"}), Value::Null),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_body_json(answer.clone()))
            .expect(1)
            .mount(&server)
            .await;
        let res = post_publish(
            &state_for(&server),
            &bearer("u-1", "customer", &["conv-1"]),
            &json!({"channelName": CHANNEL, "action": "message.create", "eventName": "message:user", "data": "hi"}),
        )
        .await;
        assert_eq!(res.status(), 200, "{:?}", body_json(&res));
        let receipt = body_json(&res);
        assert_eq!(receipt["serial"], serial, "{answer}");
        assert_eq!(
            receipt.get("serial").is_some(),
            !serial.is_null(),
            "{receipt}"
        );
        assert!(receipt["messageId"].as_str().unwrap().ends_with(":0"));
        server.verify().await;
    }
}
