//! Upstash Redis over its REST API: single commands, pipelines and `EVAL`.
//!
//! The same client talks to Upstash in production and to the project's
//! Upstash-compatible proxy in front of a local `redis-server` in development and tests.

use std::time::Duration;

use serde_json::Value;

use crate::platform::env::{Env, Secret};
use crate::storage::keys::Keys;
use crate::storage::scripts::Script;

/// Upstash's documented maximum request size; no request the cache sends is larger.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// The wait before the one retry of a request that failed in transit: `@upstash/redis`'s
/// first backoff (`exp(0) * 50` ms).
pub const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// The Upstash Redis REST endpoint and the prefix of every key in it.
#[derive(Debug, Clone, Default)]
pub struct RedisConfig {
    pub url: String,
    pub token: Secret,
    /// `REDIS_KEY_PREFIX`: prepended as it is to every key (e.g. `staging:`), so that
    /// several apps or environments can share one database.
    pub key_prefix: String,
}

impl RedisConfig {
    pub fn from_env(env: &mut Env) -> Self {
        RedisConfig {
            url: env.required_url("UPSTASH_REDIS_REST_URL"),
            token: env.secret("UPSTASH_REDIS_REST_TOKEN", 1),
            key_prefix: env.optional("REDIS_KEY_PREFIX").unwrap_or_default(),
        }
    }

    /// The key schema under this configuration's prefix.
    pub fn keys(&self) -> Keys {
        Keys::new(self.key_prefix.clone())
    }
}

/// Why a Redis call failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Network error, timeout or a 5xx: Redis could not be reached or did not answer.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// The REST token was refused.
    #[error("redis refused the REST token")]
    Unauthorized,
    /// Redis ran the request and answered with an error (e.g. `WRONGTYPE`).
    #[error("redis error: {0}")]
    Command(String),
    /// The answer was not in the Upstash REST format.
    #[error("unexpected redis response: {0}")]
    Protocol(String),
}

/// One command's outcome inside a pipeline or transaction.
pub type Reply = Result<Value, String>;

/// A client for the Upstash Redis REST API.
#[derive(Clone)]
pub struct RedisClient {
    http: reqwest::Client,
    base_url: String,
    token: Secret,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient")
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl RedisClient {
    /// Uses its own HTTP client with short timeouts: the cache must never hold a request up.
    pub fn new(config: &RedisConfig) -> Self {
        Self::with_http(
            config,
            crate::platform::http_client::build(Duration::from_secs(2), Duration::from_secs(5)),
        )
    }

    pub fn with_http(config: &RedisConfig, http: reqwest::Client) -> Self {
        RedisClient {
            http,
            base_url: config.url.trim_end_matches('/').to_owned(),
            token: config.token.clone(),
        }
    }

    /// Runs one command, e.g. `["SET", "k", "v", "EX", "60"]`.
    pub async fn command<S: AsRef<str>>(&self, args: &[S]) -> Result<Value, RedisError> {
        let body = json_body(&Command(args))?;
        let value = self.post("", body).await?;
        single_reply(value)
    }

    /// Runs several commands in one round trip (not atomic); one reply per command.
    pub async fn pipeline(&self, commands: &[Vec<String>]) -> Result<Vec<Reply>, RedisError> {
        self.batch("/pipeline", commands).await
    }

    /// Runs several commands atomically (`MULTI`/`EXEC`) in one round trip.
    pub async fn transaction(&self, commands: &[Vec<String>]) -> Result<Vec<Reply>, RedisError> {
        self.batch("/multi-exec", commands).await
    }

    /// Runs a Lua script with `EVAL` in one round trip. The request is written straight
    /// from the borrowed keys and arguments: a mirror's arguments hold every event's JSON.
    pub async fn eval<K: AsRef<str>, A: AsRef<str>>(
        &self,
        script: &str,
        keys: &[K],
        args: &[A],
    ) -> Result<Value, RedisError> {
        let count = keys.len().to_string();
        let mut command: Vec<&str> = Vec::with_capacity(3 + keys.len() + args.len());
        command.extend(["EVAL", script, count.as_str()]);
        command.extend(keys.iter().map(AsRef::as_ref));
        command.extend(args.iter().map(AsRef::as_ref));
        self.command(&command).await
    }

    /// Runs one of the project's [`Script`]s; `keys` are its `KEYS`, in the order its
    /// header names them.
    pub async fn run<K: AsRef<str>, A: AsRef<str>>(
        &self,
        script: &Script,
        keys: &[K],
        args: &[A],
    ) -> Result<Value, RedisError> {
        self.eval(script.source, keys, args).await
    }

    /// `PING`, for health checks.
    pub async fn ping(&self) -> Result<(), RedisError> {
        match self.command(&["PING"]).await? {
            Value::String(s) if s == "PONG" => Ok(()),
            other => Err(RedisError::Protocol(format!("PING answered {other}"))),
        }
    }

    async fn batch(&self, path: &str, commands: &[Vec<String>]) -> Result<Vec<Reply>, RedisError> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let commands: Vec<Command<'_, String>> = commands.iter().map(|c| Command(c)).collect();
        let body = json_body(&commands)?;
        let value = self.post(path, body).await?;
        let Value::Array(items) = value else {
            return Err(single_reply(value).err().unwrap_or_else(|| {
                RedisError::Protocol("expected an array of replies".to_owned())
            }));
        };
        if items.len() != commands.len() {
            return Err(RedisError::Protocol(format!(
                "expected {} replies, got {}",
                commands.len(),
                items.len()
            )));
        }
        items.into_iter().map(reply_entry).collect()
    }

