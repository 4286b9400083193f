//! `POST /keys/{keyName}/requestToken`: a signed TokenRequest exchanged for TokenDetails,
//! checked as Ably checks it: the key, the `mac` (base64 HMAC-SHA256 with the key secret
//! over `keyName\nttl\ncapability\nclientId\ntimestamp\nnonce\n`), the timestamp's
//! freshness and the nonce used once.

use std::collections::HashSet;

use chat_core::ably::credentials::token_request_mac;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::AblyFailure;

/// How far a TokenRequest's timestamp may be from the stand-in's clock.
pub const MAX_CLOCK_SKEW_MS: u64 = 10 * 60 * 1000;
/// A TokenRequest without `ttl` gets Ably's default token lifetime, an hour.
const DEFAULT_TTL_MS: u64 = 60 * 60 * 1000;

/// Issues tokens for one API key.
pub struct TokenIssuer {
    key_name: String,
    secret: String,
    seen_nonces: HashSet<(u64, String)>,
    issued: u64,
}

impl TokenIssuer {
    pub fn new(key_name: &str, secret: &str) -> Self {
        TokenIssuer {
            key_name: key_name.to_owned(),
            secret: secret.to_owned(),
            seen_nonces: HashSet::new(),
            issued: 0,
        }
    }

    /// The TokenDetails for a TokenRequest posted to `/keys/{path_key}/requestToken`.
    pub fn request_token(
        &mut self,
        path_key: &str,
        body: &Value,
        now_ms: u64,
    ) -> Result<Value, AblyFailure> {
        if path_key != self.key_name {
            return Err(AblyFailure::new(404, 40400, "no such key"));
        }
        let text = |field: &str| body.get(field).and_then(Value::as_str);
        let number = |field: &str| {
            body.get(field).and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
        };
        if text("keyName") != Some(self.key_name.as_str()) {
            return Err(AblyFailure::new(
                401,
                40102,
                "the TokenRequest's keyName is not the key it was posted to",
            ));
        }
        let (Some(timestamp), Some(nonce), Some(mac)) =
            (number("timestamp"), text("nonce"), text("mac"))
        else {
            return Err(AblyFailure::bad_request(
                "a signed TokenRequest needs keyName, timestamp, nonce and mac",
            ));
        };
        let ttl = number("ttl");
        let capability = text("capability");
        let client_id = text("clientId");
        let expected = token_request_mac(
            self.secret.as_bytes(),
            &self.key_name,
            ttl,
            capability,
            client_id,
            timestamp,
            nonce,
        );
        if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
            return Err(AblyFailure::new(
                401,
                40101,
                "invalid credentials: the TokenRequest mac does not verify",
            ));
        }
        if timestamp.abs_diff(now_ms) > MAX_CLOCK_SKEW_MS {
            return Err(AblyFailure::new(
                401,
                40104,
                "timestamp not current: the TokenRequest is too old or from the future",
            ));
        }
        if !self.seen_nonces.insert((timestamp, nonce.to_owned())) {
            return Err(AblyFailure::new(
                401,
                40101,
                "invalid credentials: nonce value replayed",
            ));
        }
        // Nonces older than the skew can never verify again: forget them.
        self.seen_nonces
            .retain(|(at, _)| at.abs_diff(now_ms) <= MAX_CLOCK_SKEW_MS);
        self.issued += 1;
        let ttl = ttl.unwrap_or(DEFAULT_TTL_MS);
        let mut details = json!({
            "token": format!("standin.{}.{:x}", self.issued, rand::random::<u64>()),
            "keyName": self.key_name,
            "issued": now_ms,
            "expires": now_ms + ttl,
            "capability": capability.unwrap_or(r#"{"*":["*"]}"#),
        });
        if let Some(client_id) = client_id {
            details["clientId"] = json!(client_id);
        }
        Ok(details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "devApp.devKey";
    const SECRET: &str = "dev-only-ably-secret-not-real";
    const NOW: u64 = 1_800_000_000_000;

    fn signed(timestamp: u64, nonce: &str) -> Value {
        let capability = r#"{"conversation:conv-1":["publish","subscribe"]}"#;
        let mac = token_request_mac(
            SECRET.as_bytes(),
            KEY,
            Some(3_600_000),
            Some(capability),
            Some("customer:u-1"),
            timestamp,
            nonce,
        );
        json!({"keyName": KEY, "ttl": 3_600_000, "capability": capability,
               "clientId": "customer:u-1", "timestamp": timestamp, "nonce": nonce, "mac": mac})
    }

    #[test]
    fn a_signed_token_request_becomes_token_details() {
        let mut issuer = TokenIssuer::new(KEY, SECRET);
        let details = issuer.request_token(KEY, &signed(NOW, "n1"), NOW).unwrap();
        assert!(details["token"].as_str().unwrap().starts_with("standin."));
        assert_eq!(details["keyName"], KEY);
        assert_eq!(details["issued"], NOW);
        assert_eq!(details["expires"], NOW + 3_600_000);
        assert_eq!(details["clientId"], "customer:u-1");
        assert_eq!(
            details["capability"],
            r#"{"conversation:conv-1":["publish","subscribe"]}"#
        );
    }

    #[test]
    fn a_bad_mac_a_stale_timestamp_a_replay_and_another_key_are_refused() {
        let mut issuer = TokenIssuer::new(KEY, SECRET);
        let mut tampered = signed(NOW, "n1");
        tampered["clientId"] = json!("admin:a-1");
        let err = issuer.request_token(KEY, &tampered, NOW).unwrap_err();
        assert_eq!((err.status, err.code), (401, 40101));
        assert_eq!(err.body()["error"]["statusCode"], 401);

        let stale = signed(NOW - MAX_CLOCK_SKEW_MS - 1, "n2");
        let err = issuer.request_token(KEY, &stale, NOW).unwrap_err();
        assert_eq!((err.status, err.code), (401, 40104));

        issuer.request_token(KEY, &signed(NOW, "n3"), NOW).unwrap();
        let err = issuer
            .request_token(KEY, &signed(NOW, "n3"), NOW)
            .unwrap_err();
        assert_eq!((err.status, err.code), (401, 40101));

        let err = issuer
            .request_token("other.key", &signed(NOW, "n4"), NOW)
            .unwrap_err();
        assert_eq!(err.status, 404);
    }

    #[test]
    fn numbers_sent_as_strings_verify_too() {
        // ably-js sends what the auth server gave it; some servers send ttl as a string.
        let mut issuer = TokenIssuer::new(KEY, SECRET);
        let mut request = signed(NOW, "n5");
        request["ttl"] = json!("3600000");
        request["timestamp"] = json!(NOW.to_string());
        assert!(issuer.request_token(KEY, &request, NOW).is_ok());
    }
}
