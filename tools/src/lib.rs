//! Local development tools. The main one is [`upstash_proxy`], an Upstash-REST-compatible
//! server in front of a real `redis-server`, so the production Redis client is exercised
//! over the same protocol it uses against Upstash. [`webhook_load`] is the load generator
//! for the `ably-events` handler (`scripts/load`); [`harness`] runs the release binaries
//! against a local Lambda Runtime API stand-in, in which [`coldstart`] measures their cold
//! starts (`scripts/coldstart`) and [`cost`] runs them warm and cold and prices what they
//! use (`scripts/cost`).
//! [`ably_standin`] stands in for Ably's REST API and webhook integration rule in the dev
//! stack. [`table`] creates the chat events table for the local stack and the tests.

pub mod ably_standin;
pub mod coldstart;
pub mod cost;
pub mod harness;
pub mod resp;
pub mod table;
pub mod upstash_proxy;
pub mod webhook_load;
