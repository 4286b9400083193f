//! A local stand-in for Ably's REST API that also plays the webhook integration rule.
//!
//! Env (or the matching flags): `ABLY_STANDIN_LISTEN` (default 127.0.0.1:8089),
//! `ABLY_API_KEY` (required), `ABLY_WEBHOOK_KEYS` (required; the first key signs),
//! `ABLY_STANDIN_EVENTS_URL` (default http://127.0.0.1:9000/api/ably/events, where
//! `scripts/dev`'s `cargo lambda watch` serves ably-events), `ABLY_STANDIN_RETRY_FOR_SECONDS`
//! (300).

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use dev_tools::ably_standin::deliver::{spawn, DeliveryConfig};
use dev_tools::ably_standin::{serve, Standin};
use dev_tools::webhook_load::Signer;

/// A local Ably REST stand-in that delivers what is published as signed batched webhooks.
#[derive(Parser)]
#[command(name = "ably-standin")]
struct Args {
    /// The address to serve on.
    #[arg(long, env = "ABLY_STANDIN_LISTEN", default_value = "127.0.0.1:8089")]
    listen: String,
    /// The API key callers authenticate with, `appId.keyId:secret`.
    #[arg(long, env = "ABLY_API_KEY", hide_env_values = true)]
    api_key: String,
    /// The webhook keys, `keyName:secret,...`; the first signs the deliveries.
    #[arg(long, env = "ABLY_WEBHOOK_KEYS", hide_env_values = true)]
    webhook_keys: String,
    /// Where the integration rule POSTs its batched webhooks.
    #[arg(
        long,
        env = "ABLY_STANDIN_EVENTS_URL",
        default_value = "http://127.0.0.1:9000/api/ably/events"
    )]
    events_url: String,
    /// How long a batch the endpoint answers 5xx to is retried before it is dropped.
    #[arg(long, env = "ABLY_STANDIN_RETRY_FOR_SECONDS", default_value_t = 300)]
    retry_for_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let signer = Signer::from_key(
        args.webhook_keys
            .split(',')
            .next()
            .unwrap_or_default()
            .trim(),
    )?;
    let config = DeliveryConfig {
        retry_for: Duration::from_secs(args.retry_for_seconds),
        ..DeliveryConfig::new(&args.events_url, &signer.key_name, &signer.secret)
    };
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!(
        "ably-standin listening on http://{}; webhooks (key {}) -> {}",
        args.listen, signer.key_name, args.events_url
    );
    let standin = Standin::new(&args.api_key, Some(spawn(config)));
    serve(listener, Arc::new(standin)).await?;
    Ok(())
}
