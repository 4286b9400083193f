//! A chat event's payload: the message's decoded `data`, kept as compact JSON text.
//!
//! Text, not a `serde_json::Value` tree: a tree costs 32 bytes or more per element, so a
//! 34 KB message of 17 000 numbers becomes half a megabyte in memory, and a webhook of
//! them several hundred. As text, a payload costs its own length wherever it goes (the
//! cache entry, the DynamoDB item's `payload_json`, the answer to a reader), and the few
//! fields anything reads (`timing`, the bridge's `text`) are looked up without building
//! the rest. The text is canonical: what `serde_json` writes for the value (object keys
//! sorted, no spaces), so equal payloads are equal texts.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// Compact, canonical JSON text of a payload.
#[derive(Clone)]
pub struct Payload(Box<RawValue>);

impl Payload {
    /// The canonical text of `value`.
    pub fn from_value(value: &Value) -> Self {
        // A `Value` always serialises (its keys are strings), and its text is JSON.
        match serde_json::value::to_raw_value(value) {
            Ok(raw) => Payload(raw),
            Err(_) => Self::null(),
        }
    }

    /// `null`.
    pub fn null() -> Self {
        Payload(Self::raw("null"))
    }

    fn raw(text: &str) -> Box<RawValue> {
        match RawValue::from_string(text.to_owned()) {
            Ok(raw) => raw,
            Err(_) => unreachable!("a JSON literal"),
        }
    }

    /// JSON text as stored (by this type, so canonical); text that is not JSON is kept as
    /// a string.
    pub fn from_stored_text(text: String) -> Self {
        if is_compact(&text) && serde_json::from_str::<&RawValue>(&text).is_ok() {
            // Checked just above: it is JSON.
            return RawValue::from_string(text).map_or_else(|_| Self::null(), Payload);
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(value) => Self::from_value(&value),
            Err(_) => Self::from_value(&Value::String(text)),
        }
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// The payload as a JSON value (a tree: for tests and tools, not the mirror's path).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.json()).unwrap_or(Value::Null)
    }

    /// Whether the payload is a JSON string.
    pub fn is_string(&self) -> bool {
        self.json().starts_with('"')
    }

    /// The fields of an object payload, each as its JSON text; `None` for anything else.
    pub fn fields(&self) -> Option<Fields<'_>> {
        if !self.json().starts_with('{') {
            return None;
        }
        serde_json::from_str(self.json()).ok().map(Fields)
    }

    pub fn as_raw(&self) -> &RawValue {
        &self.0
    }
}

/// The fields of an object payload, unparsed.
pub struct Fields<'a>(BTreeMap<String, &'a RawValue>);

impl<'a> Fields<'a> {
    /// A field that is present and not `null`.
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.get(name).copied().filter(|v| v.get() != "null")
    }

    /// A finite, non-negative number `outer.inner` (e.g. `timing.ai_duration_ms`).
    pub fn number_in(&self, outer: &str, inner: &str) -> Option<f64> {
        let nested: BTreeMap<String, &RawValue> =
            serde_json::from_str(self.get(outer)?.get()).ok()?;
        let number: f64 = serde_json::from_str(nested.get(inner)?.get()).ok()?;
        (number.is_finite() && number >= 0.0).then_some(number)
    }
}

impl Default for Payload {
    fn default() -> Self {
        Self::null()
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Self::from_value(&value)
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl PartialEq<Value> for Payload {
    fn eq(&self, other: &Value) -> bool {
        self.to_value() == *other
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    /// The payload as written: kept as text, in the canonical form (a reader's JSON was
    /// written by this type; anything else is made canonical).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        if is_compact(raw.get()) {
            Ok(Payload(raw))
        } else {
            let value: Value = serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?;
            Ok(Self::from_value(&value))
        }
    }
}

/// Whether JSON text has no whitespace between tokens (as `serde_json` writes it). A
/// cheap check: text written by this type passes without being parsed again.
fn is_compact(text: &str) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b' ' | b'\n' | b'\r' | b'\t' => return false,
                _ => {}
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_payload_is_canonical_text_that_round_trips() {
        let value = json!({"b": [1, 2.5, "x y"], "a": {"c": null}});
        let payload = Payload::from_value(&value);
        assert_eq!(payload.json(), r#"{"a":{"c":null},"b":[1,2.5,"x y"]}"#);
        assert_eq!(payload, value);
        assert_eq!(payload.to_value(), value);
        // Serialised as the JSON it holds, read back as the same text.
        let event = json!({"payload": payload}).to_string();
        assert_eq!(event, r#"{"payload":{"a":{"c":null},"b":[1,2.5,"x y"]}}"#);
        let back: BTreeMap<String, Payload> = serde_json::from_str(&event).unwrap();
        assert_eq!(back["payload"], payload);
        // Text written another way is made canonical.
        let spaced: Payload =
            serde_json::from_str(r#"{ "b" : [1, 2.5, "x y"], "a": {"c":null} }"#).unwrap();
        assert_eq!(spaced.json(), payload.json());
        let from_value: Payload = serde_json::from_value(value).unwrap();
        assert_eq!(from_value.json(), payload.json());
    }

    #[test]
    fn fields_are_read_without_the_rest_of_the_payload() {
        let payload = Payload::from_value(&json!({
            "text": "hi", "none": null, "timing": {"ai_duration_ms": 9e9, "queue_duration_ms": -1, "x": "5"},
            "big": vec![0; 1000]
        }));
        let fields = payload.fields().unwrap();
        assert_eq!(fields.get("text").unwrap().get(), r#""hi""#);
        assert!(fields.get("none").is_none());
        assert!(fields.get("missing").is_none());
        assert_eq!(fields.number_in("timing", "ai_duration_ms"), Some(9e9));
        assert_eq!(fields.number_in("timing", "queue_duration_ms"), None);
        assert_eq!(fields.number_in("timing", "x"), None);
        assert_eq!(fields.number_in("text", "x"), None);
        assert!(Payload::from_value(&json!([1])).fields().is_none());
        assert!(Payload::from_value(&json!("s")).is_string());
        assert!(!Payload::null().is_string());
    }
}
