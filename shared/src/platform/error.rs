//! One error type for every handler and the one place that turns it into a response.

use http::StatusCode;

/// What a handler can fail with. Client errors carry a stable `code` and a short human
/// message; internal errors keep their cause for the log and answer a generic message.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("Method not allowed")]
    MethodNotAllowed { allow: &'static [&'static str] },
    #[error("{message}")]
    PayloadTooLarge { code: &'static str, message: String },
    #[error("Too many requests")]
    RateLimited { retry_after_secs: u64 },
    #[error("{message}")]
    BadGateway {
        code: &'static str,
        message: String,
        /// What went wrong upstream, for the log line only.
        cause: Option<anyhow::Error>,
    },
    #[error("{message}")]
    Unavailable {
        code: &'static str,
        message: String,
        retry_after_secs: Option<u64>,
        /// What went wrong upstream, for the log line only.
        cause: Option<anyhow::Error>,
    },
    #[error("Internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            code,
            message: message.into(),
        }
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Forbidden {
            code,
            message: message.into(),
        }
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::NotFound {
            code,
            message: message.into(),
        }
    }
    pub fn payload_too_large(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::PayloadTooLarge {
            code,
            message: message.into(),
        }
    }
    pub fn bad_gateway(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadGateway {
            code,
            message: message.into(),
            cause: None,
        }
    }
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unavailable {
            code,
            message: message.into(),
            retry_after_secs: None,
            cause: None,
        }
    }
    /// 503 `history_unavailable`: neither Redis nor DynamoDB could answer a history read.
    pub fn history_unavailable(cause: impl Into<anyhow::Error>) -> Self {
        ApiError::unavailable(
            "history_unavailable",
            "History is temporarily unavailable, please retry",
        )
        .caused_by(cause)
    }
    /// 503 `record_unavailable`: the archive (DynamoDB) did not answer.
    pub fn record_unavailable(cause: impl Into<anyhow::Error>) -> Self {
        ApiError::unavailable(
            "record_unavailable",
            "The record is temporarily unavailable, please retry",
        )
        .caused_by(cause)
    }
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    /// Records what went wrong upstream of a 502 or 503, for the one log line the HTTP
    /// layer writes; the caller still sees only the public message.
    pub fn caused_by(mut self, err: impl Into<anyhow::Error>) -> Self {
        if let ApiError::BadGateway { cause, .. } | ApiError::Unavailable { cause, .. } = &mut self
        {
            *cause = Some(err.into());
        }
        self
    }

    /// Asks the client to come back after `secs` (a 503's `Retry-After`).
    pub fn retry_after(mut self, secs: u64) -> Self {
        if let ApiError::Unavailable {
            retry_after_secs, ..
        } = &mut self
        {
            *retry_after_secs = Some(secs);
        }
        self
    }

    /// The cause of a server error, for the log: never shown to the caller.
    pub fn cause(&self) -> Option<&anyhow::Error> {
        match self {
            ApiError::Internal(cause) => Some(cause),
            ApiError::BadGateway { cause, .. } | ApiError::Unavailable { cause, .. } => {
                cause.as_ref()
            }
            _ => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable snake_case identifier clients can branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::NotFound { code, .. }
            | ApiError::PayloadTooLarge { code, .. }
            | ApiError::BadGateway { code, .. }
            | ApiError::Unavailable { code, .. } => code,
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// The message shown to the caller; internal causes are never shown.
    pub fn public_message(&self) -> String {
        self.to_string()
    }

    /// Seconds for a `Retry-After` header, when the caller should come back later.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            ApiError::Unavailable {
                retry_after_secs, ..
            } => *retry_after_secs,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = ApiError::internal(anyhow::anyhow!("dynamodb said: secret-table-arn"));
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(err.code(), "internal_error");
        assert_eq!(err.public_message(), "Internal error");
    }

    #[test]
    fn client_errors_keep_code_and_message() {
        let err = ApiError::bad_request("invalid_json", "Body is not valid JSON");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.code(), "invalid_json");
        assert_eq!(err.public_message(), "Body is not valid JSON");
        let limited = ApiError::RateLimited {
            retry_after_secs: 7,
        };
        assert_eq!(limited.retry_after_secs(), Some(7));
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn upstream_causes_are_kept_for_the_log_and_never_shown() {
        let err = ApiError::unavailable("storage_unavailable", "Try again")
            .retry_after(1)
            .caused_by(anyhow::anyhow!("dynamodb: throttled").context("writing chunk 3"));
        assert_eq!(err.public_message(), "Try again");
        assert_eq!(err.retry_after_secs(), Some(1));
        assert_eq!(
            format!("{:#}", err.cause().unwrap()),
            "writing chunk 3: dynamodb: throttled"
        );
        let client = ApiError::bad_request("x", "y").caused_by(anyhow::anyhow!("z"));
        assert!(client.cause().is_none());
    }
}
