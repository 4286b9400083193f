//! Shared test helpers: the stack's addresses, unique names, request builders.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chat_core::ably::webhook::signature::sign;
use chat_core::handlers::ably_events::{handle, EventsConfig, EventsState};
use chat_core::platform::env::{Env, Secret};
use chat_core::storage::redis::RedisClient;
use chat_core::storage::RedisConfig;
use lambda_http::{Body, Request, Response};
use rand::Rng;
use serde_json::{json, Value};

/// A variable `scripts/stack up` writes to `.dev/stack.env`; its absence means the tests
/// were started without the stack, which is a setup error, not a skipped test.
pub fn stack_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test, which starts the local stack")
    })
}

/// A short random suffix so parallel tests never share keys or tables.
pub fn unique(prefix: &str) -> String {
    let n: u64 = rand::rng().random();
    format!("{prefix}-{n:016x}")
}

pub fn redis_config() -> RedisConfig {
    RedisConfig {
        url: stack_var("UPSTASH_REDIS_REST_URL"),
        token: Secret::new(stack_var("UPSTASH_REDIS_REST_TOKEN")),
        key_prefix: String::new(),
    }
}

pub fn redis() -> RedisClient {
    RedisClient::new(&redis_config())
}

pub fn redis_addr() -> String {
    format!("127.0.0.1:{}", stack_var("STACK_REDIS_PORT"))
}

/// The stack's environment with `overrides` applied (an empty value removes a variable).
pub fn env_with(overrides: &[(&str, &str)]) -> Env {
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    for (k, v) in overrides {
        if v.is_empty() {
            vars.remove(*k);
        } else {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
    }
    Env::from_pairs(vars)
}

/// A free loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

pub async fn dynamo() -> aws_sdk_dynamodb::Client {
    stack_var("AWS_ENDPOINT_URL_DYNAMODB");
    chat_core::storage::dynamo::client()
}

/// A fresh chat events table with the production schema.
pub async fn fresh_table() -> String {
    let name = unique("chat-events-test");
    dev_tools::table::ensure_chat_events_table(&dynamo().await, &name)
        .await
        .expect("create table");
    name
}

/// An API Gateway HTTP API (payload 2.0) event, deserialised the way the Lambda runtime does.
pub fn api_request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Request {
    let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), json!(v)))
        .collect();
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api-id",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "integration-tests"
            },
            "requestId": "test-request",
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1795305600000u64
        },
        "body": body,
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("valid API Gateway event")
}

pub fn body_json(response: &Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).unwrap_or_else(|e| {
        panic!(
            "response body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(response.body().as_ref())
        )
    })
}

pub fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

// --- identities -----------------------------------------------------------------------

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

pub fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT assembled by hand: base64url(header) . base64url(claims) . base64url(HMAC-SHA256),
/// so tests can forge exactly the token they mean (any header, any claim types).
pub fn hand_jwt(header: &Value, claims: &Value, secret: &str) -> String {
    use hmac::Mac as _;
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(&mac.finalize().into_bytes()))
}

/// An HS256 JWT signed with `secret`.
pub fn hs256(claims: &Value, secret: &str) -> String {
    hand_jwt(&json!({"alg": "HS256", "typ": "JWT"}), claims, secret)
}

/// A bearer JWT for the stack's `JWT_SECRET`, valid for an hour.
pub fn bearer(user_id: &str, role: &str, conversations: &[&str]) -> String {
    let now = unix_now();
    hs256(
        // Valid for two days, so that no Ably token the tests ask for (a day at most) is
        // capped by it; the cap has tests of its own.
        &json!({"userId": user_id, "role": role, "conversations": conversations, "iat": now, "exp": now + 172_800}),
        &stack_var("JWT_SECRET"),
    )
}

/// A chat session token as `resume` mints it, with the stack's `RESUME_TOKEN_SECRET`.
pub fn session_token(conversation_id: &str) -> String {
    chat_core::identity::SessionIssuer::new(&Secret::new(stack_var("RESUME_TOKEN_SECRET")))
        .issue(
            conversation_id,
            "customer@example.com",
            std::time::Duration::from_secs(3600),
        )
        .expect("session token")
}

// --- the token function -----------------------------------------------------------------

