//! `GET /api/ably/stats` with Ably replaced by wiremock and the real Redis and DynamoDB
//! Local behind it; faults come from clients pointed at closed or silent ports.

use std::time::{Duration, Instant};

use base64::Engine;
use chat_core::ably::AblyClient;
use chat_core::handlers::stats::{handle, StatsState};
use chat_core::storage::redis::RedisClient;
use chat_core::storage::RedisConfig;
use lambda_http::{Body, Response};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::EventsApp;
use crate::helpers::{
    api_request, bearer, body_json, closed_port, redis_config, session_token, stack_var,
    stats_config, stats_state,
};

async fn ably_mock() -> MockServer {
    let server = MockServer::start().await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(stack_var("ABLY_API_KEY"))
    );
    Mock::given(method("GET"))
        .and(path("/time"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([chrono::Utc::now().timestamp_millis()])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/channels/conversation%3Aconv-s"))
        .and(header("authorization", basic.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "channelId": "conversation:conv-s",
            "status": {"isActive": true, "occupancy": {"metrics": {
                "connections": 3, "publishers": 2, "subscribers": 3, "presenceConnections": 1,
                "presenceMembers": 1, "presenceSubscribers": 2, "objectPublishers": 0}}}
        })))
        .mount(&server)
        .await;
    server
}

async fn state(h: &EventsApp, ably: &MockServer, extra: &[(&str, &str)]) -> StatsState {
    stats_state(h, &ably.uri(), extra)
}

async fn get(state: &StatsState, token: &str, query: &str) -> Response<Body> {
    let auth = format!("Bearer {token}");
    let uri = if query.is_empty() {
        "/api/ably/stats".to_owned()
    } else {
        format!("/api/ably/stats?{query}")
    };
    handle(
        state,
        api_request("GET", &uri, &[("authorization", &auth)], None),
    )
    .await
}

fn admin() -> String {
    bearer("admin-1", "admin", &[])
}

