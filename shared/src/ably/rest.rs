//! Ably's REST API: idempotent publishing with retries and fallback hosts, reading and
//! changing published messages (with the same retries), the server clock and channel
//! status.
//!
//! Used by the Lambda handlers (built once at cold start) and by any other Rust code that
//! publishes to the chat channels (e.g. AI or SLA workers), so it depends on nothing
//! Lambda-specific.
//!
//! Publishing is safe to retry end to end: every message carries an `id` of the form
//! `<base>:<index>`, the same on every attempt, and Ably discards a message whose id it
//! has already accepted (within about two minutes). A caller that retries a whole request
//! with the same idempotency key therefore gets the same ids again (see
//! [`message_id_base`]).

use std::fmt;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use rand::seq::SliceRandom;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::Serialize;

use crate::ably::change::{
    message_path, prepare_change, version_serial, ChangeReceipt, MessageChange, StoredMessage,
};
use crate::ably::config::AblyConfig;
use crate::ably::error::{classify, AblyError, AttemptFailure, Classified};
use crate::ably::message::{
    encode_segment, message_id_base, prepare_publish, published_serials, AiTiming, ChannelStatus,
    OutboundMessage, PublishReceipt, SlaLevel,
};
use crate::ably::retry::{FallbackHosts, RetryPolicy};
use crate::identity::ids::is_identifier;
use crate::platform::env::Secret;

/// Ably REST protocol version sent with every request, as Ably's own libraries do.
const ABLY_PROTOCOL_VERSION: &str = "2";

/// An attempt gets at least this much time, or it is not started.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(50);

/// A client for Ably's REST API, built once and shared (it is cheap to clone).
#[derive(Clone)]
pub struct AblyClient {
    http: reqwest::Client,
    rest_url: String,
    /// Empty unless `rest_url` is the default endpoint.
    fallbacks: Vec<String>,
    /// `Basic base64(keyName:secret)`, marked sensitive.
    authorization: HeaderValue,
    /// Kept only to scrub it from any text Ably sends back.
    secret: Secret,
    retry: RetryPolicy,
}

