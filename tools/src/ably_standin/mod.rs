//! A local stand-in for Ably's REST API and its webhook integration rule, for the dev
//! stack (`scripts/stack` starts it on `ABLY_REST_URL`), written from Ably's REST docs
//! and ably-js's wire format:
//! - `POST /channels/{channel}/messages` (Basic auth with the API key): one message or an
//!   array, serials assigned, de-duplicated by message id; answers 201
//!   `{"channel", "messageId", "serials": [...]}` ([`channels`]);
//! - `GET /channels/{channel}/messages/{serial}` and `PATCH` of it (update 1, delete 2,
//!   append 5) on the mutable `conversation:*` channels, answering `{"versionSerial"}`;
//! - `GET /time` (`[ms]`) and `GET /channels/{channel}` (details with occupancy);
//! - `POST /keys/{keyName}/requestToken`: a signed TokenRequest checked and exchanged for
//!   TokenDetails ([`token`]).
//!
//! Errors are Ably's body, `{"error": {"message", "code", "statusCode", "href"}}`. What is
//! published or changed is delivered as Ably's batched webhook ([`deliver`]). Every request
//! and delivery is one line on stdout (`.dev/logs/ably-standin.log` under the stack).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
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
use tokio::sync::mpsc::UnboundedSender;

pub mod channels;
pub mod deliver;
pub mod token;

use channels::{Channels, Delivered};
use token::TokenIssuer;

/// The largest request body taken (Ably's own limit on a message is far smaller).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// An Ably error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AblyFailure {
    pub status: u16,
    pub code: u32,
    pub message: String,
}

impl AblyFailure {
    pub fn new(status: u16, code: u32, message: &str) -> Self {
        AblyFailure {
            status,
            code,
            message: message.to_owned(),
        }
    }

    pub fn bad_request(message: &str) -> Self {
        Self::new(400, 40000, message)
    }

    pub fn not_found(message: &str) -> Self {
        Self::new(404, 40400, message)
    }

