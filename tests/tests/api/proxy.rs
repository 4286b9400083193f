//! The Upstash-compatible proxy, over HTTP, in front of the real redis-server.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use dev_tools::upstash_proxy::MAX_REQUEST_BYTES;
use serde_json::{json, Value};

use crate::helpers::{closed_port, redis_addr, stack_var, unique};

/// A client with the project's TLS setup (reqwest carries no TLS provider of its own).
fn http() -> reqwest::Client {
    chat_core::platform::http_client::build(Duration::from_secs(5), Duration::from_secs(60))
}

async fn post(path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    post_to(&stack_var("UPSTASH_REDIS_REST_URL"), path, token, body).await
}

async fn post_to(base: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = http().post(format!("{base}{path}")).body(body.to_owned());
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("proxy reachable");
    let status = res.status().as_u16();
    (status, res.json().await.expect("json body"))
}

/// A request with `Upstash-Encoding: base64`, as the official JavaScript client sends by default.
async fn post_base64(path: &str, body: &str) -> (u16, Value) {
    let res = http()
        .post(format!("{}{path}", stack_var("UPSTASH_REDIS_REST_URL")))
        .bearer_auth(token())
        .header("Upstash-Encoding", "base64")
        .body(body.to_owned())
        .send()
        .await
        .expect("proxy reachable");
    let status = res.status().as_u16();
    (status, res.json().await.expect("json body"))
}

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

/// `["SET", key, "xx..x"]` padded to exactly `size` bytes of JSON.
fn set_command_of_size(key: &str, size: usize) -> String {
    let empty = json!(["SET", key, ""]).to_string();
    let padding = size
        .checked_sub(empty.len())
        .expect("size fits the command");
    json!(["SET", key, "x".repeat(padding)]).to_string()
}

fn token() -> String {
    stack_var("UPSTASH_REDIS_REST_TOKEN")
}

#[tokio::test]
async fn single_commands_map_replies_like_upstash() {
    let key = unique("proxy:single");
    let t = token();
    assert_eq!(
        post("/", Some(&t), &json!(["SET", key, "v1"]).to_string()).await,
        (200, json!({"result": "OK"}))
    );
    assert_eq!(
        post("/", Some(&t), &json!(["GET", key]).to_string()).await,
        (200, json!({"result": "v1"}))
    );
    assert_eq!(
        post(
            "/",
            Some(&t),
            &json!(["GET", format!("{key}:missing")]).to_string()
        )
        .await,
        (200, json!({"result": null}))
    );
    let counter = format!("{key}:n");
    assert_eq!(
        post("/", Some(&t), &json!(["INCRBY", counter, 5]).to_string()).await,
        (200, json!({"result": 5}))
    );
    let list = format!("{key}:list");
    post("/", Some(&t), &json!(["RPUSH", list, "a", "b"]).to_string()).await;
    assert_eq!(
        post("/", Some(&t), &json!(["LRANGE", list, 0, -1]).to_string()).await,
        (200, json!({"result": ["a", "b"]}))
    );
    let (status, body) = post("/", Some(&t), &json!(["INCR", key]).to_string()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "ERR value is not an integer or out of range"})
    );
}

#[tokio::test]
async fn pipeline_returns_one_entry_per_command_including_errors() {
    let key = unique("proxy:pipe");
    let body = json!([["SET", key, "x"], ["INCR", key], ["GET", key], ["DEL", key]]).to_string();
    let (status, replies) = post("/pipeline", Some(&token()), &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        replies,
        json!([
            {"result": "OK"},
            {"error": "ERR value is not an integer or out of range"},
            {"result": "x"},
            {"result": 1}
        ])
    );
}

