//! `POST|GET /api/chat/resume` and `GET /api/chat/events`: single-use resume links, the
//! chat session cookie and history hydration.
//!
//! - **Issue** (`POST /api/chat/resume` `{"conversationId","email"}`): a broker, admin or
//!   service bearer, or the session of that very conversation. Mints a link token (see
//!   [`crate::resume_link`]), builds `{PUBLIC_APP_URL}/chat?resume=<token>` and hands it to
//!   the [`MailSender`]. Rate limited per caller and per address, failing closed.
//! - **Redeem** (`GET /api/chat/resume?token=...`, or `POST` `{"token"}`): verifies the
//!   token, then one `EVAL` counts the attempt per client IP, consumes the `jti` with
//!   `SET NX` (a second use is 401 `resume_link_used`) and reads the 20 newest cached
//!   events; without Redis nothing is accepted. A refused token is counted too. Sets the
//!   `__Host-chat_session` cookie and returns the events (from DynamoDB when the cache
//!   is empty).
//! - **Poll** (`GET /api/chat/events?conversationId=...&after=<cursor>&limit=...`): the
//!   events of a conversation the caller may use strictly after a cursor, oldest first,
//!   for clients without Ably realtime: from the Redis cache when it provably holds them
//!   all, else from DynamoDB. Rate limited per caller and conversation in the same Redis
//!   round trip, failing open (DynamoDB is the fallback of this very route).
//!
//! POST bodies are told apart by their keys: `token` redeems, anything else issues.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};
use http::header::SET_COOKIE;
use http::{HeaderValue, Method, StatusCode};
use lambda_http::request::RequestContext as LambdaContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::auth::unix_seconds;
use crate::auth::{Authenticator, Caller, SessionIssuer, SESSION_COOKIE};
use crate::channels::ChannelName;
use crate::config::{
    ConfigError, Env, HttpConfig, JwtConfig, RateLimit, RedisConfig, RetentionConfig, Secret,
};
use crate::cursor::EventCursor;
use crate::email::EmailAddress;
use crate::error::ApiError;
use crate::http::{json_response, serve, RequestContext, Route, Service};
use crate::ids::identifier;
use crate::mail::{LogMailSender, MailSender, ResumeLinkMail};
use crate::ratelimit::{FailurePolicy, RateLimiter};
use crate::redis::{RedisClient, RedisError};
use crate::resume_link::{ResumeClaims, ResumeLinks};
use crate::store::{ContextLoader, EventArchive, EventCache, Keys};
use crate::webhook::ChatEvent;

pub const SERVICE: Service = Service {
    name: "resume",
    routes: &[
        Route {
            path: RESUME_PATH,
            methods: &["GET", "POST"],
        },
        Route {
            path: EVENTS_PATH,
            methods: &["GET"],
        },
    ],
    max_body_bytes: 16 * 1024,
};

const RESUME_PATH: &str = "/api/chat/resume";
const EVENTS_PATH: &str = "/api/chat/events";

/// Events returned when a link is redeemed.
pub const HYDRATION_EVENTS: usize = 20;
/// Events returned by `GET /api/chat/events` without a `limit`, and the most it allows.
pub const DEFAULT_POLL_LIMIT: usize = 50;
pub const MAX_POLL_LIMIT: usize = 100;
/// How long a consumed `jti` is remembered beyond the link's own expiry, so that an
/// instance whose clock runs behind cannot accept the link again.
const USED_MARKER_MARGIN_SECONDS: u64 = 300;

