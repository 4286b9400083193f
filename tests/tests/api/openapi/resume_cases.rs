//! The resume function's cases: issuing, redeeming, polling.

use std::sync::Arc;

use chat_core::handlers::resume;
use chat_core::handlers::resume::mail::LogMailSender;
use serde_json::{json, Value};

use super::{auth, case, Answers};
use crate::helpers::*;

/// The resume function over `h`'s table with a Redis key prefix of its own (its rate
/// limits start empty).
async fn resume_state(h: &EventsApp, overrides: &[(&str, &str)]) -> resume::ResumeState {
    let prefix = format!("{}:", unique("oapi"));
    let mut all = vec![("REDIS_KEY_PREFIX", prefix.as_str())];
    all.extend_from_slice(overrides);
    resume_state_over(h, &all, Arc::new(LogMailSender)).await
}

/// The token of a `resumeUrl` in the last answer.
fn last_link(a: &Answers) -> String {
    let body: Value = serde_json::from_slice(&a.0.last().expect("an answer").body).unwrap();
    let url = body["resumeUrl"].as_str().expect("resumeUrl");
    url.split_once("?resume=").expect("link").1.to_owned()
}

pub(super) async fn answers(a: &mut Answers, h: &EventsApp) {
    let f = resume::handle;
    let p = "/api/chat/resume";
    let s = resume_state(h, &[]).await;
    let broker = auth(&bearer("broker-1", "broker", &[]));
    let customer = auth(&bearer("user-1", "customer", &["conv-1"]));
    let bj = [
        ("authorization", broker.as_str()),
        ("content-type", "application/json"),
    ];
    let issue = r#"{"conversationId":"conv-1","email":"customer@example.com"}"#;
    a.run(
        |req| f(&s, req),
        vec![case("resume: issue", "POST", p).headers(&bj).body(issue)],
    )
    .await;
    let link = last_link(a);
    a.run(
        |req| f(&s, req),
        vec![
            case("resume: redeem", "GET", &format!("{p}?token={link}")),
            case("resume: redeem again", "GET", &format!("{p}?token={link}")),
            case("resume: issue again", "POST", p)
                .headers(&bj)
                .body(issue),
        ],
    )
    .await;
    let link = last_link(a);
    let redeem = json!({ "token": link }).to_string();
    a.run(
        |req| f(&s, req),
        vec![
            case("resume: redeem by POST", "POST", p)
                .headers(&[("content-type", "application/json")])
                .body(&redeem),
            case("resume: bad link", "GET", &format!("{p}?token=nope")),
            case("resume: no token", "GET", p),
            case(
                "resume: token twice",
                "GET",
                &format!("{p}?token=a&token=b"),
            ),
            case("resume: issue without identity", "POST", p)
                .headers(&[("content-type", "application/json")])
                .body(issue),
            case("resume: customer issues", "POST", p)
                .headers(&[("authorization", customer.as_str())])
                .body(issue),
            case("resume: bad json", "POST", p).headers(&bj).body("{"),
            case("resume: both", "POST", p)
                .headers(&bj)
                .body(r#"{"token":"t","email":"a@b.co"}"#),
            case("resume: bad email", "POST", p)
                .headers(&bj)
                .body(r#"{"conversationId":"conv-1","email":"nope"}"#),
            case("resume: bad id", "POST", p)
                .headers(&bj)
                .body(r#"{"conversationId":"a b","email":"a@b.co"}"#),
        ],
    )
    .await;
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(17 * 1024));
    a.run(
        |req| f(&s, req),
        vec![
            case("resume: too large", "POST", p).headers(&bj).body(&big),
            case("resume: preflight", "OPTIONS", p),
        ],
    )
    .await;

    let e = "/api/chat/events";
    // Events to page through, so that their documented shape is checked too.
    let mirrored = h
        .post(&crate::helpers::flat_batch("conv-1", 3, 1_767_323_045_000))
        .await;
    assert_eq!(mirrored.status(), 200);
    let cookie = format!("__Host-chat_session={}", session_token("conv-1"));
    a.run(
        |req| f(&s, req),
        vec![
            case(
                "poll: bearer",
                "GET",
                &format!("{e}?conversationId=conv-1&limit=5"),
            )
            .headers(&[("authorization", customer.as_str())]),
            case(
                "poll: session",
                "GET",
                &format!("{e}?conversationId=conv-1"),
            )
            .headers(&[("cookie", cookie.as_str())]),
            case(
                "poll: not theirs",
                "GET",
                &format!("{e}?conversationId=conv-2"),
            )
            .headers(&[("authorization", customer.as_str())]),
            case("poll: no conversation", "GET", e)
                .headers(&[("authorization", customer.as_str())]),
            case(
                "poll: bad conversation",
                "GET",
                &format!("{e}?conversationId=a:b"),
            )
            .headers(&[("authorization", customer.as_str())]),
            case(
                "poll: bad limit",
                "GET",
                &format!("{e}?conversationId=conv-1&limit=0"),
            )
            .headers(&[("authorization", customer.as_str())]),
            case(
                "poll: no identity",
                "GET",
                &format!("{e}?conversationId=conv-1"),
            ),
        ],
    )
    .await;
    // The position of conv-1-m0, the first of the three.
    let cursor = "MjAyNi0wMS0wMlQwMzowNDowNS4wMDBaI2NvbnYtMS1tMA";
    a.run(
        |req| f(&s, req),
        vec![
            case(
                "poll: after a cursor",
                "GET",
                &format!("{e}?conversationId=conv-1&after={cursor}&limit=100"),
            )
            .headers(&[("authorization", customer.as_str())]),
            case(
                "poll: bad cursor",
                "GET",
                &format!("{e}?conversationId=conv-1&after=bm90LWEtY3Vyc29y"),
            )
            .headers(&[("authorization", customer.as_str())]),
            case("poll: preflight", "OPTIONS", e),
        ],
    )
    .await;
    let limited_polls = resume_state(h, &[("RATE_LIMIT_POLL_MAX", "1")]).await;
    for what in ["poll: first", "poll: rate limited"] {
        a.run(
            |req| f(&limited_polls, req),
            vec![case(what, "GET", &format!("{e}?conversationId=conv-1"))
                .headers(&[("authorization", customer.as_str())])],
        )
        .await;
    }

    let limited = resume_state(h, &[("RATE_LIMIT_RESUME_REDEEM_MAX", "1")]).await;
    a.run(
        |req| f(&limited, req),
        vec![
            case("resume: first redeem", "GET", &format!("{p}?token=nope")),
            case(
                "resume: redeem rate limited",
                "GET",
                &format!("{p}?token=nope"),
            ),
        ],
    )
    .await;
    let realtime_off = resume_state(h, &[("ENABLE_ABLY_REALTIME", "false")]).await;
    a.run(
        |req| f(&realtime_off, req),
        vec![case("resume: issue (realtime off)", "POST", p)
            .headers(&bj)
            .body(issue)],
    )
    .await;
    let link = last_link(a);
    a.run(
        |req| f(&realtime_off, req),
        vec![case(
            "resume: redeem (realtime off)",
            "GET",
            &format!("{p}?token={link}"),
        )],
    )
    .await;
    let no_redis = resume_state_with(h, &[], unreachable_redis(), unreachable_dynamo());
    a.run(
        |req| f(&no_redis, req),
        vec![
            case(
                "resume: redeem, redis down",
                "GET",
                &format!("{p}?token=nope"),
            ),
            case("resume: issue, redis down", "POST", p)
                .headers(&bj)
                .body(issue),
            case(
                "poll: stores down",
                "GET",
                &format!("{e}?conversationId=conv-1"),
            )
            .headers(&[("authorization", customer.as_str())]),
        ],
    )
    .await;
}