/// The real ably-token state over the stack, with a unique Redis key prefix so that
/// rate limits never leak between tests.
pub fn token_state(overrides: &[(&str, &str)]) -> chat_core::handlers::token::TokenState {
    use chat_core::handlers::token::{TokenConfig, TokenState};
    let prefix = format!("{}:", unique("test"));
    let mut all = vec![("REDIS_KEY_PREFIX", prefix.as_str())];
    all.extend_from_slice(overrides);
    TokenState::new(TokenConfig::load(env_with(&all)).expect("token config"))
}

/// `POST /api/ably/token` with `headers` and `body` through the real handler.
pub async fn post_token(
    state: &chat_core::handlers::token::TokenState,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Response<Body> {
    chat_core::handlers::token::handle(state, api_request("POST", "/api/ably/token", headers, body))
        .await
}

/// The same with `Authorization: Bearer <token>` and a JSON body.
pub async fn post_token_as(
    state: &chat_core::handlers::token::TokenState,
    token: &str,
    body: &str,
) -> Response<Body> {
    let auth = format!("Bearer {token}");
    post_token(
        state,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(body),
    )
    .await
}

/// Every item of `table`, following the scan's pages.
pub async fn scan_table(
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = dynamo
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        items.extend(page.items().iter().cloned());
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return items,
        }
    }
}

// --- counting round trips ---------------------------------------------------------------

/// A Redis client whose REST requests are counted: a private Upstash proxy in front of
/// the stack's `redis-server`, served until the test's runtime ends.
pub async fn counting_redis() -> (RedisClient, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let (url, requests) = counting_redis_url().await;
    let client = RedisClient::new(&RedisConfig {
        url,
        ..redis_config()
    });
    (client, requests)
}

/// The URL of such a counting proxy, for configurations that name their Redis by URL
/// (`UPSTASH_REDIS_REST_URL`).
pub async fn counting_redis_url() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(dev_tools::upstash_proxy::serve(
        listener,
        dev_tools::upstash_proxy::ProxyConfig {
            redis_addr: redis_addr(),
            token: stack_var("UPSTASH_REDIS_REST_TOKEN"),
            request_counter: Some(std::sync::Arc::clone(&requests)),
        },
    ));
    (url, requests)
}

/// A DynamoDB client whose HTTP requests are counted: those of the archive, not those of
/// the cache epoch (`_cache`), which a process reads at most once every two seconds
/// whatever its traffic (see `chat_core::storage::epoch`).
pub async fn counting_dynamo() -> (
    aws_sdk_dynamodb::Client,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    stack_var("AWS_ENDPOINT_URL_DYNAMODB");
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let config = chat_core::storage::dynamo::config_builder()
        .interceptor(CountRequests(std::sync::Arc::clone(&requests)))
        .build();
    (aws_sdk_dynamodb::Client::from_conf(config), requests)
}

#[derive(Debug)]
struct CountRequests(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl aws_sdk_dynamodb::config::Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }
    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let body = context.request().body().bytes().unwrap_or_default();
        if !String::from_utf8_lossy(body).contains("\"_cache\"") {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }
}

/// A DynamoDB client that refuses, `times` times each, the requests naming one of `ids`
/// (as DynamoDB refuses a request it cannot take); everything else goes through.
pub fn refusing_dynamo(ids: &[&str], times: usize) -> aws_sdk_dynamodb::Client {
    stack_var("AWS_ENDPOINT_URL_DYNAMODB");
    // The id closed by its quote: `run:15:0` never matches inside `run:150:0`.
    let left = ids.iter().map(|id| (format!("{id}\""), times)).collect();
    let config = chat_core::storage::dynamo::config_builder()
        .interceptor(RefuseNaming(std::sync::Arc::new(std::sync::Mutex::new(
            left,
        ))))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

#[derive(Debug)]
struct RefuseNaming(std::sync::Arc<std::sync::Mutex<HashMap<String, usize>>>);

impl aws_sdk_dynamodb::config::Intercept for RefuseNaming {
    fn name(&self) -> &'static str {
        "RefuseNaming"
    }
    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let body = context.request().body().bytes().unwrap_or_default();
        let body = String::from_utf8_lossy(body);
        let mut left = self.0.lock().unwrap();
        for (id, times) in left.iter_mut() {
            if *times > 0 && body.contains(id.as_str()) {
                *times -= 1;
                return Err(format!("refused: the request names {id}").into());
            }
        }
        Ok(())
    }
}

/// `tests/node`, where the Node.js clients and their `node_modules` live.
pub fn node_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/node"))
}

