//! Erasure in the archive: a conversation's content-free tombstone, the deletion of every
//! item of it, and the tombstone lookups that keep it erased.
//!
//! The tombstone is one item in the conversation's own partition, sort key
//! [`TOMBSTONE_KEY`] (`!` sorts before every event key, which starts with a year), with
//! no `expires_at`: every read of events filters on `expires_at`, so no read ever returns
//! it, TTL never deletes it, and it carries no `report_key`, so no index holds it. Being
//! in the conversation's partition, its lookups spread over the table as the
//! conversations do, instead of one hot partition for every delivery of the deployment.
//! It holds `erased_at`, `erased_by` (the admin's clientId), `reason`, and counts.
//!
//! The mirror looks the tombstones of a delivery's conversations up before it writes
//! (one strongly consistent `BatchGetItem` per delivery, [`EventArchive::erased_at`]) and
//! skips every event dated at or before `erased_at` as `erased`.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, ReturnValue, WriteRequest,
};
use futures::stream::{self, StreamExt};

use crate::storage::archive::{describe_sdk_error, ArchiveError, EventArchive, DYNAMO_BATCH_SIZE};
use crate::storage::dynamo::{PARTITION_KEY, SORT_KEY};

/// The tombstone's sort key in its conversation's partition.
pub const TOMBSTONE_KEY: &str = "!erased";
const ERASED_AT: &str = "erased_at";
const ERASED_BY: &str = "erased_by";
const REASON: &str = "reason";
const ERASURES: &str = "erasures";
const ARCHIVE_ITEMS: &str = "archive_items";
const CACHE_KEYS: &str = "cache_keys";
/// `BatchGetItem` takes at most 100 keys.
const GET_BATCH: usize = 100;
/// Lookups sent at once for a delivery of many conversations.
const GET_CONCURRENCY: usize = 4;

/// A conversation's tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// The newest erasure, ISO-8601 UTC with ms: events dated at or before it stay erased.
    pub erased_at: String,
    /// The admin's clientId.
    pub erased_by: String,
    /// Erasures of this conversation so far.
    pub erasures: u64,
    /// Archive items and cache keys deleted, over every erasure.
    pub archive_items: u64,
    pub cache_keys: u64,
}

impl Tombstone {
    fn of(item: &HashMap<String, AttributeValue>) -> Option<Self> {
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(s)) => Some(s.clone()),
            _ => None,
        };
        let number = |name: &str| match item.get(name) {
            Some(AttributeValue::N(n)) => n.parse().ok(),
            _ => None,
        };
        Some(Tombstone {
            erased_at: text(ERASED_AT)?,
            erased_by: text(ERASED_BY).unwrap_or_default(),
            erasures: number(ERASURES).unwrap_or(1),
            archive_items: number(ARCHIVE_ITEMS).unwrap_or(0),
            cache_keys: number(CACHE_KEYS).unwrap_or(0),
        })
    }
}

fn tombstone_key(conversation_id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            PARTITION_KEY.to_owned(),
            AttributeValue::S(conversation_id.to_owned()),
        ),
        (
            SORT_KEY.to_owned(),
            AttributeValue::S(TOMBSTONE_KEY.to_owned()),
        ),
    ])
}

/// What [`EventArchive::delete_conversation`] removed: how many items, and the event ids
/// among them (their cache seen markers go too).
#[derive(Debug, Default)]
pub struct Deleted {
    pub items: usize,
    pub event_ids: Vec<String>,
}

impl EventArchive {
    /// `erased_at` of each of `conversation_ids` that has a tombstone; strongly
    /// consistent, so an erasure recorded before the lookup is seen. One `BatchGetItem`
    /// per 100 conversations, unprocessed keys retried until `deadline`.
    pub async fn erased_at(
        &self,
        conversation_ids: &[&str],
        deadline: Instant,
    ) -> Result<HashMap<String, String>, ArchiveError> {
        // Owned chunks: a stream of futures borrowing the caller's slice is not `Send`
        // for every lifetime, which the Lambda handlers' futures must be.
        let chunks: Vec<Vec<String>> = conversation_ids
            .chunks(GET_BATCH)
            .map(|chunk| chunk.iter().map(|c| (*c).to_owned()).collect())
            .collect();
        let found: Vec<Result<HashMap<String, String>, ArchiveError>> = stream::iter(chunks)
            .map(|chunk| self.erased_at_chunk(chunk, deadline))
            .buffer_unordered(GET_CONCURRENCY)
            .collect()
            .await;
        let mut erased = HashMap::new();
        for chunk in found {
            erased.extend(chunk?);
        }
        Ok(erased)
    }

