//! Prints the headers Ably would send with a webhook body: `X-Ably-Key` and
//! `X-Ably-Signature` = base64(HMAC-SHA256(key secret, body bytes)).
//!
//! `sign-webhook events/ably-events/batched-message-body.json` (the key: the first entry of
//! `ABLY_WEBHOOK_KEYS`, the dedicated key the integration rule signs with).

use std::path::PathBuf;

use anyhow::Context as _;
use chat_core::ably::webhook::signature::sign;
use clap::Parser;
use dev_tools::webhook_load::Signer;

/// Prints the `X-Ably-Key` and `X-Ably-Signature` headers for a webhook body.
#[derive(Parser)]
#[command(name = "sign-webhook")]
struct Args {
    /// The body, exactly as it will be sent.
    body: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let body =
        std::fs::read(&args.body).with_context(|| format!("reading {}", args.body.display()))?;
    let key = Signer::from_env()?;
    println!("X-Ably-Key: {}", key.key_name);
    println!("X-Ably-Signature: {}", sign(&key.secret, &body));
    Ok(())
}
