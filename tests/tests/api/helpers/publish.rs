//! The publish function over the stack, with Ably at a mock's address.

use std::time::Duration;

use chat_core::ably::{AblyClient, RetryPolicy};
use chat_core::handlers::publish::{PublishConfig, PublishState};

use super::{env_with, unique};

/// The publish function's configuration: Ably at `ably_url`, a Redis key prefix of its
/// own (rate limits never leak between tests), `overrides` on top.
pub fn publish_config(ably_url: &str, overrides: &[(&str, &str)]) -> PublishConfig {
    let prefix = format!("{}:", unique("pub"));
    let mut all = vec![
        ("ABLY_REST_URL", ably_url),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
    ];
    all.extend_from_slice(overrides);
    PublishConfig::load(env_with(&all)).expect("publish config")
}

/// The publish function as deployed (the product's Ably client and retry policy).
pub fn publish_state(ably_url: &str, overrides: &[(&str, &str)]) -> PublishState {
    PublishState::new(publish_config(ably_url, overrides))
}

/// The publish function with the Ably client `ably` makes of its configuration.
pub fn publish_state_with(
    ably_url: &str,
    overrides: &[(&str, &str)],
    ably: impl FnOnce(&PublishConfig) -> AblyClient,
) -> PublishState {
    let config = publish_config(ably_url, overrides);
    let client = ably(&config);
    PublishState::with_ably(config, client)
}

/// The product's retry policy with short backoffs (10 to 50 ms), so retry tests are quick.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..RetryPolicy::default()
    }
}
