//! Resume links: issued, redeemed exactly once into a session cookie the token and
//! publish endpoints accept, refused when expired, tampered with or foreign.

use std::time::UNIX_EPOCH;

use chat_core::handlers::resume::ResumeConfig;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn issue_then_redeem_sets_a_session_cookie_that_token_and_publish_accept() {
    let r = ResumeApp::new().await;
    let auth = format!("Bearer {}", bearer("broker-1", "broker", &[]));
    // The link is built from PUBLIC_APP_URL, whatever Host the request claims.
    let response = r
        .issue_with(
            &[
                ("authorization", &auth),
                ("host", "evil.example"),
                ("x-forwarded-host", "evil.example"),
            ],
            &json!({"conversationId": "conv-r1", "email": "Ann@Example.com"}),
        )
        .await;
    assert_eq!(response.status(), 201, "{:?}", body_json(&response));
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    let body = body_json(&response);
    let url = body["resumeUrl"].as_str().unwrap().to_owned();
    let base = format!("{}/chat?resume=", stack_var("PUBLIC_APP_URL"));
    assert!(url.starts_with(&base), "{url}");
    assert!(!url.contains("evil"));
    let expires_at = chrono::DateTime::parse_from_rfc3339(body["expiresAt"].as_str().unwrap())
        .expect("ISO-8601 expiresAt")
        .timestamp();
    assert!(
        (expires_at - (unix_now() + 86_400)).abs() <= 5,
        "{expires_at}"
    );

    // The mail sender got exactly this link, once.
    let sent = r.mail.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].url, url);
    assert_eq!(sent[0].conversation_id, "conv-r1");
    assert_eq!(sent[0].email.as_str(), "Ann@example.com");
    let mailed_expiry = sent[0].expires_at.duration_since(UNIX_EPOCH).unwrap();
    assert_eq!(mailed_expiry.as_secs() as i64, expires_at);
    assert!(!format!("{:?}", sent[0]).contains(&link_token(&body)));

    // Redeem: the cookie carries every attribute, the body names the conversation.
    let response = r.redeem(&link_token(&body)).await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    let (pair, attributes) = session_cookie(&response);
    assert!(pair.starts_with("__Host-chat_session="), "{pair}");
    assert_eq!(
        attributes,
        [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Max-Age=86400"
        ]
    );
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    assert_eq!(header(&response, "referrer-policy"), Some("no-referrer"));
    assert_eq!(
        body_json(&response),
        json!({"conversationId": "conv-r1", "events": [], "realtime": true})
    );

    // The session is one for this conversation only: ably-token scopes it so.
    let token = token_state(&[]);
    let ably = post_token(&token, &[("cookie", &pair)], None).await;
    assert_eq!(ably.status(), 200, "{:?}", body_json(&ably));
    let ably = body_json(&ably);
    assert_eq!(ably["clientId"], json!("customer-conv-r1"));
    assert_eq!(
        ably["capability"],
        json!(format!(r#"{{"conversation:conv-r1":{OWN_OPS}}}"#))
    );
    let other = post_token(
        &token,
        &[("cookie", &pair), ("content-type", "application/json")],
        Some(r#"{"conversationId":"conv-other"}"#),
    )
    .await;
    assert_eq!(other.status(), 403);

    // And it reads that conversation's history, but no other.
    assert_eq!(
        r.poll(&[("cookie", &pair)], "conversationId=conv-r1")
            .await
            .status(),
        200
    );
    assert_eq!(
        r.poll(&[("cookie", &pair)], "conversationId=conv-other")
            .await
            .status(),
        403
    );

    // And ably-publish lets it publish in its own conversation only.
    let ably_mock = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(
            "/channels/conversation%3Aconv-r1/messages",
        ))
        .respond_with(wiremock::ResponseTemplate::new(201))
        .expect(1)
        .mount(&ably_mock)
        .await;
    let publish = publish_state(&ably_mock.uri(), &[]);
    for (channel, expected) in [
        ("conversation:conv-r1", 200),
        ("conversation:conv-other", 403),
    ] {
        let body =
            json!({"channelName": channel, "eventName": "message:user", "data": {"text": "hi"}})
                .to_string();
        let req = api_request(
            "POST",
            "/api/ably/publish",
            &[("cookie", &pair)],
            Some(&body),
        );
        let res = chat_core::handlers::publish::handle(&publish, req).await;
        assert_eq!(res.status(), expected, "{channel}: {:?}", body_json(&res));
    }
    ably_mock.verify().await;
}

#[tokio::test]
async fn a_post_with_a_token_redeems_and_the_session_ttl_is_configurable() {
    let r = ResumeApp::build(&[("CHAT_SESSION_TTL_SECONDS", "600")]).await;
    let token = r.link("conv-post").await;
    let response = r
        .send(api_request(
            "POST",
            "/api/chat/resume",
            &[("content-type", "application/json")],
            Some(&json!({ "token": token }).to_string()),
        ))
        .await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    let (pair, attributes) = session_cookie(&response);
    assert!(attributes.contains(&"Max-Age=600".to_owned()));
    let session = pair.split_once('=').unwrap().1;
    let claims: Value = {
        let payload = session.split('.').nth(1).unwrap();
        use base64::Engine as _;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["aud"], json!("chat-session"));
    assert_eq!(claims["conversationId"], json!("conv-post"));
    assert_eq!(claims["email"], json!(BROKER_EMAIL));
    let lifetime = claims["exp"].as_i64().unwrap() - unix_now();
    assert!((595..=600).contains(&lifetime), "{lifetime}");

    // The same link through GET is now spent.
    assert_eq!(r.redeem(&token).await.status(), 401);
}

#[tokio::test]
async fn a_link_is_redeemed_once_and_its_use_is_remembered_past_expiry() {
    let r = ResumeApp::new().await;
    let token = r.link("conv-once").await;
    assert_eq!(r.redeem(&token).await.status(), 200);
    let again = r.redeem(&token).await;
    assert_eq!(again.status(), 401);
    assert_eq!(body_json(&again)["code"], json!("resume_link_used"));
    assert_eq!(header(&again, "set-cookie"), None);

    // The marker lives under the prefix, keyed by the jti, at least as long as the link.
    let keys = r.events.redis_keys().await;
    let used: Vec<&String> = keys.iter().filter(|k| k.contains("resume:used:")).collect();
    assert_eq!(used.len(), 1, "{keys:?}");
    assert!(used[0].starts_with(&r.events.prefix));
    let ttl = redis()
        .command(&["TTL", used[0].as_str()])
        .await
        .unwrap()
        .as_i64()
        .unwrap();
    assert!(ttl >= 86_400, "{ttl}");
}

#[tokio::test]
async fn of_concurrent_redeems_exactly_one_succeeds() {
    let r = ResumeApp::new().await;
    let token = r.link("conv-race").await;
    let responses = futures::future::join_all((0..10).map(|_| r.redeem(&token))).await;
    let ok = responses.iter().filter(|r| r.status() == 200).count();
    let used = responses
        .iter()
        .filter(|r| r.status() == 401 && body_json(r)["code"] == json!("resume_link_used"))
        .count();
    assert_eq!((ok, used), (1, 9));
    let cookies = responses
        .iter()
        .filter(|r| header(r, "set-cookie").is_some())
        .count();
    assert_eq!(cookies, 1);
}

#[tokio::test]
async fn expired_tampered_and_foreign_tokens_are_401_and_consume_nothing() {
    let r = ResumeApp::new().await;
    let secret = resume_secret();
    let now = unix_now();

    let expired = r
        .redeem(&hs256(&resume_claims("conv-x", now - 5), &secret))
        .await;
    assert_eq!(expired.status(), 401);
    assert_eq!(body_json(&expired)["code"], json!("resume_link_expired"));

    let genuine = r.link("conv-x").await;
    let (head, rest) = genuine.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let forged_claims = b64url(
        resume_claims("conv-victim", now + 600)
            .to_string()
            .as_bytes(),
    );
    let tampered_signature = {
        let mut s = signature.to_owned();
        let last = if s.ends_with('A') { "B" } else { "A" };
        s.replace_range(s.len() - 1.., last);
        s
    };
    let without_exp = {
        let mut c = resume_claims("conv-x", now + 600);
        c.as_object_mut().unwrap().remove("exp");
        c
    };
    let without_aud = {
        let mut c = resume_claims("conv-x", now + 600);
        c.as_object_mut().unwrap().remove("aud");
        c
    };
    let valid_claims = resume_claims("conv-x", now + 600);
    let mut session_audience = valid_claims.clone();
    session_audience["aud"] = json!("chat-session");
    let cases: Vec<(&str, String)> = vec![
        (
            "claims swapped under the signature",
            format!("{head}.{forged_claims}.{signature}"),
        ),
        (
            "signature altered",
            format!(
                "{head}.{}.{tampered_signature}",
                rest.split_once('.').unwrap().0
            ),
        ),
        ("bearer JWT", bearer("broker-1", "broker", &[])),
        ("session JWT", session_token("conv-x")),
        (
            "signed with the JWT secret",
            hs256(&valid_claims, &stack_var("JWT_SECRET")),
        ),
        ("no exp", hs256(&without_exp, &secret)),
        ("no aud", hs256(&without_aud, &secret)),
        ("session audience", hs256(&session_audience, &secret)),
        (
            "HS512",
            hand_jwt(
                &json!({"alg": "HS512", "typ": "JWT"}),
                &valid_claims,
                &secret,
            ),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64url(br#"{"alg":"none","typ":"JWT"}"#),
                b64url(valid_claims.to_string().as_bytes())
            ),
        ),
        ("not a JWT", "not-a-token".into()),
        ("oversized", "a".repeat(9000)),
    ];
    for (why, token) in cases {
        let response = r.redeem(&token).await;
        assert_eq!(response.status(), 401, "{why}: {:?}", body_json(&response));
        assert_eq!(
            body_json(&response)["code"],
            json!("invalid_token"),
            "{why}"
        );
        assert_eq!(header(&response, "set-cookie"), None, "{why}");
    }
    let keys = r.events.redis_keys().await;
    assert!(
        !keys.iter().any(|k| k.contains("resume:used:")),
        "nothing refused may be consumed: {keys:?}"
    );

    // Without a token, the request is malformed.
    let missing = r
        .send(api_request("GET", "/api/chat/resume", &[], None))
        .await;
    assert_eq!(missing.status(), 400);
    assert_eq!(body_json(&missing)["code"], json!("missing_token"));

    // The genuine link was never touched by any of this.
    assert_eq!(r.redeem(&genuine).await.status(), 200);
}

#[tokio::test]
async fn the_sample_events_answer_as_documented() {
    let r = ResumeApp::new().await;
    let event = |name: &str| {
        let path = format!(
            "{}/../events/resume/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let response = r.send(event("issue")).await;
    assert_eq!(response.status(), 201, "{:?}", body_json(&response));
    let url = body_json(&response)["resumeUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    // The sample's Host is the execute-api domain; the link points at the app.
    assert!(url.starts_with(&format!("{}/chat?resume=", stack_var("PUBLIC_APP_URL"))));
    assert_eq!(r.mail.sent().len(), 1);

    let response = r.send(event("poll-events")).await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    assert_eq!(
        body_json(&response),
        json!({"events": [], "cursor": "", "realtime": true})
    );

    let response = r.send(event("poll-events-after")).await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    assert_eq!(
        body_json(&response),
        json!({"events": [], "cursor": "MjAyMy0xMS0xNFQyMjoxMzoyMC4wMDBaI21zZy0xOjA", "realtime": true})
    );

    let response = r.send(event("redeem-bad-token")).await;
    assert_eq!(response.status(), 401);
    assert_eq!(body_json(&response)["code"], json!("invalid_token"));
}

#[tokio::test]
async fn links_live_as_long_as_configured() {
    let r = ResumeApp::build(&[("RESUME_TOKEN_TTL_SECONDS", "120")]).await;
    let response = r
        .issue_as(&bearer("broker-1", "broker", &[]), "conv-ttl", BROKER_EMAIL)
        .await;
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(body_json(&response)["expiresAt"].as_str().unwrap())
            .unwrap()
            .timestamp();
    assert!((expires_at - (unix_now() + 120)).abs() <= 5, "{expires_at}");
    let mailed = r.mail.sent()[0]
        .expires_at
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(mailed, expires_at);
    assert!(ResumeConfig::load(env_with(&[("CHAT_SESSION_TTL_SECONDS", "0")])).is_err());
    assert!(ResumeConfig::load(env_with(&[("RESUME_TOKEN_TTL_SECONDS", "0")])).is_err());
}
