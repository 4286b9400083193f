//! `GET /api/chat/context?conversationId=&limit=` (broker, admin, service): the AI
//! worker's read. The newest `limit` messages (1 to 100, default 20) of the conversation's
//! current view (each message once, at its latest trusted version: see
//! [`crate::events::view`]), trusted only, **oldest first**, the order a prompt takes
//! them in; from Redis when its list provably holds them, else DynamoDB, which then
//! proves the list again (the history reader's rule).

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::handlers::records::item::RecordItem;
use crate::handlers::records::{admit, conversation_param, limit_param, RecordsState};
use crate::identity::Role;
use crate::platform::error::ApiError;
use crate::platform::http::{json_response, RequestContext};

/// Messages without a `limit`, and the most one read may ask for.
pub const DEFAULT_CONTEXT_LIMIT: usize = 20;
pub const MAX_CONTEXT_LIMIT: usize = 100;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContextBody<'a> {
    conversation_id: &'a str,
    events: Vec<RecordItem<'a>>,
}

pub(super) async fn context(
    state: &RecordsState,
    req: &Request,
    ctx: &RequestContext,
) -> Result<Response<Body>, ApiError> {
    let conversation_id = conversation_param(req)?;
    let limit = limit_param(req, DEFAULT_CONTEXT_LIMIT, MAX_CONTEXT_LIMIT)?;
    admit(state, req, ctx, &[Role::Broker, Role::Admin, Role::Service]).await?;
    let (mut messages, source) = state
        .history
        .recent_events(&conversation_id, limit)
        .await
        .map_err(ApiError::history_unavailable)?;
    tracing::debug!(request_id = %ctx.request_id, ?source, events = messages.len(), "context answered");
    messages.reverse();
    Ok(json_response(
        StatusCode::OK,
        &ContextBody {
            conversation_id: &conversation_id,
            events: messages.iter().map(RecordItem::of).collect(),
        },
    ))
}
