//! Shared test helpers: the stack's addresses, unique names, request builders.

use std::collections::HashMap;

use chat_core::config::{Env, RedisConfig, Secret};
use chat_core::redis::RedisClient;
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
    chat_core::dynamo::client().await
}

/// A fresh chat events table with the production schema.
pub async fn fresh_table() -> String {
    let name = unique("chat-events-test");
    chat_core::dynamo::ensure_chat_events_table(&dynamo().await, &name)
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
