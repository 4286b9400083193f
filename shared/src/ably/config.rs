//! Ably access settings: the API key, the REST endpoint and the keys that sign webhooks.

use std::fmt;
use std::str::FromStr;

use crate::platform::env::{Env, Secret};

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
    pub fn from_env(env: &mut Env) -> Self {
        AblyConfig {
            key: env.required_parsed::<AblyKey>("ABLY_API_KEY"),
            rest_url: env.url_or("ABLY_REST_URL", DEFAULT_ABLY_REST_URL),
        }
    }
}

/// Keys that may sign webhooks, in the order they are tried when `X-Ably-Key` names none.
#[derive(Debug, Clone, Default)]
pub struct WebhookKeys {
    /// `(key name, secret)`; the name is empty for the legacy single secret.
    pub keys: Vec<(String, Secret)>,
}

impl WebhookKeys {
    /// `ABLY_WEBHOOK_KEYS` (`name:secret,...`), then `ABLY_WEBHOOK_SIGNING_KEY`, then `ABLY_API_KEY`.
    pub fn from_env(env: &mut Env) -> Self {
        let mut keys = Vec::new();
        if let Some(list) = env.optional("ABLY_WEBHOOK_KEYS") {
            for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                match entry.parse::<AblyKey>() {
                    Ok(k) => keys.push((k.name, k.secret)),
                    Err(_) => {
                        env.problem("ABLY_WEBHOOK_KEYS entries must have the form keyName:secret");
                        break;
                    }
                }
            }
        }
        if let Some(legacy) = env.optional("ABLY_WEBHOOK_SIGNING_KEY") {
            keys.push((String::new(), Secret::new(legacy)));
        }
        if let Some(api_key) = env.optional("ABLY_API_KEY") {
            match api_key.parse::<AblyKey>() {
                Ok(k) => keys.push((k.name, k.secret)),
                Err(e) => env.problem(format!("ABLY_API_KEY is invalid: {e}")),
            }
        }
        if keys.is_empty() {
            env.problem(
                "missing required environment variable ABLY_WEBHOOK_KEYS (or ABLY_WEBHOOK_SIGNING_KEY or ABLY_API_KEY)",
            );
        }
        WebhookKeys { keys }
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
    fn webhook_keys_are_ordered_rotation_then_legacy_then_api_key() {
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
            [
                ("app.new", "s1"),
                ("app.old", "s2"),
                ("", "legacy"),
                ("app.api", "s3")
            ]
        );
    }
}
