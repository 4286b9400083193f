//! Resume-link tokens: HS256 JWTs signed with `RESUME_TOKEN_SECRET`, audience
//! `chat-resume`, claims `jti` (160 random bits), `conversationId`, `email`, `iat`, `exp`.
//!
//! Verification pins HS256, requires `exp` and the `chat-resume` audience and allows no
//! clock leeway: a link is a credential and its lifetime is exact. Bearer JWTs (other
//! secret, no such audience) and chat sessions (audience `chat-session`) never pass.
//! Single use is enforced by the caller, which consumes the `jti` in Redis.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::identity::email::EmailAddress;
use crate::identity::ids::{identifier, is_identifier};
use crate::identity::jwt::{MAX_TOKEN_BYTES, RESUME_AUDIENCE};
use crate::platform::clock::unix_seconds;
use crate::platform::env::Secret;
use crate::platform::error::ApiError;

/// Random bytes in a `jti` (hex-encoded, so 40 characters).
const JTI_BYTES: usize = 20;

/// A freshly minted link token.
#[derive(Clone)]
pub struct IssuedLink {
    pub token: String,
    pub jti: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// What a verified link token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeClaims {
    pub jti: String,
    pub conversation_id: String,
    pub email: EmailAddress,
    /// Unix seconds.
    pub expires_at: u64,
    /// When the link was issued (`iat`, Unix seconds; 0 when absent): an erasure of the
    /// conversation refuses every link issued at or before it.
    pub issued_at: u64,
}

#[derive(Serialize)]
struct OutgoingClaims<'a> {
    jti: &'a str,
    #[serde(rename = "conversationId")]
    conversation_id: &'a str,
    email: &'a str,
    aud: &'static str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct IncomingClaims {
    jti: String,
    #[serde(rename = "conversationId")]
    conversation_id: String,
    email: String,
    exp: u64,
    iat: Option<u64>,
}

/// Mints and verifies link tokens; keys and rules are built once.
pub struct ResumeLinks {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// The same rules without the expiry check, to tell "expired" from "invalid".
    ignoring_expiry: Validation,
    ttl: Duration,
}

impl ResumeLinks {
    pub fn new(secret: &Secret, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_audience(&[RESUME_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        let mut ignoring_expiry = validation.clone();
        ignoring_expiry.validate_exp = false;
        ResumeLinks {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            ignoring_expiry,
            ttl,
        }
    }

    /// A link token for `conversation_id` and `email`, valid for the configured ttl.
    pub fn issue(
        &self,
        conversation_id: &str,
        email: &EmailAddress,
    ) -> Result<IssuedLink, ApiError> {
        identifier(conversation_id, "conversationId")?;
        let mut bytes = [0u8; JTI_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let jti = hex::encode(bytes);
        let iat = unix_seconds();
        let exp = iat.saturating_add(self.ttl.as_secs().max(1));
        let claims = OutgoingClaims {
            jti: &jti,
            conversation_id,
            email: email.as_str(),
            aud: RESUME_AUDIENCE,
            iat,
            exp,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)?;
        Ok(IssuedLink {
            token,
            jti,
            expires_at: exp,
        })
    }

    /// The claims of a genuine, unexpired link token; 401 `resume_link_expired` for an
    /// expired one, 401 `invalid_token` for anything else.
    pub fn verify(&self, token: &str) -> Result<ResumeClaims, ApiError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid_link());
        }
        let claims = match self.decode(token, &self.validation) {
            Ok(claims) => claims,
            Err(ErrorKind::ExpiredSignature) => {
                // Only a token that is a genuine link in every other respect is "expired".
                return Err(match self.decode(token, &self.ignoring_expiry) {
                    Ok(claims) if well_formed(&claims) => ApiError::unauthorized(
                        "resume_link_expired",
                        "This resume link has expired",
                    ),
                    _ => invalid_link(),
                });
            }
            Err(_) => return Err(invalid_link()),
        };
        if !well_formed(&claims) {
            return Err(invalid_link());
        }
        let email = EmailAddress::parse(&claims.email).map_err(|_| invalid_link())?;
        Ok(ResumeClaims {
            jti: claims.jti,
            conversation_id: claims.conversation_id,
            email,
            expires_at: claims.exp,
            issued_at: claims.iat.unwrap_or(0),
        })
    }

    fn decode(&self, token: &str, validation: &Validation) -> Result<IncomingClaims, ErrorKind> {
        jsonwebtoken::decode::<IncomingClaims>(token, &self.decoding, validation)
            .map(|data| data.claims)
            .map_err(|e| {
                tracing::debug!(reason = ?e.kind(), "resume link refused");
                e.into_kind()
            })
    }
}

/// Ids that can safely go into a Redis key and a session, as this module mints them.
fn well_formed(claims: &IncomingClaims) -> bool {
    claims.jti.len() >= 2 * 16
        && is_identifier(&claims.jti)
        && is_identifier(&claims.conversation_id)
        && EmailAddress::parse(&claims.email).is_ok()
}

fn invalid_link() -> ApiError {
    ApiError::unauthorized("invalid_token", "Invalid resume link")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> ResumeLinks {
        ResumeLinks::new(
            &Secret::new("resume-secret-0123456789abcdef-0123456789"),
            Duration::from_secs(600),
        )
    }

    #[test]
    fn an_issued_link_verifies_with_its_claims() {
        let links = links();
        let email = EmailAddress::parse("ann@example.com").unwrap();
        let issued = links.issue("conv-1", &email).unwrap();
        assert_eq!(issued.jti.len(), 40);
        let claims = links.verify(&issued.token).unwrap();
        assert_eq!(claims.jti, issued.jti);
        assert_eq!(claims.conversation_id, "conv-1");
        assert_eq!(claims.email, email);
        assert_eq!(claims.expires_at, issued.expires_at);
        assert!(issued.expires_at >= unix_seconds() + 599);
        assert_ne!(links.issue("conv-1", &email).unwrap().jti, issued.jti);
    }

    #[test]
    fn sessions_and_other_secrets_are_not_links() {
        let secret = Secret::new("resume-secret-0123456789abcdef-0123456789");
        let session = crate::identity::session::SessionIssuer::new(&secret)
            .issue("conv-1", "a@b.co", Duration::from_secs(60))
            .unwrap();
        let err = links().verify(&session).unwrap_err();
        assert_eq!((err.status().as_u16(), err.code()), (401, "invalid_token"));

        let other = ResumeLinks::new(
            &Secret::new("another-secret-0123456789abcdef-012345"),
            Duration::from_secs(600),
        );
        let email = EmailAddress::parse("ann@example.com").unwrap();
        let foreign = other.issue("conv-1", &email).unwrap().token;
        assert_eq!(
            links().verify(&foreign).unwrap_err().code(),
            "invalid_token"
        );
        assert_eq!(
            links()
                .verify("x".repeat(9000).as_str())
                .unwrap_err()
                .status(),
            401
        );
    }
}
