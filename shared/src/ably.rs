//! Ably's REST API: idempotent publishing with retries and fallback hosts, the server
//! clock and channel status.
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

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::seq::SliceRandom;
use rand::Rng;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{AblyConfig, Secret, DEFAULT_ABLY_REST_URL};
use crate::error::ApiError;

/// Ably's fallback hosts for the default endpoint, tried in random order on retries.
pub const ABLY_FALLBACK_HOSTS: [&str; 5] = [
    "main.a.fallback.ably-realtime.com",
    "main.b.fallback.ably-realtime.com",
    "main.c.fallback.ably-realtime.com",
    "main.d.fallback.ably-realtime.com",
    "main.e.fallback.ably-realtime.com",
];

/// Ably REST protocol version sent with every request, as Ably's own libraries do.
const ABLY_PROTOCOL_VERSION: &str = "2";

/// An attempt gets at least this much time, or it is not started.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(50);

/// Longest Ably error message kept in an [`AblyError`].
const MAX_ERROR_MESSAGE_CHARS: usize = 200;

/// Everything outside RFC 3986's unreserved characters is encoded in a path segment,
/// so `conversation:abc` becomes `conversation%3Aabc` and `/`, `?`, `#` cannot escape it.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How publishing retries: at most `max_attempts` tries, exponential backoff with full
/// jitter between them, and never past the caller's deadline minus `deadline_margin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// The first backoff's upper bound; it doubles with each retry up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Time kept back from the caller's deadline, so the caller can still answer.
    pub deadline_margin: Duration,
    /// Upper bound of one attempt (connect, send and read the answer).
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            deadline_margin: Duration::from_millis(500),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (1 for the first retry): a uniformly random
    /// duration between zero and `min(max_backoff, base_backoff * 2^(retry-1))`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let cap = self
            .base_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=cap_ms))
    }
}

/// Which endpoint counts as "Ably's default" and the fallback URLs used with it.
///
/// Fallbacks are only used when the configured REST URL is `default_rest_url`: a custom
/// `ABLY_REST_URL` (a local mock, a dedicated cluster) never sends traffic elsewhere.
/// [`FallbackHosts::ably`] is production; tests substitute their own servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackHosts {
    pub default_rest_url: String,
    /// Base URLs (`https://host`), without a trailing slash.
    pub urls: Vec<String>,
}

impl FallbackHosts {
    pub fn ably() -> Self {
        FallbackHosts {
            default_rest_url: DEFAULT_ABLY_REST_URL.to_owned(),
            urls: ABLY_FALLBACK_HOSTS
                .iter()
                .map(|host| format!("https://{host}"))
                .collect(),
        }
    }
}

impl Default for FallbackHosts {
    fn default() -> Self {
        Self::ably()
    }
}

/// One message to publish. `data` is any serialisable value (a `serde_json::Value` by default).
#[derive(Debug, Clone, Copy)]
pub struct OutboundMessage<'a, D: ?Sized = Value> {
    pub name: &'a str,
    pub data: &'a D,
    pub client_id: Option<&'a str>,
    pub extras: Option<&'a Value>,
}

impl<'a, D: ?Sized> OutboundMessage<'a, D> {
    pub fn new(name: &'a str, data: &'a D) -> Self {
        OutboundMessage {
            name,
            data,
            client_id: None,
            extras: None,
        }
    }

    pub fn with_client_id(mut self, client_id: &'a str) -> Self {
        self.client_id = Some(client_id);
        self
    }

    pub fn with_extras(mut self, extras: &'a Value) -> Self {
        self.extras = Some(extras);
        self
    }
}

/// What Ably accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReceipt {
    pub channel: String,
    /// The ids the messages were published with, in order (`<base>:<index>`).
    pub message_ids: Vec<String>,
    /// Attempts it took (1 when the first one succeeded), for the retry metric.
    pub attempts: u32,
}

/// `timing` of an AI reply, read by the stats analytics (`timing.ai_duration_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiTiming {
    pub ai_duration_ms: u64,
    pub queue_duration_ms: u64,
}

/// Severity of an SLA event on a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaLevel {
    Warning,
    Violation,
}

impl SlaLevel {
    /// The Ably message name: `sla:warning` or `sla:violation`.
    pub fn event_name(self) -> &'static str {
        match self {
            SlaLevel::Warning => "sla:warning",
            SlaLevel::Violation => "sla:violation",
        }
    }
}

