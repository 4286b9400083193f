//! The senders: each takes the next scheduled batch, hands it to the handler as Lambda
//! would, and delivers again whatever was refused, as Ably (a webhook batch) or SQS (the
//! records a partial batch response lists) would; then the calls are summed up.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_core::handlers::ably_events::{handle, invoke, EventsState};
use lambda_http::{Context, LambdaEvent, RequestExt};
use md5::Digest;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::{Load, LoadPlan, Signer, Source, SqsBatch, SqsMessage};

/// The events function's Lambda timeout (`template.yaml`): each call is invoked with this
/// much time left, as Lambda would.
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(30);
/// Ably's first retries of a refused batch (it keeps trying for 5 minutes).
const ABLY_RETRY_DELAYS_MS: [u64; 5] = [1000, 1414, 2000, 2828, 4000];
/// Deliveries of a webhook batch before the tool gives up on it.
pub(super) const ABLY_DELIVERIES: usize = 1 + ABLY_RETRY_DELAYS_MS.len();
/// Receives of an SQS message before it moves to the dead-letter queue (`template.yaml`'s
/// `maxReceiveCount`). Between receives the tool waits Ably's delays above rather than
/// the queue's 240 s visibility timeout.
pub(super) const SQS_MAX_RECEIVES: usize = 5;
const SQS_ARN: &str = "arn:aws:sqs:us-east-1:000000000000:ably-events";

/// One handler call.
#[derive(Debug, Clone)]
struct Call {
    batch: usize,
    latency: Duration,
    outcome: Outcome,
}

#[derive(Debug, Clone)]
enum Outcome {
    /// A webhook delivery's status and, for a 200 that confirms the cache took the batch,
    /// the events it newly pushed (received - duplicates).
    Http {
        status: u16,
        pushed: Option<u64>,
        code: Option<String>,
    },
    /// An SQS invocation's partial batch response: of `records` sent, `refused` listed.
    Sqs { records: usize, refused: usize },
    /// The invocation failed as a whole (SQS then redelivers every record).
    Error { records: usize, message: String },
}

/// What the senders saw.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    pub source: Source,
    /// Batches scheduled (webhook bodies, or SQS invocations), and the units that settle
    /// one by one in them (webhook bodies, or SQS records).
    pub batches: usize,
    pub units: usize,
    /// Handler calls.
    pub deliveries: usize,
    /// Planned second deliveries of a batch (Ably's and SQS's at-least-once delivery).
    pub redeliveries: usize,
    /// Deliveries again after a refusal.
    pub retries: usize,
    /// Webhook: the status of every delivery.
    pub statuses: BTreeMap<u16, usize>,
    /// SQS: records sent over every invocation, records the answers listed as failures,
    /// and invocations that failed as a whole.
    pub records_sent: usize,
    pub records_refused: usize,
    pub invocation_errors: usize,
    /// The first refusal, for the report (a status and error code, or an error message).
    pub first_refusal: Option<String>,
    pub elapsed: Duration,
    pub latency: Percentiles,
    /// Units never settled: webhook batches never answered 200, or SQS records still
    /// listed as failures at their last receive.
    pub unsettled: usize,
    /// Webhook: events the 200 answers report as newly pushed to Redis, over every
    /// delivery. Events a refused delivery pushed come back as duplicates on its retry,
    /// so this is short of the event count whenever a delivery was refused.
    pub pushed_to_cache: u64,
    /// Webhook: 200 answers saying the cache was unavailable (the events are in DynamoDB only).
    pub uncached_deliveries: usize,
    /// Webhook: batches with a 200 answer that confirms the cache took them. SQS answers
    /// do not say, so in SQS mode none is confirmed.
    pub cache_confirmed: BTreeSet<usize>,
}

impl RunStats {
    /// Deliveries the handler refused: a webhook status other than 200, an SQS answer
    /// listing a record, an invocation error.
    pub fn refusals(&self) -> usize {
        let refused_statuses: usize = self
            .statuses
            .iter()
            .filter(|(status, _)| **status != 200)
            .map(|(_, n)| n)
            .sum();
        refused_statuses + self.records_refused + self.invocation_errors
    }
}

/// Handler latency per call (nearest rank).
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    pub fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort();
        let rank = |p: f64| {
            samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1]
        };
        Percentiles {
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: samples[samples.len() - 1],
        }
    }
}