#[derive(Debug, Clone)]
pub struct ResumeConfig {
    pub http: HttpConfig,
    pub jwt: JwtConfig,
    pub resume_secret: Secret,
    pub redis: RedisConfig,
    /// `REDIS_KEY_PREFIX`: prepended as it is to every Redis key.
    pub redis_key_prefix: String,
    pub table: String,
    pub retention: RetentionConfig,
    pub resume_ttl_seconds: u64,
    /// `CHAT_SESSION_TTL_SECONDS`: lifetime of the session cookie a redeemed link sets.
    pub session_ttl_seconds: u64,
    pub public_app_url: String,
    pub realtime_enabled: bool,
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
            jwt: JwtConfig::from_env(&mut env),
            resume_secret: env.secret("RESUME_TOKEN_SECRET", 32),
            redis: RedisConfig::from_env(&mut env),
            redis_key_prefix: env.optional("REDIS_KEY_PREFIX").unwrap_or_default(),
            table: env.required("CHAT_EVENTS_TABLE"),
            retention: RetentionConfig::from_env(&mut env),
            resume_ttl_seconds: env.parsed_or("RESUME_TOKEN_TTL_SECONDS", 86_400),
            session_ttl_seconds: env.parsed_or("CHAT_SESSION_TTL_SECONDS", 86_400),
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
        if let Err(e) = ensure_distinct(&config.jwt.secret, &config.resume_secret) {
            env.problem(e);
        }
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
    pub auth: Authenticator,
    pub links: ResumeLinks,
    pub sessions: SessionIssuer,
    pub history: ContextLoader,
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
        let dynamo = crate::dynamo::client();
        Self::with_clients(config, redis, dynamo, Arc::new(LogMailSender))
    }

    /// Builds the state around given clients and mail sender.
    pub fn with_clients(
        config: ResumeConfig,
        redis: RedisClient,
        dynamo: aws_sdk_dynamodb::Client,
        mail: Arc<dyn MailSender>,
    ) -> Self {
        let limiter = |scope, limit, policy| {
            RateLimiter::new(
                redis.clone(),
                config.redis_key_prefix.clone(),
                scope,
                limit,
                policy,
            )
        };
        let history = ContextLoader {
            cache: EventCache {
                redis: redis.clone(),
                keys: Keys {
                    prefix: config.redis_key_prefix.clone(),
                },
                ttl_seconds: config.retention.redis_event_ttl_seconds,
                max_events: config.retention.redis_event_max,
                pubsub_bridge: false,
            },
            archive: EventArchive {
                client: dynamo,
                table: config.table.clone(),
                retention_days: config.retention.event_retention_days,
            },
        };
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
            auth: Authenticator::new(&config.jwt, &config.resume_secret),
            sessions: SessionIssuer::new(&config.resume_secret),
            links: ResumeLinks::new(
                &config.resume_secret,
                Duration::from_secs(config.resume_ttl_seconds),
            ),
            history,
            mail,
            redis,
            config,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(ResumeConfig::load(Env::from_process())?))
    }

    /// The Redis key that marks a link as used.
    pub fn used_key(&self, jti: &str) -> String {
        format!("{}resume:used:{jti}", self.config.redis_key_prefix)
    }
}

pub async fn handle(state: &ResumeState, req: Request) -> Response<Body> {
    serve(&SERVICE, &state.config.http, req, |req, ctx| {
        route(state, req, ctx)
    })
    .await
}

async fn route(
    state: &ResumeState,
    req: Request,
    ctx: RequestContext,
) -> Result<Response<Body>, ApiError> {
    match (ctx.route, &ctx.method) {
        (RESUME_PATH, &Method::GET) => {
            let token = query_param(&req, "token")?
                .ok_or_else(|| ApiError::bad_request("missing_token", "token is required"))?;
            redeem(state, &req, &ctx, &token).await
        }
        (RESUME_PATH, _) => match ResumeBody::parse(req.body().as_ref())? {
            ResumeBody::Redeem { token } => redeem(state, &req, &ctx, &token).await,
            ResumeBody::Issue {
                conversation_id,
                email,
            } => issue(state, &req, &ctx, conversation_id, email).await,
        },
        _ => poll(state, &req, &ctx).await,
    }
}

// --- issuing -----------------------------------------------------------------------------

/// A `POST /api/chat/resume` body, by its keys.
#[derive(Debug, PartialEq, Eq)]
enum ResumeBody {
    Redeem {
        token: String,
    },
    Issue {
        conversation_id: Option<String>,
        email: Option<String>,
    },
}

impl ResumeBody {
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let map = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice(body) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(invalid_body("Request body must be a JSON object")),
                Err(_) => {
                    return Err(ApiError::bad_request(
                        "invalid_json",
                        "Request body is not valid JSON",
                    ))
                }
            }
        };
        let string = |name: &str| match map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid_body(format!("{name} must be a string"))),
        };
        let (token, conversation_id, email) = (
            string("token")?,
            string("conversationId")?,
            string("email")?,
        );
        match token {
            Some(_) if conversation_id.is_some() || email.is_some() => Err(invalid_body(
                "Send either token (to redeem) or conversationId and email (to issue)",
            )),
            Some(token) => Ok(ResumeBody::Redeem { token }),
            None => Ok(ResumeBody::Issue {
                conversation_id,
                email,
            }),
        }
    }
}

