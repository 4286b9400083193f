//! An Upstash-REST-compatible HTTP server in front of a real `redis-server`.
//!
//! Protocol (as Upstash serves it):
//! - `POST /` with a JSON array command, e.g. `["SET","k","v"]` -> `{"result": ...}`, or
//!   `{"error": "..."}` with status 400 when Redis answers an error;
//! - `POST /pipeline` with an array of commands -> an array of `{"result"}`/`{"error"}`;
//! - `POST /multi-exec`: the same, run atomically in `MULTI`/`EXEC`;
//! - path-style commands, e.g. `GET /get/key` or `POST /set/key` with the value as body;
//! - `Authorization: Bearer <token>` (or `?_token=`) required, else 401;
//! - a request body over [`MAX_REQUEST_BYTES`] is refused with status 400 and
//!   `{"error": "ERR max request size exceeded. Limit: .. bytes, Actual: .. bytes"}`.
//!
//! Replies map to JSON as Upstash maps them: strings, integers, `null`, nested arrays;
//! `Upstash-Encoding: base64` switches strings to base64 (see [`encoding`]).

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::resp::{Connection, Frame};

pub mod encoding;

use encoding::Encoding;

/// Upstash's maximum request size on the Free and Pay-as-you-go plans (10 MB).
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
const MAX_IDLE_CONNECTIONS: usize = 32;

/// Where Redis is and which token callers must present.
#[derive(Clone, Default)]
pub struct ProxyConfig {
    pub redis_addr: String,
    pub token: String,
    /// Counts the HTTP requests served, so tests can check round trips.
    pub request_counter: Option<Arc<AtomicUsize>>,
}

struct Proxy {
    config: ProxyConfig,
    idle: Mutex<Vec<Connection>>,
}

