//! One execution environment's life: a release `bootstrap` spawned with the Lambda
//! environment ([`lambda_env`]) against a local stand-in of the Lambda Runtime API
//! (`GET /2018-06-01/runtime/invocation/next`, `POST .../{id}/response`, `POST .../{id}/error`,
//! `POST .../init/error`) that hands it a queue of events, the first one cold, the rest
//! warm, one after the other as Lambda does when requests keep coming.
//!
//! Per process it records the init (spawn to the first `invocation/next`: everything
//! `main` does before the runtime loop), which Lambda bills with the first invocation, and,
//! once every response is in, the peak RSS (`VmHWM`) and the CPU time the threads ran for.
//! Per invocation it records what Lambda bills, the time from handing the event
//! (`invocation/next` answered) to the response posted back, and when that response came
//! after the spawn. With a [`Meter`] it also records what each invocation asked of the
//! stores. A response that is not what the plan expects fails the process.
//!
//! Written on hyper because no maintained crate serves the Runtime API as a library
//! (cargo-lambda's emulator is part of its binary) and the harness needs to time each
//! step of it.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::env::lambda_env;
use super::meter::{Counts, Meter};
use super::procfs::{cpu_time, peak_rss_kib};

/// The longest one invocation may take (the events function's timeout).
const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);

/// What every response of a process must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// An API Gateway v2 response with this status.
    Status(u16),
    /// An SQS partial batch response naming no failed record.
    NoBatchItemFailures,
    /// Any API Gateway v2 response (a measurement of a build that fails the event; the
    /// log keeps the response).
    AnyStatus,
}

/// One process to run: `events[0]` is the cold invocation.
pub struct ProcessPlan<'a> {
    pub bootstrap: &'a Path,
    pub function: &'a str,
    pub events: Vec<Value>,
    pub expect: Expect,
    pub app_env: Vec<(String, String)>,
    /// Where the function's stdout and stderr go.
    pub log: Option<&'a Path>,
    /// Also append each response (its first 2 KiB) to `log`, after the function's own lines.
    pub log_responses: bool,
    pub meter: Option<Arc<Meter>>,
}

/// One invocation's outcome.
#[derive(Debug, Clone)]
pub struct InvocationSample {
    /// `invocation/next` answered -> response posted.
    pub duration: Duration,
    /// Process spawn -> response posted.
    pub since_spawn: Duration,
    /// What the stores were asked for meanwhile (empty without a meter).
    pub counts: Counts,
}

/// One process's outcome.
#[derive(Debug, Clone)]
pub struct ProcessSample {
    pub init: Duration,
    /// In order; the first is the cold one.
    pub invocations: Vec<InvocationSample>,
    pub peak_rss_kib: u64,
    /// CPU time the process's threads ran for until the last response, where the kernel
    /// reports it; the rest of the invocations' time is waiting on stores.
    pub cpu: Option<Duration>,
}

/// What the Runtime API stand-in saw.
enum Seen {
    /// An `invocation/next`, answered with the event of `request_id` (`None`: the queue was
    /// empty and the call is left waiting).
    Next {
        at: Instant,
        request_id: Option<String>,
        counts: Counts,
    },
    Response {
        at: Instant,
        request_id: String,
        body: Bytes,
        counts: Counts,
    },
    Error(String),
}

struct RuntimeApi {
    queue: Mutex<VecDeque<(String, Bytes)>>,
    arn: String,
    meter: Option<Arc<Meter>>,
    seen: mpsc::UnboundedSender<Seen>,
}

