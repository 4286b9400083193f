//! `ably-events`: Ably's events, mirrored to Redis and DynamoDB, from `POST
//! /api/ably/events` (the signed webhook, here) and from the queue path (direct invoke,
//! SQS, Kinesis: [`sources`]), all through one [`mirror`].
//!
//! On the webhook, the signature is checked over the raw body before anything parses it.
//! Then every payload shape and encoding is normalised, and the batch is written first to
//! the Redis cache (one `EVAL` per 1000 events, within Upstash's request limit), then to
//! the DynamoDB archive (`BatchWriteItem` chunks); see [`mirror`]. DynamoDB is the record: if it could
//! not take everything the answer is 503 and Ably redelivers; every write is keyed by the
//! event, so the redelivery overwrites rather than duplicates.

use std::time::{Duration, Instant};

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

mod mirror;
mod sources;
mod state;

pub use mirror::{Delivery, Outcome};
pub use sources::{invoke, run};
pub use state::{EventsConfig, EventsState};

use crate::ably::webhook::{self, signature, PayloadError};
use crate::platform::error::ApiError;
use crate::platform::http::{deadline, json_response, serve, RequestContext, Route, Service};
use crate::platform::metrics::{self, Metric};

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
pub struct Counts {
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
    let mut counts = Counts::default();
    let result = mirror_webhook(state, &req, &ctx, &mut counts).await;
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    metrics::emit(SERVICE.name, &counts.metrics(duration_ms));
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

impl Counts {
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
    counts: &mut Counts,
) -> Result<Response<Body>, ApiError> {
    // The bytes after API Gateway's base64 decoding, exactly as Ably signed them.
    let body = req.body().as_ref();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let key_name = header(signature::KEY_HEADER);
    if let Err(refused) = state
        .verifier
        .verify(key_name, header(signature::SIGNATURE_HEADER), body)
    {
        counts.signature_failed = true;
        tracing::warn!(request_id = %ctx.request_id, key = key_name.unwrap_or("-"), reason = %refused, "webhook signature rejected");
        return Err(refused.into());
    }
    ctx.set_caller(format!("ably:{}", key_name.unwrap_or("-")));

    // Every store call ends by then, so the answer beats the Lambda timeout.
    let until = deadline(req, ANSWER_MARGIN, DEFAULT_BUDGET);
    let delivery = Delivery {
        body,
        parsed: webhook::parse_delivery(body, header),
    };
    // One outcome per delivery, in order.
    let Some(outcome) = mirror::mirror(state, vec![delivery], until, counts)
        .await
        .pop()
    else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "the mirror answered no outcome for the delivery"
        )));
    };
    match outcome {
        Outcome::Stored(mut receipt) => {
            receipt.duplicates = counts.duplicates;
            Ok(json_response(StatusCode::OK, &receipt))
        }
        Outcome::TooLarge(items) | Outcome::NotKept(PayloadError::TooLarge(items)) => {
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
        Outcome::DeadLetter(err) | Outcome::NotKept(err) => Err(ApiError::bad_request(
            "invalid_payload",
            format!("Webhook {err}"),
        )),
        Outcome::NotStored(reason) => Err(ApiError::unavailable(
            "storage_unavailable",
            "Events could not be stored; redeliver the batch",
        )
        .retry_after(1)
        .caused_by(anyhow::anyhow!(
            "dynamodb mirror of {} events failed ({reason}); asking Ably to redeliver",
            counts.received
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emf_line_carries_exactly_the_declared_metrics() {
        let names: Vec<&str> = Counts::default()
            .metrics(1.0)
            .iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, METRICS);
        assert!(FAILURE_METRICS.iter().all(|m| METRICS.contains(m)));
        assert_eq!(SERVICE.name, "ably-events");
    }
}
