//! MessagePack bodies (`application/x-msgpack`, the "MsgPack" encoding of Ably's rules):
//! read with `rmpv` into a value tree, then given the JSON shape Ably's JSON encoding would
//! have sent, so both encodings go through the same normaliser and give the same events.
//!
//! The one difference between the two encodings is binary data: MessagePack carries it as
//! `bin`, JSON as base64 text with `base64` appended to the message's `encoding`. A binary
//! `data` becomes exactly that here.

use base64::Engine;
use serde_json::{Map, Number, Value};

use crate::ably::webhook::entry::PayloadError;

/// Nesting deeper than this is refused (Ably's payloads are a few levels deep).
const MAX_DEPTH: usize = 64;

/// Decodes a MessagePack body into the JSON tree its JSON twin would parse to.
pub fn to_json(body: &[u8]) -> Result<Value, PayloadError> {
    let mut reader = body;
    let value = rmpv::decode::read_value_with_max_depth(&mut reader, MAX_DEPTH)
        .map_err(|_| PayloadError::NotMsgpack)?;
    // One value, nothing after it.
    if !reader.is_empty() {
        return Err(PayloadError::NotMsgpack);
    }
    convert(value)
}

fn convert(value: rmpv::Value) -> Result<Value, PayloadError> {
    Ok(match value {
        rmpv::Value::Nil => Value::Null,
        rmpv::Value::Boolean(b) => Value::Bool(b),
        rmpv::Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(n), _) => Value::from(n),
            (None, Some(n)) => Value::from(n),
            (None, None) => return Err(PayloadError::NotMsgpack),
        },
        rmpv::Value::F32(f) => number(f64::from(f)),
        rmpv::Value::F64(f) => number(f),
        rmpv::Value::String(s) => match s.into_str() {
            Some(text) => Value::String(text),
            // A `str` must be UTF-8; binary comes as `bin`.
            None => return Err(PayloadError::NotMsgpack),
        },
        rmpv::Value::Binary(bytes) => Value::String(base64(&bytes)),
        rmpv::Value::Array(items) => {
            Value::Array(items.into_iter().map(convert).collect::<Result<_, _>>()?)
        }
        rmpv::Value::Map(entries) => Value::Object(convert_map(entries)?),
        rmpv::Value::Ext(..) => return Err(PayloadError::NotMsgpack),
    })
}

/// A map with string keys. A binary `data` is a message's binary payload: base64 text,
/// with `base64` as the last step of its `encoding`, as Ably's JSON encoding sends it.
fn convert_map(
    entries: Vec<(rmpv::Value, rmpv::Value)>,
) -> Result<Map<String, Value>, PayloadError> {
    let mut map = Map::new();
    let mut binary_data = false;
    for (key, value) in entries {
        let rmpv::Value::String(key) = key else {
            return Err(PayloadError::UnknownShape);
        };
        let key = key.into_str().ok_or(PayloadError::NotMsgpack)?;
        binary_data |= key == "data" && matches!(value, rmpv::Value::Binary(_));
        map.insert(key, convert(value)?);
    }
    if binary_data {
        let encoding = match map.remove("encoding") {
            Some(Value::String(steps)) if !steps.is_empty() => format!("{steps}/base64"),
            _ => "base64".to_owned(),
        };
        map.insert("encoding".to_owned(), Value::String(encoding));
    }
    Ok(map)
}

fn number(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `rmpv`'s own encoder writes the MessagePack side, so the decoder is checked against
    /// an independent writer.
    fn encode(value: &rmpv::Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, value).unwrap();
        out
    }

    fn s(text: &str) -> rmpv::Value {
        rmpv::Value::from(text)
    }

    #[test]
    fn scalars_arrays_and_maps_become_their_json_twins() {
        let value = rmpv::Value::Map(vec![
            (s("n"), rmpv::Value::from(-5)),
            (s("u"), rmpv::Value::from(u64::MAX)),
            (s("f"), rmpv::Value::F64(1.5)),
            (s("b"), rmpv::Value::Boolean(true)),
            (s("z"), rmpv::Value::Nil),
            (
                s("a"),
                rmpv::Value::Array(vec![s("x"), rmpv::Value::from(1)]),
            ),
        ]);
        assert_eq!(
            to_json(&encode(&value)).unwrap(),
            json!({"n": -5, "u": u64::MAX, "f": 1.5, "b": true, "z": null, "a": ["x", 1]})
        );
    }

    #[test]
    fn binary_data_is_base64_with_the_encoding_recorded() {
        let message = |encoding: Option<&str>| {
            let mut entries = vec![(s("data"), rmpv::Value::Binary(vec![0, 159, 255]))];
            if let Some(e) = encoding {
                entries.push((s("encoding"), s(e)));
            }
            to_json(&encode(&rmpv::Value::Map(entries))).unwrap()
        };
        assert_eq!(message(None), json!({"data": "AJ//", "encoding": "base64"}));
        assert_eq!(
            message(Some("json/utf-8")),
            json!({"data": "AJ//", "encoding": "json/utf-8/base64"})
        );
        // Binary anywhere else is just base64.
        let other = rmpv::Value::Map(vec![(s("blob"), rmpv::Value::Binary(vec![1]))]);
        assert_eq!(to_json(&encode(&other)).unwrap(), json!({"blob": "AQ=="}));
    }

    #[test]
    fn what_is_not_one_msgpack_value_is_refused() {
        assert_eq!(to_json(b""), Err(PayloadError::NotMsgpack));
        // A map that announces 2 entries and holds 1.
        assert_eq!(
            to_json(&[0x82, 0xa1, b'a', 0x01]),
            Err(PayloadError::NotMsgpack)
        );
        // Two values.
        assert_eq!(to_json(&[0x01, 0x02]), Err(PayloadError::NotMsgpack));
        // A non-string key.
        let keyed = rmpv::Value::Map(vec![(rmpv::Value::from(1), s("x"))]);
        assert_eq!(to_json(&encode(&keyed)), Err(PayloadError::UnknownShape));
        // Nesting past the depth limit.
        let mut deep = rmpv::Value::Nil;
        for _ in 0..(MAX_DEPTH + 5) {
            deep = rmpv::Value::Array(vec![deep]);
        }
        assert_eq!(to_json(&encode(&deep)), Err(PayloadError::NotMsgpack));
        let ext = rmpv::Value::Ext(1, vec![0]);
        assert_eq!(to_json(&encode(&ext)), Err(PayloadError::NotMsgpack));
    }
}
