//! The publish function's cases, with Ably a mock that accepts or refuses.

use chat_core::ably::{AblyClient, RetryPolicy};
use chat_core::handlers::publish;
use serde_json::json;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{auth, case, Answers};
use crate::helpers::*;

/// The publish function with Ably at `ably`, two attempts and quick retries.
fn publish_state(ably: &str, overrides: &[(&str, &str)]) -> publish::PublishState {
    publish_state_with(ably, overrides, |config| {
        AblyClient::new(&config.ably).with_retry_policy(RetryPolicy {
            max_attempts: 2,
            ..quick_retries()
        })
    })
}

pub(super) async fn answers(a: &mut Answers) {
    let ok = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("^/channels/.*/messages$"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"messageId": "m", "serials": ["s-1"]})),
        )
        .mount(&ok)
        .await;
    // The message `s-1` of user-1, `s-2` of someone else; no other.
    for (serial, client_id) in [("s-1", "customer:user-1"), ("s-2", "customer:user-2")] {
        Mock::given(method("GET"))
            .and(path_regex(format!("^/channels/.*/messages/{serial}$")))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"serial": serial, "clientId": client_id, "name": "message:user", "action": 0}),
            ))
            .mount(&ok)
            .await;
    }
    Mock::given(method("GET"))
        .and(path_regex("^/channels/.*/messages/.+$"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"error": {"code": 40400, "statusCode": 404, "message": "not found"}}),
        ))
        .mount(&ok)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"versionSerial": "v-1"})))
        .mount(&ok)
        .await;
    let refusing = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(
                json!({"error": {"code": 40000, "statusCode": 400, "message": "no"}}),
            ),
        )
        .mount(&refusing)
        .await;
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let s = publish_state(&ok.uri(), &[]);
    let customer = auth(&bearer("user-1", "customer", &["conv-1"]));
    let h = [
        ("authorization", customer.as_str()),
        ("content-type", "application/json"),
    ];
    let msg = |channel: &str, event: &str| {
        json!({"channelName": channel, "eventName": event, "data": {"text": "hi"}}).to_string()
    };
    // A change of `serial` with `rest` (`,"key":value...`) appended to the body.
    let change = |action: &str, serial: &str, rest: &str| {
        format!(
            r#"{{"channelName":"conversation:conv-1","action":"{action}","serial":"{serial}"{rest}}}"#
        )
    };
    let big = json!({"channelName": "conversation:conv-1", "eventName": "message:user", "data": "x".repeat(65 * 1024)}).to_string();
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(81 * 1024));
    let f = publish::handle;
    let p = "/api/ably/publish";
    a.run(
        |req| f(&s, req),
        vec![case("publish: ok", "POST", p)
            .headers(&h)
            .body(&msg("conversation:conv-1", "message:user"))],
    )
    .await;
    let idem = json!({"channelName": "conversation:conv-1", "eventName": "read", "data": null, "idempotencyKey": "k-1"}).to_string();
    a.run(
        |req| f(&s, req),
        vec![case("publish: idempotent", "POST", p)
            .headers(&h)
            .body(&idem)],
    )
    .await;
    let cookie = format!("__Host-chat_session={}", session_token("conv-1"));
    a.run(
        |req| f(&s, req),
        vec![
            case("publish: session", "POST", p).headers(&[("cookie", cookie.as_str())]).body(&msg("conversation:conv-1", "typing:start")),
            case("publish: no identity", "POST", p).body(&msg("conversation:conv-1", "message:user")),
            case("publish: no body", "POST", p).headers(&h),
            case("publish: bad json", "POST", p).headers(&h).body("[1,"),
            case("publish: wrong shape", "POST", p).headers(&h).body(r#"{"channelName":1}"#),
            case("publish: no data", "POST", p).headers(&h).body(r#"{"channelName":"conversation:conv-1","eventName":"read"}"#),
            case("publish: bad channel", "POST", p).headers(&h).body(&msg("conversation:*", "message:user")),
            case("publish: unknown event", "POST", p).headers(&h).body(&msg("conversation:conv-1", "nope")),
            case("publish: empty event", "POST", p).headers(&h).body(&msg("conversation:conv-1", "")),
            case("publish: bad key", "POST", p).headers(&h).body(r#"{"channelName":"conversation:conv-1","eventName":"read","data":1,"idempotencyKey":""}"#),
            case("publish: not theirs", "POST", p).headers(&h).body(&msg("conversation:conv-2", "message:user")),
            case("publish: role", "POST", p).headers(&h).body(&msg("conversation:conv-1", "message:ai")),
            case("publish: data too large", "POST", p).headers(&h).body(&big),
            case("publish: body too large", "POST", p).headers(&h).body(&huge),
            case("publish: preflight", "OPTIONS", p),
            case("publish: update", "POST", p).headers(&h).body(&change("message.update", "s-1", r#","data":{"text":"edited"},"description":"typo","metadata":{"k":"v"}"#)),
            case("publish: delete", "POST", p).headers(&h).body(&change("message.delete", "s-1", "")),
            case("publish: append", "POST", p).headers(&h).body(&change("message.append", "s-1", r#","eventName":"message:user","data":" more""#)),
            case("publish: change not theirs", "POST", p).headers(&h).body(&change("message.delete", "s-2", "")),
            case("publish: change unknown serial", "POST", p).headers(&h).body(&change("message.delete", "s-9", "")),
            case("publish: change bad action", "POST", p).headers(&h).body(&change("meta", "s-1", "")),
            case("publish: change no serial", "POST", p).headers(&h).body(&change("message.delete", "", "")),
            case("publish: change no data", "POST", p).headers(&h).body(&change("message.update", "s-1", "")),
            case("publish: change bad version", "POST", p).headers(&h).body(&change("message.delete", "s-1", r#","metadata":{"":"v"}"#)),
        ],
    )
    .await;

    let limited = publish_state(&ok.uri(), &[("RATE_LIMIT_PUBLISH_MAX", "1")]);
    a.run(
        |req| f(&limited, req),
        vec![
            case("publish: first", "POST", p)
                .headers(&h)
                .body(&msg("conversation:conv-1", "read")),
            case("publish: rate limited", "POST", p)
                .headers(&h)
                .body(&msg("conversation:conv-1", "read")),
        ],
    )
    .await;
    let s = publish_state(&refusing.uri(), &[]);
    a.run(
        |req| f(&s, req),
        vec![case("publish: ably refuses", "POST", p)
            .headers(&h)
            .body(&msg("conversation:conv-1", "read"))],
    )
    .await;
    let s = publish_state(&dead, &[]);
    a.run(
        |req| f(&s, req),
        vec![case("publish: ably down", "POST", p)
            .headers(&h)
            .body(&msg("conversation:conv-1", "read"))],
    )
    .await;
}
