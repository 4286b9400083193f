//! Everything Ably: the REST client (idempotent publishing with retries and fallback
//! hosts, reading and changing published messages, the server clock, channel status),
//! its errors, the credentials signed with the API key (TokenRequests, Ably JWTs), and
//! the webhook it delivers events by.
//!
//! The REST client depends on nothing Lambda-specific, so any Rust worker (an AI or SLA
//! service) can publish with it as a library.

pub mod change;
pub mod config;
pub mod credentials;
pub mod error;
pub mod message;
pub mod rest;
pub mod retry;
pub mod webhook;

pub use change::{ChangeAction, ChangeReceipt, MessageChange, Operation, StoredMessage};
pub use config::{AblyConfig, AblyKey, WebhookKeys};
pub use error::{AblyError, AttemptFailure};
pub use message::{
    message_id_base, prepare_publish, AiTiming, ChannelStatus, OutboundMessage, PublishReceipt,
    SlaLevel,
};
pub use rest::AblyClient;
pub use retry::{FallbackHosts, RetryPolicy};