/// Delivers `load`'s batches in `order` from `plan.senders` concurrent senders, each
/// refusal delivered again (a few times, with backoff) until it is accepted.
pub async fn deliver(
    state: Arc<EventsState>,
    signer: &Signer,
    plan: &LoadPlan,
    load: Arc<Load>,
    order: Vec<usize>,
) -> RunStats {
    let mut seen = HashSet::new();
    let repeats: Vec<bool> = order.iter().map(|b| !seen.insert(*b)).collect();
    let jobs = Arc::new(order.iter().copied().zip(repeats).collect::<Vec<_>>());
    let next = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(Mutex::new(Vec::with_capacity(order.len() + 16)));
    let unsettled = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let senders: Vec<_> = (0..plan.senders.max(1))
        .map(|_| {
            let (state, load, jobs, next, calls, unsettled, signer) = (
                Arc::clone(&state),
                Arc::clone(&load),
                Arc::clone(&jobs),
                Arc::clone(&next),
                Arc::clone(&calls),
                Arc::clone(&unsettled),
                signer.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let slot = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(batch, repeat)) = jobs.get(slot) else {
                        break;
                    };
                    let sender = Sender {
                        state: &state,
                        signer: &signer,
                        calls: &calls,
                    };
                    let left = sender.send(&load, batch, repeat).await;
                    unsettled.fetch_add(left, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for sender in senders {
        if let Err(err) = sender.await {
            // A panicking handler is a finding, not something to hide.
            std::panic::resume_unwind(err.into_panic());
        }
    }
    let elapsed = started.elapsed();
    let calls = std::mem::take(&mut *calls.lock().unwrap_or_else(|e| e.into_inner()));
    let mut stats = RunStats {
        source: load.source(),
        batches: load.len(),
        units: load.units(),
        deliveries: calls.len(),
        redeliveries: order.len() - load.len(),
        retries: calls.len() - order.len(),
        elapsed,
        latency: Percentiles::of(calls.iter().map(|c| c.latency).collect()),
        unsettled: unsettled.load(Ordering::Relaxed),
        ..RunStats::default()
    };
    for call in &calls {
        stats.add(call);
    }
    stats
}

impl RunStats {
    fn add(&mut self, call: &Call) {
        let refusal = match &call.outcome {
            Outcome::Http {
                status,
                pushed,
                code,
            } => {
                *self.statuses.entry(*status).or_insert(0) += 1;
                match pushed {
                    Some(pushed) => {
                        self.pushed_to_cache += pushed;
                        self.cache_confirmed.insert(call.batch);
                    }
                    None if *status == 200 => self.uncached_deliveries += 1,
                    None => {}
                }
                (*status != 200).then(|| {
                    format!(
                        "{status} {} (batch {})",
                        code.as_deref().unwrap_or("-"),
                        call.batch
                    )
                })
            }
            Outcome::Sqs { records, refused } => {
                self.records_sent += records;
                self.records_refused += refused;
                (*refused > 0).then(|| {
                    format!(
                        "{refused} of {records} records listed in batchItemFailures (invocation {})",
                        call.batch
                    )
                })
            }
            Outcome::Error { records, message } => {
                self.records_sent += records;
                self.invocation_errors += 1;
                Some(format!("invocation {} failed: {message}", call.batch))
            }
        };
        if self.first_refusal.is_none() {
            self.first_refusal = refusal;
        }
    }
}

/// What one sender needs to make its calls.
struct Sender<'a> {
    state: &'a EventsState,
    signer: &'a Signer,
    calls: &'a Mutex<Vec<Call>>,
}

impl Sender<'_> {
    /// Delivers batch `index`, and again whatever was refused, as Ably (the whole webhook
    /// batch) or SQS (the records listed as failures) would. Returns the units left unsettled.
    async fn send(&self, load: &Load, index: usize, repeat: bool) -> usize {
        let (retries, units) = match load {
            Load::Webhook(_) => (&ABLY_RETRY_DELAYS_MS[..], 1),
            Load::Sqs(batches) => (
                &ABLY_RETRY_DELAYS_MS[..SQS_MAX_RECEIVES - 1],
                batches[index].messages.len(),
            ),
        };
        let mut pending: Vec<usize> = (0..units).collect();
        for (attempt, delay) in std::iter::once(0)
            .chain(retries.iter().copied())
            .enumerate()
        {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let (call, refused) = match load {
                Load::Webhook(batches) => self.webhook(&batches[index].body, index).await,
                // A planned redelivery is the message's second receive.
                Load::Sqs(batches) => {
                    let receive = attempt + 1 + usize::from(repeat);
                    self.sqs(&batches[index], &pending, index, receive).await
                }
            };
            self.calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(call);
            pending = refused;
            if pending.is_empty() {
                break;
            }
        }
        pending.len()
    }

    /// One webhook delivery as Lambda invokes the function for API Gateway; refused
    /// (as a whole) unless answered 200.
    async fn webhook(&self, body: &[u8], index: usize) -> (Call, Vec<usize>) {
        let request = api_gateway_request(self.signer, body)
            .with_lambda_context(lambda_context(format!("load-{index}")));
        let started = Instant::now();
        let response = handle(self.state, request).await;
        let latency = started.elapsed();
        let status = response.status().as_u16();
        let answer: Value = serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null);
        let pushed = match (status, answer.get("cache")) {
            (200, None) => Some(
                answer["received"]
                    .as_u64()
                    .unwrap_or(0)
                    .saturating_sub(answer["duplicates"].as_u64().unwrap_or(0)),
            ),
            _ => None,
        };
        let outcome = Outcome::Http {
            status,
            pushed,
            code: answer["code"].as_str().map(str::to_owned),
        };
        let refused = if status == 200 { vec![] } else { vec![0] };
        let call = Call {
            batch: index,
            latency,
            outcome,
        };
        (call, refused)
    }

    /// One SQS invocation of the `pending` records of `batch`, through the Lambda entry
    /// point; refused are the records the partial batch response lists (all of them if
    /// the invocation failed).
    async fn sqs(
        &self,
        batch: &SqsBatch,
        pending: &[usize],
        index: usize,
        receive: usize,
    ) -> (Call, Vec<usize>) {
        let records: Vec<Value> = pending
            .iter()
            .map(|&p| sqs_record(&batch.messages[p], receive))
            .collect();
        let event = json!({ "Records": records }).to_string();
        let payload = RawValue::from_string(event)
            .unwrap_or_else(|e| panic!("the load generator built an invalid SQS event: {e}"));
        let context = lambda_context(format!("load-{index}-{receive}"));
        let started = Instant::now();
        let answer = invoke(self.state, LambdaEvent::new(payload, context)).await;
        let latency = started.elapsed();
        let listed = answer.as_ref().map_err(ToString::to_string).and_then(|a| {
            a.get("batchItemFailures")
                .and_then(Value::as_array)
                .map(|failures| {
                    failures
                        .iter()
                        .filter_map(|f| f["itemIdentifier"].as_str())
                        .collect::<HashSet<&str>>()
                })
                .ok_or_else(|| format!("not a partial batch response: {a}"))
        });
        let (outcome, refused) = match listed {
            Ok(listed) => {
                let refused: Vec<usize> = pending
                    .iter()
                    .copied()
                    .filter(|&p| listed.contains(batch.messages[p].message_id.as_str()))
                    .collect();
                let outcome = Outcome::Sqs {
                    records: pending.len(),
                    refused: refused.len(),
                };
                (outcome, refused)
            }
            Err(message) => {
                let outcome = Outcome::Error {
                    records: pending.len(),
                    message,
                };
                (outcome, pending.to_vec())
            }
        };
        let call = Call {
            batch: index,
            latency,
            outcome,
        };
        (call, refused)
    }
}

