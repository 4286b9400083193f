//! Ably webhook signatures: `X-Ably-Signature` = base64(HMAC-SHA256(key secret, raw body)).
//!
//! Verified over the exact bytes received, before anything parses them. The seed design's
//! lowercase-hex digest is accepted too. Comparison is constant-time (`Mac::verify_slice`).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{Secret, WebhookKeys};

type HmacSha256 = Hmac<Sha256>;

pub const SIGNATURE_HEADER: &str = "x-ably-signature";
pub const KEY_HEADER: &str = "x-ably-key";

/// The signature Ably sends for `body` signed with `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(mac(secret, body).finalize().into_bytes())
}

/// The seed design's lowercase-hex form of the same digest.
pub fn sign_hex(secret: &str, body: &[u8]) -> String {
    hex::encode(mac(secret, body).finalize().into_bytes())
}

fn mac(secret: &str, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    mac
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

/// Checks `signature` over `body` against the keys: the one named by `key_name` when it
/// is configured, else every configured secret (legacy single secret, API key).
pub fn verify(
    keys: &WebhookKeys,
    key_name: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> bool {
    let Some(expected) = signature.and_then(decode_signature) else {
        return false;
    };
    let named: Vec<&Secret> = match key_name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => keys
            .keys
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, s)| s)
            .collect(),
        None => Vec::new(),
    };
    let candidates: Vec<&Secret> = if named.is_empty() {
        keys.keys.iter().map(|(_, s)| s).collect()
    } else {
        named
    };
    // Every candidate is checked (no early exit), so timing does not reveal which matched.
    candidates.iter().fold(false, |ok, secret| {
        mac(secret.expose(), body).verify_slice(&expected).is_ok() | ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(entries: &[(&str, &str)]) -> WebhookKeys {
        WebhookKeys {
            keys: entries
                .iter()
                .map(|(n, s)| ((*n).to_owned(), Secret::new(*s)))
                .collect(),
        }
    }

    const BODY: &[u8] = br#"{"items":[]}"#;

    #[test]
    fn base64_and_hex_signatures_verify() {
        let k = keys(&[("app.key", "secret")]);
        assert!(verify(
            &k,
            Some("app.key"),
            Some(&sign("secret", BODY)),
            BODY
        ));
        assert!(verify(
            &k,
            Some("app.key"),
            Some(&sign_hex("secret", BODY)),
            BODY
        ));
        assert!(verify(&k, None, Some(&sign("secret", BODY)), BODY));
    }

    #[test]
    fn wrong_missing_truncated_or_malformed_signatures_fail() {
        let k = keys(&[("app.key", "secret")]);
        let good = sign("secret", BODY);
        let hex_good = sign_hex("secret", BODY);
        for bad in [
            "".to_owned(),
            "   ".to_owned(),
            good[..43].to_owned(),
            good[..20].to_owned(),
            sign("other", BODY),
            hex_good.to_uppercase(),
            hex_good[..63].to_owned(),
            format!("{good}x"),
            "not a signature at all, not at all, no no no".to_owned(),
        ] {
            assert!(!verify(&k, Some("app.key"), Some(&bad), BODY), "{bad:?}");
        }
        assert!(!verify(&k, Some("app.key"), None, BODY));
        assert!(!verify(
            &k,
            Some("app.key"),
            Some(&good),
            b"{\"items\":[] }"
        ));
    }

    #[test]
    fn the_named_key_is_used_and_rotation_keys_all_work() {
        let k = keys(&[("app.new", "s-new"), ("app.old", "s-old"), ("", "legacy")]);
        assert!(verify(
            &k,
            Some("app.old"),
            Some(&sign("s-old", BODY)),
            BODY
        ));
        assert!(verify(
            &k,
            Some("app.new"),
            Some(&sign("s-new", BODY)),
            BODY
        ));
        // Naming one key and signing with another fails.
        assert!(!verify(
            &k,
            Some("app.new"),
            Some(&sign("s-old", BODY)),
            BODY
        ));
        // An unknown key name falls back to every configured secret.
        assert!(verify(
            &k,
            Some("app.gone"),
            Some(&sign("legacy", BODY)),
            BODY
        ));
        assert!(!verify(&keys(&[]), None, Some(&sign("legacy", BODY)), BODY));
    }
}
