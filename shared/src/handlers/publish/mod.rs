//! `POST /api/ably/publish`: publishes for an authenticated caller, only on channels it
//! owns and only the events its role may send, idempotently and with retries; and changes
//! (updates, deletes, appends to) a message the caller published (see [`change`]).
//!
//! Body: `{"channelName", "eventName", "data", "idempotencyKey"?}`. The message id is
//! `<base>:0` where the base is derived from the caller, the channel and the
//! idempotency key (so a retried request is de-duplicated by Ably), or random. With
//! `"action": "message.update" | "message.delete" | "message.append"` and `"serial"`, the
//! body changes that message instead.

use std::collections::BTreeMap;
use std::time::Duration;

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::ably::{message_id_base, ChangeAction, OutboundMessage};
use crate::channels::{may_publish, ChannelName};
use crate::events::time::iso_millis;
use crate::identity::Caller;
use crate::platform::clock;
use crate::platform::error::ApiError;
use crate::platform::http::{
    deadline, json_response, parse_json, serve, RequestContext, Route, Service,
};
use crate::platform::metrics::{self, Metric};

pub mod change;
mod state;

pub use change::ValidChange;
pub use state::{PublishConfig, PublishState};

/// The metrics `ably-publish` emits (namespace `AblyChat`, dimension `Function` =
/// `ably-publish`): retries Ably needed, a load signal rather than a failure.
pub const METRICS: [&str; 1] = ["publish_retries"];

/// Largest `data`, serialised.
pub const MAX_DATA_BYTES: usize = 64 * 1024;
const MAX_EVENT_NAME: usize = 64;
const MAX_IDEMPOTENCY_KEY: usize = 256;
/// Without a Lambda deadline (local runs), the publish budget.
const DEFAULT_BUDGET: Duration = Duration::from_secs(10);

pub const SERVICE: Service = Service {
    name: "ably-publish",
    routes: &[Route {
        path: "/api/ably/publish",
        methods: &["POST"],
    }],
    // 64 KiB of message data plus the envelope around it.
    max_body_bytes: 80 * 1024,
};

pub async fn handle(state: &PublishState, req: Request) -> Response<Body> {
    serve(&SERVICE, &state.config.http, req, |req, ctx| {
        publish(state, req, ctx)
    })
    .await
}

/// The request body. `data` stays the caller's JSON text, borrowed from the body: it is
/// checked for syntax while parsing and forwarded to Ably as it is, never built into a
/// tree and serialised again.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublishBody<'a> {
    channel_name: String,
    /// Required for a publish; a change keeps the message's name without it.
    event_name: Option<String>,
    /// `Some` whenever the key is present, `null` included.
    #[serde(default, borrow, deserialize_with = "present")]
    data: Option<&'a RawValue>,
    idempotency_key: Option<String>,
    /// Absent or `message.create`: a publish; `message.update`, `message.delete`,
    /// `message.append`: a change of the message `serial`.
    action: Option<String>,
    serial: Option<String>,
    /// The new version's description and metadata (changes only).
    description: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// A publish request that passed every check; `data` borrows from the request body.
#[derive(Debug)]
pub struct ValidPublish<'a> {
    pub channel: ChannelName,
    pub channel_name: String,
    pub event_name: String,
    pub data: &'a RawValue,
    pub id_base: String,
    pub client_id: String,
}

/// A valid request: a new message, or a change of one.
#[derive(Debug)]
pub enum Valid<'a> {
    Publish(ValidPublish<'a>),
    Change(ValidChange<'a>),
}

/// Validates a body for `caller`, a publish or a change (by its `action`): shapes and
/// sizes (400/413), then ownership and the event rules (403). Pure.
pub fn validate_request<'a>(caller: &Caller, body: &'a [u8]) -> Result<Valid<'a>, ApiError> {
    let body: PublishBody<'a> = parse_json(body)?;
    match body.action.as_deref() {
        None | Some("message.create") => validate_publish(caller, body).map(Valid::Publish),
        Some(name) => match ChangeAction::from_name(name) {
            Some(action) => change::validate(caller, body, action).map(Valid::Change),
            None => Err(ApiError::bad_request(
                "invalid_action",
                "action must be message.create, message.update, message.delete or message.append",
            )),
        },
    }
}

/// Validates a publish body for `caller`: shapes and sizes (400/413), then ownership and
/// the event rules (403), then the idempotency key (400); a change is refused (400).
/// Pure, so it is benchmarked on its own.
pub fn validate<'a>(caller: &Caller, body: &'a [u8]) -> Result<ValidPublish<'a>, ApiError> {
    match validate_request(caller, body)? {
        Valid::Publish(publish) => Ok(publish),
        Valid::Change(_) => Err(ApiError::bad_request(
            "invalid_action",
            "a change of a message is not a publish",
        )),
    }
}