    pub fn body(&self) -> Value {
        json!({ "error": {
            "message": self.message,
            "code": self.code,
            "statusCode": self.status,
            "href": format!("https://help.ably.io/error/{}", self.code),
        }})
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

/// One log line, with the time.
pub fn log(line: &str) {
    println!(
        "{} {line}",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
}

/// The stand-in: the API key it accepts, its channels and tokens, and the integration
/// rule's queue (none: nothing is delivered).
pub struct Standin {
    key_name: String,
    secret: String,
    channels: Mutex<Channels>,
    tokens: Mutex<TokenIssuer>,
    deliveries: Option<UnboundedSender<Delivered>>,
}

impl Standin {
    /// For the API key `appId.keyId:secret`.
    pub fn new(api_key: &str, deliveries: Option<UnboundedSender<Delivered>>) -> Self {
        let (key_name, secret) = api_key.split_once(':').unwrap_or((api_key, ""));
        Standin {
            key_name: key_name.to_owned(),
            secret: secret.to_owned(),
            channels: Mutex::new(Channels::default()),
            tokens: Mutex::new(TokenIssuer::new(key_name, secret)),
            deliveries,
        }
    }

    /// Answers one request: `authorization` is the header, `body` the raw bytes.
    pub fn answer(
        &self,
        method: &Method,
        path: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> (u16, Value) {
        match self.route(method, path, authorization, body) {
            Ok((status, value)) => (status, value),
            Err(failure) => (failure.status, failure.body()),
        }
    }

    fn route(
        &self,
        method: &Method,
        path: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<(u16, Value), AblyFailure> {
        let segments: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let now = now_ms();
        match (method, segments.as_slice()) {
            (&Method::GET, ["time"]) => Ok((200, json!([now]))),
            (&Method::POST, ["keys", key, "requestToken"]) => {
                let details = lock(&self.tokens).request_token(key, &json_body(body)?, now)?;
                Ok((200, details))
            }
            (_, ["channels", ..]) => {
                self.authorize(authorization)?;
                self.channel_route(method, &segments[1..], body, now)
            }
            _ => Err(AblyFailure::not_found("no such route on the Ably stand-in")),
        }
    }

    fn channel_route(
        &self,
        method: &Method,
        segments: &[&str],
        body: &[u8],
        now: u64,
    ) -> Result<(u16, Value), AblyFailure> {
        let mut channels = lock(&self.channels);
        match (method, segments) {
            (&Method::GET, [channel]) => {
                Ok((200, channel_details(channel, channels.exists(channel))))
            }
            (&Method::POST, [channel, "messages"]) => {
                let published = channels.publish(channel, &json_body(body)?, now)?;
                for delivered in published.delivered {
                    self.deliver(delivered);
                }
                Ok((201, published.answer))
            }
            (&Method::GET, [channel, "messages", serial]) => channels
                .get(channel, serial)
                .map(|m| (200, m.clone()))
                .ok_or_else(|| AblyFailure::not_found("message not found")),
            (&Method::PATCH, [channel, "messages", serial]) => {
                let (answer, delivered) =
                    channels.change(channel, serial, &json_body(body)?, now)?;
                self.deliver(delivered);
                Ok((200, answer))
            }
            _ => Err(AblyFailure::not_found("no such route on the Ably stand-in")),
        }
    }

    fn deliver(&self, delivered: Delivered) {
        if let Some(queue) = &self.deliveries {
            let _ = queue.send(delivered);
        }
    }

    /// Basic auth with the API key, as Ably's REST API takes it.
    fn authorize(&self, authorization: Option<&str>) -> Result<(), AblyFailure> {
        let expected = STANDARD.encode(format!("{}:{}", self.key_name, self.secret));
        match authorization.and_then(|a| a.strip_prefix("Basic ")) {
            Some(given) if bool::from(given.trim().as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
            Some(_) => Err(AblyFailure::new(401, 40101, "invalid credentials")),
            None => Err(AblyFailure::new(
                401,
                40101,
                "authentication required: Basic auth with the API key",
            )),
        }
    }
}

/// `GET /channels/{channel}`: ChannelDetails with occupancy (no realtime connections here).
fn channel_details(channel: &str, active: bool) -> Value {
    json!({
        "channelId": channel,
        "name": channel,
        "status": {
            "isActive": active,
            "occupancy": { "metrics": {
                "connections": 0, "publishers": 0, "subscribers": 0,
                "presenceConnections": 0, "presenceMembers": 0, "presenceSubscribers": 0,
                "objectPublishers": 0, "objectSubscribers": 0,
            }},
        },
    })
}

fn json_body(body: &[u8]) -> Result<Value, AblyFailure> {
    serde_json::from_slice(body).map_err(|_| AblyFailure::bad_request("the body is not JSON"))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Serves `standin` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, standin: Arc<Standin>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let standin = Arc::clone(&standin);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let standin = Arc::clone(&standin);
                async move { Ok::<_, Infallible>(handle(&standin, req).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(standin: &Standin, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let authorization = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, value) = match http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(body) => standin.answer(&method, &path, authorization.as_deref(), &body.to_bytes()),
        Err(_) => {
            let failure = AblyFailure::new(413, 40009, "the body is too large");
            (failure.status, failure.body())
        }
    };
    let shown = value.to_string();
    log(&format!(
        "request {method} {path} -> {status} {}",
        shown.chars().take(300).collect::<String>()
    ));
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(shown)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const API_KEY: &str = "devApp.devKey:dev-only-ably-secret-not-real";

    fn basic() -> String {
        format!("Basic {}", STANDARD.encode(API_KEY))
    }

    #[test]
    fn publish_then_read_back_with_basic_auth_and_the_encoded_path() {
        let (sender, mut queue) = tokio::sync::mpsc::unbounded_channel();
        let standin = Standin::new(API_KEY, Some(sender));
        let auth = basic();
        let body = br#"{"id":"x:0","name":"message:user","data":{"text":"hi"},"clientId":"customer:dev-user"}"#;
        let (status, answer) = standin.answer(
            &Method::POST,
            "/channels/conversation%3Aconv-1/messages",
            Some(&auth),
            body,
        );
        assert_eq!(status, 201, "{answer}");
        let serial = answer["serials"][0].as_str().unwrap();
        let delivered = queue.try_recv().unwrap();
        assert_eq!(delivered.channel, "conversation:conv-1");
        assert_eq!(delivered.message["clientId"], "customer:dev-user");

        let encoded =
            percent_encoding::utf8_percent_encode(serial, percent_encoding::NON_ALPHANUMERIC);
        let path = format!("/channels/conversation%3Aconv-1/messages/{encoded}");
        let (status, message) = standin.answer(&Method::GET, &path, Some(&auth), b"");
        assert_eq!(status, 200);
        assert_eq!(message["serial"], serial);

        let (status, details) = standin.answer(
            &Method::GET,
            "/channels/conversation%3Aconv-1",
            Some(&auth),
            b"",
        );
        assert_eq!(status, 200);
        assert_eq!(details["status"]["isActive"], true);
        assert_eq!(details["status"]["occupancy"]["metrics"]["connections"], 0);
    }

    #[test]
    fn channels_need_the_api_key_and_time_does_not() {
        let standin = Standin::new(API_KEY, None);
        let (status, body) = standin.answer(&Method::GET, "/channels/c", None, b"");
        assert_eq!(status, 401);
        assert_eq!(body["error"]["code"], 40101);
        let wrong = format!("Basic {}", STANDARD.encode("devApp.devKey:wrong"));
        assert_eq!(
            standin
                .answer(&Method::GET, "/channels/c", Some(&wrong), b"")
                .0,
            401
        );
        let (status, time) = standin.answer(&Method::GET, "/time", None, b"");
        assert_eq!(status, 200);
        assert!(time[0].as_u64().unwrap() > 1_700_000_000_000);
        assert_eq!(standin.answer(&Method::GET, "/nowhere", None, b"").0, 404);
    }

    #[test]
    fn a_bad_body_is_an_ably_400() {
        let standin = Standin::new(API_KEY, None);
        let (status, body) = standin.answer(
            &Method::POST,
            "/channels/c/messages",
            Some(&basic()),
            b"nope",
        );
        assert_eq!(status, 400);
        assert_eq!(body["error"]["statusCode"], 400);
    }
}