/// The invocation context Lambda hands the function: a request id and the deadline.
fn lambda_context(request_id: String) -> Context {
    let mut context = Context::default();
    context.request_id = request_id;
    context.deadline =
        (chrono::Utc::now().timestamp_millis() as u64) + LAMBDA_TIMEOUT.as_millis() as u64;
    context
}

/// One SQS message as the event source mapping hands it to Lambda, on its `receive`th receive.
pub fn sqs_record(message: &SqsMessage, receive: usize) -> Value {
    let now_ms = chrono::Utc::now().timestamp_millis();
    json!({
        "messageId": message.message_id,
        "receiptHandle": format!("AQEB{}{receive}{now_ms}", message.message_id.replace('-', "")),
        "body": message.body,
        "attributes": {
            "ApproximateReceiveCount": receive.to_string(),
            "SentTimestamp": message.sent_ms.to_string(),
            "SenderId": "AROAEXAMPLELOAD:ably",
            "ApproximateFirstReceiveTimestamp": (message.sent_ms + 1).to_string(),
        },
        "messageAttributes": {},
        "md5OfBody": hex::encode(md5::Md5::digest(message.body.as_bytes())),
        "eventSource": "aws:sqs",
        "eventSourceARN": SQS_ARN,
        "awsRegion": "us-east-1",
    })
}

/// The API Gateway HTTP API (v2) event Ably's POST becomes, as the Lambda runtime
/// deserialises it.
fn api_gateway_request(signer: &Signer, body: &[u8]) -> lambda_http::Request {
    let event = signer.api_gateway_event(String::from_utf8_lossy(body).into_owned());
    lambda_http::request::from_str(&event.to_string())
        .unwrap_or_else(|e| panic!("the load generator built an invalid API Gateway event: {e}"))
}
