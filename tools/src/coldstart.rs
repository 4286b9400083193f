//! Cold-start measurements of the release `bootstrap` binaries (`scripts/coldstart`).
//!
//! Each run spawns one function's `bootstrap` with a Lambda-like environment and
//! `AWS_LAMBDA_RUNTIME_API` pointing at a local stand-in of the Lambda Runtime API
//! (`GET /2018-06-01/runtime/invocation/next`, `POST .../{id}/response`, `POST .../{id}/error`,
//! `POST .../init/error`), which hands it one API Gateway v2 event. It records:
//!
//! - **init**: process spawn -> the first `invocation/next` (everything `main` does before
//!   `lambda_http::run`: config, clients, keys);
//! - **first invoke**: process spawn -> the response to that event posted back;
//! - **peak RSS**: `VmHWM` of `/proc/<pid>/status` once the response is in.
//!
//! A run whose response has another status than the scenario expects (a 401 for a stale
//! token, a 500 for a store that was not reached) fails instead of producing a number.
//! [`serve_ably_mock`] answers the few Ably REST calls the functions make, so nothing
//! leaves the machine.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::webhook_load::{self, LoadPlan};

/// How long one run may take before it counts as failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// The deadline handed to the function with its event (the events function's timeout).
const INVOKE_DEADLINE: Duration = Duration::from_secs(30);

/// What one scenario sends and expects.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Shown in the table, e.g. `ably-events (1000 events)`.
    pub name: String,
    /// The function (the folder of its `bootstrap`).
    pub function: String,
    pub event: EventSource,
    /// The HTTP status the response must carry.
    pub expect_status: u16,
}

/// Where a scenario's API Gateway v2 event comes from.
#[derive(Debug, Clone)]
pub enum EventSource {
    /// A file under `events/`; its bearer token is minted afresh and, for a webhook, its
    /// message ids are made unique per run and the body signed again.
    File(PathBuf),
    /// A signed Ably batched webhook of this many chat messages (`webhook_load::batches`).
    Webhook { events: usize },
}

/// The secrets a run needs to make its event valid (from the stack environment).
#[derive(Clone)]
pub struct Secrets {
    pub jwt_secret: String,
    /// `appId.keyId:secret`, which signs webhooks.
    pub ably_api_key: String,
}

/// One run's outcome.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub init: Duration,
    pub first_invoke: Duration,
    pub peak_rss_kib: u64,
    /// CPU time the process's threads ran for until the response, where the kernel reports
    /// it (`/proc/<pid>/task/*/sched`); the rest of the first invoke is waiting on stores.
    pub cpu: Option<Duration>,
}

/// The scenarios of `scripts/coldstart`, one event per function plus the large webhook.
pub fn default_scenarios(events_dir: &Path, webhook_events: usize) -> Vec<Scenario> {
    let file = |function: &str, event: &str, status: u16| Scenario {
        name: function.to_owned(),
        function: function.to_owned(),
        event: EventSource::File(events_dir.join(function).join(event)),
        expect_status: status,
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
            expect_status: 200,
        },
        file("ably-stats", "admin.json", 200),
        file("resume", "issue.json", 201),
    ]
}

/// The API Gateway v2 event of one run; `run` makes ids unique.
pub fn prepare_event(source: &EventSource, secrets: &Secrets, run: &str) -> anyhow::Result<Value> {
    match source {
        EventSource::File(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut event: Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            refresh_bearer(&mut event, &secrets.jwt_secret)?;
            if event["headers"].get("x-ably-signature").is_some() {
                let body = event["body"].as_str().unwrap_or_default();
                let body = unique_message_ids(body, run)?;
                set_webhook_body(&mut event, body, secrets)?;
            }
            Ok(event)
        }
        EventSource::Webhook { events } => {
            let plan = LoadPlan {
                events: *events,
                senders: 1,
                batch_size: (*events).max(1),
                conversations: 20,
                redeliver_percent: 0,
                seed: 1,
            };
            let batch = webhook_load::batches(&plan, run)
                .into_iter()
                .next()
                .context("no batch")?;
            let mut event = webhook_event_template();
            let body = String::from_utf8(batch.body).context("webhook body")?;
            set_webhook_body(&mut event, body, secrets)?;
            Ok(event)
        }
    }
}

