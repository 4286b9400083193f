//! `POST /api/ably/events`: the Ably webhook, mirrored to Redis and DynamoDB.

use lambda_http::{Body, Request, Response};

use crate::config::{ConfigError, Env, HttpConfig, RedisConfig, RetentionConfig, WebhookKeys};
use crate::error::ApiError;
use crate::http::{serve, RequestContext, Route, Service};
use crate::redis::RedisClient;

pub const SERVICE: Service = Service {
    name: "ably-events",
    routes: &[Route {
        path: "/api/ably/events",
        methods: &["POST"],
    }],
    // API Gateway's and Lambda's payload limit.
    max_body_bytes: 6 * 1024 * 1024,
};

#[derive(Debug, Clone)]
pub struct EventsConfig {
    pub http: HttpConfig,
    pub webhook_keys: WebhookKeys,
    pub redis: RedisConfig,
    pub table: String,
    pub retention: RetentionConfig,
    pub pubsub_bridge: bool,
}

impl EventsConfig {
    pub fn load(mut env: Env) -> Result<Self, ConfigError> {
        let config = EventsConfig {
            http: HttpConfig::from_env(&mut env),
            webhook_keys: WebhookKeys::from_env(&mut env),
            redis: RedisConfig::from_env(&mut env),
            table: env.required("CHAT_EVENTS_TABLE"),
            retention: RetentionConfig::from_env(&mut env),
            pubsub_bridge: env.flag("REDIS_PUBSUB_BRIDGE", false),
        };
        env.finish()?;
        Ok(config)
    }
}

pub struct EventsState {
    pub config: EventsConfig,
    pub redis: RedisClient,
    pub dynamo: aws_sdk_dynamodb::Client,
}

impl EventsState {
    pub async fn new(config: EventsConfig) -> Self {
        let redis = RedisClient::new(&config.redis);
        let dynamo = crate::dynamo::client().await;
        EventsState {
            config,
            redis,
            dynamo,
        }
    }

    pub async fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(EventsConfig::load(Env::from_process())?).await)
    }
}

pub async fn handle(state: &EventsState, req: Request) -> Response<Body> {
    serve(&SERVICE, &state.config.http, req, |req, ctx| {
        receive(state, req, ctx)
    })
    .await
}

async fn receive(
    _state: &EventsState,
    _req: Request,
    _ctx: RequestContext,
) -> Result<Response<Body>, ApiError> {
    Err(ApiError::NotImplemented)
}
