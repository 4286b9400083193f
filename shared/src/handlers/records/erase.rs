//! `POST /api/chat/erase` `{"conversationId", "reason"?}` (admin only): erases a
//! conversation everywhere this backend keeps it.
//!
//! 1. The content-free tombstone is recorded first (`erased_at` now, the admin's
//!    clientId): from then on the mirror skips the conversation's events dated at or
//!    before it as `erased`, on every path, and `resume` refuses sessions and resume links
//!    of it issued before it.
//! 2. The erasure is counted on the cache epoch item, which every reader reads at most
//!    [`SNAPSHOT_MAX_AGE`](crate::storage::epoch::SNAPSHOT_MAX_AGE) apart: by the end of
//!    the next step every process looks the tombstone up again
//!    ([`crate::storage::erasure::ErasureWatch`]).
//! 3. After [`SETTLE`], so that a delivery that looked the tombstone up just before it was
//!    written has ended its writes, every DynamoDB item of the conversation is deleted
//!    (every version, trusted or not, expired or not).
//! 4. Its Redis list, proof, seen markers and place among the active conversations.
//!
//! Idempotent: erasing again moves `erased_at` on and deletes whatever came since. A
//! failure after step 1 answers 503 and the call can simply be repeated. One audit log
//! line and one EMF count (`erasures`) per erasure, never content.

use std::time::{Duration, Instant};

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::events::time::iso_millis;
use crate::handlers::records::{admit, RecordsState};
use crate::identity::Role;
use crate::platform::clock;
use crate::platform::error::ApiError;
use crate::platform::http::{
    deadline, invalid_body, json_object, json_response, string_field, RequestContext,
};
use crate::platform::metrics::{self, Metric};
use crate::storage::epoch::SNAPSHOT_MAX_AGE;

/// How long after recording the tombstone the deletion starts: a delivery that found no
/// tombstone just before it was written has sent its writes by then (they take
/// milliseconds), and every process has read the epoch item since the erasure was
/// counted on it.
pub const SETTLE: Duration = SNAPSHOT_MAX_AGE;
/// The longest `reason` kept on the tombstone.
pub const MAX_REASON_CHARS: usize = 500;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Erased<'a> {
    conversation_id: &'a str,
    erased_at: &'a str,
    archive_items: usize,
    cache_keys: usize,
}

pub(super) async fn erase(
    state: &RecordsState,
    req: &Request,
    ctx: &RequestContext,
) -> Result<Response<Body>, ApiError> {
    let caller = admit(state, req, ctx, &[Role::Admin]).await?;
    let body = json_object(req.body().as_ref())?;
    if let Some(key) = body
        .keys()
        .find(|k| !matches!(k.as_str(), "conversationId" | "reason"))
    {
        return Err(invalid_body(format!("unknown field {key}")));
    }
    let conversation_id = string_field(&body, "conversationId")?
        .ok_or_else(|| invalid_body("conversationId is required"))?;
    super::valid_conversation(&conversation_id)?;
    let reason = string_field(&body, "reason")?.filter(|r| !r.trim().is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        return Err(invalid_body(format!(
            "reason must be at most {MAX_REASON_CHARS} characters"
        )));
    }
    let until = deadline(req, Duration::from_secs(2), Duration::from_secs(25));
    let erased_at = iso_millis(clock::now_ms())
        .ok_or_else(|| ApiError::unavailable("clock_unavailable", "The clock is out of range"))?;
    let erased_by = caller.client_id();
    let tombstone = state
        .archive
        .record_erasure(&conversation_id, &erased_by, reason.as_deref(), &erased_at)
        .await
        .map_err(ApiError::record_unavailable)?;
    // Every reader's view of the epoch moves past this within the settling wait: by the
    // answer, every process refuses the conversation's earlier sessions and links.
    state
        .epoch
        .count_erasure()
        .await
        .map_err(|e| incomplete("The erasure could not be announced", e))?;
    tokio::time::sleep_until(
        (Instant::now() + SETTLE)
            .min(until.checked_sub(Duration::from_secs(5)).unwrap_or(until))
            .into(),
    )
    .await;
    let deleted = state
        .archive
        .delete_conversation(&conversation_id, until)
        .await
        .map_err(|e| incomplete("The archive could not delete every item", e))?;
    let cache_keys = state
        .cache
        .erase(&conversation_id, &deleted.event_ids)
        .await
        .map_err(|e| incomplete("The cache could not be cleared", e))?;
    if let Err(err) = state
        .archive
        .count_erased(&conversation_id, deleted.items, cache_keys)
        .await
    {
        tracing::warn!(error = %err, "the tombstone's counts were not updated");
    }
    tracing::info!(
        audit = "erasure",
        conversation_id = %conversation_id,
        erased_by = %erased_by,
        erased_at = %tombstone.erased_at,
        erasures = tombstone.erasures,
        archive_items = deleted.items,
        cache_keys,
        "conversation erased"
    );
    metrics::emit(super::SERVICE.name, &[Metric::count("erasures", 1)]);
    Ok(json_response(
        StatusCode::OK,
        &Erased {
            conversation_id: &conversation_id,
            erased_at: &tombstone.erased_at,
            archive_items: deleted.items,
            cache_keys,
        },
    ))
}

/// 503 `erasure_incomplete`: the tombstone is recorded (nothing erased comes back), and
/// repeating the request finishes the deletion.
fn incomplete(what: &str, cause: impl Into<anyhow::Error>) -> ApiError {
    ApiError::unavailable(
        "erasure_incomplete",
        format!("{what}; the erasure is recorded, repeat the request to finish it"),
    )
    .caused_by(cause)
}
