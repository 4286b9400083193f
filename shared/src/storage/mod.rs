//! Where events and counters live: the Upstash Redis REST client, the one key schema, the
//! Lua scripts (`scripts/*.lua`), the hot cache, the DynamoDB archive and its items, the
//! history reader, rate limits and the live analytics.

pub mod analytics;
pub mod archive;
pub mod cache;
pub mod config;
pub mod dynamo;
pub mod epoch;
pub mod erasure;
pub mod history;
pub mod item;
pub mod keys;
pub mod proof;
pub mod ratelimit;
pub mod reads;
pub mod redis;
pub mod scripts;
pub mod stores;

pub use config::{EventStoreConfig, RetentionConfig};
pub use keys::Keys;
pub use redis::{RedisClient, RedisConfig, RedisError};
pub use stores::EventStores;
