//! Typed configuration, read and validated once at cold start.
//!
//! A missing or invalid variable fails the cold start with a message naming every
//! offending variable; secret values are wrapped in [`Secret`] and never printed.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Default Ably REST endpoint; when configured, retries may use Ably's fallback hosts.
pub const DEFAULT_ABLY_REST_URL: &str = "https://main.realtime.ably.net";

/// A secret value. `Debug` and `Display` never show it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into().into_boxed_str())
    }
    /// The secret itself, for signing or authenticating; never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Why the configuration could not be loaded; names the variables, never their values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {}", .problems.join("; "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

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

/// Reads variables from a snapshot of the environment and collects every problem, so a
/// misconfigured deployment learns all missing variables from one failed cold start.
pub struct Env {
    vars: HashMap<String, String>,
    problems: Vec<String>,
}

impl Env {
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars())
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            problems: Vec::new(),
        }
    }

    /// A set, non-blank variable, trimmed.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// A required variable; records a problem (and returns an empty string) when missing.
    pub fn required(&mut self, name: &str) -> String {
        match self.optional(name) {
            Some(v) => v,
            None => {
                self.problems
                    .push(format!("missing required environment variable {name}"));
                String::new()
            }
        }
    }

    /// A required `http(s)://` URL, without a trailing slash.
    pub fn required_url(&mut self, name: &str) -> String {
        let url = self.required(name);
        self.check_url(name, &url);
        url.trim_end_matches('/').to_owned()
    }

    /// Records a problem unless `url` is empty or an `http(s)://` URL.
    fn check_url(&mut self, name: &str, url: &str) {
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            self.problems.push(format!("{name} must be an http(s) URL"));
        }
    }

    /// A required secret of at least `min_len` bytes.
    pub fn secret(&mut self, name: &str, min_len: usize) -> Secret {
        let value = self.required(name);
        if !value.is_empty() && value.len() < min_len {
            self.problems
                .push(format!("{name} must be at least {min_len} bytes long"));
        }
        Secret::new(value)
    }

    /// A required value parsed with `FromStr`; the error names the variable, not its value.
    pub fn required_parsed<T>(&mut self, name: &str) -> T
    where
        T: FromStr + Default,
        T::Err: fmt::Display,
    {
        let raw = self.required(name);
        if raw.is_empty() {
            return T::default();
        }
        self.parse_value(name, &raw).unwrap_or_default()
    }

    /// An optional value parsed with `FromStr`, or `default` when unset.
    pub fn parsed_or<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.optional(name) {
            None => default,
            Some(raw) => self.parse_value(name, &raw).unwrap_or(default),
        }
    }

    /// An optional boolean, `true` or `false` (in any ASCII case), or `default` when unset.
    /// Anything else (`1`, `yes`, a typo) fails the cold start rather than guess what a
    /// switch that changes behaviour was meant to be.
    pub fn flag(&mut self, name: &str, default: bool) -> bool {
        match self.optional(name) {
            None => default,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(_) => {
                self.problems.push(format!("{name} must be true or false"));
                default
            }
        }
    }

    /// Records a problem found while validating a value (never include the value of a secret).
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    fn parse_value<T>(&mut self, name: &str, raw: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match raw.parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(format!("{name} is invalid: {e}"));
                None
            }
        }
    }

    /// Ends loading: an error listing every problem, or `Ok` when there were none.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}

/// HTTP-facing settings every function shares.
#[derive(Debug, Clone, Default)]
pub struct HttpConfig {
    /// The one browser origin allowed by CORS (credentials are allowed, so never `*`).
    pub cors_origin: Option<String>,
}

impl HttpConfig {
    pub fn from_env(env: &mut Env) -> Self {
        let cors_origin = env.optional("CORS_ORIGIN");
        if cors_origin.as_deref() == Some("*") {
            env.problem("CORS_ORIGIN must name one origin, not '*' (credentials are allowed)");
        }
        HttpConfig { cors_origin }
    }
}

