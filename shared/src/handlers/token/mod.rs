//! `POST /api/ably/token`: Ably TokenRequests and Ably JWTs scoped to the caller's channels.
//!
//! Body (optional; JSON, or form-encoded as ably-js sends `authParams` with
//! `authMethod: 'POST'`): `{"conversationId"?, "format"?: "tokenRequest" | "jwt",
//! "ttlSeconds"?: 1..=86400}`. Other fields (e.g. token params ably-js forwards) are
//! ignored: the capability, client id and ttl are decided here, never by the client.

use std::time::Duration;

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::channels::capability::Capability;
use crate::channels::ChannelName;
use crate::identity::ids::identifier;
use crate::identity::Caller;
use crate::platform::clock;
use crate::platform::error::ApiError;
use crate::platform::http::{
    json_object, json_response, serve, string_field, RequestContext, Route, Service,
};
use crate::platform::realtime::RealtimeRollout;

mod state;

pub use state::{TokenConfig, TokenState};

pub const SERVICE: Service = Service {
    name: "ably-token",
    routes: &[Route {
        path: "/api/ably/token",
        methods: &["POST"],
    }],
    max_body_bytes: 16 * 1024,
};

/// Lifetime of a token when the body names none.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Longest lifetime a caller may ask for.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

pub async fn handle(state: &TokenState, req: Request) -> Response<Body> {
    serve(&SERVICE, &state.config.http, req, |req, ctx| {
        issue(state, req, ctx)
    })
    .await
}

/// What the client receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// An Ably TokenRequest the client exchanges with Ably itself.
    TokenRequest,
    /// An Ably JWT the client uses directly.
    Jwt,
}

/// The request body, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOptions {
    /// Only this conversation, when given.
    pub conversation: Option<ChannelName>,
    pub format: TokenFormat,
    pub ttl: Duration,
}

impl TokenOptions {
    /// Reads a JSON or form-encoded body; an empty body means the defaults.
    pub fn from_request(req: &Request) -> Result<Self, ApiError> {
        let body = req.body().as_ref();
        let form = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        let raw = if body.iter().all(u8::is_ascii_whitespace) {
            RawOptions::default()
        } else if form {
            RawOptions::from_form(body)?
        } else {
            RawOptions::from_json(body)?
        };
        raw.validate()
    }
}

#[derive(Debug, Default)]
struct RawOptions {
    conversation_id: Option<String>,
    format: Option<String>,
    ttl_seconds: Option<u64>,
}

impl RawOptions {
    fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let map = json_object(body)?;
        let ttl_seconds = match map.get("ttlSeconds") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(whole_number(n).ok_or_else(invalid_ttl)?),
            Some(_) => return Err(invalid_ttl()),
        };
        Ok(RawOptions {
            conversation_id: string_field(&map, "conversationId")?,
            format: string_field(&map, "format")?,
            ttl_seconds,
        })
    }

    fn from_form(body: &[u8]) -> Result<Self, ApiError> {
        let text =
            std::str::from_utf8(body).map_err(|_| invalid_body("Form body is not valid UTF-8"))?;
        let mut raw = RawOptions::default();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = form_decode(value)?;
            match form_decode(name)?.as_str() {
                "conversationId" => raw.conversation_id = Some(value),
                "format" => raw.format = Some(value),
                "ttlSeconds" => {
                    raw.ttl_seconds = Some(value.trim().parse().map_err(|_| invalid_ttl())?)
                }
                _ => {}
            }
        }
        Ok(raw)
    }

    fn validate(self) -> Result<TokenOptions, ApiError> {
        let conversation = match self.conversation_id {
            None => None,
            Some(id) => {
                identifier(&id, "conversationId")?;
                Some(ChannelName::Conversation {
                    conversation_id: id,
                })
            }
        };
        let format = match self.format.as_deref() {
            None | Some("tokenRequest") => TokenFormat::TokenRequest,
            Some("jwt") => TokenFormat::Jwt,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "invalid_format",
                    "format must be tokenRequest or jwt",
                ))
            }
        };
        let ttl = match self.ttl_seconds {
            None => DEFAULT_TTL,
            Some(secs) if (1..=MAX_TTL.as_secs()).contains(&secs) => Duration::from_secs(secs),
            Some(_) => return Err(invalid_ttl()),
        };
        Ok(TokenOptions {
            conversation,
            format,
            ttl,
        })
    }
}

/// A non-negative number without a fraction, however it is written (`60`, `60.0`, `6e1`):
/// JSON Schema's `integer`, which is what openapi.yaml promises.
fn whole_number(n: &serde_json::Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        let f = n.as_f64()?;
        // 2^53: beyond it a float no longer names one integer; ttls are far below anyway.
        (f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&f)).then_some(f as u64)
    })
}

fn form_decode(text: &str) -> Result<String, ApiError> {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| invalid_body("Form body is not valid UTF-8"))
}

fn invalid_body(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_body", message)
}

