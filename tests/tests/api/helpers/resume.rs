//! The resume function over an events function's stores: its builder ([`ResumeApp`]),
//! mail senders that record or fail, and what its answers hold.

use std::sync::{Arc, Mutex};

use chat_core::handlers::resume::mail::{MailError, MailSender, ResumeLinkMail};
use chat_core::handlers::resume::{handle, ResumeConfig, ResumeState};
use chat_core::storage::redis::RedisClient;
use futures::future::BoxFuture;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Value};

use super::{
    api_request, bearer, body_json, dynamo, env_with, header, session_token, stack_var, EventsApp,
    RETENTION_DAYS,
};

/// A resume function over the same stores as an events function: its table, its Redis key
/// prefix, and the Redis REST endpoint at `redis_url`.
pub async fn resume_over(
    table: &str,
    prefix: &str,
    redis_url: &str,
) -> chat_core::handlers::resume::ResumeState {
    use chat_core::handlers::resume::{mail::LogMailSender, ResumeConfig, ResumeState};
    let config = ResumeConfig::load(env_with(&[
        ("CHAT_EVENTS_TABLE", table),
        ("REDIS_KEY_PREFIX", prefix),
        ("UPSTASH_REDIS_REST_URL", redis_url),
        ("EVENT_RETENTION_DAYS", RETENTION_DAYS),
    ]))
    .expect("resume config");
    let redis = RedisClient::new(&config.redis);
    ResumeState::with_clients(
        config,
        redis,
        dynamo().await,
        std::sync::Arc::new(LogMailSender),
    )
}

/// One page of `GET /api/chat/events` for a broker: the event ids and the next cursor.
pub async fn poll_ids(
    state: &chat_core::handlers::resume::ResumeState,
    conversation: &str,
    after: &str,
) -> (Vec<String>, String) {
    let auth = format!("Bearer {}", bearer("broker-poll", "broker", &[]));
    let query = format!("conversationId={conversation}&after={after}");
    let response = chat_core::handlers::resume::handle(
        state,
        api_request(
            "GET",
            &format!("/api/chat/events?{query}"),
            &[("authorization", &auth)],
            None,
        ),
    )
    .await;
    let body = body_json(&response);
    assert_eq!(response.status(), 200, "{body}");
    let ids = body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_str().expect("an id").to_owned())
        .collect();
    (ids, body["cursor"].as_str().expect("a cursor").to_owned())
}

pub const BROKER_EMAIL: &str = "customer@example.com";

/// Records every link handed over for delivery.
#[derive(Default)]
pub struct RecordingMail {
    sent: Mutex<Vec<ResumeLinkMail>>,
}

impl RecordingMail {
    pub fn sent(&self) -> Vec<ResumeLinkMail> {
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
pub struct FailingMail;

impl MailSender for FailingMail {
    fn send_resume_link<'a>(
        &'a self,
        _mail: &'a ResumeLinkMail,
    ) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async { Err(MailError("provider answered 503".into())) })
    }
}

/// The resume state over the same table and Redis prefix as an events [`EventsApp`], so
/// what the webhook mirrors is what a redeemed link hydrates.
pub struct ResumeApp {
    pub state: ResumeState,
    pub mail: Arc<RecordingMail>,
    pub events: EventsApp,
}

impl ResumeApp {
    pub async fn new() -> Self {
        Self::build(&[]).await
    }

    pub async fn build(overrides: &[(&str, &str)]) -> Self {
        let events = EventsApp::new().await;
        let mail = Arc::new(RecordingMail::default());
        let state = resume_state_over(&events, overrides, mail.clone()).await;
        ResumeApp {
            state,
            mail,
            events,
        }
    }

    /// Another state over the same stores (e.g. with Redis unreachable).
    pub async fn sibling(&self, overrides: &[(&str, &str)]) -> ResumeState {
        resume_state_over(&self.events, overrides, self.mail.clone()).await
    }

    pub async fn send(&self, req: Request) -> Response<Body> {
        handle(&self.state, req).await
    }

