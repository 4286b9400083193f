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

use http::header::AUTHORIZATION;
use http::HeaderMap;

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
}

impl Authenticator {
    pub fn new(identity: &IdentityConfig) -> Self {
        Authenticator {
            bearer: BearerVerifier::new(&identity.jwt),
            session: Some(SessionVerifier::new(&identity.resume_secret)),
        }
    }

    /// A verifier for functions that accept bearer JWTs only (no chat sessions).
    pub fn bearer_only(jwt: &JwtConfig) -> Self {
        Authenticator {
            bearer: BearerVerifier::new(jwt),
            session: None,
        }
    }

    /// The bearer JWT of the `Authorization` header; 401 without one. Never the cookie.
    pub fn authenticate_bearer(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        self.bearer.authenticate(headers)
    }

    /// The bearer JWT when an `Authorization` header is present (no fallback to the
    /// cookie if it is invalid), else the session cookie; 401 `unauthorized` when neither.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if headers.contains_key(AUTHORIZATION) {
            return self.bearer.authenticate(headers);
        }
        match session::session_cookie(headers) {
            Some(token) => self.verify_session(token),
            None => Err(ApiError::unauthorized(
                "unauthorized",
                "Authentication required: a bearer token or a chat session",
            )),
        }
    }

    /// Verifies a chat session token into a [`Caller::Session`].
    pub fn verify_session(&self, token: &str) -> Result<Caller, ApiError> {
        match &self.session {
            Some(session) => session.verify(token),
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
        assert_eq!(
            auth.verify_session(&token).unwrap(),
            Caller::Session {
                conversation_id: "conv-9".into(),
                email: "a@example.com".into()
            }
        );
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
