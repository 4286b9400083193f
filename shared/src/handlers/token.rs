//! `POST /api/ably/token`: Ably TokenRequests and Ably JWTs scoped to the caller's channels.

use lambda_http::{Body, Request, Response};

use crate::config::{
    AblyConfig, ConfigError, Env, HttpConfig, JwtConfig, RateLimit, RedisConfig, Secret,
};
use crate::error::ApiError;
use crate::http::{serve, RequestContext, Route, Service};
use crate::redis::RedisClient;

pub const SERVICE: Service = Service {
    name: "ably-token",
    routes: &[Route {
        path: "/api/ably/token",
        methods: &["POST"],
    }],
    max_body_bytes: 16 * 1024,
};

#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub http: HttpConfig,
    pub ably: AblyConfig,
    pub jwt: JwtConfig,
    pub resume_secret: Secret,
    pub redis: RedisConfig,
    pub rate_limit: RateLimit,
    pub realtime_enabled: bool,
}

impl TokenConfig {
    pub fn load(mut env: Env) -> Result<Self, ConfigError> {
        let config = TokenConfig {
            http: HttpConfig::from_env(&mut env),
            ably: AblyConfig::from_env(&mut env),
            jwt: JwtConfig::from_env(&mut env),
            resume_secret: env.secret("RESUME_TOKEN_SECRET", 32),
            redis: RedisConfig::from_env(&mut env),
            rate_limit: RateLimit::from_env(
                &mut env,
                "RATE_LIMIT_TOKEN",
                RateLimit {
                    max: 30,
                    window_seconds: 60,
                },
            ),
            realtime_enabled: env.flag("ENABLE_ABLY_REALTIME", true),
        };
        env.finish()?;
        Ok(config)
    }
}

pub struct TokenState {
    pub config: TokenConfig,
    pub redis: RedisClient,
}

impl TokenState {
    pub fn new(config: TokenConfig) -> Self {
        let redis = RedisClient::new(&config.redis);
        TokenState { config, redis }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(TokenConfig::load(Env::from_process())?))
    }
}

pub async fn handle(state: &TokenState, req: Request) -> Response<Body> {
    serve(&SERVICE, &state.config.http, req, |req, ctx| {
        issue(state, req, ctx)
    })
    .await
}

async fn issue(
    _state: &TokenState,
    _req: Request,
    _ctx: RequestContext,
) -> Result<Response<Body>, ApiError> {
    Err(ApiError::NotImplemented)
}
