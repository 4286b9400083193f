//! Ably's message `encoding`: the transformations applied to `data`, read right to left
//! (`json/utf-8/base64`: base64-decode, then UTF-8, then JSON).

use base64::Engine;
use serde_json::Value;

enum Decoded {
    Json(Value),
    Bytes(Vec<u8>),
}

/// Applies the `encoding` chain right to left (`json`, `base64`, `utf-8`). Stops at the
/// first step it cannot apply and returns the data as it was then, with the steps left.
pub fn decode_data(data: Value, encoding: Option<&str>) -> (Value, Option<String>) {
    // An empty step (`/utf-8`, `json//base64`) is no transformation.
    let steps: Vec<&str> = encoding
        .unwrap_or_default()
        .split('/')
        .filter(|step| !step.is_empty())
        .collect();
    if steps.is_empty() {
        return (data, None);
    }
    let mut current = Decoded::Json(data);
    let mut remaining = steps.len();
    while remaining > 0 {
        match apply(steps[remaining - 1], current) {
            Ok(decoded) => {
                current = decoded;
                remaining -= 1;
            }
            Err(unchanged) => {
                current = unchanged;
                break;
            }
        }
    }
    let mut left: Vec<&str> = steps[..remaining].to_vec();
    let value = match current {
        Decoded::Json(v) => v,
        Decoded::Bytes(bytes) => {
            // Binary data stays base64 in JSON, and says so.
            left.push("base64");
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
    };
    let left = if left.is_empty() {
        None
    } else {
        Some(left.join("/"))
    };
    (value, left)
}

/// One decoding step; gives the input back unchanged when the step does not apply.
fn apply(step: &str, current: Decoded) -> Result<Decoded, Decoded> {
    let engine = &base64::engine::general_purpose::STANDARD;
    match (step, current) {
        ("base64", Decoded::Json(Value::String(s))) => match engine.decode(&s) {
            Ok(bytes) => Ok(Decoded::Bytes(bytes)),
            Err(_) => Err(Decoded::Json(Value::String(s))),
        },
        ("utf-8" | "utf8", Decoded::Bytes(bytes)) => match String::from_utf8(bytes) {
            Ok(s) => Ok(Decoded::Json(Value::String(s))),
            Err(e) => Err(Decoded::Bytes(e.into_bytes())),
        },
        // Text that is already text: nothing to do.
        ("utf-8" | "utf8", text @ Decoded::Json(Value::String(_))) => Ok(text),
        ("json", Decoded::Json(Value::String(s))) => match serde_json::from_str(&s) {
            Ok(v) => Ok(Decoded::Json(v)),
            Err(_) => Err(Decoded::Json(Value::String(s))),
        },
        ("json", Decoded::Bytes(bytes)) => match serde_json::from_slice(&bytes) {
            Ok(v) => Ok(Decoded::Json(v)),
            Err(_) => Err(Decoded::Bytes(bytes)),
        },
        (_, other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodings_are_decoded_right_to_left() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            decode_data(json!(r#"{"a":1}"#), Some("json")),
            (json!({"a": 1}), None)
        );
        assert_eq!(
            decode_data(json!(b64(r#"{"a":[1,2]}"#)), Some("json/utf-8/base64")),
            (json!({"a": [1, 2]}), None)
        );
        assert_eq!(
            decode_data(json!(b64("héllo")), Some("utf-8/base64")),
            (json!("héllo"), None)
        );
        // Binary stays base64 and says so.
        assert_eq!(
            decode_data(json!(b64("\u{1}\u{2}")), Some("base64")),
            (json!(b64("\u{1}\u{2}")), Some("base64".into()))
        );
        // An encoding we cannot decode keeps the data and the remaining chain.
        assert_eq!(
            decode_data(
                json!("c2VjcmV0"),
                Some("json/utf-8/cipher+aes-128-cbc/base64")
            ),
            (
                json!("c2VjcmV0"),
                Some("json/utf-8/cipher+aes-128-cbc/base64".into())
            )
        );
        assert_eq!(
            decode_data(json!("not json"), Some("json")),
            (json!("not json"), Some("json".into()))
        );
        assert_eq!(
            decode_data(json!("%%%"), Some("base64")),
            (json!("%%%"), Some("base64".into()))
        );
        assert_eq!(
            decode_data(json!("plain"), Some("utf-8")),
            (json!("plain"), None)
        );
    }

    #[test]
    fn empty_encoding_steps_are_no_steps() {
        // Found by fuzzing: "/utf8" left the event with an empty leftover encoding.
        assert_eq!(
            decode_data(json!("r32;"), Some("/utf8")),
            (json!("r32;"), None)
        );
        assert_eq!(decode_data(json!("x"), Some("//")), (json!("x"), None));
        let b64 = base64::engine::general_purpose::STANDARD.encode(r#"{"a":1}"#);
        assert_eq!(
            decode_data(json!(b64), Some("json//base64/")),
            (json!({"a": 1}), None)
        );
        assert_eq!(
            decode_data(json!("x"), Some("cipher//utf-8")),
            (json!("x"), Some("cipher".into()))
        );
    }
}
