//! `GET /api/chat/transcript?conversationId=&format=json|ndjson|csv&after=&limit=`
//! (admin, service): the compliance record of a conversation. Every archived item, every
//! version of every message, trusted or not (`trusted` says which), oldest first, from
//! DynamoDB (the record, strongly consistent), `limit` (1 to 1000, default 100) at a time
//! after an opaque cursor.
//!
//! - `json`: `{"conversationId", "items", "cursor", "erasedAt"}`;
//! - `ndjson`: one item a line (`application/x-ndjson`), the next cursor in `x-next-cursor`;
//! - `csv`: a header row, then one row per item (`text/csv`, RFC 4180 quoting), `payload`
//!   as compact JSON, the next cursor in `x-next-cursor`.
//!
//! The cursor is the position of the last item served (the request's own when there is
//! nothing new, empty before any item): pass it as `after` until a page is short.

use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::events::cursor::EventCursor;
use crate::handlers::records::item::{RecordItem, CSV_HEADER};
use crate::handlers::records::{admit, conversation_param, limit_param, RecordsState};
use crate::identity::Role;
use crate::platform::clock;
use crate::platform::error::ApiError;
use crate::platform::http::{json_response, query_param, RequestContext};

/// Items without a `limit`, and the most one page may ask for.
pub const DEFAULT_TRANSCRIPT_LIMIT: usize = 100;
pub const MAX_TRANSCRIPT_LIMIT: usize = 1000;
/// The header that carries the next cursor of an NDJSON or CSV page.
pub const NEXT_CURSOR_HEADER: &str = "x-next-cursor";

/// How a transcript page is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
    Csv,
}

impl Format {
    fn of_query(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw {
            None | Some("json") => Ok(Format::Json),
            Some("ndjson") => Ok(Format::Ndjson),
            Some("csv") => Ok(Format::Csv),
            Some(_) => Err(ApiError::bad_request(
                "invalid_format",
                "format must be json, ndjson or csv",
            )),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TranscriptBody<'a> {
    conversation_id: &'a str,
    items: &'a [RecordItem<'a>],
    cursor: &'a str,
    /// When the conversation was erased; `null`: never.
    erased_at: Option<&'a str>,
}

pub(super) async fn transcript(
    state: &RecordsState,
    req: &Request,
    ctx: &RequestContext,
) -> Result<Response<Body>, ApiError> {
    let conversation_id = conversation_param(req)?;
    let format = Format::of_query(query_param(req, "format")?.as_deref())?;
    let limit = limit_param(req, DEFAULT_TRANSCRIPT_LIMIT, MAX_TRANSCRIPT_LIMIT)?;
    let cursor = query_param(req, "after")?
        .filter(|raw| !raw.is_empty())
        .map(|raw| EventCursor::parse(&raw))
        .transpose()
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_cursor",
                "after must be a cursor returned by this endpoint",
            )
        })?;
    admit(state, req, ctx, &[Role::Admin, Role::Service]).await?;
    let now_secs = clock::now_ms().div_euclid(1000);
    let (entries, tombstone) = tokio::join!(
        state.archive.after(
            &conversation_id,
            cursor.as_ref().map(EventCursor::key),
            limit,
            now_secs,
        ),
        state.archive.tombstone(&conversation_id),
    );
    let (entries, tombstone) = entries
        .and_then(|entries| Ok((entries, tombstone?)))
        .map_err(ApiError::record_unavailable)?;
    let next = entries
        .last()
        .map(EventCursor::of)
        .or(cursor)
        .map(|c| c.encode())
        .unwrap_or_default();
    let items: Vec<RecordItem<'_>> = entries.iter().map(RecordItem::of).collect();
    tracing::info!(request_id = %ctx.request_id, items = items.len(), ?format, "transcript page served");
    match format {
        Format::Json => Ok(json_response(
            StatusCode::OK,
            &TranscriptBody {
                conversation_id: &conversation_id,
                items: &items,
                cursor: &next,
                erased_at: tombstone.as_ref().map(|t| t.erased_at.as_str()),
            },
        )),
        Format::Ndjson => {
            let mut text = String::new();
            for item in &items {
                text.push_str(&serde_json::to_string(item).map_err(ApiError::internal)?);
                text.push('\n');
            }
            Ok(text_response(text, "application/x-ndjson", &next))
        }
        Format::Csv => Ok(text_response(
            csv(&items)?,
            "text/csv; charset=utf-8",
            &next,
        )),
    }
}

/// The items as CSV: a header row, then one row per item.
fn csv(items: &[RecordItem<'_>]) -> Result<String, ApiError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(CSV_HEADER)
        .map_err(ApiError::internal)?;
    for item in items {
        let fragments = item.fragments_json();
        writer
            .write_record(item.csv_row(&fragments))
            .map_err(ApiError::internal)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| ApiError::internal(e.into_error()))?;
    String::from_utf8(bytes).map_err(ApiError::internal)
}

fn text_response(text: String, content_type: &'static str, next: &str) -> Response<Body> {
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    if let Ok(value) = HeaderValue::from_str(next) {
        headers.insert(NEXT_CURSOR_HEADER, value);
    }
    response
}