/// Replaces an `authorization: Bearer` token by one with the same claims, `iat` now and
/// `exp` in an hour, signed with `secret` (HS256).
fn refresh_bearer(event: &mut Value, secret: &str) -> anyhow::Result<()> {
    let Some(header) = event["headers"]["authorization"].as_str() else {
        return Ok(());
    };
    let token = header
        .strip_prefix("Bearer ")
        .context("authorization is not a bearer token")?;
    let payload = token.split('.').nth(1).context("not a JWT")?;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .context("JWT payload is not base64url")?;
    let mut claims: Value = serde_json::from_slice(&payload).context("JWT payload")?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 3600);
    let fresh = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?;
    event["headers"]["authorization"] = json!(format!("Bearer {fresh}"));
    Ok(())
}

/// Appends `-{run}` to every message id of an Ably batched webhook body, so that each run
/// stores new events instead of finding duplicates.
fn unique_message_ids(body: &str, run: &str) -> anyhow::Result<String> {
    let mut batch: Value = serde_json::from_str(body).context("webhook body")?;
    if let Some(items) = batch["items"].as_array_mut() {
        for item in items {
            if let Some(messages) = item["data"]["messages"].as_array_mut() {
                for message in messages {
                    if let Some(id) = message["id"].as_str() {
                        message["id"] = json!(format!("{id}-{run}"));
                    }
                }
            }
        }
    }
    Ok(batch.to_string())
}

/// Puts `body` into a webhook event with its `content-length` and Ably signature headers.
fn set_webhook_body(event: &mut Value, body: String, secrets: &Secrets) -> anyhow::Result<()> {
    let key: chat_core::ably::AblyKey = secrets
        .ably_api_key
        .parse()
        .map_err(|e| anyhow::anyhow!("ABLY_API_KEY is invalid: {e}"))?;
    let signature = chat_core::ably::webhook::signature::sign(key.secret.expose(), body.as_bytes());
    let headers = &mut event["headers"];
    headers["content-length"] = json!(body.len().to_string());
    headers["x-ably-key"] = json!(key.name);
    headers["x-ably-signature"] = json!(signature);
    event["body"] = json!(body);
    event["isBase64Encoded"] = json!(false);
    Ok(())
}

fn webhook_event_template() -> Value {
    json!({
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
            "requestId": "coldstart",
            "routeKey": "POST /api/ably/events",
            "stage": "$default",
            "time": "14/Nov/2023:22:17:20 +0000",
            "timeEpoch": 1700000240000i64
        },
        "isBase64Encoded": false
    })
}

