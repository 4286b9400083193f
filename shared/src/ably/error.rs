//! Why an Ably call failed, how an answer is classified (success, worth a retry, final),
//! and the one mapping of those failures to API responses.

use std::fmt;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use crate::platform::error::ApiError;

/// Longest Ably error message kept in an [`AblyError`].
const MAX_ERROR_MESSAGE_CHARS: usize = 200;

/// Ably's error body `{"error": {"code", "statusCode", "message", "href"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AblyErrorInfo {
    pub code: Option<u32>,
    pub status_code: Option<u16>,
    pub message: Option<String>,
    pub href: Option<String>,
}

impl AblyErrorInfo {
    /// Parses an error body; anything else (HTML from a proxy, nothing) gives empty fields.
    pub fn parse(body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct Envelope {
            error: Option<Inner>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Inner {
            code: Option<Value>,
            status_code: Option<Value>,
            message: Option<String>,
            href: Option<String>,
        }
        let Ok(Envelope { error: Some(inner) }) = serde_json::from_slice::<Envelope>(body) else {
            return AblyErrorInfo::default();
        };
        let number = |v: Option<Value>| v.as_ref().and_then(Value::as_u64);
        AblyErrorInfo {
            code: number(inner.code).and_then(|n| u32::try_from(n).ok()),
            status_code: number(inner.status_code).and_then(|n| u16::try_from(n).ok()),
            message: inner.message.map(|m| truncate(&m, MAX_ERROR_MESSAGE_CHARS)),
            href: inner.href,
        }
    }
}

/// Why one attempt failed in a way worth retrying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptFailure {
    /// Connecting or sending failed, or the connection broke mid-answer.
    Network,
    Timeout,
    /// Ably (or a proxy in front of it) answered 500-504.
    Status {
        status: u16,
        code: Option<u32>,
        message: Option<String>,
    },
}

impl fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptFailure::Network => f.write_str("connection failed"),
            AttemptFailure::Timeout => f.write_str("timed out"),
            AttemptFailure::Status {
                status,
                code,
                message,
            } => {
                write!(f, "HTTP {status}")?;
                write_ably_detail(f, *code, message.as_deref())
            }
        }
    }
}

/// Why an Ably call failed. Never contains the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AblyError {
    /// Ably refused the request with a 4xx other than an auth problem (bad channel name,
    /// message too large, rate limited, ...). Not retried.
    #[error("Ably rejected the request: HTTP {status}{}", AblyDetail(*.code, .message.as_deref()))]
    Rejected {
        status: u16,
        code: Option<u32>,
        message: Option<String>,
    },
    /// 401/403, or an Ably code 40140-40149: the API key is wrong, revoked or lacks the
    /// capability. A deployment configuration problem; not retried.
    #[error("Ably refused the API key: HTTP {status}{}", AblyDetail(*.code, .message.as_deref()))]
    Unauthorized {
        status: u16,
        code: Option<u32>,
        message: Option<String>,
    },
    /// Every attempt allowed by the retry policy and the deadline failed.
    #[error("Ably unavailable after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: AttemptFailure },
    /// The deadline (or a health check's timeout) left no time for an answer.
    #[error("Ably did not answer in time")]
    Timeout,
    /// Ably answered with something this client does not understand.
    #[error("unexpected answer from Ably: {0}")]
    InvalidResponse(String),
    /// The call itself was malformed (empty channel, no messages, bad conversation id).
    #[error("invalid Ably request: {0}")]
    InvalidRequest(&'static str),
}

impl AblyError {
    /// The API key or its capabilities are wrong: fix the deployment, not the request.
    pub fn is_configuration(&self) -> bool {
        matches!(self, AblyError::Unauthorized { .. })
    }

    /// Ably could not be reached in time; trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, AblyError::Unavailable { .. } | AblyError::Timeout)
    }

    /// Ably's own error code, when it sent one.
    pub fn ably_code(&self) -> Option<u32> {
        match self {
            AblyError::Rejected { code, .. } | AblyError::Unauthorized { code, .. } => *code,
            AblyError::Unavailable {
                last: AttemptFailure::Status { code, .. },
                ..
            } => *code,
            _ => None,
        }
    }
}

