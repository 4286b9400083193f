//! How Ably calls are retried: bounded attempts with full-jitter backoff inside the
//! caller's deadline, and Ably's fallback hosts (only with the default endpoint).

use std::time::Duration;

use rand::Rng;

use crate::ably::config::DEFAULT_ABLY_REST_URL;

/// Ably's fallback hosts for the default endpoint, tried in random order on retries.
pub const ABLY_FALLBACK_HOSTS: [&str; 5] = [
    "main.a.fallback.ably-realtime.com",
    "main.b.fallback.ably-realtime.com",
    "main.c.fallback.ably-realtime.com",
    "main.d.fallback.ably-realtime.com",
    "main.e.fallback.ably-realtime.com",
];
/// How publishing retries: at most `max_attempts` tries, exponential backoff with full
/// jitter between them, and never past the caller's deadline minus `deadline_margin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// The first backoff's upper bound; it doubles with each retry up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Time kept back from the caller's deadline, so the caller can still answer.
    pub deadline_margin: Duration,
    /// Upper bound of one attempt (connect, send and read the answer).
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            deadline_margin: Duration::from_millis(500),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (1 for the first retry): a uniformly random
    /// duration between zero and `min(max_backoff, base_backoff * 2^(retry-1))`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let cap = self
            .base_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=cap_ms))
    }
}

/// Which endpoint counts as "Ably's default" and the fallback URLs used with it.
///
/// Fallbacks are only used when the configured REST URL is `default_rest_url`: a custom
/// `ABLY_REST_URL` (a local mock, a dedicated cluster) never sends traffic elsewhere.
/// [`FallbackHosts::ably`] is production; tests substitute their own servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackHosts {
    pub default_rest_url: String,
    /// Base URLs (`https://host`), without a trailing slash.
    pub urls: Vec<String>,
}

impl FallbackHosts {
    pub fn ably() -> Self {
        FallbackHosts {
            default_rest_url: DEFAULT_ABLY_REST_URL.to_owned(),
            urls: ABLY_FALLBACK_HOSTS
                .iter()
                .map(|host| format!("https://{host}"))
                .collect(),
        }
    }
}

impl Default for FallbackHosts {
    fn default() -> Self {
        Self::ably()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_full_jitter() {
        let policy = RetryPolicy::default();
        for retry in 1..=10 {
            let cap = (policy.base_backoff * 2u32.pow(retry - 1)).min(policy.max_backoff);
            for _ in 0..50 {
                assert!(policy.backoff(retry) <= cap);
            }
        }
        let none = RetryPolicy {
            base_backoff: Duration::ZERO,
            ..policy
        };
        assert_eq!(none.backoff(3), Duration::ZERO);
    }
}
