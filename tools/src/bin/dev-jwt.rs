//! Mints a development bearer JWT signed with `JWT_SECRET` (HS256).
//!
//! `dev-jwt --user dev-user --role customer --conversations conv-1,conv-2 --ttl 3600`

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let mut user = "dev-user".to_owned();
    let mut role = "customer".to_owned();
    let mut conversations: Vec<String> = Vec::new();
    let mut ttl: u64 = 3600;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--user" => user = value()?,
            "--role" => role = value()?,
            "--conversations" => {
                conversations = value()?.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect()
            }
            "--ttl" => ttl = value()?.parse()?,
            other => anyhow::bail!(
                "unknown argument {other}; usage: dev-jwt [--user ID] [--role customer|broker|admin|service] [--conversations a,b] [--ttl SECONDS]"
            ),
        }
    }
    let secret = std::env::var("JWT_SECRET")
        .map_err(|_| anyhow::anyhow!("missing required environment variable JWT_SECRET"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut claims = json!({ "userId": user, "role": role, "iat": now, "exp": now + ttl });
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