/// Runs a Node.js script to its end (off the test's runtime, which serves what it calls)
/// and returns its stdout; a non-zero exit fails the test with both outputs.
pub async fn run_node(mut command: std::process::Command) -> String {
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::task::spawn_blocking(move || command.output()),
    )
    .await
    .expect("node finished within 60 s")
    .unwrap()
    .expect("node runs (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "node exited with {}:\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    stdout
}

// --- the ably-events function: a fresh table and prefix, signed deliveries ---------------

/// Ably's documented signing vector key (shared/reference).
/// The [`Harness`]'s `EVENT_RETENTION_DAYS`.
pub const RETENTION_DAYS: &str = "36500";

pub const KEY_NAME: &str = "xVLyHw.DQrNxQ";
pub const SECRET: &str = "fakeSecretForTestVectorsOnly";

pub struct Harness {
    pub state: EventsState,
    pub table: String,
    pub prefix: String,
    pub redis: RedisClient,
    pub dynamo: aws_sdk_dynamodb::Client,
}

impl Harness {
    pub async fn new() -> Self {
        Self::build(&[], None, None).await
    }

    /// A fresh table and Redis prefix; optional replacement clients for fault injection.
    pub async fn build(
        overrides: &[(&str, &str)],
        redis_client: Option<RedisClient>,
        dynamo_client: Option<aws_sdk_dynamodb::Client>,
    ) -> Self {
        let table = crate::helpers::fresh_table().await;
        let prefix = format!("{}:", unique("t"));
        let mut vars = vec![
            ("CHAT_EVENTS_TABLE", table.as_str()),
            ("REDIS_KEY_PREFIX", prefix.as_str()),
            (
                "ABLY_WEBHOOK_KEYS",
                "xVLyHw.DQrNxQ:fakeSecretForTestVectorsOnly",
            ),
            // Retention runs from each event's own time; Ably's documented payloads are
            // from 2005 and 2020, and many tests send fixed early times, so a century keeps
            // them all inside it. Tests of expiry set their own.
            ("EVENT_RETENTION_DAYS", RETENTION_DAYS),
        ];
        vars.extend_from_slice(overrides);
        let config = EventsConfig::load(env_with(&vars)).expect("config");
        let dynamo = crate::helpers::dynamo().await;
        let state = EventsState::with_clients(
            config,
            redis_client.unwrap_or_else(redis),
            dynamo_client.unwrap_or_else(|| dynamo.clone()),
        );
        Harness {
            state,
            table,
            prefix,
            redis: redis(),
            dynamo,
        }
    }

    pub async fn post(&self, body: &[u8]) -> Response<Body> {
        let signature = sign(SECRET, body);
        self.send(signed_request(
            body,
            &[("x-ably-key", KEY_NAME), ("x-ably-signature", &signature)],
        ))
        .await
    }

    /// A signed body that need not be UTF-8 (sent base64, as API Gateway passes binary).
    pub async fn post_bytes(&self, body: &[u8]) -> Response<Body> {
        use base64::Engine as _;
        let signature = sign(SECRET, body);
        let event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/api/ably/events",
            "rawQueryString": "",
            "headers": {"content-type": "application/json", "x-ably-key": KEY_NAME,
                "x-ably-signature": signature},
            "requestContext": {"accountId": "1", "apiId": "a", "domainName": "localhost",
                "domainPrefix": "localhost",
                "http": {"method": "POST", "path": "/api/ably/events", "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1", "userAgent": "Ably-Webhooks"},
                "requestId": "bytes", "routeKey": "$default", "stage": "$default",
                "time": "22/Nov/2026:00:00:00 +0000", "timeEpoch": 1795305600000u64},
            "body": base64::engine::general_purpose::STANDARD.encode(body),
            "isBase64Encoded": true
        });
        let req = lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event");
        self.send(req).await
    }

    pub async fn send(&self, req: Request) -> Response<Body> {
        handle(&self.state, req).await
    }

    /// Every item in the table.
    pub async fn items(&self) -> Vec<HashMap<String, AttributeValue>> {
        crate::helpers::scan_table(&self.dynamo, &self.table).await
    }

    /// The dead letters: deliveries kept whole because they could not be stored as events.
    pub async fn dead_letters(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.items()
            .await
            .into_iter()
            .filter(|i| s(i, "conversation_id") == "_dead_letter")
            .collect()
    }

    /// Every chat event item: not the reserved partitions (the dead letters, the cache
    /// epoch).
    pub async fn chat_items(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.items()
            .await
            .into_iter()
            .filter(|i| !s(i, "conversation_id").starts_with('_'))
            .collect()
    }

    /// The cached list of a conversation, newest first, as JSON.
    pub async fn cached(&self, conversation: &str) -> Vec<Value> {
        let key = format!("{}chat:conversation:{conversation}:events", self.prefix);
        let list = self
            .redis
            .command(&["LRANGE", &key, "0", "-1"])
            .await
            .unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|v| serde_json::from_str(v.as_str().unwrap()).unwrap())
            .collect()
    }

    /// Every Redis key under this test's prefix.
    pub async fn redis_keys(&self) -> Vec<String> {
        let keys = self
            .redis
            .command(&["KEYS", &format!("{}*", self.prefix)])
            .await
            .unwrap();
        let mut keys: Vec<String> = keys
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        keys.sort();
        keys
    }

    pub async fn assert_nothing_written(&self) {
        assert_eq!(self.items().await.len(), 0, "dynamodb must be untouched");
        assert_eq!(
            self.redis_keys().await,
            Vec::<String>::new(),
            "redis must be untouched"
        );
    }
}

