//! The token function over the stack.

use base64::Engine as _;
use hmac::Mac as _;
use lambda_http::{Body, Response};
use serde_json::{json, Value};

use super::{api_request, env_with, stack_var, unique, unix_now};

/// The real ably-token state over the stack, with a unique Redis key prefix so that
/// rate limits never leak between tests.
pub fn token_state(overrides: &[(&str, &str)]) -> chat_core::handlers::token::TokenState {
    token_state_over(overrides, chat_core::storage::dynamo::client())
}

/// [`token_state`] over a given DynamoDB client (e.g. one that counts requests).
pub fn token_state_over(
    overrides: &[(&str, &str)],
    dynamo: aws_sdk_dynamodb::Client,
) -> chat_core::handlers::token::TokenState {
    use chat_core::handlers::token::{TokenConfig, TokenState};
    let prefix = format!("{}:", unique("test"));
    let mut all = vec![("REDIS_KEY_PREFIX", prefix.as_str())];
    all.extend_from_slice(overrides);
    TokenState::with_dynamo(
        TokenConfig::load(env_with(&all)).expect("token config"),
        dynamo,
    )
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

/// What sms, contacts and notifications channels grant.
pub const OPS: &str = r#"["history","presence","publish","subscribe"]"#;
/// What a conversation grants a customer, a session or a broker: its own messages change.
pub const OWN_OPS: &str = r#"["annotation-publish","history","message-delete-own","message-update-own","presence","publish","subscribe"]"#;
/// What a conversation grants admin and service: anyone's messages change.
pub const ANY_OPS: &str = r#"["annotation-publish","history","message-delete-any","message-update-any","presence","publish","subscribe"]"#;

/// The documented algorithm, written out independently of the product code:
/// base64(HMAC-SHA256(secret, keyName\nttl\ncapability\nclientId\ntimestamp\nnonce\n)).
pub fn independent_mac(secret: &str, fields: [&str; 6]) -> String {
    let text: String = fields.iter().map(|f| format!("{f}\n")).collect();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub fn key_parts() -> (String, String) {
    let key = stack_var("ABLY_API_KEY");
    let (name, secret) = key.split_once(':').unwrap();
    (name.to_owned(), secret.to_owned())
}

/// Asserts the body is a TokenRequest whose mac verifies with the stack's key secret.
pub fn assert_signed_token_request(body: &Value) {
    let (key_name, secret) = key_parts();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "capability",
            "clientId",
            "keyName",
            "mac",
            "nonce",
            "timestamp",
            "ttl"
        ]
    );
    assert_eq!(body["keyName"], json!(key_name));
    let ttl = body["ttl"].as_u64().unwrap().to_string();
    let timestamp = body["timestamp"].as_u64().unwrap();
    let expected = independent_mac(
        &secret,
        [
            &key_name,
            &ttl,
            body["capability"].as_str().unwrap(),
            body["clientId"].as_str().unwrap(),
            &timestamp.to_string(),
            body["nonce"].as_str().unwrap(),
        ],
    );
    assert_eq!(body["mac"], json!(expected));
    let now_ms = unix_now() as u64 * 1000;
    assert!(
        timestamp.abs_diff(now_ms) < 5_000,
        "timestamp {timestamp} vs {now_ms}"
    );
    assert!(body["nonce"].as_str().unwrap().len() >= 16);
}

pub fn capability(body: &Value) -> String {
    body["capability"].as_str().unwrap().to_owned()
}