#[tokio::test]
async fn all_up_is_healthy() {
    let h = EventsApp::new().await;
    let ably = ably_mock().await;
    let s = state(&h, &ably, &[]).await;
    let res = get(&s, &admin(), "").await;
    assert_eq!(res.status(), 200);
    let b = body_json(&res);
    assert_eq!(b["status"], "healthy");
    for dep in ["ably", "redis", "dynamodb"] {
        assert_eq!(b["dependencies"][dep]["ok"], true, "{dep}: {b}");
        assert!(b["dependencies"][dep]["latencyMs"].as_f64().unwrap() >= 0.0);
        assert!(b["dependencies"][dep].get("error").is_none());
    }
    assert_eq!(b["dependencies"]["dynamodb"]["tableStatus"], "ACTIVE");
    assert_eq!(b["dependencies"]["dynamodb"]["ttlEnabled"], true);
    assert!(
        b["dependencies"]["ably"]["clockSkewMs"]
            .as_i64()
            .unwrap()
            .abs()
            < 60_000
    );
    assert!(b["responseTimeMs"].as_f64().is_some());
    assert!(b["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn redis_down_is_degraded_and_200() {
    let h = EventsApp::new().await;
    let ably = ably_mock().await;
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let s = state(&h, &ably, &[("UPSTASH_REDIS_REST_URL", closed.as_str())]).await;
    let res = get(&s, &admin(), "").await;
    assert_eq!(res.status(), 200);
    let b = body_json(&res);
    assert_eq!(b["status"], "degraded");
    assert_eq!(
        b["dependencies"]["redis"],
        json!({"ok": false, "latencyMs": b["dependencies"]["redis"]["latencyMs"], "error": "unreachable"})
    );
    assert_eq!(b["analytics"], json!({"error": "redis unavailable"}));
}

#[tokio::test]
async fn dynamodb_unreachable_is_unhealthy_and_503() {
    let h = EventsApp::new().await;
    let ably = ably_mock().await;
    let cfg = stats_config(&h, &ably.uri(), &[]);
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        chat_core::storage::dynamo::config_builder()
            .endpoint_url(format!("http://127.0.0.1:{}", closed_port()))
            .build(),
    );
    let ably_client = AblyClient::new(&cfg.ably);
    let s = StatsState::with_clients(
        cfg.clone(),
        RedisClient::new(&cfg.redis),
        dynamo,
        ably_client,
    );
    let res = get(&s, &admin(), "").await;
    assert_eq!(res.status(), 503);
    let b = body_json(&res);
    assert_eq!(b["status"], "unhealthy");
    assert_eq!(b["dependencies"]["dynamodb"]["ok"], false);
    assert_eq!(b["dependencies"]["redis"]["ok"], true);

    // A table that does not exist is unhealthy too.
    let s = state(&h, &ably, &[("CHAT_EVENTS_TABLE", "no-such-table")]).await;
    let res = get(&s, &admin(), "").await;
    assert_eq!(res.status(), 503);
    assert_eq!(
        body_json(&res)["dependencies"]["dynamodb"]["error"],
        "table not found"
    );
}

#[tokio::test]
async fn ably_refusing_the_key_is_unhealthy_and_ably_down_is_degraded() {
    let h = EventsApp::new().await;
    let refused = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {"code": 40101, "statusCode": 401, "message": "Invalid credentials", "href": "https://help.ably.io/error/40101"}})))
        .mount(&refused)
        .await;
    let s = state(&h, &refused, &[]).await;
    let res = get(&s, &admin(), "").await;
    assert_eq!(res.status(), 503);
    let b = body_json(&res);
    assert_eq!(b["status"], "unhealthy");
    assert_eq!(b["dependencies"]["ably"]["error"], "api key refused");
    assert!(!res_text(&res).contains(&stack_var("ABLY_API_KEY")));

    let failing = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&failing)
        .await;
    let s = state(&h, &failing, &[]).await;
    let res = get(&s, &admin(), "").await;
    assert_eq!(res.status(), 200);
    assert_eq!(body_json(&res)["status"], "degraded");
    assert_eq!(
        body_json(&res)["dependencies"]["ably"]["error"],
        "unreachable"
    );
}

fn res_text(res: &Response<Body>) -> String {
    String::from_utf8_lossy(res.body().as_ref()).into_owned()
}

#[tokio::test]
async fn hanging_dependencies_do_not_delay_the_answer_beyond_the_check_budget() {
    let h = EventsApp::new().await;
    let slow = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([1]))
                .set_delay(Duration::from_secs(10)),
        )
        .mount(&slow)
        .await;
    // A Redis REST endpoint that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = format!("http://{}", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let cfg = stats_config(&h, &slow.uri(), &[("STATS_CHECK_TIMEOUT_MS", "300")]);
    let redis = RedisClient::new(&RedisConfig {
        url: silent,
        ..redis_config()
    });
    let s = StatsState::with_clients(
        cfg.clone(),
        redis,
        crate::helpers::dynamo().await,
        AblyClient::new(&cfg.ably),
    );
    let started = Instant::now();
    let res = get(&s, &admin(), "channelName=conversation%3Aconv-s").await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(2),
        "answered after {elapsed:?}"
    );
    assert_eq!(res.status(), 200);
    let b = body_json(&res);
    assert_eq!(b["status"], "degraded");
    assert_eq!(b["dependencies"]["ably"]["error"], "timed out");
    assert_eq!(b["dependencies"]["redis"]["error"], "timed out");
    assert_eq!(b["channel"]["error"], "timed out");
    hold.abort();
}