impl fmt::Debug for AblyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AblyClient")
            .field("rest_url", &self.rest_url)
            .field("fallbacks", &self.fallbacks)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl AblyClient {
    /// Builds its own HTTP client: 4 s to connect, 10 s per request.
    pub fn new(config: &AblyConfig) -> Self {
        Self::with_http(
            config,
            crate::platform::http_client::build(Duration::from_secs(4), Duration::from_secs(10)),
        )
    }

    /// Uses the given HTTP client (e.g. one shared with other calls).
    pub fn with_http(config: &AblyConfig, http: reqwest::Client) -> Self {
        let credentials = STANDARD.encode(config.key.basic_credentials());
        // Base64 and "Basic " are visible ASCII, which a header value always accepts.
        let mut authorization = HeaderValue::try_from(format!("Basic {credentials}"))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        authorization.set_sensitive(true);
        AblyClient {
            http,
            rest_url: config.rest_url.trim_end_matches('/').to_owned(),
            fallbacks: Vec::new(),
            authorization,
            secret: config.key.secret.clone(),
            retry: RetryPolicy::default(),
        }
        .with_fallback_hosts(FallbackHosts::ably())
    }

    /// Replaces the fallback hosts (used only when the REST URL is their default URL).
    pub fn with_fallback_hosts(mut self, hosts: FallbackHosts) -> Self {
        self.fallbacks = if self.rest_url == hosts.default_rest_url.trim_end_matches('/') {
            hosts
                .urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect()
        } else {
            Vec::new()
        };
        self
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn rest_url(&self) -> &str {
        &self.rest_url
    }

    /// The fallback base URLs retries may use (empty for a custom REST URL).
    pub fn fallback_urls(&self) -> &[String] {
        &self.fallbacks
    }

    /// Publishes with random message ids (`<random base>:<index>`).
    pub async fn publish<D: Serialize + ?Sized>(
        &self,
        channel: &str,
        messages: &[OutboundMessage<'_, D>],
        deadline: Instant,
    ) -> Result<PublishReceipt, AblyError> {
        self.publish_with_id_base(channel, &message_id_base(None), messages, deadline)
            .await
    }

    /// Publishes `messages` in one request with ids `<id_base>:<index>`, retrying network
    /// errors, timeouts and 500-504 (on fallback hosts when available) until
    /// `deadline - deadline_margin`.
    pub async fn publish_with_id_base<D: Serialize + ?Sized>(
        &self,
        channel: &str,
        id_base: &str,
        messages: &[OutboundMessage<'_, D>],
        deadline: Instant,
    ) -> Result<PublishReceipt, AblyError> {
        let (path, message_ids, body) = prepare_publish(channel, id_base, messages)?;
        let (attempts, answer) = self
            .send_with_retries(Method::POST, &path, Some(body), deadline)
            .await?;
        Ok(PublishReceipt {
            channel: channel.to_owned(),
            message_ids,
            serials: published_serials(&answer),
            attempts,
        })
    }

    /// The latest version of the message `serial` on `channel`
    /// (`GET /channels/{channel}/messages/{serial}`, as ably-js `getMessage`), retried as
    /// publishes are; `None` when Ably knows no such message (404).
    pub async fn get_message(
        &self,
        channel: &str,
        serial: &str,
        deadline: Instant,
    ) -> Result<Option<StoredMessage>, AblyError> {
        let path = message_path(channel, serial)?;
        match self
            .send_with_retries(Method::GET, &path, None, deadline)
            .await
        {
            Ok((_, answer)) => serde_json::from_slice(&answer).map(Some).map_err(|_| {
                AblyError::InvalidResponse(
                    "GET /channels/{id}/messages/{serial} did not return a message".into(),
                )
            }),
            Err(AblyError::Rejected { status: 404, .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Updates, deletes or appends to a published message
    /// (`PATCH /channels/{channel}/messages/{serial}`, the body as ably-js builds it),
    /// retried as publishes are: the same body on every attempt.
    pub async fn change_message(
        &self,
        channel: &str,
        change: &MessageChange<'_>,
        deadline: Instant,
    ) -> Result<ChangeReceipt, AblyError> {
        let (path, body) = prepare_change(channel, change)?;
        let (attempts, answer) = self
            .send_with_retries(Method::PATCH, &path, Some(body), deadline)
            .await?;
        Ok(ChangeReceipt {
            version_serial: version_serial(&answer),
            attempts,
        })
    }

    /// Publishes `message:ai` with `{"text", "timing"}` on `conversation:{conversation_id}`.
    pub async fn publish_ai_message(
        &self,
        conversation_id: &str,
        text: &str,
        timing: AiTiming,
        idempotency_key: Option<&str>,
        deadline: Instant,
    ) -> Result<PublishReceipt, AblyError> {
        #[derive(Serialize)]
        struct AiMessage<'a> {
            text: &'a str,
            timing: AiTiming,
        }
        let data = AiMessage { text, timing };
        self.publish_to_conversation(
            conversation_id,
            OutboundMessage::new("message:ai", &data),
            idempotency_key,
            deadline,
        )
        .await
    }

    /// Publishes `sla:warning` or `sla:violation` with `details` as the data on
    /// `conversation:{conversation_id}`.
    pub async fn publish_sla<D: Serialize + ?Sized>(
        &self,
        conversation_id: &str,
        level: SlaLevel,
        details: &D,
        idempotency_key: Option<&str>,
        deadline: Instant,
    ) -> Result<PublishReceipt, AblyError> {
        self.publish_to_conversation(
            conversation_id,
            OutboundMessage::new(level.event_name(), details),
            idempotency_key,
            deadline,
        )
        .await
    }

    async fn publish_to_conversation<D: Serialize + ?Sized>(
        &self,
        conversation_id: &str,
        message: OutboundMessage<'_, D>,
        idempotency_key: Option<&str>,
        deadline: Instant,
    ) -> Result<PublishReceipt, AblyError> {
        if !is_identifier(conversation_id) {
            return Err(AblyError::InvalidRequest(
                "conversation id must match [A-Za-z0-9_-]{1,128}",
            ));
        }
        let channel = format!("conversation:{conversation_id}");
        // Scoped by channel, as `ably-publish` scopes its own: Ably de-duplicates ids
        // across channels, so one conversation's key must not silence another's message.
        let scoped = idempotency_key.map(|key| format!("{channel}\n{key}"));
        let id_base = message_id_base(scoped.as_deref());
        self.publish_with_id_base(&channel, &id_base, &[message], deadline)
            .await
    }

    /// Ably's clock (`GET /time`), in ms since the epoch: one attempt within `timeout`,
    /// on the configured host only (a health check must be fast and say what it saw).
    pub async fn time(&self, timeout: Duration) -> Result<i64, AblyError> {
        let url = format!("{}/time", self.rest_url);
        let body = self.get_once(&url, timeout).await?;
        match serde_json::from_slice::<Vec<i64>>(&body).ok().as_deref() {
            Some([ms, ..]) => Ok(*ms),
            _ => Err(AblyError::InvalidResponse(
                "GET /time did not return [milliseconds]".to_owned(),
            )),
        }
    }

    /// A channel's status and occupancy (`GET /channels/{channel}`): one attempt within
    /// `timeout`, on the configured host only.
    pub async fn channel_status(
        &self,
        channel: &str,
        timeout: Duration,
    ) -> Result<ChannelStatus, AblyError> {
        if channel.is_empty() {
            return Err(AblyError::InvalidRequest("channel name is empty"));
        }
        let url = format!("{}/channels/{}", self.rest_url, encode_segment(channel));
        let body = self.get_once(&url, timeout).await?;
        serde_json::from_slice(&body).map_err(|_| {
            AblyError::InvalidResponse("GET /channels/{id} did not return channel details".into())
        })
    }

    async fn get_once(&self, url: &str, timeout: Duration) -> Result<Bytes, AblyError> {
        match self.attempt(Method::GET, url, None, timeout).await {
            Ok((status, body)) => match self.classify(status, &body) {
                Classified::Success => Ok(body),
                Classified::Fatal(err) => Err(err),
                Classified::Retryable(last) => Err(AblyError::Unavailable { attempts: 1, last }),
            },
            Err(AttemptFailure::Timeout) => Err(AblyError::Timeout),
            Err(last) => Err(AblyError::Unavailable { attempts: 1, last }),
        }
    }

    /// Sends `method` to `path` (with `body`) until success, a non-retryable answer, the
    /// attempt limit or the deadline; returns the number of attempts made and the answer.
    async fn send_with_retries(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        deadline: Instant,
    ) -> Result<(u32, Bytes), AblyError> {
        let policy = &self.retry;
        let budget = |deadline: Instant| {
            deadline
                .checked_duration_since(Instant::now())
                .and_then(|left| left.checked_sub(policy.deadline_margin))
                .unwrap_or(Duration::ZERO)
        };
        let mut fallbacks: Vec<&str> = self.fallbacks.iter().map(String::as_str).collect();
        fallbacks.shuffle(&mut rand::rng());
        let mut hosts = std::iter::once(self.rest_url.as_str())
            .chain(fallbacks)
            .cycle();

        let mut attempts = 0;
        let mut last = None;
        while attempts < policy.max_attempts.max(1) {
            if attempts > 0 {
                let pause = policy.backoff(attempts);
                if budget(deadline) < pause + MIN_ATTEMPT_TIME {
                    break;
                }
                tokio::time::sleep(pause).await;
            }
            let left = budget(deadline);
            if left < MIN_ATTEMPT_TIME {
                break;
            }
            let Some(host) = hosts.next() else { break };
            attempts += 1;
            let url = format!("{host}{path}");
            let timeout = policy.request_timeout.min(left);
            let failure = match self
                .attempt(method.clone(), &url, body.clone(), timeout)
                .await
            {
                Ok((status, answer)) => match self.classify(status, &answer) {
                    Classified::Success => return Ok((attempts, answer)),
                    Classified::Fatal(err) => return Err(err),
                    Classified::Retryable(failure) => failure,
                },
                Err(failure) => failure,
            };
            tracing::warn!(
                attempt = attempts,
                method = %method,
                host = %host,
                failure = %failure,
                "Ably request attempt failed"
            );
            last = Some(failure);
        }
        Err(match last {
            Some(last) => AblyError::Unavailable { attempts, last },
            None => AblyError::Timeout,
        })
    }

    /// One request, bounded by `timeout` from connecting to the last byte of the answer.
    async fn attempt(
        &self,
        method: Method,
        url: &str,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), AttemptFailure> {
        let mut request = self
            .http
            .request(method, url)
            .timeout(timeout)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json")
            .header("x-ably-version", ABLY_PROTOCOL_VERSION);
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let exchange = async {
            let response = request.send().await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.bytes().await?))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) if e.is_timeout() => Err(AttemptFailure::Timeout),
            Ok(Err(_)) => Err(AttemptFailure::Network),
            Err(_) => Err(AttemptFailure::Timeout),
        }
    }

    fn classify(&self, status: StatusCode, body: &[u8]) -> Classified {
        classify(status, body, self.secret.expose())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ably::config::{AblyKey, DEFAULT_ABLY_REST_URL};

    fn config(rest_url: &str) -> AblyConfig {
        AblyConfig {
            key: "app.key:topsecret".parse::<AblyKey>().unwrap(),
            rest_url: rest_url.to_owned(),
        }
    }

    #[test]
    fn fallbacks_only_with_the_default_endpoint() {
        crate::platform::telemetry::install_crypto_provider();
        let default = AblyClient::with_http(
            &config(DEFAULT_ABLY_REST_URL),
            reqwest::Client::builder().build().unwrap(),
        );
        assert_eq!(
            default.fallback_urls(),
            [
                "https://main.a.fallback.ably-realtime.com",
                "https://main.b.fallback.ably-realtime.com",
                "https://main.c.fallback.ably-realtime.com",
                "https://main.d.fallback.ably-realtime.com",
                "https://main.e.fallback.ably-realtime.com",
            ]
        );
        let custom = AblyClient::with_http(
            &config("http://127.0.0.1:9"),
            reqwest::Client::builder().build().unwrap(),
        );
        assert!(custom.fallback_urls().is_empty());
    }

    #[test]
    fn the_key_never_shows() {
        crate::platform::telemetry::install_crypto_provider();
        let client = AblyClient::new(&config(DEFAULT_ABLY_REST_URL));
        let debug = format!("{client:?}");
        assert!(!debug.contains("topsecret"), "{debug}");
        assert!(
            !debug.contains(&STANDARD.encode("app.key:topsecret")),
            "{debug}"
        );
        assert!(client.authorization.is_sensitive());
    }

    #[tokio::test]
    async fn the_helpers_refuse_a_conversation_id_before_any_request() {
        crate::platform::telemetry::install_crypto_provider();
        let client = AblyClient::new(&config("http://127.0.0.1:9"));
        let deadline = Instant::now() + Duration::from_secs(1);
        let timing = AiTiming {
            ai_duration_ms: 1,
            queue_duration_ms: 1,
        };
        for bad in ["", "a:b", "a*", "[x]", &"a".repeat(129)] {
            let refused = client
                .publish_ai_message(bad, "hi", timing, None, deadline)
                .await;
            assert!(
                matches!(refused, Err(AblyError::InvalidRequest(_))),
                "{bad}: {refused:?}"
            );
            let refused = client
                .publish_sla(bad, SlaLevel::Warning, &1, None, deadline)
                .await;
            assert!(
                matches!(refused, Err(AblyError::InvalidRequest(_))),
                "{bad}"
            );
        }
    }
}
