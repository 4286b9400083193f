//! The local stack the tests run against: its settings, unique names, clients of its
//! Redis and DynamoDB (also counting, refusing or unreachable ones), fresh tables, and the
//! Node.js clients.

use std::collections::HashMap;

use chat_core::platform::env::{Env, Secret};
use chat_core::storage::redis::RedisClient;
use chat_core::storage::RedisConfig;
use rand::Rng;

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

/// A Redis client for a closed port: every request fails to connect.
pub fn unreachable_redis() -> RedisClient {
    RedisClient::new(&RedisConfig {
        url: format!("http://127.0.0.1:{}", closed_port()),
        ..redis_config()
    })
}

/// A DynamoDB client for a closed port: every request fails to connect.
pub fn unreachable_dynamo() -> aws_sdk_dynamodb::Client {
    let config = chat_core::storage::dynamo::config_builder()
        .endpoint_url(format!("http://127.0.0.1:{}", closed_port()))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}