#[tokio::test]
async fn channel_occupancy_only_for_a_channel_the_caller_may_use() {
    let h = EventsApp::new().await;
    let ably = ably_mock().await;
    let s = state(&h, &ably, &[]).await;
    let customer = bearer("cust-s", "customer", &["conv-s"]);
    let res = get(&s, &customer, "channelName=conversation%3Aconv-s").await;
    assert_eq!(res.status(), 200, "{:?}", body_json(&res));
    let channel = &body_json(&res)["channel"];
    assert_eq!(channel["name"], "conversation:conv-s");
    assert_eq!(channel["isActive"], true);
    assert_eq!(channel["occupancy"]["connections"], 3);
    assert_eq!(channel["occupancy"]["presenceMembers"], 1);
    assert_eq!(channel["occupancy"]["objectPublishers"], 0);

    let res = get(&s, &customer, "channelName=conversation%3Aother").await;
    assert_eq!(res.status(), 403);
    assert_eq!(body_json(&res)["code"], "channel_forbidden");
    for bad in ["conversation%3A*", "conversation%3Aa%3Ab", "nope", ""] {
        let res = get(&s, &customer, &format!("channelName={bad}")).await;
        assert_eq!(res.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn only_admin_and_service_see_analytics_and_only_bearer_tokens_get_in() {
    let h = EventsApp::new().await;
    let items: Vec<Value> = [900.0, 100.0, 400.0, 250.0]
        .iter()
        .enumerate()
        .map(|(i, ms)| json!({"id": format!("a{i}"), "name": "message:ai", "channel": "conversation:conv-a", "timestamp": 1,
                               "data": {"timing": {"ai_duration_ms": ms, "queue_duration_ms": 10}}}))
        .chain([json!({"id": "w", "name": "sla:warning", "channel": "conversation:conv-b", "timestamp": 1, "data": {}})])
        .collect();
    assert_eq!(
        h.post(json!({"items": items}).to_string().as_bytes())
            .await
            .status(),
        200
    );
    let ably = ably_mock().await;
    let s = state(&h, &ably, &[]).await;
    for role in ["admin", "service"] {
        let res = get(&s, &bearer("staff", role, &[]), "").await;
        let a = &body_json(&res)["analytics"];
        assert_eq!(a["activeConversations"], 2, "{role}: {a}");
        assert_eq!(a["eventsMirrored"], 5);
        assert_eq!(a["slaWarnings"], 1);
        assert_eq!(a["slaViolations"], 0);
        // Nearest rank over [100, 250, 400, 900]: P50 = 2nd, P95 = 4th.
        assert_eq!(
            a["aiDurationMs"],
            json!({"samples": 4, "p50": 250.0, "p95": 900.0})
        );
        assert_eq!(a["queueDurationMs"]["p50"], 10.0);
    }
    for role in ["customer", "broker"] {
        let res = get(&s, &bearer("someone", role, &[]), "").await;
        assert_eq!(res.status(), 200);
        assert!(body_json(&res).get("analytics").is_none(), "{role}");
    }
    let res = handle(&s, api_request("GET", "/api/ably/stats", &[], None)).await;
    assert_eq!(res.status(), 401);
    let cookie = format!("__Host-chat_session={}", session_token("conv-a"));
    let res = handle(
        &s,
        api_request("GET", "/api/ably/stats", &[("cookie", &cookie)], None),
    )
    .await;
    assert_eq!(res.status(), 401, "a chat session is not enough");
}

#[tokio::test]
async fn stats_are_rate_limited_per_caller() {
    let h = EventsApp::new().await;
    let ably = ably_mock().await;
    let s = state(&h, &ably, &[("RATE_LIMIT_STATS_MAX", "2")]).await;
    let (one, other) = (
        bearer("c-1", "customer", &[]),
        bearer("c-2", "customer", &[]),
    );
    for _ in 0..2 {
        assert_eq!(get(&s, &one, "").await.status(), 200);
    }
    let limited = get(&s, &one, "").await;
    assert_eq!(limited.status(), 429);
    assert_eq!(body_json(&limited)["code"], json!("rate_limited"));
    assert!(crate::helpers::header(&limited, "retry-after").is_some());
    // Per caller: another still gets in.
    assert_eq!(get(&s, &other, "").await.status(), 200);
}
