//! The `chat-records` function: the record for workers and people.
//!
//! - `GET /api/chat/context` (broker, admin, service): an AI worker's prompt context, the
//!   newest messages of a conversation's current view, oldest first ([`context`]).
//! - `GET /api/chat/transcript` (admin, service): the compliance record, every archived
//!   item of a conversation with every version, trusted or not, as JSON, NDJSON or CSV
//!   ([`transcript`]).
//! - `GET /api/chat/reports` (admin, service): the events of one report type across every
//!   conversation in a time range, from the sparse `reports` index ([`reports`]).
//! - `POST /api/chat/erase` (admin): erases a conversation everywhere, keeping a
//!   content-free tombstone that keeps it erased ([`erase`]).
//!
//! Bearer JWTs only (a chat session is a customer's, and reads neither), rate limited
//! per caller on every route together.

pub mod context;
pub mod erase;
pub mod item;
pub mod reports;
pub mod state;
pub mod transcript;

use lambda_http::{Body, Request, Response};

pub use state::{RecordsConfig, RecordsState};

use crate::channels::ChannelName;
use crate::identity::{Caller, Role};
use crate::platform::error::ApiError;
use crate::platform::http::{query_param, serve, RequestContext, Route, Service};

pub const SERVICE: Service = Service {
    name: "chat-records",
    routes: &[
        Route {
            path: CONTEXT_PATH,
            methods: &["GET"],
        },
        Route {
            path: TRANSCRIPT_PATH,
            methods: &["GET"],
        },
        Route {
            path: REPORTS_PATH,
            methods: &["GET"],
        },
        Route {
            path: ERASE_PATH,
            methods: &["POST"],
        },
    ],
    max_body_bytes: 4 * 1024,
};

const CONTEXT_PATH: &str = "/api/chat/context";
const TRANSCRIPT_PATH: &str = "/api/chat/transcript";
const REPORTS_PATH: &str = "/api/chat/reports";
const ERASE_PATH: &str = "/api/chat/erase";

pub async fn handle(state: &RecordsState, req: Request) -> Response<Body> {
    serve(&SERVICE, &state.config.http, req, |req, ctx| {
        route(state, req, ctx)
    })
    .await
}

async fn route(
    state: &RecordsState,
    req: Request,
    ctx: RequestContext,
) -> Result<Response<Body>, ApiError> {
    match ctx.route {
        CONTEXT_PATH => context::context(state, &req, &ctx).await,
        REPORTS_PATH => reports::reports(state, &req, &ctx).await,
        ERASE_PATH => erase::erase(state, &req, &ctx).await,
        _ => transcript::transcript(state, &req, &ctx).await,
    }
}

/// The bearer caller, if its role is one of `roles` (403 `role_forbidden` otherwise),
/// counted against the rate limit.
async fn admit(
    state: &RecordsState,
    req: &Request,
    ctx: &RequestContext,
    roles: &[Role],
) -> Result<Caller, ApiError> {
    let caller = state.auth.authenticate_bearer(req.headers())?;
    let caller_id = caller.id_for_rate_limit();
    ctx.set_caller(caller_id.clone());
    if !caller.role().is_some_and(|role| roles.contains(&role)) {
        let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        return Err(ApiError::forbidden(
            "role_forbidden",
            format!("This route is for {} callers", allowed.join(", ")),
        ));
    }
    state.limiter.check(&caller_id).await?;
    Ok(caller)
}

/// The `conversationId` query parameter, required and well formed.
fn conversation_param(req: &Request) -> Result<String, ApiError> {
    let id = query_param(req, "conversationId")?
        .ok_or_else(|| ApiError::bad_request("invalid_query", "conversationId is required"))?;
    valid_conversation(&id)?;
    Ok(id)
}

/// 400 `invalid_identifier` unless `id` is a well-formed conversation id.
fn valid_conversation(id: &str) -> Result<(), ApiError> {
    ChannelName::conversation(id).map(|_| ()).map_err(|_| {
        ApiError::bad_request(
            "invalid_identifier",
            "conversationId must match ^[A-Za-z0-9_-]{1,128}$",
        )
    })
}

/// The `limit` query parameter: `default` when absent, else an integer from 1 to `max`.
fn limit_param(req: &Request, default: usize, max: usize) -> Result<usize, ApiError> {
    match query_param(req, "limit")? {
        None => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!("limit must be an integer from 1 to {max}"),
                )
            }),
    }
}
