//! `POST /api/ably/token` through the real handler over the real Redis: TokenRequests,
//! Ably JWTs, capabilities per caller, body validation and rate limits.

use std::collections::HashSet;

use base64::Engine as _;
use chat_core::ably::credentials::token_request_mac;
use hmac::Mac as _;
use serde_json::{json, Value};

use crate::helpers::{
    bearer, body_json, closed_port, header, post_token, post_token_as, redis, session_token,
    stack_var, token_state, unix_now,
};

const OPS: &str = r#"["history","presence","publish","subscribe"]"#;

/// The documented algorithm, written out independently of the product code:
/// base64(HMAC-SHA256(secret, keyName\nttl\ncapability\nclientId\ntimestamp\nnonce\n)).
fn independent_mac(secret: &str, fields: [&str; 6]) -> String {
    let text: String = fields.iter().map(|f| format!("{f}\n")).collect();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn key_parts() -> (String, String) {
    let key = stack_var("ABLY_API_KEY");
    let (name, secret) = key.split_once(':').unwrap();
    (name.to_owned(), secret.to_owned())
}

/// Asserts the body is a TokenRequest whose mac verifies with the stack's key secret.
fn assert_signed_token_request(body: &Value) {
    let (key_name, secret) = key_parts();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "capability",
            "clientId",
            "keyName",
            "mac",
            "nonce",
            "timestamp",
            "ttl"
        ]
    );
    assert_eq!(body["keyName"], json!(key_name));
    let ttl = body["ttl"].as_u64().unwrap().to_string();
    let timestamp = body["timestamp"].as_u64().unwrap();
    let expected = independent_mac(
        &secret,
        [
            &key_name,
            &ttl,
            body["capability"].as_str().unwrap(),
            body["clientId"].as_str().unwrap(),
            &timestamp.to_string(),
            body["nonce"].as_str().unwrap(),
        ],
    );
    assert_eq!(body["mac"], json!(expected));
    let now_ms = unix_now() as u64 * 1000;
    assert!(
        timestamp.abs_diff(now_ms) < 5_000,
        "timestamp {timestamp} vs {now_ms}"
    );
    assert!(body["nonce"].as_str().unwrap().len() >= 16);
}

fn capability(body: &Value) -> String {
    body["capability"].as_str().unwrap().to_owned()
}

#[test]
fn mac_known_answers_from_the_reference_and_an_independent_computation() {
    let secret = "fakeSecretForTestVectorsOnly";
    let capability = r#"{"[*]*":["stats"],"conversation:*":["presence","publish","subscribe"]}"#;
    let full = [
        "xVLyHw.DQrNxQ",
        "3600000",
        capability,
        "user-123",
        "1700000000000",
        "0123456789abcdef",
    ];
    assert_eq!(
        independent_mac(secret, full),
        "0StyUBtZqvd/8bO2hNyp4TJAMKkg5aiqAs8IenOWx/A="
    );
    assert_eq!(
        token_request_mac(
            secret.as_bytes(),
            "xVLyHw.DQrNxQ",
            Some(3_600_000),
            Some(capability),
            Some("user-123"),
            1_700_000_000_000,
            "0123456789abcdef"
        ),
        "0StyUBtZqvd/8bO2hNyp4TJAMKkg5aiqAs8IenOWx/A="
    );
    // ttl, capability and clientId absent: their lines stay, empty.
    let absent = [
        "xVLyHw.DQrNxQ",
        "",
        "",
        "",
        "1700000000000",
        "0123456789abcdef",
    ];
    assert_eq!(
        independent_mac(secret, absent),
        "IN4RrGI4+41fY08a4YV4mlRMgBfRH5tGSmcs2RhF7sM="
    );
    assert_eq!(
        token_request_mac(
            secret.as_bytes(),
            "xVLyHw.DQrNxQ",
            None,
            None,
            None,
            1_700_000_000_000,
            "0123456789abcdef"
        ),
        "IN4RrGI4+41fY08a4YV4mlRMgBfRH5tGSmcs2RhF7sM="
    );
}

