//! The events a run hands a function, made valid for that run: bearer tokens minted afresh,
//! webhook message ids made unique and the body signed again.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{json, Value};

use super::env::required;
use crate::webhook_load::{self, LoadPlan, Signer};

/// The secrets a run needs to make its event valid (from the stack environment).
#[derive(Clone)]
pub struct Secrets {
    pub jwt_secret: String,
    /// `appId.keyId:secret`: the dedicated key that signs webhooks.
    pub webhook_key: String,
}

impl Secrets {
    /// `JWT_SECRET` and the first key of `ABLY_WEBHOOK_KEYS` of the local stack's settings.
    pub fn from_env() -> anyhow::Result<Secrets> {
        let keys = required("ABLY_WEBHOOK_KEYS")?;
        Ok(Secrets {
            jwt_secret: required("JWT_SECRET")?,
            webhook_key: keys.split(',').next().unwrap_or_default().trim().to_owned(),
        })
    }
}

/// Where an API Gateway v2 event comes from.
#[derive(Debug, Clone)]
pub enum EventSource {
    /// A file under `events/`; its bearer token is minted afresh and, for a webhook, its
    /// message ids are made unique per run and the body signed again.
    File(PathBuf),
    /// A signed Ably batched webhook of this many chat messages (`webhook_load::batches`).
    Webhook { events: usize },
    /// A signed Ably batched webhook of about this many bytes, of messages whose data is a
    /// JSON array of 17 000 zeros (34 KB on the wire, half a megabyte as a value tree):
    /// what any customer may publish, and Ably batch.
    NumberArrays { bytes: usize },
}

/// The zeros in each message of [`EventSource::NumberArrays`].
pub const NUMBERS_PER_MESSAGE: usize = 17_000;

/// A batched webhook body of about `bytes` bytes of number-array messages, timed now, with
/// ids unique to `run`.
pub fn number_array_webhook(bytes: usize, run: &str) -> String {
    let data = format!("[{}0]", "0,".repeat(NUMBERS_PER_MESSAGE - 1));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut items = Vec::new();
    let mut size = 16;
    let mut i = 0;
    while size < bytes {
        let item = json!({
            "webhookId": "memory", "source": "channel.message", "serial": format!("{run}:{i}"),
            "timestamp": now, "name": "channel.message",
            "data": {"channelId": format!("conversation:memory-{}", i % 8), "site": "local",
                "messages": [{"id": format!("{run}-{i}:0:0"), "clientId": "customer-1",
                    "timestamp": now, "name": "message:user",
                    "data": serde_json::value::RawValue::from_string(data.clone()).ok()}]},
        })
        .to_string();
        size += item.len() + 1;
        items.push(item);
        i += 1;
    }
    format!("{{\"items\":[{}]}}", items.join(","))
}

/// The API Gateway v2 event of one run; `run` makes ids unique.
pub fn prepare_event(source: &EventSource, secrets: &Secrets, run: &str) -> anyhow::Result<Value> {
    match source {
        EventSource::File(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut event: Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            refresh_bearer(&mut event, &secrets.jwt_secret)?;
            if event["headers"].get("x-ably-signature").is_some() {
                let body = event["body"].as_str().unwrap_or_default();
                let body = unique_message_ids(body, run)?;
                Signer::from_key(&secrets.webhook_key)?.sign_into(&mut event, body);
            }
            Ok(event)
        }
        EventSource::Webhook { events } => {
            let plan = LoadPlan {
                events: *events,
                senders: 1,
                batch_size: (*events).max(1),
                conversations: 20,
                redeliver_percent: 0,
                seed: 1,
            };
            let batch = webhook_load::batches(&plan, run)
                .into_iter()
                .next()
                .context("no batch")?;
            let body = String::from_utf8(batch.body).context("webhook body")?;
            Ok(Signer::from_key(&secrets.webhook_key)?.api_gateway_event(body))
        }
        EventSource::NumberArrays { bytes } => {
            let body = number_array_webhook(*bytes, run);
            Ok(Signer::from_key(&secrets.webhook_key)?.api_gateway_event(body))
        }
    }
}

