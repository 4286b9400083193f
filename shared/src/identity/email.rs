//! Email addresses that resume links are sent to.
//!
//! A deliberately plain syntax check (no quoted local parts, no IP-literal domains, ASCII
//! only; internationalised domains arrive as punycode): what a mail provider will accept,
//! not everything RFC 5322 allows. At most 254 bytes (the SMTP path limit).

use std::fmt;

use sha2::{Digest, Sha256};

use crate::platform::error::ApiError;

/// The longest address SMTP can deliver to.
pub const MAX_EMAIL_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 63;

/// A syntactically valid email address; the domain is lowercased.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailAddress {
    address: String,
    at: usize,
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("email must be a valid address of at most 254 characters")]
pub struct InvalidEmail;

impl From<InvalidEmail> for ApiError {
    fn from(err: InvalidEmail) -> Self {
        ApiError::bad_request("invalid_email", err.to_string())
    }
}

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        if raw.len() > MAX_EMAIL_LEN {
            return Err(InvalidEmail);
        }
        let (local, domain) = raw.rsplit_once('@').ok_or(InvalidEmail)?;
        if !valid_local(local) || !valid_domain(domain) {
            return Err(InvalidEmail);
        }
        Ok(EmailAddress {
            address: format!("{local}@{}", domain.to_ascii_lowercase()),
            at: local.len(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The part after `@`: all that logs may show of an address.
    pub fn domain(&self) -> &str {
        &self.address[self.at + 1..]
    }

    /// A stable key for counting per mailbox without storing the address: hex SHA-256
    /// of [`Self::mailbox`], so that `Pat+1@` and `pat+2@` share one budget.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.mailbox().as_bytes()))
    }

    /// The mailbox the address delivers to, as mail providers commonly read it: lowercase,
    /// and without a `+tag` in the local part.
    pub fn mailbox(&self) -> String {
        let local = &self.address[..self.at];
        let local = local.split_once('+').map_or(local, |(mailbox, _)| mailbox);
        format!("{local}@{}", self.domain()).to_ascii_lowercase()
    }

    /// Whether both name the same address, letter case aside.
    pub fn same_address(&self, other: &str) -> bool {
        self.address.eq_ignore_ascii_case(other)
    }
}

/// Shows only the domain, so a stray `{:?}` cannot put an address into the logs.
impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress(***@{})", self.domain())
    }
}

/// Dot-separated runs of RFC 5322 `atext`.
fn valid_local(local: &str) -> bool {
    (1..=MAX_LOCAL_LEN).contains(&local.len())
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b))
        })
}

/// At least two labels of letters, digits and inner hyphens; the last not all digits.
fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=MAX_LABEL_LEN).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_parse_and_keep_their_local_part() {
        for ok in [
            "a@b.co",
            "first.last@example.com",
            "user+tag@sub.example.co.uk",
            "o'brien@xn--bcher-kva.example",
            "x_y-z@a-b.io",
        ] {
            assert_eq!(EmailAddress::parse(ok).unwrap().as_str(), ok, "{ok}");
        }
        let mixed = EmailAddress::parse("Ann.Lee@Example.COM").unwrap();
        assert_eq!(mixed.as_str(), "Ann.Lee@example.com");
        assert_eq!(mixed.domain(), "example.com");
        assert_eq!(
            mixed.fingerprint(),
            EmailAddress::parse("ann.lee@example.com")
                .unwrap()
                .fingerprint()
        );
        assert!(!format!("{mixed:?}").contains("Ann"));
    }

    #[test]
    fn tags_and_case_share_one_mailbox() {
        let a = EmailAddress::parse("Pat+1@Example.com").unwrap();
        let b = EmailAddress::parse("pat+2@example.COM").unwrap();
        let plain = EmailAddress::parse("pat@example.com").unwrap();
        assert_eq!(a.mailbox(), "pat@example.com");
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), plain.fingerprint());
        assert_ne!(
            a.fingerprint(),
            EmailAddress::parse("pat@example.org")
                .unwrap()
                .fingerprint()
        );
        assert!(a.same_address("pat+1@example.com"));
        assert!(!a.same_address("pat+2@example.com"));
    }

    #[test]
    fn malformed_and_oversized_addresses_are_refused() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("a@{}.com", vec!["b".repeat(63); 4].join("."));
        assert!(long_total.len() > MAX_EMAIL_LEN);
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a@@example.com",
            "a@b@example.com",
            "a b@example.com",
            "a@exa mple.com",
            ".a@example.com",
            "a.@example.com",
            "a..b@example.com",
            "a@-example.com",
            "a@example-.com",
            "a@example..com",
            "a@example.com.",
            "a@127.0.0.1",
            "a@[127.0.0.1]",
            "\"a\"@example.com",
            "é@example.com",
            "a@exämple.com",
            "a\n@example.com",
            "a@example.com\r\nBcc: x@y.z",
            &long_local,
            &long_total,
        ] {
            assert_eq!(EmailAddress::parse(bad), Err(InvalidEmail), "{bad:?}");
        }
    }
}