/// The environment Lambda gives a `provided.al2023` function, plus the function's own
/// settings (`app`). Nothing else from the caller's environment is passed on.
pub fn lambda_env(
    function: &str,
    runtime_api: &str,
    task_root: &Path,
    app: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", function),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            &format!("/aws/lambda/{function}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2025/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "ASIACOLDSTARTLOCAL00"),
        ("AWS_SECRET_ACCESS_KEY", "coldstart-local-secret-not-real"),
        ("AWS_SESSION_TOKEN", "coldstart-local-session-not-real"),
        ("_HANDLER", "bootstrap"),
        ("LAMBDA_TASK_ROOT", &task_root.display().to_string()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
        ("LANG", "en_US.UTF-8"),
        ("TZ", ":UTC"),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
        (
            "LD_LIBRARY_PATH",
            "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (key, value) in app {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    env
}

/// What the Runtime API stand-in saw during one run.
#[derive(Debug)]
enum RuntimeEvent {
    Next(Instant),
    Response(Instant, Bytes),
    Error(String),
}

/// Serves the Lambda Runtime API for one process: the first `next` gets `event`, later
/// ones wait until the process is killed.
async fn serve_runtime_api(
    listener: TcpListener,
    event: Bytes,
    function_arn: String,
    events: mpsc::UnboundedSender<RuntimeEvent>,
) {
    let handed_out = Arc::new(Mutex::new(false));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let (event, arn, events, handed_out) = (
            event.clone(),
            function_arn.clone(),
            events.clone(),
            Arc::clone(&handed_out),
        );
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let (event, arn, events, handed_out) = (
                    event.clone(),
                    arn.clone(),
                    events.clone(),
                    Arc::clone(&handed_out),
                );
                async move {
                    Ok::<_, Infallible>(runtime_api(req, event, &arn, &events, &handed_out).await)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

const REQUEST_ID: &str = "c0ld5747-0000-4000-8000-000000000001";

async fn runtime_api(
    req: Request<Incoming>,
    event: Bytes,
    arn: &str,
    events: &mpsc::UnboundedSender<RuntimeEvent>,
    handed_out: &Mutex<bool>,
) -> Response<Full<Bytes>> {
    let at = Instant::now();
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let reply = |status: StatusCode, body: &'static str| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap_or_default()
    };
    match (method, path.as_str()) {
        (Method::GET, "/2018-06-01/runtime/invocation/next") => {
            let _ = events.send(RuntimeEvent::Next(at));
            let first = {
                let mut handed_out = handed_out.lock().unwrap_or_else(|e| e.into_inner());
                !std::mem::replace(&mut *handed_out, true)
            };
            if !first {
                // One event per process: the next invocation never comes.
                std::future::pending::<()>().await;
            }
            let deadline = SystemTime::now()
                .checked_add(INVOKE_DEADLINE)
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_millis())
                .unwrap_or_default();
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", REQUEST_ID)
                .header("lambda-runtime-deadline-ms", deadline.to_string())
                .header("lambda-runtime-invoked-function-arn", arn)
                .header(
                    "lambda-runtime-trace-id",
                    "Root=1-65530000-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0",
                )
                .body(Full::new(event))
                .unwrap_or_default()
        }
        (Method::POST, path) if path.starts_with("/2018-06-01/runtime/") => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if path.ends_with("/response") {
                let _ = events.send(RuntimeEvent::Response(at, body));
            } else {
                let text = String::from_utf8_lossy(&body).into_owned();
                let _ = events.send(RuntimeEvent::Error(format!("{path}: {text}")));
            }
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        _ => reply(StatusCode::NOT_FOUND, r#"{"errorMessage":"not found"}"#),
    }
}

/// One cold start of `bootstrap`: spawn, hand out `event`, wait for the response, read the
/// peak RSS, kill.
pub async fn run_once(
    bootstrap: &Path,
    scenario: &Scenario,
    event: &Value,
    app_env: &[(String, String)],
    log: Option<&Path>,
) -> anyhow::Result<Sample> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let runtime_api = listener.local_addr()?.to_string();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let arn = format!(
        "arn:aws:lambda:us-east-1:123456789012:function:{}",
        scenario.function
    );
    let server = tokio::spawn(serve_runtime_api(
        listener,
        Bytes::from(serde_json::to_vec(event)?),
        arn,
        tx,
    ));
    let task_root = bootstrap
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let stdout = match log {
        Some(path) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?,
        ),
        None => Stdio::null(),
    };
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::OpenOptions::new().append(true).open(path)?),
        None => Stdio::null(),
    };
    let mut command = std::process::Command::new(bootstrap);
    command
        .env_clear()
        .envs(lambda_env(
            &scenario.function,
            &runtime_api,
            &task_root,
            app_env,
        ))
        .current_dir(&task_root)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);

    let spawned = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("spawning {}", bootstrap.display()))?;
    let pid = child.id();
    let mut exit_check = tokio::time::interval(Duration::from_millis(5));

    let outcome = tokio::time::timeout(RUN_TIMEOUT, async {
        let mut init = None;
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(RuntimeEvent::Next(at)) => {
                        init.get_or_insert(at - spawned);
                    }
                    Some(RuntimeEvent::Response(at, body)) => {
                        let peak_rss_kib = peak_rss_kib(pid)?;
                        let cpu = cpu_time(pid);
                        let init = init.context("a response before any invocation/next")?;
                        if let Some(path) = log {
                            append_response(path, &body);
                        }
                        check_response(&body, scenario.expect_status)?;
                        return Ok(Sample { init, first_invoke: at - spawned, peak_rss_kib, cpu });
                    }
                    Some(RuntimeEvent::Error(what)) => bail!("the function reported an error: {what}"),
                    None => bail!("the Runtime API stand-in stopped"),
                },
                _ = exit_check.tick() => {
                    if let Some(status) = child.try_wait()? {
                        bail!("the process exited before answering: {status}");
                    }
                }
            }
        }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    match outcome {
        Ok(result) => result,
        Err(_) => bail!("no response within {RUN_TIMEOUT:?}"),
    }
}

