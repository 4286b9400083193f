//! `ably-events` (`POST /api/ably/events`): the Ably webhook, mirrored to Redis and DynamoDB.
//!
//! The signature is checked over the raw body before anything parses it. Then every
//! payload shape is normalised, and the batch is written to the Redis cache (one `EVAL`)
//! and the DynamoDB archive (`BatchWriteItem` chunks) concurrently. DynamoDB is the record:
//! if it could not take everything the answer is 503 and Ably redelivers; every write is
//! keyed by the event, so the redelivery overwrites rather than duplicates.

use std::time::{Duration, Instant};

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ably::webhook::{self, signature, PayloadError, WebhookVerifier};
use crate::ably::WebhookKeys;
use crate::platform::clock;
use crate::platform::env::{ConfigError, Env};
use crate::platform::error::ApiError;
use crate::platform::http::{
    deadline, json_response, serve, HttpConfig, RequestContext, Route, Service,
};
use crate::platform::metrics::{self, Metric};
use crate::storage::archive::ArchiveError;
use crate::storage::{EventStoreConfig, EventStores, RedisClient, RedisConfig, RedisError};

pub const SERVICE: Service = Service {
    name: "ably-events",
    routes: &[Route {
        path: "/api/ably/events",
        methods: &["POST"],
    }],
    // API Gateway's and Lambda's payload limit.
    max_body_bytes: 6 * 1024 * 1024,
};

/// Time kept back from the Lambda deadline to answer; and the budget without a deadline.
const ANSWER_MARGIN: Duration = Duration::from_millis(750);
const DEFAULT_BUDGET: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct EventsConfig {
    pub http: HttpConfig,
    pub webhook_keys: WebhookKeys,
    pub redis: RedisConfig,
    pub stores: EventStoreConfig,
    pub pubsub_bridge: bool,
}

impl EventsConfig {
    pub fn load(mut env: Env) -> Result<Self, ConfigError> {
        let config = EventsConfig {
            http: HttpConfig::from_env(&mut env),
            webhook_keys: WebhookKeys::from_env(&mut env),
            redis: RedisConfig::from_env(&mut env),
            stores: EventStoreConfig::from_env(&mut env),
            pubsub_bridge: env.flag("REDIS_PUBSUB_BRIDGE", false),
        };
        env.finish()?;
        Ok(config)
    }
}

pub struct EventsState {
    pub config: EventsConfig,
    pub verifier: WebhookVerifier,
    pub stores: EventStores,
}

impl EventsState {
    pub fn new(config: EventsConfig) -> Self {
        let redis = RedisClient::new(&config.redis);
        let dynamo = crate::storage::dynamo::client();
        Self::with_clients(config, redis, dynamo)
    }

    /// Builds the state around given clients (e.g. one with an extra interceptor).
    pub fn with_clients(
        config: EventsConfig,
        redis: RedisClient,
        dynamo: aws_sdk_dynamodb::Client,
    ) -> Self {
        let stores = EventStores::new(
            &config.stores,
            redis,
            config.redis.keys(),
            dynamo,
            config.pubsub_bridge,
        );
        EventsState {
            verifier: WebhookVerifier::new(&config.webhook_keys),
            config,
            stores,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(EventsConfig::load(Env::from_process())?))
    }
}

pub async fn handle(state: &EventsState, req: Request) -> Response<Body> {
    serve(&SERVICE, &state.config.http, req, |req, ctx| {
        receive(state, req, ctx)
    })
    .await
}

/// The answer to Ably for a batch that was stored.
#[derive(Debug, Serialize)]
pub struct Receipt {
    pub received: usize,
    pub stored: usize,
    pub duplicates: usize,
    pub lifecycle: usize,
    pub skipped: Vec<String>,
    /// Present when the Redis cache could not be updated (it is rebuilt from DynamoDB on read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'static str>,
}

/// Counters for the invocation's metric line.
#[derive(Default)]
struct Tally {
    received: usize,
    /// Received events the channel table does not trust (see `crate::channels::trusts`).
    untrusted: usize,
    stored: usize,
    duplicates: usize,
    skipped: usize,
    redis_failed: bool,
    dynamodb_failed: bool,
    signature_failed: bool,
}

async fn receive(
    state: &EventsState,
    req: Request,
    ctx: RequestContext,
) -> Result<Response<Body>, ApiError> {
    let started = Instant::now();
    let mut tally = Tally::default();
    let result = mirror(state, &req, &ctx, &mut tally).await;
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    metrics::emit(SERVICE.name, &tally.metrics(duration_ms));
    result
}

/// The metrics of the invocation's EMF line, in [`METRICS`] order (namespace
/// `AblyChat`, dimension `Function` = `ably-events`).
pub const METRICS: [&str; 9] = [
    "received",
    "untrusted",
    "stored",
    "duplicates",
    "skipped",
    "redis_failed",
    "dynamodb_failed",
    "signature_failed",
    "duration",
];

/// The metrics that signal something wrong, each with an alarm in `template.yaml`
/// (checked by `tests/tests/api/alarms.rs`), as is `duration`'s P95.
pub const FAILURE_METRICS: [&str; 4] = [
    "untrusted",
    "redis_failed",
    "dynamodb_failed",
    "signature_failed",
];

