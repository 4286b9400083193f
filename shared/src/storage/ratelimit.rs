//! Per-caller rate limits in Redis: a fixed window counted by one `EVAL` per check.
//!
//! The script increments the caller's counter and sets its expiry in the same atomic
//! step (`PEXPIRE ... NX`, so a key never outlives its window and never lives without a
//! TTL), then reports the count and the time left. What happens when Redis cannot be
//! reached is the caller's choice: token issuance fails closed, publishing fails open.

use serde_json::Value;

use crate::platform::env::Env;
use crate::platform::error::ApiError;
use crate::storage::keys::Keys;
use crate::storage::redis::{RedisClient, RedisError};
use crate::storage::scripts;

/// A per-caller limit: `max` requests per `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window_seconds: u32,
}

impl RateLimit {
    /// `{prefix}_MAX` and `{prefix}_WINDOW_SECONDS`, e.g. `RATE_LIMIT_TOKEN_MAX`.
    pub fn from_env(env: &mut Env, prefix: &str, default: RateLimit) -> Self {
        let limit = RateLimit {
            max: env.parsed_or(&format!("{prefix}_MAX"), default.max),
            window_seconds: env
                .parsed_or(&format!("{prefix}_WINDOW_SECONDS"), default.window_seconds),
        };
        if limit.max == 0 || limit.window_seconds == 0 {
            env.problem(format!(
                "{prefix}_MAX and {prefix}_WINDOW_SECONDS must be at least 1"
            ));
        }
        limit
    }
}

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
    keys: Keys,
    scope: &'static str,
    limit: RateLimit,
    policy: FailurePolicy,
}

impl RateLimiter {
    /// Counts under `keys.rate_limit(scope, caller)`.
    pub fn new(
        redis: RedisClient,
        keys: Keys,
        scope: &'static str,
        limit: RateLimit,
        policy: FailurePolicy,
    ) -> Self {
        RateLimiter {
            redis,
            keys,
            scope,
            limit,
            policy,
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// The Redis key counting `caller_id`.
    pub fn key(&self, caller_id: &str) -> String {
        self.keys.rate_limit(self.scope, caller_id)
    }

    /// The window in milliseconds, `ARGV[1]` of every counting script.
    pub fn window_ms(&self) -> u64 {
        u64::from(self.limit.window_seconds).saturating_mul(1000)
    }

    /// Counts one request; one `EVAL` round trip.
    pub async fn hit(&self, caller_id: &str) -> Result<Usage, RedisError> {
        let reply = self
            .redis
            .run(
                &scripts::RATE_LIMIT,
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
                FailurePolicy::Closed => Err(ApiError::unavailable(
                    "rate_limiter_unavailable",
                    "Service temporarily unavailable, please retry",
                )
                .caused_by(anyhow::Error::new(err).context(format!(
                    "rate limiter {} unavailable; refusing the request",
                    self.scope
                )))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_in_pairs_of_variables_and_both_must_be_positive() {
        let default = RateLimit {
            max: 30,
            window_seconds: 60,
        };
        let mut env = Env::from_pairs([("RATE_LIMIT_TOKEN_MAX", "5")]);
        assert_eq!(
            RateLimit::from_env(&mut env, "RATE_LIMIT_TOKEN", default),
            RateLimit {
                max: 5,
                window_seconds: 60
            }
        );
        env.finish().unwrap();
        let mut env = Env::from_pairs([("RATE_LIMIT_TOKEN_WINDOW_SECONDS", "0")]);
        RateLimit::from_env(&mut env, "RATE_LIMIT_TOKEN", default);
        assert_eq!(
            env.finish().unwrap_err().problems,
            ["RATE_LIMIT_TOKEN_MAX and RATE_LIMIT_TOKEN_WINDOW_SECONDS must be at least 1"]
        );
    }
}
