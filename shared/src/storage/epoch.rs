//! The cache epoch: how a reader knows that a conversation's Redis list still holds every
//! event DynamoDB holds after its floor, although a mirror's cache write may have failed
//! where no reader could see it.
//!
//! Redis cannot know about a write it never received, so the failure is recorded where
//! every reader looks, DynamoDB: a mirror whose cache write failed moves the epoch on (one
//! item, `_cache` / `epoch`) before it writes the events, then waits [`SNAPSHOT_MAX_AGE`].
//! A conversation's list is trusted only under the epoch it was proven in (its proof,
//! [`crate::storage::proof::Proof`]), and readers look the epoch up at most
//! [`SNAPSHOT_MAX_AGE`] before they read. So by the time an event whose cache write
//! failed is in DynamoDB, every reader knows the epoch moved, and reads DynamoDB until
//! the list is proven again, which happens only after every writer that failed in it
//! has ended ([`CacheEpoch::settled_after_ms`]).
//!
//! The normal path costs nothing here: the epoch item is written only when Redis failed,
//! and a warm reader reads it at most once per [`SNAPSHOT_MAX_AGE`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use tokio::sync::Mutex;

use crate::storage::archive::{describe_sdk_error, ArchiveError};
use crate::storage::dynamo::{PARTITION_KEY, SORT_KEY};

/// The reserved partition and the item that hold the epoch.
pub const EPOCH_PARTITION: &str = "_cache";
const EPOCH_ITEM: &str = "epoch";
const NUMBER: &str = "epoch";
const SETTLED_AFTER: &str = "settled_after";
const ERASURES: &str = "erasures";

/// The longest a reader trusts an epoch it read, and what a writer whose cache write
/// failed waits after moving the epoch on before its events may reach DynamoDB.
pub const SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(2);

/// Clocks of different Lambda hosts differ by far less than this, and a write sent before
/// its deadline has reached DynamoDB by then.
const CLOCK_SKEW_MS: i64 = 1_000;

/// The epoch as read from DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheEpoch {
    /// Moved on by one for every mirror whose cache write failed.
    pub number: u64,
    /// Wall time (ms since the epoch) after which every writer that moved the epoch has
    /// ended, so DynamoDB holds all it was going to write: only then may a list be proven
    /// again.
    pub settled_after_ms: i64,
    /// Moved on by one for every erasure: a reader that remembers which conversations
    /// were erased looks again only once it moved ([`crate::storage::erasure::ErasureWatch`]).
    pub erasures: u64,
}

impl CacheEpoch {
    /// Whether a list may be proven now, in this epoch.
    pub fn settled(&self, now_ms: i64) -> bool {
        now_ms > self.settled_after_ms
    }
}

/// What a reader knows of the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochView {
    /// Read within [`SNAPSHOT_MAX_AGE`].
    Current(CacheEpoch),
    /// DynamoDB did not answer just now; the last epoch this process read. A list proven
    /// in it is still served (DynamoDB, the alternative, is not answering), but none is
    /// proven.
    Stale(CacheEpoch),
    /// DynamoDB did not answer and this process never read the epoch: any proven list is
    /// served as it is, none is proven.
    Unknown,
}

impl EpochView {
    /// Whether a list proven in epoch `proven_in` may be read as whole.
    pub fn trusts(&self, proven_in: u64) -> bool {
        match self {
            EpochView::Current(epoch) | EpochView::Stale(epoch) => epoch.number == proven_in,
            EpochView::Unknown => true,
        }
    }

    /// The epoch a list read from DynamoDB now may be proven in, if one may be.
    pub fn provable(&self, now_ms: i64) -> Option<u64> {
        match self {
            EpochView::Current(epoch) if epoch.settled(now_ms) => Some(epoch.number),
            _ => None,
        }
    }
}

struct Snapshot {
    /// When the read that produced it was sent.
    read_at: Instant,
    epoch: Option<CacheEpoch>,
}

/// The epoch item: read by readers through a per-process snapshot, moved on by writers.
#[derive(Clone)]
pub struct EpochWatch {
    client: aws_sdk_dynamodb::Client,
    table: String,
    snapshot: Arc<Mutex<Option<Snapshot>>>,
    last_known: Arc<std::sync::Mutex<Option<CacheEpoch>>>,
}

impl std::fmt::Debug for EpochWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochWatch")
            .field("table", &self.table)
            .finish()
    }
}

impl EpochWatch {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        EpochWatch {
            client,
            table: table.into(),
            snapshot: Arc::new(Mutex::new(None)),
            last_known: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    fn key() -> HashMap<String, AttributeValue> {
        HashMap::from([
            (
                PARTITION_KEY.to_owned(),
                AttributeValue::S(EPOCH_PARTITION.to_owned()),
            ),
            (
                SORT_KEY.to_owned(),
                AttributeValue::S(EPOCH_ITEM.to_owned()),
            ),
        ])
    }

