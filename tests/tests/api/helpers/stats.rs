//! The stats function over the stack.

use chat_core::handlers::stats::{StatsConfig, StatsState};

use super::{env_with, EventsApp};

/// The ably-stats configuration over the stack: `app`'s table and Redis key prefix, Ably at
/// `ably`, and `extra` on top.
pub fn stats_config(app: &EventsApp, ably: &str, extra: &[(&str, &str)]) -> StatsConfig {
    let mut all = vec![
        ("ABLY_REST_URL", ably),
        ("CHAT_EVENTS_TABLE", app.table.as_str()),
        ("REDIS_KEY_PREFIX", app.prefix.as_str()),
    ];
    all.extend_from_slice(extra);
    StatsConfig::load(env_with(&all)).expect("stats config")
}

/// The real ably-stats state over the stack (see [`stats_config`]).
pub fn stats_state(app: &EventsApp, ably: &str, extra: &[(&str, &str)]) -> StatsState {
    StatsState::new(stats_config(app, ably, extra))
}
