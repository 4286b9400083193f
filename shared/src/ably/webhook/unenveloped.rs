//! A non-enveloped single webhook: the message's metadata in `x-ably-envelope-*` and
//! `x-ably-message-*` headers, its `data` as the raw body, typed by `Content-Type`
//! (`application/json`, `text/plain` or `application/octet-stream`).

use std::borrow::Cow;

use base64::Engine;
use serde_json::value::RawValue;

use crate::ably::webhook::entry::{push_message, PayloadError, Place, RawMessage, WebhookBatch};

/// The header that marks a non-enveloped delivery: its channel.
pub const CHANNEL_HEADER: &str = "x-ably-envelope-channel";
const SOURCE_HEADER: &str = "x-ably-envelope-source";
const ID_HEADER: &str = "x-ably-message-id";
const CLIENT_ID_HEADER: &str = "x-ably-message-client-id";
const TIMESTAMP_HEADER: &str = "x-ably-message-timestamp";
const NAME_HEADER: &str = "x-ably-message-name";
const ACTION_HEADER: &str = "x-ably-message-action";

/// Normalises one non-enveloped delivery; `header` looks a request header up by its
/// lowercase name.
pub fn parse<'h>(
    body: &[u8],
    content_type: Option<&str>,
    header: impl Fn(&str) -> Option<&'h str>,
) -> Result<WebhookBatch, PayloadError> {
    let channel = header(CHANNEL_HEADER)
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or(PayloadError::UnknownShape)?;
    let mut batch = WebhookBatch::default();
    let presence = match header(SOURCE_HEADER).map(str::trim) {
        Some("channel.lifecycle" | "channel.occupancy") => {
            batch.lifecycle = 1;
            return Ok(batch);
        }
        Some("channel.presence") => true,
        _ => false,
    };
    let text = |name: &str| {
        header(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let timestamp = match text(TIMESTAMP_HEADER) {
        None => None,
        Some(ts) => match ts.parse::<i64>() {
            Ok(ms) => Some(ms),
            Err(_) => {
                batch
                    .skipped
                    .push(format!("{TIMESTAMP_HEADER}: not milliseconds ({ts})"));
                return Ok(batch);
            }
        },
    };
    let (data, encoding) = body_data(body, content_type)?;
    let raw = RawMessage {
        id: text(ID_HEADER),
        client_id: text(CLIENT_ID_HEADER),
        timestamp,
        name: text(NAME_HEADER),
        data,
        encoding,
        // Presence names its action in `x-ably-message-action` (or, per Ably's header
        // table, in `x-ably-message-name`).
        action: text(ACTION_HEADER)
            .or_else(|| presence.then(|| text(NAME_HEADER)).flatten())
            .map(|action| json_string(&action)),
        // No header carries a message's serial, version, annotations or extras.
        ..RawMessage::default()
    };
    let key = if presence { "presence" } else { "messages" };
    push_message(
        Place::Entry(None, key, 0),
        channel,
        raw,
        None,
        presence,
        &mut batch,
    );
    Ok(batch)
}

/// A text as a JSON string.
fn json_string(text: &str) -> Cow<'static, RawValue> {
    // A string always serialises.
    Cow::Owned(serde_json::value::to_raw_value(text).unwrap_or_default())
}

/// The body as a message's `data`, as JSON text: JSON as it is, text as a string, binary
/// as base64 with its encoding. Without a known type, JSON if it parses, then text, then
/// binary.
fn body_data<'a>(
    body: &'a [u8],
    content_type: Option<&str>,
) -> Result<(Option<Cow<'a, RawValue>>, Option<String>), PayloadError> {
    if body.is_empty() {
        return Ok((None, None));
    }
    let binary = || {
        let text = base64::engine::general_purpose::STANDARD.encode(body);
        (Some(json_string(&text)), Some("base64".to_owned()))
    };
    let text = || {
        std::str::from_utf8(body)
            .ok()
            .map(|t| (Some(json_string(t)), None))
    };
    let json = || {
        serde_json::from_slice::<&RawValue>(body)
            .ok()
            .map(|raw| (Some(Cow::Borrowed(raw)), None))
    };
    match media_type(content_type).as_deref() {
        Some("application/json") => json().ok_or(PayloadError::NotJson),
        Some("text/plain") => Ok(text().unwrap_or_else(binary)),
        Some("application/octet-stream") => Ok(binary()),
        _ => Ok(json().or_else(text).unwrap_or_else(binary)),
    }
}