    /// The epoch as of at most [`SNAPSHOT_MAX_AGE`] ago, read again (strongly
    /// consistent) when the last read is older; one read at a time per process.
    pub async fn current(&self) -> EpochView {
        let mut snapshot = self.snapshot.lock().await;
        if let Some(s) = snapshot.as_ref() {
            if s.read_at.elapsed() < SNAPSHOT_MAX_AGE {
                if let Some(epoch) = s.epoch {
                    return EpochView::Current(epoch);
                }
            }
        }
        let read_at = Instant::now();
        let epoch = match self.read().await {
            Ok(epoch) => Some(epoch),
            Err(e) => {
                tracing::warn!(error = %e, "the cache epoch could not be read");
                None
            }
        };
        *snapshot = Some(Snapshot { read_at, epoch });
        let mut last_known = self
            .last_known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match epoch {
            Some(epoch) => {
                *last_known = Some(epoch);
                EpochView::Current(epoch)
            }
            None => last_known.map_or(EpochView::Unknown, EpochView::Stale),
        }
    }

    /// The epoch item, strongly consistent; before any mirror failed, epoch 0.
    pub async fn read(&self) -> Result<CacheEpoch, ArchiveError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| ArchiveError::Request(describe_sdk_error(&e)))?;
        let number = |name: &str| {
            output
                .item()
                .and_then(|item| item.get(name))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(0)
        };
        Ok(CacheEpoch {
            number: u64::try_from(number(NUMBER)).unwrap_or(0),
            settled_after_ms: number(SETTLED_AFTER),
            erasures: u64::try_from(number(ERASURES)).unwrap_or(0),
        })
    }

    /// Moves the epoch on, for a mirror whose cache write failed and whose DynamoDB
    /// writes all end before `writes_end_ms` (wall time). Every list proven so far stops
    /// being trusted, and none is proven again until after `writes_end_ms`. Returns the
    /// settling time it recorded, if no other writer's later one stood.
    pub async fn advance(&self, writes_end_ms: i64) -> Result<Option<i64>, ArchiveError> {
        let settled_after_ms = writes_end_ms + CLOCK_SKEW_MS;
        let settled_after = settled_after_ms.to_string();
        let names = HashMap::from([
            ("#n".to_owned(), NUMBER.to_owned()),
            ("#s".to_owned(), SETTLED_AFTER.to_owned()),
        ]);
        let moved = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key()))
            .update_expression("ADD #n :one SET #s = :s")
            .condition_expression("attribute_not_exists(#s) OR #s < :s")
            .set_expression_attribute_names(Some(names))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":s", AttributeValue::N(settled_after))
            .send()
            .await;
        match moved {
            Ok(_) => Ok(Some(settled_after_ms)),
            // Another writer's later end stands; the epoch still moves on.
            Err(e) if is_condition_failure(&e) => self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::key()))
                .update_expression("ADD #n :one")
                .expression_attribute_names("#n", NUMBER)
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .send()
                .await
                .map(|_| None)
                .map_err(|e| ArchiveError::Request(describe_sdk_error(&e))),
            Err(e) => Err(ArchiveError::Request(describe_sdk_error(&e))),
        }
    }

    /// Counts an erasure, after its tombstone is recorded: every reader's view of the
    /// epoch is newer than this within [`SNAPSHOT_MAX_AGE`], and from then on it looks a
    /// conversation's tombstone up again before it admits a session or link of it.
    pub async fn count_erasure(&self) -> Result<(), ArchiveError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key()))
            .update_expression("ADD #e :one")
            .expression_attribute_names("#e", ERASURES)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| ArchiveError::Request(describe_sdk_error(&e)))
    }

    /// For the writer that recorded `recorded` ([`Self::advance`]) and whose writes have
    /// now ended: the epoch settles a little after now instead of at its deadline, unless
    /// another writer has recorded a later time since. Best effort: the recorded time
    /// stands otherwise.
    pub async fn settle(&self, recorded: i64, now_ms: i64) {
        let settled = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key()))
            .update_expression("SET #s = :s")
            .condition_expression("#s = :recorded")
            .expression_attribute_names("#s", SETTLED_AFTER)
            .expression_attribute_values(
                ":s",
                AttributeValue::N((now_ms + CLOCK_SKEW_MS).to_string()),
            )
            .expression_attribute_values(":recorded", AttributeValue::N(recorded.to_string()))
            .send()
            .await;
        if let Err(e) = settled {
            if !is_condition_failure(&e) {
                tracing::warn!(error = %describe_sdk_error(&e), "the cache epoch could not be settled early; it settles at the writer's deadline");
            }
        }
    }
}

fn is_condition_failure<R>(
    err: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::update_item::UpdateItemError,
        R,
    >,
) -> bool {
    err.as_service_error()
        .is_some_and(|e| e.is_conditional_check_failed_exception())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_trusted_only_in_the_epoch_it_was_proven_in_and_proven_only_when_settled() {
        let epoch = CacheEpoch {
            number: 3,
            settled_after_ms: 1_000,
            erasures: 0,
        };
        let current = EpochView::Current(epoch);
        assert!(current.trusts(3));
        assert!(!current.trusts(2));
        assert_eq!(
            current.provable(1_000),
            None,
            "a failed writer may still write"
        );
        assert_eq!(current.provable(1_001), Some(3));
        let stale = EpochView::Stale(epoch);
        assert!(stale.trusts(3) && !stale.trusts(4));
        assert_eq!(stale.provable(5_000), None);
        assert!(EpochView::Unknown.trusts(7));
        assert_eq!(EpochView::Unknown.provable(5_000), None);
    }
}
