//! Who may issue resume links, to which address, how often, and what happens without
//! Redis or a mail provider.

use std::sync::Arc;

use chat_core::handlers::resume::handle;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn only_staff_or_the_conversations_own_session_may_issue() {
    let r = ResumeApp::new().await;
    for role in ["broker", "admin", "service"] {
        let response = r
            .issue_as(
                &bearer(&format!("{role}-1"), role, &[]),
                "conv-w",
                BROKER_EMAIL,
            )
            .await;
        assert_eq!(response.status(), 201, "{role}");
    }
    // A customer is refused even for a conversation it is part of.
    let response = r
        .issue_as(
            &bearer("cust-1", "customer", &["conv-w"]),
            "conv-w",
            BROKER_EMAIL,
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(body_json(&response)["code"], json!("resume_forbidden"));

    let own = format!("__Host-chat_session={}", session_token("conv-w"));
    let body = json!({"conversationId": "conv-w", "email": BROKER_EMAIL});
    assert_eq!(r.issue_with(&[("cookie", &own)], &body).await.status(), 201);
    let other = format!("__Host-chat_session={}", session_token("conv-elsewhere"));
    let response = r.issue_with(&[("cookie", &other)], &body).await;
    assert_eq!(response.status(), 403);

    let response = r.issue_with(&[], &body).await;
    assert_eq!(response.status(), 401);
    // A resume link is not a bearer token either.
    let link = r.link("conv-w").await;
    let response = r.issue_as(&link, "conv-w", BROKER_EMAIL).await;
    assert_eq!(response.status(), 401);
    // Nor a session.
    let as_cookie = format!("__Host-chat_session={link}");
    assert_eq!(
        r.issue_with(&[("cookie", &as_cookie)], &body)
            .await
            .status(),
        401
    );
    assert_eq!(
        r.poll(&[("cookie", &as_cookie)], "conversationId=conv-w")
            .await
            .status(),
        401
    );

    // Four links were issued above (three staff and the session) plus the one for `link`.
    assert_eq!(r.mail.sent().len(), 5);
}

#[tokio::test]
async fn malformed_issue_requests_are_400_and_send_nothing() {
    let r = ResumeApp::new().await;
    let auth = format!("Bearer {}", bearer("broker-1", "broker", &[]));
    // 64 + 1 + 189 = 254 characters: the longest address; one more is too long.
    let domain = format!(
        "{}.{}.{}.com",
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(57)
    );
    let longest = format!("{}@{domain}", "a".repeat(64));
    assert_eq!(longest.len(), 254);
    let long = format!("{}@d{domain}", "a".repeat(64));
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"conversationId": "conv-1", "email": "not-an-email"}),
            "invalid_email",
        ),
        (
            json!({"conversationId": "conv-1", "email": "a@b"}),
            "invalid_email",
        ),
        (
            json!({"conversationId": "conv-1", "email": "a b@example.com"}),
            "invalid_email",
        ),
        (
            json!({"conversationId": "conv-1", "email": "a@example.com\r\nBcc: x@y.z"}),
            "invalid_email",
        ),
        (
            json!({"conversationId": "conv-1", "email": long}),
            "invalid_email",
        ),
        (json!({"conversationId": "conv-1"}), "invalid_body"),
        (
            json!({"conversationId": "conv-1", "email": 7}),
            "invalid_body",
        ),
        (json!({"email": BROKER_EMAIL}), "invalid_body"),
        (
            json!({"conversationId": "conv:*", "email": BROKER_EMAIL}),
            "invalid_identifier",
        ),
        (
            json!({"conversationId": "conv-1", "email": BROKER_EMAIL, "token": "t"}),
            "invalid_body",
        ),
        (json!(["conv-1"]), "invalid_body"),
    ];
    for (body, code) in cases {
        let response = r.issue_with(&[("authorization", &auth)], &body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(body_json(&response)["code"], json!(code), "{body}");
    }
    let response = r
        .send(api_request(
            "POST",
            "/api/chat/resume",
            &[("authorization", &auth)],
            Some("{nope"),
        ))
        .await;
    assert_eq!(body_json(&response)["code"], json!("invalid_json"));
    assert_eq!(
        r.issue_as(&bearer("broker-1", "broker", &[]), "conv-1", &longest)
            .await
            .status(),
        201
    );
    assert_eq!(r.mail.sent().len(), 1);
}

