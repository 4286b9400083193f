//! The configuration and the state (clients built once at cold start) of `ably-stats`.

use std::time::Duration;

use crate::ably::{AblyClient, AblyConfig};
use crate::identity::{Authenticator, JwtConfig};
use crate::platform::env::{ConfigError, Env};
use crate::platform::http::HttpConfig;
use crate::storage::ratelimit::{FailurePolicy, RateLimit, RateLimiter};
use crate::storage::{Keys, RedisClient, RedisConfig};

#[derive(Debug, Clone)]
pub struct StatsConfig {
    pub http: HttpConfig,
    pub ably: AblyConfig,
    pub jwt: JwtConfig,
    pub redis: RedisConfig,
    pub table: String,
    /// Per-dependency time budget of a health check.
    pub check_timeout: Duration,
    /// Requests per caller: each one fans out to four upstream checks.
    pub rate_limit: RateLimit,
}

impl StatsConfig {
    pub fn load(mut env: Env) -> Result<Self, ConfigError> {
        let config = StatsConfig {
            http: HttpConfig::from_env(&mut env),
            ably: AblyConfig::from_env(&mut env),
            jwt: JwtConfig::from_env(&mut env),
            redis: RedisConfig::from_env(&mut env),
            table: {
                crate::platform::aws_env::require_aws_environment(&mut env);
                env.required("CHAT_EVENTS_TABLE")
            },
            check_timeout: Duration::from_millis(env.parsed_or("STATS_CHECK_TIMEOUT_MS", 1500)),
            rate_limit: RateLimit::from_env(
                &mut env,
                "RATE_LIMIT_STATS",
                RateLimit {
                    max: 60,
                    window_seconds: 60,
                },
            ),
        };
        if config.check_timeout.is_zero() {
            env.problem("STATS_CHECK_TIMEOUT_MS must be at least 1");
        }
        env.finish()?;
        Ok(config)
    }
}

pub struct StatsState {
    pub config: StatsConfig,
    pub auth: Authenticator,
    pub redis: RedisClient,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub ably: AblyClient,
    pub keys: Keys,
    pub limiter: RateLimiter,
}

impl StatsState {
    pub fn new(config: StatsConfig) -> Self {
        let redis = RedisClient::new(&config.redis);
        let dynamo = crate::storage::dynamo::client();
        let ably = AblyClient::new(&config.ably);
        Self::with_clients(config, redis, dynamo, ably)
    }

    /// Builds the state around given clients (for fault injection).
    pub fn with_clients(
        config: StatsConfig,
        redis: RedisClient,
        dynamo: aws_sdk_dynamodb::Client,
        ably: AblyClient,
    ) -> Self {
        StatsState {
            auth: Authenticator::bearer_only(&config.jwt),
            keys: config.redis.keys(),
            // A health check must answer when Redis is down: the limit fails open.
            limiter: RateLimiter::new(
                redis.clone(),
                config.redis.keys(),
                "stats",
                config.rate_limit,
                FailurePolicy::Open,
            ),
            redis,
            dynamo,
            ably,
            config,
        }
    }

    /// The state of an environment (the process's, its secrets read: see [`crate::handlers::cold_start`]).
    pub fn from_env(env: Env) -> Result<Self, ConfigError> {
        Ok(Self::new(StatsConfig::load(env)?))
    }
}
