//! Upstash-REST-compatible proxy in front of a local `redis-server`.
//!
//! Env (or the matching flags): `UPSTASH_PROXY_LISTEN` (default 127.0.0.1:8079),
//! `UPSTASH_PROXY_REDIS` (default 127.0.0.1:6390), `UPSTASH_PROXY_TOKEN` (required).

use clap::Parser;
use dev_tools::upstash_proxy::{serve, ProxyConfig};

/// An Upstash-REST-compatible proxy in front of a local redis-server.
#[derive(Parser)]
#[command(name = "upstash-proxy")]
struct Args {
    /// The address to serve on.
    #[arg(long, env = "UPSTASH_PROXY_LISTEN", default_value = "127.0.0.1:8079")]
    listen: String,
    /// The redis-server to forward to.
    #[arg(long, env = "UPSTASH_PROXY_REDIS", default_value = "127.0.0.1:6390")]
    redis: String,
    /// The bearer token callers must present.
    #[arg(long, env = "UPSTASH_PROXY_TOKEN", hide_env_values = true,
          value_parser = clap::builder::NonEmptyStringValueParser::new())]
    token: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!(
        "upstash-proxy listening on http://{} -> redis {}",
        args.listen, args.redis
    );
    serve(
        listener,
        ProxyConfig {
            redis_addr: args.redis,
            token: args.token,
            request_counter: None,
        },
    )
    .await?;
    Ok(())
}
