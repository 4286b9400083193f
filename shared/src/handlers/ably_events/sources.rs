//! The Lambda boundary of `ably-events`: every event kind the function is invoked with,
//! told apart by its shape and handed to the one mirror.
//!
//! - API Gateway (`requestContext`): the signed webhook, through `lambda_http` as the
//!   other functions serve it. An API Gateway event is never anything but signed.
//! - SQS (`Records[].eventSource = "aws:sqs"`, Ably's SQS rule): each body one enveloped
//!   message; the answer is a partial batch response naming exactly the records that were
//!   not stored.
//! - Kinesis (`"aws:kinesis"`, Ably's Kinesis rule): each record's data one enveloped
//!   message, JSON or MessagePack; the answer names the first record not stored, where the
//!   shard resumes.
//! - Anything else is a direct invoke (Ably's AWS Lambda rule): the event is the enveloped
//!   payload; an error answers a store failure, so Lambda's retries and its on-failure
//!   destination take over.
//!
//! The queue paths carry no Ably signature: only AWS principals that IAM allows can invoke
//! the function or write to its queue and stream (see `template.yaml`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::kinesis::KinesisEvent;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_lambda_events::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use base64::Engine;
use lambda_http::request::LambdaRequest;
use lambda_http::{service_fn, Adapter, Context, LambdaEvent, Request, Service};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::ably::webhook::{self, PayloadError, WebhookBatch};
use crate::handlers::ably_events::mirror::{mirror, Delivery, Outcome};
use crate::handlers::ably_events::{
    handle, Counts, EventsState, ANSWER_MARGIN, DEFAULT_BUDGET, SERVICE,
};
use crate::platform::http::deadline_of;
use crate::platform::metrics;

/// Starts JSON logs, builds the state (a failed cold start is logged and ends the
/// process) and answers every invocation, whatever its source, until the runtime stops.
pub async fn run() -> Result<(), lambda_http::Error> {
    let state = crate::handlers::cold_start(EventsState::from_env).await?;
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let state = Arc::clone(&state);
        async move { invoke(&state, event).await }
    }))
    .await
}

/// Which kind of event an invocation carries, from the few keys that tell them apart.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "Records")]
    records: Option<Vec<ProbeRecord>>,
    #[serde(rename = "requestContext")]
    request_context: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ProbeRecord {
    #[serde(rename = "eventSource")]
    event_source: Option<String>,
}

/// One invocation, of any kind; the answer is what Lambda hands back to the caller.
pub async fn invoke(
    state: &EventsState,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Value, lambda_http::Error> {
    let LambdaEvent { payload, context } = event;
    let raw = payload.get();
    let probe: Option<Probe> = serde_json::from_str(raw).ok();
    let source = probe.as_ref().and_then(|p| match &p.records {
        Some(records) => records.first().and_then(|r| r.event_source.as_deref()),
        None => None,
    });
    match (probe.as_ref(), source) {
        (Some(p), _) if p.request_context.is_some() => http(state, raw, context).await,
        (_, Some("aws:sqs")) => {
            let event: SqsEvent = serde_json::from_str(raw)?;
            Ok(serde_json::to_value(sqs(state, event, &context).await?)?)
        }
        (_, Some("aws:kinesis")) => {
            let event: KinesisEvent = serde_json::from_str(raw)?;
            Ok(serde_json::to_value(kinesis(state, event, &context).await)?)
        }
        (Some(p), Some(other)) if p.records.is_some() => {
            Err(format!("records from {other} are not Ably events").into())
        }
        // No records at all: nothing to store, and nothing to report.
        (
            Some(Probe {
                records: Some(records),
                ..
            }),
            None,
        ) if records.is_empty() => Ok(json!({ "batchItemFailures": [] })),
        _ => direct(state, raw.as_bytes(), &context).await,
    }
}

/// An API Gateway event, answered exactly as `lambda_http` answers the other functions:
/// through its `Adapter`, which `lambda_http::run` uses for them (hidden from its docs, so
/// the version is pinned and the answer's shape tested below).
async fn http(
    state: &EventsState,
    raw: &str,
    context: Context,
) -> Result<Value, lambda_http::Error> {
    let request: LambdaRequest = serde_json::from_str(raw)?;
    // `lambda_http`'s own adapter turns the request into an `http::Request` and the
    // response into the API Gateway answer for the request's origin (REST or HTTP API).
    let mut adapter: Adapter<'_, _, _> = Adapter::from(service_fn(|req: Request| async move {
        Ok::<_, Infallible>(handle(state, req).await)
    }));
    std::future::poll_fn(|cx| adapter.poll_ready(cx)).await?;
    let response = adapter.call(LambdaEvent::new(request, context)).await?;
    Ok(serde_json::to_value(response)?)
}

