//! Mints a development bearer JWT signed with `JWT_SECRET` (HS256), with `iss` and `aud`
//! from `JWT_ISSUER` and `JWT_AUDIENCE` when they are set.
//!
//! `dev-jwt --user dev-user --role customer --conversations conv-1,conv-2 --ttl 3600`

use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

/// Mints a development bearer JWT signed with `JWT_SECRET`.
#[derive(Parser)]
#[command(name = "dev-jwt")]
struct Args {
    /// The `userId` claim.
    #[arg(long, default_value = "dev-user")]
    user: String,
    /// The `role` claim: customer, broker, admin or service.
    #[arg(long, default_value = "customer")]
    role: String,
    /// The `conversations` claim, comma-separated; left out when empty.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    conversations: Vec<String>,
    /// Seconds until `exp`.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let conversations: Vec<&str> = args
        .conversations
        .iter()
        .map(String::as_str)
        .filter(|c| !c.is_empty())
        .collect();
    let secret = std::env::var("JWT_SECRET")
        .map_err(|_| anyhow::anyhow!("missing required environment variable JWT_SECRET"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut claims =
        json!({ "userId": args.user, "role": args.role, "iat": now, "exp": now + args.ttl });
    if !conversations.is_empty() {
        claims["conversations"] = json!(conversations);
    }
    if let Ok(iss) = std::env::var("JWT_ISSUER") {
        claims["iss"] = json!(iss);
    }
    if let Ok(aud) = std::env::var("JWT_AUDIENCE") {
        claims["aud"] = json!(aud);
    }
    let token = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?;
    println!("{token}");
    Ok(())
}
