//! The Ably webhook: its signature, verified over the raw body, and every payload shape,
//! normalised to chat events.

pub mod encoding;
pub mod entry;
mod fast;
mod lenient;
pub mod payload;
pub mod signature;

pub use entry::{PayloadError, WebhookBatch, MAX_BATCH_EVENTS};
pub use payload::parse;
pub use signature::{SignatureError, WebhookVerifier};
