//! Cold-start measurements of the release `bootstrap` binaries (`scripts/coldstart`).
//!
//! Each run spawns one function's `bootstrap` in the local Lambda stand-in
//! ([`crate::harness::runtime_api`]) and hands it one API Gateway v2 event, no warm one
//! after it. It records:
//!
//! - **init**: process spawn -> the first `invocation/next` (everything `main` does before
//!   the runtime loop: config, clients, keys);
//! - **first invoke**: process spawn -> the response to that event posted back;
//! - **peak RSS**: `VmHWM` of `/proc/<pid>/status` once the response is in;
//! - **CPU**: the time the process's threads ran for until then.
//!
//! A run whose response has another status than the scenario expects (a 401 for a stale
//! token, a 500 for a store that was not reached) fails instead of producing a number.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::events::EventSource;
use crate::harness::runtime_api::{run_process, Expect, ProcessPlan};

/// What one scenario sends and expects.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Shown in the table, e.g. `ably-events (1000 events)`.
    pub name: String,
    /// The function (the folder of its `bootstrap`).
    pub function: String,
    pub event: EventSource,
    /// The HTTP status the response must carry (`None`: any, the log keeps it).
    pub expect_status: Option<u16>,
}

/// One run's outcome.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub init: Duration,
    pub first_invoke: Duration,
    pub peak_rss_kib: u64,
    /// CPU time the process's threads ran for until the response, where the kernel reports
    /// it (`/proc/<pid>/task/*/schedstat`); the rest of the first invoke is waiting on stores.
    pub cpu: Option<Duration>,
}

/// The memory scenarios: `ably-events` on a webhook of number-array messages of each size.
pub fn memory_scenarios(sizes: &[usize], any_status: bool) -> Vec<Scenario> {
    sizes
        .iter()
        .map(|&bytes| Scenario {
            name: format!("ably-events (number arrays, {:.1} MB)", bytes as f64 / 1e6),
            function: "ably-events".to_owned(),
            event: EventSource::NumberArrays { bytes },
            expect_status: (!any_status).then_some(200),
        })
        .collect()
}

/// The scenarios of `scripts/coldstart`, one event per function plus the large webhook.
pub fn default_scenarios(events_dir: &Path, webhook_events: usize) -> Vec<Scenario> {
    let file = |function: &str, event: &str, status: u16| Scenario {
        name: function.to_owned(),
        function: function.to_owned(),
        event: EventSource::File(events_dir.join(function).join(event)),
        expect_status: Some(status),
    };
    vec![
        file("ably-token", "customer.json", 200),
        file("ably-publish", "customer.json", 200),
        file("ably-events", "batched-message.json", 200),
        Scenario {
            name: format!("ably-events ({webhook_events} events)"),
            function: "ably-events".to_owned(),
            event: EventSource::Webhook {
                events: webhook_events,
            },
            expect_status: Some(200),
        },
        file("ably-stats", "admin.json", 200),
        file("resume", "issue.json", 201),
        file("chat-records", "context.json", 200),
    ]
}

/// One cold start of `bootstrap`: spawn, hand out `event`, wait for the response (appended
/// to `log` after the function's lines), read the peak RSS and CPU time, kill.
pub async fn run_once(
    bootstrap: &Path,
    scenario: &Scenario,
    event: &Value,
    app_env: &[(String, String)],
    log: Option<&Path>,
) -> anyhow::Result<Sample> {
    let process = run_process(ProcessPlan {
        bootstrap,
        function: &scenario.function,
        events: vec![event.clone()],
        expect: scenario
            .expect_status
            .map_or(Expect::AnyStatus, Expect::Status),
        app_env: app_env.to_vec(),
        log,
        log_responses: true,
        meter: None,
    })
    .await?;
    Ok(Sample {
        init: process.init,
        first_invoke: process.invocations[0].since_spawn,
        peak_rss_kib: process.peak_rss_kib,
        cpu: process.cpu,
    })
}

/// Minimum, median and maximum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no values; the median of an even count is the mean of the middle two.
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Spread {
            min: sorted[0],
            median,
            max: sorted[n - 1],
        })
    }
}

/// A scenario's runs, summarised.
#[derive(Debug, Clone)]
pub struct Summary {
    pub scenario: String,
    pub runs: usize,
    pub init_ms: Spread,
    pub first_invoke_ms: Spread,
    pub peak_rss_mib: Spread,
    /// `None` when the kernel did not report CPU time.
    pub cpu_ms: Option<Spread>,
    pub bootstrap_bytes: u64,
}

