//! `openapi.yaml` against the code: every route each function serves is described (and
//! nothing else is), and the answers of the real handlers to a representative set of
//! valid and invalid requests over the local stack are documented for their operation,
//! with bodies that match the documented schema and the documented headers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chat_core::ably::webhook::signature::sign;
use chat_core::ably::{AblyClient, RetryPolicy};
use chat_core::handlers::resume::mail::LogMailSender;
use chat_core::handlers::{ably_events, publish, resume, stats, token};
use chat_core::platform::http::Service;
use chat_core::storage::redis::RedisClient;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::Harness;
use crate::helpers::{
    api_request, bearer, closed_port, env_with, redis_config, session_token, token_state, unique,
};

const SERVICES: [Service; 5] = [
    token::SERVICE,
    publish::SERVICE,
    ably_events::SERVICE,
    stats::SERVICE,
    resume::SERVICE,
];

/// The signing key `helpers::Harness` configures.
const WEBHOOK_KEY: &str = "xVLyHw.DQrNxQ";
const WEBHOOK_SECRET: &str = "fakeSecretForTestVectorsOnly";

pub fn spec() -> Value {
    let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml"));
    serde_norway::from_str(text).expect("openapi.yaml is YAML")
}

fn operation<'a>(spec: &'a Value, path: &str, method: &str) -> Option<&'a Value> {
    spec["paths"]
        .get(path)
        .and_then(|item| item.get(method.to_ascii_lowercase()))
}

/// Follows a local `$ref` (`#/a/b`) once, if `value` is one.
fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => spec
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {reference}")),
        None => value,
    }
}

#[test]
fn every_route_of_every_function_is_described_and_nothing_else() {
    let spec = spec();
    assert_eq!(spec["openapi"], "3.1.0");
    let mut served = BTreeSet::new();
    for service in SERVICES {
        for route in service.routes {
            for method in route.methods.iter().chain(&["OPTIONS"]) {
                assert!(
                    operation(&spec, route.path, method).is_some(),
                    "{} serves {method} {} but openapi.yaml does not describe it",
                    service.name,
                    route.path
                );
                served.insert((route.path.to_owned(), method.to_ascii_lowercase()));
            }
        }
    }
    let paths = spec["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            if ["parameters", "summary", "description", "servers"].contains(&method.as_str()) {
                continue;
            }
            assert!(
                served.contains(&(path.clone(), method.clone())),
                "openapi.yaml describes {method} {path}, which no function serves"
            );
        }
    }
}

// --- what the handlers answer -------------------------------------------------------------

