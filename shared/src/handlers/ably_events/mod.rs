//! `ably-events`: Ably's events, mirrored to Redis and DynamoDB, from `POST
//! /api/ably/events` (the signed webhook, here) and from the queue path (direct invoke,
//! SQS, Kinesis: [`sources`]), all through one [`mirror`].
//!
//! On the webhook, the signature is checked over the raw body before anything parses it.
//! Then every payload shape and encoding is normalised, and the batch is written to the
//! Redis cache (one `EVAL`, split only past Upstash's request limit) and the DynamoDB
//! archive (`BatchWriteItem` chunks) concurrently. DynamoDB is the record: if it could
//! not take everything the answer is 503 and Ably redelivers; every write is keyed by the
//! event, so the redelivery overwrites rather than duplicates.

use std::time::{Duration, Instant};

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

mod mirror;
mod sources;

pub use mirror::{Fate, Parcel};
pub use sources::{invoke, run};

use crate::ably::webhook::{self, signature, PayloadError, WebhookVerifier};
use crate::ably::WebhookKeys;
use crate::platform::env::{ConfigError, Env};
use crate::platform::error::ApiError;
use crate::platform::http::{
    deadline, json_response, serve, HttpConfig, RequestContext, Route, Service,
};
use crate::platform::metrics::{self, Metric};
use crate::storage::{EventStoreConfig, EventStores, RedisClient, RedisConfig};

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
pub(crate) const ANSWER_MARGIN: Duration = Duration::from_millis(750);
pub(crate) const DEFAULT_BUDGET: Duration = Duration::from_secs(10);

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

    /// The state of an environment (the process's, its secrets read: see [`crate::handlers::cold_start`]).
    pub fn from_env(env: Env) -> Result<Self, ConfigError> {
        Ok(Self::new(EventsConfig::load(env)?))
    }
}

pub async fn handle(state: &EventsState, req: Request) -> Response<Body> {
    serve(&SERVICE, &state.config.http, req, |req, ctx| {
        receive(state, req, ctx)
    })
    .await
}

/// The answer to Ably for a batch that was stored.
#[derive(Debug, Clone, Serialize)]
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
pub struct Tally {
    received: usize,
    /// Received events the channel table does not trust (see `crate::channels::trusts`).
    untrusted: usize,
    stored: usize,
    duplicates: usize,
    skipped: usize,
    /// Deliveries that could not be stored as events (kept as dead letters, if they could).
    dead_letters: usize,
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
    let result = mirror_webhook(state, &req, &ctx, &mut tally).await;
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    metrics::emit(SERVICE.name, &tally.metrics(duration_ms));
    result
}

/// The metrics of the invocation's EMF line, in [`METRICS`] order (namespace
/// `AblyChat`, dimension `Function` = `ably-events`).
pub const METRICS: [&str; 10] = [
    "received",
    "untrusted",
    "stored",
    "duplicates",
    "skipped",
    "dead_letters",
    "redis_failed",
    "dynamodb_failed",
    "signature_failed",
    "duration",
];

/// The metrics that signal something wrong, each with an alarm in `template.yaml`
/// (checked by `tests/tests/api/alarms.rs`), as is `duration`'s P95.
pub const FAILURE_METRICS: [&str; 5] = [
    "untrusted",
    "dead_letters",
    "redis_failed",
    "dynamodb_failed",
    "signature_failed",
];

impl Tally {
    pub(crate) fn metrics(&self, duration_ms: f64) -> [Metric; 10] {
        [
            Metric::count("received", self.received),
            Metric::count("untrusted", self.untrusted),
            Metric::count("stored", self.stored),
            Metric::count("duplicates", self.duplicates),
            Metric::count("skipped", self.skipped),
            Metric::count("dead_letters", self.dead_letters),
            Metric::count("redis_failed", usize::from(self.redis_failed)),
            Metric::count("dynamodb_failed", usize::from(self.dynamodb_failed)),
            Metric::count("signature_failed", usize::from(self.signature_failed)),
            Metric::millis("duration", duration_ms),
        ]
    }
}

async fn mirror_webhook(
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
    let parcel = Parcel {
        body,
        parsed: webhook::parse_delivery(body, header),
    };
    let fate = mirror::mirror(state, vec![parcel], until, tally)
        .await
        .pop();
    match fate.unwrap_or_else(|| Fate::Failed("not processed".into())) {
        Fate::Stored(mut receipt) => {
            receipt.duplicates = tally.duplicates;
            Ok(json_response(StatusCode::OK, &receipt))
        }
        Fate::TooLarge(items) | Fate::Unkept(PayloadError::TooLarge(items)) => {
            Err(ApiError::payload_too_large(
                "batch_too_large",
                format!(
                    "Batch holds {items} items; at most {} are accepted",
                    webhook::MAX_BATCH_ITEMS
                ),
            ))
        }
        // Kept (or, if even that failed, logged with its sha256): Ably's retry would
        // not parse any better.
        Fate::DeadLetter(err) | Fate::Unkept(err) => Err(ApiError::bad_request(
            "invalid_payload",
            format!("Webhook {err}"),
        )),
        Fate::Failed(reason) => Err(ApiError::unavailable(
            "storage_unavailable",
            "Events could not be stored; redeliver the batch",
        )
        .retry_after(1)
        .caused_by(anyhow::anyhow!(
            "dynamodb mirror of {} events failed ({reason}); asking Ably to redeliver",
            tally.received
        ))),
    }
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
