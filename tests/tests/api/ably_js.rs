//! The token endpoint with the real Ably JavaScript client (`tests/node`, npm `ably`):
//! a local HTTP server hands each request to the real token handler as an API Gateway
//! event; the Node script points ably-js at it with `authUrl` and at a mock of Ably's
//! REST API that verifies the credential the way Ably does.

use std::convert::Infallible;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use chat_core::handlers::token::{handle, TokenState};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::helpers::{api_request, bearer, node_dir, run_node, stack_var, token_state};
use crate::helpers::{OPS, OWN_OPS};

/// Serves the token handler over HTTP on a free loopback port; returns the base URL.
async fn serve_token_function(state: TokenState) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(state);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<Incoming>| {
                    let state = Arc::clone(&state);
                    async move { Ok::<_, Infallible>(as_lambda(&state, req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

/// One HTTP request through the handler, as API Gateway would deliver it.
async fn as_lambda(
    state: &TokenState,
    req: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let header_refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let body = String::from_utf8_lossy(&body).into_owned();
    let request = api_request(
        parts.method.as_str(),
        &path,
        &header_refs,
        (!body.is_empty()).then_some(body.as_str()),
    );
    let response = handle(state, request).await;
    let (parts, body) = response.into_parts();
    let mut out = hyper::Response::new(Full::new(Bytes::copy_from_slice(body.as_ref())));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    out
}

struct Run {
    bearer: String,
    client_id: &'static str,
    capability: String,
    channel: &'static str,
    format: &'static str,
    auth_params: &'static str,
}

/// Runs the Node script against the served handler; returns its stdout on success.
async fn run_ably_js(run: Run) -> String {
    assert!(
        node_dir().join("node_modules/ably").is_dir(),
        "tests/node/node_modules is missing: run scripts/test, or npm ci --prefix tests/node"
    );
    let url = serve_token_function(token_state(&[])).await;
    let key = stack_var("ABLY_API_KEY");
    let (key_name, key_secret) = key.split_once(':').unwrap();
    let mut command = Command::new("node");
    command
        .arg(node_dir().join("token-e2e.mjs"))
        .current_dir(node_dir())
        .env("AUTH_URL", format!("{url}/api/ably/token"))
        .env("BEARER", &run.bearer)
        .env("KEY_NAME", key_name)
        .env("KEY_SECRET", key_secret)
        .env("EXPECT_CLIENT_ID", run.client_id)
        .env("EXPECT_CAPABILITY", &run.capability)
        .env("CHANNEL", run.channel)
        .env("FORMAT", run.format)
        .env("AUTH_PARAMS", run.auth_params);
    run_node(command).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ably_js_exchanges_our_token_request_with_ably() {
    let capability = format!(
        r#"{{"contacts:e2e-user":{OPS},"conversation:conv-e2e":{OWN_OPS},"notifications:e2e-user":{OPS},"sms:e2e-user:*":{OPS}}}"#
    );
    let stdout = run_ably_js(Run {
        bearer: bearer("e2e-user", "customer", &["conv-e2e"]),
        client_id: "customer:e2e-user",
        capability: capability.clone(),
        channel: "conversation:conv-e2e",
        format: "tokenRequest",
        auth_params: "{}",
    })
    .await;
    assert!(
        stdout.contains("E2E OK format=tokenRequest clientId=customer:e2e-user"),
        "{stdout}"
    );
    assert!(stdout.contains(&capability), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ably_js_uses_our_ably_jwt_with_auth_params_for_one_conversation() {
    let capability = format!(r#"{{"conversation:conv-j1":{OWN_OPS}}}"#);
    let stdout = run_ably_js(Run {
        bearer: bearer("e2e-jwt", "customer", &["conv-j1", "conv-j2"]),
        client_id: "customer:e2e-jwt",
        capability: capability.clone(),
        channel: "conversation:conv-j1",
        format: "jwt",
        auth_params: r#"{"format":"jwt","conversationId":"conv-j1"}"#,
    })
    .await;
    assert!(
        stdout.contains("E2E OK format=jwt clientId=customer:e2e-jwt"),
        "{stdout}"
    );
    assert!(stdout.contains(&capability), "{stdout}");
}