/// One answer of a real handler.
struct Seen {
    what: &'static str,
    path: String,
    method: String,
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

#[derive(Default)]
struct Answers(Vec<Seen>);

impl Answers {
    fn add(&mut self, what: &'static str, req: &(String, String), res: Response<Body>) {
        self.0.push(Seen {
            what,
            path: req.0.clone(),
            method: req.1.clone(),
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.body().as_ref().to_vec(),
        });
    }
}

/// A request and what `Answers::add` needs to know of it.
fn request(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (Request, (String, String)) {
    let path = uri.split_once('?').map_or(uri, |(p, _)| p).to_owned();
    (
        api_request(method, uri, headers, body),
        (path, method.to_owned()),
    )
}

fn auth(token: &str) -> String {
    format!("Bearer {token}")
}

macro_rules! send {
    ($answers:expr, $what:expr, $handle:path, $state:expr, $method:expr, $uri:expr, $headers:expr, $body:expr) => {{
        let (req, key) = request($method, $uri, $headers, $body);
        let res = $handle($state, req).await;
        $answers.add($what, &key, res);
    }};
}

async fn token_answers(a: &mut Answers) {
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
    send!(a, "token: defaults", t, &s, "POST", p, &h, None);
    send!(
        a,
        "token: jwt",
        t,
        &s,
        "POST",
        p,
        &h,
        Some(r#"{"format":"jwt","ttlSeconds":60}"#)
    );
    send!(
        a,
        "token: form",
        t,
        &s,
        "POST",
        p,
        &[
            ("authorization", customer.as_str()),
            ("content-type", "application/x-www-form-urlencoded")
        ],
        Some("format=jwt&conversationId=conv-1")
    );
    send!(
        a,
        "token: session",
        t,
        &s,
        "POST",
        p,
        &[("cookie", cookie.as_str())],
        Some("{}")
    );
    send!(a, "token: no identity", t, &s, "POST", p, &[], None);
    send!(
        a,
        "token: bad bearer",
        t,
        &s,
        "POST",
        p,
        &[("authorization", "Bearer x.y.z")],
        None
    );
    send!(a, "token: bad json", t, &s, "POST", p, &h, Some("{"));
    send!(
        a,
        "token: bad format",
        t,
        &s,
        "POST",
        p,
        &h,
        Some(r#"{"format":"xml"}"#)
    );
    send!(
        a,
        "token: bad ttl",
        t,
        &s,
        "POST",
        p,
        &h,
        Some(r#"{"ttlSeconds":0}"#)
    );
    send!(
        a,
        "token: bad id",
        t,
        &s,
        "POST",
        p,
        &h,
        Some(r#"{"conversationId":"a:b"}"#)
    );
    send!(
        a,
        "token: not theirs",
        t,
        &s,
        "POST",
        p,
        &h,
        Some(r#"{"conversationId":"conv-2"}"#)
    );
    send!(a, "token: too large", t, &s, "POST", p, &h, Some(&big));
    send!(
        a,
        "token: preflight",
        t,
        &s,
        "OPTIONS",
        p,
        &[("origin", "http://localhost:3000")],
        None
    );

    let limited = token_state(&[("RATE_LIMIT_TOKEN_MAX", "1")]);
    send!(a, "token: first", t, &limited, "POST", p, &h, None);
    send!(a, "token: rate limited", t, &limited, "POST", p, &h, None);
    let off = token_state(&[("ENABLE_ABLY_REALTIME", "false")]);
    send!(a, "token: realtime off", t, &off, "POST", p, &h, None);
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let no_redis = token_state(&[("UPSTASH_REDIS_REST_URL", dead.as_str())]);
    send!(a, "token: limiter down", t, &no_redis, "POST", p, &h, None);
}

fn publish_state(ably: &str, overrides: &[(&str, &str)]) -> publish::PublishState {
    let prefix = format!("{}:", unique("oapi"));
    let mut all = vec![
        ("ABLY_REST_URL", ably),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
    ];
    all.extend_from_slice(overrides);
    let config = publish::PublishConfig::load(env_with(&all)).expect("publish config");
    let ably = AblyClient::new(&config.ably).with_retry_policy(RetryPolicy {
        max_attempts: 2,
        base_backoff: std::time::Duration::from_millis(10),
        max_backoff: std::time::Duration::from_millis(20),
        ..RetryPolicy::default()
    });
    publish::PublishState::with_ably(config, ably)
}

async fn publish_answers(a: &mut Answers) {
    let ok = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("^/channels/.*/messages$"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"messageId": "m"})))
        .mount(&ok)
        .await;
    let refusing = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(
                json!({"error": {"code": 40000, "statusCode": 400, "message": "no"}}),
            ),
        )
        .mount(&refusing)
        .await;
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let s = publish_state(&ok.uri(), &[]);
    let customer = auth(&bearer("user-1", "customer", &["conv-1"]));
    let h = [
        ("authorization", customer.as_str()),
        ("content-type", "application/json"),
    ];
    let msg = |channel: &str, event: &str| {
        json!({"channelName": channel, "eventName": event, "data": {"text": "hi"}}).to_string()
    };
    let big = json!({"channelName": "conversation:conv-1", "eventName": "message:user", "data": "x".repeat(65 * 1024)}).to_string();
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(81 * 1024));
    let f = publish::handle;
    let p = "/api/ably/publish";
    send!(
        a,
        "publish: ok",
        f,
        &s,
        "POST",
        p,
        &h,
        Some(&msg("conversation:conv-1", "message:user"))
    );
    let idem = json!({"channelName": "conversation:conv-1", "eventName": "read", "data": null, "idempotencyKey": "k-1"}).to_string();
    send!(a, "publish: idempotent", f, &s, "POST", p, &h, Some(&idem));
    let cookie = format!("__Host-chat_session={}", session_token("conv-1"));
    send!(
        a,
        "publish: session",
        f,
        &s,
        "POST",
        p,
        &[("cookie", cookie.as_str())],
        Some(&msg("conversation:conv-1", "typing:start"))
    );
    send!(
        a,
        "publish: no identity",
        f,
        &s,
        "POST",
        p,
        &[],
        Some(&msg("conversation:conv-1", "message:user"))
    );
    send!(a, "publish: no body", f, &s, "POST", p, &h, None);
    send!(a, "publish: bad json", f, &s, "POST", p, &h, Some("[1,"));
    send!(
        a,
        "publish: wrong shape",
        f,
        &s,
        "POST",
        p,
        &h,
        Some(r#"{"channelName":1}"#)
    );
    send!(
        a,
        "publish: no data",
        f,
        &s,
        "POST",
        p,
        &h,
        Some(r#"{"channelName":"conversation:conv-1","eventName":"read"}"#)
    );
    send!(
        a,
        "publish: bad channel",
        f,
        &s,
        "POST",
        p,
        &h,
        Some(&msg("conversation:*", "message:user"))
    );
    send!(
        a,
        "publish: unknown event",
        f,
        &s,
        "POST",
        p,
        &h,
        Some(&msg("conversation:conv-1", "nope"))
    );
    send!(
        a,
        "publish: empty event",
        f,
        &s,
        "POST",
        p,
        &h,
        Some(&msg("conversation:conv-1", ""))
    );
    send!(
        a,
        "publish: bad key",
        f,
        &s,
        "POST",
        p,
        &h,
        Some(
            r#"{"channelName":"conversation:conv-1","eventName":"read","data":1,"idempotencyKey":""}"#
        )
    );
    send!(
        a,
        "publish: not theirs",
        f,
        &s,
        "POST",
        p,
        &h,
        Some(&msg("conversation:conv-2", "message:user"))
    );
    send!(
        a,
        "publish: role",
        f,
        &s,
        "POST",
        p,
        &h,
        Some(&msg("conversation:conv-1", "message:ai"))
    );
    send!(
        a,
        "publish: data too large",
        f,
        &s,
        "POST",
        p,
        &h,
        Some(&big)
    );
    send!(
        a,
        "publish: body too large",
        f,
        &s,
        "POST",
        p,
        &h,
        Some(&huge)
    );
    send!(a, "publish: preflight", f, &s, "OPTIONS", p, &[], None);

    let limited = publish_state(&ok.uri(), &[("RATE_LIMIT_PUBLISH_MAX", "1")]);
    send!(
        a,
        "publish: first",
        f,
        &limited,
        "POST",
        p,
        &h,
        Some(&msg("conversation:conv-1", "read"))
    );
    send!(
        a,
        "publish: rate limited",
        f,
        &limited,
        "POST",
        p,
        &h,
        Some(&msg("conversation:conv-1", "read"))
    );
    let s = publish_state(&refusing.uri(), &[]);
    send!(
        a,
        "publish: ably refuses",
        f,
        &s,
        "POST",
        p,
        &h,
        Some(&msg("conversation:conv-1", "read"))
    );
    let s = publish_state(&dead, &[]);
    send!(
        a,
        "publish: ably down",
        f,
        &s,
        "POST",
        p,
        &h,
        Some(&msg("conversation:conv-1", "read"))
    );
}

fn signed(body: &str) -> (String, String) {
    (
        WEBHOOK_KEY.to_owned(),
        sign(WEBHOOK_SECRET, body.as_bytes()),
    )
}

async fn dynamo_down() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        chat_core::storage::dynamo::config_builder()
            .endpoint_url(format!("http://127.0.0.1:{}", closed_port()))
            .build(),
    )
}

fn redis_down() -> RedisClient {
    let mut config = redis_config();
    config.url = format!("http://127.0.0.1:{}", closed_port());
    RedisClient::new(&config)
}

async fn events_answers(a: &mut Answers, h: &Harness) {
    let f = ably_events::handle;
    let p = "/api/ably/events";
    let batched = include_str!("../../fixtures/ably-webhooks/batched-message.json");
    let enveloped = include_str!("../../fixtures/ably-webhooks/enveloped-presence.json");
    let lifecycle = include_str!("../../fixtures/ably-webhooks/batched-lifecycle.json");
    for (what, body) in [
        ("events: batched", batched),
        ("events: redelivered", batched),
        ("events: enveloped presence", enveloped),
        ("events: lifecycle", lifecycle),
        ("events: not a webhook", r#"{"hello":"world"}"#),
        ("events: not json", "not json"),
    ] {
        let (key, sig) = signed(body);
        send!(
            a,
            what,
            f,
            &h.state,
            "POST",
            p,
            &[
                ("content-type", "application/json"),
                ("x-ably-key", key.as_str()),
                ("x-ably-signature", sig.as_str())
            ],
            Some(body)
        );
    }
    send!(
        a,
        "events: unsigned",
        f,
        &h.state,
        "POST",
        p,
        &[("content-type", "application/json")],
        Some(batched)
    );
    send!(
        a,
        "events: bad signature",
        f,
        &h.state,
        "POST",
        p,
        &[("x-ably-key", WEBHOOK_KEY), ("x-ably-signature", "AAAA")],
        Some(batched)
    );
    send!(a, "events: preflight", f, &h.state, "OPTIONS", p, &[], None);

    let no_redis = Harness::build(&[], Some(redis_down()), None).await;
    let (key, sig) = signed(batched);
    let signed_headers = [
        ("content-type", "application/json"),
        ("x-ably-key", key.as_str()),
        ("x-ably-signature", sig.as_str()),
    ];
    send!(
        a,
        "events: redis down",
        f,
        &no_redis.state,
        "POST",
        p,
        &signed_headers,
        Some(batched)
    );
    let no_dynamo = Harness::build(&[], None, Some(dynamo_down().await)).await;
    send!(
        a,
        "events: dynamodb down",
        f,
        &no_dynamo.state,
        "POST",
        p,
        &signed_headers,
        Some(batched)
    );
}

async fn stats_answers(a: &mut Answers, h: &Harness) {
    let ably = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/time"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([chrono::Utc::now().timestamp_millis()])),
        )
        .mount(&ably)
        .await;
    Mock::given(method("GET"))
        .and(path("/channels/conversation%3Aconv-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "channelId": "conversation:conv-1",
            "status": {"isActive": true, "occupancy": {"metrics": {"connections": 1, "objectPublishers": 0}}}
        })))
        .mount(&ably)
        .await;
    let config = |ably: &str| {
        stats::StatsConfig::load(env_with(&[
            ("ABLY_REST_URL", ably),
            ("CHAT_EVENTS_TABLE", h.table.as_str()),
            ("REDIS_KEY_PREFIX", h.prefix.as_str()),
        ]))
        .expect("stats config")
    };
    let f = stats::handle;
    let p = "/api/ably/stats";
    let admin = auth(&bearer("admin-1", "admin", &[]));
    let customer = auth(&bearer("user-1", "customer", &["conv-1"]));
    let s = stats::StatsState::new(config(&ably.uri()));
    send!(
        a,
        "stats: healthy",
        f,
        &s,
        "GET",
        p,
        &[("authorization", admin.as_str())],
        None
    );
    send!(
        a,
        "stats: channel",
        f,
        &s,
        "GET",
        "/api/ably/stats?channelName=conversation:conv-1",
        &[("authorization", customer.as_str())],
        None
    );
    send!(
        a,
        "stats: channel unknown to ably",
        f,
        &s,
        "GET",
        "/api/ably/stats?channelName=contacts:user-1",
        &[("authorization", customer.as_str())],
        None
    );
    send!(
        a,
        "stats: bad channel",
        f,
        &s,
        "GET",
        "/api/ably/stats?channelName=x",
        &[("authorization", customer.as_str())],
        None
    );
    send!(
        a,
        "stats: not theirs",
        f,
        &s,
        "GET",
        "/api/ably/stats?channelName=conversation:conv-2",
        &[("authorization", customer.as_str())],
        None
    );
    send!(a, "stats: no identity", f, &s, "GET", p, &[], None);
    send!(
        a,
        "stats: body on GET",
        f,
        &s,
        "GET",
        p,
        &[("authorization", admin.as_str())],
        Some("{}")
    );
    send!(a, "stats: preflight", f, &s, "OPTIONS", p, &[], None);
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let cfg = config(&dead);
    let degraded = stats::StatsState::with_clients(
        cfg.clone(),
        redis_down(),
        crate::helpers::dynamo().await,
        AblyClient::new(&cfg.ably),
    );
    send!(
        a,
        "stats: degraded",
        f,
        &degraded,
        "GET",
        p,
        &[("authorization", admin.as_str())],
        None
    );
    let unhealthy = stats::StatsState::with_clients(
        cfg.clone(),
        RedisClient::new(&cfg.redis),
        dynamo_down().await,
        AblyClient::new(&cfg.ably),
    );
    send!(
        a,
        "stats: unhealthy",
        f,
        &unhealthy,
        "GET",
        p,
        &[("authorization", admin.as_str())],
        None
    );
}

