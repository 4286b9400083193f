//! Who calls: bearer JWTs (also forged ones) and chat sessions, signed with the stack's
//! secrets.

use chat_core::platform::env::Secret;
use serde_json::{json, Value};

use super::stack_var;

/// The key of Ably's documented signing vectors (the reference-vector tests of
/// `shared/src/ably/credentials.rs` use it too), written once: the
/// webhook key the events builder configures, and the API key of the REST client tests.
macro_rules! key_name {
    () => {
        "xVLyHw.DQrNxQ"
    };
}
macro_rules! key_secret {
    () => {
        "fakeSecretForTestVectorsOnly"
    };
}
/// Its name.
pub const KEY_NAME: &str = key_name!();
/// Its secret.
pub const SECRET: &str = key_secret!();
/// The whole key, `name:secret`.
pub const WEBHOOK_KEY: &str = concat!(key_name!(), ":", key_secret!());

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

pub fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT assembled by hand: base64url(header) . base64url(claims) . base64url(HMAC-SHA256),
/// so tests can forge exactly the token they mean (any header, any claim types).
pub fn hand_jwt(header: &Value, claims: &Value, secret: &str) -> String {
    use hmac::Mac as _;
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(&mac.finalize().into_bytes()))
}

/// An HS256 JWT signed with `secret`.
pub fn hs256(claims: &Value, secret: &str) -> String {
    hand_jwt(&json!({"alg": "HS256", "typ": "JWT"}), claims, secret)
}

/// A bearer JWT for the stack's `JWT_SECRET`, valid for two days, so that no Ably token
/// the tests ask for (a day at most) is capped by it; the cap has tests of its own.
pub fn bearer(user_id: &str, role: &str, conversations: &[&str]) -> String {
    let now = unix_now();
    hs256(
        &json!({"userId": user_id, "role": role, "conversations": conversations, "iat": now, "exp": now + 172_800}),
        &stack_var("JWT_SECRET"),
    )
}

/// A chat session token as `resume` mints it, with the stack's `RESUME_TOKEN_SECRET`.
pub fn session_token(conversation_id: &str) -> String {
    chat_core::identity::SessionIssuer::new(&Secret::new(stack_var("RESUME_TOKEN_SECRET")))
        .issue(
            conversation_id,
            "customer@example.com",
            std::time::Duration::from_secs(3600),
        )
        .expect("session token")
}
