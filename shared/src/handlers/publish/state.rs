//! The configuration and the state (clients built once at cold start) of `ably-publish`.

use crate::ably::{AblyClient, AblyConfig};
use crate::identity::{Authenticator, IdentityConfig};
use crate::platform::env::{ConfigError, Env};
use crate::platform::http::HttpConfig;
use crate::storage::erasure::ErasureWatch;
use crate::storage::ratelimit::{FailurePolicy, RateLimit, RateLimiter};
use crate::storage::{EventStoreConfig, RedisClient, RedisConfig};

#[derive(Debug, Clone)]
pub struct PublishConfig {
    pub http: HttpConfig,
    pub ably: AblyConfig,
    pub identity: IdentityConfig,
    pub redis: RedisConfig,
    pub rate_limit: RateLimit,
    /// `CHAT_EVENTS_TABLE`: where a chat session's conversation is looked up for an
    /// erasure that refuses it.
    pub archive: EventStoreConfig,
}

impl PublishConfig {
    pub fn load(mut env: Env) -> Result<Self, ConfigError> {
        let config = PublishConfig {
            http: HttpConfig::from_env(&mut env),
            ably: AblyConfig::from_env(&mut env),
            identity: IdentityConfig::from_env(&mut env),
            redis: RedisConfig::from_env(&mut env),
            rate_limit: RateLimit::from_env(
                &mut env,
                "RATE_LIMIT_PUBLISH",
                RateLimit {
                    max: 120,
                    window_seconds: 60,
                },
            ),
            archive: EventStoreConfig::from_env(&mut env),
        };
        env.finish()?;
        Ok(config)
    }
}

pub struct PublishState {
    pub config: PublishConfig,
    pub auth: Authenticator,
    pub limiter: RateLimiter,
    pub ably: AblyClient,
    /// Refuses the chat sessions of an erased conversation issued before its erasure.
    pub erasures: ErasureWatch,
}

impl PublishState {
    pub fn new(config: PublishConfig) -> Self {
        let ably = AblyClient::new(&config.ably);
        Self::with_ably(config, ably)
    }

    /// Builds the state around a given Ably client (e.g. with other fallback hosts).
    pub fn with_ably(config: PublishConfig, ably: AblyClient) -> Self {
        Self::with_clients(config, ably, crate::storage::dynamo::client())
    }

    /// Builds the state around given Ably and DynamoDB clients.
    pub fn with_clients(
        config: PublishConfig,
        ably: AblyClient,
        dynamo: aws_sdk_dynamodb::Client,
    ) -> Self {
        let limiter = RateLimiter::new(
            RedisClient::new(&config.redis),
            config.redis.keys(),
            "publish",
            config.rate_limit,
            // Publishing stays available when the limiter's Redis is down.
            FailurePolicy::Open,
        );
        PublishState {
            auth: Authenticator::new(&config.identity)
                .with_allowed_origin(config.http.cors_origin.clone()),
            limiter,
            ably,
            erasures: ErasureWatch::over(dynamo, &config.archive),
            config,
        }
    }

    /// The state of an environment (the process's, its secrets read: see [`crate::handlers::cold_start`]).
    pub fn from_env(env: Env) -> Result<Self, ConfigError> {
        Ok(Self::new(PublishConfig::load(env)?))
    }
}
