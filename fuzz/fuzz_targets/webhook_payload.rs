//! Webhook body parsing and normalisation (`chat_core::ably::webhook::parse`, and
//! `parse_msgpack` over the same bytes), followed by
//! the handler's removal of events DynamoDB could not hold
//! (`chat_core::storage::item::skip_unstorable`).
//!
//! Any bytes: nothing panics, parsing is deterministic, and every event left can be keyed
//! in DynamoDB and survives the Redis and DynamoDB round trips unchanged.
#![no_main]

use chat_core::ably::webhook::{parse, parse_msgpack, PayloadError};
use chat_core::storage::item::skip_unstorable;
use chat_core_fuzz::assert_batch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let first = parse(body);
    // Derived ids and every other field must not depend on anything but the bytes.
    assert_eq!(first, parse(body), "parse is not deterministic");
    match first {
        Ok(mut batch) => {
            let (events, skipped) = (batch.events.len(), batch.skipped.len());
            skip_unstorable(&mut batch);
            assert_eq!(batch.events.len() + batch.skipped.len(), events + skipped);
            assert_batch(&batch);
        }
        Err(PayloadError::NotJson) => {
            assert!(serde_json::from_slice::<serde_json::Value>(body).is_err());
        }
        Err(PayloadError::NotMsgpack) => panic!("a JSON parse answered NotMsgpack"),
        Err(PayloadError::UnknownShape) | Err(PayloadError::TooLarge(_)) => {}
    }
    // The same bytes as a MessagePack body: no panic, and whatever parses is storable.
    if let Ok(mut batch) = parse_msgpack(body) {
        skip_unstorable(&mut batch);
        assert_batch(&batch);
    }
});
