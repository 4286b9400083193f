//! The in-process path of `ably-publish` for a 1 KiB message: validate the body for the
//! caller (shape, size, channel ownership, event rules, idempotent id base) and build
//! the request Ably receives (path, ids, JSON body). Network time is not included.
//!
//! `cargo bench -p chat-core --bench publish`

use std::hint::black_box;

use chat_core::ably::{prepare_publish, OutboundMessage};
use chat_core::handlers::publish::validate;
use chat_core::identity::{Caller, Role};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

fn bench(c: &mut Criterion) {
    let caller = Caller::User {
        user_id: "user-42".into(),
        role: Role::Customer,
        conversations: vec!["conv-42".into()],
    };
    let text: String = "lorem ipsum dolor sit amet ".repeat(38);
    let body = json!({
        "channelName": "conversation:conv-42",
        "eventName": "message:user",
        "data": {"text": &text[..1000], "locale": "en"},
        "idempotencyKey": "7d0f1c2e-6a59-4f4e-9a8e-3c1b2d4e5f60"
    })
    .to_string()
    .into_bytes();
    assert!((1024..1200).contains(&body.len()), "{}", body.len());

    c.bench_function("publish_validate_and_build_1kib", |b| {
        b.iter(|| {
            let valid = validate(&caller, black_box(&body)).expect("valid publish");
            let message = OutboundMessage::new(&valid.event_name, &valid.data)
                .with_client_id(&valid.client_id);
            black_box(
                prepare_publish(&valid.channel_name, &valid.id_base, &[message]).expect("prepared"),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
