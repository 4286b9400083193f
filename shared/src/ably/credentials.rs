//! Ably credentials signed with the API key: TokenRequests and Ably JWTs.
//!
//! A TokenRequest's `mac` is base64(HMAC-SHA256(key secret,
//! `keyName\nttl\ncapability\nclientId\ntimestamp\nnonce\n`)), ttl and timestamp in
//! milliseconds, an absent ttl/capability/clientId being an empty line. The client
//! sends the object to Ably as it is, so `capability` must be the very string signed.

use std::fmt::Write as _;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use serde::Serialize;
use sha2::Sha256;

use crate::ably::config::AblyKey;
use crate::platform::error::ApiError;

type HmacSha256 = Hmac<Sha256>;

/// A TokenRequest exactly as ably-js `authUrl`/`authCallback` and Ably's
/// `POST /keys/{keyName}/requestToken` expect it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    pub key_name: String,
    /// Milliseconds.
    pub ttl: u64,
    pub capability: String,
    pub client_id: String,
    /// Milliseconds since the epoch.
    pub timestamp: u64,
    pub nonce: String,
    pub mac: String,
}

/// An Ably JWT, in a shape ably-js accepts from an `authUrl` as TokenDetails
/// (`token`, `expires` and `issued` in ms, plus what the token grants).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AblyJwt {
    pub token: String,
    pub expires: u64,
    pub issued: u64,
    pub capability: String,
    pub client_id: String,
}

/// The `mac` of a TokenRequest; `None` fields are empty lines. The reference form, for
/// tools and tests that check a TokenRequest as Ably does ([`TokenSigner`] signs).
#[cfg(any(test, feature = "test-support"))]
pub fn token_request_mac(
    key_secret: &[u8],
    key_name: &str,
    ttl_ms: Option<u64>,
    capability: Option<&str>,
    client_id: Option<&str>,
    timestamp_ms: u64,
    nonce: &str,
) -> String {
    let mut mac = keyed_hmac(key_secret);
    feed(
        &mut mac,
        key_name,
        ttl_ms,
        capability,
        client_id,
        timestamp_ms,
        nonce,
    );
    BASE64.encode(mac.finalize().into_bytes())
}

