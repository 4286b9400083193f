//! Shared library of the Ably chat Lambda functions.
//!
//! Every function binary is a thin `main.rs` that calls [`handlers::run`]: telemetry, its
//! state (typed config and clients) built once at cold start, and every request to its
//! handler. The crate is laid out by concept, each depending only on those above it:
//!
//! - [`platform`]: HTTP layer, errors, environment, logs, metrics, outbound clients, clock
//! - [`identity`]: callers, bearer JWTs, chat sessions, resume links, ids, email addresses
//! - [`channels`]: the one channel table (ownership, events, capabilities)
//! - [`events`]: the chat event, its keys and times, the polling cursor, the bridge envelope
//! - [`ably`]: the REST client, its errors and retries, credentials, the webhook
//! - [`storage`]: Redis (client, keys, Lua scripts, cache), DynamoDB (archive, items),
//!   history, rate limits, analytics
//! - [`handlers`]: one module per function

pub mod ably;
pub mod channels;
pub mod events;
pub mod handlers;
pub mod identity;
pub mod platform;
pub mod storage;

pub use platform::error::ApiError;