#[tokio::test]
async fn issuing_is_limited_per_caller_and_per_address() {
    let r = ResumeApp::build(&[
        ("RATE_LIMIT_RESUME_MAX", "2"),
        ("RATE_LIMIT_RESUME_EMAIL_MAX", "3"),
    ])
    .await;
    let broker = bearer("broker-rl", "broker", &[]);
    assert_eq!(
        r.issue_as(&broker, "conv-1", "a@example.com")
            .await
            .status(),
        201
    );
    assert_eq!(
        r.issue_as(&broker, "conv-1", "b@example.com")
            .await
            .status(),
        201
    );
    let limited = r.issue_as(&broker, "conv-1", "c@example.com").await;
    assert_eq!(limited.status(), 429);
    assert_eq!(body_json(&limited)["code"], json!("rate_limited"));
    let retry: u64 = header(&limited, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    // Per address, whoever asks and however it is capitalised.
    let admins: Vec<String> = (0..3)
        .map(|i| bearer(&format!("admin-{i}"), "admin", &[]))
        .collect();
    assert_eq!(
        r.issue_as(&admins[0], "conv-1", "A@Example.com")
            .await
            .status(),
        201
    );
    assert_eq!(
        r.issue_as(&admins[1], "conv-1", "A@example.COM")
            .await
            .status(),
        201
    );
    let limited = r.issue_as(&admins[2], "conv-1", "A@example.com").await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = header(&limited, "retry-after").unwrap().parse().unwrap();
    assert!((3000..=3600).contains(&retry), "{retry}");
    // ("a@example.com" was the first, so "A@example.com" is its third link.)

    // The address never appears in a Redis key.
    let keys = r.events.redis_keys().await;
    assert!(
        keys.iter()
            .all(|k| !k.to_ascii_lowercase().contains("example.com")),
        "{keys:?}"
    );
    assert_eq!(r.mail.sent().len(), 4);
}

#[tokio::test]
async fn redeem_attempts_are_limited_per_client_address() {
    let r = ResumeApp::build(&[("RATE_LIMIT_RESUME_REDEEM_MAX", "3")]).await;
    let attempt = |ip: &'static str| {
        let req = api_request("GET", "/api/chat/resume?token=guess", &[], None);
        r.send(from_ip(req, ip))
    };
    for _ in 0..3 {
        assert_eq!(attempt("203.0.113.7").await.status(), 401);
    }
    let limited = attempt("203.0.113.7").await;
    assert_eq!(limited.status(), 429);
    assert!(header(&limited, "retry-after").is_some());
    // A genuine link from the throttled address waits too; another address is unaffected.
    let token = r.link("conv-ip").await;
    let req = api_request("GET", &format!("/api/chat/resume?token={token}"), &[], None);
    assert_eq!(r.send(from_ip(req, "203.0.113.7")).await.status(), 429);
    let req = api_request("GET", &format!("/api/chat/resume?token={token}"), &[], None);
    assert_eq!(r.send(from_ip(req, "198.51.100.9")).await.status(), 200);
}

#[tokio::test]
async fn without_redis_nothing_is_issued_or_redeemed_and_the_link_survives() {
    let r = ResumeApp::new().await;
    let token = r.link("conv-down").await;
    let url = format!("http://127.0.0.1:{}", closed_port());
    let down = r.sibling(&[("UPSTASH_REDIS_REST_URL", &url)]).await;

    let response = redeem_on(&down, &token).await;
    assert_eq!(response.status(), 503);
    assert_eq!(header(&response, "set-cookie"), None);
    assert!(!String::from_utf8_lossy(response.body().as_ref()).contains("127.0.0.1"));

    let auth = format!("Bearer {}", bearer("broker-1", "broker", &[]));
    let body = json!({"conversationId": "conv-down", "email": BROKER_EMAIL}).to_string();
    let response = handle(
        &down,
        api_request(
            "POST",
            "/api/chat/resume",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(&body),
        ),
    )
    .await;
    assert_eq!(response.status(), 503);
    assert_eq!(r.mail.sent().len(), 1, "only the first link was sent");

    // Redis is back: the link works, once.
    assert_eq!(r.redeem(&token).await.status(), 200);
    assert_eq!(r.redeem(&token).await.status(), 401);
}