impl From<AblyError> for ApiError {
    /// The one mapping of Ably failures to API responses:
    /// - a 4xx from Ably other than auth -> 502 `ably_rejected` (Ably's numeric code is
    ///   shown, its message text is not);
    /// - an auth/capability problem -> 502 `ably_auth_failed`, logged as a configuration
    ///   error: the caller did nothing wrong and cannot fix it;
    /// - unreachable after retries, or out of time -> 503 `ably_unavailable`;
    /// - an answer Ably should never give -> 502 `ably_invalid_response`;
    /// - a malformed call is a bug in the caller -> 500.
    fn from(err: AblyError) -> Self {
        let answer = match &err {
            AblyError::Rejected { code, .. } => ApiError::bad_gateway(
                "ably_rejected",
                match code {
                    Some(code) => format!("Ably rejected the request (Ably error {code})"),
                    None => "Ably rejected the request".to_owned(),
                },
            ),
            AblyError::Unauthorized { .. } => {
                let answer = ApiError::bad_gateway(
                    "ably_auth_failed",
                    "Ably refused the server's credentials",
                );
                return answer.caused_by(
                    anyhow::Error::new(err)
                        .context("configuration: check ABLY_API_KEY and its capabilities"),
                );
            }
            AblyError::Unavailable { .. } | AblyError::Timeout => {
                ApiError::unavailable("ably_unavailable", "Ably is unavailable, try again later")
            }
            AblyError::InvalidResponse(_) => ApiError::bad_gateway(
                "ably_invalid_response",
                "Ably returned an unexpected response",
            ),
            AblyError::InvalidRequest(_) => return ApiError::internal(err),
        };
        answer.caused_by(err)
    }
}

struct AblyDetail<'a>(Option<u32>, Option<&'a str>);

impl fmt::Display for AblyDetail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_ably_detail(f, self.0, self.1)
    }
}

fn write_ably_detail(
    f: &mut fmt::Formatter<'_>,
    code: Option<u32>,
    message: Option<&str>,
) -> fmt::Result {
    match (code, message) {
        (Some(code), Some(message)) => write!(f, " (Ably error {code}: {message})"),
        (Some(code), None) => write!(f, " (Ably error {code})"),
        (None, Some(message)) => write!(f, " ({message})"),
        (None, None) => Ok(()),
    }
}
pub(crate) enum Classified {
    Success,
    Retryable(AttemptFailure),
    Fatal(AblyError),
}