#[derive(Serialize)]
struct IssuedBody {
    #[serde(rename = "resumeUrl")]
    resume_url: String,
    #[serde(rename = "expiresAt")]
    expires_at: String,
}

async fn issue(
    state: &ResumeState,
    req: &Request,
    ctx: &RequestContext,
    conversation_id: Option<String>,
    email: Option<String>,
) -> Result<Response<Body>, ApiError> {
    let caller = state.auth.authenticate(req.headers())?;
    let caller_id = caller.id_for_rate_limit();
    ctx.set_caller(caller_id.clone());

    let conversation_id =
        conversation_id.ok_or_else(|| invalid_body("conversationId is required"))?;
    identifier(&conversation_id, "conversationId")?;
    let may_issue = match &caller {
        Caller::User { role, .. } => role.is_staff(),
        Caller::Session {
            conversation_id: own,
            ..
        } => *own == conversation_id,
    };
    if !may_issue {
        return Err(ApiError::forbidden(
            "resume_forbidden",
            "Only staff or this conversation's own session may send a resume link",
        ));
    }
    let email = EmailAddress::parse(&email.ok_or_else(|| invalid_body("email is required"))?)?;

    state.caller_limiter.check(&caller_id).await?;
    state.email_limiter.check(&email.fingerprint()).await?;

    let link = state.links.issue(&conversation_id, &email)?;
    let expires_at = UNIX_EPOCH + Duration::from_secs(link.expires_at);
    let mail = ResumeLinkMail {
        conversation_id,
        email,
        url: format!("{}/chat?resume={}", state.config.public_app_url, link.token),
        expires_at,
    };
    if let Err(e) = state.mail.send_resume_link(&mail).await {
        tracing::error!(request_id = %ctx.request_id, conversation_id = %mail.conversation_id, error = %e, "resume link not delivered");
        return Err(ApiError::bad_gateway(
            "mail_failed",
            "The resume link could not be sent, please retry",
        ));
    }
    Ok(json_response(
        StatusCode::CREATED,
        &IssuedBody {
            resume_url: mail.url,
            expires_at: iso_seconds(link.expires_at),
        },
    ))
}

// --- redeeming ---------------------------------------------------------------------------

#[derive(Serialize)]
struct RedeemedBody<'a> {
    #[serde(rename = "conversationId")]
    conversation_id: &'a str,
    events: Vec<ChatEvent>,
    /// false: Ably realtime is off, poll `GET /api/chat/events`.
    realtime: bool,
    /// Set when history could not be read; the session is valid all the same.
    #[serde(rename = "historyUnavailable", skip_serializing_if = "is_false")]
    history_unavailable: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

async fn redeem(
    state: &ResumeState,
    req: &Request,
    ctx: &RequestContext,
    token: &str,
) -> Result<Response<Body>, ApiError> {
    let client = format!("ip:{}", source_ip(req).unwrap_or_else(|| "unknown".into()));
    ctx.set_caller(client.clone());
    let claims = match state.links.verify(token) {
        Ok(claims) => claims,
        Err(refused) => {
            // A refused token still counts against the address (429 once over the limit).
            state.redeem_limiter.check(&client).await?;
            return Err(refused);
        }
    };
    // One round trip: the attempt is counted, the link consumed and the history read.
    let cached = consume(state, &client, &claims).await?;

    // The link is spent from here on: whatever happens to history, the session is issued.
    let ttl = state.config.session_ttl_seconds;
    let session = state.sessions.issue(
        &claims.conversation_id,
        claims.email.as_str(),
        Duration::from_secs(ttl),
    )?;
    let cookie = format!(
        "{SESSION_COOKIE}={session}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={ttl}"
    );
    let cookie = HeaderValue::from_str(&cookie).map_err(ApiError::internal)?;

    let (events, history_unavailable) = match state
        .history
        .recent_events_after_cache(&claims.conversation_id, HYDRATION_EVENTS, Ok(cached))
        .await
    {
        Ok((events, _source)) => (events, false),
        Err(e) => {
            tracing::warn!(request_id = %ctx.request_id, conversation_id = %claims.conversation_id, error = %e, "history unavailable while redeeming a resume link; answering without it");
            (Vec::new(), true)
        }
    };
    let mut response = json_response(
        StatusCode::OK,
        &RedeemedBody {
            conversation_id: &claims.conversation_id,
            events,
            realtime: state.config.realtime_enabled,
            history_unavailable,
        },
    );
    response.headers_mut().insert(SET_COOKIE, cookie);
    Ok(response)
}