/// Runs the mirror for the queue path's deliveries and writes the invocation's metric line.
async fn mirror_queued(
    state: &EventsState,
    deliveries: Vec<Delivery<'_>>,
    context: &Context,
) -> Vec<Outcome> {
    let started = Instant::now();
    let until = deadline_of(Some(context), ANSWER_MARGIN, DEFAULT_BUDGET);
    let mut counts = Counts::default();
    let outcomes = mirror(state, deliveries, until, &mut counts).await;
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    metrics::emit(SERVICE.name, &counts.metrics(duration_ms));
    outcomes
}

/// SQS: a partial batch response listing exactly the records not stored. A record that
/// does not parse is kept as a dead letter and let go, as the webhook keeps one.
pub async fn sqs(
    state: &EventsState,
    event: SqsEvent,
    context: &Context,
) -> Result<SqsBatchResponse, lambda_http::Error> {
    let bodies: Vec<&[u8]> = event
        .records
        .iter()
        .map(|r| r.body.as_deref().unwrap_or_default().as_bytes())
        .collect();
    let deliveries = bodies
        .iter()
        .map(|body| Delivery {
            body,
            parsed: parse_queued_text(body),
        })
        .collect();
    let outcomes = mirror_queued(state, deliveries, context).await;
    let mut failures = Vec::new();
    for (record, outcome) in event.records.iter().zip(&outcomes) {
        if outcome.settled() {
            continue;
        }
        let Some(id) = record.message_id.clone() else {
            // A failure that cannot be named fails the whole batch: SQS redelivers it all.
            return Err(
                format!("an SQS record without a messageId was not stored: {outcome:?}").into(),
            );
        };
        tracing::warn!(message_id = %id, outcome = ?outcome, "sqs record not stored; reported for redelivery");
        failures.push(BatchItemFailure {
            item_identifier: id,
        });
    }
    Ok(SqsBatchResponse {
        batch_item_failures: failures,
    })
}

/// Kinesis: the sequence number of the first record not stored (the shard resumes there;
/// the records after it come again, and overwrite themselves).
pub async fn kinesis(
    state: &EventsState,
    event: KinesisEvent,
    context: &Context,
) -> KinesisEventResponse {
    let deliveries = event
        .records
        .iter()
        .map(|r| Delivery {
            body: &r.kinesis.data.0,
            parsed: parse_queued_bytes(&r.kinesis.data.0),
        })
        .collect();
    let outcomes = mirror_queued(state, deliveries, context).await;
    let first_failed = event
        .records
        .iter()
        .zip(&outcomes)
        .find(|(_, outcome)| !outcome.settled());
    let failures = first_failed
        .map(|(record, outcome)| {
            let sequence = record.kinesis.sequence_number.clone();
            tracing::warn!(sequence = %sequence, outcome = ?outcome, "kinesis record not stored; the shard resumes there");
            vec![KinesisBatchItemFailure {
                item_identifier: Some(sequence),
            }]
        })
        .unwrap_or_default();
    KinesisEventResponse {
        batch_item_failures: failures,
    }
}

/// A direct invoke: the event is the Ably payload. Stored, or kept as a dead letter, is
/// an answer; anything else is an error, so Lambda retries and then hands the event to
/// the on-failure destination.
pub async fn direct(
    state: &EventsState,
    body: &[u8],
    context: &Context,
) -> Result<Value, lambda_http::Error> {
    let delivery = Delivery {
        body,
        parsed: webhook::parse(body),
    };
    let outcome = mirror_queued(state, vec![delivery], context).await.pop();
    match outcome {
        Some(Outcome::Stored(receipt)) => Ok(serde_json::to_value(receipt)?),
        Some(Outcome::DeadLetter(err)) => Ok(json!({
            "error": "invalid_payload",
            "message": format!("Event {err}; kept as a dead letter"),
        })),
        Some(Outcome::TooLarge(items)) => Ok(json!({
            "error": "batch_too_large",
            "message": format!(
                "Event holds {items} items, more than Ably sends in one; kept as a dead letter"
            ),
        })),
        Some(other) => Err(format!("events not stored: {other:?}").into()),
        None => Err("events not stored".into()),
    }
}

