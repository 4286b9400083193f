//! When no token is given: realtime off, rate limits, Redis down, lifetimes capped,
//! another origin.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::helpers::{
    bearer, body_json, closed_port, header, post_token, post_token_as, redis, session_token,
    stack_var, token_state, unix_now,
};

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
