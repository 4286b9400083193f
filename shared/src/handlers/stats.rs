//! `GET /api/ably/stats`: dependency health, channel occupancy and live chat analytics.

use std::time::Duration;

use lambda_http::{Body, Request, Response};

use crate::config::{AblyConfig, ConfigError, Env, HttpConfig, JwtConfig, RedisConfig};
use crate::error::ApiError;
use crate::http::{serve, RequestContext, Route, Service};
use crate::redis::RedisClient;

pub const SERVICE: Service = Service {
    name: "ably-stats",
    routes: &[Route {
        path: "/api/ably/stats",
        methods: &["GET"],
    }],
    max_body_bytes: 0,
};

#[derive(Debug, Clone)]
pub struct StatsConfig {
    pub http: HttpConfig,
    pub ably: AblyConfig,
    pub jwt: JwtConfig,
    pub redis: RedisConfig,
    pub table: String,
    /// Per-dependency time budget of a health check.
    pub check_timeout: Duration,
}

impl StatsConfig {
    pub fn load(mut env: Env) -> Result<Self, ConfigError> {
        let config = StatsConfig {
            http: HttpConfig::from_env(&mut env),
            ably: AblyConfig::from_env(&mut env),
            jwt: JwtConfig::from_env(&mut env),
            redis: RedisConfig::from_env(&mut env),
            table: env.required("CHAT_EVENTS_TABLE"),
            check_timeout: Duration::from_millis(env.parsed_or("STATS_CHECK_TIMEOUT_MS", 1500)),
        };
        env.finish()?;
        Ok(config)
    }
}

pub struct StatsState {
    pub config: StatsConfig,
    pub redis: RedisClient,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub ably_http: reqwest::Client,
}

impl StatsState {
    pub async fn new(config: StatsConfig) -> Self {
        let redis = RedisClient::new(&config.redis);
        let dynamo = crate::dynamo::client().await;
        let ably_http =
            crate::telemetry::http_client(Duration::from_secs(4), Duration::from_secs(10));
        StatsState {
            config,
            redis,
            dynamo,
            ably_http,
        }
    }

    pub async fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(StatsConfig::load(Env::from_process())?).await)
    }
}

pub async fn handle(state: &StatsState, req: Request) -> Response<Body> {
    serve(&SERVICE, &state.config.http, req, |req, ctx| {
        stats(state, req, ctx)
    })
    .await
}

async fn stats(
    _state: &StatsState,
    _req: Request,
    _ctx: RequestContext,
) -> Result<Response<Body>, ApiError> {
    Err(ApiError::NotImplemented)
}