#[tokio::test]
async fn multi_exec_runs_atomically() {
    let key = unique("proxy:tx");
    let body = json!([
        ["SET", key, "1"],
        ["INCR", key],
        ["EXPIRE", key, 60],
        ["TTL", key]
    ])
    .to_string();
    let (status, replies) = post("/multi-exec", Some(&token()), &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        replies,
        json!([{"result": "OK"}, {"result": 2}, {"result": 1}, {"result": 60}])
    );
    // A command Redis refuses while queueing aborts the whole transaction: nothing runs.
    let aborted = json!([["SET", key, "changed"], ["NOSUCHCOMMAND"]]).to_string();
    let (status, body) = post("/multi-exec", Some(&token()), &aborted).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().starts_with("EXECABORT"),
        "{body}"
    );
    let (_, value) = post("/", Some(&token()), &json!(["GET", key]).to_string()).await;
    assert_eq!(value, json!({"result": "2"}));
}

#[tokio::test]
async fn path_style_commands_work() {
    let key = unique("proxy:path");
    let base = stack_var("UPSTASH_REDIS_REST_URL");
    let client = http();
    let set = client
        .post(format!("{base}/set/{key}"))
        .bearer_auth(token())
        .body("from body")
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let got: Value = client
        .get(format!("{base}/get/{key}"))
        .bearer_auth(token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, json!({"result": "from body"}));
}

#[tokio::test]
async fn missing_or_wrong_token_is_refused_and_runs_nothing() {
    let key = unique("proxy:auth");
    let cmd = json!(["SET", key, "x"]).to_string();
    assert_eq!(
        post("/", None, &cmd).await,
        (401, json!({"error": "Unauthorized"}))
    );
    assert_eq!(
        post("/", Some("wrong-token"), &cmd).await,
        (401, json!({"error": "Unauthorized"}))
    );
    assert_eq!(
        post("/", Some(&token()), &json!(["EXISTS", key]).to_string()).await,
        (200, json!({"result": 0}))
    );
}

#[tokio::test]
async fn malformed_commands_are_400() {
    let t = token();
    for body in ["not json", "{}", "[]", "[[]]", r#"["SET", {"a":1}]"#] {
        let (status, reply) = post("/", Some(&t), body).await;
        assert_eq!(status, 400, "{body}");
        assert!(reply["error"].is_string(), "{body}: {reply}");
    }
    let (status, _) = post("/pipeline", Some(&t), r#"["GET","k"]"#).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn redis_down_behind_the_proxy_is_503() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = dev_tools::upstash_proxy::ProxyConfig {
        redis_addr: format!("127.0.0.1:{}", closed_port()),
        token: "t".into(),
        request_counter: None,
    };
    let server = tokio::spawn(dev_tools::upstash_proxy::serve(listener, config));
    let (status, body) = post_to(&base, "/", Some("t"), r#"["PING"]"#).await;
    assert_eq!(status, 503);
    assert_eq!(body, json!({"error": "ERR redis is unreachable"}));
    server.abort();
    // The real Redis behind the stack's proxy is unaffected.
    assert!(!redis_addr().is_empty());
}

#[tokio::test]
async fn requests_over_upstash_max_request_size_are_refused_like_upstash() {
    assert_eq!(MAX_REQUEST_BYTES, 10 * 1024 * 1024);
    let t = token();
    let key = unique("proxy:size");

    let at_limit = set_command_of_size(&key, MAX_REQUEST_BYTES);
    assert_eq!(at_limit.len(), MAX_REQUEST_BYTES);
    assert_eq!(
        post("/", Some(&t), &at_limit).await,
        (200, json!({"result": "OK"}))
    );
    let (_, stored) = post("/", Some(&t), &json!(["STRLEN", key]).to_string()).await;
    assert!(stored["result"].as_u64().unwrap() > 10_000_000, "{stored}");
    post("/", Some(&t), &json!(["DEL", key]).to_string()).await;

    let over = set_command_of_size(&key, MAX_REQUEST_BYTES + 1);
    let expected = json!({"error": format!(
        "ERR max request size exceeded. Limit: {MAX_REQUEST_BYTES} bytes, Actual: {} bytes",
        MAX_REQUEST_BYTES + 1
    )});
    assert_eq!(post("/", Some(&t), &over).await, (400, expected));
    // The same limit holds for a batch, and nothing in a refused request runs.
    let batch = format!("[{over},[\"SET\",\"{key}\",\"small\"]]");
    for path in ["/pipeline", "/multi-exec"] {
        let (status, body) = post(path, Some(&t), &batch).await;
        assert_eq!(status, 400, "{path}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("ERR max request size exceeded. Limit: 10485760 bytes"),
            "{path}: {body}"
        );
    }
    assert_eq!(
        post("/", Some(&t), &json!(["EXISTS", key]).to_string()).await,
        (200, json!({"result": 0}))
    );
}

#[tokio::test]
async fn base64_encoding_encodes_every_result_string_but_ok() {
    let key = unique("proxy:b64");
    let list = format!("{key}:list");
    assert_eq!(
        post_base64("/", &json!(["SET", key, "v1"]).to_string()).await,
        (200, json!({"result": "OK"}))
    );
    assert_eq!(
        post_base64("/", &json!(["GET", key]).to_string()).await,
        (200, json!({"result": b64("v1")}))
    );
    assert_eq!(
        post_base64("/", &json!(["PING"]).to_string()).await,
        (200, json!({"result": b64("PONG")}))
    );
    assert_eq!(
        post_base64("/", &json!(["GET", format!("{key}:missing")]).to_string()).await,
        (200, json!({"result": null}))
    );
    post_base64("/", &json!(["RPUSH", list, "a", "ü"]).to_string()).await;
    assert_eq!(
        post_base64("/", &json!(["LRANGE", list, 0, -1]).to_string()).await,
        (200, json!({"result": [b64("a"), b64("ü")]}))
    );
    // Errors stay plain text.
    assert_eq!(
        post_base64("/", &json!(["INCR", key]).to_string()).await,
        (
            400,
            json!({"error": "ERR value is not an integer or out of range"})
        )
    );
    // Path-style commands too; a path-style GET has no body.
    let got: Value = http()
        .get(format!("{}/get/{key}", stack_var("UPSTASH_REDIS_REST_URL")))
        .bearer_auth(token())
        .header("Upstash-Encoding", "base64")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, json!({"result": b64("v1")}));
}

