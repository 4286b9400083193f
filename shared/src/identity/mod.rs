//! Who is calling: bearer JWTs and the chat session cookie, verified into a [`Caller`];
//! resume-link tokens; the identifiers and email addresses they carry.
//!
//! The three kinds of token never stand in for each other (see [`jwt`]): bearer JWTs are
//! signed with `JWT_SECRET`, sessions and resume links with `RESUME_TOKEN_SECRET` under
//! their own audiences, and tokens over 8 KiB are refused before anything is decoded.

pub mod bearer;
pub mod caller;
pub mod email;
pub mod ids;
pub mod jwt;
pub mod resume_link;
pub mod session;

use http::header::{AUTHORIZATION, ORIGIN};
use http::{HeaderMap, Method};

pub use bearer::{BearerVerifier, JwtConfig};
pub use caller::{Caller, Role};
pub use session::{SessionIssuer, SessionVerifier, SESSION_COOKIE};

use crate::platform::env::{Env, Secret};
use crate::platform::error::ApiError;

/// The secrets of every caller credential: bearer JWTs (`JWT_SECRET`, ...) and chat
/// sessions and resume links (`RESUME_TOKEN_SECRET`).
#[derive(Debug, Clone, Default)]
pub struct IdentityConfig {
    pub jwt: JwtConfig,
    pub resume_secret: Secret,
}

impl IdentityConfig {
    /// Both secrets; `RESUME_TOKEN_SECRET` must differ from `JWT_SECRET`, or anyone
    /// holding one could forge the other's tokens.
    pub fn from_env(env: &mut Env) -> Self {
        let config = IdentityConfig {
            jwt: JwtConfig::from_env(env),
            resume_secret: env.secret("RESUME_TOKEN_SECRET", 32),
        };
        if !config.jwt.secret.expose().is_empty() && config.jwt.secret == config.resume_secret {
            env.problem("RESUME_TOKEN_SECRET must differ from JWT_SECRET");
        }
        config
    }
}

/// Verifies bearer JWTs and session tokens; keys and validation rules are built once.
pub struct Authenticator {
    bearer: BearerVerifier,
    /// `None` for functions that take bearer tokens only: every session is refused.
    session: Option<SessionVerifier>,
    /// `CORS_ORIGIN`: the one browser origin a cookie-authenticated write may come from.
    allowed_origin: Option<String>,
}

impl Authenticator {
    pub fn new(identity: &IdentityConfig) -> Self {
        Authenticator {
            bearer: BearerVerifier::new(&identity.jwt),
            session: Some(SessionVerifier::new(&identity.resume_secret)),
            allowed_origin: None,
        }
    }

    /// A verifier for functions that accept bearer JWTs only (no chat sessions).
    pub fn bearer_only(jwt: &JwtConfig) -> Self {
        Authenticator {
            bearer: BearerVerifier::new(jwt),
            session: None,
            allowed_origin: None,
        }
    }

    /// Cookie-authenticated writes are accepted from this browser origin (`CORS_ORIGIN`)
    /// only, or from a client that sends no `Origin` at all (a non-browser one).
    pub fn with_allowed_origin(mut self, origin: Option<String>) -> Self {
        self.allowed_origin = origin;
        self
    }

    /// The bearer JWT of the `Authorization` header; 401 without one. Never the cookie.
    pub fn authenticate_bearer(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        self.bearer.authenticate(headers).map(|(caller, _)| caller)
    }

    /// The bearer JWT when an `Authorization` header is present (no fallback to the
    /// cookie if it is invalid), else the session cookie; 401 `unauthorized` when neither.
    pub fn authenticate(&self, method: &Method, headers: &HeaderMap) -> Result<Caller, ApiError> {
        self.authenticate_until(method, headers)
            .map(|(caller, _)| caller)
    }

    /// [`Self::authenticate`], with when the credential expires (Unix seconds): nothing
    /// issued on it may outlive that.
    ///
    /// The cookie goes with every request the browser makes, whichever page starts it,
    /// so a cookie-authenticated write whose `Origin` names another origin than the
    /// allowed one is 403 `origin_forbidden` (SameSite=Lax alone lets a cross-site form
    /// or `text/plain` POST through without a preflight).
    pub fn authenticate_until(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<(Caller, u64), ApiError> {
        if headers.contains_key(AUTHORIZATION) {
            return self.bearer.authenticate(headers);
        }
        let Some(token) = session::session_cookie(headers) else {
            return Err(ApiError::unauthorized(
                "unauthorized",
                "Authentication required: a bearer token or a chat session",
            ));
        };
        let Some(session) = &self.session else {
            return Err(jwt::invalid_token());
        };
        let verified = session.verify(token)?;
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let foreign = headers.get_all(ORIGIN).iter().any(|origin| {
            Some(origin.as_bytes()) != self.allowed_origin.as_deref().map(str::as_bytes)
        });
        if !safe && foreign {
            return Err(ApiError::forbidden(
                "origin_forbidden",
                "A chat session is accepted from the app's own origin only",
            ));
        }
        Ok(verified)
    }

    /// Verifies a chat session token into a [`Caller::Session`].
    pub fn verify_session(&self, token: &str) -> Result<Caller, ApiError> {
        match &self.session {
            Some(session) => session.verify(token).map(|(caller, _)| caller),
            None => Err(jwt::invalid_token()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_minted_session_verifies_as_a_session_and_never_as_a_bearer() {
        let resume = Secret::new("resume-secret-0123456789abcdef-0123456789");
        let identity = IdentityConfig {
            jwt: JwtConfig {
                secret: resume.clone(),
                issuer: None,
                audience: None,
            },
            resume_secret: resume.clone(),
        };
        // Even with both secrets equal (a misconfiguration), the audience keeps them apart.
        let auth = Authenticator::new(&identity);
        let sessions = SessionIssuer::new(&resume);
        let token = sessions
            .issue("conv-9", "a@example.com", Duration::from_secs(60))
            .unwrap();
        let Caller::Session {
            conversation_id,
            email,
            issued_at,
        } = auth.verify_session(&token).unwrap()
        else {
            panic!("a session token verifies into a session");
        };
        assert_eq!(
            (conversation_id.as_str(), email.as_str()),
            ("conv-9", "a@example.com")
        );
        assert!(issued_at.abs_diff(crate::platform::clock::unix_seconds()) <= 1);
        assert_eq!(
            BearerVerifier::new(&identity.jwt)
                .verify(&token)
                .unwrap_err()
                .status(),
            401
        );
        assert_eq!(
            sessions
                .issue("conv:*", "a@example.com", Duration::from_secs(60))
                .unwrap_err()
                .status(),
            400
        );
        let bearer_only = Authenticator::bearer_only(&identity.jwt);
        assert_eq!(
            bearer_only.verify_session(&token).unwrap_err().status(),
            401
        );
    }

    #[test]
    fn the_two_secrets_must_differ() {
        let secret = "0123456789abcdef0123456789abcdef";
        let mut env = Env::from_pairs([("JWT_SECRET", secret), ("RESUME_TOKEN_SECRET", secret)]);
        IdentityConfig::from_env(&mut env);
        assert_eq!(
            env.finish().unwrap_err().problems,
            ["RESUME_TOKEN_SECRET must differ from JWT_SECRET"]
        );
    }
}
