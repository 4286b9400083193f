//! Start-up of process-wide facilities: JSON logs, the TLS crypto provider, HTTP client.

use std::sync::Once;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

/// JSON logs to stdout (CloudWatch), filtered by `RUST_LOG` (default `info`).
/// Safe to call more than once.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false)
            .with_ansi(false)
            .with_env_filter(filter)
            .try_init();
    });
    install_crypto_provider();
}

/// reqwest is built without a bundled provider; install aws-lc-rs (the one the AWS SDK
/// uses) once, so the process carries a single TLS stack.
pub fn install_crypto_provider() {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// An HTTP client for outbound calls (Upstash, Ably), built once per cold start.
pub fn http_client(connect_timeout: Duration, request_timeout: Duration) -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .pool_idle_timeout(Duration::from_secs(50))
        .user_agent(concat!("ably-chat-lambda/", env!("CARGO_PKG_VERSION")))
        .build()
        // Building only fails when the TLS backend cannot initialise, which no request can fix.
        .unwrap_or_else(|_| reqwest::Client::new())
}
