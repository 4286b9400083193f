//! The `resume` function's configuration and state: clients, verifiers and limiters,
//! built once at cold start.

use std::sync::Arc;
use std::time::Duration;

use crate::handlers::resume::mail::{LogMailSender, MailSender};
use crate::identity::resume_link::ResumeLinks;
use crate::identity::{Authenticator, IdentityConfig, SessionIssuer};
use crate::platform::env::{ConfigError, Env};
use crate::platform::http::HttpConfig;
use crate::platform::realtime::RealtimeRollout;
use crate::storage::erasure::ErasureWatch;
use crate::storage::history::HistoryReader;
use crate::storage::keys::Keys;
use crate::storage::ratelimit::{FailurePolicy, RateLimit, RateLimiter};
use crate::storage::{EventStoreConfig, EventStores, RedisClient, RedisConfig};

#[derive(Debug, Clone)]
pub struct ResumeConfig {
    pub http: HttpConfig,
    pub identity: IdentityConfig,
    pub redis: RedisConfig,
    pub stores: EventStoreConfig,
    pub resume_ttl_seconds: u64,
    /// `CHAT_SESSION_TTL_SECONDS`: lifetime of the session cookie a redeemed link sets.
    pub session_ttl_seconds: u64,
    pub public_app_url: String,
    /// Who uses Ably realtime; the others are told to poll.
    pub realtime: RealtimeRollout,
    pub rate_limit_caller: RateLimit,
    pub rate_limit_email: RateLimit,
    /// Redeem attempts per client IP.
    pub rate_limit_redeem: RateLimit,
    /// Polls per caller and conversation.
    pub rate_limit_poll: RateLimit,
}

impl ResumeConfig {
    pub fn load(mut env: Env) -> Result<Self, ConfigError> {
        let public_app_url = env.required_url("PUBLIC_APP_URL");
        let config = ResumeConfig {
            http: HttpConfig::from_env(&mut env),
            identity: IdentityConfig::from_env(&mut env),
            redis: RedisConfig::from_env(&mut env),
            stores: EventStoreConfig::from_env(&mut env),
            resume_ttl_seconds: env.parsed_or("RESUME_TOKEN_TTL_SECONDS", 86_400),
            session_ttl_seconds: env.parsed_or("CHAT_SESSION_TTL_SECONDS", 86_400),
            public_app_url,
            realtime: RealtimeRollout::from_env(&mut env),
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
            rate_limit_redeem: RateLimit::from_env(
                &mut env,
                "RATE_LIMIT_RESUME_REDEEM",
                RateLimit {
                    max: 20,
                    window_seconds: 60,
                },
            ),
            rate_limit_poll: RateLimit::from_env(
                &mut env,
                "RATE_LIMIT_POLL",
                RateLimit {
                    max: 120,
                    window_seconds: 60,
                },
            ),
        };
        if config.resume_ttl_seconds == 0 {
            env.problem("RESUME_TOKEN_TTL_SECONDS must be at least 1");
        }
        if config.session_ttl_seconds == 0 {
            env.problem("CHAT_SESSION_TTL_SECONDS must be at least 1");
        }
        env.finish()?;
        Ok(config)
    }
}

pub struct ResumeState {
    pub config: ResumeConfig,
    pub redis: RedisClient,
    pub keys: Keys,
    pub auth: Authenticator,
    pub links: ResumeLinks,
    pub sessions: SessionIssuer,
    pub history: HistoryReader,
    /// Which conversations were erased, and when: their sessions and links issued before
    /// are refused.
    pub erasures: ErasureWatch,
    pub mail: Arc<dyn MailSender>,
    pub caller_limiter: RateLimiter,
    pub email_limiter: RateLimiter,
    pub redeem_limiter: RateLimiter,
    pub poll_limiter: RateLimiter,
}

impl ResumeState {
    /// Production clients and the logging mail sender.
    pub fn new(config: ResumeConfig) -> Self {
        let redis = RedisClient::new(&config.redis);
        let dynamo = crate::storage::dynamo::client();
        Self::with_clients(config, redis, dynamo, Arc::new(LogMailSender))
    }

    /// Builds the state around given clients and mail sender.
    pub fn with_clients(
        config: ResumeConfig,
        redis: RedisClient,
        dynamo: aws_sdk_dynamodb::Client,
        mail: Arc<dyn MailSender>,
    ) -> Self {
        let keys = config.redis.keys();
        let limiter = |scope, limit, policy| {
            RateLimiter::new(redis.clone(), keys.clone(), scope, limit, policy)
        };
        // The mirror is the only publisher: reading history never bridges.
        let stores = EventStores::new(&config.stores, redis.clone(), keys.clone(), dynamo, false);
        let history = stores.history();
        let erasures = ErasureWatch::new(stores.archive, stores.epoch);
        // Issuing credentials and accepting them are refused without a working limiter;
        // polling goes on, since DynamoDB is its fallback when Redis is down.
        ResumeState {
            caller_limiter: limiter("resume", config.rate_limit_caller, FailurePolicy::Closed),
            email_limiter: limiter(
                "resume-email",
                config.rate_limit_email,
                FailurePolicy::Closed,
            ),
            redeem_limiter: limiter(
                "resume-redeem",
                config.rate_limit_redeem,
                FailurePolicy::Closed,
            ),
            poll_limiter: limiter("poll", config.rate_limit_poll, FailurePolicy::Open),
            auth: Authenticator::new(&config.identity)
                .with_allowed_origin(config.http.cors_origin.clone()),
            sessions: SessionIssuer::new(&config.identity.resume_secret),
            links: ResumeLinks::new(
                &config.identity.resume_secret,
                Duration::from_secs(config.resume_ttl_seconds),
            ),
            history,
            erasures,
            mail,
            redis,
            keys,
            config,
        }
    }

    /// The state of an environment (the process's, its secrets read: see [`crate::handlers::cold_start`]).
    pub fn from_env(env: Env) -> Result<Self, ConfigError> {
        Ok(Self::new(ResumeConfig::load(env)?))
    }
}
