//! The configuration and the state (clients built once at cold start) of `chat-records`.

use crate::identity::{Authenticator, JwtConfig};
use crate::platform::env::{ConfigError, Env};
use crate::platform::http::HttpConfig;
use crate::storage::archive::EventArchive;
use crate::storage::history::HistoryReader;
use crate::storage::ratelimit::{FailurePolicy, RateLimit, RateLimiter};
use crate::storage::{EventStoreConfig, EventStores, RedisClient, RedisConfig};

#[derive(Debug, Clone)]
pub struct RecordsConfig {
    pub http: HttpConfig,
    pub jwt: JwtConfig,
    pub redis: RedisConfig,
    pub stores: EventStoreConfig,
    /// Requests per caller, every route together.
    pub rate_limit: RateLimit,
}

impl RecordsConfig {
    pub fn load(mut env: Env) -> Result<Self, ConfigError> {
        let config = RecordsConfig {
            http: HttpConfig::from_env(&mut env),
            jwt: JwtConfig::from_env(&mut env),
            redis: RedisConfig::from_env(&mut env),
            stores: EventStoreConfig::from_env(&mut env),
            rate_limit: RateLimit::from_env(
                &mut env,
                "RATE_LIMIT_RECORDS",
                RateLimit {
                    max: 120,
                    window_seconds: 60,
                },
            ),
        };
        env.finish()?;
        Ok(config)
    }
}

pub struct RecordsState {
    pub config: RecordsConfig,
    pub auth: Authenticator,
    pub history: HistoryReader,
    pub archive: EventArchive,
    pub limiter: RateLimiter,
}

impl RecordsState {
    pub fn new(config: RecordsConfig) -> Self {
        let redis = RedisClient::new(&config.redis);
        Self::with_clients(config, redis, crate::storage::dynamo::client())
    }

    /// Builds the state around given clients.
    pub fn with_clients(
        config: RecordsConfig,
        redis: RedisClient,
        dynamo: aws_sdk_dynamodb::Client,
    ) -> Self {
        let keys = config.redis.keys();
        // Reading the record never bridges.
        let stores = EventStores::new(&config.stores, redis.clone(), keys.clone(), dynamo, false);
        RecordsState {
            auth: Authenticator::bearer_only(&config.jwt),
            history: stores.history(),
            archive: stores.archive,
            // The record is DynamoDB's: without Redis the limit fails open, as polling does.
            limiter: RateLimiter::new(
                redis,
                keys,
                "records",
                config.rate_limit,
                FailurePolicy::Open,
            ),
            config,
        }
    }

    /// The state of an environment (the process's, its secrets read: see [`crate::handlers::cold_start`]).
    pub fn from_env(env: Env) -> Result<Self, ConfigError> {
        Ok(Self::new(RecordsConfig::load(env)?))
    }
}
