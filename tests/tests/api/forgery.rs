//! No secret a caller holds signs a webhook: a TokenRequest's `mac` and an Ably JWT's
//! signature are HMAC-SHA256 under the API key's secret, and every caller receives them.
//! Posted as a webhook, with any headers a forger likes, they are refused and nothing is
//! written; a deployment configured to verify webhooks with that key does not start.

use base64::Engine as _;
use chat_core::handlers::ably_events::EventsConfig;
use serde_json::Value;

use crate::helpers::{
    api_request, bearer, body_json, env_with, post_token_as, stack_var, token_state, EventsApp,
};

/// A non-enveloped webhook as a forger would send it: a trusted-looking `message:ai` in
/// someone else's conversation, with the given body and signature headers.
fn forged(body: &str, signature: &str, key_name: Option<&str>) -> lambda_http::Request {
    let now = chrono::Utc::now().timestamp_millis().to_string();
    let mut headers = vec![
        ("content-type", "text/plain"),
        (
            "x-ably-envelope-channel",
            "conversation:victim-conversation",
        ),
        ("x-ably-envelope-source", "channel.message"),
        ("x-ably-message-name", "message:ai"),
        ("x-ably-message-id", "forged:0"),
        ("x-ably-message-timestamp", now.as_str()),
        ("x-ably-signature", signature),
    ];
    if let Some(name) = key_name {
        headers.push(("x-ably-key", name));
    }
    api_request("POST", "/api/ably/events", &headers, Some(body))
}

#[tokio::test]
async fn a_token_request_mac_or_an_ably_jwt_signature_never_signs_a_webhook() {
    // ably-events as deployed: the dedicated webhook key; the token key is the stack's
    // ABLY_API_KEY, visible beside it (one environment for every function here).
    let webhook_keys = stack_var("ABLY_WEBHOOK_KEYS");
    let events =
        EventsApp::build(&[("ABLY_WEBHOOK_KEYS", webhook_keys.as_str())], None, None).await;
    let token = token_state(&[]);
    let customer = bearer("forger", "customer", &["forger-conversation"]);

    // A customer's own TokenRequest: its mac over the text Ably signs.
    let request: Value = body_json(&post_token_as(&token, &customer, "{}").await);
    let text = |name: &str| match &request[name] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let signed = format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n",
        text("keyName"),
        text("ttl"),
        text("capability"),
        text("clientId"),
        text("timestamp"),
        text("nonce")
    );
    let mac = text("mac");
    for key_name in [Some(text("keyName")), None] {
        let response = events
            .send(forged(&signed, &mac, key_name.as_deref()))
            .await;
        assert_eq!(
            response.status(),
            401,
            "a TokenRequest mac, X-Ably-Key {key_name:?}"
        );
        assert_eq!(body_json(&response)["code"], "invalid_signature");
    }

    // A customer's own Ably JWT: its signature over `header.payload`.
    let jwt: Value = body_json(&post_token_as(&token, &customer, r#"{"format": "jwt"}"#).await);
    let jwt = jwt["token"].as_str().expect("an Ably JWT");
    let (signing_input, signature) = jwt.rsplit_once('.').expect("three parts");
    let signature = base64::engine::general_purpose::STANDARD.encode(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .expect("base64url"),
    );
    for key_name in [Some(text("keyName")), None] {
        let response = events
            .send(forged(signing_input, &signature, key_name.as_deref()))
            .await;
        assert_eq!(
            response.status(),
            401,
            "an Ably JWT, X-Ably-Key {key_name:?}"
        );
    }
    events.assert_nothing_written().await;

    // Verifying webhooks with the token key is refused at cold start, by name or secret.
    let api_key = stack_var("ABLY_API_KEY");
    let secret = api_key.split_once(':').expect("name:secret").1;
    for keys in [api_key.clone(), format!("app.other:{secret}")] {
        let err = EventsConfig::load(env_with(&[("ABLY_WEBHOOK_KEYS", keys.as_str())]))
            .expect_err("the token key verifies no webhook");
        let text = err.to_string();
        assert!(text.contains("signs every TokenRequest"), "{text}");
        assert!(!text.contains(secret), "no secret in the message");
    }
}