async fn resume_state(
    h: &Harness,
    overrides: &[(&str, &str)],
    redis: Option<RedisClient>,
    dynamo: Option<aws_sdk_dynamodb::Client>,
) -> resume::ResumeState {
    let prefix = format!("{}:", unique("oapi"));
    let mut vars = vec![
        ("CHAT_EVENTS_TABLE", h.table.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
    ];
    vars.extend_from_slice(overrides);
    let config = resume::ResumeConfig::load(env_with(&vars)).expect("resume config");
    let redis = redis.unwrap_or_else(|| RedisClient::new(&config.redis));
    let dynamo = match dynamo {
        Some(client) => client,
        None => crate::helpers::dynamo().await,
    };
    resume::ResumeState::with_clients(config, redis, dynamo, Arc::new(LogMailSender))
}

/// The token of a `resumeUrl` in the last answer.
fn last_link(a: &Answers) -> String {
    let body: Value = serde_json::from_slice(&a.0.last().expect("an answer").body).unwrap();
    let url = body["resumeUrl"].as_str().expect("resumeUrl");
    url.split_once("?resume=").expect("link").1.to_owned()
}

async fn resume_answers(a: &mut Answers, h: &Harness) {
    let f = resume::handle;
    let p = "/api/chat/resume";
    let s = resume_state(h, &[], None, None).await;
    let broker = auth(&bearer("broker-1", "broker", &[]));
    let customer = auth(&bearer("user-1", "customer", &["conv-1"]));
    let bj = [
        ("authorization", broker.as_str()),
        ("content-type", "application/json"),
    ];
    let issue = r#"{"conversationId":"conv-1","email":"customer@example.com"}"#;
    send!(a, "resume: issue", f, &s, "POST", p, &bj, Some(issue));
    let link = last_link(a);
    send!(
        a,
        "resume: redeem",
        f,
        &s,
        "GET",
        &format!("{p}?token={link}"),
        &[],
        None
    );
    send!(
        a,
        "resume: redeem again",
        f,
        &s,
        "GET",
        &format!("{p}?token={link}"),
        &[],
        None
    );
    send!(a, "resume: issue again", f, &s, "POST", p, &bj, Some(issue));
    let link = last_link(a);
    let redeem = json!({ "token": link }).to_string();
    send!(
        a,
        "resume: redeem by POST",
        f,
        &s,
        "POST",
        p,
        &[("content-type", "application/json")],
        Some(&redeem)
    );
    send!(
        a,
        "resume: bad link",
        f,
        &s,
        "GET",
        &format!("{p}?token=nope"),
        &[],
        None
    );
    send!(a, "resume: no token", f, &s, "GET", p, &[], None);
    send!(
        a,
        "resume: token twice",
        f,
        &s,
        "GET",
        &format!("{p}?token=a&token=b"),
        &[],
        None
    );
    send!(
        a,
        "resume: issue without identity",
        f,
        &s,
        "POST",
        p,
        &[("content-type", "application/json")],
        Some(issue)
    );
    send!(
        a,
        "resume: customer issues",
        f,
        &s,
        "POST",
        p,
        &[("authorization", customer.as_str())],
        Some(issue)
    );
    send!(a, "resume: bad json", f, &s, "POST", p, &bj, Some("{"));
    send!(
        a,
        "resume: both",
        f,
        &s,
        "POST",
        p,
        &bj,
        Some(r#"{"token":"t","email":"a@b.co"}"#)
    );
    send!(
        a,
        "resume: bad email",
        f,
        &s,
        "POST",
        p,
        &bj,
        Some(r#"{"conversationId":"conv-1","email":"nope"}"#)
    );
    send!(
        a,
        "resume: bad id",
        f,
        &s,
        "POST",
        p,
        &bj,
        Some(r#"{"conversationId":"a b","email":"a@b.co"}"#)
    );
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(17 * 1024));
    send!(a, "resume: too large", f, &s, "POST", p, &bj, Some(&big));
    send!(a, "resume: preflight", f, &s, "OPTIONS", p, &[], None);

    let e = "/api/chat/events";
    // Events to page through, so that their documented shape is checked too.
    let mirrored = h
        .post(&crate::helpers::flat_batch("conv-1", 3, 1_767_323_045_000))
        .await;
    assert_eq!(mirrored.status(), 200);
    let cookie = format!("__Host-chat_session={}", session_token("conv-1"));
    send!(
        a,
        "poll: bearer",
        f,
        &s,
        "GET",
        &format!("{e}?conversationId=conv-1&limit=5"),
        &[("authorization", customer.as_str())],
        None
    );
    send!(
        a,
        "poll: session",
        f,
        &s,
        "GET",
        &format!("{e}?conversationId=conv-1"),
        &[("cookie", cookie.as_str())],
        None
    );
    send!(
        a,
        "poll: not theirs",
        f,
        &s,
        "GET",
        &format!("{e}?conversationId=conv-2"),
        &[("authorization", customer.as_str())],
        None
    );
    send!(
        a,
        "poll: no conversation",
        f,
        &s,
        "GET",
        e,
        &[("authorization", customer.as_str())],
        None
    );
    send!(
        a,
        "poll: bad conversation",
        f,
        &s,
        "GET",
        &format!("{e}?conversationId=a:b"),
        &[("authorization", customer.as_str())],
        None
    );
    send!(
        a,
        "poll: bad limit",
        f,
        &s,
        "GET",
        &format!("{e}?conversationId=conv-1&limit=0"),
        &[("authorization", customer.as_str())],
        None
    );
    send!(
        a,
        "poll: no identity",
        f,
        &s,
        "GET",
        &format!("{e}?conversationId=conv-1"),
        &[],
        None
    );
    // The position of conv-1-m0, the first of the three.
    let cursor = "MjAyNi0wMS0wMlQwMzowNDowNS4wMDBaI2NvbnYtMS1tMA";
    send!(
        a,
        "poll: after a cursor",
        f,
        &s,
        "GET",
        &format!("{e}?conversationId=conv-1&after={cursor}&limit=100"),
        &[("authorization", customer.as_str())],
        None
    );
    send!(
        a,
        "poll: bad cursor",
        f,
        &s,
        "GET",
        &format!("{e}?conversationId=conv-1&after=bm90LWEtY3Vyc29y"),
        &[("authorization", customer.as_str())],
        None
    );
    send!(a, "poll: preflight", f, &s, "OPTIONS", e, &[], None);
    let limited_polls = resume_state(h, &[("RATE_LIMIT_POLL_MAX", "1")], None, None).await;
    for what in ["poll: first", "poll: rate limited"] {
        send!(
            a,
            what,
            f,
            &limited_polls,
            "GET",
            &format!("{e}?conversationId=conv-1"),
            &[("authorization", customer.as_str())],
            None
        );
    }

    let limited = resume_state(h, &[("RATE_LIMIT_RESUME_REDEEM_MAX", "1")], None, None).await;
    send!(
        a,
        "resume: first redeem",
        f,
        &limited,
        "GET",
        &format!("{p}?token=nope"),
        &[],
        None
    );
    send!(
        a,
        "resume: redeem rate limited",
        f,
        &limited,
        "GET",
        &format!("{p}?token=nope"),
        &[],
        None
    );
    let realtime_off = resume_state(h, &[("ENABLE_ABLY_REALTIME", "false")], None, None).await;
    send!(
        a,
        "resume: issue (realtime off)",
        f,
        &realtime_off,
        "POST",
        p,
        &bj,
        Some(issue)
    );
    let link = last_link(a);
    send!(
        a,
        "resume: redeem (realtime off)",
        f,
        &realtime_off,
        "GET",
        &format!("{p}?token={link}"),
        &[],
        None
    );
    let no_redis = resume_state(h, &[], Some(redis_down()), Some(dynamo_down().await)).await;
    send!(
        a,
        "resume: redeem, redis down",
        f,
        &no_redis,
        "GET",
        &format!("{p}?token=nope"),
        &[],
        None
    );
    send!(
        a,
        "resume: issue, redis down",
        f,
        &no_redis,
        "POST",
        p,
        &bj,
        Some(issue)
    );
    send!(
        a,
        "poll: stores down",
        f,
        &no_redis,
        "GET",
        &format!("{e}?conversationId=conv-1"),
        &[("authorization", customer.as_str())],
        None
    );
}

// --- checking the answers against the description -----------------------------------------

/// A validator for `schema`, whose `$ref`s point into the spec's components.
fn validator(spec: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": spec["components"],
        "allOf": [schema],
    });
    jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}\n{schema}"))
}