fn invalid_ttl() -> ApiError {
    ApiError::bad_request(
        "invalid_ttl",
        format!(
            "ttlSeconds must be an integer from 1 to {}",
            MAX_TTL.as_secs()
        ),
    )
}

async fn issue(
    state: &TokenState,
    req: Request,
    ctx: RequestContext,
) -> Result<Response<Body>, ApiError> {
    // Before authentication: the answer is the same for every caller and reveals only a
    // deployment-wide switch the redeem answer publishes anyway, and a client whose
    // credentials are stale still learns to poll instead of retrying. No Redis call, no
    // JWT verification, no rate-limit count is spent on it.
    if !state.config.realtime.enabled {
        return Err(realtime_disabled());
    }
    let (caller, valid_until) = state.auth.authenticate_until(&ctx.method, req.headers())?;
    let caller_id = caller.id_for_rate_limit();
    ctx.set_caller(caller_id.clone());
    let options = TokenOptions::from_request(&req)?;
    let caller = within_rollout(
        &caller,
        options.conversation.as_ref(),
        &state.config.realtime,
    )?;
    state.limiter.check(&caller_id).await?;
    crate::handlers::erased::refuse_erased_session(
        &state.erasures,
        &caller,
        ApiError::record_unavailable,
    )
    .await?;

    let capability = match &options.conversation {
        Some(conversation) => Capability::for_channel(&caller, conversation)?,
        None => Capability::for_caller(&caller),
    };
    let now = u64::try_from(clock::now_ms()).unwrap_or(0);
    let ttl = capped_ttl(options.ttl, valid_until, now)?;
    let (capability, client_id) = (capability.to_json(), caller.client_id());
    Ok(match options.format {
        TokenFormat::TokenRequest => json_response(
            StatusCode::OK,
            &state.signer.token_request(capability, client_id, ttl, now),
        ),
        TokenFormat::Jwt => json_response(
            StatusCode::OK,
            &state.signer.jwt(capability, client_id, ttl, now)?,
        ),
    })
}

fn realtime_disabled() -> ApiError {
    ApiError::unavailable(
        "realtime_disabled",
        "Realtime is disabled; poll GET /api/chat/events instead",
    )
}

/// The caller as far as the realtime rollout lets it in. Staff are never held back. A
/// session, or a customer asking for one conversation, outside the rollout is 503
/// `realtime_disabled` (it polls); a customer's token for all its channels leaves out
/// the conversations outside the rollout.
fn within_rollout(
    caller: &Caller,
    asked: Option<&ChannelName>,
    rollout: &RealtimeRollout,
) -> Result<Caller, ApiError> {
    let asked = match asked {
        Some(ChannelName::Conversation { conversation_id }) => Some(conversation_id.as_str()),
        _ => None,
    };
    match caller {
        _ if caller.is_staff() => Ok(caller.clone()),
        // A session only ever gets its own conversation (any other is refused later).
        Caller::Session {
            conversation_id, ..
        } => {
            if rollout.includes(conversation_id) {
                Ok(caller.clone())
            } else {
                Err(realtime_disabled())
            }
        }
        Caller::User {
            user_id,
            role,
            conversations,
        } => match asked {
            Some(conversation) if !rollout.includes(conversation) => Err(realtime_disabled()),
            _ => Ok(Caller::User {
                user_id: user_id.clone(),
                role: *role,
                conversations: conversations
                    .iter()
                    .filter(|c| rollout.includes(c))
                    .cloned()
                    .collect(),
            }),
        },
    }
}

/// The Ably credential's lifetime: what was asked for, but never past the bearer JWT or
/// session it is issued on (`valid_until`, Unix seconds). A credential accepted only
/// within the clock leeway has no time left to give: 401.
fn capped_ttl(asked: Duration, valid_until: u64, now_ms: u64) -> Result<Duration, ApiError> {
    let left_ms = valid_until.saturating_mul(1000).saturating_sub(now_ms);
    if left_ms < 1000 {
        return Err(ApiError::unauthorized(
            "invalid_token",
            "Invalid or expired token",
        ));
    }
    Ok(asked.min(Duration::from_millis(left_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ably_credential_never_outlives_its_source() {
        let hour = Duration::from_secs(3600);
        let now_ms = 1_700_000_000_250;
        // Two minutes left: two minutes, to the millisecond.
        assert_eq!(
            capped_ttl(hour, 1_700_000_120, now_ms).unwrap(),
            Duration::from_millis(119_750)
        );
        // Plenty left: what was asked.
        assert_eq!(capped_ttl(hour, 1_800_000_000, now_ms).unwrap(), hour);
        // Accepted within the leeway only: nothing to give.
        for valid_until in [1_700_000_000, 1_699_999_990, 0] {
            assert_eq!(
                capped_ttl(hour, valid_until, now_ms).unwrap_err().code(),
                "invalid_token"
            );
        }
    }
}