    /// One request, tried a second time after [`RETRY_BACKOFF`] when the first failed in
    /// transit or with a 5xx, as `@upstash/redis` retries: a blip of the network or of
    /// Upstash is not an outage. Every script here is safe to run twice (the mirror's
    /// seen markers make a repeated push a duplicate; a rate limit counts one more).
    async fn post(&self, path: &str, body: bytes::Bytes) -> Result<Value, RedisError> {
        match self.post_once(path, body.clone()).await {
            Err(RedisError::Unavailable(first)) => {
                tracing::debug!(error = %first, "redis request failed; retrying once");
                tokio::time::sleep(RETRY_BACKOFF).await;
                self.post_once(path, body).await
            }
            other => other,
        }
    }

    async fn post_once(&self, path: &str, body: bytes::Bytes) -> Result<Value, RedisError> {
        let response = self
            .http
            .post(format!("{}{}", self.base_url, path))
            .bearer_auth(self.token.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| RedisError::Unavailable(describe_transport_error(&e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(RedisError::Unauthorized);
        }
        if status.is_server_error() {
            return Err(RedisError::Unavailable(format!("HTTP {}", status.as_u16())));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| RedisError::Unavailable(describe_transport_error(&e)))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| {
            RedisError::Protocol(format!("HTTP {} with a non-JSON body", status.as_u16()))
        })?;
        if !status.is_success() {
            // Upstash answers command errors with 400 and {"error": "..."}.
            return Err(match value.get("error").and_then(Value::as_str) {
                Some(msg) => RedisError::Command(msg.to_owned()),
                None => RedisError::Protocol(format!("HTTP {}", status.as_u16())),
            });
        }
        Ok(value)
    }
}

/// A command as Upstash's REST API takes it: a JSON array of strings.
struct Command<'a, S>(&'a [S]);

impl<S: AsRef<str>> serde::Serialize for Command<'_, S> {
    fn serialize<T: serde::Serializer>(&self, serializer: T) -> Result<T::Ok, T::Error> {
        serializer.collect_seq(self.0.iter().map(AsRef::as_ref))
    }
}

/// A request body, written once (a retry sends the same bytes).
fn json_body<T: serde::Serialize>(value: &T) -> Result<bytes::Bytes, RedisError> {
    serde_json::to_vec(value)
        .map(bytes::Bytes::from)
        .map_err(|e| RedisError::Protocol(format!("request not serialisable: {e}")))
}

fn single_reply(value: Value) -> Result<Value, RedisError> {
    match reply_entry(value)? {
        Ok(v) => Ok(v),
        Err(msg) => Err(RedisError::Command(msg)),
    }
}

fn reply_entry(value: Value) -> Result<Reply, RedisError> {
    let Value::Object(mut map) = value else {
        return Err(RedisError::Protocol("expected a JSON object".to_owned()));
    };
    if let Some(err) = map.remove("error") {
        return Ok(Err(match err {
            Value::String(s) => s,
            other => other.to_string(),
        }));
    }
    match map.remove("result") {
        Some(v) => Ok(Ok(v)),
        None => Err(RedisError::Protocol(
            "reply has neither result nor error".to_owned(),
        )),
    }
}

fn describe_transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    }
}

/// Builds a command from string-like parts: `cmd(["SET", key, "1"])`.
pub fn cmd<I, S>(parts: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    parts.into_iter().map(Into::into).collect()
}
