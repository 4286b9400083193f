//! One integration test binary: every test talks to the real local stack started by
//! `scripts/stack up` (through `scripts/test`), with unique keys and tables per test.

mod ably_client;
mod analytics;
mod config;
mod dynamo;
mod events;
mod faults;
mod helpers;
mod load;
mod proxy;
mod redis_client;
mod unstorable_events;
mod wiring;
