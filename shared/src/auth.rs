//! Who is calling: a bearer JWT or the chat session cookie, verified into a [`Caller`].
//!
//! - **Bearer JWT** (`Authorization: Bearer <jwt>`): HS256 with `JWT_SECRET` (algorithm
//!   pinned), `exp` required, `nbf` checked, 60 s leeway, `iss`/`aud` when configured.
//!   Claims `userId` (or `sub`), `role`, optional `conversations`.
//! - **Chat session** (cookie `__Host-chat_session`, set by `resume`): HS256 with
//!   `RESUME_TOKEN_SECRET`, audience `chat-session`, claims `conversationId` and `email`.
//!
//! The two never stand in for each other: they are signed with different secrets, a
//! session requires the `chat-session` audience (a resume link's `chat-resume` is
//! refused), and a bearer token carrying any unconfigured `aud`, a `conversationId` or
//! no `role` is refused. Tokens over 8 KiB are refused before anything is decoded.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{AUTHORIZATION, COOKIE};
use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::Request;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::config::{JwtConfig, Secret};
use crate::error::ApiError;
use crate::ids::identifier;

/// The cookie `resume` sets once a resume link is redeemed.
pub const SESSION_COOKIE: &str = "__Host-chat_session";
/// Audience of chat session tokens.
pub const SESSION_AUDIENCE: &str = "chat-session";
/// Audience of resume-link tokens; such a token is neither a session nor a bearer token.
pub const RESUME_AUDIENCE: &str = "chat-resume";
/// Longest token looked at; anything longer is refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew tolerated on `exp` and `nbf`.
pub const CLOCK_LEEWAY_SECONDS: u64 = 60;

/// A caller's role, from the bearer JWT's `role` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Broker,
    Admin,
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Broker => "broker",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }

    /// Broker, admin and service act for the business rather than for one customer.
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Customer)
    }
}

/// An authenticated caller. Every id in it is a valid identifier (see [`crate::ids`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A bearer JWT.
    User {
        user_id: String,
        role: Role,
        /// Conversations a customer may use (`conversations` claim); empty when absent.
        conversations: Vec<String>,
    },
    /// A chat session cookie: a customer without an account, bound to one conversation.
    Session {
        conversation_id: String,
        email: String,
    },
}

impl Caller {
    /// The Ably `clientId`: the user id, or `customer-{conversationId}` for a session.
    pub fn client_id(&self) -> String {
        match self {
            Caller::User { user_id, .. } => user_id.clone(),
            Caller::Session {
                conversation_id, ..
            } => format!("customer-{conversation_id}"),
        }
    }

    /// The key rate limits count under; also the caller id in the request log line.
    /// Users and sessions live in different namespaces so that neither can exhaust the other.
    pub fn id_for_rate_limit(&self) -> String {
        match self {
            Caller::User { user_id, .. } => format!("user:{user_id}"),
            Caller::Session {
                conversation_id, ..
            } => format!("session:{conversation_id}"),
        }
    }

    /// The JWT role; a session has none (it is treated as a customer).
    pub fn role(&self) -> Option<Role> {
        match self {
            Caller::User { role, .. } => Some(*role),
            Caller::Session { .. } => None,
        }
    }

    /// Broker, admin or service.
    pub fn is_staff(&self) -> bool {
        self.role().is_some_and(Role::is_staff)
    }
}

/// Verifies bearer JWTs and session tokens; keys and validation rules are built once.
pub struct Authenticator {
    bearer_key: DecodingKey,
    bearer: Validation,
    /// `None` for functions that take bearer tokens only: every session is refused.
    session: Option<(DecodingKey, Validation)>,
}

impl Authenticator {
    pub fn new(jwt: &JwtConfig, resume_secret: &Secret) -> Self {
        let mut bearer = Validation::new(Algorithm::HS256);
        bearer.leeway = CLOCK_LEEWAY_SECONDS;
        bearer.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &jwt.issuer {
            bearer.set_issuer(&[issuer]);
            required.push("iss");
        }
        // Without a configured audience the crate refuses every token that carries an
        // `aud`, which keeps `chat-session` and `chat-resume` tokens out.
        if let Some(audience) = &jwt.audience {
            bearer.set_audience(&[audience]);
            required.push("aud");
        }
        bearer.set_required_spec_claims(&required);

        let mut session = Validation::new(Algorithm::HS256);
        session.leeway = CLOCK_LEEWAY_SECONDS;
        session.validate_nbf = true;
        session.set_audience(&[SESSION_AUDIENCE]);
        session.set_required_spec_claims(&["exp", "aud"]);

        Authenticator {
            bearer_key: DecodingKey::from_secret(jwt.secret.expose().as_bytes()),
            bearer,
            session: Some((
                DecodingKey::from_secret(resume_secret.expose().as_bytes()),
                session,
            )),
        }
    }

    /// A verifier for functions that accept bearer JWTs only (no chat sessions).
    pub fn bearer_only(jwt: &JwtConfig) -> Self {
        let mut auth = Self::new(jwt, &Secret::default());
        auth.session = None;
        auth
    }

