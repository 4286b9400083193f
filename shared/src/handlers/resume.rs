//! `POST|GET /api/chat/resume` and `GET /api/chat/events`: single-use resume links, the
//! chat session cookie and history hydration.

use lambda_http::{Body, Request, Response};

use crate::config::{ConfigError, Env, HttpConfig, JwtConfig, RateLimit, RedisConfig, Secret};
use crate::error::ApiError;
use crate::http::{serve, RequestContext, Route, Service};
use crate::redis::RedisClient;

pub const SERVICE: Service = Service {
    name: "resume",
    routes: &[
        Route {
            path: "/api/chat/resume",
            methods: &["GET", "POST"],
        },
        Route {
            path: "/api/chat/events",
            methods: &["GET"],
        },
    ],
    max_body_bytes: 16 * 1024,
};

#[derive(Debug, Clone)]
pub struct ResumeConfig {
    pub http: HttpConfig,
    pub jwt: JwtConfig,
    pub resume_secret: Secret,
    pub redis: RedisConfig,
    pub table: String,
    pub resume_ttl_seconds: u64,
    pub public_app_url: String,
    pub realtime_enabled: bool,
    pub rate_limit_caller: RateLimit,
    pub rate_limit_email: RateLimit,
}

impl ResumeConfig {
    pub fn load(mut env: Env) -> Result<Self, ConfigError> {
        let public_app_url = env.required_url("PUBLIC_APP_URL");
        let config = ResumeConfig {
            http: HttpConfig::from_env(&mut env),
            jwt: JwtConfig::from_env(&mut env),
            resume_secret: env.secret("RESUME_TOKEN_SECRET", 32),
            redis: RedisConfig::from_env(&mut env),
            table: env.required("CHAT_EVENTS_TABLE"),
            resume_ttl_seconds: env.parsed_or("RESUME_TOKEN_TTL_SECONDS", 86_400),
            public_app_url,
            realtime_enabled: env.flag("ENABLE_ABLY_REALTIME", true),
            rate_limit_caller: RateLimit::from_env(
                &mut env,
                "RATE_LIMIT_RESUME",
                RateLimit {
                    max: 20,
                    window_seconds: 60,
                },
            ),
            rate_limit_email: RateLimit::from_env(
                &mut env,
                "RATE_LIMIT_RESUME_EMAIL",
                RateLimit {
                    max: 5,
                    window_seconds: 3600,
                },
            ),
        };
        if let Err(e) = ensure_distinct(&config.jwt.secret, &config.resume_secret) {
            env.problem(e);
        }
        env.finish()?;
        Ok(config)
    }
}

/// Resume links and sessions must not be forgeable with the bearer JWT secret.
fn ensure_distinct(jwt: &Secret, resume: &Secret) -> Result<(), &'static str> {
    if !jwt.expose().is_empty() && jwt == resume {
        Err("RESUME_TOKEN_SECRET must differ from JWT_SECRET")
    } else {
        Ok(())
    }
}

pub struct ResumeState {
    pub config: ResumeConfig,
    pub redis: RedisClient,
    pub dynamo: aws_sdk_dynamodb::Client,
}

impl ResumeState {
    pub async fn new(config: ResumeConfig) -> Self {
        let redis = RedisClient::new(&config.redis);
        let dynamo = crate::dynamo::client().await;
        ResumeState {
            config,
            redis,
            dynamo,
        }
    }

    pub async fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(ResumeConfig::load(Env::from_process())?).await)
    }
}

pub async fn handle(state: &ResumeState, req: Request) -> Response<Body> {
    serve(&SERVICE, &state.config.http, req, |req, ctx| {
        route(state, req, ctx)
    })
    .await
}

async fn route(
    _state: &ResumeState,
    _req: Request,
    _ctx: RequestContext,
) -> Result<Response<Body>, ApiError> {
    Err(ApiError::NotImplemented)
}
