//! `POST /api/ably/publish`: publishes for an authenticated caller on channels it owns.

use std::time::Duration;

use lambda_http::{Body, Request, Response};

use crate::config::{
    AblyConfig, ConfigError, Env, HttpConfig, JwtConfig, RateLimit, RedisConfig, Secret,
};
use crate::error::ApiError;
use crate::http::{serve, RequestContext, Route, Service};
use crate::redis::RedisClient;

pub const SERVICE: Service = Service {
    name: "ably-publish",
    routes: &[Route {
        path: "/api/ably/publish",
        methods: &["POST"],
    }],
    // 64 KiB of message data plus the envelope around it.
    max_body_bytes: 80 * 1024,
};

#[derive(Debug, Clone)]
pub struct PublishConfig {
    pub http: HttpConfig,
    pub ably: AblyConfig,
    pub jwt: JwtConfig,
    pub resume_secret: Secret,
    pub redis: RedisConfig,
    pub rate_limit: RateLimit,
}

impl PublishConfig {
    pub fn load(mut env: Env) -> Result<Self, ConfigError> {
        let config = PublishConfig {
            http: HttpConfig::from_env(&mut env),
            ably: AblyConfig::from_env(&mut env),
            jwt: JwtConfig::from_env(&mut env),
            resume_secret: env.secret("RESUME_TOKEN_SECRET", 32),
            redis: RedisConfig::from_env(&mut env),
            rate_limit: RateLimit::from_env(
                &mut env,
                "RATE_LIMIT_PUBLISH",
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

pub struct PublishState {
    pub config: PublishConfig,
    pub redis: RedisClient,
    /// Client for Ably's REST API: 4 s to connect, 10 s per request.
    pub ably_http: reqwest::Client,
}

impl PublishState {
    pub fn new(config: PublishConfig) -> Self {
        let redis = RedisClient::new(&config.redis);
        let ably_http =
            crate::telemetry::http_client(Duration::from_secs(4), Duration::from_secs(10));
        PublishState {
            config,
            redis,
            ably_http,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(PublishConfig::load(Env::from_process())?))
    }
}

pub async fn handle(state: &PublishState, req: Request) -> Response<Body> {
    serve(&SERVICE, &state.config.http, req, |req, ctx| {
        publish(state, req, ctx)
    })
    .await
}

async fn publish(
    _state: &PublishState,
    _req: Request,
    _ctx: RequestContext,
) -> Result<Response<Body>, ApiError> {
    Err(ApiError::NotImplemented)
}
