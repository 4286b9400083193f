//! Identifiers that end up inside channel names and Ably capabilities.
//!
//! `userId`, `contactId` and conversation ids must match `^[A-Za-z0-9_-]{1,128}$`:
//! anything else (notably `*`, `:`, `[`) could widen a capability or address another
//! channel, so it is refused with a 400 before it gets near one.

use crate::platform::error::ApiError;

pub const MAX_IDENTIFIER_LEN: usize = 128;

/// Whether `value` matches `^[A-Za-z0-9_-]{1,128}$`.
pub fn is_identifier(value: &str) -> bool {
    (1..=MAX_IDENTIFIER_LEN).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `value` if it is a valid identifier, else a 400 `invalid_identifier` naming `what`.
pub fn identifier<'a>(value: &'a str, what: &str) -> Result<&'a str, ApiError> {
    if is_identifier(value) {
        Ok(value)
    } else {
        Err(ApiError::bad_request(
            "invalid_identifier",
            format!("{what} must match ^[A-Za-z0-9_-]{{1,128}}$"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_safe_alphabet_is_an_identifier() {
        for ok in ["a", "conv-1", "user_42", "ABC-def_019", &"x".repeat(128)] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in [
            "",
            "*",
            "a:b",
            "[*]",
            "conv 1",
            "conv.1",
            "é",
            "a/b",
            "a\n",
            &"x".repeat(129),
        ] {
            assert!(!is_identifier(bad), "{bad:?}");
        }
        let err = identifier("a*", "conversationId").unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(err.code(), "invalid_identifier");
        assert!(err.public_message().starts_with("conversationId"));
    }
}
