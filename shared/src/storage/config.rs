//! How long mirrored events are kept, and where: the settings of the event stores.

use crate::platform::env::Env;

/// Retention of mirrored events.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    pub event_retention_days: u32,
    pub redis_event_ttl_seconds: u64,
    pub redis_event_max: u32,
}

impl RetentionConfig {
    pub fn from_env(env: &mut Env) -> Self {
        let cfg = RetentionConfig {
            event_retention_days: env.parsed_or("EVENT_RETENTION_DAYS", 90),
            redis_event_ttl_seconds: env.parsed_or("REDIS_EVENT_TTL_SECONDS", 86_400),
            redis_event_max: env.parsed_or("REDIS_EVENT_MAX", 100),
        };
        if cfg.event_retention_days == 0 {
            env.problem("EVENT_RETENTION_DAYS must be at least 1");
        }
        if cfg.redis_event_ttl_seconds == 0 {
            env.problem("REDIS_EVENT_TTL_SECONDS must be at least 1");
        }
        if cfg.redis_event_max == 0 {
            env.problem("REDIS_EVENT_MAX must be at least 1");
        }
        cfg
    }
}

/// The event stores' settings: the DynamoDB table and the retention of both stores.
#[derive(Debug, Clone)]
pub struct EventStoreConfig {
    /// `CHAT_EVENTS_TABLE`.
    pub table: String,
    pub retention: RetentionConfig,
}

impl EventStoreConfig {
    pub fn from_env(env: &mut Env) -> Self {
        crate::platform::aws_env::require_aws_environment(env);
        EventStoreConfig {
            table: env.required("CHAT_EVENTS_TABLE"),
            retention: RetentionConfig::from_env(env),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_must_be_positive_and_numeric() {
        let mut env = Env::from_pairs([
            ("EVENT_RETENTION_DAYS", "0"),
            ("REDIS_EVENT_MAX", "many"),
            ("CHAT_EVENTS_TABLE", "t"),
        ]);
        let config = EventStoreConfig::from_env(&mut env);
        assert_eq!(config.table, "t");
        assert_eq!(config.retention.redis_event_max, 100);
        let text = env.finish().unwrap_err().to_string();
        assert!(
            text.contains("EVENT_RETENTION_DAYS must be at least 1"),
            "{text}"
        );
        assert!(text.contains("REDIS_EVENT_MAX is invalid"), "{text}");
    }
}
