//! `POST|GET /api/chat/resume` and `GET /api/chat/events` through the real handler over
//! the real Redis (Upstash proxy) and DynamoDB Local: links are issued only to those who
//! may, redeemed exactly once, set a session cookie the token endpoint accepts, and
//! hydrate history written by the real webhook handler.

use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use chat_core::handlers::resume::mail::{MailError, MailSender, ResumeLinkMail};
use chat_core::handlers::resume::{handle, ResumeConfig, ResumeState};
use chat_core::storage::redis::RedisClient;
use futures::future::BoxFuture;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Value};

use crate::helpers::{
    api_request, bearer, body_json, closed_port, env_with, hand_jwt, header, hs256, post_token,
    redis, session_token, stack_var, token_state, unix_now,
};
use crate::helpers::{flat_batch, Harness};

const BROKER_EMAIL: &str = "customer@example.com";

/// Records every link handed over for delivery.
#[derive(Default)]
struct RecordingMail {
    sent: Mutex<Vec<ResumeLinkMail>>,
}

impl RecordingMail {
    fn sent(&self) -> Vec<ResumeLinkMail> {
        self.sent.lock().unwrap().clone()
    }
}

impl MailSender for RecordingMail {
    fn send_resume_link<'a>(
        &'a self,
        mail: &'a ResumeLinkMail,
    ) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            self.sent.lock().unwrap().push(mail.clone());
            Ok(())
        })
    }
}

/// A mail provider that is down.
struct FailingMail;

impl MailSender for FailingMail {
    fn send_resume_link<'a>(
        &'a self,
        _mail: &'a ResumeLinkMail,
    ) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async { Err(MailError("provider answered 503".into())) })
    }
}

/// The resume state over the same table and Redis prefix as an events [`Harness`], so
/// what the webhook mirrors is what a redeemed link hydrates.
struct Resume {
    state: ResumeState,
    mail: Arc<RecordingMail>,
    events: Harness,
}

impl Resume {
    async fn new() -> Self {
        Self::build(&[]).await
    }

    async fn build(overrides: &[(&str, &str)]) -> Self {
        let events = Harness::new().await;
        let mail = Arc::new(RecordingMail::default());
        let state = state_over(&events, overrides, mail.clone()).await;
        Resume {
            state,
            mail,
            events,
        }
    }

    /// Another state over the same stores (e.g. with Redis unreachable).
    async fn sibling(&self, overrides: &[(&str, &str)]) -> ResumeState {
        state_over(&self.events, overrides, self.mail.clone()).await
    }

    async fn send(&self, req: Request) -> Response<Body> {
        handle(&self.state, req).await
    }

    async fn issue_with(&self, headers: &[(&str, &str)], body: &Value) -> Response<Body> {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.send(api_request(
            "POST",
            "/api/chat/resume",
            &all,
            Some(&body.to_string()),
        ))
        .await
    }

    async fn issue_as(&self, token: &str, conversation: &str, email: &str) -> Response<Body> {
        let auth = format!("Bearer {token}");
        self.issue_with(
            &[("authorization", &auth)],
            &json!({"conversationId": conversation, "email": email}),
        )
        .await
    }

    /// A fresh link token for `conversation`, issued by a broker.
    async fn link(&self, conversation: &str) -> String {
        let response = self
            .issue_as(
                &bearer("broker-1", "broker", &[]),
                conversation,
                BROKER_EMAIL,
            )
            .await;
        assert_eq!(response.status(), 201, "{:?}", body_json(&response));
        link_token(&body_json(&response))
    }

    async fn redeem(&self, token: &str) -> Response<Body> {
        redeem_on(&self.state, token).await
    }

    async fn poll(&self, headers: &[(&str, &str)], query: &str) -> Response<Body> {
        self.send(api_request(
            "GET",
            &format!("/api/chat/events?{query}"),
            headers,
            None,
        ))
        .await
    }
}