/// `Content-Type` without its parameters, lowercase.
pub fn media_type(content_type: Option<&str>) -> Option<String> {
    content_type.map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deliver(
        body: &[u8],
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> Result<WebhookBatch, PayloadError> {
        let mut all = vec![
            (CHANNEL_HEADER, "conversation:c-1"),
            ("x-ably-envelope-source", "channel.message"),
            (ID_HEADER, "m1:0"),
            (CLIENT_ID_HEADER, "customer:u-1"),
            (TIMESTAMP_HEADER, "1700000000123"),
            (NAME_HEADER, "message:user"),
        ];
        for (name, value) in headers {
            all.retain(|(n, _)| n != name);
            all.push((name, value));
        }
        all.retain(|(_, v)| !v.is_empty());
        parse(body, Some(content_type), |name| {
            all.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        })
    }

    #[test]
    fn a_json_message_takes_its_metadata_from_the_headers() {
        let batch = deliver(br#"{"text":"hi"}"#, "application/json; charset=utf-8", &[]).unwrap();
        let e = &batch.events[0];
        assert_eq!(
            (e.id.as_str(), e.channel.as_str(), e.history_id.as_str()),
            ("m1:0", "conversation:c-1", "c-1")
        );
        assert_eq!(e.event_type, "message:user");
        assert_eq!(e.client_id.as_deref(), Some("customer:u-1"));
        assert_eq!(e.payload, json!({"text": "hi"}));
        assert_eq!(e.occurred_at, "2023-11-14T22:13:20.123Z");
        assert_eq!(e.encoding, None);
        assert!(
            e.trusted,
            "a customer may send message:user on its conversation"
        );
    }

    #[test]
    fn text_and_binary_bodies() {
        let text = deliver(b"hello", "text/plain", &[]).unwrap();
        assert_eq!(text.events[0].payload, json!("hello"));
        let binary = deliver(&[0, 159, 255], "application/octet-stream", &[]).unwrap();
        assert_eq!(binary.events[0].payload, json!("AJ//"));
        assert_eq!(binary.events[0].encoding.as_deref(), Some("base64"));
        // Bytes that are UTF-8 are still binary when Ably says so.
        let utf8 = deliver(b"abc", "application/octet-stream", &[]).unwrap();
        assert_eq!(utf8.events[0].payload, json!("YWJj"));
        assert_eq!(utf8.events[0].encoding.as_deref(), Some("base64"));
        assert_eq!(
            deliver(b"not json", "application/json", &[]),
            Err(PayloadError::NotJson)
        );
    }

    #[test]
    fn presence_lifecycle_and_bad_headers() {
        let enter = deliver(
            b"",
            "text/plain",
            &[
                ("x-ably-envelope-source", "channel.presence"),
                (ACTION_HEADER, "enter"),
            ],
        )
        .unwrap();
        assert_eq!(enter.events[0].event_type, "presence:enter");
        assert_eq!(enter.events[0].payload, serde_json::Value::Null);
        let by_name = deliver(
            b"x",
            "text/plain",
            &[
                ("x-ably-envelope-source", "channel.presence"),
                (NAME_HEADER, "leave"),
            ],
        )
        .unwrap();
        assert_eq!(by_name.events[0].event_type, "presence:leave");
        let lifecycle = deliver(
            b"{}",
            "application/json",
            &[("x-ably-envelope-source", "channel.lifecycle")],
        )
        .unwrap();
        assert_eq!((lifecycle.events.len(), lifecycle.lifecycle), (0, 1));
        let late = deliver(b"1", "application/json", &[(TIMESTAMP_HEADER, "soon")]).unwrap();
        assert_eq!(
            late.skipped,
            vec!["x-ably-message-timestamp: not milliseconds (soon)"]
        );
        let untimed = deliver(b"1", "application/json", &[(TIMESTAMP_HEADER, "")]).unwrap();
        assert_eq!(untimed.skipped, vec!["messages[0]: no timestamp"]);
        assert_eq!(
            deliver(b"1", "application/json", &[(CHANNEL_HEADER, " ")]),
            Err(PayloadError::UnknownShape)
        );
    }
}
