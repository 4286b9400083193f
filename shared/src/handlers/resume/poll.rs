//! Polling (`GET /api/chat/events?conversationId=...&after=<cursor>&limit=...`): the
//! events of a conversation the caller may use strictly after a cursor, oldest first,
//! for clients without Ably realtime: from the Redis cache when it provably holds them
//! all, else from DynamoDB. Rate limited per caller and conversation in the same Redis
//! round trip, failing open (DynamoDB is the fallback of this very route).

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::channels::{ensure_may_use, ChannelName};
use crate::events::cursor::EventCursor;
use crate::events::ChatEvent;
use crate::handlers::resume::state::ResumeState;
use crate::platform::error::ApiError;
use crate::platform::http::{json_response, query_param, RequestContext};

/// Events returned without a `limit`, and the most a poll may ask for.
pub const DEFAULT_POLL_LIMIT: usize = 50;
pub const MAX_POLL_LIMIT: usize = 100;

/// A page of `GET /api/chat/events`.
#[derive(Serialize)]
struct PollBody {
    /// Strictly after the request's cursor, oldest first; untrusted events withheld.
    events: Vec<ChatEvent>,
    /// The position to poll after next: the last event looked at (returned or withheld),
    /// or the request's own cursor when there is nothing new (empty: from the start).
    cursor: String,
    /// false: Ably realtime is off for this conversation, keep polling.
    realtime: bool,
}

pub(super) async fn poll(
    state: &ResumeState,
    req: &Request,
    ctx: &RequestContext,
) -> Result<Response<Body>, ApiError> {
    let caller = state.auth.authenticate(&ctx.method, req.headers())?;
    super::refuse_erased_session(state, &caller).await?;
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
    ensure_may_use(&caller, &channel)?;

    // One Redis round trip: the rate limit count and the cached list; meanwhile the
    // cache epoch, read at most every two seconds.
    let counter = format!("{caller_id}:{conversation_id}");
    let (counted, epoch) = tokio::join!(
        state
            .history
            .cache()
            .counted_window(&conversation_id, &state.poll_limiter, &counter),
        state.history.epoch()
    );
    let cached = match counted {
        Ok((usage, cached)) => {
            state.poll_limiter.judge(Ok(usage))?;
            cached
        }
        Err(e) => {
            state.poll_limiter.judge(Err(e))?;
            None
        }
    };
    let page = state
        .history
        .page_after(&conversation_id, cursor.as_ref(), limit, cached, epoch)
        .await
        .map_err(ApiError::history_unavailable)?;
    tracing::debug!(request_id = %ctx.request_id, source = ?page.source, events = page.events.len(), "poll answered");
    // Past the last event looked at, withheld ones included, so a poll never stalls on them.
    let cursor = page.last.or(cursor).map(|c| c.encode()).unwrap_or_default();
    Ok(json_response(
        StatusCode::OK,
        &PollBody {
            events: page.events,
            cursor,
            realtime: state.config.realtime.includes(&conversation_id),
        },
    ))
}
