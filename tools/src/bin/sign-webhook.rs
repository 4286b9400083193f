//! Prints the headers Ably would send with a webhook body: `X-Ably-Key` and
//! `X-Ably-Signature` = base64(HMAC-SHA256(key secret, body bytes)).
//!
//! `sign-webhook events/ably-events/batched-message-body.json` (key from `ABLY_API_KEY`).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: sign-webhook <body-file>"))?;
    let body = std::fs::read(&path)?;
    let key = std::env::var("ABLY_API_KEY")
        .map_err(|_| anyhow::anyhow!("missing required environment variable ABLY_API_KEY"))?;
    let (name, secret) = key
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("ABLY_API_KEY must have the form appId.keyId:secret"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())?;
    mac.update(&body);
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    println!("X-Ably-Key: {name}");
    println!("X-Ably-Signature: {signature}");
    Ok(())
}
