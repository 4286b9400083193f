//! Local development tools. The main one is [`upstash_proxy`], an Upstash-REST-compatible
//! server in front of a real `redis-server`, so the production Redis client is exercised
//! over the same protocol it uses against Upstash.

pub mod resp;
pub mod upstash_proxy;