#[tokio::test]
async fn base64_encoding_covers_pipeline_and_multi_exec_entries() {
    let key = unique("proxy:b64batch");
    let batch = json!([
        ["SET", key, "x"],
        ["INCR", key],
        ["GET", key],
        ["SCRIPT", "LOAD", "return 1"],
        ["DEL", key]
    ])
    .to_string();
    let sha = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db";
    let expected = json!([
        {"result": "OK"},
        {"error": "ERR value is not an integer or out of range"},
        {"result": b64("x")},
        {"result": b64(sha)},
        {"result": 1}
    ]);
    assert_eq!(
        post_base64("/pipeline", &batch).await,
        (200, expected.clone())
    );
    assert_eq!(post_base64("/multi-exec", &batch).await, (200, expected));
    // The SHA the script was loaded under, decoded, runs the script.
    assert_eq!(
        post_base64("/", &json!(["EVALSHA", sha, 0]).to_string()).await,
        (200, json!({"result": 1}))
    );
}

#[tokio::test]
async fn base64_encoding_keeps_bytes_that_are_not_utf8() {
    let key = unique("proxy:binary");
    let base = stack_var("UPSTASH_REDIS_REST_URL");
    let bytes: &[u8] = b"\xff\x00\xfe binary";
    let set = http()
        .post(format!("{base}/set/{key}"))
        .bearer_auth(token())
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let (_, encoded) = post_base64("/", &json!(["GET", key]).to_string()).await;
    assert_eq!(
        STANDARD
            .decode(encoded["result"].as_str().unwrap())
            .unwrap(),
        bytes
    );
    // Without the header the invalid bytes are replaced, as Upstash replaces them.
    let (_, plain) = post("/", Some(&token()), &json!(["GET", key]).to_string()).await;
    assert_eq!(plain, json!({"result": "\u{fffd}\u{0}\u{fffd} binary"}));
}
