//! Cost per million events, measured (`scripts/cost`): the release bootstraps run as
//! Lambda runs them ([`crate::harness::runtime_api`]), one cold invocation and then warm ones
//! per process, with the stores behind counting forwarders ([`crate::harness::meter`]);
//! [`price`] turns the billed durations,
//! the configured memory and the counted requests into dollars per million chat events or
//! token requests.
//!
//! Each scenario runs one counted process first (its requests go through the meters; its
//! timings are not kept, it also brings the binary into the page cache), then `runs`
//! timed processes that talk to the stores directly, so the forwarders' hop is not in
//! the durations.

pub mod price;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::{json, Value};

use crate::harness::env::app_env;
use crate::harness::events::{prepare_event, EventSource, Secrets};
use crate::harness::meter::{Counts, Meter};
use crate::harness::runtime_api::{run_process, Expect, ProcessPlan, ProcessSample};
use crate::webhook_load::{self, LoadPlan};
use price::PerInvocation;

/// API Gateway HTTP APIs meter requests in 512 KB increments.
const API_GATEWAY_INCREMENT: usize = 512 * 1024;
/// SQS bills each 64 KB chunk of a payload as one request.
const SQS_CHUNK: usize = 64 * 1024;
/// Messages one `ReceiveMessage` or `DeleteMessageBatch` of the event source mapping handles.
const SQS_MESSAGES_PER_CALL: usize = 10;
/// Rate limits high enough that a process's warm invocations are never refused.
const NO_RATE_LIMIT: &str = "1000000";

/// What a scenario's cost is counted per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    ChatEvent,
    TokenRequest,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::ChatEvent => "chat event",
            Unit::TokenRequest => "token request",
        }
    }
}

/// The event each invocation of a scenario gets.
#[derive(Debug, Clone)]
pub enum Shape {
    /// A signed Ably batched webhook of this many messages, through API Gateway.
    Webhook { events: usize },
    /// An SQS invocation of `records` enveloped Ably messages of `events_per_record` each.
    Sqs {
        records: usize,
        events_per_record: usize,
    },
    /// An API Gateway v2 event from `events/` (bearer token minted afresh).
    Request(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// The function (the folder of its `bootstrap`, its `Binary` in `template.yaml`).
    pub function: String,
    pub shape: Shape,
    pub unit: Unit,
}

impl Scenario {
    /// Chat events or token requests one invocation carries.
    pub fn units_per_invocation(&self) -> usize {
        match &self.shape {
            Shape::Webhook { events } => *events,
            Shape::Sqs {
                records,
                events_per_record,
            } => records * events_per_record,
            Shape::Request(_) => 1,
        }
    }

    fn expect(&self) -> Expect {
        match self.shape {
            Shape::Sqs { .. } => Expect::NoBatchItemFailures,
            _ => Expect::Status(200),
        }
    }

    /// The event of one invocation; `run` makes its ids unique.
    pub fn event(&self, secrets: &Secrets, run: &str) -> anyhow::Result<Value> {
        match &self.shape {
            Shape::Webhook { events } => {
                prepare_event(&EventSource::Webhook { events: *events }, secrets, run)
            }
            Shape::Request(path) => prepare_event(&EventSource::File(path.clone()), secrets, run),
            Shape::Sqs {
                records,
                events_per_record,
            } => {
                let plan = LoadPlan {
                    events: records * events_per_record,
                    senders: 1,
                    batch_size: *events_per_record,
                    conversations: 20,
                    redeliver_percent: 0,
                    seed: 1,
                };
                let batch = webhook_load::sqs_batches(&plan, *records, run)
                    .into_iter()
                    .next()
                    .context("no SQS batch")?;
                let records: Vec<Value> = batch
                    .messages
                    .iter()
                    .map(|message| webhook_load::sqs_record(message, 1))
                    .collect();
                Ok(json!({ "Records": records }))
            }
        }
    }
}

/// API Gateway and SQS requests one invocation with `event` costs: an API Gateway event
/// is one request per started 512 KB of body; an SQS invocation is Ably's `SendMessage`
/// per record (per started 64 KB), and the mapping's receives and deletes of up to 10.
pub fn transport_requests(shape: &Shape, event: &Value) -> (f64, f64) {
    match shape {
        Shape::Sqs { .. } => {
            let records = event["Records"].as_array().map_or(&[][..], Vec::as_slice);
            let sends: usize = records
                .iter()
                .map(|r| r["body"].as_str().unwrap_or_default().len())
                .map(|bytes| bytes.div_ceil(SQS_CHUNK).max(1))
                .sum();
            let calls = records.len().div_ceil(SQS_MESSAGES_PER_CALL);
            (0.0, (sends + 2 * calls) as f64)
        }
        _ => {
            let bytes = event["body"].as_str().unwrap_or_default().len();
            (bytes.div_ceil(API_GATEWAY_INCREMENT).max(1) as f64, 0.0)
        }
    }
}

/// The scenarios of `scripts/cost`.
pub fn default_scenarios(events_dir: &Path) -> Vec<Scenario> {
    let webhook = |events: usize| Scenario {
        name: format!(
            "webhook of {events} event{}",
            if events == 1 { "" } else { "s" }
        ),
        function: "ably-events".into(),
        shape: Shape::Webhook { events },
        unit: Unit::ChatEvent,
    };
    let sqs = |events_per_record: usize| Scenario {
        name: format!(
            "SQS: 10 records of {events_per_record} event{}",
            if events_per_record == 1 { "" } else { "s" }
        ),
        function: "ably-events".into(),
        shape: Shape::Sqs {
            records: 10,
            events_per_record,
        },
        unit: Unit::ChatEvent,
    };
    let request = |name: &str, function: &str, unit| Scenario {
        name: name.into(),
        function: function.into(),
        shape: Shape::Request(events_dir.join(function).join("customer.json")),
        unit,
    };
    vec![
        webhook(1),
        webhook(100),
        webhook(1000),
        sqs(1),
        sqs(100),
        request("token (bearer)", "ably-token", Unit::TokenRequest),
        request("publish", "ably-publish", Unit::ChatEvent),
    ]
}

/// The `MemorySize` `template.yaml` gives the function whose `Binary` is `function`: its
/// own, else the one of `Globals: Function:`.
pub fn configured_memory_mb(template: &str, function: &str) -> Option<u32> {
    let memory = |line: &str| {
        line.trim()
            .strip_prefix("MemorySize:")
            .and_then(|v| v.trim().parse().ok())
    };
    let mut section = "";
    let mut global = None;
    let mut resource: Vec<&str> = Vec::new();
    let mut own = None;
    let mut flush = |resource: &mut Vec<&str>| {
        if resource
            .iter()
            .any(|l| l.trim() == format!("Binary: {function}"))
        {
            own = own.or_else(|| resource.iter().find_map(|l| memory(l)));
        }
        resource.clear();
    };
    for line in template.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            section = line.trim_end_matches(':');
            continue;
        }
        match section {
            "Globals" => global = global.or_else(|| memory(line)),
            "Resources" => {
                let indent = line.len() - line.trim_start().len();
                if indent == 2 {
                    flush(&mut resource);
                }
                resource.push(line);
            }
            _ => {}
        }
    }
    flush(&mut resource);
    own.or(global)
}