/// `GET /channels/{id}`: whether a channel is active and who is attached to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelStatus {
    pub channel_id: String,
    #[serde(default)]
    pub status: ChannelState,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelState {
    #[serde(default)]
    pub is_active: bool,
    #[serde(default)]
    pub occupancy: Occupancy,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Occupancy {
    #[serde(default)]
    pub metrics: OccupancyMetrics,
}

/// Occupancy counters; metrics Ably adds later (e.g. `objectPublishers`) are kept in `other`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OccupancyMetrics {
    #[serde(default)]
    pub connections: u64,
    #[serde(default)]
    pub publishers: u64,
    #[serde(default)]
    pub subscribers: u64,
    #[serde(default)]
    pub presence_connections: u64,
    #[serde(default)]
    pub presence_members: u64,
    #[serde(default)]
    pub presence_subscribers: u64,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// Ably's error body `{"error": {"code", "statusCode", "message", "href"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AblyErrorInfo {
    pub code: Option<u32>,
    pub status_code: Option<u16>,
    pub message: Option<String>,
    pub href: Option<String>,
}

impl AblyErrorInfo {
    /// Parses an error body; anything else (HTML from a proxy, nothing) gives empty fields.
    pub fn parse(body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct Envelope {
            error: Option<Inner>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Inner {
            code: Option<Value>,
            status_code: Option<Value>,
            message: Option<String>,
            href: Option<String>,
        }
        let Ok(Envelope { error: Some(inner) }) = serde_json::from_slice::<Envelope>(body) else {
            return AblyErrorInfo::default();
        };
        let number = |v: Option<Value>| v.as_ref().and_then(Value::as_u64);
        AblyErrorInfo {
            code: number(inner.code).and_then(|n| u32::try_from(n).ok()),
            status_code: number(inner.status_code).and_then(|n| u16::try_from(n).ok()),
            message: inner.message.map(|m| truncate(&m, MAX_ERROR_MESSAGE_CHARS)),
            href: inner.href,
        }
    }
}

/// Why one attempt failed in a way worth retrying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptFailure {
    /// Connecting or sending failed, or the connection broke mid-answer.
    Network,
    Timeout,
    /// Ably (or a proxy in front of it) answered 500-504.
    Status {
        status: u16,
        code: Option<u32>,
        message: Option<String>,
    },
}

impl fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptFailure::Network => f.write_str("connection failed"),
            AttemptFailure::Timeout => f.write_str("timed out"),
            AttemptFailure::Status {
                status,
                code,
                message,
            } => {
                write!(f, "HTTP {status}")?;
                write_ably_detail(f, *code, message.as_deref())
            }
        }
    }
}

/// Why an Ably call failed. Never contains the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AblyError {
    /// Ably refused the request with a 4xx other than an auth problem (bad channel name,
    /// message too large, rate limited, ...). Not retried.
    #[error("Ably rejected the request: HTTP {status}{}", AblyDetail(*.code, .message.as_deref()))]
    Rejected {
        status: u16,
        code: Option<u32>,
        message: Option<String>,
    },
    /// 401/403, or an Ably code 40140-40149: the API key is wrong, revoked or lacks the
    /// capability. A deployment configuration problem; not retried.
    #[error("Ably refused the API key: HTTP {status}{}", AblyDetail(*.code, .message.as_deref()))]
    Unauthorized {
        status: u16,
        code: Option<u32>,
        message: Option<String>,
    },
    /// Every attempt allowed by the retry policy and the deadline failed.
    #[error("Ably unavailable after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: AttemptFailure },
    /// The deadline (or a health check's timeout) left no time for an answer.
    #[error("Ably did not answer in time")]
    Timeout,
    /// Ably answered with something this client does not understand.
    #[error("unexpected answer from Ably: {0}")]
    InvalidResponse(String),
    /// The call itself was malformed (empty channel, no messages, bad conversation id).
    #[error("invalid Ably request: {0}")]
    InvalidRequest(&'static str),
}

impl AblyError {
    /// The API key or its capabilities are wrong: fix the deployment, not the request.
    pub fn is_configuration(&self) -> bool {
        matches!(self, AblyError::Unauthorized { .. })
    }

