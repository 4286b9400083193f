//! The events function's cases: signed, forged and unreadable deliveries, stores down.

use chat_core::ably::webhook::signature::sign;
use chat_core::handlers::ably_events;

use super::{case, Answers};
use crate::helpers::*;

fn signed(body: &str) -> (String, String) {
    (KEY_NAME.to_owned(), sign(SECRET, body.as_bytes()))
}

pub(super) async fn answers(a: &mut Answers, h: &EventsApp) {
    let f = ably_events::handle;
    let p = "/api/ably/events";
    let batched = include_str!("../../../fixtures/ably-webhooks/batched-message.json");
    let enveloped = include_str!("../../../fixtures/ably-webhooks/enveloped-presence.json");
    let lifecycle = include_str!("../../../fixtures/ably-webhooks/batched-lifecycle.json");
    for (what, body) in [
        ("events: batched", batched),
        ("events: redelivered", batched),
        ("events: enveloped presence", enveloped),
        ("events: lifecycle", lifecycle),
        ("events: not a webhook", r#"{"hello":"world"}"#),
        ("events: not json", "not json"),
    ] {
        let (key, sig) = signed(body);
        a.run(
            |req| f(&h.state, req),
            vec![case(what, "POST", p)
                .headers(&[
                    ("content-type", "application/json"),
                    ("x-ably-key", key.as_str()),
                    ("x-ably-signature", sig.as_str()),
                ])
                .body(body)],
        )
        .await;
    }
    a.run(
        |req| f(&h.state, req),
        vec![
            case("events: unsigned", "POST", p)
                .headers(&[("content-type", "application/json")])
                .body(batched),
            case("events: bad signature", "POST", p)
                .headers(&[("x-ably-key", KEY_NAME), ("x-ably-signature", "AAAA")])
                .body(batched),
            case("events: preflight", "OPTIONS", p),
        ],
    )
    .await;

    let no_redis = EventsApp::build(&[], Some(unreachable_redis()), None).await;
    let (key, sig) = signed(batched);
    let signed_headers = [
        ("content-type", "application/json"),
        ("x-ably-key", key.as_str()),
        ("x-ably-signature", sig.as_str()),
    ];
    a.run(
        |req| f(&no_redis.state, req),
        vec![case("events: redis down", "POST", p)
            .headers(&signed_headers)
            .body(batched)],
    )
    .await;
    let no_dynamo = EventsApp::build(&[], None, Some(unreachable_dynamo())).await;
    a.run(
        |req| f(&no_dynamo.state, req),
        vec![case("events: dynamodb down", "POST", p)
            .headers(&signed_headers)
            .body(batched)],
    )
    .await;
}
