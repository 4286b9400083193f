//! Bearer, session and resume-link token parsing (`chat_core::auth`, `resume_link`).
//!
//! Arbitrary strings (and arbitrary JSON claims signed with the wrong key) never panic
//! and never authenticate; a token is never accepted in another role.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use chat_core::auth::{issue_session_token, Authenticator};
use chat_core::config::{JwtConfig, Secret};
use chat_core::resume_link::ResumeLinks;
use libfuzzer_sys::fuzz_target;

const JWT_SECRET: &str = "fuzz-bearer-secret-0123456789abcdef";
const RESUME_SECRET: &str = "fuzz-resume-secret-0123456789abcdef";

fn auth() -> &'static Authenticator {
    static AUTH: OnceLock<Authenticator> = OnceLock::new();
    AUTH.get_or_init(|| {
        let jwt = JwtConfig {
            secret: Secret::new(JWT_SECRET),
            issuer: None,
            audience: None,
        };
        Authenticator::new(&jwt, &Secret::new(RESUME_SECRET))
    })
}

fn links() -> &'static ResumeLinks {
    static LINKS: OnceLock<ResumeLinks> = OnceLock::new();
    LINKS.get_or_init(|| ResumeLinks::new(&Secret::new(RESUME_SECRET), Duration::from_secs(600)))
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    token: &'a str,
    conversation: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    // Without the secrets nothing authenticates.
    assert!(auth().verify_bearer(input.token).is_err());
    assert!(auth().verify_session(input.token).is_err());
    assert!(links().verify(input.token).is_err());

    // A real session token is a session, never a bearer token or a resume link.
    if let Ok(session) = issue_session_token(
        &Secret::new(RESUME_SECRET),
        input.conversation,
        "fuzz@example.com",
        Duration::from_secs(600),
    ) {
        assert!(auth().verify_session(&session).is_ok());
        assert!(auth().verify_bearer(&session).is_err());
        assert!(links().verify(&session).is_err());
    }
});