    /// Ably could not be reached in time; trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, AblyError::Unavailable { .. } | AblyError::Timeout)
    }

    /// Ably's own error code, when it sent one.
    pub fn ably_code(&self) -> Option<u32> {
        match self {
            AblyError::Rejected { code, .. } | AblyError::Unauthorized { code, .. } => *code,
            AblyError::Unavailable {
                last: AttemptFailure::Status { code, .. },
                ..
            } => *code,
            _ => None,
        }
    }

    /// The one mapping of Ably failures to API responses:
    /// - a 4xx from Ably other than auth -> 502 `ably_rejected` (Ably's numeric code is
    ///   shown, its message text is not);
    /// - an auth/capability problem -> 502 `ably_auth_failed`, logged as a configuration
    ///   error: the caller did nothing wrong and cannot fix it;
    /// - unreachable after retries, or out of time -> 503 `ably_unavailable`;
    /// - an answer Ably should never give -> 502 `ably_invalid_response`;
    /// - a malformed call is a bug in the caller -> 500.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            AblyError::Rejected { code, .. } => ApiError::bad_gateway(
                "ably_rejected",
                match code {
                    Some(code) => format!("Ably rejected the request (Ably error {code})"),
                    None => "Ably rejected the request".to_owned(),
                },
            ),
            AblyError::Unauthorized { status, code, .. } => {
                tracing::error!(
                    kind = "configuration",
                    status = *status,
                    ably_code = *code,
                    "Ably refused the API key: check ABLY_API_KEY and its capabilities"
                );
                ApiError::bad_gateway("ably_auth_failed", "Ably refused the server's credentials")
            }
            AblyError::Unavailable { .. } | AblyError::Timeout => {
                ApiError::unavailable("ably_unavailable", "Ably is unavailable, try again later")
            }
            AblyError::InvalidResponse(_) => ApiError::bad_gateway(
                "ably_invalid_response",
                "Ably returned an unexpected response",
            ),
            AblyError::InvalidRequest(_) => ApiError::internal(self.clone()),
        }
    }
}

struct AblyDetail<'a>(Option<u32>, Option<&'a str>);

impl fmt::Display for AblyDetail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_ably_detail(f, self.0, self.1)
    }
}

fn write_ably_detail(
    f: &mut fmt::Formatter<'_>,
    code: Option<u32>,
    message: Option<&str>,
) -> fmt::Result {
    match (code, message) {
        (Some(code), Some(message)) => write!(f, " (Ably error {code}: {message})"),
        (Some(code), None) => write!(f, " (Ably error {code})"),
        (None, Some(message)) => write!(f, " ({message})"),
        (None, None) => Ok(()),
    }
}