    async fn erased_at_chunk(
        &self,
        conversation_ids: Vec<String>,
        deadline: Instant,
    ) -> Result<HashMap<String, String>, ArchiveError> {
        let keys: Vec<_> = conversation_ids.iter().map(|c| tombstone_key(c)).collect();
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .projection_expression("#pk, #at")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#at", ERASED_AT)
            .build()
            .map_err(|e| ArchiveError::Request(e.to_string()))?;
        let mut erased = HashMap::new();
        let mut attempt = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let call = self
                .client
                .batch_get_item()
                .request_items(self.table.clone(), request.clone())
                .send();
            let mut output = tokio::time::timeout(remaining, call)
                .await
                .map_err(|_| ArchiveError::Timeout)?
                .map_err(|e| ArchiveError::Request(describe_sdk_error(&e)))?;
            let items = output
                .responses
                .as_mut()
                .and_then(|r| r.remove(&self.table))
                .unwrap_or_default();
            for item in items {
                if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(at))) =
                    (item.get(PARTITION_KEY), item.get(ERASED_AT))
                {
                    erased.insert(pk.clone(), at.clone());
                }
            }
            match output
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
            {
                Some(left) if !left.keys().is_empty() => {
                    attempt += 1;
                    let backoff = std::time::Duration::from_millis(25 << attempt.min(5));
                    if Instant::now() + backoff >= deadline {
                        return Err(ArchiveError::Unprocessed(left.keys().len()));
                    }
                    tokio::time::sleep(backoff).await;
                    request = left;
                }
                _ => return Ok(erased),
            }
        }
    }

    /// A conversation's tombstone, strongly consistent; `None`: never erased.
    pub async fn tombstone(
        &self,
        conversation_id: &str,
    ) -> Result<Option<Tombstone>, ArchiveError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(tombstone_key(conversation_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| ArchiveError::Request(describe_sdk_error(&e)))?;
        Ok(output.item.as_ref().and_then(Tombstone::of))
    }

    /// Records an erasure at `erased_at` (ISO-8601 UTC with ms) by `erased_by`: the
    /// tombstone is created, or its time moved on (never back) and its erasures counted.
    /// Written before anything is deleted, so that from then on nothing brings the
    /// conversation's earlier events back.
    pub async fn record_erasure(
        &self,
        conversation_id: &str,
        erased_by: &str,
        reason: Option<&str>,
        erased_at: &str,
    ) -> Result<Tombstone, ArchiveError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(tombstone_key(conversation_id)))
            .update_expression(if reason.is_some() {
                "SET #at = :at, #by = :by, #reason = :reason ADD #n :one"
            } else {
                "SET #at = :at, #by = :by REMOVE #reason ADD #n :one"
            })
            // A clock behind an earlier erasure's never moves the tombstone back.
            .condition_expression("attribute_not_exists(#at) OR #at <= :at")
            .expression_attribute_names("#at", ERASED_AT)
            .expression_attribute_names("#by", ERASED_BY)
            .expression_attribute_names("#reason", REASON)
            .expression_attribute_names("#n", ERASURES)
            .expression_attribute_values(":at", AttributeValue::S(erased_at.to_owned()))
            .expression_attribute_values(":by", AttributeValue::S(erased_by.to_owned()))
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .return_values(ReturnValue::AllNew);
        if let Some(reason) = reason {
            update =
                update.expression_attribute_values(":reason", AttributeValue::S(reason.to_owned()));
        }
        let output = update.send().await.map_err(|e| {
            let conflict = e
                .as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception());
            if conflict {
                ArchiveError::Request("a later erasure of this conversation is recorded".into())
            } else {
                ArchiveError::Request(describe_sdk_error(&e))
            }
        })?;
        output
            .attributes
            .as_ref()
            .and_then(Tombstone::of)
            .ok_or_else(|| ArchiveError::Request("the tombstone was not returned".into()))
    }

    /// Adds what one erasure deleted to the tombstone's counts.
    pub async fn count_erased(
        &self,
        conversation_id: &str,
        archive_items: usize,
        cache_keys: usize,
    ) -> Result<(), ArchiveError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(tombstone_key(conversation_id)))
            .update_expression("ADD #items :items, #keys :keys")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#items", ARCHIVE_ITEMS)
            .expression_attribute_names("#keys", CACHE_KEYS)
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_values(":items", AttributeValue::N(archive_items.to_string()))
            .expression_attribute_values(":keys", AttributeValue::N(cache_keys.to_string()))
            .send()
            .await
            .map_err(|e| ArchiveError::Request(describe_sdk_error(&e)))?;
        Ok(())
    }

    /// Deletes every item of a conversation but its tombstone, expired ones included:
    /// every version of every message, trusted or not. Page by page, 25 keys a
    /// `BatchWriteItem`, unprocessed ones retried until `deadline`.
    pub async fn delete_conversation(
        &self,
        conversation_id: &str,
        deadline: Instant,
    ) -> Result<Deleted, ArchiveError> {
        let mut deleted = Deleted::default();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :c")
                .projection_expression("#pk, #sk, #id")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_names("#id", "id")
                .expression_attribute_values(":c", AttributeValue::S(conversation_id.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| ArchiveError::Request(describe_sdk_error(&e)))?;
            let mut requests = Vec::with_capacity(page.items().len());
            for item in page.items() {
                let (Some(pk), Some(sk)) = (item.get(PARTITION_KEY), item.get(SORT_KEY)) else {
                    continue;
                };
                if matches!(sk, AttributeValue::S(s) if s == TOMBSTONE_KEY) {
                    continue;
                }
                if let Some(AttributeValue::S(id)) = item.get("id") {
                    deleted.event_ids.push(id.clone());
                }
                let key = HashMap::from([
                    (PARTITION_KEY.to_owned(), pk.clone()),
                    (SORT_KEY.to_owned(), sk.clone()),
                ]);
                let delete = DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map_err(|e| ArchiveError::Request(e.to_string()))?;
                requests.push(WriteRequest::builder().delete_request(delete).build());
            }
            deleted.items += requests.len();
            let chunks: Vec<Vec<WriteRequest>> = requests
                .chunks(DYNAMO_BATCH_SIZE)
                .map(<[WriteRequest]>::to_vec)
                .collect();
            let results: Vec<Result<(), ArchiveError>> = stream::iter(chunks)
                .map(|chunk| self.write_requests_until(chunk, deadline))
                .buffer_unordered(GET_CONCURRENCY)
                .collect()
                .await;
            for result in results {
                result?;
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(deleted),
            }
        }
    }
}

