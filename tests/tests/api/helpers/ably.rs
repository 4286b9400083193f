//! Ably, which cannot run here, as an HTTP mock (wiremock): the REST client over it, its
//! answers, and what it was sent.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chat_core::ably::config::AblyConfig;
use chat_core::ably::{message_id_base, AblyClient, AblyError, OutboundMessage, RetryPolicy};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::WEBHOOK_KEY;

pub const ABLY_CHANNEL: &str = "conversation:conv-1";

pub const PUBLISH_PATH: &str = "/channels/conversation%3Aconv-1/messages";

pub fn ably_config(rest_url: &str) -> AblyConfig {
    AblyConfig {
        key: WEBHOOK_KEY.parse().expect("test key"),
        rest_url: rest_url.to_owned(),
    }
}

/// Short backoffs so retry tests take milliseconds; the production limits otherwise.
pub fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        ..RetryPolicy::default()
    }
}

pub fn mock_client(server: &MockServer) -> AblyClient {
    AblyClient::new(&ably_config(&server.uri())).with_retry_policy(fast_policy())
}

pub fn basic_auth() -> String {
    format!("Basic {}", STANDARD.encode(WEBHOOK_KEY))
}

/// A deadline for one Ably call: long enough for any mock, short enough to fail fast.
pub fn ten_seconds_from_now() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

pub fn created() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({"channel": ABLY_CHANNEL, "messageId": "x"}))
}

pub fn ably_error(status: u16, code: u32, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": {
            "code": code,
            "statusCode": status,
            "message": message,
            "href": format!("https://help.ably.io/error/{code}")
        }
    }))
}

pub fn publish_mock(response: ResponseTemplate) -> Mock {
    Mock::given(method("POST"))
        .and(path(PUBLISH_PATH))
        .respond_with(response)
}

pub fn sent_bodies(requests: &[Request]) -> Vec<Value> {
    requests
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("JSON body"))
        .collect()
}

pub fn sent_ids(requests: &[Request]) -> Vec<String> {
    sent_bodies(requests)
        .iter()
        .map(|b| b["id"].as_str().expect("message id").to_owned())
        .collect()
}

pub async fn publish_one(
    client: &AblyClient,
    idempotency_key: Option<&str>,
) -> Result<chat_core::ably::PublishReceipt, AblyError> {
    let data = json!({"text": "hello"});
    client
        .publish_with_id_base(
            ABLY_CHANNEL,
            &message_id_base(idempotency_key),
            &[OutboundMessage::new("message:user", &data)],
            ten_seconds_from_now(),
        )
        .await
}
