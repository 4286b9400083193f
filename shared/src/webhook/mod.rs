//! The Ably webhook: signature verification over the raw body, then every payload shape
//! normalised to chat events.

pub mod payload;
pub mod signature;

pub use payload::{parse, ChatEvent, PayloadError, WebhookBatch};
