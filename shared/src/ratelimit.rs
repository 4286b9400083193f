//! Per-caller rate limits in Redis: a fixed window counted by one `EVAL` per check.
//!
//! The script increments the caller's counter and sets its expiry in the same atomic
//! step (`PEXPIRE ... NX`, so a key never outlives its window and never lives without a
//! TTL), then reports the count and the time left. What happens when Redis cannot be
//! reached is the caller's choice: token issuance fails closed, publishing fails open.

use serde_json::Value;

use crate::config::RateLimit;
use crate::error::ApiError;
use crate::redis::{RedisClient, RedisError};

/// Lua that counts one request on the counter `KEYS[1]` for a window of `ARGV[1]` ms and
/// leaves the count in `n`. Scripts that limit and act in one round trip start with it.
macro_rules! count_hit_lua {
    () => {
        "local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1], 'NX')
"
    };
}
pub(crate) use count_hit_lua;

/// `KEYS[1]` the counter, `ARGV[1]` the window in ms -> `{count, ms until reset}`.
const SCRIPT: &str = concat!(
    count_hit_lua!(),
    "local ttl = redis.call('PTTL', KEYS[1])
return {n, ttl}"
);

/// What to do when Redis cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Let the request through (and log it): availability over strictness.
    Open,
    /// Refuse with 503 `rate_limiter_unavailable`.
    Closed,
}

/// One caller's standing in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Requests counted in this window, this one included.
    pub count: u64,
    /// Milliseconds until the window resets.
    pub reset_after_ms: u64,
}

/// A named limit (e.g. `token`) applied per caller id.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    redis: RedisClient,
    key_prefix: String,
    scope: &'static str,
    limit: RateLimit,
    policy: FailurePolicy,
}

impl RateLimiter {
    /// `key_prefix` is `REDIS_KEY_PREFIX`, prepended as it is to every key.
    pub fn new(
        redis: RedisClient,
        key_prefix: impl Into<String>,
        scope: &'static str,
        limit: RateLimit,
        policy: FailurePolicy,
    ) -> Self {
        RateLimiter {
            redis,
            key_prefix: key_prefix.into(),
            scope,
            limit,
            policy,
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// The Redis key counting `caller_id`: `{prefix}ratelimit:{scope}:{caller_id}`.
    pub fn key(&self, caller_id: &str) -> String {
        format!("{}ratelimit:{}:{caller_id}", self.key_prefix, self.scope)
    }

    /// The window in milliseconds, `ARGV[1]` of [`count_hit_lua`].
    pub fn window_ms(&self) -> u64 {
        u64::from(self.limit.window_seconds).saturating_mul(1000)
    }

    /// Counts one request; one `EVAL` round trip.
    pub async fn hit(&self, caller_id: &str) -> Result<Usage, RedisError> {
        let reply = self
            .redis
            .eval(
                SCRIPT,
                &[self.key(caller_id)],
                &[self.window_ms().to_string()],
            )
            .await?;
        match &reply {
            Value::Array(items) if items.len() == 2 => {
                self.usage(items[0].as_i64(), items[1].as_i64())
            }
            _ => None,
        }
        .ok_or_else(|| RedisError::Protocol(format!("rate limit script answered {reply}")))
    }

    /// A count and a `PTTL` as a script returned them, if they are plausible.
    pub fn usage(&self, count: Option<i64>, pttl: Option<i64>) -> Option<Usage> {
        match (count, pttl) {
            (Some(count), Some(ttl)) if count > 0 => Some(Usage {
                count: count.unsigned_abs(),
                // PTTL is -1/-2 only if the key vanished mid-script; assume a full window.
                reset_after_ms: if ttl > 0 {
                    ttl.unsigned_abs()
                } else {
                    self.window_ms()
                },
            }),
            _ => None,
        }
    }

    /// Ok when `caller_id` is within its limit; 429 with `Retry-After` when over it;
    /// when Redis fails, Ok or 503 `rate_limiter_unavailable` according to the policy.
    pub async fn check(&self, caller_id: &str) -> Result<(), ApiError> {
        self.judge(self.hit(caller_id).await)
    }

    /// The answer [`check`](Self::check) gives for a count made elsewhere (e.g. in a
    /// script that does more in the same round trip).
    pub fn judge(&self, counted: Result<Usage, RedisError>) -> Result<(), ApiError> {
        match counted {
            Ok(usage) if usage.count <= u64::from(self.limit.max) => Ok(()),
            Ok(usage) => Err(ApiError::RateLimited {
                retry_after_secs: usage.reset_after_ms.div_ceil(1000).max(1),
            }),
            Err(err) => match self.policy {
                FailurePolicy::Open => {
                    tracing::warn!(scope = self.scope, error = %err, "rate limiter unavailable; letting the request through");
                    Ok(())
                }
                FailurePolicy::Closed => {
                    tracing::error!(scope = self.scope, error = %err, "rate limiter unavailable; refusing the request");
                    Err(ApiError::unavailable(
                        "rate_limiter_unavailable",
                        "Service temporarily unavailable, please retry",
                    ))
                }
            },
        }
    }
}
