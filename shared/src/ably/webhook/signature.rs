//! Ably webhook signatures: `X-Ably-Signature` = base64(HMAC-SHA256(key secret, raw body)).
//!
//! Verified over the exact bytes received, before anything parses them. The seed design's
//! lowercase-hex digest is accepted too. Comparison is constant-time (`Mac::verify_slice`).
//! The verifier is built once from the configured keys, with each key's HMAC schedule.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ably::config::WebhookKeys;
use crate::ably::credentials::keyed_hmac;
use crate::platform::error::ApiError;

type HmacSha256 = Hmac<Sha256>;

pub const SIGNATURE_HEADER: &str = "x-ably-signature";
pub const KEY_HEADER: &str = "x-ably-key";

/// Why a webhook's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Ably-Signature` header.
    #[error("no signature")]
    Missing,
    /// A header that is not one SHA-256 digest in base64 or lowercase hex.
    #[error("malformed signature")]
    Malformed,
    /// Several keys are configured and `X-Ably-Key` names none of them (nor may the
    /// legacy unnamed secret stand in): refused before any HMAC.
    #[error("no or unknown X-Ably-Key")]
    UnknownKey,
    /// A well-formed signature that the request's key did not produce for this body.
    #[error("signature does not match")]
    Mismatch,
}

impl From<SignatureError> for ApiError {
    fn from(_: SignatureError) -> Self {
        // The reason is logged, not told: the answer is the same whatever was wrong.
        ApiError::unauthorized("invalid_signature", "Invalid signature")
    }
}

/// Checks webhook signatures against the configured keys.
#[derive(Clone)]
pub struct WebhookVerifier {
    /// `(key name, keyed HMAC)`; the name is empty for the legacy single secret.
    keys: Vec<(String, HmacSha256)>,
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field(
                "keys",
                &self.keys.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl WebhookVerifier {
    pub fn new(keys: &WebhookKeys) -> Self {
        WebhookVerifier {
            keys: keys
                .keys
                .iter()
                .map(|(name, secret)| (name.clone(), keyed(secret.expose())))
                .collect(),
        }
    }

    /// Checks `signature` over `body` with exactly one key: the one `key_name` names;
    /// else the only key; else, for a name that is not configured, the legacy unnamed
    /// secret. With several keys and no usable name the request is refused before any
    /// HMAC, so an unsigned flood costs at most one HMAC per request, whatever the keys.
    pub fn verify(
        &self,
        key_name: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let presented = signature.ok_or(SignatureError::Missing)?;
        let expected = decode_signature(presented).ok_or(SignatureError::Malformed)?;
        let keyed = self
            .candidate(key_name.map(str::trim).filter(|n| !n.is_empty()))
            .ok_or(SignatureError::UnknownKey)?;
        let mut mac = keyed.clone();
        mac.update(body);
        mac.verify_slice(&expected)
            .map_err(|_| SignatureError::Mismatch)
    }

    /// The one key a request is checked with (see [`Self::verify`]).
    fn candidate(&self, name: Option<&str>) -> Option<&HmacSha256> {
        let named = |wanted: &str| self.keys.iter().find(|(n, _)| n == wanted);
        let found = match (name, self.keys.as_slice()) {
            (Some(name), _) if named(name).is_some() => named(name),
            (_, [only]) => Some(only),
            (Some(_), _) => named(""),
            (None, _) => None,
        };
        found.map(|(_, keyed)| keyed)
    }
}

fn keyed(secret: &str) -> HmacSha256 {
    keyed_hmac(secret.as_bytes())
}

/// Decodes a presented signature: 44-character padded base64 or 64 lowercase hex digits,
/// each exactly one SHA-256 digest long. Anything else is not a signature.
fn decode_signature(presented: &str) -> Option<[u8; 32]> {
    let presented = presented.trim();
    let bytes = if presented.len() == 64
        && presented
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        hex::decode(presented).ok()?
    } else if presented.len() == 44 {
        base64::engine::general_purpose::STANDARD
            .decode(presented)
            .ok()?
    } else {
        return None;
    };
    bytes.try_into().ok()
}

/// The signature Ably sends for `body` signed with `secret` (for tools and tests that
/// play Ably's part).
#[cfg(any(test, feature = "test-support"))]
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = keyed(secret);
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The seed design's lowercase-hex form of the same digest.
#[cfg(any(test, feature = "test-support"))]
pub fn sign_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = keyed(secret);
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::env::Secret;

