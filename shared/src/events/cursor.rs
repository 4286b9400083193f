//! The polling cursor of `GET /api/chat/events`: an event's position in its conversation.
//!
//! It is the event's DynamoDB sort key `{occurred_at}#{id}`, base64url-encoded without
//! padding so clients treat it as opaque. `occurred_at` always has the same width, so
//! comparing keys as strings orders events by time, then id: the same order in the Redis
//! cache and in DynamoDB, which is what lets a client page from one into the other.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::events::event::{ChatEvent, MAX_SORT_KEY_BYTES};
use crate::events::time::iso_millis;

/// `2026-11-22T03:04:05.678Z`: the only form `occurred_at` takes.
const TIMESTAMP_LEN: usize = 24;

/// A validated position: only keys an event could have are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCursor {
    key: String,
}

/// A cursor this service did not hand out (or one altered since).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cursor is not one this service returned")]
pub struct InvalidCursor;

impl EventCursor {
    /// The position of `event`.
    pub fn of(event: &ChatEvent) -> Self {
        EventCursor {
            key: event.event_key(),
        }
    }

    /// Decodes a cursor strictly: canonical base64url without padding, of a sort key whose
    /// timestamp is canonical ISO-8601 UTC with milliseconds and whose id is not empty.
    pub fn parse(text: &str) -> Result<Self, InvalidCursor> {
        if text.len() > MAX_SORT_KEY_BYTES.div_ceil(3) * 4 {
            return Err(InvalidCursor);
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| InvalidCursor)?;
        let key = String::from_utf8(bytes).map_err(|_| InvalidCursor)?;
        let (at, id) = key.split_at_checked(TIMESTAMP_LEN).ok_or(InvalidCursor)?;
        let id = id.strip_prefix('#').ok_or(InvalidCursor)?;
        if id.is_empty() || key.len() > MAX_SORT_KEY_BYTES || !canonical_timestamp(at) {
            return Err(InvalidCursor);
        }
        Ok(EventCursor { key })
    }

    /// What the client receives.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.as_bytes())
    }

    /// The sort key: DynamoDB's `event_key` of the event at this position.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether `event` comes strictly after this position.
    pub fn precedes(&self, event: &ChatEvent) -> bool {
        position_cmp(event, &self.key).is_gt()
    }
}

/// `event`'s sort key compared with `key`, without building the key.
pub fn position_cmp(event: &ChatEvent, key: &str) -> std::cmp::Ordering {
    let (at, rest) = key
        .split_at_checked(event.occurred_at.len())
        .unwrap_or((key, ""));
    event.occurred_at.as_str().cmp(at).then_with(|| {
        // `#` then the id, as in `{occurred_at}#{id}`.
        let mine = std::iter::once(b'#').chain(event.id.bytes());
        mine.cmp(rest.bytes())
    })
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` naming a real instant, written exactly as events are.
fn canonical_timestamp(text: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.3fZ")
        .ok()
        .and_then(|t| iso_millis(t.and_utc().timestamp_millis()))
        .is_some_and(|canonical| canonical == text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn event(at: &str, id: &str) -> ChatEvent {
        ChatEvent {
            id: id.into(),
            history_id: "c".into(),
            channel: "conversation:c".into(),
            event_type: "message:user".into(),
            client_id: None,
            trusted: true,
            payload: Value::Null.into(),
            occurred_at: at.into(),
            ..ChatEvent::plain()
        }
    }

    #[test]
    fn a_cursor_round_trips_and_orders_like_the_sort_key() {
        let e = event("2026-01-02T03:04:05.678Z", "ab:1:0");
        let cursor = EventCursor::of(&e);
        assert_eq!(cursor.key(), "2026-01-02T03:04:05.678Z#ab:1:0");
        assert_eq!(EventCursor::parse(&cursor.encode()), Ok(cursor.clone()));
        assert!(!cursor.encode().contains(['=', '+', '/']));

        assert!(!cursor.precedes(&e));
        assert!(cursor.precedes(&event("2026-01-02T03:04:05.678Z", "ab:1:1")));
        assert!(cursor.precedes(&event("2026-01-02T03:04:05.679Z", "a")));
        assert!(!cursor.precedes(&event("2026-01-02T03:04:05.678Z", "ab:1")));
        assert!(!cursor.precedes(&event("2026-01-02T03:04:05.677Z", "zz")));
        // The same order as comparing the keys themselves.
        let ids = ["a", "a#", "a#b", "ab", "b", "#", "~", "\u{e9}"];
        for x in ids {
            for y in ids {
                let (ex, ey) = (
                    event("2026-01-02T03:04:05.678Z", x),
                    event("2026-01-02T03:04:05.678Z", y),
                );
                assert_eq!(
                    position_cmp(&ex, &ey.event_key()),
                    ex.event_key().cmp(&ey.event_key()),
                    "{x} {y}"
                );
            }
        }
    }

    #[test]
    fn anything_but_a_cursor_this_service_made_is_refused() {
        let encode = |key: &str| URL_SAFE_NO_PAD.encode(key.as_bytes());
        let good = encode("2026-01-02T03:04:05.678Z#id");
        assert!(EventCursor::parse(&good).is_ok());
        let long_id = "i".repeat(MAX_SORT_KEY_BYTES - TIMESTAMP_LEN - 1);
        assert!(
            EventCursor::parse(&encode(&format!("2026-01-02T03:04:05.678Z#{long_id}"))).is_ok()
        );
        for bad in [
            String::new(),
            "!!!!".into(),
            format!("{good}="),
            base64::engine::general_purpose::STANDARD.encode("2026-01-02T03:04:05.678Z#i?>"),
            // A non-canonical last character (unused bits set).
            format!("{}B", &encode("2026-01-02T03:04:05.678Z#i")[..34]),
            encode("2026-01-02T03:04:05.678Z#"),
            encode("2026-01-02T03:04:05.678Z"),
            encode("2026-01-02T03:04:05.678Zid"),
            encode("2026-01-02T03:04:05.67Z#id"),
            encode("2026-01-02T03:04:05.6789Z#id"),
            encode("2026-01-02 03:04:05.678Z#id"),
            encode("2026-02-30T03:04:05.678Z#id"),
            encode("2026-01-02T24:04:05.678Z#id"),
            encode("+026-01-02T03:04:05.678Z#id"),
            encode("2026-01-02T03:04:05.678+00:00#id"),
            encode(&format!("2026-01-02T03:04:05.678Z#{long_id}i")),
            URL_SAFE_NO_PAD.encode(b"2026-01-02T03:04:05.678Z#\xff"),
        ] {
            assert_eq!(EventCursor::parse(&bad), Err(InvalidCursor), "{bad:?}");
        }
    }
}