/// `KEYS` the redeem counter of the address, the link's used marker and the
/// conversation's cached events; `ARGV` the window (ms), the limit, the marker's ttl (s)
/// and the last list index to read. Answers `{0, count, ms until reset}` when the
/// address is over its limit (the link is untouched), `{1}` when the link was used
/// before, and `{2, newest events}` when this call consumed it.
const REDEEM_SCRIPT: &str = concat!(
    crate::ratelimit::count_hit_lua!(),
    "if n > tonumber(ARGV[2]) then return {0, n, redis.call('PTTL', KEYS[1])} end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then return {1} end
return {2, redis.call('LRANGE', KEYS[3], 0, ARGV[4])}"
);

/// Counts the redeem against `client`, marks the link used atomically (exactly one
/// redeem of a `jti` ever succeeds) and reads the newest cached events, all in one
/// `EVAL`. Without Redis nothing is accepted.
async fn consume(
    state: &ResumeState,
    client: &str,
    claims: &ResumeClaims,
) -> Result<Vec<ChatEvent>, ApiError> {
    let limiter = &state.redeem_limiter;
    let remaining = claims.expires_at.saturating_sub(unix_seconds());
    let keys = [
        limiter.key(client),
        state.used_key(&claims.jti),
        state.history.cache.keys.events(&claims.conversation_id),
    ];
    let args = [
        limiter.window_ms().to_string(),
        limiter.limit().max.to_string(),
        (remaining + USED_MARKER_MARGIN_SECONDS).to_string(),
        (HYDRATION_EVENTS - 1).to_string(),
    ];
    let reply = state
        .redis
        .eval(REDEEM_SCRIPT, &keys, &args)
        .await
        .map_err(link_store_unavailable)?;
    let items = match &reply {
        Value::Array(items) => items.as_slice(),
        _ => &[],
    };
    match (items.first().and_then(Value::as_i64), items.get(1)) {
        (Some(0), count) => {
            let usage = limiter.usage(
                count.and_then(Value::as_i64),
                items.get(2).and_then(Value::as_i64),
            );
            match usage.map(|usage| limiter.judge(Ok(usage))) {
                Some(Err(limited)) => Err(limited),
                _ => Err(link_store_unavailable(unexpected(&reply))),
            }
        }
        (Some(1), None) => Err(ApiError::unauthorized(
            "resume_link_used",
            "This resume link has already been used",
        )),
        (Some(2), Some(events)) => {
            // A list that cannot be read is history unavailable, not a failed redeem.
            Ok(EventCache::cached_events(events).unwrap_or_default())
        }
        _ => Err(link_store_unavailable(unexpected(&reply))),
    }
}

fn unexpected(reply: &Value) -> RedisError {
    RedisError::Protocol(format!("redeem script answered {reply}"))
}

fn link_store_unavailable(err: RedisError) -> ApiError {
    tracing::error!(error = %err, "cannot record resume link use; refusing the redeem");
    ApiError::unavailable(
        "resume_unavailable",
        "Service temporarily unavailable, please retry",
    )
}