/// What the harness needs from its caller for every process.
pub struct Setup<'a> {
    pub bin_dir: &'a Path,
    pub secrets: &'a Secrets,
    pub ably_url: &'a str,
    /// The counting forwarders' URLs (Upstash, DynamoDB) and their meter.
    pub upstash_meter_url: &'a str,
    pub dynamodb_meter_url: &'a str,
    pub meter: Arc<Meter>,
    pub session: &'a str,
    pub runs: usize,
    pub warm: usize,
    pub log: Option<&'a Path>,
}

/// A scenario's measurements.
#[derive(Debug, Clone)]
pub struct Measured {
    pub scenario: Scenario,
    pub memory_mb: u32,
    /// The timed processes, each a cold invocation and `warm` warm ones.
    pub processes: Vec<ProcessSample>,
    /// The counted process's invocations: the cold one first.
    pub counted: Vec<Counts>,
    pub api_gateway_requests: f64,
    pub sqs_requests: f64,
}

/// Runs `scenario`: one counted process, then `setup.runs` timed ones, every process its
/// own Redis key prefix, all writing to `table`.
pub async fn measure(
    scenario: &Scenario,
    memory_mb: u32,
    table: &str,
    setup: &Setup<'_>,
) -> anyhow::Result<Measured> {
    let bootstrap = setup.bin_dir.join(&scenario.function).join("bootstrap");
    let memory = memory_mb.to_string();
    let mut processes = Vec::with_capacity(setup.runs);
    let mut counted = Vec::new();
    let mut transport = (0.0, 0.0);
    for run in 0..=setup.runs {
        let run_id = format!("{}-{run}", setup.session);
        let events = (0..=setup.warm)
            .map(|i| scenario.event(setup.secrets, &format!("{run_id}-{i}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let prefix = format!("{run_id}:");
        let metered = run == 0;
        if metered {
            transport = transport_requests(&scenario.shape, &events[0]);
        }
        let (upstash, dynamodb) = if metered {
            (
                setup.upstash_meter_url.to_owned(),
                setup.dynamodb_meter_url.to_owned(),
            )
        } else {
            (
                std::env::var("UPSTASH_REDIS_REST_URL").unwrap_or_default(),
                std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default(),
            )
        };
        let app = app_env(&[
            ("ABLY_REST_URL", setup.ably_url),
            ("REDIS_KEY_PREFIX", &prefix),
            ("CHAT_EVENTS_TABLE", table),
            ("UPSTASH_REDIS_REST_URL", &upstash),
            ("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", &memory),
            ("RATE_LIMIT_TOKEN_MAX", NO_RATE_LIMIT),
            ("RATE_LIMIT_PUBLISH_MAX", NO_RATE_LIMIT),
        ]);
        let sample = run_process(ProcessPlan {
            bootstrap: &bootstrap,
            function: &scenario.function,
            events,
            expect: scenario.expect(),
            app_env: app,
            log: setup.log,
            log_responses: false,
            meter: metered.then(|| Arc::clone(&setup.meter)),
        })
        .await
        .with_context(|| {
            format!(
                "{} process {run}{}",
                scenario.name,
                if metered { " (counted)" } else { "" }
            )
        })?;
        if metered {
            counted = sample.invocations.into_iter().map(|i| i.counts).collect();
        } else {
            processes.push(sample);
        }
    }
    Ok(Measured {
        scenario: scenario.clone(),
        memory_mb,
        processes,
        counted,
        api_gateway_requests: transport.0,
        sqs_requests: transport.1,
    })
}

/// Milliseconds as Lambda bills them: rounded up to the next whole millisecond.
pub fn billed_ms(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).ceil()
}

impl Measured {
    /// Cold invocations' billed milliseconds: init and the first invocation together.
    pub fn cold_billed_ms(&self) -> Vec<f64> {
        self.processes
            .iter()
            .map(|p| billed_ms(p.init + p.invocations[0].duration))
            .collect()
    }

    /// Every warm invocation's billed milliseconds.
    pub fn warm_billed_ms(&self) -> Vec<f64> {
        self.processes
            .iter()
            .flat_map(|p| p.invocations[1..].iter().map(|i| billed_ms(i.duration)))
            .collect()
    }

    /// The warm invocations' counts, averaged (the cold one's where there is no warm one);
    /// the per-command and per-operation breakdowns are the first warm invocation's.
    pub fn warm_counts(&self) -> Counts {
        let warm = if self.counted.len() > 1 {
            &self.counted[1..]
        } else {
            &self.counted[..]
        };
        let n = warm.len().max(1) as f64;
        let mean = |f: fn(&Counts) -> f64| warm.iter().map(f).sum::<f64>() / n;
        let mut counts = warm.first().cloned().unwrap_or_default();
        counts.redis_requests = mean(|c| c.redis_requests as f64).round() as u64;
        counts.redis_commands = mean(|c| c.redis_commands as f64).round() as u64;
        counts.dynamo_requests = mean(|c| c.dynamo_requests as f64).round() as u64;
        counts.dynamo_items_written = mean(|c| c.dynamo_items_written as f64).round() as u64;
        counts.dynamo_write_units = mean(|c| c.dynamo_write_units);
        counts.dynamo_read_units = mean(|c| c.dynamo_read_units);
        counts
    }

    /// The inputs of the cost formula for one invocation.
    pub fn per_invocation(&self) -> PerInvocation {
        let counts = self.warm_counts();
        PerInvocation {
            units: self.scenario.units_per_invocation() as f64,
            memory_mb: self.memory_mb,
            warm_billed_ms: mean(&self.warm_billed_ms()),
            cold_billed_ms: mean(&self.cold_billed_ms()),
            api_gateway_requests: self.api_gateway_requests,
            sqs_requests: self.sqs_requests,
            dynamo_write_units: counts.dynamo_write_units,
            dynamo_read_units: counts.dynamo_read_units,
            upstash_commands: counts.redis_commands as f64,
        }
    }
}

pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::events::test_secrets;

    #[test]
    fn memory_comes_from_the_function_or_the_globals() {
        let template =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
                .unwrap();
        assert_eq!(configured_memory_mb(&template, "ably-events"), Some(256));
        let own = "Globals:\n  Function:\n    MemorySize: 128\nResources:\n  A:\n    Metadata:\n      BuildProperties:\n        Binary: a\n    Properties:\n      MemorySize: 512\n  B:\n    Metadata:\n      BuildProperties:\n        Binary: b\n";
        assert_eq!(configured_memory_mb(own, "a"), Some(512));
        assert_eq!(configured_memory_mb(own, "b"), Some(128));
    }

    #[test]
    fn sqs_events_carry_enveloped_messages_and_their_requests() {
        let scenario = Scenario {
            name: "sqs".into(),
            function: "ably-events".into(),
            shape: Shape::Sqs {
                records: 10,
                events_per_record: 100,
            },
            unit: Unit::ChatEvent,
        };
        let event = scenario.event(&test_secrets(), "r1").unwrap();
        let records = event["Records"].as_array().unwrap();
        assert_eq!(records.len(), 10);
        let body: Value = serde_json::from_str(records[0]["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["messages"].as_array().unwrap().len(), 100);
        // 10 sends (each record under 64 KB), 1 receive, 1 delete.
        assert_eq!(transport_requests(&scenario.shape, &event), (0.0, 12.0));
        assert_eq!(scenario.units_per_invocation(), 1000);

        let webhook = Shape::Webhook { events: 1000 };
        let event = json!({"body": "x".repeat(600 * 1024)});
        assert_eq!(transport_requests(&webhook, &event), (2.0, 0.0));
    }

    #[test]
    fn billing_rounds_up_to_the_millisecond() {
        use std::time::Duration;
        assert_eq!(billed_ms(Duration::from_micros(1_001)), 2.0);
        assert_eq!(billed_ms(Duration::from_micros(3_000)), 3.0);
    }
}