impl Tally {
    fn metrics(&self, duration_ms: f64) -> [Metric; 9] {
        [
            Metric::count("received", self.received),
            Metric::count("untrusted", self.untrusted),
            Metric::count("stored", self.stored),
            Metric::count("duplicates", self.duplicates),
            Metric::count("skipped", self.skipped),
            Metric::count("redis_failed", usize::from(self.redis_failed)),
            Metric::count("dynamodb_failed", usize::from(self.dynamodb_failed)),
            Metric::count("signature_failed", usize::from(self.signature_failed)),
            Metric::millis("duration", duration_ms),
        ]
    }
}

async fn mirror(
    state: &EventsState,
    req: &Request,
    ctx: &RequestContext,
    tally: &mut Tally,
) -> Result<Response<Body>, ApiError> {
    // The bytes after API Gateway's base64 decoding, exactly as Ably signed them.
    let body = req.body().as_ref();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let key_name = header(signature::KEY_HEADER);
    if let Err(refused) = state
        .verifier
        .verify(key_name, header(signature::SIGNATURE_HEADER), body)
    {
        tally.signature_failed = true;
        tracing::warn!(request_id = %ctx.request_id, key = key_name.unwrap_or("-"), reason = %refused, "webhook signature rejected");
        return Err(refused.into());
    }
    ctx.set_caller(format!("ably:{}", key_name.unwrap_or("-")));

    // Every store call ends by then, so the answer beats the Lambda timeout.
    let until = deadline(req, ANSWER_MARGIN, DEFAULT_BUDGET);
    let now_ms = clock::now_ms();
    let now_secs = now_ms.div_euclid(1000);
    let mut batch = match webhook::parse(body) {
        Ok(batch) => batch,
        Err(PayloadError::TooLarge(n)) => {
            return Err(ApiError::payload_too_large(
                "batch_too_large",
                format!(
                    "Batch holds {n} events; at most {} are accepted",
                    webhook::MAX_BATCH_EVENTS
                ),
            ));
        }
        Err(err) => return Err(dead_letter(state, body, &err, now_secs, until).await),
    };
    // An event DynamoDB cannot hold would fail every redelivery of the whole batch; one
    // past its retention would come back from the dead.
    state.stores.archive.skip_unarchivable(&mut batch, now_secs);
    tally.received = batch.events.len();
    tally.untrusted = batch.events.iter().filter(|e| !e.trusted).count();
    tally.skipped = batch.skipped.len();

    let (cached, archived) = tokio::join!(
        tokio::time::timeout_at(
            until.into(),
            state
                .stores
                .cache
                .mirror(&batch.events, batch.lifecycle, now_ms),
        ),
        state.stores.archive.put_all(&batch.events, now_secs, until),
    );
    let cached = cached.unwrap_or_else(|_| Err(RedisError::Unavailable("timed out".into())));

    let cache = match cached {
        Ok(outcome) => {
            tally.duplicates = outcome.duplicates;
            None
        }
        Err(err) => {
            tally.redis_failed = true;
            tracing::warn!(request_id = %ctx.request_id, error = %err, "redis mirror failed; dynamodb is the record");
            Some("unavailable")
        }
    };
    let stored = match archived {
        Ok(count) => count,
        Err(err) => {
            tally.dynamodb_failed = true;
            let events = batch.events.len();
            return Err(ApiError::unavailable(
                "storage_unavailable",
                "Events could not be stored; redeliver the batch",
            )
            .retry_after(1)
            .caused_by(anyhow::Error::new(err).context(format!(
                "dynamodb mirror of {events} events failed; asking Ably to redeliver"
            ))));
        }
    };
    tally.stored = stored;
    Ok(json_response(
        StatusCode::OK,
        &Receipt {
            received: batch.events.len(),
            stored,
            duplicates: tally.duplicates,
            lifecycle: batch.lifecycle,
            skipped: batch.skipped,
            cache,
        },
    ))
}

/// A signed body that does not parse is kept (with its sha256) and answered with 400.
async fn dead_letter(
    state: &EventsState,
    body: &[u8],
    err: &PayloadError,
    now_secs: i64,
    until: Instant,
) -> ApiError {
    let sha = hex::encode(Sha256::digest(body));
    let kept = tokio::time::timeout_at(
        until.into(),
        state
            .stores
            .archive
            .dead_letter(body, &err.to_string(), now_secs),
    )
    .await
    .unwrap_or(Err(ArchiveError::Timeout));
    match kept {
        Ok(_) => {
            tracing::warn!(sha256 = %sha, bytes = body.len(), reason = %err, "unparseable webhook kept as dead letter")
        }
        Err(store_err) => {
            tracing::error!(sha256 = %sha, bytes = body.len(), reason = %err, error = %store_err, "unparseable webhook could not be kept")
        }
    }
    ApiError::bad_request("invalid_payload", format!("Webhook {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emf_line_carries_exactly_the_declared_metrics() {
        let names: Vec<&str> = Tally::default()
            .metrics(1.0)
            .iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, METRICS);
        assert!(FAILURE_METRICS.iter().all(|m| METRICS.contains(m)));
        assert_eq!(SERVICE.name, "ably-events");
    }
}