/// The distinct conversations of `events`, whose tombstones a delivery looks up.
pub fn conversations_of(events: &[crate::events::ChatEvent]) -> Vec<&str> {
    let mut ids: Vec<&str> = events.iter().map(|e| e.history_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Skips, as `erased`, every event of `batch` dated at or before its conversation's
/// erasure in `erased` (conversation -> `erased_at`, as [`EventArchive::erased_at`]
/// answers).
pub fn skip_erased(
    batch: &mut crate::ably::webhook::WebhookBatch,
    erased: &HashMap<String, String>,
) {
    if erased.is_empty() {
        return;
    }
    crate::storage::item::skip(batch, |event| {
        erased
            .get(&event.history_id)
            .filter(|at| event.occurred_at.as_str() <= at.as_str())
            .map(|_| "erased")
    });
}

/// Keys one `DEL` names at most.
const DEL_KEYS: usize = 500;

impl crate::storage::cache::EventCache {
    /// Removes a conversation from the cache: its list, its proof, the seen markers of
    /// `event_ids` and of every event its list holds, and its place among the active
    /// conversations. One `LRANGE`, then one pipeline; the number of keys deleted.
    pub async fn erase(
        &self,
        conversation_id: &str,
        event_ids: &[String],
    ) -> Result<usize, crate::storage::RedisError> {
        use crate::storage::redis::cmd;
        let keys = &self.keys;
        let list = keys.events(conversation_id);
        let cached = self
            .redis
            .command(&["LRANGE", list.as_str(), "0", "-1"])
            .await?;
        let mut ids: Vec<String> = cached
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|entry| {
                let json: serde_json::Value = serde_json::from_str(entry.as_str()?).ok()?;
                json.get("id")?.as_str().map(str::to_owned)
            })
            .collect();
        ids.extend(event_ids.iter().cloned());
        ids.sort_unstable();
        ids.dedup();
        let mut doomed = vec![list, keys.proof(conversation_id)];
        doomed.extend(ids.iter().map(|id| keys.seen(conversation_id, id)));
        let mut commands: Vec<Vec<String>> = doomed
            .chunks(DEL_KEYS)
            .map(|chunk| cmd(std::iter::once("DEL".to_owned()).chain(chunk.iter().cloned())))
            .collect();
        let dels = commands.len();
        commands.push(cmd([
            "ZREM".to_owned(),
            keys.active_conversations(),
            conversation_id.to_owned(),
        ]));
        let replies = self.redis.pipeline(&commands).await?;
        let mut deleted = 0;
        for reply in replies.into_iter().take(dels) {
            let value = reply.map_err(crate::storage::RedisError::Command)?;
            deleted += value.as_u64().unwrap_or(0) as usize;
        }
        Ok(deleted)
    }
}

/// Conversation -> (the epoch's `erasures` it was looked up at, its `erased_at`).
type Known = HashMap<String, (u64, Option<String>)>;

/// Conversations remembered per process, at most; past it the memory starts again.
const REMEMBERED: usize = 10_000;

/// Whether a conversation was erased, as `resume`, `ably-token` and `ably-publish` ask
/// before they admit a session or a link ([`crate::handlers::erased`]): the tombstone,
/// looked up once per conversation and process, and again only after an erasure anywhere
/// moved the epoch item's `erasures` on (read at most every
/// [`crate::storage::epoch::SNAPSHOT_MAX_AGE`] by the history reads anyway). So a poll
/// served from Redis costs no DynamoDB read, and an erasure refuses its conversation's
/// sessions everywhere by the time `POST /api/chat/erase` answers (it counts itself
/// before it waits [`crate::handlers::records::erase::SETTLE`]).
#[derive(Clone)]
pub struct ErasureWatch {
    archive: EventArchive,
    epoch: crate::storage::epoch::EpochWatch,
    known: std::sync::Arc<std::sync::Mutex<Known>>,
}

impl std::fmt::Debug for ErasureWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErasureWatch").finish_non_exhaustive()
    }
}

