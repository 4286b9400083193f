//! One integration test binary: every test talks to the real local stack started by
//! `scripts/stack up` (through `scripts/test`), with unique keys and tables per test.

mod ably_client;
mod ably_js;
mod alarms;
mod analytics;
mod auth;
mod bridge;
mod changes;
mod config;
mod delivery;
mod dynamo;
mod events;
mod faults;
mod forgery;
mod helpers;
mod idempotence;
mod load;
mod openapi;
mod polling;
mod proxy;
mod publish;
mod publish_changes;
mod ratelimit;
mod records;
mod redis_client;
mod resume;
mod rollout;
mod round_trips;
mod secrets;
mod stats;
mod template;
mod token;
mod unstorable_events;
mod upstash_js;
mod wiring;
