//! The configuration and the state (clients built once at cold start) of `ably-events`.

use crate::ably::webhook::WebhookVerifier;
use crate::ably::WebhookKeys;
use crate::platform::env::{ConfigError, Env};
use crate::platform::http::HttpConfig;
use crate::storage::{EventStoreConfig, EventStores, RedisClient, RedisConfig};

#[derive(Debug, Clone)]
pub struct EventsConfig {
    pub http: HttpConfig,
    pub webhook_keys: WebhookKeys,
    pub redis: RedisConfig,
    pub stores: EventStoreConfig,
    pub pubsub_bridge: bool,
}

impl EventsConfig {
    pub fn load(mut env: Env) -> Result<Self, ConfigError> {
        let config = EventsConfig {
            http: HttpConfig::from_env(&mut env),
            webhook_keys: WebhookKeys::from_env(&mut env),
            redis: RedisConfig::from_env(&mut env),
            stores: EventStoreConfig::from_env(&mut env),
            pubsub_bridge: env.flag("REDIS_PUBSUB_BRIDGE", false),
        };
        env.finish()?;
        Ok(config)
    }
}

pub struct EventsState {
    pub config: EventsConfig,
    pub verifier: WebhookVerifier,
    pub stores: EventStores,
}

impl EventsState {
    pub fn new(config: EventsConfig) -> Self {
        let redis = RedisClient::new(&config.redis);
        let dynamo = crate::storage::dynamo::client();
        Self::with_clients(config, redis, dynamo)
    }

    /// Builds the state around given clients (e.g. one with an extra interceptor).
    pub fn with_clients(
        config: EventsConfig,
        redis: RedisClient,
        dynamo: aws_sdk_dynamodb::Client,
    ) -> Self {
        let stores = EventStores::new(
            &config.stores,
            redis,
            config.redis.keys(),
            dynamo,
            config.pubsub_bridge,
        );
        EventsState {
            verifier: WebhookVerifier::new(&config.webhook_keys),
            config,
            stores,
        }
    }

    /// The state of an environment (the process's, its secrets read: see [`crate::handlers::cold_start`]).
    pub fn from_env(env: Env) -> Result<Self, ConfigError> {
        Ok(Self::new(EventsConfig::load(env)?))
    }
}