/// Serves the proxy on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, config: ProxyConfig) -> std::io::Result<()> {
    let proxy = Arc::new(Proxy {
        config,
        idle: Mutex::new(Vec::new()),
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let proxy = Arc::clone(&proxy);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let proxy = Arc::clone(&proxy);
                async move { Ok::<_, Infallible>(proxy.handle(req).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Why a request failed before or while talking to Redis.
enum Failure {
    Status(StatusCode, String),
}

impl Proxy {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if let Some(counter) = &self.config.request_counter {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        match self.answer(req).await {
            Ok((status, body)) => respond(status, &body),
            Err(Failure::Status(status, message)) => respond(status, &json!({ "error": message })),
        }
    }

    async fn answer(&self, req: Request<Incoming>) -> Result<(StatusCode, Value), Failure> {
        if !self.authorized(&req) {
            return Err(Failure::Status(
                StatusCode::UNAUTHORIZED,
                "Unauthorized".into(),
            ));
        }
        let encoding = Encoding::requested(req.headers());
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let body = read_body(req.into_body()).await?;

        match (method, path.as_str()) {
            (Method::POST, "/" | "") => {
                let command = parse_command(&json_body(&body)?)?;
                self.single(command, encoding).await
            }
            (Method::POST, "/pipeline") => {
                let commands = parse_commands(&json_body(&body)?)?;
                let replies = self.run(commands).await?;
                Ok((StatusCode::OK, entries(replies, encoding)))
            }
            (Method::POST, "/multi-exec") => {
                let commands = parse_commands(&json_body(&body)?)?;
                let count = commands.len();
                let mut all = Vec::with_capacity(count + 2);
                all.push(vec![b"MULTI".to_vec()]);
                all.extend(commands);
                all.push(vec![b"EXEC".to_vec()]);
                let mut replies = self.run(all).await?;
                match replies.pop() {
                    Some(Frame::Array(results)) if results.len() == count => {
                        Ok((StatusCode::OK, entries(results, encoding)))
                    }
                    Some(Frame::Error(message)) => Err(Failure::Status(
                        StatusCode::BAD_REQUEST,
                        message.to_string(),
                    )),
                    _ => Err(bad("EXECABORT Transaction discarded")),
                }
            }
            (Method::GET | Method::POST, path) => {
                // Path-style command: /cmd/arg1/arg2 with an optional body as the last argument.
                let mut command: Vec<Vec<u8>> = path
                    .split('/')
                    .filter(|p| !p.is_empty())
                    .map(|p| percent_encoding::percent_decode_str(p).collect())
                    .collect();
                if !body.is_empty() {
                    command.push(body.to_vec());
                }
                self.single(command, encoding).await
            }
            _ => Err(Failure::Status(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed".into(),
            )),
        }
    }

    /// One command: `{"result"}`, or its Redis error as `{"error"}` with status 400.
    async fn single(
        &self,
        command: Vec<Vec<u8>>,
        encoding: Encoding,
    ) -> Result<(StatusCode, Value), Failure> {
        match self.run(vec![command]).await?.pop() {
            Some(Frame::Error(message)) => Err(Failure::Status(
                StatusCode::BAD_REQUEST,
                message.to_string(),
            )),
            Some(reply) => Ok((StatusCode::OK, json!({ "result": encoding.result(reply) }))),
            None => Err(bad("ERR no reply")),
        }
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let from_header = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let from_query = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("_token=")));
        match from_header.or(from_query) {
            Some(token) => token.as_bytes().ct_eq(self.config.token.as_bytes()).into(),
            None => false,
        }
    }

    /// Runs commands on one pooled connection; a broken connection is dropped, not reused.
    async fn run(&self, commands: Vec<Vec<Vec<u8>>>) -> Result<Vec<Frame>, Failure> {
        let pooled = self.idle.lock().await.pop();
        let mut connection = match pooled {
            Some(c) => c,
            None => Connection::connect(&self.config.redis_addr)
                .await
                .map_err(|_| unavailable())?,
        };
        match connection.run(commands).await {
            Ok(replies) => {
                let mut idle = self.idle.lock().await;
                if idle.len() < MAX_IDLE_CONNECTIONS {
                    idle.push(connection);
                }
                Ok(replies)
            }
            Err(_) => Err(unavailable()),
        }
    }
}

fn unavailable() -> Failure {
    Failure::Status(
        StatusCode::SERVICE_UNAVAILABLE,
        "ERR redis is unreachable".into(),
    )
}

fn bad(message: &str) -> Failure {
    Failure::Status(StatusCode::BAD_REQUEST, message.to_owned())
}

/// The whole request body, refused past [`MAX_REQUEST_BYTES`] as Upstash refuses it. The
/// rest of an oversized body is still read, unbuffered: the error names its actual size,
/// and the client gets its answer instead of a reset connection.
async fn read_body(mut body: Incoming) -> Result<Bytes, Failure> {
    let mut buffered = Vec::new();
    let mut size = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| bad("ERR failed to read the request body"))?;
        if let Ok(data) = frame.into_data() {
            size = size.saturating_add(data.len());
            if size <= MAX_REQUEST_BYTES {
                buffered.extend_from_slice(&data);
            }
        }
    }
    if size > MAX_REQUEST_BYTES {
        return Err(bad(&format!(
            "ERR max request size exceeded. Limit: {MAX_REQUEST_BYTES} bytes, Actual: {size} bytes"
        )));
    }
    Ok(Bytes::from(buffered))
}

fn json_body(body: &[u8]) -> Result<Value, Failure> {
    serde_json::from_slice(body).map_err(|_| bad("ERR failed to parse command"))
}

fn parse_commands(value: &Value) -> Result<Vec<Vec<Vec<u8>>>, Failure> {
    match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(parse_command).collect(),
        _ => Err(bad("ERR expected a non-empty array of commands")),
    }
}

fn parse_command(value: &Value) -> Result<Vec<Vec<u8>>, Failure> {
    let Value::Array(parts) = value else {
        return Err(bad("ERR a command must be a JSON array"));
    };
    if parts.is_empty() {
        return Err(bad("ERR empty command"));
    }
    parts
        .iter()
        .map(|part| match part {
            Value::String(s) => Ok(s.as_bytes().to_vec()),
            Value::Number(n) => Ok(n.to_string().into_bytes()),
            Value::Bool(b) => Ok(b.to_string().into_bytes()),
            _ => Err(bad("ERR command arguments must be strings or numbers")),
        })
        .collect()
}

fn entries(replies: Vec<Frame>, encoding: Encoding) -> Value {
    Value::Array(replies.into_iter().map(|r| encoding.entry(r)).collect())
}

fn respond(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
