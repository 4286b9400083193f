//! Redeeming a resume link (`GET /api/chat/resume?token=...`, or `POST` `{"token"}`):
//! verifies the token, then one `EVAL` counts the attempt per client IP, consumes the
//! `jti` with `SET NX` (a second use is 401 `resume_link_used`) and reads the newest
//! cached events; without Redis nothing is accepted. A refused token is counted too.
//! Sets the `__Host-chat_session` cookie and returns the events (from DynamoDB when the
//! cached list cannot be proven to hold them).

use std::time::Duration;

use http::header::SET_COOKIE;
use http::{HeaderValue, StatusCode};
use lambda_http::request::RequestContext as LambdaContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::Value;

use crate::events::ChatEvent;
use crate::handlers::resume::state::ResumeState;
use crate::identity::resume_link::ResumeClaims;
use crate::identity::SESSION_COOKIE;
use crate::platform::clock::unix_seconds;
use crate::platform::error::ApiError;
use crate::platform::http::{json_response, RequestContext};
use crate::storage::proof::CachedList;
use crate::storage::scripts;
use crate::storage::RedisError;

/// Events returned when a link is redeemed.
pub const HYDRATION_EVENTS: usize = 20;
/// How long a consumed `jti` is remembered beyond the link's own expiry, so that an
/// instance whose clock runs behind cannot accept the link again.
const USED_MARKER_MARGIN_SECONDS: u64 = 300;

#[derive(Serialize)]
struct RedeemedBody<'a> {
    #[serde(rename = "conversationId")]
    conversation_id: &'a str,
    events: Vec<ChatEvent>,
    /// false: Ably realtime is off for this conversation, poll `GET /api/chat/events`.
    realtime: bool,
    /// Set when history could not be read; the session is valid all the same.
    #[serde(rename = "historyUnavailable", skip_serializing_if = "is_false")]
    history_unavailable: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

pub(super) async fn redeem(
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
    super::refuse_erased(state, &claims.conversation_id, claims.issued_at).await?;
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
            realtime: state.config.realtime.includes(&claims.conversation_id),
            history_unavailable,
        },
    );
    response.headers_mut().insert(SET_COOKIE, cookie);
    Ok(response)
}

/// Counts the redeem against `client`, marks the link used atomically (exactly one
/// redeem of a `jti` ever succeeds) and reads the newest cached events, all in one
/// `EVAL`. Without Redis nothing is accepted.
async fn consume(
    state: &ResumeState,
    client: &str,
    claims: &ResumeClaims,
) -> Result<CachedList, ApiError> {
    let limiter = &state.redeem_limiter;
    let remaining = claims.expires_at.saturating_sub(unix_seconds());
    let keys = [
        limiter.key(client),
        state.keys.resume_used(&claims.jti),
        state.keys.events(&claims.conversation_id),
        state.keys.proof(&claims.conversation_id),
    ];
    let args = [
        limiter.window_ms().to_string(),
        limiter.limit().max.to_string(),
        (remaining + USED_MARKER_MARGIN_SECONDS).to_string(),
        // The whole list: the newest trusted events are what history keeps of it.
        state.history.cache().last_index().to_string(),
    ];
    let reply = state
        .redis
        .run(&scripts::REDEEM, &keys, &args)
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
            Ok(CachedList::of_reply(events, items.get(2)).unwrap_or_default())
        }
        _ => Err(link_store_unavailable(unexpected(&reply))),
    }
}

fn unexpected(reply: &Value) -> RedisError {
    RedisError::Protocol(format!("redeem script answered {reply}"))
}

fn link_store_unavailable(err: RedisError) -> ApiError {
    ApiError::unavailable(
        "resume_unavailable",
        "Service temporarily unavailable, please retry",
    )
    .caused_by(
        anyhow::Error::new(err).context("cannot record resume link use; refusing the redeem"),
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
