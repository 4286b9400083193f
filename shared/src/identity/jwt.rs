//! What every token this service verifies shares: HS256 only, a size bound checked
//! before decoding, the audiences that keep the three kinds of token apart, and one
//! answer for a refused token.

use jsonwebtoken::{DecodingKey, Validation};

use crate::platform::error::ApiError;

/// Audience of chat session tokens.
pub const SESSION_AUDIENCE: &str = "chat-session";
/// Audience of resume-link tokens; such a token is neither a session nor a bearer token.
pub const RESUME_AUDIENCE: &str = "chat-resume";
/// Longest token looked at; anything longer is refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew tolerated on `exp` and `nbf` of bearer and session tokens.
pub const CLOCK_LEEWAY_SECONDS: u64 = 60;

/// The claims of `token` under `validation`; 401 `invalid_token` for anything refused
/// (the reason goes to the debug log only).
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<T, ApiError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(invalid_token());
    }
    jsonwebtoken::decode::<T>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|e| {
            tracing::debug!(reason = ?e.kind(), "token refused");
            invalid_token()
        })
}

pub(crate) fn invalid_token() -> ApiError {
    ApiError::unauthorized("invalid_token", "Invalid or expired token")
}