/// Every way `seen` departs from what openapi.yaml documents for it.
fn departures(spec: &Value, seen: &Seen) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(op) = operation(spec, &seen.path, &seen.method) else {
        return vec![format!("{} {} is not described", seen.method, seen.path)];
    };
    let Some(response) = op["responses"].get(seen.status.to_string()) else {
        return vec![format!(
            "status {} is not documented for {} {}",
            seen.status, seen.method, seen.path
        )];
    };
    let response = resolve(spec, response);
    if let Some(headers) = response.get("headers").and_then(Value::as_object) {
        for (name, header) in headers {
            let header = resolve(spec, header);
            let value = seen
                .headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok());
            match value {
                None if header["required"] == true => {
                    problems.push(format!("required header {name} is missing"))
                }
                None => {}
                Some(value) => {
                    let v = validator(spec, &header["schema"]);
                    if let Err(e) = v.validate(&Value::from(value)) {
                        problems.push(format!("header {name}: {value:?}: {e}"));
                    }
                }
            }
        }
    }
    match response["content"].get("application/json") {
        None if seen.body.is_empty() => {}
        None => problems.push(format!(
            "undocumented body {:?}",
            String::from_utf8_lossy(&seen.body)
        )),
        Some(media) => {
            let content_type = seen
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok());
            if content_type != Some("application/json") {
                problems.push(format!("content-type is {content_type:?}"));
            }
            match serde_json::from_slice::<Value>(&seen.body) {
                Err(e) => problems.push(format!("body is not JSON: {e}")),
                Ok(body) => {
                    let v = validator(spec, &media["schema"]);
                    for e in v.iter_errors(&body) {
                        problems.push(format!("body at {}: {e}", e.instance_path()));
                    }
                    if problems.iter().any(|p| p.starts_with("body")) {
                        problems.push(format!("body: {body}"));
                    }
                }
            }
        }
    }
    problems
}

