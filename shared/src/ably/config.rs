//! Ably access settings: the API key, the REST endpoint and the keys that sign webhooks.

use std::fmt;
use std::str::FromStr;

use crate::platform::env::{Env, Secret};

/// The API key: it signs TokenRequests and Ably JWTs and authenticates REST calls.
const API_KEY: &str = "ABLY_API_KEY";

/// Default Ably REST endpoint; when configured, retries may use Ably's fallback hosts.
pub const DEFAULT_ABLY_REST_URL: &str = "https://main.realtime.ably.net";

/// An Ably API key `appId.keyId:secret`, split into the public key name and the secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AblyKey {
    pub name: String,
    pub secret: Secret,
}

impl fmt::Debug for AblyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AblyKey")
            .field("name", &self.name)
            .field("secret", &self.secret)
            .finish()
    }
}

impl FromStr for AblyKey {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, secret) = s
            .split_once(':')
            .ok_or("expected the form appId.keyId:secret")?;
        let valid_name = name.split_once('.').is_some_and(|(app, key)| {
            !app.is_empty()
                && !key.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
        if !valid_name || secret.is_empty() {
            return Err("expected the form appId.keyId:secret");
        }
        Ok(AblyKey {
            name: name.to_owned(),
            secret: Secret::new(secret),
        })
    }
}

impl AblyKey {
    /// The full key as used for HTTP Basic auth against Ably's REST API.
    pub fn basic_credentials(&self) -> String {
        format!("{}:{}", self.name, self.secret.expose())
    }
}

/// Ably REST access: the API key and the REST base URL.
#[derive(Debug, Clone, Default)]
pub struct AblyConfig {
    pub key: AblyKey,
    pub rest_url: String,
}

impl AblyConfig {
    /// `ABLY_API_KEY` and `ABLY_REST_URL`; when webhook keys are visible as well (one
    /// environment for every function, as in local development), the API key must not be
    /// one of them.
    pub fn from_env(env: &mut Env) -> Self {
        let key = env.required_parsed::<AblyKey>(API_KEY);
        if let Some(webhook) = WebhookKeys::visible(env) {
            if !key.name.is_empty() {
                webhook.refuse_token_key(env, &key);
            }
        }
        AblyConfig {
            key,
            rest_url: env.url_or("ABLY_REST_URL", DEFAULT_ABLY_REST_URL),
        }
    }
}

/// Keys that may sign webhooks: dedicated Ably keys chosen as the integration rule's
/// signing key, which sign nothing else.
///
/// Never the API key that signs TokenRequests and Ably JWTs: a TokenRequest `mac` and an
/// Ably JWT signature are HMAC-SHA256 under that key's secret over text the caller
/// chooses the shape of, and every caller receives them. Verifying webhooks with it would
/// let any customer sign a webhook.
#[derive(Debug, Clone, Default)]
pub struct WebhookKeys {
    /// `(key name, secret)`; the name is empty for the legacy single secret.
    pub keys: Vec<(String, Secret)>,
}

/// The variables that hold webhook keys.
const WEBHOOK_KEYS: &str = "ABLY_WEBHOOK_KEYS";
const LEGACY_WEBHOOK_KEY: &str = "ABLY_WEBHOOK_SIGNING_KEY";

impl WebhookKeys {
    /// `ABLY_WEBHOOK_KEYS` (`name:secret,...`), then `ABLY_WEBHOOK_SIGNING_KEY`; one of
    /// them is required. When `ABLY_API_KEY` is visible too, it must be none of them.
    pub fn from_env(env: &mut Env) -> Self {
        let keys = Self::visible(env).unwrap_or_default();
        if keys.keys.is_empty() && env.optional(WEBHOOK_KEYS).is_none() {
            env.problem(format!(
                "missing required environment variable {WEBHOOK_KEYS} (or {LEGACY_WEBHOOK_KEY}): \
                 the dedicated Ably key chosen as the integration rule's signing key"
            ));
        }
        if let Some(token_key) = env
            .optional(API_KEY)
            .and_then(|k| k.parse::<AblyKey>().ok())
        {
            keys.refuse_token_key(env, &token_key);
        }
        keys
    }

