//! The Upstash-compatible proxy, over HTTP, in front of the real redis-server.

use serde_json::{json, Value};

use crate::helpers::{closed_port, redis_addr, stack_var, unique};

async fn post(path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    post_to(&stack_var("UPSTASH_REDIS_REST_URL"), path, token, body).await
}

async fn post_to(base: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .body(body.to_owned());
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("proxy reachable");
    let status = res.status().as_u16();
    (status, res.json().await.expect("json body"))
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
    let client = reqwest::Client::new();
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