/// Verification settings for callers' bearer JWTs.
#[derive(Debug, Clone, Default)]
pub struct JwtConfig {
    pub secret: Secret,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

impl JwtConfig {
    pub fn from_env(env: &mut Env) -> Self {
        let config = JwtConfig {
            secret: env.secret("JWT_SECRET", 32),
            issuer: env.optional("JWT_ISSUER"),
            audience: env.optional("JWT_AUDIENCE"),
        };
        // These audiences mark chat sessions and resume links, which are never bearer tokens.
        if matches!(
            config.audience.as_deref(),
            Some(crate::auth::SESSION_AUDIENCE | crate::auth::RESUME_AUDIENCE)
        ) {
            env.problem("JWT_AUDIENCE must not be chat-session or chat-resume");
        }
        config
    }
}

/// The Upstash Redis REST endpoint.
#[derive(Debug, Clone, Default)]
pub struct RedisConfig {
    pub url: String,
    pub token: Secret,
}

impl RedisConfig {
    pub fn from_env(env: &mut Env) -> Self {
        RedisConfig {
            url: env.required_url("UPSTASH_REDIS_REST_URL"),
            token: env.secret("UPSTASH_REDIS_REST_TOKEN", 1),
        }
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
        let key = env.required_parsed::<AblyKey>("ABLY_API_KEY");
        let rest_url = env
            .optional("ABLY_REST_URL")
            .unwrap_or_else(|| DEFAULT_ABLY_REST_URL.to_owned());
        env.check_url("ABLY_REST_URL", &rest_url);
        AblyConfig {
            key,
            rest_url: rest_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Fallback hosts are only used against Ably's default endpoint.
    pub fn uses_default_host(&self) -> bool {
        self.rest_url == DEFAULT_ABLY_REST_URL
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

/// Retention of mirrored events.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    pub event_retention_days: u32,
    pub redis_event_ttl_seconds: u64,
    pub redis_event_max: u32,
}

impl RetentionConfig {
    pub fn from_env(env: &mut Env) -> Self {
        let cfg = RetentionConfig {
            event_retention_days: env.parsed_or("EVENT_RETENTION_DAYS", 90),
            redis_event_ttl_seconds: env.parsed_or("REDIS_EVENT_TTL_SECONDS", 86_400),
            redis_event_max: env.parsed_or("REDIS_EVENT_MAX", 100),
        };
        if cfg.event_retention_days == 0 {
            env.problem("EVENT_RETENTION_DAYS must be at least 1");
        }
        if cfg.redis_event_ttl_seconds == 0 {
            env.problem("REDIS_EVENT_TTL_SECONDS must be at least 1");
        }
        if cfg.redis_event_max == 0 {
            env.problem("REDIS_EVENT_MAX must be at least 1");
        }
        cfg
    }
}

/// A per-caller limit: `max` requests per `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window_seconds: u32,
}

impl RateLimit {
    /// `{prefix}_MAX` and `{prefix}_WINDOW_SECONDS`, e.g. `RATE_LIMIT_TOKEN_MAX`.
    pub fn from_env(env: &mut Env, prefix: &str, default: RateLimit) -> Self {
        let limit = RateLimit {
            max: env.parsed_or(&format!("{prefix}_MAX"), default.max),
            window_seconds: env
                .parsed_or(&format!("{prefix}_WINDOW_SECONDS"), default.window_seconds),
        };
        if limit.max == 0 || limit.window_seconds == 0 {
            env.problem(format!(
                "{prefix}_MAX and {prefix}_WINDOW_SECONDS must be at least 1"
            ));
        }
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_variables_are_all_named_and_secrets_never_shown() {
        let mut env = Env::from_pairs([("JWT_SECRET", "short-secret-value")]);
        let jwt = JwtConfig::from_env(&mut env);
        let _redis = RedisConfig::from_env(&mut env);
        let err = env.finish().unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("JWT_SECRET must be at least 32 bytes"),
            "{text}"
        );
        assert!(text.contains("missing required environment variable UPSTASH_REDIS_REST_URL"));
        assert!(text.contains("missing required environment variable UPSTASH_REDIS_REST_TOKEN"));
        assert!(!text.contains("short-secret-value"));
        assert!(!format!("{jwt:?}").contains("short-secret-value"));
    }

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

    #[test]
    fn flags_are_true_or_false_and_anything_else_names_the_variable() {
        let mut env = Env::from_pairs([
            ("A", "true"),
            ("B", " FALSE "),
            ("C", "True"),
            ("D", "1"),
            ("E", "yes"),
            ("F", "tru"),
        ]);
        assert!(env.flag("A", false));
        assert!(!env.flag("B", true));
        assert!(env.flag("C", false));
        assert!(env.flag("UNSET", true));
        assert!(!env.flag("UNSET", false));
        for name in ["D", "E", "F"] {
            env.flag(name, false);
        }
        assert_eq!(
            env.finish().unwrap_err().problems,
            [
                "D must be true or false",
                "E must be true or false",
                "F must be true or false"
            ]
        );
    }

    #[test]
    fn cors_wildcard_and_bad_numbers_are_rejected() {
        let mut env = Env::from_pairs([("CORS_ORIGIN", "*"), ("REDIS_EVENT_MAX", "many")]);
        HttpConfig::from_env(&mut env);
        RetentionConfig::from_env(&mut env);
        let text = env.finish().unwrap_err().to_string();
        assert!(text.contains("CORS_ORIGIN"));
        assert!(text.contains("REDIS_EVENT_MAX is invalid"));
    }
}