/// Appends the function's answer (its first 2 KiB) to the log, after the function's own lines.
fn append_response(path: &Path, body: &[u8]) {
    use std::io::Write as _;
    if let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(path) {
        let shown = &body[..body.len().min(2048)];
        let _ = writeln!(
            file,
            "[coldstart] response: {}",
            String::from_utf8_lossy(shown)
        );
    }
}

/// `VmHWM` (peak resident set) of a live process, in KiB.
pub fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_hwm(&status).context("no VmHWM in /proc/<pid>/status")
}

/// The run time of every live thread of a process, summed from `se.sum_exec_runtime`
/// (milliseconds) in `/proc/<pid>/task/<tid>/sched`; `None` where the kernel has no such file.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let mut total = 0.0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let sched = std::fs::read_to_string(task.ok()?.path().join("sched")).ok()?;
        total += parse_sum_exec_runtime_ms(&sched)?;
    }
    Some(Duration::from_secs_f64(total / 1000.0))
}

fn parse_sum_exec_runtime_ms(sched: &str) -> Option<f64> {
    sched
        .lines()
        .find_map(|line| line.strip_prefix("se.sum_exec_runtime"))
        .and_then(|rest| rest.trim_start().strip_prefix(':'))
        .and_then(|value| value.trim().parse().ok())
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The API Gateway v2 response must carry the expected status.
fn check_response(body: &[u8], expected: u16) -> anyhow::Result<()> {
    let response: Value = serde_json::from_slice(body).context("response is not JSON")?;
    let status = response["statusCode"].as_u64().unwrap_or_default();
    if status != u64::from(expected) {
        let text = response["body"].as_str().unwrap_or_default();
        let text: String = text.chars().take(300).collect();
        bail!("status {status} instead of {expected}: {text}");
    }
    Ok(())
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

/// Serves the Ably REST calls the functions make: `GET /time`, `GET /channels/{id}`
/// (channel details with occupancy) and `POST /channels/{id}/messages` (201).
pub async fn serve_ably_mock(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|req: Request<Incoming>| async move {
                Ok::<_, Infallible>(ably_mock(req).await)
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn ably_mock(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    // Drain the body so the connection can be reused.
    let _ = req.into_body().collect().await;
    let (status, body) = match (method, path.strip_prefix("/channels/")) {
        (Method::GET, None) if path == "/time" => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default();
            (StatusCode::OK, json!([now as u64]))
        }
        (Method::POST, Some(rest)) if rest.ends_with("/messages") => {
            let channel = rest.trim_end_matches("/messages");
            (
                StatusCode::CREATED,
                json!({"channel": decode(channel), "messageId": "coldstart:0"}),
            )
        }
        (Method::GET, Some(channel)) => (
            StatusCode::OK,
            json!({
                "channelId": decode(channel),
                "status": {"isActive": true, "occupancy": {"metrics": {
                    "connections": 1, "publishers": 1, "subscribers": 1, "presenceConnections": 0,
                    "presenceMembers": 0, "presenceSubscribers": 0, "objectPublishers": 0}}}
            }),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            json!({"error": {"code": 40400, "statusCode": 404, "message": "not found"}}),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// The app settings passed to every function: these variables of the current environment
/// (`.dev/stack.env`), with `overrides` on top.
pub fn app_env(overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    const PASSED: [&str; 16] = [
        "ABLY_API_KEY",
        "ABLY_REST_URL",
        "JWT_SECRET",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "RESUME_TOKEN_SECRET",
        "UPSTASH_REDIS_REST_URL",
        "UPSTASH_REDIS_REST_TOKEN",
        "CHAT_EVENTS_TABLE",
        "CORS_ORIGIN",
        "PUBLIC_APP_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "REDIS_KEY_PREFIX",
        "RUST_LOG",
        "ENABLE_ABLY_REALTIME",
        "EVENT_RETENTION_DAYS",
    ];
    let mut env: HashMap<String, String> = PASSED
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect();
    for (k, v) in overrides {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let mut env: Vec<_> = env.into_iter().collect();
    env.sort();
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets {
            jwt_secret: "test-jwt-secret-0123456789abcdef-0123".into(),
            ably_api_key: "app.key:webhook-secret".into(),
        }
    }

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

    #[test]
    fn vm_hwm_is_read_in_kib() {
        let status =
            "Name:\tbootstrap\nVmPeak:\t  20000 kB\nVmHWM:\t    9876 kB\nVmRSS:\t 9000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(9876));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
        assert!(peak_rss_kib(std::process::id()).unwrap() > 0);
        let sched = "bootstrap (12, #threads: 3)\n---\nse.exec_start : 1.5\nse.sum_exec_runtime                          :             1.579559\n";
        assert_eq!(parse_sum_exec_runtime_ms(sched), Some(1.579559));
    }

    #[test]
    fn bearer_tokens_are_minted_afresh_with_the_same_claims() {
        let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        let source = EventSource::File(events.join("ably-token/customer.json"));
        let event = prepare_event(&source, &secrets(), "r1").unwrap();
        let token = event["headers"]["authorization"]
            .as_str()
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        let claims = jsonwebtoken::decode::<Value>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(secrets().jwt_secret.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["userId"], "dev-user");
        assert_eq!(claims["role"], "customer");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(claims["exp"].as_u64().unwrap() > now);
    }

    #[test]
    fn webhooks_get_unique_ids_and_a_valid_signature() {
        let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        let source = EventSource::File(events.join("ably-events/batched-message.json"));
        let event = prepare_event(&source, &secrets(), "run7").unwrap();
        let body = event["body"].as_str().unwrap();
        assert!(body.contains("devConnA1b2:0:0-run7"));
        assert_eq!(event["headers"]["x-ably-key"], "app.key");
        assert_eq!(
            event["headers"]["x-ably-signature"],
            chat_core::ably::webhook::signature::sign("webhook-secret", body.as_bytes())
        );
        assert_eq!(event["headers"]["content-length"], body.len().to_string());

        let big = prepare_event(&EventSource::Webhook { events: 1000 }, &secrets(), "r").unwrap();
        let batch: Value = serde_json::from_str(big["body"].as_str().unwrap()).unwrap();
        let messages: usize = batch["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["data"]["messages"].as_array().unwrap().len())
            .sum();
        assert_eq!(messages, 1000);
    }

    #[test]
    fn the_lambda_environment_is_complete_and_app_settings_win() {
        let env = lambda_env(
            "ably-token",
            "127.0.0.1:9",
            Path::new("/var/task"),
            &[("AWS_REGION".into(), "eu-west-1".into())],
        );
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), Some("127.0.0.1:9"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_NAME"), Some("ably-token"));
        assert_eq!(get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(env.iter().filter(|(n, _)| n == "AWS_REGION").count(), 1);
        assert!(get("AWS_SESSION_TOKEN").is_some());
    }

    /// A `bootstrap` written in shell: takes one event from the Runtime API stand-in with
    /// curl, checks it is the one handed out and answers with `status`.
    fn fake_bootstrap(dir: &Path, status: u16) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let function = dir.join(format!("fake-{status}"));
        std::fs::create_dir_all(&function).unwrap();
        let script = function.join("bootstrap");
        std::fs::write(
            &script,
            format!(
                r#"#!/bin/sh
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
id=$(curl -sS -D - -o event.json "$api/invocation/next" | tr -d '\r' | sed -n 's/^lambda-runtime-aws-request-id: *//Ip')
grep -q '"rawPath":"/api/ably/token"' event.json || status=500
curl -sS -o /dev/null -X POST -d "{{\"statusCode\":${{status:-{status}}},\"body\":\"\"}}" "$api/invocation/$id/response"
exec sleep 30
"#
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    #[tokio::test]
    async fn a_run_times_init_and_first_invoke_and_checks_the_status() {
        let dir = std::env::temp_dir().join(format!("coldstart-test-{}", std::process::id()));
        let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        let scenario = |status| Scenario {
            name: "fake".into(),
            function: "fake".into(),
            event: EventSource::File(events.join("ably-token/customer.json")),
            expect_status: status,
        };
        let event = prepare_event(&scenario(200).event, &secrets(), "t").unwrap();

        let ok = fake_bootstrap(&dir, 200);
        let sample = run_once(&ok, &scenario(200), &event, &[], None)
            .await
            .unwrap();
        assert!(sample.init > Duration::ZERO);
        assert!(sample.first_invoke > sample.init);
        assert!(sample.peak_rss_kib > 0);

        let refused = fake_bootstrap(&dir, 401);
        let err = run_once(&refused, &scenario(200), &event, &[], None)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("status 401 instead of 200"),
            "{err:#}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