/// The resume configuration over an events harness's table and Redis key prefix.
pub fn config_over(events: &Harness, overrides: &[(&str, &str)]) -> ResumeConfig {
    let mut vars = vec![
        ("CHAT_EVENTS_TABLE", events.table.as_str()),
        ("REDIS_KEY_PREFIX", events.prefix.as_str()),
    ];
    vars.extend_from_slice(overrides);
    ResumeConfig::load(env_with(&vars)).expect("resume config")
}

async fn state_over(
    events: &Harness,
    overrides: &[(&str, &str)],
    mail: Arc<dyn MailSender>,
) -> ResumeState {
    let config = config_over(events, overrides);
    let redis = RedisClient::new(&config.redis);
    ResumeState::with_clients(config, redis, crate::helpers::dynamo().await, mail)
}

async fn redeem_on(state: &ResumeState, token: &str) -> Response<Body> {
    handle(
        state,
        api_request("GET", &format!("/api/chat/resume?token={token}"), &[], None),
    )
    .await
}

/// The token inside a `resumeUrl`.
fn link_token(body: &Value) -> String {
    let url = body["resumeUrl"].as_str().expect("resumeUrl");
    url.split_once("/chat?resume=")
        .expect("link shape")
        .1
        .to_owned()
}

/// `name=value` of the session cookie a response sets, and its attributes.
fn session_cookie(response: &Response<Body>) -> (String, Vec<String>) {
    let set_cookie = header(response, "set-cookie").expect("set-cookie");
    let mut parts = set_cookie.split("; ");
    let pair = parts.next().unwrap().to_owned();
    (pair, parts.map(str::to_owned).collect())
}

fn resume_claims(conversation: &str, exp: i64) -> Value {
    json!({
        "jti": "0123456789abcdef0123456789abcdef01234567",
        "conversationId": conversation,
        "email": BROKER_EMAIL,
        "aud": "chat-resume",
        "iat": exp - 600,
        "exp": exp,
    })
}

fn resume_secret() -> String {
    stack_var("RESUME_TOKEN_SECRET")
}