/// Waits (up to 10 s) until the cache epoch of `stores`' table has settled: a mirror whose
/// cache write failed has ended its writes, so lists may be proven again.
pub async fn until_epoch_settles(stores: &chat_core::storage::EventStores) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let epoch = stores.epoch.read().await.expect("the cache epoch reads");
        let now = chrono::Utc::now().timestamp_millis();
        if epoch.settled(now) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cache epoch did not settle: {epoch:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

pub fn s(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

pub fn signed_request(body: &[u8], headers: &[(&str, &str)]) -> Request {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    api_request(
        "POST",
        "/api/ably/events",
        &all,
        Some(std::str::from_utf8(body).expect("utf-8 body")),
    )
}

/// A batch of flat items on `conversation:{conv}` with `n` messages.
pub fn flat_batch(conv: &str, n: usize, start_ms: i64) -> Vec<u8> {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "id": format!("{conv}-m{i}"),
                "name": "message:user",
                "channel": format!("conversation:{conv}"),
                "clientId": "customer-1",
                "data": {"text": format!("message {i}")},
                "timestamp": start_ms + i as i64
            })
        })
        .collect();
    json!({ "items": items }).to_string().into_bytes()
}

/// A delivery on `conversation:{conv}` of staff-only events forged by customers (Ably
/// verified their clientIds: `customer-{conv}` for the chat session, `customer:u1` for a
/// customer JWT) beside genuine ones (a `service:` clientId, no clientId at all: the API
/// key, and a broker), plus the customer's own message. Times from `start_ms`.
pub fn forged_and_genuine(conv: &str, start_ms: i64) -> Vec<u8> {
    let session = format!("customer-{conv}");
    let item = |i: i64, name: &str, client_id: Option<&str>, data: Value| {
        let mut item = json!({"id": format!("{conv}-{i}"), "name": name,
            "channel": format!("conversation:{conv}"), "timestamp": start_ms + i, "data": data});
        if let Some(client_id) = client_id {
            item["clientId"] = json!(client_id);
        }
        item
    };
    let timing = |ms: u64| json!({"text": "answer", "timing": {"ai_duration_ms": ms, "queue_duration_ms": ms}});
    json!({"items": [
        item(0, "message:ai", Some(&session), timing(99_999)),
        item(1, "message:ai", Some("customer:u1"), timing(99_999)),
        item(2, "sla:violation", Some(&session), json!({"forged": true})),
        item(3, "agent_joined", Some("customer:u1"), json!({"agentId": "fake", "agentName": "Eve"})),
        item(4, "message:ai", Some("service:s1"), timing(100)),
        item(5, "message:ai", None, timing(200)),
        item(6, "sla:violation", Some("broker:b1"), json!({"minutes": 5})),
        item(7, "message:user", Some(&session), json!({"text": "hello"})),
    ]})
    .to_string()
    .into_bytes()
}

/// The ids [`forged_and_genuine`] forges, and those it sends genuinely.
pub fn forged_ids(conv: &str) -> (Vec<String>, Vec<String>) {
    let ids = |range: std::ops::Range<i64>| range.map(|i| format!("{conv}-{i}")).collect();
    (ids(0..4), ids(4..8))
}

// --- the resume function over an events function's stores ------------------------------

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
