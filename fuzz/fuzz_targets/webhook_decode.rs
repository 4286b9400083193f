//! Message `data` decoding along its `encoding` chain
//! (`chat_core::ably::webhook::encoding::decode_data`).
//!
//! Any data and chain: no panic; the result is a fixed point (decoding it again with the
//! steps left over changes nothing); no encoding means no change; and a JSON value
//! encoded as Ably encodes it (`json/utf-8/base64`, `json`, `utf-8/base64`) decodes back
//! to itself exactly.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine;
use chat_core::ably::webhook::encoding::decode_data;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Parsed as JSON when it is JSON, else taken as a string.
    data: &'a str,
    encoding: Option<&'a str>,
}

fuzz_target!(|input: Input<'_>| {
    let value: Value =
        serde_json::from_str(input.data).unwrap_or_else(|_| Value::String(input.data.to_owned()));

    let (decoded, left) = decode_data(value.clone(), input.encoding);
    let (again, left_again) = decode_data(decoded.clone(), left.as_deref());
    assert_eq!(
        (&again, &left_again),
        (&decoded, &left),
        "decoding is not a fixed point"
    );
    if let Some(left) = &left {
        assert!(!left.is_empty());
    }

    assert_eq!(decode_data(value.clone(), None), (value.clone(), None));
    assert_eq!(decode_data(value.clone(), Some("")), (value.clone(), None));

    let b64 = |bytes: &[u8]| Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    let text = value.to_string();
    assert_eq!(
        decode_data(b64(text.as_bytes()), Some("json/utf-8/base64")),
        (value.clone(), None)
    );
    assert_eq!(
        decode_data(Value::String(text), Some("json")),
        (value, None)
    );
    assert_eq!(
        decode_data(b64(input.data.as_bytes()), Some("utf-8/base64")),
        (Value::String(input.data.to_owned()), None)
    );
});
