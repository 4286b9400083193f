//! The Ably webhook: its signature, verified over the raw body, and every payload shape,
//! normalised to chat events, in every encoding Ably sends.

pub mod encoding;
pub mod entry;
mod fast;
mod lenient;
pub mod msgpack;
pub mod payload;
pub mod signature;
pub mod unenveloped;

pub use entry::{PayloadError, WebhookBatch, MAX_BATCH_ITEMS};
pub use payload::{parse, parse_delivery, parse_msgpack};
pub use signature::{SignatureError, WebhookVerifier};