    pub async fn issue_with(&self, headers: &[(&str, &str)], body: &Value) -> Response<Body> {
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

    pub async fn issue_as(&self, token: &str, conversation: &str, email: &str) -> Response<Body> {
        let auth = format!("Bearer {token}");
        self.issue_with(
            &[("authorization", &auth)],
            &json!({"conversationId": conversation, "email": email}),
        )
        .await
    }

    /// A fresh link token for `conversation`, issued by a broker.
    pub async fn link(&self, conversation: &str) -> String {
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

    pub async fn redeem(&self, token: &str) -> Response<Body> {
        redeem_on(&self.state, token).await
    }

    pub async fn poll(&self, headers: &[(&str, &str)], query: &str) -> Response<Body> {
        self.send(api_request(
            "GET",
            &format!("/api/chat/events?{query}"),
            headers,
            None,
        ))
        .await
    }

    /// What a redeemed link for `conversation` tells the client.
    pub async fn realtime_after_redeem(&self, conversation: &str) -> Value {
        let response = self.redeem(&self.link(conversation).await).await;
        assert_eq!(response.status(), 200, "{:?}", body_json(&response));
        body_json(&response)["realtime"].clone()
    }

    /// What a poll of `conversation` by its session tells the client.
    pub async fn realtime_of_poll(&self, conversation: &str) -> Value {
        let session = format!("__Host-chat_session={}", session_token(conversation));
        let response = self
            .poll(
                &[("cookie", &session)],
                &format!("conversationId={conversation}"),
            )
            .await;
        assert_eq!(response.status(), 200, "{:?}", body_json(&response));
        body_json(&response)["realtime"].clone()
    }
}

/// The resume configuration over an events harness's table and Redis key prefix.
pub fn resume_config(events: &EventsApp, overrides: &[(&str, &str)]) -> ResumeConfig {
    let mut vars = vec![
        ("CHAT_EVENTS_TABLE", events.table.as_str()),
        ("REDIS_KEY_PREFIX", events.prefix.as_str()),
    ];
    vars.extend_from_slice(overrides);
    ResumeConfig::load(env_with(&vars)).expect("resume config")
}

/// The resume function over `events`' stores, with `mail` as its mail sender.
pub async fn resume_state_over(
    events: &EventsApp,
    overrides: &[(&str, &str)],
    mail: Arc<dyn MailSender>,
) -> ResumeState {
    let config = resume_config(events, overrides);
    let redis = RedisClient::new(&config.redis);
    ResumeState::with_clients(config, redis, crate::helpers::dynamo().await, mail)
}

/// The resume function over `events`' table and Redis key prefix through the given
/// clients (counting, refusing or unreachable ones), mail only logged.
pub fn resume_state_with(
    events: &EventsApp,
    overrides: &[(&str, &str)],
    redis: RedisClient,
    dynamo: aws_sdk_dynamodb::Client,
) -> ResumeState {
    let config = resume_config(events, overrides);
    ResumeState::with_clients(
        config,
        redis,
        dynamo,
        Arc::new(chat_core::handlers::resume::mail::LogMailSender),
    )
}

pub async fn redeem_on(state: &ResumeState, token: &str) -> Response<Body> {
    handle(
        state,
        api_request("GET", &format!("/api/chat/resume?token={token}"), &[], None),
    )
    .await
}

/// The token inside a `resumeUrl`.
pub fn link_token(body: &Value) -> String {
    let url = body["resumeUrl"].as_str().expect("resumeUrl");
    url.split_once("/chat?resume=")
        .expect("link shape")
        .1
        .to_owned()
}

/// `name=value` of the session cookie a response sets, and its attributes.
pub fn session_cookie(response: &Response<Body>) -> (String, Vec<String>) {
    let set_cookie = header(response, "set-cookie").expect("set-cookie");
    let mut parts = set_cookie.split("; ");
    let pair = parts.next().unwrap().to_owned();
    (pair, parts.map(str::to_owned).collect())
}

pub fn resume_claims(conversation: &str, exp: i64) -> Value {
    json!({
        "jti": "0123456789abcdef0123456789abcdef01234567",
        "conversationId": conversation,
        "email": BROKER_EMAIL,
        "aud": "chat-resume",
        "iat": exp - 600,
        "exp": exp,
    })
}

pub fn resume_secret() -> String {
    stack_var("RESUME_TOKEN_SECRET")
}

pub fn ids(events: &Value) -> Vec<String> {
    events
        .as_array()
        .expect("events array")
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The same request as if it came from another client address.
pub fn from_ip(mut req: Request, ip: &str) -> Request {
    let Some(RequestContext::ApiGatewayV2(mut ctx)) = req.request_context_ref().cloned() else {
        panic!("expected an HTTP API request");
    };
    ctx.http.source_ip = Some(ip.to_owned());
    req.extensions_mut()
        .insert(RequestContext::ApiGatewayV2(ctx));
    req
}
