//! Redis replies as Upstash's JSON, plain or under `Upstash-Encoding: base64`.
//!
//! With base64 (the default of the official `@upstash/redis` client), Upstash encodes every
//! string in a result, at any depth of nesting, and leaves integers and `null` as they are.
//! The one exception is a result that is the status reply `OK`, which stays `"OK"`.
//! Error replies (`{"error": ...}`) are never encoded. The client decodes exactly so: a
//! top-level `"OK"` is kept, every other string it meets in a result is base64-decoded,
//! and a string that is not valid base64 is passed through as it is, so a plain `v1`
//! would silently decode to garbage.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hyper::HeaderMap;
use serde_json::{json, Value};

use crate::resp::Frame;

/// The request header that selects the response encoding.
pub const ENCODING_HEADER: &str = "upstash-encoding";

/// How strings in a result are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 text; bytes that are not UTF-8 become U+FFFD, as Upstash replaces them.
    Plain,
    /// Standard base64 of the raw bytes.
    Base64,
}

impl Encoding {
    /// The encoding a request asks for with `Upstash-Encoding`.
    pub fn requested(headers: &HeaderMap) -> Self {
        let base64 = headers
            .get(ENCODING_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("base64"));
        if base64 {
            Encoding::Base64
        } else {
            Encoding::Plain
        }
    }

    /// One command's reply as a pipeline or transaction entry: `{"result"}` or `{"error"}`.
    pub fn entry(self, reply: Frame) -> Value {
        match reply {
            Frame::Error(message) => json!({ "error": &*message }),
            other => json!({ "result": self.result(other) }),
        }
    }

    /// One command's reply as the value of a `result` field.
    pub fn result(self, reply: Frame) -> Value {
        match reply {
            Frame::SimpleString(status) if status == "OK" => Value::from("OK"),
            other => self.value(other),
        }
    }

    fn value(self, reply: Frame) -> Value {
        match reply {
            Frame::Integer(i) => Value::from(i),
            Frame::Null => Value::Null,
            Frame::BulkString(bytes) | Frame::SimpleString(bytes) => self.string(&bytes),
            Frame::Error(text) => self.string(text.as_bytes()),
            Frame::Array(items) => {
                Value::Array(items.into_iter().map(|item| self.value(item)).collect())
            }
        }
    }

    fn string(self, bytes: &[u8]) -> Value {
        Value::String(match self {
            Encoding::Base64 => STANDARD.encode(bytes),
            Encoding::Plain => String::from_utf8_lossy(bytes).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn bulk(s: &[u8]) -> Frame {
        Frame::BulkString(Bytes::copy_from_slice(s))
    }

    fn simple(s: &str) -> Frame {
        Frame::SimpleString(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn base64_encodes_every_string_but_a_top_level_ok() {
        let b64 = Encoding::Base64;
        assert_eq!(b64.result(simple("OK")), json!("OK"));
        assert_eq!(b64.result(simple("PONG")), json!("UE9ORw=="));
        assert_eq!(b64.result(bulk(b"v1")), json!("djE="));
        assert_eq!(b64.result(bulk(b"OK")), json!("T0s="));
        assert_eq!(b64.result(Frame::Integer(-3)), json!(-3));
        assert_eq!(b64.result(Frame::Null), Value::Null);
        let nested = Frame::Array(vec![
            bulk(b"a"),
            simple("OK"),
            Frame::Integer(1),
            Frame::Null,
            Frame::Array(vec![bulk(b"b"), Frame::Array(vec![bulk(b"c")])]),
        ]);
        assert_eq!(
            b64.result(nested),
            json!(["YQ==", "T0s=", 1, null, ["Yg==", ["Yw=="]]])
        );
    }

    #[test]
    fn base64_keeps_bytes_that_plain_text_cannot() {
        let bytes = b"\xff\x00caf\xc3\xa9";
        assert_eq!(Encoding::Base64.result(bulk(bytes)), json!("/wBjYWbDqQ=="));
        assert_eq!(
            Encoding::Plain.result(bulk(bytes)),
            json!("\u{fffd}\u{0}café")
        );
    }

    #[test]
    fn errors_stay_plain_in_entries() {
        let error = Frame::Error("ERR value is not an integer or out of range".into());
        for encoding in [Encoding::Plain, Encoding::Base64] {
            assert_eq!(
                encoding.entry(error.clone()),
                json!({"error": "ERR value is not an integer or out of range"})
            );
        }
        assert_eq!(
            Encoding::Base64.entry(simple("OK")),
            json!({"result": "OK"})
        );
        assert_eq!(
            Encoding::Base64.entry(bulk(b"x")),
            json!({"result": "eA=="})
        );
    }

    #[test]
    fn the_header_selects_base64_case_insensitively() {
        let mut headers = HeaderMap::new();
        assert_eq!(Encoding::requested(&headers), Encoding::Plain);
        headers.insert(ENCODING_HEADER, "Base64".parse().unwrap());
        assert_eq!(Encoding::requested(&headers), Encoding::Base64);
        headers.insert(ENCODING_HEADER, "gzip".parse().unwrap());
        assert_eq!(Encoding::requested(&headers), Encoding::Plain);
    }
}
