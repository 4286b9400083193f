//! MessagePack bodies (`application/x-msgpack`, the "MsgPack" encoding of Ably's rules):
//! written out as the JSON text Ably's JSON encoding would have sent, which the JSON
//! parsers then read, so both encodings give the same events.
//!
//! The one difference between the two encodings is binary data: MessagePack carries it as
//! `bin`, JSON as base64 text with `base64` appended to the message's `encoding`. A binary
//! `data` becomes exactly that here.
//!
//! `rmp` (the rmp project's low-level reader) decodes every marker, length and number;
//! this module only walks the values it reads into JSON text, one at a time. It writes no
//! value tree: a tree costs 32 bytes or more per element, 32 times a body of small
//! integers, while the text costs at most a few times the body. And the `bin` rule above
//! needs to know which map key a value sits under, which a serde transcoder does not
//! tell.

use base64::Engine;
use rmp::Marker;

use crate::ably::webhook::entry::PayloadError;

/// Nesting deeper than this is refused (Ably's payloads are a few levels deep).
const MAX_DEPTH: usize = 64;

/// Writes a MessagePack body as the JSON text of its JSON twin.
pub fn to_json_text(body: &[u8]) -> Result<Vec<u8>, PayloadError> {
    let mut reader = body;
    let mut out = Vec::with_capacity(body.len().saturating_mul(2));
    value(&mut reader, &mut out, 0)?;
    // One value, nothing after it.
    if !reader.is_empty() {
        return Err(PayloadError::NotMsgpack);
    }
    Ok(out)
}

/// The JSON text of a MessagePack body, parsed: for tests.
#[cfg(test)]
fn to_json(body: &[u8]) -> Result<serde_json::Value, PayloadError> {
    let text = to_json_text(body)?;
    serde_json::from_slice(&text).map_err(|_| PayloadError::NotJson)
}

fn not_msgpack<E>(_: E) -> PayloadError {
    PayloadError::NotMsgpack
}

/// The next `len` bytes.
fn take<'a>(reader: &mut &'a [u8], len: u32) -> Result<&'a [u8], PayloadError> {
    let len = usize::try_from(len).map_err(not_msgpack)?;
    if len > reader.len() {
        return Err(PayloadError::NotMsgpack);
    }
    let (bytes, rest) = reader.split_at(len);
    *reader = rest;
    Ok(bytes)
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Strings and numbers always serialise.
    let _ = serde_json::to_writer(out, value);
}

/// Writes the next value as JSON; whether it was `bin`.
fn value(reader: &mut &[u8], out: &mut Vec<u8>, depth: usize) -> Result<bool, PayloadError> {
    let marker = Marker::from_u8(*reader.first().ok_or(PayloadError::NotMsgpack)?);
    match marker {
        Marker::Null => {
            rmp::decode::read_nil(reader).map_err(not_msgpack)?;
            out.extend_from_slice(b"null");
        }
        Marker::True | Marker::False => {
            let b = rmp::decode::read_bool(reader).map_err(not_msgpack)?;
            write_json(out, &b);
        }
        Marker::U64 => {
            let n: u64 = rmp::decode::read_int(reader).map_err(not_msgpack)?;
            write_json(out, &n);
        }
        Marker::FixPos(_)
        | Marker::FixNeg(_)
        | Marker::U8
        | Marker::U16
        | Marker::U32
        | Marker::I8
        | Marker::I16
        | Marker::I32
        | Marker::I64 => {
            let n: i64 = rmp::decode::read_int(reader).map_err(not_msgpack)?;
            write_json(out, &n);
        }
        Marker::F32 => {
            let f = rmp::decode::read_f32(reader).map_err(not_msgpack)?;
            float(out, f64::from(f));
        }
        Marker::F64 => {
            let f = rmp::decode::read_f64(reader).map_err(not_msgpack)?;
            float(out, f);
        }
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
            write_json(out, text(reader)?);
        }
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
            let len = rmp::decode::read_bin_len(reader).map_err(not_msgpack)?;
            let bytes = take(reader, len)?;
            write_json(
                out,
                &base64::engine::general_purpose::STANDARD.encode(bytes),
            );
            return Ok(true);
        }
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
            let len = rmp::decode::read_array_len(reader).map_err(not_msgpack)?;
            let depth = deeper(depth)?;
            out.push(b'[');
            for i in 0..len {
                if i > 0 {
                    out.push(b',');
                }
                value(reader, out, depth)?;
            }
            out.push(b']');
        }
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
            let len = rmp::decode::read_map_len(reader).map_err(not_msgpack)?;
            map(reader, out, len, deeper(depth)?)?;
        }
        _ => return Err(PayloadError::NotMsgpack),
    }
    Ok(false)
}

fn deeper(depth: usize) -> Result<usize, PayloadError> {
    if depth >= MAX_DEPTH {
        return Err(PayloadError::NotMsgpack);
    }
    Ok(depth + 1)
}

/// A `str`, which must be UTF-8 (binary comes as `bin`).
fn text<'a>(reader: &mut &'a [u8]) -> Result<&'a str, PayloadError> {
    let len = rmp::decode::read_str_len(reader).map_err(not_msgpack)?;
    std::str::from_utf8(take(reader, len)?).map_err(not_msgpack)
}

fn float(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        write_json(out, &f);
    } else {
        out.extend_from_slice(b"null");
    }
}

/// A map with string keys. A binary `data` is a message's binary payload: base64 text,
/// with `base64` as the last step of its `encoding`, as Ably's JSON encoding sends it.
fn map(reader: &mut &[u8], out: &mut Vec<u8>, len: u32, depth: usize) -> Result<(), PayloadError> {
    out.push(b'{');
    // Where the (last) `encoding` value was written, and whether the (last) `data` is bin.
    let mut encoding_at = None;
    let mut binary_data = false;
    for i in 0..len {
        if i > 0 {
            out.push(b',');
        }
        let key_marker = Marker::from_u8(*reader.first().ok_or(PayloadError::NotMsgpack)?);
        if !matches!(
            key_marker,
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32
        ) {
            return Err(PayloadError::UnknownShape);
        }
        let key = text(reader)?;
        write_json(out, key);
        out.push(b':');
        let start = out.len();
        let binary = value(reader, out, depth)?;
        match key {
            "data" => binary_data = binary,
            "encoding" => encoding_at = Some(start..out.len()),
            _ => {}
        }
    }
    if binary_data {
        let steps = encoding_at
            .as_ref()
            .and_then(|at| serde_json::from_slice::<String>(&out[at.clone()]).ok())
            .filter(|steps| !steps.is_empty());
        let encoding = match steps {
            Some(steps) => format!("{steps}/base64"),
            None => "base64".to_owned(),
        };
        let mut written = Vec::with_capacity(encoding.len() + 2);
        write_json(&mut written, &encoding);
        match encoding_at {
            Some(at) => {
                out.splice(at, written);
            }
            None => {
                out.extend_from_slice(b",\"encoding\":");
                out.extend_from_slice(&written);
            }
        }
    }
    out.push(b'}');
    Ok(())
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
        // Not UTF-8 in a `str`.
        assert_eq!(to_json(&[0xa2, 0xff, 0xfe]), Err(PayloadError::NotMsgpack));
        // A string longer than the body.
        assert_eq!(to_json(&[0xa5, b'a']), Err(PayloadError::NotMsgpack));
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
