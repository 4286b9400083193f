//! Start-up of process-wide facilities: JSON logs and the TLS crypto provider.

use std::sync::Once;

use tracing_subscriber::filter::LevelFilter;

/// JSON logs to stdout (CloudWatch), at the level `RUST_LOG` names (default `info`; see
/// [`log_level`]). Safe to call more than once.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let level = log_level(std::env::var("RUST_LOG").ok().as_deref());
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false)
            .with_ansi(false)
            .with_max_level(level)
            .try_init();
    });
    install_crypto_provider();
}

/// The log level of a `RUST_LOG` value: `error`, `warn`, `info`, `debug`, `trace` or `off`
/// (any case); in a list such as `info,hyper=warn` the last bare level counts and
/// per-target directives are ignored (a full filter would link a regex engine into every
/// function). `info` when unset or unreadable.
pub fn log_level(value: Option<&str>) -> LevelFilter {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        // `LevelFilter` reads an empty string as `error`.
        .filter(|directive| !directive.is_empty())
        .filter_map(|directive| directive.parse::<LevelFilter>().ok())
        .next_back()
        .unwrap_or(LevelFilter::INFO)
}

/// reqwest is built without a bundled provider; install aws-lc-rs (the one the AWS SDK
/// uses) once, so the process carries a single TLS stack.
pub fn install_crypto_provider() {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_names_the_level() {
        assert_eq!(log_level(None), LevelFilter::INFO);
        assert_eq!(log_level(Some("")), LevelFilter::INFO);
        assert_eq!(log_level(Some("debug,")), LevelFilter::DEBUG);
        assert_eq!(log_level(Some("debug")), LevelFilter::DEBUG);
        assert_eq!(log_level(Some(" WARN ")), LevelFilter::WARN);
        assert_eq!(log_level(Some("off")), LevelFilter::OFF);
        assert_eq!(log_level(Some("hyper=debug,error")), LevelFilter::ERROR);
        assert_eq!(log_level(Some("chat_core=debug")), LevelFilter::INFO);
        assert_eq!(log_level(Some("loud")), LevelFilter::INFO);
    }
}