#[tokio::test]
async fn a_failing_mail_provider_is_502_and_the_link_is_not_shown() {
    let events = EventsApp::new().await;
    let state = resume_state_over(&events, &[], Arc::new(FailingMail)).await;
    let auth = format!("Bearer {}", bearer("broker-1", "broker", &[]));
    let response = handle(
        &state,
        api_request(
            "POST",
            "/api/chat/resume",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(&json!({"conversationId": "conv-m", "email": BROKER_EMAIL}).to_string()),
        ),
    )
    .await;
    assert_eq!(response.status(), 502);
    let body = body_json(&response);
    assert_eq!(body["code"], json!("mail_failed"));
    assert!(body.get("resumeUrl").is_none());
}

#[tokio::test]
async fn a_session_issues_links_only_to_its_own_address_and_never_sees_them() {
    let r = ResumeApp::new().await;
    let own = format!("__Host-chat_session={}", session_token("conv-own"));
    let to = |email: &str| json!({"conversationId": "conv-own", "email": email});

    let response = r
        .issue_with(&[("cookie", &own)], &to("attacker@evil.example"))
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(body_json(&response)["code"], json!("resume_forbidden"));
    assert!(r.mail.sent().is_empty(), "nothing was sent");

    // Its own address (whatever the letter case): 201, and the link only in the mail.
    let response = r
        .issue_with(&[("cookie", &own)], &to("Customer@Example.com"))
        .await;
    assert_eq!(response.status(), 201, "{:?}", body_json(&response));
    let body = body_json(&response);
    assert_eq!(body.get("resumeUrl"), None);
    assert!(body["expiresAt"].is_string());
    let sent = r.mail.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].url.contains("/chat?resume="));

    // Staff keep the link in the answer.
    let response = r
        .issue_as(
            &bearer("broker-1", "broker", &[]),
            "conv-own",
            "any@example.com",
        )
        .await;
    assert!(body_json(&response)["resumeUrl"].is_string());
}

#[tokio::test]
async fn the_per_address_limit_counts_the_mailbox_not_its_spelling() {
    let r = ResumeApp::build(&[("RATE_LIMIT_RESUME_EMAIL_MAX", "2")]).await;
    let broker = bearer("broker-m", "broker", &[]);
    for email in ["pat+1@example.com", "Pat+2@Example.com"] {
        let response = r.issue_as(&broker, "conv-m", email).await;
        assert_eq!(response.status(), 201, "{email}");
    }
    for email in ["pat@example.com", "PAT+3@example.com"] {
        let response = r.issue_as(&broker, "conv-m", email).await;
        assert_eq!(response.status(), 429, "{email}: one mailbox, one budget");
    }
    let response = r.issue_as(&broker, "conv-m", "pat@example.org").await;
    assert_eq!(response.status(), 201, "another mailbox");
}

#[tokio::test]
async fn a_session_issue_from_another_origin_is_refused() {
    let r = ResumeApp::new().await;
    let own = format!("__Host-chat_session={}", session_token("conv-oi"));
    let body = json!({"conversationId": "conv-oi", "email": BROKER_EMAIL});
    let response = r
        .issue_with(
            &[("cookie", &own), ("origin", "https://evil.example")],
            &body,
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(body_json(&response)["code"], json!("origin_forbidden"));
    assert!(r.mail.sent().is_empty());
    let response = r
        .issue_with(
            &[("cookie", &own), ("origin", "http://localhost:3000")],
            &body,
        )
        .await;
    assert_eq!(response.status(), 201);
}
