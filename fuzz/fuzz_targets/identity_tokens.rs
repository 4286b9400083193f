//! Bearer, session and resume-link token parsing (`chat_core::identity`:
//! `BearerVerifier`, `Authenticator`, `SessionIssuer`, `resume_link`).
//!
//! Arbitrary strings (and arbitrary JSON claims signed with the wrong key) never panic
//! and never authenticate; a token is never accepted in another role.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use chat_core::identity::resume_link::ResumeLinks;
use chat_core::identity::{
    Authenticator, BearerVerifier, IdentityConfig, JwtConfig, SessionIssuer,
};
use chat_core::platform::env::Secret;
use libfuzzer_sys::fuzz_target;

const JWT_SECRET: &str = "fuzz-bearer-secret-0123456789abcdef";
const RESUME_SECRET: &str = "fuzz-resume-secret-0123456789abcdef";

fn identity() -> IdentityConfig {
    IdentityConfig {
        jwt: JwtConfig {
            secret: Secret::new(JWT_SECRET),
            issuer: None,
            audience: None,
        },
        resume_secret: Secret::new(RESUME_SECRET),
    }
}

fn auth() -> &'static Authenticator {
    static AUTH: OnceLock<Authenticator> = OnceLock::new();
    AUTH.get_or_init(|| Authenticator::new(&identity()))
}

fn bearer() -> &'static BearerVerifier {
    static BEARER: OnceLock<BearerVerifier> = OnceLock::new();
    BEARER.get_or_init(|| BearerVerifier::new(&identity().jwt))
}

fn sessions() -> &'static SessionIssuer {
    static SESSIONS: OnceLock<SessionIssuer> = OnceLock::new();
    SESSIONS.get_or_init(|| SessionIssuer::new(&Secret::new(RESUME_SECRET)))
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
    assert!(bearer().verify(input.token).is_err());
    assert!(auth().verify_session(input.token).is_err());
    assert!(links().verify(input.token).is_err());

    // A real session token is a session, never a bearer token or a resume link.
    if let Ok(session) = sessions().issue(
        input.conversation,
        "fuzz@example.com",
        Duration::from_secs(600),
    ) {
        assert!(auth().verify_session(&session).is_ok());
        assert!(bearer().verify(&session).is_err());
        assert!(links().verify(&session).is_err());
    }
});
