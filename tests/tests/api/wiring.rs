//! The request plumbing every function shares, exercised through each real handler with
//! its real state (config from the stack's environment, real clients).

use chat_core::handlers::{ably_events, publish, resume, stats, token};
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::helpers::{api_request, body_json, env_with, header, unique};

const ORIGIN: &str = "http://localhost:3000";

/// (function, production route, method) for every route the functions serve.
const ROUTES: &[(&str, &str, &str)] = &[
    ("ably-token", "/api/ably/token", "POST"),
    ("ably-publish", "/api/ably/publish", "POST"),
    ("ably-events", "/api/ably/events", "POST"),
    ("ably-stats", "/api/ably/stats", "GET"),
    ("resume", "/api/chat/resume", "POST"),
    ("resume", "/api/chat/resume", "GET"),
    ("resume", "/api/chat/events", "GET"),
];

async fn call(function: &str, req: Request) -> Response<Body> {
    call_with(function, req, &[]).await
}

async fn call_with(function: &str, req: Request, overrides: &[(&str, &str)]) -> Response<Body> {
    // A fresh key prefix per call, so rate limits never carry over between runs.
    let prefix = format!("{}:", unique("wiring"));
    let env = || {
        let mut all = vec![
            ("CORS_ORIGIN", ORIGIN),
            ("REDIS_KEY_PREFIX", prefix.as_str()),
        ];
        all.extend_from_slice(overrides);
        env_with(&all)
    };
    match function {
        "ably-token" => {
            token::handle(
                &token::TokenState::new(token::TokenConfig::load(env()).unwrap()),
                req,
            )
            .await
        }
        "ably-publish" => {
            publish::handle(
                &publish::PublishState::new(publish::PublishConfig::load(env()).unwrap()),
                req,
            )
            .await
        }
        "ably-events" => {
            ably_events::handle(
                &ably_events::EventsState::new(ably_events::EventsConfig::load(env()).unwrap()),
                req,
            )
            .await
        }
        "ably-stats" => {
            stats::handle(
                &stats::StatsState::new(stats::StatsConfig::load(env()).unwrap()),
                req,
            )
            .await
        }
        "resume" => {
            resume::handle(
                &resume::ResumeState::new(resume::ResumeConfig::load(env()).unwrap()),
                req,
            )
            .await
        }
        other => panic!("unknown function {other}"),
    }
}

fn assert_common_headers(response: &Response<Body>) {
    assert_eq!(header(response, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(response, "cache-control"), Some("no-store"));
    assert!(header(response, "x-request-id").is_some_and(|id| !id.is_empty()));
}

#[tokio::test]
async fn unbuilt_endpoints_answer_501_with_the_json_error_body_and_echoed_request_id() {
    for (function, path, method) in ROUTES {
        let req = api_request(
            method,
            path,
            &[
                ("x-request-id", "req-123"),
                ("content-type", "application/json"),
            ],
            Some("{}"),
        );
        let response = call(function, req).await;
        if response.status() != 501 {
            // Endpoints that have landed answer for themselves; only the shared plumbing is checked.
            assert!(
                response.status().is_client_error(),
                "{function} {method} {path}: {}",
                response.status()
            );
        } else {
            assert_eq!(
                body_json(&response),
                json!({"error": "Not implemented yet", "code": "not_implemented", "requestId": "req-123"})
            );
        }
        assert_eq!(header(&response, "content-type"), Some("application/json"));
        assert_eq!(header(&response, "x-request-id"), Some("req-123"));
        assert_common_headers(&response);
    }
}

#[tokio::test]
async fn a_request_without_an_id_gets_a_fresh_one_in_header_and_body() {
    let response = call(
        "ably-stats",
        api_request("DELETE", "/api/ably/stats", &[], None),
    )
    .await;
    let id = header(&response, "x-request-id").unwrap().to_owned();
    assert_eq!(id.len(), 36);
    assert_eq!(body_json(&response)["requestId"], json!(id));
}

#[tokio::test]
async fn cors_preflight_is_204_for_the_configured_origin_only() {
    for (function, path, method) in ROUTES {
        let req = api_request(
            "OPTIONS",
            path,
            &[
                ("origin", ORIGIN),
                ("access-control-request-method", method),
            ],
            None,
        );
        let response = call(function, req).await;
        assert_eq!(response.status(), 204, "{function} {path}");
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            Some(ORIGIN)
        );
        assert_eq!(
            header(&response, "access-control-allow-credentials"),
            Some("true")
        );
        let methods = header(&response, "access-control-allow-methods").unwrap();
        assert!(
            methods.contains(method) && methods.contains("OPTIONS"),
            "{methods}"
        );
        assert!(header(&response, "access-control-allow-headers")
            .unwrap()
            .contains("authorization"));
        assert_eq!(response.body().as_ref(), b"");

        let foreign = api_request("OPTIONS", path, &[("origin", "https://evil.example")], None);
        let response = call(function, foreign).await;
        assert_eq!(response.status(), 204);
        assert_eq!(header(&response, "access-control-allow-origin"), None);
        assert_eq!(header(&response, "access-control-allow-methods"), None);
    }
}