#[tokio::test]
async fn the_handlers_answer_only_as_documented() {
    let spec = spec();
    let mut answers = Answers::default();
    let h = Harness::new().await;
    token_answers(&mut answers).await;
    publish_answers(&mut answers).await;
    events_answers(&mut answers, &h).await;
    stats_answers(&mut answers, &h).await;
    resume_answers(&mut answers, &h).await;

    let mut failures = Vec::new();
    let mut seen: BTreeMap<(String, String), BTreeSet<u16>> = BTreeMap::new();
    for answer in &answers.0 {
        seen.entry((answer.path.clone(), answer.method.clone()))
            .or_default()
            .insert(answer.status);
        for problem in departures(&spec, answer) {
            failures.push(format!(
                "{} ({} {} -> {}): {problem}",
                answer.what, answer.method, answer.path, answer.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The set above must reach every operation and its success answers, so that a
    // drifting success schema cannot go unnoticed.
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let statuses = &seen[&(path.clone(), method.to_ascii_uppercase())];
            for status in op["responses"].as_object().unwrap().keys() {
                if status.starts_with('2') {
                    let status: u16 = status.parse().unwrap();
                    assert!(
                        statuses.contains(&status),
                        "no request reached {status} of {method} {path}"
                    );
                }
            }
        }
    }
}