/// An HMAC-SHA256 keyed with `secret`, its key schedule ready to clone for each message.
pub(crate) fn keyed_hmac(secret: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

fn feed(
    mac: &mut HmacSha256,
    key_name: &str,
    ttl_ms: Option<u64>,
    capability: Option<&str>,
    client_id: Option<&str>,
    timestamp_ms: u64,
    nonce: &str,
) {
    let mut numbers = String::with_capacity(24);
    mac.update(key_name.as_bytes());
    mac.update(b"\n");
    if let Some(ttl) = ttl_ms {
        let _ = write!(numbers, "{ttl}");
        mac.update(numbers.as_bytes());
    }
    mac.update(b"\n");
    mac.update(capability.unwrap_or("").as_bytes());
    mac.update(b"\n");
    mac.update(client_id.unwrap_or("").as_bytes());
    mac.update(b"\n");
    numbers.clear();
    let _ = write!(numbers, "{timestamp_ms}");
    mac.update(numbers.as_bytes());
    mac.update(b"\n");
    mac.update(nonce.as_bytes());
    mac.update(b"\n");
}

/// A fresh random nonce: 16 random bytes as 32 hex characters.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Signs with one Ably key; the HMAC key schedule is computed once, at cold start.
#[derive(Clone)]
pub struct TokenSigner {
    key_name: String,
    keyed: HmacSha256,
    jwt_key: EncodingKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("key_name", &self.key_name)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    pub fn new(key: &AblyKey) -> Self {
        let secret = key.secret.expose().as_bytes();
        TokenSigner {
            key_name: key.name.clone(),
            keyed: keyed_hmac(secret),
            jwt_key: EncodingKey::from_secret(secret),
        }
    }

    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    /// A TokenRequest with a fresh nonce, issued at `now_ms`.
    pub fn token_request(
        &self,
        capability: String,
        client_id: String,
        ttl: Duration,
        now_ms: u64,
    ) -> TokenRequest {
        let ttl_ms = duration_ms(ttl);
        let nonce = new_nonce();
        let mut mac = self.keyed.clone();
        feed(
            &mut mac,
            &self.key_name,
            Some(ttl_ms),
            Some(&capability),
            Some(&client_id),
            now_ms,
            &nonce,
        );
        TokenRequest {
            key_name: self.key_name.clone(),
            ttl: ttl_ms,
            capability,
            client_id,
            timestamp: now_ms,
            nonce,
            mac: BASE64.encode(mac.finalize().into_bytes()),
        }
    }

    /// An Ably JWT: header `typ: JWT`, `kid` = key name, HS256 with the key secret;
    /// claims `iat`, `exp` (seconds), `x-ably-capability`, `x-ably-clientId`.
    pub fn jwt(
        &self,
        capability: String,
        client_id: String,
        ttl: Duration,
        now_ms: u64,
    ) -> Result<AblyJwt, ApiError> {
        #[derive(Serialize)]
        struct Claims<'a> {
            iat: u64,
            exp: u64,
            #[serde(rename = "x-ably-capability")]
            capability: &'a str,
            #[serde(rename = "x-ably-clientId")]
            client_id: &'a str,
        }
        let iat = now_ms / 1000;
        let exp = iat.saturating_add(ttl.as_secs().max(1));
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.key_name.clone());
        let token = jsonwebtoken::encode(
            &header,
            &Claims {
                iat,
                exp,
                capability: &capability,
                client_id: &client_id,
            },
            &self.jwt_key,
        )
        .map_err(ApiError::internal)?;
        Ok(AblyJwt {
            token,
            expires: exp.saturating_mul(1000),
            issued: iat.saturating_mul(1000),
            capability,
            client_id,
        })
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"fakeSecretForTestVectorsOnly";
    const KEY_NAME: &str = "xVLyHw.DQrNxQ";
    const CAPABILITY: &str =
        r#"{"[*]*":["stats"],"conversation:*":["presence","publish","subscribe"]}"#;

    #[test]
    fn mac_matches_the_reference_vectors() {
        assert_eq!(
            token_request_mac(
                SECRET,
                KEY_NAME,
                Some(3_600_000),
                Some(CAPABILITY),
                Some("user-123"),
                1_700_000_000_000,
                "0123456789abcdef"
            ),
            "0StyUBtZqvd/8bO2hNyp4TJAMKkg5aiqAs8IenOWx/A="
        );
        assert_eq!(
            token_request_mac(
                SECRET,
                KEY_NAME,
                None,
                None,
                None,
                1_700_000_000_000,
                "0123456789abcdef"
            ),
            "IN4RrGI4+41fY08a4YV4mlRMgBfRH5tGSmcs2RhF7sM="
        );
    }

    #[test]
    fn the_signer_signs_what_it_returns_with_a_fresh_nonce() {
        let key: AblyKey = format!("{KEY_NAME}:fakeSecretForTestVectorsOnly")
            .parse()
            .unwrap();
        let signer = TokenSigner::new(&key);
        let a = signer.token_request(
            CAPABILITY.into(),
            "user-123".into(),
            Duration::from_secs(3600),
            1_700_000_000_000,
        );
        let b = signer.token_request(
            CAPABILITY.into(),
            "user-123".into(),
            Duration::from_secs(3600),
            1_700_000_000_000,
        );
        assert_ne!(a.nonce, b.nonce);
        assert!(a.nonce.len() >= 16);
        assert_eq!(a.ttl, 3_600_000);
        assert_eq!(
            a.mac,
            token_request_mac(
                SECRET,
                KEY_NAME,
                Some(a.ttl),
                Some(&a.capability),
                Some(&a.client_id),
                a.timestamp,
                &a.nonce
            )
        );
        let json = serde_json::to_value(&a).unwrap();
        let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "capability",
                "clientId",
                "keyName",
                "mac",
                "nonce",
                "timestamp",
                "ttl"
            ]
        );
    }
}
