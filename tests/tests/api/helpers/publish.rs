//! The publish function over the stack, with Ably at a mock's address.

use std::time::Duration;

use chat_core::ably::{AblyClient, RetryPolicy};
use chat_core::handlers::publish::{PublishConfig, PublishState};

use super::{env_with, unique};

/// The publish function's configuration: Ably at `ably_url`, a Redis key prefix of its
/// own (rate limits never leak between tests), `overrides` on top.
pub fn publish_config(ably_url: &str, overrides: &[(&str, &str)]) -> PublishConfig {
    let prefix = format!("{}:", unique("pub"));
    let mut all = vec![
        ("ABLY_REST_URL", ably_url),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
    ];
    all.extend_from_slice(overrides);
    PublishConfig::load(env_with(&all)).expect("publish config")
}

/// The publish function as deployed (the product's Ably client and retry policy).
pub fn publish_state(ably_url: &str, overrides: &[(&str, &str)]) -> PublishState {
    PublishState::new(publish_config(ably_url, overrides))
}

/// The publish function with the Ably client `ably` makes of its configuration.
pub fn publish_state_with(
    ably_url: &str,
    overrides: &[(&str, &str)],
    ably: impl FnOnce(&PublishConfig) -> AblyClient,
) -> PublishState {
    let config = publish_config(ably_url, overrides);
    let client = ably(&config);
    PublishState::with_ably(config, client)
}

/// The product's retry policy with short backoffs (10 to 50 ms), so retry tests are quick.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..RetryPolicy::default()
    }
}

/// `POST /api/ably/publish` with `Authorization: Bearer <token>` and `body` as JSON.
pub async fn post_publish(
    state: &PublishState,
    token: &str,
    body: &serde_json::Value,
) -> lambda_http::Response<lambda_http::Body> {
    let auth = format!("Bearer {token}");
    let req = super::api_request(
        "POST",
        "/api/ably/publish",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(&body.to_string()),
    );
    chat_core::handlers::publish::handle(state, req).await
}

/// The serial of the message every recorded change names (`tests/fixtures/ably-js/`).
pub const RECORDED_SERIAL: &str = "01726232498871-001@e8FcVjXqBAmH3q:001";

/// The version serial the recorded changes were answered with.
pub const RECORDED_VERSION_SERIAL: &str = "01726232512345-000@e8FcVjXqBAmH3q:000";

/// A request ably-js 2.x sent, as `tests/node/record-message-changes.mjs` recorded it
/// (`get`, `patch-update`, `patch-delete`, `patch-append`): `{method, path, query,
/// contentType, body}`.
pub fn recorded_ably_js(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/fixtures/ably-js/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fixture: serde_json::Value = serde_json::from_str(&text).expect("fixture JSON");
    fixture["request"].clone()
}

/// A request wiremock received, in the fixture's shape (`contentType` null without one).
pub fn as_recorded(request: &wiremock::Request) -> serde_json::Value {
    let query: serde_json::Map<String, serde_json::Value> = request
        .url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
        .collect();
    let body: serde_json::Value = match request.body.is_empty() {
        true => serde_json::Value::Null,
        false => serde_json::from_slice(&request.body).expect("JSON body"),
    };
    serde_json::json!({
        "method": request.method.as_str(),
        "path": request.url.path(),
        "query": query,
        "contentType": request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        "body": body,
    })
}

/// What Ably answers to `GET /channels/{channel}/messages/{serial}`: the message
/// [`RECORDED_SERIAL`], published by `client_id` (`None`: with the API key) as `name`.
pub fn stored_message(client_id: Option<&str>, name: &str) -> wiremock::ResponseTemplate {
    let mut message = serde_json::json!({
        "id": "base:0",
        "serial": RECORDED_SERIAL,
        "name": name,
        "data": "hello",
        "timestamp": 1726232498871u64,
        "action": 0,
        "version": {"serial": RECORDED_SERIAL, "timestamp": 1726232498871u64}
    });
    if let Some(client_id) = client_id {
        message["clientId"] = serde_json::json!(client_id);
    }
    wiremock::ResponseTemplate::new(200).set_body_json(message)
}
