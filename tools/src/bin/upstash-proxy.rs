//! Upstash-REST-compatible proxy in front of a local `redis-server`.
//!
//! Env: `UPSTASH_PROXY_LISTEN` (default 127.0.0.1:8079), `UPSTASH_PROXY_REDIS`
//! (default 127.0.0.1:6390), `UPSTASH_PROXY_TOKEN` (required).

use dev_tools::upstash_proxy::{serve, ProxyConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen = std::env::var("UPSTASH_PROXY_LISTEN").unwrap_or_else(|_| "127.0.0.1:8079".into());
    let redis_addr =
        std::env::var("UPSTASH_PROXY_REDIS").unwrap_or_else(|_| "127.0.0.1:6390".into());
    let token = std::env::var("UPSTASH_PROXY_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!("missing required environment variable UPSTASH_PROXY_TOKEN")
        })?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("upstash-proxy listening on http://{listen} -> redis {redis_addr}");
    serve(
        listener,
        ProxyConfig {
            redis_addr,
            token,
            request_counter: None,
        },
    )
    .await?;
    Ok(())
}