impl ErasureWatch {
    pub fn new(archive: EventArchive, epoch: crate::storage::epoch::EpochWatch) -> Self {
        ErasureWatch {
            archive,
            epoch,
            known: Default::default(),
        }
    }

    /// The watch of a function that reads nothing else of the table (`ably-token` and
    /// `ably-publish`, which admit chat sessions): its own archive and epoch clients.
    pub fn over(
        dynamo: aws_sdk_dynamodb::Client,
        config: &crate::storage::EventStoreConfig,
    ) -> Self {
        ErasureWatch::new(
            EventArchive::new(dynamo.clone(), config),
            crate::storage::epoch::EpochWatch::new(dynamo, config.table.clone()),
        )
    }

    /// When `conversation_id` was last erased; `None`: never. Without a current epoch
    /// (DynamoDB not answering) the tombstone itself is asked, so nothing is admitted on
    /// an old answer.
    pub async fn erased_at(&self, conversation_id: &str) -> Result<Option<String>, ArchiveError> {
        let generation = match self.epoch.current().await {
            crate::storage::epoch::EpochView::Current(epoch) => Some(epoch.erasures),
            _ => None,
        };
        let remembered = |known: &Known| {
            let (seen, at) = known.get(conversation_id)?;
            (Some(*seen) == generation).then(|| at.clone())
        };
        if let Some(at) = remembered(&self.lock()) {
            return Ok(at);
        }
        let at = self
            .archive
            .tombstone(conversation_id)
            .await?
            .map(|t| t.erased_at);
        if let Some(generation) = generation {
            let mut known = self.lock();
            if known.len() >= REMEMBERED {
                known.clear();
            }
            known.insert(conversation_id.to_owned(), (generation, at.clone()));
        }
        Ok(at)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether a credential issued at `issued_at_secs` (Unix seconds, as JWTs say) was issued
/// at or before an erasure at `erased_at`, and so no longer admits anyone.
pub fn issued_before(erased_at: &str, issued_at_secs: u64) -> bool {
    crate::events::time::millis_of(erased_at)
        .is_none_or(|erased_ms| (issued_at_secs as i64).saturating_mul(1000) <= erased_ms)
}
