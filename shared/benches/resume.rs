//! Hot paths of `resume`: verifying a resume link token (redeem) and a chat session
//! token (every session-authenticated call), and minting both.
//!
//! `cargo bench -p chat-core --bench resume`

use std::hint::black_box;
use std::time::Duration;

use chat_core::identity::email::EmailAddress;
use chat_core::identity::resume_link::ResumeLinks;
use chat_core::identity::{Authenticator, SessionIssuer};
use chat_core::identity::{IdentityConfig, JwtConfig};
use chat_core::platform::env::Secret;
use criterion::{criterion_group, criterion_main, Criterion};

const JWT_SECRET: &str = "bench-jwt-secret-0123456789abcdef-0123";
const RESUME_SECRET: &str = "bench-resume-secret-0123456789abcdef-01";

fn bench(c: &mut Criterion) {
    let secret = Secret::new(RESUME_SECRET);
    let links = ResumeLinks::new(&secret, Duration::from_secs(86_400));
    let email = EmailAddress::parse("customer@example.com").expect("valid address");
    let link = links.issue("conv-42", &email).expect("issued").token;
    assert_eq!(
        links
            .verify(&link)
            .map(|claims| claims.conversation_id)
            .ok(),
        Some("conv-42".to_owned()),
        "benchmark link must verify"
    );

    let auth = Authenticator::new(&IdentityConfig {
        jwt: JwtConfig {
            secret: Secret::new(JWT_SECRET),
            issuer: None,
            audience: None,
        },
        resume_secret: secret.clone(),
    });
    let sessions = SessionIssuer::new(&secret);
    let session = sessions
        .issue(
            "conv-42",
            "customer@example.com",
            Duration::from_secs(86_400),
        )
        .expect("issued");
    assert!(
        auth.verify_session(&session).is_ok(),
        "benchmark session must verify"
    );

    c.bench_function("resume_link_verify", |b| {
        b.iter(|| links.verify(black_box(&link)))
    });
    c.bench_function("resume_link_issue", |b| {
        b.iter(|| links.issue(black_box("conv-42"), &email))
    });
    c.bench_function("session_verify", |b| {
        b.iter(|| auth.verify_session(black_box(&session)))
    });
    c.bench_function("session_issue", |b| {
        b.iter(|| {
            sessions.issue(
                black_box("conv-42"),
                "customer@example.com",
                Duration::from_secs(86_400),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