/// Replaces an `authorization: Bearer` token by one with the same claims, `iat` now and
/// `exp` in an hour, signed with `secret` (HS256).
fn refresh_bearer(event: &mut Value, secret: &str) -> anyhow::Result<()> {
    let Some(header) = event["headers"]["authorization"].as_str() else {
        return Ok(());
    };
    let token = header
        .strip_prefix("Bearer ")
        .context("authorization is not a bearer token")?;
    let payload = token.split('.').nth(1).context("not a JWT")?;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .context("JWT payload is not base64url")?;
    let mut claims: Value = serde_json::from_slice(&payload).context("JWT payload")?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 3600);
    let fresh = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?;
    event["headers"]["authorization"] = json!(format!("Bearer {fresh}"));
    Ok(())
}

/// Appends `-{run}` to every message id of an Ably batched webhook body, so that each run
/// stores new events instead of finding duplicates.
fn unique_message_ids(body: &str, run: &str) -> anyhow::Result<String> {
    let mut batch: Value = serde_json::from_str(body).context("webhook body")?;
    if let Some(items) = batch["items"].as_array_mut() {
        for item in items {
            if let Some(messages) = item["data"]["messages"].as_array_mut() {
                for message in messages {
                    if let Some(id) = message["id"].as_str() {
                        message["id"] = json!(format!("{id}-{run}"));
                    }
                }
            }
        }
    }
    Ok(batch.to_string())
}

/// The secrets the unit tests sign with.
#[cfg(test)]
pub(crate) fn test_secrets() -> Secrets {
    Secrets {
        jwt_secret: "test-jwt-secret-0123456789abcdef-0123".into(),
        webhook_key: "app.key:webhook-secret".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn bearer_tokens_are_minted_afresh_with_the_same_claims() {
        let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        let source = EventSource::File(events.join("ably-token/customer.json"));
        let event = prepare_event(&source, &test_secrets(), "r1").unwrap();
        let token = event["headers"]["authorization"]
            .as_str()
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        let claims = jsonwebtoken::decode::<Value>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(test_secrets().jwt_secret.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["userId"], "dev-user");
        assert_eq!(claims["role"], "customer");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(claims["exp"].as_u64().unwrap() > now);
    }

    #[test]
    fn webhooks_get_unique_ids_and_a_valid_signature() {
        let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        let source = EventSource::File(events.join("ably-events/batched-message.json"));
        let event = prepare_event(&source, &test_secrets(), "run7").unwrap();
        let body = event["body"].as_str().unwrap();
        assert!(body.contains("devConnA1b2:0:0-run7"));
        assert_eq!(event["headers"]["x-ably-key"], "app.key");
        assert_eq!(
            event["headers"]["x-ably-signature"],
            chat_core::ably::webhook::signature::sign("webhook-secret", body.as_bytes())
        );
        assert_eq!(event["headers"]["content-length"], body.len().to_string());

        let big =
            prepare_event(&EventSource::Webhook { events: 1000 }, &test_secrets(), "r").unwrap();
        let batch: Value = serde_json::from_str(big["body"].as_str().unwrap()).unwrap();
        let messages: usize = batch["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["data"]["messages"].as_array().unwrap().len())
            .sum();
        assert_eq!(messages, 1000);
        assert_eq!(big["rawPath"], "/api/ably/events");

        let numbers = prepare_event(
            &EventSource::NumberArrays { bytes: 200_000 },
            &test_secrets(),
            "r",
        )
        .unwrap();
        let body = numbers["body"].as_str().unwrap();
        assert!((200_000..240_000).contains(&body.len()), "{}", body.len());
        let batch: Value = serde_json::from_str(body).unwrap();
        let data = &batch["items"][0]["data"]["messages"][0]["data"];
        assert_eq!(data.as_array().unwrap().len(), NUMBERS_PER_MESSAGE);
        assert_eq!(data.to_string().len(), 2 * NUMBERS_PER_MESSAGE + 1);
    }
}
