//! Properties the fuzz targets check, shared so new targets (token requests, channel
//! names, cookies, ...) can reuse them. A target panics when a property fails; libFuzzer
//! then keeps the input under `fuzz/artifacts/<target>/`.

use std::sync::OnceLock;

use chat_core::ably::webhook::{WebhookBatch, WebhookVerifier};
use chat_core::ably::WebhookKeys;
use chat_core::events::event::conversation_id;
use chat_core::events::ChatEvent;
use chat_core::platform::env::Secret;
use chat_core::storage::archive::EventArchive;
use chat_core::storage::item::item_event;
use chat_core::storage::{EventStoreConfig, RetentionConfig};

/// DynamoDB's key size limits, as chat_core defines them beside the event: partition keys
/// (table and `by_type` index) up to 2048 bytes, sort keys up to 1024 bytes, and neither
/// may be empty.
pub use chat_core::events::event::{MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES};
// The properties below hold events to exactly these values.
const _: () = assert!(MAX_PARTITION_KEY_BYTES == 2048 && MAX_SORT_KEY_BYTES == 1024);

/// Rotation keys plus a legacy secret, as `ABLY_WEBHOOK_KEYS` and
/// `ABLY_WEBHOOK_SIGNING_KEY` configure them.
pub fn webhook_keys() -> WebhookKeys {
    WebhookKeys {
        keys: vec![
            (
                "xVLyHw.DQrNxQ".into(),
                Secret::new("fakeSecretForTestVectorsOnly"),
            ),
            ("app.old".into(), Secret::new("old-secret")),
            (String::new(), Secret::new("legacy-secret")),
        ],
    }
}

/// A verifier over [`webhook_keys`], built once.
pub fn webhook_verifier() -> &'static WebhookVerifier {
    static VERIFIER: OnceLock<WebhookVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| WebhookVerifier::new(&webhook_keys()))
}

/// The secrets of `keys`, in order (the fuzz targets know them; the product never shows them).
pub fn secrets() -> &'static [(&'static str, &'static str)] {
    &[
        ("xVLyHw.DQrNxQ", "fakeSecretForTestVectorsOnly"),
        ("app.old", "old-secret"),
        ("", "legacy-secret"),
    ]
}

/// An archive whose client never sends anything: only its pure item builder is used.
pub fn archive() -> &'static EventArchive {
    static ARCHIVE: OnceLock<EventArchive> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let config = aws_sdk_dynamodb::Config::builder()
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        EventArchive::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            &EventStoreConfig {
                table: "fuzz".into(),
                retention: RetentionConfig {
                    event_retention_days: 90,
                    redis_event_ttl_seconds: 86_400,
                    redis_event_max: 100,
                },
            },
        )
    })
}

/// `2026-11-22T03:04:05.678Z`, and the same instant chrono reads from it.
pub fn assert_iso_millis(text: &str) {
    let b = text.as_bytes();
    assert_eq!(b.len(), 24, "occurred_at {text:?}");
    for (i, c) in b.iter().enumerate() {
        let ok = match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        };
        assert!(ok, "occurred_at {text:?}");
    }
    assert!(
        chrono::DateTime::parse_from_rfc3339(text).is_ok(),
        "occurred_at {text:?} is not a valid instant"
    );
}

/// What every normalised event must satisfy to be stored and read back unchanged.
pub fn assert_storable(event: &ChatEvent) {
    assert!(!event.id.is_empty(), "empty id: {event:?}");
    assert!(!event.channel.is_empty(), "empty channel: {event:?}");
    assert_eq!(event.history_id, conversation_id(&event.channel));
    assert!(
        !event.history_id.is_empty() && event.history_id.len() <= MAX_PARTITION_KEY_BYTES,
        "history_id is not a valid partition key ({} bytes)",
        event.history_id.len()
    );
    assert!(
        event.event_key().len() <= MAX_SORT_KEY_BYTES,
        "event_key is not a valid sort key ({} bytes)",
        event.event_key().len()
    );
    assert!(
        !event.event_type.is_empty() && event.event_type.len() <= MAX_PARTITION_KEY_BYTES,
        "event_type is not a valid index key ({} bytes)",
        event.event_type.len()
    );
    assert_iso_millis(&event.occurred_at);

    // The Redis cache holds the event as JSON; history reads it back with serde.
    let cached = serde_json::to_string(event).expect("an event serialises");
    let back: ChatEvent = serde_json::from_str(&cached).expect("a cached event reads back");
    assert_eq!(&back, event, "the cache round trip changed the event");

    // The DynamoDB item reads back as the same event.
    let requests = archive().write_requests(std::slice::from_ref(event), 1_700_000_000);
    assert_eq!(requests.len(), 1);
    let item = requests[0]
        .put_request()
        .map(|p| p.item().clone())
        .expect("a put request");
    let stored = item_event(&item).expect("the item reads back as an event");
    assert_eq!(&stored, event, "the archive round trip changed the event");
}

/// What every parsed batch must satisfy.
pub fn assert_batch(batch: &WebhookBatch) {
    for event in &batch.events {
        assert_storable(event);
    }
}