fn validate_publish<'a>(
    caller: &Caller,
    body: PublishBody<'a>,
) -> Result<ValidPublish<'a>, ApiError> {
    if body.serial.is_some() {
        return Err(ApiError::bad_request(
            "invalid_serial",
            "serial names the message a change applies to: only with action message.update, message.delete or message.append",
        ));
    }
    if body.description.is_some() || body.metadata.is_some() {
        return Err(ApiError::bad_request(
            "invalid_version",
            "description and metadata describe a change: only with action message.update, message.delete or message.append",
        ));
    }
    let data = body
        .data
        .ok_or_else(|| ApiError::bad_request("invalid_body", "data is required"))?;
    let event_name = body
        .event_name
        .ok_or_else(|| ApiError::bad_request("invalid_body", "eventName is required"))?;
    check_event_name(&event_name)?;
    let channel = ChannelName::parse(&body.channel_name)?;
    check_data_size(data)?;
    may_publish(caller, &channel, &event_name)?;
    let id_base = match body.idempotency_key {
        Some(key)
            if key.is_empty()
                || key.len() > MAX_IDEMPOTENCY_KEY
                || key.chars().any(char::is_control) =>
        {
            return Err(ApiError::bad_request(
                "invalid_idempotency_key",
                "idempotencyKey must be 1 to 256 printable characters",
            ));
        }
        // Scoped to the caller and channel, so one caller's key never collides with another's.
        Some(key) => message_id_base(Some(&format!(
            "{}\n{}\n{}",
            caller.id_for_rate_limit(),
            body.channel_name,
            key
        ))),
        None => message_id_base(None),
    };
    Ok(ValidPublish {
        channel,
        channel_name: body.channel_name,
        event_name,
        data,
        id_base,
        client_id: caller.client_id(),
    })
}

/// 400 `invalid_event` unless 1 to 64 characters.
fn check_event_name(event_name: &str) -> Result<(), ApiError> {
    if event_name.is_empty() || event_name.len() > MAX_EVENT_NAME {
        return Err(ApiError::bad_request(
            "invalid_event",
            "eventName must be 1 to 64 characters",
        ));
    }
    Ok(())
}

/// 413 `data_too_large` past [`MAX_DATA_BYTES`] of JSON text: the bytes Ably receives,
/// `data` exactly as the caller sent it.
fn check_data_size(data: &RawValue) -> Result<(), ApiError> {
    let size = data.get().len();
    if size > MAX_DATA_BYTES {
        return Err(ApiError::payload_too_large(
            "data_too_large",
            format!("data is {size} bytes of JSON; at most {MAX_DATA_BYTES} are accepted"),
        ));
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PublishResponse<'a> {
    success: bool,
    channel_name: &'a str,
    message_id: &'a str,
    /// The message's serial, when Ably's answer carried one.
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<&'a str>,
    timestamp: String,
}

async fn publish(
    state: &PublishState,
    req: Request,
    ctx: RequestContext,
) -> Result<Response<Body>, ApiError> {
    let caller = state.auth.authenticate(&ctx.method, req.headers())?;
    ctx.set_caller(caller.id_for_rate_limit());
    let valid = validate_request(&caller, req.body().as_ref())?;
    state.limiter.check(&caller.id_for_rate_limit()).await?;
    crate::handlers::erased::refuse_erased_session(
        &state.erasures,
        &caller,
        ApiError::record_unavailable,
    )
    .await?;

    let until = deadline(&req, Duration::ZERO, DEFAULT_BUDGET);
    let valid = match valid {
        Valid::Publish(valid) => valid,
        Valid::Change(valid) => return change::apply(state, &caller, valid, until).await,
    };
    let message =
        OutboundMessage::new(&valid.event_name, valid.data).with_client_id(&valid.client_id);
    let receipt = state
        .ably
        .publish_with_id_base(&valid.channel_name, &valid.id_base, &[message], until)
        .await?;
    count_retries(receipt.attempts);
    let message_id = receipt
        .message_ids
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    Ok(json_response(
        StatusCode::OK,
        &PublishResponse {
            success: true,
            channel_name: &valid.channel_name,
            message_id,
            serial: receipt.serials.first().and_then(Option::as_deref),
            timestamp: iso_millis(clock::now_ms()).unwrap_or_default(),
        },
    ))
}

/// The retry metric: attempts past the first.
fn count_retries(attempts: u32) {
    if attempts > 1 {
        metrics::emit(
            SERVICE.name,
            &[Metric::count(METRICS[0], (attempts - 1) as usize)],
        );
    }
}
