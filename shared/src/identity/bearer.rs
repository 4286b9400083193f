//! Bearer JWTs (`Authorization: Bearer <jwt>`): HS256 with `JWT_SECRET` (algorithm
//! pinned), `exp` required, `nbf` checked, 60 s leeway, `iss`/`aud` when configured.
//! Claims `userId` (or `sub`), `role`, optional `conversations`.
//!
//! A bearer token carrying any unconfigured `aud` (so `chat-session` and `chat-resume`
//! tokens), a `conversationId` or no `role` is refused.

use http::header::AUTHORIZATION;
use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::identity::caller::{Caller, Role};
use crate::identity::ids::identifier;
use crate::identity::jwt::{
    decode, invalid_token, CLOCK_LEEWAY_SECONDS, RESUME_AUDIENCE, SESSION_AUDIENCE,
};
use crate::platform::env::{Env, Secret};
use crate::platform::error::ApiError;

/// Verification settings for callers' bearer JWTs.
#[derive(Debug, Clone, Default)]
pub struct JwtConfig {
    pub secret: Secret,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

impl JwtConfig {
    pub fn from_env(env: &mut Env) -> Self {
        let config = JwtConfig {
            secret: env.secret("JWT_SECRET", 32),
            issuer: env.optional("JWT_ISSUER"),
            audience: env.optional("JWT_AUDIENCE"),
        };
        // These audiences mark chat sessions and resume links, which are never bearer tokens.
        if matches!(
            config.audience.as_deref(),
            Some(SESSION_AUDIENCE | RESUME_AUDIENCE)
        ) {
            env.problem("JWT_AUDIENCE must not be chat-session or chat-resume");
        }
        config
    }
}

/// Verifies bearer JWTs; the key and the validation rules are built once.
pub struct BearerVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl BearerVerifier {
    pub fn new(jwt: &JwtConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = CLOCK_LEEWAY_SECONDS;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &jwt.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        // Without a configured audience the crate refuses every token that carries an
        // `aud`, which keeps `chat-session` and `chat-resume` tokens out.
        if let Some(audience) = &jwt.audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        BearerVerifier {
            key: DecodingKey::from_secret(jwt.secret.expose().as_bytes()),
            validation,
        }
    }

    /// The bearer JWT of the `Authorization` header and when it expires (Unix seconds);
    /// 401 without one. Never the cookie.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<(Caller, u64), ApiError> {
        let mut authorization = headers.get_all(AUTHORIZATION).iter();
        let value = authorization.next().ok_or_else(|| {
            ApiError::unauthorized("unauthorized", "Authentication required: a bearer token")
        })?;
        if authorization.next().is_some() {
            return Err(invalid_token());
        }
        let token = bearer_token(value.as_bytes()).ok_or_else(|| {
            ApiError::unauthorized("unauthorized", "Expected Authorization: Bearer <token>")
        })?;
        self.verify_until(token)
    }

    /// Verifies a bearer JWT into a [`Caller::User`].
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        self.verify_until(token).map(|(caller, _)| caller)
    }

    /// [`Self::verify`], with the token's expiry (Unix seconds).
    pub fn verify_until(&self, token: &str) -> Result<(Caller, u64), ApiError> {
        #[derive(Deserialize)]
        struct Claims {
            #[serde(rename = "userId")]
            user_id: Option<String>,
            sub: Option<String>,
            role: Option<Role>,
            conversations: Option<Vec<String>>,
            #[serde(rename = "conversationId")]
            conversation_id: Option<IgnoredAny>,
            exp: f64,
        }
        let claims: Claims = decode(token, &self.key, &self.validation)?;
        if claims.conversation_id.is_some() {
            // Session-shaped: never a bearer token, whatever else it says.
            return Err(invalid_token());
        }
        let role = claims.role.ok_or_else(invalid_token)?;
        let user_id = claims.user_id.or(claims.sub).ok_or_else(invalid_token)?;
        identifier(&user_id, "userId")?;
        let conversations = claims.conversations.unwrap_or_default();
        for conversation in &conversations {
            identifier(conversation, "conversations")?;
        }
        Ok((
            Caller::User {
                user_id,
                role,
                conversations,
            },
            claims.exp as u64,
        ))
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer_token(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        assert_eq!(bearer_token(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer_token(b"bearer  abc "), Some("abc"));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"abc"), None);
    }
}
