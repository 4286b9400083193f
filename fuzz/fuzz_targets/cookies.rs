//! Cookie header parsing for the chat session
//! (`chat_core::identity::session::session_cookie`).
//!
//! Any bytes in any number of Cookie headers: no panic; what it returns is non-empty and
//! really stood after `__Host-chat_session=` in one of the headers.
#![no_main]

use chat_core::identity::session::session_cookie;
use http::header::{HeaderMap, HeaderValue, COOKIE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|headers: Vec<Vec<u8>>| {
    let mut map = HeaderMap::new();
    for raw in &headers {
        if let Ok(value) = HeaderValue::from_bytes(raw) {
            map.append(COOKIE, value);
        }
    }
    if let Some(token) = session_cookie(&map) {
        assert!(!token.is_empty());
        let found = map.get_all(COOKIE).iter().any(|v| {
            let text = String::from_utf8_lossy(v.as_bytes());
            text.contains("__Host-chat_session") && text.contains(token)
        });
        assert!(found, "{token:?} not in the headers");
    }
});
