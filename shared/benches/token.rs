//! Hot paths of `POST /api/ably/token`: signing a TokenRequest, building the capability
//! and verifying a bearer JWT.
//!
//! cargo bench -p chat-core --bench token -- --warm-up-time 1 --measurement-time 3

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_core::ably::credentials::TokenSigner;
use chat_core::ably::AblyKey;
use chat_core::channels::capability::Capability;
use chat_core::identity::JwtConfig;
use chat_core::identity::{BearerVerifier, Caller, Role};
use chat_core::platform::env::Secret;
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const JWT_SECRET: &str = "bench-jwt-secret-0123456789abcdef-0123";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn customer() -> Caller {
    Caller::User {
        user_id: "user-123".into(),
        role: Role::Customer,
        conversations: vec!["conv-1".into(), "conv-2".into()],
    }
}

fn token_request(c: &mut Criterion) {
    let key: AblyKey = "xVLyHw.DQrNxQ:fakeSecretForTestVectorsOnly"
        .parse()
        .unwrap_or_default();
    let signer = TokenSigner::new(&key);
    let caller = customer();
    let capability = Capability::for_caller(&caller).to_json();
    let now_ms = now_secs() * 1000;

    c.bench_function("token_request_sign", |b| {
        b.iter(|| {
            signer.token_request(
                black_box(capability.clone()),
                black_box("user-123".to_owned()),
                Duration::from_secs(3600),
                black_box(now_ms),
            )
        })
    });
    // What the handler does after authentication: capability, client id, signature.
    c.bench_function("token_request_capability_and_sign", |b| {
        b.iter(|| {
            let caller = black_box(&caller);
            signer.token_request(
                Capability::for_caller(caller).to_json(),
                caller.client_id(),
                Duration::from_secs(3600),
                black_box(now_ms),
            )
        })
    });
}

/// The capability alone: every channel the caller owns, as canonical JSON.
fn capability(c: &mut Criterion) {
    let customer = customer();
    let staff = Caller::User {
        user_id: "broker-7".into(),
        role: Role::Broker,
        conversations: Vec::new(),
    };
    c.bench_function("capability_customer", |b| {
        b.iter(|| Capability::for_caller(black_box(&customer)).to_json())
    });
    c.bench_function("capability_broker", |b| {
        b.iter(|| Capability::for_caller(black_box(&staff)).to_json())
    });
}

fn bearer_verification(c: &mut Criterion) {
    let auth = BearerVerifier::new(&JwtConfig {
        secret: Secret::new(JWT_SECRET),
        issuer: None,
        audience: None,
    });
    let now = now_secs();
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"userId": "user-123", "role": "customer", "conversations": ["conv-1", "conv-2"], "iat": now, "exp": now + 3600}),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap_or_default();
    assert!(auth.verify(&token).is_ok(), "benchmark token must verify");

    c.bench_function("bearer_verify", |b| {
        b.iter(|| auth.verify(black_box(&token)))
    });
}

criterion_group!(benches, token_request, capability, bearer_verification);
criterion_main!(benches);