    /// The bearer JWT of the `Authorization` header; 401 without one. Never the cookie.
    pub fn authenticate_bearer(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
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
        self.verify_bearer(token)
    }

    /// The bearer JWT when an `Authorization` header is present (no fallback to the
    /// cookie if it is invalid), else the session cookie; 401 `unauthorized` when neither.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if headers.contains_key(AUTHORIZATION) {
            return self.authenticate_bearer(headers);
        }
        match session_cookie(headers) {
            Some(token) => self.verify_session(token),
            None => Err(ApiError::unauthorized(
                "unauthorized",
                "Authentication required: a bearer token or a chat session",
            )),
        }
    }

    /// Verifies a bearer JWT into a [`Caller::User`].
    pub fn verify_bearer(&self, token: &str) -> Result<Caller, ApiError> {
        #[derive(Deserialize)]
        struct Claims {
            #[serde(rename = "userId")]
            user_id: Option<String>,
            sub: Option<String>,
            role: Option<Role>,
            conversations: Option<Vec<String>>,
            #[serde(rename = "conversationId")]
            conversation_id: Option<IgnoredAny>,
        }
        let claims: Claims = decode(token, &self.bearer_key, &self.bearer)?;
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
        Ok(Caller::User {
            user_id,
            role,
            conversations,
        })
    }

    /// Verifies a chat session token into a [`Caller::Session`].
    pub fn verify_session(&self, token: &str) -> Result<Caller, ApiError> {
        #[derive(Deserialize)]
        struct Claims {
            #[serde(rename = "conversationId")]
            conversation_id: String,
            email: String,
            role: Option<IgnoredAny>,
        }
        let (key, validation) = self.session.as_ref().ok_or_else(invalid_token)?;
        let claims: Claims = decode(token, key, validation)?;
        if claims.role.is_some() || !plausible_email(&claims.email) {
            return Err(invalid_token());
        }
        identifier(&claims.conversation_id, "conversationId")?;
        Ok(Caller::Session {
            conversation_id: claims.conversation_id,
            email: claims.email,
        })
    }
}

/// Authenticates one request; builds the verifier on the spot. Long-lived state should
/// hold an [`Authenticator`] instead.
pub fn authenticate(
    req: &Request,
    jwt: &JwtConfig,
    resume_secret: &Secret,
) -> Result<Caller, ApiError> {
    Authenticator::new(jwt, resume_secret).authenticate(req.headers())
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
        if !plausible_email(email) {
            return Err(ApiError::bad_request(
                "invalid_email",
                "email is not a valid address",
            ));
        }
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

/// Mints one chat session token; long-lived state holds a [`SessionIssuer`] instead.
pub fn issue_session_token(
    secret: &Secret,
    conversation_id: &str,
    email: &str,
    ttl: Duration,
) -> Result<String, ApiError> {
    SessionIssuer::new(secret).issue(conversation_id, email, ttl)
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

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer_token(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn decode<T: serde::de::DeserializeOwned>(
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

fn invalid_token() -> ApiError {
    ApiError::unauthorized("invalid_token", "Invalid or expired token")
}

fn plausible_email(email: &str) -> bool {
    (3..=320).contains(&email.len())
        && email.contains('@')
        && !email.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Seconds since the Unix epoch (0 if the clock is before it), for token `iat`/`exp`.
pub fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        assert_eq!(bearer_token(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer_token(b"bearer  abc "), Some("abc"));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"abc"), None);
    }

    #[test]
    fn callers_name_themselves_for_ably_and_rate_limits() {
        let user = Caller::User {
            user_id: "u1".into(),
            role: Role::Broker,
            conversations: vec![],
        };
        let session = Caller::Session {
            conversation_id: "c1".into(),
            email: "a@b.c".into(),
        };
        assert_eq!(user.client_id(), "u1");
        assert_eq!(user.id_for_rate_limit(), "user:u1");
        assert!(user.is_staff());
        assert_eq!(session.client_id(), "customer-c1");
        assert_eq!(session.id_for_rate_limit(), "session:c1");
        assert!(!session.is_staff());
        assert_eq!(session.role(), None);
    }

    #[test]
    fn a_minted_session_verifies_as_a_session_and_never_as_a_bearer() {
        let resume = Secret::new("resume-secret-0123456789abcdef-0123456789");
        let jwt = JwtConfig {
            secret: resume.clone(),
            issuer: None,
            audience: None,
        };
        // Even with both secrets equal (a misconfiguration), the audience keeps them apart.
        let auth = Authenticator::new(&jwt, &resume);
        let token =
            issue_session_token(&resume, "conv-9", "a@example.com", Duration::from_secs(60))
                .unwrap();
        assert_eq!(
            auth.verify_session(&token).unwrap(),
            Caller::Session {
                conversation_id: "conv-9".into(),
                email: "a@example.com".into()
            }
        );
        assert_eq!(auth.verify_bearer(&token).unwrap_err().status(), 401);
        assert_eq!(
            issue_session_token(&resume, "conv:*", "a@example.com", Duration::from_secs(60))
                .unwrap_err()
                .status(),
            400
        );
    }
}
