//! A bounded load generator for the `ably-events` handler, in process, against real
//! stores. Concurrent senders deliver the load either as signed Ably webhook batches
//! (`handle`, as API Gateway invokes it) or as SQS event batches (`invoke`, the entry point
//! of the Lambda runtime and `cargo lambda watch`), a share of them twice, as Ably and SQS
//! deliver at least once, and deliver again whatever was refused. Then both stores are
//! read back and judged on what they hold. Used by the `webhook-load` binary
//! (`scripts/load`) and by small runs in the integration suite.

mod deliver;
mod generate;
mod verdict;
mod verify;

use std::fmt;

use chat_core::ably::webhook::signature::sign;
use serde_json::{json, Value};

pub use deliver::{deliver, sqs_record, Percentiles, RunStats};
pub use generate::{batches, schedule, sqs_batches};
pub use verdict::{judge, passed, report, Verdict};
pub use verify::{clean_up, verify, Verification};

/// How the load reaches the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// Signed Ably batched webhooks, as API Gateway hands them over.
    #[default]
    Webhook,
    /// SQS event batches of `records` enveloped Ably messages each (Ably's SQS rule behind
    /// an event source mapping), answered with a partial batch response.
    Sqs { records: usize },
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Sqs { .. } => "sqs",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub events: usize,
    pub senders: usize,
    /// Events per webhook batch, or per SQS message.
    pub batch_size: usize,
    pub conversations: usize,
    /// Share of batches (webhook bodies, SQS invocations) delivered a second time, in percent.
    pub redeliver_percent: u32,
    pub seed: u64,
}

impl Default for LoadPlan {
    fn default() -> Self {
        LoadPlan {
            events: 20_000,
            senders: 50,
            batch_size: 50,
            conversations: 200,
            redeliver_percent: 10,
            seed: 1,
        }
    }
}

/// The webhook key Ably signs with.
#[derive(Clone)]
pub struct Signer {
    pub key_name: String,
    pub secret: String,
}

impl Signer {
    /// The signer of an Ably key, `appId.keyId:secret`.
    pub fn from_key(key: &str) -> anyhow::Result<Signer> {
        let key: chat_core::ably::AblyKey = key
            .parse()
            .map_err(|e| anyhow::anyhow!("the webhook key is invalid: {e}"))?;
        Ok(Signer {
            secret: key.secret.expose().to_owned(),
            key_name: key.name,
        })
    }

    /// The first key of `ABLY_WEBHOOK_KEYS` (`keyName:secret,...`): the dedicated key the
    /// integration rule signs webhooks with.
    pub fn from_env() -> anyhow::Result<Signer> {
        let keys = std::env::var("ABLY_WEBHOOK_KEYS").map_err(|_| {
            anyhow::anyhow!("missing required environment variable ABLY_WEBHOOK_KEYS")
        })?;
        Self::from_key(keys.split(',').next().unwrap_or_default().trim())
    }

    /// The API Gateway HTTP API (v2) event Ably's webhook POST of `body` becomes.
    pub fn api_gateway_event(&self, body: String) -> Value {
        let mut event = json!({
            "version": "2.0",
            "routeKey": "POST /api/ably/events",
            "rawPath": "/api/ably/events",
            "rawQueryString": "",
            "headers": {
                "content-type": "application/json",
                "host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
                "user-agent": "Ably-Webhooks",
                "x-forwarded-proto": "https"
            },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "a1b2c3d4e5",
                "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "a1b2c3d4e5",
                "http": {
                    "method": "POST",
                    "path": "/api/ably/events",
                    "protocol": "HTTP/1.1",
                    "sourceIp": "198.51.100.23",
                    "userAgent": "Ably-Webhooks"
                },
                "requestId": "local",
                "routeKey": "POST /api/ably/events",
                "stage": "$default",
                "time": "14/Nov/2023:22:17:20 +0000",
                "timeEpoch": 1700000240000i64
            },
            "isBase64Encoded": false
        });
        self.sign_into(&mut event, body);
        event
    }

    /// Puts `body` into a webhook event with its `content-length` and Ably signature headers.
    pub fn sign_into(&self, event: &mut Value, body: String) {
        let headers = &mut event["headers"];
        headers["content-length"] = json!(body.len().to_string());
        headers["x-ably-key"] = json!(self.key_name);
        headers["x-ably-signature"] = json!(sign(&self.secret, body.as_bytes()));
        event["body"] = json!(body);
        event["isBase64Encoded"] = json!(false);
    }
}

/// One webhook body and the events in it, as (conversation, id).
#[derive(Debug, Clone)]
pub struct Batch {
    pub body: Vec<u8>,
    pub events: Vec<(String, String)>,
}

/// One SQS message: an enveloped Ably message and the events in it, as (conversation, id).
#[derive(Debug, Clone)]
pub struct SqsMessage {
    pub message_id: String,
    pub body: String,
    pub events: Vec<(String, String)>,
    /// When it entered the queue (ms since the epoch): its `SentTimestamp`.
    pub sent_ms: i64,
}

/// The records of one SQS invocation.
#[derive(Debug, Clone)]
pub struct SqsBatch {
    pub messages: Vec<SqsMessage>,
}

/// A run's whole load, in the batches it is delivered in.
#[derive(Debug, Clone)]
pub enum Load {
    Webhook(Vec<Batch>),
    Sqs(Vec<SqsBatch>),
}

impl Load {
    /// `plan`'s events as `source` delivers them; `run` names the run (see [`batches`]).
    pub fn new(plan: &LoadPlan, source: Source, run: &str) -> Self {
        match source {
            Source::Webhook => Load::Webhook(batches(plan, run)),
            Source::Sqs { records } => Load::Sqs(sqs_batches(plan, records, run)),
        }
    }

    pub fn source(&self) -> Source {
        match self {
            Load::Webhook(_) => Source::Webhook,
            Load::Sqs(batches) => Source::Sqs {
                records: batches.first().map_or(0, |b| b.messages.len()),
            },
        }
    }

    /// Batches: webhook bodies, or SQS invocations.
    pub fn len(&self) -> usize {
        match self {
            Load::Webhook(batches) => batches.len(),
            Load::Sqs(batches) => batches.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What settles one by one: webhook bodies, or SQS messages.
    pub fn units(&self) -> usize {
        match self {
            Load::Webhook(batches) => batches.len(),
            Load::Sqs(batches) => batches.iter().map(|b| b.messages.len()).sum(),
        }
    }

    /// The events of batch `index`, as (conversation, id).
    pub fn events(&self, index: usize) -> Vec<&(String, String)> {
        match self {
            Load::Webhook(batches) => batches[index].events.iter().collect(),
            Load::Sqs(batches) => batches[index]
                .messages
                .iter()
                .flat_map(|m| m.events.iter())
                .collect(),
        }
    }
}
