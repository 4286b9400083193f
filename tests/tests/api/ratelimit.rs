//! The shared rate limiter over the real Redis: windows, TTLs and the failure policy.

use std::time::Duration;

use chat_core::platform::env::Secret;
use chat_core::storage::ratelimit::RateLimit;
use chat_core::storage::ratelimit::{FailurePolicy, RateLimiter};
use chat_core::storage::redis::RedisClient;
use chat_core::storage::{Keys, RedisConfig};
use serde_json::json;

use crate::helpers::{closed_port, redis, unique};

fn limiter(
    redis: RedisClient,
    max: u32,
    window_seconds: u32,
    policy: FailurePolicy,
) -> RateLimiter {
    RateLimiter::new(
        redis,
        Keys::new(format!("{}:", unique("rl"))),
        "test",
        RateLimit {
            max,
            window_seconds,
        },
        policy,
    )
}

#[tokio::test]
async fn a_window_counts_then_resets_and_its_key_always_has_a_ttl() {
    let limiter = limiter(redis(), 2, 1, FailurePolicy::Closed);
    assert!(limiter.check("caller").await.is_ok());
    assert!(limiter.check("caller").await.is_ok());
    let err = limiter.check("caller").await.unwrap_err();
    assert_eq!(err.status(), 429);
    assert_eq!(err.retry_after_secs(), Some(1));

    // A key that lost its TTL gets one back on the next hit.
    let key = limiter.key("stale");
    redis().command(&["SET", &key, "1"]).await.unwrap();
    let usage = limiter.hit("stale").await.unwrap();
    assert_eq!(usage.count, 2);
    assert!(usage.reset_after_ms > 0 && usage.reset_after_ms <= 1000);
    let pttl = redis().command(&["PTTL", &key]).await.unwrap();
    assert!(pttl.as_i64().unwrap() > 0, "{pttl}");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(limiter.check("caller").await.is_ok());
    assert_eq!(
        redis()
            .command(&["GET", &limiter.key("caller")])
            .await
            .unwrap(),
        json!("1")
    );
}

#[tokio::test]
async fn the_failure_policy_decides_when_redis_is_down() {
    let down = RedisClient::new(&RedisConfig {
        url: format!("http://127.0.0.1:{}", closed_port()),
        token: Secret::new("unused"),
        key_prefix: String::new(),
    });
    assert!(limiter(down.clone(), 1, 60, FailurePolicy::Open)
        .check("caller")
        .await
        .is_ok());
    let err = limiter(down, 1, 60, FailurePolicy::Closed)
        .check("caller")
        .await
        .unwrap_err();
    assert_eq!(err.status(), 503);
    assert_eq!(err.code(), "rate_limiter_unavailable");
}