    fn verifier(entries: &[(&str, &str)]) -> WebhookVerifier {
        WebhookVerifier::new(&WebhookKeys {
            keys: entries
                .iter()
                .map(|(n, s)| ((*n).to_owned(), Secret::new(*s)))
                .collect(),
        })
    }

    const BODY: &[u8] = br#"{"items":[]}"#;

    #[test]
    fn base64_and_hex_signatures_verify() {
        let k = verifier(&[("app.key", "secret")]);
        assert_eq!(
            k.verify(Some("app.key"), Some(&sign("secret", BODY)), BODY),
            Ok(())
        );
        assert_eq!(
            k.verify(Some("app.key"), Some(&sign_hex("secret", BODY)), BODY),
            Ok(())
        );
        assert_eq!(k.verify(None, Some(&sign("secret", BODY)), BODY), Ok(()));
    }

    #[test]
    fn wrong_missing_truncated_or_malformed_signatures_fail() {
        let k = verifier(&[("app.key", "secret")]);
        let good = sign("secret", BODY);
        let hex_good = sign_hex("secret", BODY);
        for (bad, why) in [
            ("".to_owned(), SignatureError::Malformed),
            ("   ".to_owned(), SignatureError::Malformed),
            (good[..43].to_owned(), SignatureError::Malformed),
            (good[..20].to_owned(), SignatureError::Malformed),
            (sign("other", BODY), SignatureError::Mismatch),
            (hex_good.to_uppercase(), SignatureError::Malformed),
            (hex_good[..63].to_owned(), SignatureError::Malformed),
            (format!("{good}x"), SignatureError::Malformed),
            (
                "not a signature at all, not at all, no no no".to_owned(),
                SignatureError::Malformed,
            ),
        ] {
            assert_eq!(
                k.verify(Some("app.key"), Some(&bad), BODY),
                Err(why),
                "{bad:?}"
            );
        }
        assert_eq!(
            k.verify(Some("app.key"), None, BODY),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            k.verify(Some("app.key"), Some(&good), b"{\"items\":[] }"),
            Err(SignatureError::Mismatch)
        );
        let refused = ApiError::from(SignatureError::Mismatch);
        assert_eq!(
            (refused.status().as_u16(), refused.code()),
            (401, "invalid_signature")
        );
    }

    #[test]
    fn the_named_key_is_used_and_rotation_keys_all_work() {
        let k = verifier(&[("app.new", "s-new"), ("app.old", "s-old"), ("", "legacy")]);
        let check = |name, secret| k.verify(Some(name), Some(&sign(secret, BODY)), BODY);
        assert_eq!(check("app.old", "s-old"), Ok(()));
        assert_eq!(check("app.new", "s-new"), Ok(()));
        // Naming one key and signing with another fails.
        assert_eq!(check("app.new", "s-old"), Err(SignatureError::Mismatch));
        // An unknown key name may only be the legacy unnamed secret's.
        assert_eq!(check("app.gone", "legacy"), Ok(()));
        assert_eq!(check("app.gone", "s-new"), Err(SignatureError::Mismatch));
        assert_eq!(
            verifier(&[]).verify(None, Some(&sign("legacy", BODY)), BODY),
            Err(SignatureError::UnknownKey)
        );
    }

    #[test]
    fn with_several_keys_a_request_must_name_one_and_is_checked_with_that_one_only() {
        let k = verifier(&[("app.new", "s-new"), ("app.old", "s-old")]);
        for name in [None, Some(""), Some("app.gone")] {
            assert_eq!(
                k.verify(name, Some(&sign("s-new", BODY)), BODY),
                Err(SignatureError::UnknownKey),
                "{name:?}"
            );
        }
        // One key: it needs no name.
        let one = verifier(&[("app.key", "secret")]);
        assert_eq!(one.verify(None, Some(&sign("secret", BODY)), BODY), Ok(()));
        assert_eq!(
            one.verify(Some("app.other"), Some(&sign("secret", BODY)), BODY),
            Ok(())
        );
    }
}
