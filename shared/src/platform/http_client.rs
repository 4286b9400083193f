//! Outbound HTTP clients (Upstash, Ably): one builder, so every client carries the same
//! TLS stack, pool and user agent.

use std::time::Duration;

/// An HTTP client for outbound calls (Upstash, Ably), built once per cold start.
pub fn build(connect_timeout: Duration, request_timeout: Duration) -> reqwest::Client {
    crate::platform::telemetry::install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .pool_idle_timeout(Duration::from_secs(50))
        .user_agent(concat!("ably-chat-lambda/", env!("CARGO_PKG_VERSION")))
        .build()
        // Building only fails when the TLS backend cannot initialise, which no request can fix.
        .unwrap_or_else(|_| reqwest::Client::new())
}
