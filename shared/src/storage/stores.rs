//! The two event stores, built together in one place: the Redis cache and the DynamoDB
//! archive, from the same settings, as every function that mirrors or reads events uses
//! them.

use crate::storage::archive::EventArchive;
use crate::storage::cache::EventCache;
use crate::storage::config::EventStoreConfig;
use crate::storage::epoch::EpochWatch;
use crate::storage::history::HistoryReader;
use crate::storage::keys::Keys;
use crate::storage::redis::RedisClient;

/// The Redis cache and the DynamoDB archive of chat events, and the cache epoch that
/// says when a list may be read as whole.
#[derive(Debug, Clone)]
pub struct EventStores {
    pub cache: EventCache,
    pub archive: EventArchive,
    pub epoch: EpochWatch,
}

impl EventStores {
    /// Both stores over the given clients; `pubsub_bridge` is `REDIS_PUBSUB_BRIDGE` (only
    /// the mirror publishes).
    pub fn new(
        config: &EventStoreConfig,
        redis: RedisClient,
        keys: Keys,
        dynamo: aws_sdk_dynamodb::Client,
        pubsub_bridge: bool,
    ) -> Self {
        EventStores {
            cache: EventCache::new(redis, keys, &config.retention, pubsub_bridge),
            epoch: EpochWatch::new(dynamo.clone(), config.table.clone()),
            archive: EventArchive::new(dynamo, config),
        }
    }

    /// The history reader over these stores.
    pub fn history(&self) -> HistoryReader {
        HistoryReader::new(self.cache.clone(), self.archive.clone(), self.epoch.clone())
    }
}