/// The client's address as API Gateway saw it (never a forwarded header).
fn source_ip(req: &Request) -> Option<String> {
    match req.request_context_ref()? {
        LambdaContext::ApiGatewayV2(ctx) => ctx.http.source_ip.clone(),
        LambdaContext::ApiGatewayV1(ctx) => ctx.identity.source_ip.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

// --- polling -----------------------------------------------------------------------------

/// A page of `GET /api/chat/events`.
#[derive(Serialize)]
struct PollBody {
    /// Strictly after the request's cursor, oldest first.
    events: Vec<ChatEvent>,
    /// The position to poll after next: the last event returned, or the request's own
    /// cursor when there is nothing new (empty: from the start).
    cursor: String,
    /// false: Ably realtime is off, keep polling.
    realtime: bool,
}

async fn poll(
    state: &ResumeState,
    req: &Request,
    ctx: &RequestContext,
) -> Result<Response<Body>, ApiError> {
    let caller = state.auth.authenticate(req.headers())?;
    let caller_id = caller.id_for_rate_limit();
    ctx.set_caller(caller_id.clone());
    let conversation_id = query_param(req, "conversationId")?
        .ok_or_else(|| ApiError::bad_request("invalid_query", "conversationId is required"))?;
    let channel = ChannelName::conversation(&conversation_id).map_err(|_| {
        ApiError::bad_request(
            "invalid_identifier",
            "conversationId must match ^[A-Za-z0-9_-]{1,128}$",
        )
    })?;
    let limit = match query_param(req, "limit")? {
        None => DEFAULT_POLL_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_POLL_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!("limit must be an integer from 1 to {MAX_POLL_LIMIT}"),
                )
            })?,
    };
    let cursor = query_param(req, "after")?
        .map(|raw| EventCursor::parse(&raw))
        .transpose()
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_cursor",
                "after must be a cursor returned by this endpoint",
            )
        })?;
    caller.ensure_may_use(&channel)?;

    // One Redis round trip: the rate limit count and the cached list.
    let counter = format!("{caller_id}:{conversation_id}");
    let cached = match state
        .history
        .cache
        .counted_window(&conversation_id, &state.poll_limiter, &counter)
        .await
    {
        Ok((usage, cached)) => {
            state.poll_limiter.judge(Ok(usage))?;
            cached
        }
        Err(e) => {
            state.poll_limiter.judge(Err(e))?;
            None
        }
    };
    let (events, source) = state
        .history
        .page_after(&conversation_id, cursor.as_ref(), limit, cached)
        .await
        .map_err(|e| {
            tracing::error!(request_id = %ctx.request_id, error = %e, "history unavailable");
            ApiError::unavailable(
                "history_unavailable",
                "History is temporarily unavailable, please retry",
            )
        })?;
    tracing::debug!(request_id = %ctx.request_id, ?source, events = events.len(), "poll answered");
    let cursor = events
        .last()
        .map(EventCursor::of)
        .or(cursor)
        .map(|c| c.encode())
        .unwrap_or_default();
    Ok(json_response(
        StatusCode::OK,
        &PollBody {
            events,
            cursor,
            realtime: state.config.realtime_enabled,
        },
    ))
}

// --- helpers -----------------------------------------------------------------------------

/// A query parameter given at most once; empty counts as absent.
fn query_param(req: &Request, name: &str) -> Result<Option<String>, ApiError> {
    let values = req
        .query_string_parameters_ref()
        .and_then(|q| q.all(name))
        .unwrap_or_default();
    match values.as_slice() {
        [] => Ok(None),
        [""] => Ok(None),
        [value] => Ok(Some((*value).to_owned())),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            format!("{name} must be given once"),
        )),
    }
}

fn invalid_body(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_body", message)
}

/// Unix seconds as ISO-8601 UTC, e.g. `2026-11-22T03:04:05Z`.
fn iso_seconds(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_bodies_are_told_apart_by_their_keys() {
        assert_eq!(
            ResumeBody::parse(br#"{"token":"t"}"#).unwrap(),
            ResumeBody::Redeem { token: "t".into() }
        );
        assert_eq!(
            ResumeBody::parse(br#"{"conversationId":"c","email":"a@b.co","extra":1}"#).unwrap(),
            ResumeBody::Issue {
                conversation_id: Some("c".into()),
                email: Some("a@b.co".into())
            }
        );
        assert_eq!(
            ResumeBody::parse(b" ").unwrap(),
            ResumeBody::Issue {
                conversation_id: None,
                email: None
            }
        );
        for bad in [
            &br#"{"token":"t","conversationId":"c"}"#[..],
            br#"{"token":1}"#,
            br#"["token"]"#,
            b"{",
        ] {
            assert_eq!(ResumeBody::parse(bad).unwrap_err().status(), 400);
        }
    }

    #[test]
    fn expiry_is_iso_8601_utc() {
        assert_eq!(iso_seconds(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
