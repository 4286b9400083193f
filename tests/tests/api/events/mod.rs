//! `POST /api/ably/events` against Redis (through the Upstash-compatible proxy) and
//! DynamoDB Local: what Ably sends ends up in both stores, exactly once.

mod payloads;
mod refusals;
mod stores;