#[tokio::test]
async fn actual_responses_carry_cors_headers_for_the_allowed_origin() {
    let req = api_request("POST", "/api/ably/token", &[("origin", ORIGIN)], None);
    let response = call("ably-token", req).await;
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some(ORIGIN)
    );
    assert!(header(&response, "access-control-expose-headers")
        .unwrap()
        .contains("x-request-id"));
    assert_eq!(header(&response, "vary"), Some("origin"));
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
    let response = call(
        "ably-token",
        api_request("POST", "/api/ably/nope", &[], None),
    )
    .await;
    assert_eq!(response.status(), 404);
    assert_eq!(body_json(&response)["code"], json!("not_found"));
    assert_common_headers(&response);

    let response = call(
        "ably-token",
        api_request("GET", "/api/ably/token", &[], None),
    )
    .await;
    assert_eq!(response.status(), 405);
    assert_eq!(header(&response, "allow"), Some("POST, OPTIONS"));
    assert_eq!(body_json(&response)["code"], json!("method_not_allowed"));

    let response = call(
        "resume",
        api_request("DELETE", "/api/chat/resume", &[], None),
    )
    .await;
    assert_eq!(header(&response, "allow"), Some("GET, POST, OPTIONS"));
}

#[tokio::test]
async fn oversized_bodies_are_413_before_the_handler_runs() {
    let big = "x".repeat(token::SERVICE.max_body_bytes + 1);
    let response = call(
        "ably-token",
        api_request("POST", "/api/ably/token", &[], Some(&big)),
    )
    .await;
    assert_eq!(response.status(), 413);
    assert_eq!(body_json(&response)["code"], json!("payload_too_large"));
}

#[tokio::test]
async fn the_sample_events_deserialise_and_reach_their_function() {
    // No Ably here: a mock accepts what the publish sample sends.
    let ably = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(201))
        .mount(&ably)
        .await;
    let ably_uri = ably.uri();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");
    let mut seen = 0;
    for function in [
        "ably-token",
        "ably-publish",
        "ably-events",
        "ably-stats",
        "resume",
    ] {
        let dir = format!("{root}/{function}");
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // `*-body.json` files are raw webhook bodies, not API Gateway events.
            if !name.ends_with(".json") || name.ends_with("-body.json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // The queue path's samples (direct invoke, SQS, Kinesis) are no API Gateway
            // events: `delivery.rs` invokes them.
            let event: serde_json::Value = serde_json::from_str(&text).unwrap();
            if event.get("requestContext").is_none() {
                assert_eq!(function, "ably-events", "{name}: not an API Gateway event");
                continue;
            }
            let req =
                lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let response = call_with(function, req, &[("ABLY_REST_URL", &ably_uri)]).await;
            let status = response.status().as_u16();
            assert!(
                [204, 401, 501].contains(&status) || (200..300).contains(&status),
                "{function}/{name}: unexpected {status}"
            );
            assert_ne!(status, 404, "{function}/{name} is not routed");
            seen += 1;
        }
    }
    assert!(
        seen >= 5,
        "expected sample events for every function, found {seen}"
    );
}
