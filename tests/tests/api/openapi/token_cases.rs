//! The token function's cases.

use chat_core::handlers::token;

use super::{auth, case, Answers};
use crate::helpers::*;

pub(super) async fn answers(a: &mut Answers) {
    let s = token_state(&[]);
    let customer = auth(&bearer("user-1", "customer", &["conv-1"]));
    let h = [
        ("authorization", customer.as_str()),
        ("content-type", "application/json"),
    ];
    let cookie = format!("__Host-chat_session={}", session_token("conv-1"));
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(17 * 1024));
    let t = token::handle;
    let p = "/api/ably/token";
    a.run(
        |req| t(&s, req),
        vec![
            case("token: defaults", "POST", p).headers(&h),
            case("token: jwt", "POST", p)
                .headers(&h)
                .body(r#"{"format":"jwt","ttlSeconds":60}"#),
            case("token: form", "POST", p)
                .headers(&[
                    ("authorization", customer.as_str()),
                    ("content-type", "application/x-www-form-urlencoded"),
                ])
                .body("format=jwt&conversationId=conv-1"),
            case("token: session", "POST", p)
                .headers(&[("cookie", cookie.as_str())])
                .body("{}"),
            case("token: no identity", "POST", p),
            case("token: bad bearer", "POST", p).headers(&[("authorization", "Bearer x.y.z")]),
            case("token: bad json", "POST", p).headers(&h).body("{"),
            case("token: bad format", "POST", p)
                .headers(&h)
                .body(r#"{"format":"xml"}"#),
            case("token: bad ttl", "POST", p)
                .headers(&h)
                .body(r#"{"ttlSeconds":0}"#),
            case("token: bad id", "POST", p)
                .headers(&h)
                .body(r#"{"conversationId":"a:b"}"#),
            case("token: not theirs", "POST", p)
                .headers(&h)
                .body(r#"{"conversationId":"conv-2"}"#),
            case("token: too large", "POST", p).headers(&h).body(&big),
            case("token: preflight", "OPTIONS", p).headers(&[("origin", "http://localhost:3000")]),
        ],
    )
    .await;

    let limited = token_state(&[("RATE_LIMIT_TOKEN_MAX", "1")]);
    a.run(
        |req| t(&limited, req),
        vec![
            case("token: first", "POST", p).headers(&h),
            case("token: rate limited", "POST", p).headers(&h),
        ],
    )
    .await;
    let off = token_state(&[("ENABLE_ABLY_REALTIME", "false")]);
    a.run(
        |req| t(&off, req),
        vec![case("token: realtime off", "POST", p).headers(&h)],
    )
    .await;
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let no_redis = token_state(&[("UPSTASH_REDIS_REST_URL", dead.as_str())]);
    a.run(
        |req| t(&no_redis, req),
        vec![case("token: limiter down", "POST", p).headers(&h)],
    )
    .await;
}
