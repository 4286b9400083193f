//! Prints the headers Ably would send with a webhook body: `X-Ably-Key` and
//! `X-Ably-Signature` = base64(HMAC-SHA256(key secret, body bytes)).
//!
//! `sign-webhook events/ably-events/batched-message-body.json` (key from `ABLY_API_KEY`).

use chat_core::ably::webhook::signature::sign;
use chat_core::ably::AblyKey;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: sign-webhook <body-file>"))?;
    let body = std::fs::read(&path)?;
    let key: AblyKey = std::env::var("ABLY_API_KEY")
        .map_err(|_| anyhow::anyhow!("missing required environment variable ABLY_API_KEY"))?
        .parse()
        .map_err(|e| anyhow::anyhow!("ABLY_API_KEY is invalid: {e}"))?;
    println!("X-Ably-Key: {}", key.name);
    println!("X-Ably-Signature: {}", sign(key.secret.expose(), &body));
    Ok(())
}
