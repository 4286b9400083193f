//! The stats function's cases: healthy, degraded, unhealthy.

use chat_core::ably::AblyClient;
use chat_core::handlers::stats;
use chat_core::storage::redis::RedisClient;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{auth, case, Answers};
use crate::helpers::*;

pub(super) async fn answers(a: &mut Answers, h: &EventsApp) {
    let ably = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/time"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([chrono::Utc::now().timestamp_millis()])),
        )
        .mount(&ably)
        .await;
    Mock::given(method("GET"))
        .and(path("/channels/conversation%3Aconv-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "channelId": "conversation:conv-1",
            "status": {"isActive": true, "occupancy": {"metrics": {"connections": 1, "objectPublishers": 0}}}
        })))
        .mount(&ably)
        .await;
    let config = |ably: &str| stats_config(h, ably, &[]);
    let f = stats::handle;
    let p = "/api/ably/stats";
    let admin = auth(&bearer("admin-1", "admin", &[]));
    let customer = auth(&bearer("user-1", "customer", &["conv-1"]));
    let s = stats_state(h, &ably.uri(), &[]);
    a.run(
        |req| f(&s, req),
        vec![
            case("stats: healthy", "GET", p).headers(&[("authorization", admin.as_str())]),
            case(
                "stats: channel",
                "GET",
                "/api/ably/stats?channelName=conversation:conv-1",
            )
            .headers(&[("authorization", customer.as_str())]),
            case(
                "stats: channel unknown to ably",
                "GET",
                "/api/ably/stats?channelName=contacts:user-1",
            )
            .headers(&[("authorization", customer.as_str())]),
            case("stats: bad channel", "GET", "/api/ably/stats?channelName=x")
                .headers(&[("authorization", customer.as_str())]),
            case(
                "stats: not theirs",
                "GET",
                "/api/ably/stats?channelName=conversation:conv-2",
            )
            .headers(&[("authorization", customer.as_str())]),
            case("stats: no identity", "GET", p),
            case("stats: body on GET", "GET", p)
                .headers(&[("authorization", admin.as_str())])
                .body("{}"),
            case("stats: preflight", "OPTIONS", p),
        ],
    )
    .await;
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let cfg = config(&dead);
    let degraded = stats::StatsState::with_clients(
        cfg.clone(),
        unreachable_redis(),
        crate::helpers::dynamo().await,
        AblyClient::new(&cfg.ably),
    );
    a.run(
        |req| f(&degraded, req),
        vec![case("stats: degraded", "GET", p).headers(&[("authorization", admin.as_str())])],
    )
    .await;
    let unhealthy = stats::StatsState::with_clients(
        cfg.clone(),
        RedisClient::new(&cfg.redis),
        unreachable_dynamo(),
        AblyClient::new(&cfg.ably),
    );
    a.run(
        |req| f(&unhealthy, req),
        vec![case("stats: unhealthy", "GET", p).headers(&[("authorization", admin.as_str())])],
    )
    .await;
}