#[tokio::test]
async fn a_customer_gets_a_signed_token_request_for_exactly_its_channels() {
    let state = token_state(&[]);
    let response = post_token_as(
        &state,
        &bearer("u-1", "customer", &["conv-b", "conv-a"]),
        "{}",
    )
    .await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    let body = body_json(&response);
    assert_signed_token_request(&body);
    assert_eq!(body["ttl"], json!(3_600_000));
    assert_eq!(body["clientId"], json!("customer:u-1"));
    assert_eq!(
        capability(&body),
        format!(
            r#"{{"contacts:u-1":{OPS},"conversation:conv-a":{OPS},"conversation:conv-b":{OPS},"notifications:u-1":{OPS},"sms:u-1:*":{OPS}}}"#
        )
    );
}

#[tokio::test]
async fn capabilities_per_role_and_for_a_session() {
    let state = token_state(&[]);
    let resources = |body: &Value| -> Vec<String> {
        let cap: Value = serde_json::from_str(&capability(body)).unwrap();
        let map = cap.as_object().unwrap();
        for ops in map.values() {
            assert_eq!(ops.to_string(), OPS);
        }
        map.keys().cloned().collect()
    };
    let cases = [
        (
            bearer("c-0", "customer", &[]),
            vec!["contacts:c-0", "notifications:c-0", "sms:c-0:*"],
        ),
        (
            bearer("b-1", "broker", &["conv-ignored"]),
            vec![
                "contacts:b-1",
                "conversation:*",
                "notifications:b-1",
                "sms:b-1:*",
            ],
        ),
        (
            bearer("a-1", "admin", &[]),
            vec!["contacts:*", "conversation:*", "notifications:*", "sms:*"],
        ),
        (
            bearer("s-1", "service", &[]),
            vec!["contacts:*", "conversation:*", "notifications:*", "sms:*"],
        ),
    ];
    for (token, expected) in cases {
        let body = body_json(&post_token_as(&state, &token, "{}").await);
        assert_signed_token_request(&body);
        assert_eq!(resources(&body), expected);
        let cap = capability(&body);
        assert!(!cap.contains(' ') && !cap.contains('\n'), "{cap}");
    }

    let cookie = format!("__Host-chat_session={}", session_token("conv-77"));
    let response = post_token(&state, &[("cookie", &cookie)], None).await;
    let body = body_json(&response);
    assert_signed_token_request(&body);
    assert_eq!(body["clientId"], json!("customer-conv-77"));
    assert_eq!(
        capability(&body),
        format!(r#"{{"conversation:conv-77":{OPS}}}"#)
    );
}

#[tokio::test]
async fn one_conversation_when_asked_and_only_if_allowed() {
    let state = token_state(&[]);
    let customer = bearer("u-2", "customer", &["conv-1", "conv-2"]);
    let body = body_json(&post_token_as(&state, &customer, r#"{"conversationId":"conv-2"}"#).await);
    assert_signed_token_request(&body);
    assert_eq!(
        capability(&body),
        format!(r#"{{"conversation:conv-2":{OPS}}}"#)
    );

    let response = post_token_as(&state, &customer, r#"{"conversationId":"conv-3"}"#).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        body_json(&response)["code"],
        json!("conversation_forbidden")
    );

    let broker = bearer("b-2", "broker", &[]);
    let body = body_json(&post_token_as(&state, &broker, r#"{"conversationId":"any-conv"}"#).await);
    assert_eq!(
        capability(&body),
        format!(r#"{{"conversation:any-conv":{OPS}}}"#)
    );

    let cookie = format!("__Host-chat_session={}", session_token("conv-s"));
    let other = post_token(
        &state,
        &[("cookie", &cookie), ("content-type", "application/json")],
        Some(r#"{"conversationId":"conv-t"}"#),
    )
    .await;
    assert_eq!(other.status(), 403);
}

#[tokio::test]
async fn injected_ids_and_bad_bodies_are_400() {
    let state = token_state(&[]);
    let customer = bearer("u-3", "customer", &["conv-1"]);
    let long = "x".repeat(129);
    for id in ["*", "conv-1:*", "conv:1", "[*]*", "conv 1", "", &long] {
        let body = json!({ "conversationId": id }).to_string();
        let response = post_token_as(&state, &customer, &body).await;
        assert_eq!(response.status(), 400, "{id}");
        assert_eq!(
            body_json(&response)["code"],
            json!("invalid_identifier"),
            "{id}"
        );
    }
    for (body, code) in [
        (r#"{"conversationId": 7}"#, "invalid_body"),
        (r#"["conv-1"]"#, "invalid_body"),
        ("{not json", "invalid_json"),
        (r#"{"format": "xml"}"#, "invalid_format"),
        (r#"{"ttlSeconds": 0}"#, "invalid_ttl"),
        (r#"{"ttlSeconds": 86401}"#, "invalid_ttl"),
        (r#"{"ttlSeconds": -5}"#, "invalid_ttl"),
        (r#"{"ttlSeconds": 1.5}"#, "invalid_ttl"),
        (r#"{"ttlSeconds": "60"}"#, "invalid_ttl"),
    ] {
        let response = post_token_as(&state, &customer, body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(body_json(&response)["code"], json!(code), "{body}");
    }
}

#[tokio::test]
async fn ttl_is_chosen_within_a_day_and_the_body_is_optional() {
    let state = token_state(&[]);
    let customer = bearer("u-4", "customer", &[]);
    for (body, ttl) in [
        (r#"{"ttlSeconds": 60}"#, 60_000),
        (r#"{"ttlSeconds": 86400}"#, 86_400_000),
        (
            r#"{"ttlSeconds": null, "format": "tokenRequest"}"#,
            3_600_000,
        ),
        ("", 3_600_000),
        ("  ", 3_600_000),
        // Integers in JSON Schema's sense (and openapi.yaml's): a number with no fraction.
        (r#"{"ttlSeconds": 60.0}"#, 60_000),
        (r#"{"ttlSeconds": 6e1}"#, 60_000),
    ] {
        let response = post_token_as(&state, &customer, body).await;
        assert_eq!(response.status(), 200, "{body:?}");
        let json = body_json(&response);
        assert_signed_token_request(&json);
        assert_eq!(json["ttl"], json!(ttl), "{body:?}");
    }
}

#[tokio::test]
async fn form_encoded_bodies_as_ably_js_sends_them() {
    let state = token_state(&[]);
    let auth = format!("Bearer {}", bearer("u-5", "customer", &["conv-f"]));
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let response = post_token(
        &state,
        &headers,
        Some("conversationId=conv-f&ttlSeconds=120&clientId=someone-else&capability=%7B%22*%22%3A%5B%22*%22%5D%7D"),
    )
    .await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    let body = body_json(&response);
    assert_signed_token_request(&body);
    // Token params a client forwards never widen what it gets.
    assert_eq!(body["clientId"], json!("customer:u-5"));
    assert_eq!(
        capability(&body),
        format!(r#"{{"conversation:conv-f":{OPS}}}"#)
    );
    assert_eq!(body["ttl"], json!(120_000));

    let response = post_token(&state, &headers, Some("conversationId=conv%3A*")).await;
    assert_eq!(response.status(), 400);
    let response = post_token(&state, &headers, Some("ttlSeconds=abc")).await;
    assert_eq!(body_json(&response)["code"], json!("invalid_ttl"));
}

#[tokio::test]
async fn two_calls_never_share_a_nonce() {
    let state = token_state(&[]);
    let customer = bearer("u-6", "customer", &[]);
    let mut nonces = HashSet::new();
    for _ in 0..20 {
        let body = body_json(&post_token_as(&state, &customer, "{}").await);
        assert!(nonces.insert(body["nonce"].as_str().unwrap().to_owned()));
    }
}

#[tokio::test]
async fn format_jwt_is_an_ably_jwt_signed_with_the_key() {
    let state = token_state(&[]);
    let response = post_token_as(
        &state,
        &bearer("u-7", "customer", &["conv-j"]),
        r#"{"format":"jwt","ttlSeconds":600}"#,
    )
    .await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    let body = body_json(&response);
    let token = body["token"].as_str().unwrap();
    let (key_name, secret) = key_parts();

    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(header.kid.as_deref(), Some(key_name.as_str()));

    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "iat"]);
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims;
    let iat = claims["iat"].as_i64().unwrap();
    assert!((iat - unix_now()).abs() < 5);
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + 600);
    assert_eq!(claims["x-ably-clientId"], json!("customer:u-7"));
    let capability = claims["x-ably-capability"].as_str().unwrap();
    assert_eq!(
        capability,
        format!(
            r#"{{"contacts:u-7":{OPS},"conversation:conv-j":{OPS},"notifications:u-7":{OPS},"sms:u-7:*":{OPS}}}"#
        )
    );
    assert_eq!(body["expires"], json!((iat + 600) * 1000));
    assert_eq!(body["issued"], json!(iat * 1000));
    assert_eq!(body["capability"], json!(capability));
    assert_eq!(body["clientId"], json!("customer:u-7"));
}

#[tokio::test]
async fn realtime_disabled_is_503_for_everyone_without_touching_redis() {
    let state = token_state(&[("ENABLE_ABLY_REALTIME", "false")]);
    let expected = |response: &lambda_http::Response<lambda_http::Body>| {
        json!({"error": "Realtime is disabled; poll GET /api/chat/events instead",
            "code": "realtime_disabled", "requestId": header(response, "x-request-id").unwrap()})
    };
    let response = post_token_as(&state, &bearer("u-8", "customer", &[]), "{}").await;
    assert_eq!(response.status(), 503);
    assert_eq!(body_json(&response), expected(&response));
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    // Decided before authentication: no identity, or a bad one, gets the same answer.
    for headers in [
        vec![],
        vec![("authorization", "Bearer not-a-jwt")],
        vec![("cookie", "__Host-chat_session=forged")],
    ] {
        let response = post_token(&state, &headers, None).await;
        assert_eq!(response.status(), 503, "{headers:?}");
        assert_eq!(body_json(&response), expected(&response));
    }
    // Nothing was counted against the caller.
    let key = state.limiter.key("user:u-8");
    assert_eq!(
        redis().command(&["EXISTS", key.as_str()]).await.unwrap(),
        json!(0)
    );
    // Nor does it need Redis at all.
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let no_redis = token_state(&[
        ("ENABLE_ABLY_REALTIME", "false"),
        ("UPSTASH_REDIS_REST_URL", dead.as_str()),
    ]);
    let response = post_token_as(&no_redis, &bearer("u-8", "customer", &[]), "{}").await;
    assert_eq!(response.status(), 503);
    assert_eq!(body_json(&response), expected(&response));
}

#[tokio::test]
async fn the_limit_allows_n_then_429_with_retry_after_and_the_key_expires() {
    let state = token_state(&[
        ("RATE_LIMIT_TOKEN_MAX", "3"),
        ("RATE_LIMIT_TOKEN_WINDOW_SECONDS", "60"),
    ]);
    let customer = bearer("u-9", "customer", &[]);
    for i in 0..3 {
        let response = post_token_as(&state, &customer, "{}").await;
        assert_eq!(response.status(), 200, "request {i}");
    }
    let response = post_token_as(&state, &customer, "{}").await;
    assert_eq!(response.status(), 429);
    assert_eq!(body_json(&response)["code"], json!("rate_limited"));
    let retry_after: u64 = header(&response, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");

    // Another caller has its own budget.
    let other = post_token_as(&state, &bearer("u-10", "customer", &[]), "{}").await;
    assert_eq!(other.status(), 200);

    // The counter lives in Redis under the configured prefix, always with a TTL.
    let key = state.limiter.key("user:u-9");
    assert!(key.starts_with(&state.config.redis.key_prefix));
    assert_eq!(redis().command(&["GET", &key]).await.unwrap(), json!("4"));
    let pttl = redis()
        .command(&["PTTL", &key])
        .await
        .unwrap()
        .as_i64()
        .unwrap();
    assert!(pttl > 0 && pttl <= 60_000, "{pttl}");
}

#[tokio::test]
async fn under_concurrent_requests_exactly_n_succeed() {
    let state = token_state(&[
        ("RATE_LIMIT_TOKEN_MAX", "5"),
        ("RATE_LIMIT_TOKEN_WINDOW_SECONDS", "60"),
    ]);
    let customer = bearer("u-11", "customer", &[]);
    let responses =
        futures::future::join_all((0..20).map(|_| post_token_as(&state, &customer, "{}"))).await;
    let ok = responses.iter().filter(|r| r.status() == 200).count();
    let limited = responses.iter().filter(|r| r.status() == 429).count();
    assert_eq!((ok, limited), (5, 15));
}

#[tokio::test]
async fn token_issuance_fails_closed_when_redis_is_down() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let state = token_state(&[("UPSTASH_REDIS_REST_URL", &url)]);
    let response = post_token_as(&state, &bearer("u-12", "customer", &[]), "{}").await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        body_json(&response)["code"],
        json!("rate_limiter_unavailable")
    );
    // Nothing about Redis leaks into the body.
    assert!(!String::from_utf8_lossy(response.body().as_ref()).contains("127.0.0.1"));
}

#[tokio::test]
async fn the_sample_events_answer_as_documented() {
    let state = token_state(&[]);
    let event = |name: &str| {
        let path = format!(
            "{}/../events/ably-token/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let response = chat_core::handlers::token::handle(&state, event("customer")).await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    let body = body_json(&response);
    assert_signed_token_request(&body);
    assert_eq!(body["clientId"], json!("customer:dev-user"));
    assert!(capability(&body).contains(r#""conversation:conv-1":"#));
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some("http://localhost:3000")
    );

    let response = chat_core::handlers::token::handle(&state, event("no-auth")).await;
    assert_eq!(response.status(), 401);
    let response = chat_core::handlers::token::handle(&state, event("preflight")).await;
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn an_ably_token_never_outlives_the_bearer_or_session_it_is_issued_on() {
    let state = token_state(&[]);
    let now = unix_now();
    // A bearer JWT with two minutes left asks for an hour.
    let short = crate::helpers::hs256(
        &json!({"userId": "u-short", "role": "customer", "iat": now, "exp": now + 120}),
        &stack_var("JWT_SECRET"),
    );
    for format in ["tokenRequest", "jwt"] {
        let body = json!({"format": format, "ttlSeconds": 3600}).to_string();
        let response = post_token_as(&state, &short, &body).await;
        assert_eq!(response.status(), 200, "{format}");
        let json = body_json(&response);
        let until_ms = (now + 120) * 1000;
        match format {
            "tokenRequest" => {
                let ttl = json["ttl"].as_i64().unwrap();
                let issued = json["timestamp"].as_i64().unwrap();
                assert!(issued + ttl <= until_ms, "{json}");
                assert!(ttl > 100_000, "nearly the two minutes: {ttl}");
            }
            _ => {
                assert!(json["expires"].as_i64().unwrap() <= until_ms, "{json}");
                let (_, secret) = key_parts();
                let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
                validation.set_required_spec_claims(&["exp"]);
                let claims = jsonwebtoken::decode::<Value>(
                    json["token"].as_str().unwrap(),
                    &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
                    &validation,
                )
                .unwrap()
                .claims;
                assert!(claims["exp"].as_i64().unwrap() <= now + 120, "{claims}");
            }
        }
    }
    // A session near its end: the same cap.
    let session = chat_core::identity::SessionIssuer::new(&chat_core::platform::env::Secret::new(
        stack_var("RESUME_TOKEN_SECRET"),
    ))
    .issue(
        "conv-end",
        "a@example.com",
        std::time::Duration::from_secs(90),
    )
    .unwrap();
    let cookie = format!("__Host-chat_session={session}");
    let response = post_token(
        &state,
        &[("cookie", &cookie), ("content-type", "application/json")],
        Some(r#"{"format": "jwt"}"#),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(body_json(&response)["expires"].as_i64().unwrap() <= (now + 90) * 1000);
}

#[tokio::test]
async fn a_cookie_request_from_another_origin_is_refused() {
    let state = token_state(&[]);
    let cookie = format!("__Host-chat_session={}", session_token("conv-o"));
    let with_origin = |origin: Option<&'static str>| {
        let mut headers = vec![
            ("cookie", cookie.clone()),
            ("content-type", "text/plain".into()),
        ];
        if let Some(origin) = origin {
            headers.push(("origin", origin.to_owned()));
        }
        headers
    };
    for (origin, status) in [
        (Some("https://evil.example"), 403),
        (Some("http://localhost:3000.evil.example"), 403),
        (Some("null"), 403),
        (Some("http://localhost:3000"), 200),
        (None, 200),
    ] {
        let headers = with_origin(origin);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = post_token(&state, &headers, Some("{}")).await;
        assert_eq!(response.status(), status, "{origin:?}");
        if status == 403 {
            assert_eq!(body_json(&response)["code"], json!("origin_forbidden"));
        }
    }
    // A bearer caller is not a cookie: its Origin is CORS's business, not this check's.
    let response = post_token(
        &state,
        &[
            (
                "authorization",
                &format!("Bearer {}", bearer("u-o", "customer", &[])),
            ),
            ("origin", "https://evil.example"),
        ],
        Some("{}"),
    )
    .await;
    assert_eq!(response.status(), 200);
}
