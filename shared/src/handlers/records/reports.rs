//! `GET /api/chat/reports?type=&from=&to=&after=&limit=` (admin, service): the events of
//! one report type across every conversation, `from` <= `occurred_at` < `to`, from the
//! sparse `reports` index (see [`crate::storage::item::report_key`]). Types:
//! `sla:warning`, `sla:violation`, `agent_joined` (trusted ones) and `untrusted` (every
//! event the channel table did not trust, whatever its name).
//!
//! `from` and `to` are ISO-8601 times (`to` defaults to now, `from` to seven days
//! before `to`; at most 31 days apart). `{"items", "cursor"}`: items day by day, each day
//! in time order; pass `cursor` as `after` while it is not empty.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::events::time::iso_millis;
use crate::handlers::records::item::RecordItem;
use crate::handlers::records::{admit, limit_param, RecordsState};
use crate::identity::Role;
use crate::platform::clock;
use crate::platform::error::ApiError;
use crate::platform::http::{json_response, query_param, RequestContext};
use crate::storage::item::REPORT_TYPES;
use crate::storage::reads::ReportPosition;

/// Items without a `limit`, and the most one page may ask for.
pub const DEFAULT_REPORTS_LIMIT: usize = 100;
pub const MAX_REPORTS_LIMIT: usize = 1000;
/// The widest range one request may ask for, and the default one.
const MAX_RANGE_MS: i64 = 31 * 86_400_000;
const DEFAULT_RANGE_MS: i64 = 7 * 86_400_000;

#[derive(Serialize)]
struct ReportsBody<'a> {
    items: Vec<RecordItem<'a>>,
    /// Empty: the range holds no more.
    cursor: String,
}

pub(super) async fn reports(
    state: &RecordsState,
    req: &Request,
    ctx: &RequestContext,
) -> Result<Response<Body>, ApiError> {
    let report_type = query_param(req, "type")?
        .and_then(|t| REPORT_TYPES.iter().find(|known| **known == t).copied())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_type",
                format!("type must be one of {}", REPORT_TYPES.join(", ")),
            )
        })?;
    let now = clock::now_ms();
    let to = time_param(req, "to")?.unwrap_or(now);
    let from = time_param(req, "from")?.unwrap_or(to - DEFAULT_RANGE_MS);
    if from >= to || to - from > MAX_RANGE_MS {
        return Err(ApiError::bad_request(
            "invalid_range",
            "from must be before to, at most 31 days apart",
        ));
    }
    let (Some(from), Some(to)) = (iso_millis(from), iso_millis(to)) else {
        return Err(ApiError::bad_request(
            "invalid_range",
            "from and to must be ISO-8601 times",
        ));
    };
    let limit = limit_param(req, DEFAULT_REPORTS_LIMIT, MAX_REPORTS_LIMIT)?;
    let after = query_param(req, "after")?
        .filter(|raw| !raw.is_empty())
        .map(|raw| decode_cursor(&raw, report_type))
        .transpose()?;
    admit(state, req, ctx, &[Role::Admin, Role::Service]).await?;
    let (events, next) = state
        .archive
        .reports(
            report_type,
            (&from, &to),
            after.as_ref(),
            limit,
            now.div_euclid(1000),
        )
        .await
        .map_err(ApiError::record_unavailable)?;
    Ok(json_response(
        StatusCode::OK,
        &ReportsBody {
            items: events.iter().map(RecordItem::of).collect(),
            cursor: next.as_ref().map(encode_cursor).unwrap_or_default(),
        },
    ))
}

/// An ISO-8601 (RFC 3339) time parameter, in ms since the epoch.
fn time_param(req: &Request, name: &'static str) -> Result<Option<i64>, ApiError> {
    query_param(req, name)?
        .map(|raw| {
            // An offset's unencoded `+` arrives as a space.
            chrono::DateTime::parse_from_rfc3339(&raw.replace(' ', "+"))
                .map(|t| t.timestamp_millis())
                .map_err(|_| {
                    ApiError::bad_request(
                        "invalid_range",
                        format!("{name} must be an ISO-8601 time, e.g. 2026-12-01T00:00:00Z"),
                    )
                })
        })
        .transpose()
}

fn encode_cursor(position: &ReportPosition) -> String {
    let text = format!(
        "{}\n{}\n{}",
        position.partition, position.conversation_id, position.event_key
    );
    URL_SAFE_NO_PAD.encode(text)
}

/// A cursor this route made for `report_type`, else 400 `invalid_cursor`.
fn decode_cursor(raw: &str, report_type: &str) -> Result<ReportPosition, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_cursor",
            "after must be a cursor returned by this endpoint for this type",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '\n');
    let (Some(partition), Some(conversation_id), Some(event_key)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let day = partition
        .strip_prefix(report_type)
        .and_then(|d| d.strip_prefix('#'));
    let valid_day = day.is_some_and(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok());
    if !valid_day
        || conversation_id.is_empty()
        || crate::events::cursor::EventCursor::parse(&URL_SAFE_NO_PAD.encode(event_key)).is_err()
    {
        return Err(invalid());
    }
    Ok(ReportPosition {
        partition: partition.to_owned(),
        conversation_id: conversation_id.to_owned(),
        event_key: event_key.to_owned(),
    })
}