pub fn summarise(scenario: &str, samples: &[Sample], bootstrap_bytes: u64) -> Option<Summary> {
    let ms = |f: fn(&Sample) -> Duration| -> Vec<f64> {
        samples
            .iter()
            .map(|s| f(s).as_secs_f64() * 1000.0)
            .collect()
    };
    Some(Summary {
        scenario: scenario.to_owned(),
        runs: samples.len(),
        init_ms: Spread::of(&ms(|s| s.init))?,
        first_invoke_ms: Spread::of(&ms(|s| s.first_invoke))?,
        peak_rss_mib: Spread::of(
            &samples
                .iter()
                .map(|s| s.peak_rss_kib as f64 / 1024.0)
                .collect::<Vec<_>>(),
        )?,
        cpu_ms: samples
            .iter()
            .map(|s| s.cpu.map(|c| c.as_secs_f64() * 1000.0))
            .collect::<Option<Vec<_>>>()
            .and_then(|cpu| Spread::of(&cpu)),
        bootstrap_bytes,
    })
}

/// A Markdown table of the summaries.
pub fn table(summaries: &[Summary]) -> String {
    let mut out = String::from(
        "| function | runs | init ms (min / median / max) | first invoke ms (min / median / max) | CPU ms to the response (min / median / max) | peak RSS MiB (min / median / max) | bootstrap bytes |\n|---|---|---|---|---|---|---|\n",
    );
    for s in summaries {
        let spread = |s: &Spread, digits: usize| {
            format!(
                "{:.d$} / {:.d$} / {:.d$}",
                s.min,
                s.median,
                s.max,
                d = digits
            )
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            s.scenario,
            s.runs,
            spread(&s.init_ms, 1),
            spread(&s.first_invoke_ms, 1),
            s.cpu_ms
                .as_ref()
                .map_or_else(|| "n/a".to_owned(), |c| spread(c, 1)),
            spread(&s.peak_rss_mib, 1),
            s.bootstrap_bytes
        ));
    }
    out
}

/// The summaries as JSON.
pub fn to_json(summaries: &[Summary]) -> Value {
    let spread = |s: &Spread| json!({"min": s.min, "median": s.median, "max": s.max});
    Value::Array(
        summaries
            .iter()
            .map(|s| {
                json!({
                    "scenario": s.scenario,
                    "runs": s.runs,
                    "initMs": spread(&s.init_ms),
                    "firstInvokeMs": spread(&s.first_invoke_ms),
                    "cpuMs": s.cpu_ms.as_ref().map(spread),
                    "peakRssMiB": spread(&s.peak_rss_mib),
                    "bootstrapBytes": s.bootstrap_bytes,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::events::{prepare_event, test_secrets};
    use crate::harness::runtime_api::fake_bootstrap;

    #[test]
    fn spread_is_min_median_max() {
        let s = Spread::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!(
            s,
            Spread {
                min: 1.0,
                median: 3.0,
                max: 5.0
            }
        );
        let s = Spread::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(Spread::of(&[]).is_none());
    }

    #[tokio::test]
    async fn a_run_times_init_and_first_invoke_and_checks_the_status() {
        let dir = std::env::temp_dir().join(format!("coldstart-test-{}", std::process::id()));
        let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        let scenario = Scenario {
            name: "fake".into(),
            function: "fake".into(),
            event: EventSource::File(events.join("ably-token/customer.json")),
            expect_status: Some(200),
        };
        let event = prepare_event(&scenario.event, &test_secrets(), "t").unwrap();

        let ok = fake_bootstrap(&dir.join("ok"), r#"{"statusCode":200,"body":""}"#);
        let sample = run_once(&ok, &scenario, &event, &[], None).await.unwrap();
        assert!(sample.init > Duration::ZERO);
        assert!(sample.first_invoke > sample.init);
        assert!(sample.peak_rss_kib > 0);
        let handed = std::fs::read_to_string(dir.join("ok/event.json")).unwrap();
        assert!(
            handed.contains(r#""rawPath":"/api/ably/token""#),
            "{handed}"
        );

        let refused = fake_bootstrap(&dir.join("401"), r#"{"statusCode":401,"body":""}"#);
        let err = run_once(&refused, &scenario, &event, &[], None)
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("status 401 instead of 200"),
            "{err:#}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