impl RuntimeApi {
    fn counts(&self) -> Counts {
        self.meter
            .as_ref()
            .map(|m| m.snapshot())
            .unwrap_or_default()
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let at = Instant::now();
        let path = req.uri().path().to_owned();
        match (req.method().clone(), path.as_str()) {
            (Method::GET, "/2018-06-01/runtime/invocation/next") => {
                let next = self
                    .queue
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pop_front();
                let counts = self.counts();
                let request_id = next.as_ref().map(|(id, _)| id.clone());
                let _ = self.seen.send(Seen::Next {
                    at,
                    request_id,
                    counts,
                });
                let Some((request_id, event)) = next else {
                    // No more events: the process waits here until it is killed.
                    std::future::pending::<()>().await;
                    return reply(StatusCode::NO_CONTENT, Bytes::new());
                };
                next_invocation(&request_id, &self.arn, event)
            }
            (Method::POST, path) if path.starts_with("/2018-06-01/runtime/") => {
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let at = Instant::now();
                let request_id = path
                    .strip_prefix("/2018-06-01/runtime/invocation/")
                    .and_then(|rest| rest.strip_suffix("/response"));
                match request_id {
                    Some(id) => {
                        let counts = self.counts();
                        let _ = self.seen.send(Seen::Response {
                            at,
                            request_id: id.to_owned(),
                            body,
                            counts,
                        });
                    }
                    None => {
                        let text = String::from_utf8_lossy(&body).into_owned();
                        let _ = self.seen.send(Seen::Error(format!("{path}: {text}")));
                    }
                }
                reply(
                    StatusCode::ACCEPTED,
                    Bytes::from_static(br#"{"status":"OK"}"#),
                )
            }
            _ => reply(StatusCode::NOT_FOUND, Bytes::from_static(b"{}")),
        }
    }
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

fn next_invocation(request_id: &str, arn: &str, event: Bytes) -> Response<Full<Bytes>> {
    let deadline = SystemTime::now()
        .checked_add(INVOKE_TIMEOUT)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis())
        .unwrap_or_default();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", request_id)
        .header("lambda-runtime-deadline-ms", deadline.to_string())
        .header("lambda-runtime-invoked-function-arn", arn)
        .header(
            "lambda-runtime-trace-id",
            "Root=1-65530000-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0",
        )
        .body(Full::new(event))
        .unwrap_or_default()
}

async fn serve_runtime_api(listener: TcpListener, api: Arc<RuntimeApi>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let api = Arc::clone(&api);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let api = Arc::clone(&api);
                async move { Ok::<_, Infallible>(api.handle(req).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Spawns the bootstrap, hands it every event of `plan` in turn, checks each response
/// and kills it once the last one is in.
pub async fn run_process(plan: ProcessPlan<'_>) -> anyhow::Result<ProcessSample> {
    let total = plan.events.len();
    if total == 0 {
        bail!("a process needs at least one event");
    }
    // Absolute: the process starts in the bootstrap's folder, as in LAMBDA_TASK_ROOT.
    let bootstrap = std::fs::canonicalize(plan.bootstrap)
        .with_context(|| format!("{}", plan.bootstrap.display()))?;
    let queue = plan
        .events
        .iter()
        .enumerate()
        .map(|(i, event)| Ok((request_id(i), Bytes::from(serde_json::to_vec(event)?))))
        .collect::<anyhow::Result<VecDeque<_>>>()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let runtime_api = listener.local_addr()?.to_string();
    let (seen, mut rx) = mpsc::unbounded_channel();
    let api = Arc::new(RuntimeApi {
        queue: Mutex::new(queue),
        arn: format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{}",
            plan.function
        ),
        meter: plan.meter.clone(),
        seen,
    });
    let server = tokio::spawn(serve_runtime_api(listener, api));

    let task_root = bootstrap
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let output = || -> anyhow::Result<Stdio> {
        Ok(match plan.log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?,
            ),
            None => Stdio::null(),
        })
    };
    let mut command = std::process::Command::new(&bootstrap);
    command
        .env_clear()
        .envs(lambda_env(
            plan.function,
            &runtime_api,
            &task_root,
            &plan.app_env,
        ))
        .current_dir(&task_root)
        .stdin(Stdio::null())
        .stdout(output()?)
        .stderr(output()?);

    let spawned = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("spawning {}", bootstrap.display()))?;
    let pid = child.id();
    let mut exit_check = tokio::time::interval(Duration::from_millis(5));
    let deadline = INVOKE_TIMEOUT * (total as u32 + 1);

