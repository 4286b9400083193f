//! Prints the headers Ably would send with a webhook body: `X-Ably-Key` and
//! `X-Ably-Signature` = base64(HMAC-SHA256(key secret, body bytes)).
//!
//! `sign-webhook events/ably-events/batched-message-body.json` (the key: the first entry of
//! `ABLY_WEBHOOK_KEYS`, the dedicated key the integration rule signs with).

use chat_core::ably::webhook::signature::sign;
use dev_tools::webhook_load::Signer;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: sign-webhook <body-file>"))?;
    let body = std::fs::read(&path)?;
    let key = Signer::from_env()?;
    println!("X-Ably-Key: {}", key.key_name);
    println!("X-Ably-Signature: {}", sign(&key.secret, &body));
    Ok(())
}
