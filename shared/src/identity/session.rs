//! The chat session (cookie `__Host-chat_session`, set when `resume` redeems a link): an
//! HS256 JWT signed with `RESUME_TOKEN_SECRET`, audience `chat-session`, claims
//! `conversationId` and `email`. A session is never a bearer token nor the reverse: they
//! are signed with different secrets, and each requires what the other lacks.

use std::time::Duration;

use http::header::COOKIE;
use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::identity::caller::Caller;
use crate::identity::email::EmailAddress;
use crate::identity::ids::identifier;
use crate::identity::jwt::{decode, invalid_token, CLOCK_LEEWAY_SECONDS, SESSION_AUDIENCE};
use crate::platform::clock::unix_seconds;
use crate::platform::env::Secret;
use crate::platform::error::ApiError;

/// The cookie `resume` sets once a resume link is redeemed.
pub const SESSION_COOKIE: &str = "__Host-chat_session";

/// Verifies chat session tokens; the key and the validation rules are built once.
pub struct SessionVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl SessionVerifier {
    pub fn new(resume_secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = CLOCK_LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_audience(&[SESSION_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        SessionVerifier {
            key: DecodingKey::from_secret(resume_secret.expose().as_bytes()),
            validation,
        }
    }

    /// Verifies a chat session token into a [`Caller::Session`], with its expiry (Unix
    /// seconds).
    pub fn verify(&self, token: &str) -> Result<(Caller, u64), ApiError> {
        #[derive(Deserialize)]
        struct Claims {
            #[serde(rename = "conversationId")]
            conversation_id: String,
            email: String,
            role: Option<IgnoredAny>,
            exp: f64,
            iat: Option<f64>,
        }
        let claims: Claims = decode(token, &self.key, &self.validation)?;
        if claims.role.is_some() || EmailAddress::parse(&claims.email).is_err() {
            return Err(invalid_token());
        }
        identifier(&claims.conversation_id, "conversationId")?;
        Ok((
            Caller::Session {
                conversation_id: claims.conversation_id,
                email: claims.email,
                // Every session this backend issues carries `iat`; one without it is
                // treated as issued at the epoch, so any erasure refuses it.
                issued_at: claims.iat.unwrap_or(0.0) as u64,
            },
            claims.exp as u64,
        ))
    }
}

/// Mints chat session tokens for the `__Host-chat_session` cookie; the key is built
/// once, at cold start.
pub struct SessionIssuer {
    key: EncodingKey,
}

impl SessionIssuer {
    pub fn new(secret: &Secret) -> Self {
        SessionIssuer {
            key: EncodingKey::from_secret(secret.expose().as_bytes()),
        }
    }

    /// A session token for `conversation_id` and `email`, valid for `ttl`.
    pub fn issue(
        &self,
        conversation_id: &str,
        email: &str,
        ttl: Duration,
    ) -> Result<String, ApiError> {
        #[derive(Serialize)]
        struct Claims<'a> {
            #[serde(rename = "conversationId")]
            conversation_id: &'a str,
            email: &'a str,
            aud: &'static str,
            iat: u64,
            exp: u64,
        }
        identifier(conversation_id, "conversationId")?;
        EmailAddress::parse(email)?;
        let iat = unix_seconds();
        let claims = Claims {
            conversation_id,
            email,
            aud: SESSION_AUDIENCE,
            iat,
            exp: iat.saturating_add(ttl.as_secs().max(1)),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(ApiError::internal)
    }
}

/// The session token in the `Cookie` header(s), if any. Tolerates several `Cookie`
/// headers, API Gateway's `;`-joined form, stray spaces, quoted values and other
/// cookies that are not UTF-8.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b';'))
        .filter_map(|pair| std::str::from_utf8(pair).ok())
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim() == SESSION_COOKIE)
        .map(|(_, value)| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
        })
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        type Case<'a> = (&'a [(&'static str, &'a [u8])], Option<&'a str>);
        let cases: &[Case] = &[
            (&[("cookie", b"__Host-chat_session=abc")], Some("abc")),
            (
                &[("cookie", b"a=1;__Host-chat_session=abc;b=2")],
                Some("abc"),
            ),
            (
                &[("cookie", b"a=1; __Host-chat_session = \"abc\" ; b=2")],
                Some("abc"),
            ),
            (
                &[("cookie", b"a=1"), ("cookie", b"__Host-chat_session=abc")],
                Some("abc"),
            ),
            (
                &[("cookie", b"x=\xff\xfe; __Host-chat_session=abc")],
                Some("abc"),
            ),
            (&[("cookie", b"chat_session=abc")], None),
            (&[("cookie", b"__Host-chat_session=")], None),
            (&[("cookie", b"__Host-chat_sessionX=abc")], None),
            (&[("cookie", b"x__Host-chat_session=abc")], None),
            (&[], None),
        ];
        for (pairs, expected) in cases {
            assert_eq!(session_cookie(&headers(pairs)), *expected, "{pairs:?}");
        }
    }
}