    let outcome = tokio::time::timeout(deadline, async {
        let mut init = None;
        let mut handed: HashMap<String, (Instant, Counts)> = HashMap::new();
        let mut invocations = Vec::with_capacity(total);
        loop {
            tokio::select! {
                seen = rx.recv() => match seen {
                    Some(Seen::Next { at, request_id, counts }) => {
                        init.get_or_insert(at - spawned);
                        if let Some(id) = request_id {
                            handed.insert(id, (at, counts));
                        }
                    }
                    Some(Seen::Response { at, request_id, body, counts }) => {
                        let (handed_at, before) = handed
                            .remove(&request_id)
                            .with_context(|| format!("a response for {request_id}, never handed out"))?;
                        // Read before anything else: the process has just answered the
                        // last event and waits for the next.
                        let last = invocations.len() + 1 == total;
                        let usage = if last {
                            Some((peak_rss_kib(pid)?, cpu_time(pid)))
                        } else {
                            None
                        };
                        if let (Some(path), true) = (plan.log, plan.log_responses) {
                            append_response(path, &body);
                        }
                        check(&body, plan.expect)
                            .with_context(|| format!("invocation {}", invocations.len()))?;
                        invocations.push(InvocationSample {
                            duration: at - handed_at,
                            since_spawn: at - spawned,
                            counts: counts.since(&before),
                        });
                        if let Some((peak_rss_kib, cpu)) = usage {
                            let init = init.context("a response before any invocation/next")?;
                            return Ok(ProcessSample { init, invocations, peak_rss_kib, cpu });
                        }
                    }
                    Some(Seen::Error(what)) => bail!("the function reported an error: {what}"),
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
        Err(_) => bail!("{total} invocations took longer than {deadline:?}"),
    }
}

/// Appends the function's answer (its first 2 KiB) to the log, after the function's own lines.
fn append_response(path: &Path, body: &[u8]) {
    use std::io::Write as _;
    if let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(path) {
        let shown = &body[..body.len().min(2048)];
        let _ = writeln!(file, "[response] {}", String::from_utf8_lossy(shown));
    }
}

fn request_id(index: usize) -> String {
    format!("c0570000-0000-4000-8000-{index:012x}")
}

/// The response must be what `expect` says.
fn check(body: &[u8], expect: Expect) -> anyhow::Result<()> {
    let response: Value = serde_json::from_slice(body).context("response is not JSON")?;
    match expect {
        Expect::Status(expected) => {
            let status = response["statusCode"].as_u64().unwrap_or_default();
            if status != u64::from(expected) {
                let text: String = response["body"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect();
                bail!("status {status} instead of {expected}: {text}");
            }
        }
        Expect::AnyStatus if response["statusCode"].is_u64() => {}
        Expect::AnyStatus => bail!("not an API Gateway response: {response}"),
        Expect::NoBatchItemFailures => match response["batchItemFailures"].as_array() {
            Some(failures) if failures.is_empty() => {}
            Some(failures) => bail!("{} records failed: {response}", failures.len()),
            None => bail!("not a partial batch response: {response}"),
        },
    }
    Ok(())
}

/// A `bootstrap` in shell that takes events from the stand-in with curl until none is
/// left, keeps the last one in `event.json` of its working directory and answers each with
/// `answer`.
#[cfg(test)]
pub(crate) fn fake_bootstrap(dir: &Path, answer: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let script = dir.join("bootstrap");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
while true; do
  id=$(curl -sS -D - -o event.json "$api/invocation/next" | tr -d '\r' | sed -n 's/^lambda-runtime-aws-request-id: *//Ip')
  curl -sS -o /dev/null -X POST -d '{answer}' "$api/invocation/$id/response"
done
"#
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_event_is_handed_out_once_and_timed() {
        let dir = std::env::temp_dir().join(format!("runtime-api-{}", std::process::id()));
        let plan = |bootstrap, expect| ProcessPlan {
            bootstrap,
            function: "fake",
            events: (0..3).map(|n| serde_json::json!({ "n": n })).collect(),
            expect,
            app_env: Vec::new(),
            log: None,
            log_responses: false,
            meter: Some(Arc::new(Meter::default())),
        };
        let ok = fake_bootstrap(&dir.join("ok"), r#"{"statusCode":200}"#);
        let sample = run_process(plan(&ok, Expect::Status(200))).await.unwrap();
        assert_eq!(sample.invocations.len(), 3);
        assert!(sample.init > Duration::ZERO);
        assert!(sample
            .invocations
            .iter()
            .all(|i| i.duration > Duration::ZERO && i.since_spawn > sample.init));
        assert!(sample.peak_rss_kib > 0);
        let last = std::fs::read_to_string(dir.join("ok/event.json")).unwrap();
        assert_eq!(last, r#"{"n":2}"#);

        let refused = fake_bootstrap(&dir.join("401"), r#"{"statusCode":401,"body":"no"}"#);
        let err = run_process(plan(&refused, Expect::Status(200)))
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("status 401 instead of 200: no"),
            "{err:#}"
        );

        let failed = fake_bootstrap(
            &dir.join("sqs"),
            r#"{"batchItemFailures":[{"itemIdentifier":"m1"}]}"#,
        );
        let err = run_process(plan(&failed, Expect::NoBatchItemFailures))
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("1 records failed"), "{err:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