    /// The webhook keys this environment shows, if it shows any (a function that does not
    /// verify webhooks reads them only to refuse its own token key among them).
    pub fn visible(env: &mut Env) -> Option<Self> {
        let mut keys = Vec::new();
        if let Some(list) = env.optional(WEBHOOK_KEYS) {
            for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                match entry.parse::<AblyKey>() {
                    Ok(k) => keys.push((k.name, k.secret)),
                    Err(_) => {
                        env.problem(format!(
                            "{WEBHOOK_KEYS} entries must have the form keyName:secret"
                        ));
                        break;
                    }
                }
            }
        }
        if let Some(legacy) = env.optional(LEGACY_WEBHOOK_KEY) {
            keys.push((String::new(), Secret::new(legacy)));
        }
        (!keys.is_empty()).then_some(WebhookKeys { keys })
    }

    /// Records a problem when `token_key` (the key that signs TokenRequests and Ably JWTs)
    /// is among these keys, by name or by secret.
    pub fn refuse_token_key(&self, env: &mut Env, token_key: &AblyKey) {
        let shared = self.keys.iter().any(|(name, secret)| {
            name == &token_key.name || secret.expose() == token_key.secret.expose()
        });
        if shared {
            env.problem(format!(
                "{WEBHOOK_KEYS} / {LEGACY_WEBHOOK_KEY} hold the key of {API_KEY}, which signs \
                 every TokenRequest and Ably JWT that callers receive, so any caller could sign \
                 a webhook with it: create a dedicated Ably key for the integration rule's \
                 signing key and configure only that one"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ably_key_parses_and_hides_secret() {
        let key: AblyKey = "xVLyHw.DQrNxQ:fakeSecret".parse().unwrap();
        assert_eq!(key.name, "xVLyHw.DQrNxQ");
        assert_eq!(key.secret.expose(), "fakeSecret");
        assert!(!format!("{key:?}").contains("fakeSecret"));
        for bad in [
            "nocolon",
            "noapp:secret",
            ".key:secret",
            "app.:secret",
            "app.key:",
            "a*.b:c",
        ] {
            assert!(bad.parse::<AblyKey>().is_err(), "{bad}");
        }
    }

    #[test]
    fn webhook_keys_are_rotation_then_legacy_and_never_the_api_key() {
        let mut env = Env::from_pairs([
            ("ABLY_WEBHOOK_KEYS", "app.new:s1, app.old:s2"),
            ("ABLY_WEBHOOK_SIGNING_KEY", "legacy"),
            ("ABLY_API_KEY", "app.api:s3"),
        ]);
        let keys = WebhookKeys::from_env(&mut env);
        env.finish().unwrap();
        let names: Vec<_> = keys
            .keys
            .iter()
            .map(|(n, s)| (n.as_str(), s.expose()))
            .collect();
        assert_eq!(
            names,
            [("app.new", "s1"), ("app.old", "s2"), ("", "legacy")],
            "the API key verifies no webhook"
        );
        // Only the API key: no webhook key at all.
        let mut env = Env::from_pairs([("ABLY_API_KEY", "app.api:s3")]);
        WebhookKeys::from_env(&mut env);
        let text = env.finish().unwrap_err().to_string();
        assert!(
            text.contains("missing required environment variable ABLY_WEBHOOK_KEYS"),
            "{text}"
        );
    }

    #[test]
    fn a_webhook_key_that_signs_tokens_fails_the_cold_start_wherever_both_are_visible() {
        for (webhook, legacy) in [
            ("app.api:s3", ""),
            ("app.new:s1,app.api:other", ""),
            ("app.new:s3", ""),
            ("", "s3"),
        ] {
            let pairs = [
                ("ABLY_WEBHOOK_KEYS", webhook),
                ("ABLY_WEBHOOK_SIGNING_KEY", legacy),
                ("ABLY_API_KEY", "app.api:s3"),
            ];
            // The webhook function's configuration...
            let mut env = Env::from_pairs(pairs);
            WebhookKeys::from_env(&mut env);
            let text = env.finish().unwrap_err().to_string();
            assert!(
                text.contains("signs every TokenRequest"),
                "{webhook} {legacy}: {text}"
            );
            assert!(!text.contains("s3"), "no secret in the message: {text}");
            // ...and the token signers' refuse it alike.
            let mut env = Env::from_pairs(pairs);
            AblyConfig::from_env(&mut env);
            let text = env.finish().unwrap_err().to_string();
            assert!(
                text.contains("signs every TokenRequest"),
                "{webhook} {legacy}: {text}"
            );
        }
        let mut env = Env::from_pairs([
            ("ABLY_WEBHOOK_KEYS", "app.hook:s1"),
            ("ABLY_API_KEY", "app.api:s3"),
        ]);
        AblyConfig::from_env(&mut env);
        WebhookKeys::from_env(&mut env);
        env.finish().unwrap();
    }
}