/// The id base for a publish: derived from the caller's idempotency key, or random.
///
/// With a key: the first 128 bits of SHA-256 over a domain tag and the key, URL-safe
/// base64 (22 characters). The same key always gives the same base, so a retried request
/// is de-duplicated by Ably; the key's text never appears in the id. Without a key: 128
/// random bits in the same form. Ably de-duplicates ids across callers, so a handler
/// taking keys from callers should scope them (e.g. caller id and channel) before calling.
pub fn message_id_base(idempotency_key: Option<&str>) -> String {
    let mut bytes = [0u8; 16];
    match idempotency_key {
        Some(key) => {
            let digest = Sha256::new()
                .chain_update(b"ably-chat-message-id:v1\n")
                .chain_update(key.as_bytes())
                .finalize();
            bytes.copy_from_slice(&digest[..16]);
        }
        None => rand::rng().fill(&mut bytes),
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `Instant` of a deadline given in milliseconds since the Unix epoch (the Lambda
/// context's `deadline`); a deadline in the past is now.
pub fn deadline_from_epoch_millis(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

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
            crate::telemetry::http_client(Duration::from_secs(4), Duration::from_secs(10)),
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
        let attempts = self.send_with_retries(&path, body, deadline).await?;
        Ok(PublishReceipt {
            channel: channel.to_owned(),
            message_ids,
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
        if !is_valid_id(conversation_id) {
            return Err(AblyError::InvalidRequest(
                "conversation id must match [A-Za-z0-9_-]{1,128}",
            ));
        }
        let channel = format!("conversation:{conversation_id}");
        let id_base = message_id_base(idempotency_key);
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

    /// POSTs `body` to `path` until success, a non-retryable answer, the attempt limit
    /// or the deadline; returns the number of attempts made.
    async fn send_with_retries(
        &self,
        path: &str,
        body: Bytes,
        deadline: Instant,
    ) -> Result<u32, AblyError> {
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
                .attempt(Method::POST, &url, Some(body.clone()), timeout)
                .await
            {
                Ok((status, answer)) => match self.classify(status, &answer) {
                    Classified::Success => return Ok(attempts),
                    Classified::Fatal(err) => return Err(err),
                    Classified::Retryable(failure) => failure,
                },
                Err(failure) => failure,
            };
            tracing::warn!(
                attempt = attempts,
                host = %host,
                failure = %failure,
                "Ably publish attempt failed"
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

enum Classified {
    Success,
    Retryable(AttemptFailure),
    Fatal(AblyError),
}

/// 2xx succeeds (its body is not needed); 500-504 is retried; 401/403 or an Ably code
/// 40140-40149 is a key problem; another 4xx is a rejection; anything else is unexpected.
fn classify(status: StatusCode, body: &[u8], secret: &str) -> Classified {
    if status.is_success() {
        return Classified::Success;
    }
    let info = AblyErrorInfo::parse(body);
    let code = info.code;
    let message = info.message.map(|m| scrub(m, secret));
    let status = status.as_u16();
    match status {
        500..=504 => Classified::Retryable(AttemptFailure::Status {
            status,
            code,
            message,
        }),
        401 | 403 => Classified::Fatal(AblyError::Unauthorized {
            status,
            code,
            message,
        }),
        400..=499 if matches!(code, Some(40140..=40149)) => {
            Classified::Fatal(AblyError::Unauthorized {
                status,
                code,
                message,
            })
        }
        400..=499 => Classified::Fatal(AblyError::Rejected {
            status,
            code,
            message,
        }),
        _ => Classified::Fatal(AblyError::InvalidResponse(format!("HTTP {status}"))),
    }
}

/// Validates a publish and builds its path, message ids and JSON body once, for every
/// attempt: `(path, ids, body)`.
pub fn prepare_publish<D: Serialize + ?Sized>(
    channel: &str,
    id_base: &str,
    messages: &[OutboundMessage<'_, D>],
) -> Result<(String, Vec<String>, Bytes), AblyError> {
    if channel.is_empty() {
        return Err(AblyError::InvalidRequest("channel name is empty"));
    }
    if id_base.is_empty() {
        return Err(AblyError::InvalidRequest("message id base is empty"));
    }
    if messages.is_empty() {
        return Err(AblyError::InvalidRequest("no messages to publish"));
    }
    let path = format!("/channels/{}/messages", encode_segment(channel));
    let ids: Vec<String> = (0..messages.len())
        .map(|i| format!("{id_base}:{i}"))
        .collect();
    let body = encode_messages(messages, &ids)?;
    Ok((path, ids, body))
}

#[derive(Serialize)]
struct WireMessage<'a, D: ?Sized> {
    id: &'a str,
    name: &'a str,
    data: &'a D,
    #[serde(rename = "clientId", skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extras: Option<&'a Value>,
}

/// One message as a JSON object, several as an array.
fn encode_messages<D: Serialize + ?Sized>(
    messages: &[OutboundMessage<'_, D>],
    ids: &[String],
) -> Result<Bytes, AblyError> {
    let wire = messages.iter().zip(ids).map(|(m, id)| WireMessage {
        id,
        name: m.name,
        data: m.data,
        client_id: m.client_id,
        extras: m.extras,
    });
    let mut out = Vec::with_capacity(256);
    let written = match messages.len() {
        1 => wire
            .into_iter()
            .next()
            .map_or(Ok(()), |m| serde_json::to_writer(&mut out, &m)),
        _ => serde_json::to_writer(&mut out, &wire.collect::<Vec<_>>()),
    };
    written.map_err(|_| AblyError::InvalidRequest("message data is not serialisable as JSON"))?;
    Ok(Bytes::from(out))
}

/// A channel name as one path segment.
pub fn encode_segment(channel: &str) -> Cow<'_, str> {
    utf8_percent_encode(channel, PATH_SEGMENT).into()
}

fn is_valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Removes the key secret should Ably ever echo it.
fn scrub(message: String, secret: &str) -> String {
    if !secret.is_empty() && message.contains(secret) {
        message.replace(secret, "[redacted]")
    } else {
        message
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AblyKey;
    use serde_json::json;

    fn config(rest_url: &str) -> AblyConfig {
        AblyConfig {
            key: "app.key:topsecret".parse::<AblyKey>().unwrap(),
            rest_url: rest_url.to_owned(),
        }
    }

    #[test]
    fn id_base_from_a_key_is_stable_opaque_and_distinct() {
        let a = message_id_base(Some("order-42"));
        assert_eq!(a, message_id_base(Some("order-42")));
        assert_ne!(a, message_id_base(Some("order-43")));
        assert_ne!(a, message_id_base(Some("")));
        assert_eq!(a.len(), 22);
        assert!(!a.contains("order"));
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        // Pinned, so a change of derivation (which would break de-duplication across a
        // deployment) is a conscious one.
        let digest = Sha256::digest(b"ably-chat-message-id:v1\norder-42");
        assert_eq!(a, URL_SAFE_NO_PAD.encode(&digest[..16]));
    }

    #[test]
    fn id_base_without_a_key_is_random() {
        let a = message_id_base(None);
        let b = message_id_base(None);
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 16);
    }

    #[test]
    fn ably_error_bodies_are_parsed() {
        let body = br#"{"error":{"code":40003,"statusCode":400,"message":"Invalid channel name","href":"https://help.ably.io/error/40003"}}"#;
        assert_eq!(
            AblyErrorInfo::parse(body),
            AblyErrorInfo {
                code: Some(40003),
                status_code: Some(400),
                message: Some("Invalid channel name".to_owned()),
                href: Some("https://help.ably.io/error/40003".to_owned()),
            }
        );
        for junk in [
            &b"<html>bad gateway</html>"[..],
            b"",
            b"{}",
            b"[1]",
            br#"{"error":"x"}"#,
        ] {
            assert_eq!(AblyErrorInfo::parse(junk), AblyErrorInfo::default());
        }
        let long = format!(
            r#"{{"error":{{"code":"40000","message":"{}"}}}}"#,
            "é".repeat(500)
        );
        let info = AblyErrorInfo::parse(long.as_bytes());
        assert_eq!(info.code, None, "a non-numeric code is not trusted");
        assert_eq!(
            info.message.unwrap().chars().count(),
            MAX_ERROR_MESSAGE_CHARS + 3
        );
    }

    #[test]
    fn answers_are_classified() {
        let err = |status: u16, body: &str| match classify(
            StatusCode::from_u16(status).unwrap(),
            body.as_bytes(),
            "topsecret",
        ) {
            Classified::Success => None,
            Classified::Retryable(f) => Some(Err(f)),
            Classified::Fatal(e) => Some(Ok(e)),
        };
        assert_eq!(err(201, "not json"), None);
        for status in 500..=504 {
            assert!(matches!(
                err(status, ""),
                Some(Err(AttemptFailure::Status { .. }))
            ));
        }
        let rejected = err(
            400,
            r#"{"error":{"code":40009,"statusCode":400,"message":"Too big"}}"#,
        );
        assert_eq!(
            rejected,
            Some(Ok(AblyError::Rejected {
                status: 400,
                code: Some(40009),
                message: Some("Too big".into())
            }))
        );
        let expired = err(
            401,
            r#"{"error":{"code":40140,"statusCode":401,"message":"Token expired"}}"#,
        );
        assert!(
            matches!(expired, Some(Ok(ref e)) if e.is_configuration() && e.ably_code() == Some(40140))
        );
        assert!(matches!(err(403, ""), Some(Ok(ref e)) if e.is_configuration()));
        assert!(matches!(
            err(400, r#"{"error":{"code":40142}}"#),
            Some(Ok(ref e)) if e.is_configuration()
        ));
        assert!(matches!(
            err(505, ""),
            Some(Ok(AblyError::InvalidResponse(_)))
        ));
        assert!(matches!(
            err(302, ""),
            Some(Ok(AblyError::InvalidResponse(_)))
        ));
        let leaky = err(
            400,
            r#"{"error":{"code":40000,"message":"bad key topsecret"}}"#,
        );
        let Some(Ok(leaky)) = leaky else {
            panic!("expected a rejection")
        };
        assert!(!leaky.to_string().contains("topsecret"), "{leaky}");
    }

    #[test]
    fn errors_map_to_api_errors() {
        let rejected = AblyError::Rejected {
            status: 400,
            code: Some(40003),
            message: Some("Invalid channel name".into()),
        }
        .to_api_error();
        assert_eq!(rejected.status(), 502);
        assert_eq!(rejected.code(), "ably_rejected");
        assert_eq!(
            rejected.public_message(),
            "Ably rejected the request (Ably error 40003)"
        );
        let auth = AblyError::Unauthorized {
            status: 401,
            code: Some(40140),
            message: None,
        }
        .to_api_error();
        assert_eq!(
            (auth.status().as_u16(), auth.code()),
            (502, "ably_auth_failed")
        );
        for transient in [
            AblyError::Timeout,
            AblyError::Unavailable {
                attempts: 3,
                last: AttemptFailure::Network,
            },
        ] {
            assert!(transient.is_transient());
            let api = transient.to_api_error();
            assert_eq!(
                (api.status().as_u16(), api.code()),
                (503, "ably_unavailable")
            );
        }
        let invalid = AblyError::InvalidRequest("no messages to publish").to_api_error();
        assert_eq!(invalid.status(), 500);
    }

    #[test]
    fn channel_names_are_one_encoded_segment() {
        assert_eq!(encode_segment("conversation:abc"), "conversation%3Aabc");
        assert_eq!(encode_segment("sms:u-1:c_2"), "sms%3Au-1%3Ac_2");
        assert_eq!(encode_segment("a/b?c#d e~.%"), "a%2Fb%3Fc%23d%20e~.%25");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    #[test]
    fn one_message_is_an_object_several_an_array() {
        let data = json!({"text": "hi"});
        let extras = json!({"headers": {"k": "v"}});
        let one = [OutboundMessage::new("message:user", &data)];
        let (path, ids, body) = prepare_publish("conversation:c1", "base", &one).unwrap();
        assert_eq!(path, "/channels/conversation%3Ac1/messages");
        assert_eq!(ids, ["base:0"]);
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            json!({"id": "base:0", "name": "message:user", "data": {"text": "hi"}})
        );
        let two = [
            OutboundMessage::new("typing:start", &data).with_client_id("user-1"),
            OutboundMessage::new("read", &data).with_extras(&extras),
        ];
        let (_, ids, body) = prepare_publish("conversation:c1", "base", &two).unwrap();
        assert_eq!(ids, ["base:0", "base:1"]);
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            json!([
                {"id": "base:0", "name": "typing:start", "data": {"text": "hi"}, "clientId": "user-1"},
                {"id": "base:1", "name": "read", "data": {"text": "hi"}, "extras": {"headers": {"k": "v"}}}
            ])
        );
        let none: [OutboundMessage<'_>; 0] = [];
        assert!(prepare_publish("c", "base", &none).is_err());
        assert!(prepare_publish("", "base", &one).is_err());
        assert!(prepare_publish("c", "", &one).is_err());
    }

    #[test]
    fn fallbacks_only_with_the_default_endpoint() {
        crate::telemetry::install_crypto_provider();
        let default = AblyClient::with_http(
            &config(DEFAULT_ABLY_REST_URL),
            reqwest::Client::builder().build().unwrap(),
        );
        assert!(config(DEFAULT_ABLY_REST_URL).uses_default_host());
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
        crate::telemetry::install_crypto_provider();
        let client = AblyClient::new(&config(DEFAULT_ABLY_REST_URL));
        let debug = format!("{client:?}");
        assert!(!debug.contains("topsecret"), "{debug}");
        assert!(
            !debug.contains(&STANDARD.encode("app.key:topsecret")),
            "{debug}"
        );
        assert!(client.authorization.is_sensitive());
    }

    #[test]
    fn backoff_is_bounded_full_jitter() {
        let policy = RetryPolicy::default();
        for retry in 1..=10 {
            let cap = (policy.base_backoff * 2u32.pow(retry - 1)).min(policy.max_backoff);
            for _ in 0..50 {
                assert!(policy.backoff(retry) <= cap);
            }
        }
        let none = RetryPolicy {
            base_backoff: Duration::ZERO,
            ..policy
        };
        assert_eq!(none.backoff(3), Duration::ZERO);
    }

    #[test]
    fn conversation_ids_are_checked_by_the_helpers() {
        assert!(is_valid_id("conv-1_A"));
        for bad in ["", "a:b", "a*", "[x]", &"a".repeat(129)] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn deadlines_from_epoch_millis() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let in_two_s = deadline_from_epoch_millis(now_ms + 2000);
        let left = in_two_s.saturating_duration_since(Instant::now());
        assert!(left > Duration::from_millis(1900) && left <= Duration::from_secs(2));
        assert!(deadline_from_epoch_millis(0) <= Instant::now());
    }
}