fn ids(events: &Value) -> Vec<String> {
    events
        .as_array()
        .expect("events array")
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The same request as if it came from another client address.
fn from_ip(mut req: Request, ip: &str) -> Request {
    let Some(RequestContext::ApiGatewayV2(mut ctx)) = req.request_context_ref().cloned() else {
        panic!("expected an HTTP API request");
    };
    ctx.http.source_ip = Some(ip.to_owned());
    req.extensions_mut()
        .insert(RequestContext::ApiGatewayV2(ctx));
    req
}

#[tokio::test]
async fn issue_then_redeem_sets_a_session_cookie_that_token_and_publish_accept() {
    let r = Resume::new().await;
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
        json!(r#"{"conversation:conv-r1":["history","presence","publish","subscribe"]}"#)
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
    let publish = {
        use chat_core::handlers::publish::{PublishConfig, PublishState};
        let uri = ably_mock.uri();
        let prefix = format!("{}:", crate::helpers::unique("pub"));
        PublishState::new(
            PublishConfig::load(crate::helpers::env_with(&[
                ("ABLY_REST_URL", uri.as_str()),
                ("REDIS_KEY_PREFIX", prefix.as_str()),
            ]))
            .unwrap(),
        )
    };
    for (channel, expected) in [
        ("conversation:conv-r1", 200),
        ("conversation:conv-other", 403),
    ] {
        let body =
            json!({"channelName": channel, "eventName": "message:user", "data": {"text": "hi"}})
                .to_string();
        let req = crate::helpers::api_request(
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
    let r = Resume::build(&[("CHAT_SESSION_TTL_SECONDS", "600")]).await;
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
    let r = Resume::new().await;
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
    let r = Resume::new().await;
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
    let r = Resume::new().await;
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
    let forged_claims = crate::helpers::b64url(
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
                crate::helpers::b64url(br#"{"alg":"none","typ":"JWT"}"#),
                crate::helpers::b64url(valid_claims.to_string().as_bytes())
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
async fn only_staff_or_the_conversations_own_session_may_issue() {
    let r = Resume::new().await;
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
    let r = Resume::new().await;
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
    let r = Resume::build(&[
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
    let r = Resume::build(&[("RATE_LIMIT_RESUME_REDEEM_MAX", "3")]).await;
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
    let r = Resume::new().await;
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
    let events = Harness::new().await;
    let state = state_over(&events, &[], Arc::new(FailingMail)).await;
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
async fn redeeming_hydrates_the_newest_20_events_from_redis_then_from_dynamodb() {
    let r = Resume::new().await;
    let start = (unix_now() - 600) * 1000;
    let stored = r.events.post(&flat_batch("conv-h", 25, start)).await;
    assert_eq!(stored.status(), 200, "{:?}", body_json(&stored));
    // Another conversation's events never leak in.
    assert_eq!(
        r.events
            .post(&flat_batch("conv-h2", 3, start))
            .await
            .status(),
        200
    );
    let newest: Vec<String> = (5..25).rev().map(|i| format!("conv-h-m{i}")).collect();

    let response = r.redeem(&r.link("conv-h").await).await;
    assert_eq!(response.status(), 200);
    let body = body_json(&response);
    assert_eq!(body["conversationId"], json!("conv-h"));
    assert_eq!(ids(&body["events"]), newest);
    let first = &body["events"][0];
    assert_eq!(first["event_type"], json!("message:user"));
    assert_eq!(first["payload"], json!({"text": "message 24"}));
    assert_eq!(first["channel"], json!("conversation:conv-h"));

    // With the Redis list gone, the archive answers in the same order and refills Redis.
    let list = format!("{}chat:conversation:conv-h:events", r.events.prefix);
    redis().command(&["DEL", list.as_str()]).await.unwrap();
    let response = r.redeem(&r.link("conv-h").await).await;
    assert_eq!(response.status(), 200);
    let from_archive = body_json(&response);
    assert_eq!(ids(&from_archive["events"]), newest);
    assert_eq!(from_archive["events"], body["events"]);
    let cached: Vec<String> = r
        .events
        .cached("conv-h")
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    // Refilled with every event DynamoDB holds (the list holds up to 100).
    let all: Vec<String> = (0..25).rev().map(|i| format!("conv-h-m{i}")).collect();
    assert_eq!(cached, all);
}

#[tokio::test]
async fn a_spent_link_still_yields_a_session_when_history_cannot_be_read() {
    // The Redis list is empty and the archive table does not exist: history fails.
    let r = Resume::new().await;
    let broken = r
        .sibling(&[("CHAT_EVENTS_TABLE", "no-such-table-for-resume-tests")])
        .await;
    let token = r.link("conv-nohist").await;
    let response = redeem_on(&broken, &token).await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    assert!(session_cookie(&response)
        .0
        .starts_with("__Host-chat_session="));
    assert_eq!(
        body_json(&response),
        json!({"conversationId": "conv-nohist", "events": [], "realtime": true, "historyUnavailable": true})
    );
    // Polling the same history is an honest 503.
    let auth = format!("Bearer {}", bearer("broker-1", "broker", &[]));
    let poll = handle(
        &broken,
        api_request(
            "GET",
            "/api/chat/events?conversationId=conv-nohist",
            &[("authorization", &auth)],
            None,
        ),
    )
    .await;
    assert_eq!(poll.status(), 503);
    assert_eq!(body_json(&poll)["code"], json!("history_unavailable"));
}

#[tokio::test]
async fn a_redeemed_link_tells_the_client_to_poll_when_realtime_is_off() {
    let r = Resume::build(&[("ENABLE_ABLY_REALTIME", "false")]).await;
    let response = r.redeem(&r.link("conv-p").await).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body_json(&response)["realtime"], json!(false));
    let session = session_cookie(&response).0;
    let response = r
        .poll(&[("cookie", &session)], "conversationId=conv-p")
        .await;
    assert_eq!(
        body_json(&response),
        json!({"events": [], "cursor": "", "realtime": false})
    );
}

#[tokio::test]
async fn the_sample_events_answer_as_documented() {
    let r = Resume::new().await;
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
    let r = Resume::build(&[("RESUME_TOKEN_TTL_SECONDS", "120")]).await;
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

#[tokio::test]
async fn forged_staff_events_are_absent_from_redeemed_history_and_from_polls() {
    let r = Resume::new().await;
    let conv = "conv-forged-h";
    let start = (unix_now() - 600) * 1000;
    let body = crate::helpers::forged_and_genuine(conv, start);
    assert_eq!(r.events.post(&body).await.status(), 200);
    let (forged, genuine) = crate::helpers::forged_ids(conv);
    let newest_first: Vec<String> = genuine.iter().rev().cloned().collect();

    // Redeemed history: from Redis, then (the list gone) from DynamoDB, genuine only.
    let response = r.redeem(&r.link(conv).await).await;
    let from_cache = body_json(&response);
    assert_eq!(ids(&from_cache["events"]), newest_first);
    assert!(from_cache["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["trusted"] == true));
    let list = format!("{}chat:conversation:{conv}:events", r.events.prefix);
    assert_eq!(r.events.cached(conv).await.len(), 8, "the record keeps all");
    redis().command(&["DEL", list.as_str()]).await.unwrap();
    let response = r.redeem(&r.link(conv).await).await;
    assert_eq!(ids(&body_json(&response)["events"]), newest_first);

    // Polling: genuine only, oldest first.
    let session = format!("__Host-chat_session={}", session_token(conv));
    let response = r
        .poll(&[("cookie", &session)], &format!("conversationId={conv}"))
        .await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    let page = body_json(&response);
    assert_eq!(ids(&page["events"]), genuine);
    // Forgeries after the cursor are withheld, and the cursor moves past them.
    let later = json!({"items": (8..10).map(|i| json!({"id": format!("{conv}-{i}"),
        "name": "message:ai", "channel": format!("conversation:{conv}"),
        "clientId": format!("customer-{conv}"), "timestamp": start + i, "data": {"text": "forged"}}))
        .collect::<Vec<_>>()});
    assert_eq!(
        r.events.post(later.to_string().as_bytes()).await.status(),
        200
    );
    let cursor = page["cursor"].as_str().unwrap().to_owned();
    let response = r
        .poll(
            &[("cookie", &session)],
            &format!("conversationId={conv}&after={cursor}"),
        )
        .await;
    let next = body_json(&response);
    assert_eq!(next["events"], json!([]));
    assert_ne!(
        next["cursor"],
        json!(cursor),
        "the cursor moved past the withheld events"
    );
    let response = r
        .poll(
            &[("cookie", &session)],
            &format!(
                "conversationId={conv}&after={}",
                next["cursor"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(body_json(&response)["events"], json!([]));
    assert_eq!(body_json(&response)["cursor"], next["cursor"]);
    assert!(forged.iter().all(|id| !ids(&page["events"]).contains(id)));
}

#[tokio::test]
async fn a_session_issues_links_only_to_its_own_address_and_never_sees_them() {
    let r = Resume::new().await;
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
    let r = Resume::build(&[("RATE_LIMIT_RESUME_EMAIL_MAX", "2")]).await;
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
    let r = Resume::new().await;
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

/// The resume function under a realtime rollout, for `rollout.rs`.
pub struct Rollout(Resume);

impl Rollout {
    pub async fn new(overrides: &[(&str, &str)]) -> Self {
        Rollout(Resume::build(overrides).await)
    }

    /// What a redeemed link for `conversation` tells the client.
    pub async fn realtime_after_redeem(&self, conversation: &str) -> Value {
        let response = self.0.redeem(&self.0.link(conversation).await).await;
        assert_eq!(response.status(), 200, "{:?}", body_json(&response));
        body_json(&response)["realtime"].clone()
    }

    /// What a poll of `conversation` by its session tells the client.
    pub async fn realtime_of_poll(&self, conversation: &str) -> Value {
        let session = format!("__Host-chat_session={}", session_token(conversation));
        let response = self
            .0
            .poll(
                &[("cookie", &session)],
                &format!("conversationId={conversation}"),
            )
            .await;
        assert_eq!(response.status(), 200, "{:?}", body_json(&response));
        body_json(&response)["realtime"].clone()
    }
}
