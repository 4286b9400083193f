//! The configuration and the state (clients built once at cold start) of `ably-token`.

use crate::ably::credentials::TokenSigner;
use crate::ably::AblyConfig;
use crate::identity::{Authenticator, IdentityConfig};
use crate::platform::env::{ConfigError, Env};
use crate::platform::http::HttpConfig;
use crate::platform::realtime::RealtimeRollout;
use crate::storage::erasure::ErasureWatch;
use crate::storage::ratelimit::{FailurePolicy, RateLimit, RateLimiter};
use crate::storage::{EventStoreConfig, RedisClient, RedisConfig};

#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub http: HttpConfig,
    pub ably: AblyConfig,
    pub identity: IdentityConfig,
    pub redis: RedisConfig,
    pub rate_limit: RateLimit,
    /// Who uses Ably realtime: the switch, the per-conversation share and its lists.
    pub realtime: RealtimeRollout,
    /// `CHAT_EVENTS_TABLE`: where a chat session's conversation is looked up for an
    /// erasure that refuses it.
    pub archive: EventStoreConfig,
}

impl TokenConfig {
    pub fn load(mut env: Env) -> Result<Self, ConfigError> {
        let config = TokenConfig {
            http: HttpConfig::from_env(&mut env),
            ably: AblyConfig::from_env(&mut env),
            identity: IdentityConfig::from_env(&mut env),
            redis: RedisConfig::from_env(&mut env),
            rate_limit: RateLimit::from_env(
                &mut env,
                "RATE_LIMIT_TOKEN",
                RateLimit {
                    max: 30,
                    window_seconds: 60,
                },
            ),
            realtime: RealtimeRollout::from_env(&mut env),
            archive: EventStoreConfig::from_env(&mut env),
        };
        env.finish()?;
        Ok(config)
    }
}

pub struct TokenState {
    pub config: TokenConfig,
    pub redis: RedisClient,
    pub auth: Authenticator,
    pub signer: TokenSigner,
    pub limiter: RateLimiter,
    /// Refuses the chat sessions of an erased conversation issued before its erasure.
    pub erasures: ErasureWatch,
}

impl TokenState {
    pub fn new(config: TokenConfig) -> Self {
        Self::with_dynamo(config, crate::storage::dynamo::client())
    }

    /// Builds the state around a given DynamoDB client (e.g. one that counts requests).
    pub fn with_dynamo(config: TokenConfig, dynamo: aws_sdk_dynamodb::Client) -> Self {
        let redis = RedisClient::new(&config.redis);
        let limiter = RateLimiter::new(
            redis.clone(),
            config.redis.keys(),
            "token",
            config.rate_limit,
            // Without a working limiter, issuing credentials is refused.
            FailurePolicy::Closed,
        );
        TokenState {
            auth: Authenticator::new(&config.identity)
                .with_allowed_origin(config.http.cors_origin.clone()),
            signer: TokenSigner::new(&config.ably.key),
            limiter,
            erasures: ErasureWatch::over(dynamo, &config.archive),
            redis,
            config,
        }
    }

    /// The state of an environment (the process's, its secrets read: see [`crate::handlers::cold_start`]).
    pub fn from_env(env: Env) -> Result<Self, ConfigError> {
        Ok(Self::new(TokenConfig::load(env)?))
    }
}