/// A queued record as bytes: JSON when it opens like JSON, else MessagePack.
fn parse_queued_bytes(bytes: &[u8]) -> Result<WebhookBatch, PayloadError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => webhook::parse(bytes),
        _ => webhook::parse_msgpack(bytes),
    }
}

/// An SQS body is text: JSON, or MessagePack in base64.
fn parse_queued_text(body: &[u8]) -> Result<WebhookBatch, PayloadError> {
    match bytes_of_base64(body) {
        Some(decoded) if !looks_like_json(body) => parse_queued_bytes(&decoded),
        _ => webhook::parse(body),
    }
}

fn looks_like_json(body: &[u8]) -> bool {
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

fn bytes_of_base64(text: &[u8]) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim_ascii())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::ably_events::EventsConfig;
    use crate::platform::env::Env;

    /// A state that does no I/O until a signed request reaches its stores.
    fn state() -> EventsState {
        EventsState::new(
            EventsConfig::load(Env::from_pairs([
                ("ABLY_WEBHOOK_KEYS", "app.key:secret"),
                ("UPSTASH_REDIS_REST_URL", "http://127.0.0.1:1"),
                ("UPSTASH_REDIS_REST_TOKEN", "t"),
                ("CHAT_EVENTS_TABLE", "t"),
                ("CORS_ORIGIN", "https://app.example"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "a"),
                ("AWS_SECRET_ACCESS_KEY", "b"),
            ]))
            .unwrap(),
        )
    }

    fn event(version: &str) -> Value {
        let context = match version {
            "2.0" => json!({"accountId": "1", "apiId": "a", "domainName": "d", "domainPrefix": "d",
                "http": {"method": "POST", "path": "/api/ably/events", "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1", "userAgent": "Ably-Webhooks"},
                "requestId": "r", "routeKey": "$default", "stage": "$default",
                "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0}),
            _ => json!({"accountId": "1", "apiId": "a", "resourceId": "x", "stage": "prod",
                "requestId": "r", "identity": {"sourceIp": "127.0.0.1"},
                "resourcePath": "/api/ably/events", "httpMethod": "POST"}),
        };
        let mut event = json!({
            "headers": {"content-type": "application/json", "x-request-id": "fixed-id",
                "x-ably-signature": "not a signature"},
            "requestContext": context, "body": "{}", "isBase64Encoded": false,
        });
        if version == "2.0" {
            event["version"] = json!("2.0");
            event["routeKey"] = json!("$default");
            event["rawPath"] = json!("/api/ably/events");
            event["rawQueryString"] = json!("");
        } else {
            event["resource"] = json!("/api/ably/events");
            event["path"] = json!("/api/ably/events");
            event["httpMethod"] = json!("POST");
        }
        event
    }

    /// What `lambda_http::run` answers the other functions with, for both API Gateway
    /// kinds: the pinned `Adapter` must keep giving exactly this.
    #[tokio::test]
    async fn api_gateway_answers_have_lambda_https_shape_for_http_and_rest_apis() {
        let state = state();
        let expected_headers = json!({
            "cache-control": "no-store", "content-type": "application/json",
            "referrer-policy": "no-referrer", "vary": "origin",
            "x-content-type-options": "nosniff", "x-frame-options": "DENY",
            "x-request-id": "fixed-id"
        });
        let body = json!({"error": "Invalid signature", "code": "invalid_signature",
            "requestId": "fixed-id"});

        let answer = http(&state, &event("2.0").to_string(), Context::default())
            .await
            .unwrap();
        let answer_body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(answer_body, body);
        let mut rest = answer.clone();
        rest.as_object_mut().unwrap().remove("body");
        assert_eq!(
            rest,
            json!({"statusCode": 401, "headers": expected_headers, "multiValueHeaders": {},
                "isBase64Encoded": false, "cookies": []})
        );

        let answer = http(&state, &event("1.0").to_string(), Context::default())
            .await
            .unwrap();
        let answer_body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(answer_body, body);
        // REST APIs take every header as a list, and no cookies field.
        let multi: serde_json::Map<String, Value> = expected_headers
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), json!([v])))
            .collect();
        let mut rest = answer.clone();
        rest.as_object_mut().unwrap().remove("body");
        assert_eq!(
            rest,
            json!({"statusCode": 401, "headers": {}, "multiValueHeaders": multi,
                "isBase64Encoded": false})
        );
    }
}