/// 2xx succeeds (the caller reads its body); 500-504 is retried; 401/403 or an Ably code
/// 40140-40149 is a key problem; another 4xx is a rejection; anything else is unexpected.
pub(crate) fn classify(status: StatusCode, body: &[u8], secret: &str) -> Classified {
    if status.is_success() {
        return Classified::Success;
    }
    let info = AblyErrorInfo::parse(body);
    let code = info.code;
    let message = info.message.map(|m| scrub(m, secret));
    let status = status.as_u16();
    match status {
        500..=504 => Classified::Retryable(AttemptFailure::Status {
            status,
            code,
            message,
        }),
        401 | 403 => Classified::Fatal(AblyError::Unauthorized {
            status,
            code,
            message,
        }),
        400..=499 if matches!(code, Some(40140..=40149)) => {
            Classified::Fatal(AblyError::Unauthorized {
                status,
                code,
                message,
            })
        }
        400..=499 => Classified::Fatal(AblyError::Rejected {
            status,
            code,
            message,
        }),
        _ => Classified::Fatal(AblyError::InvalidResponse(format!("HTTP {status}"))),
    }
}
/// Removes the key secret should Ably ever echo it.
fn scrub(message: String, secret: &str) -> String {
    if !secret.is_empty() && message.contains(secret) {
        message.replace(secret, "[redacted]")
    } else {
        message
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ably_error_bodies_are_parsed() {
        let body = br#"{"error":{"code":40003,"statusCode":400,"message":"Invalid channel name","href":"https://help.ably.io/error/40003"}}"#;
        assert_eq!(
            AblyErrorInfo::parse(body),
            AblyErrorInfo {
                code: Some(40003),
                status_code: Some(400),
                message: Some("Invalid channel name".to_owned()),
                href: Some("https://help.ably.io/error/40003".to_owned()),
            }
        );
        for junk in [
            &b"<html>bad gateway</html>"[..],
            b"",
            b"{}",
            b"[1]",
            br#"{"error":"x"}"#,
        ] {
            assert_eq!(AblyErrorInfo::parse(junk), AblyErrorInfo::default());
        }
        let long = format!(
            r#"{{"error":{{"code":"40000","message":"{}"}}}}"#,
            "é".repeat(500)
        );
        let info = AblyErrorInfo::parse(long.as_bytes());
        assert_eq!(info.code, None, "a non-numeric code is not trusted");
        assert_eq!(
            info.message.unwrap().chars().count(),
            MAX_ERROR_MESSAGE_CHARS + 3
        );
    }

    #[test]
    fn answers_are_classified() {
        let err = |status: u16, body: &str| match classify(
            StatusCode::from_u16(status).unwrap(),
            body.as_bytes(),
            "topsecret",
        ) {
            Classified::Success => None,
            Classified::Retryable(f) => Some(Err(f)),
            Classified::Fatal(e) => Some(Ok(e)),
        };
        assert_eq!(err(201, "not json"), None);
        for status in 500..=504 {
            assert!(matches!(
                err(status, ""),
                Some(Err(AttemptFailure::Status { .. }))
            ));
        }
        let rejected = err(
            400,
            r#"{"error":{"code":40009,"statusCode":400,"message":"Too big"}}"#,
        );
        assert_eq!(
            rejected,
            Some(Ok(AblyError::Rejected {
                status: 400,
                code: Some(40009),
                message: Some("Too big".into())
            }))
        );
        let expired = err(
            401,
            r#"{"error":{"code":40140,"statusCode":401,"message":"Token expired"}}"#,
        );
        assert!(
            matches!(expired, Some(Ok(ref e)) if e.is_configuration() && e.ably_code() == Some(40140))
        );
        assert!(matches!(err(403, ""), Some(Ok(ref e)) if e.is_configuration()));
        assert!(matches!(
            err(400, r#"{"error":{"code":40142}}"#),
            Some(Ok(ref e)) if e.is_configuration()
        ));
        assert!(matches!(
            err(505, ""),
            Some(Ok(AblyError::InvalidResponse(_)))
        ));
        assert!(matches!(
            err(302, ""),
            Some(Ok(AblyError::InvalidResponse(_)))
        ));
        let leaky = err(
            400,
            r#"{"error":{"code":40000,"message":"bad key topsecret"}}"#,
        );
        let Some(Ok(leaky)) = leaky else {
            panic!("expected a rejection")
        };
        assert!(!leaky.to_string().contains("topsecret"), "{leaky}");
    }

    #[test]
    fn errors_map_to_api_errors() {
        let rejected = ApiError::from(AblyError::Rejected {
            status: 400,
            code: Some(40003),
            message: Some("Invalid channel name".into()),
        });
        assert_eq!(rejected.status(), 502);
        assert_eq!(rejected.code(), "ably_rejected");
        assert_eq!(
            rejected.public_message(),
            "Ably rejected the request (Ably error 40003)"
        );
        let auth = ApiError::from(AblyError::Unauthorized {
            status: 401,
            code: Some(40140),
            message: None,
        });
        assert_eq!(
            (auth.status().as_u16(), auth.code()),
            (502, "ably_auth_failed")
        );
        // The log line says what to fix; the caller never sees it.
        let cause = format!("{:#}", auth.cause().unwrap());
        assert!(
            cause.starts_with("configuration: check ABLY_API_KEY"),
            "{cause}"
        );
        for transient in [
            AblyError::Timeout,
            AblyError::Unavailable {
                attempts: 3,
                last: AttemptFailure::Network,
            },
        ] {
            assert!(transient.is_transient());
            let api = ApiError::from(transient);
            assert_eq!(
                (api.status().as_u16(), api.code()),
                (503, "ably_unavailable")
            );
        }
        let invalid = ApiError::from(AblyError::InvalidRequest("no messages to publish"));
        assert_eq!(invalid.status(), 500);
    }
}
