//! A local stand-in of the few Ably REST calls the functions make, so nothing leaves the
//! machine: `GET /time`, `GET /channels/{id}` (channel details with occupancy) and
//! `POST /channels/{id}/messages` (201).

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

/// Starts the mock on a free local port and answers its URL (the functions' `ABLY_REST_URL`).
pub async fn start() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(serve(listener));
    Ok(url)
}

async fn serve(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|req: Request<Incoming>| async move {
                Ok::<_, Infallible>(answer(req).await)
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(req: Request<Incoming>) -> Response<Full<Bytes>> {
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
