//! The DynamoDB archive of chat events (90 days): idempotent batch writes keyed by the
//! event and dead letters for signed bodies that do not parse. Its reads are in
//! [`crate::storage::reads`].

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::stream::{self, StreamExt};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::ably::webhook::WebhookBatch;
use crate::events::time::{iso_millis, millis_of};
use crate::events::ChatEvent;
use crate::storage::config::EventStoreConfig;
use crate::storage::dynamo::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use crate::storage::item::{event_item, skip, unstorable};

/// BatchWriteItem takes at most 25 items.
pub const DYNAMO_BATCH_SIZE: usize = 25;
/// Chunks written at once; keeps a 1000-event batch well inside table throughput bursts.
const DYNAMO_CONCURRENCY: usize = 8;
/// How far after the function's clock an event may be dated: Ably's clocks and ours differ
/// by far less; anything later is skipped as `future`.
pub const MAX_CLOCK_AHEAD_MS: i64 = 5 * 60 * 1000;
/// The most of a dead letter's body one item holds (DynamoDB items hold 400 KB).
pub const DEAD_LETTER_PART_BYTES: usize = 350 * 1024;
/// Conversation under which signed but unparseable bodies are kept.
pub const DEAD_LETTER_CONVERSATION: &str = "_dead_letter";
/// Why the archive could not take everything.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ArchiveError {
    #[error("dynamodb request failed: {0}")]
    Request(String),
    #[error("{0} items still unprocessed when the time budget ran out")]
    Unprocessed(usize),
    #[error("dynamodb did not answer within the time budget")]
    Timeout,
}

/// What [`EventArchive::put_groups`] wrote.
#[derive(Debug)]
pub struct ArchiveReport {
    /// Distinct items sent.
    pub written: usize,
    /// Per group: some of its events may not be stored.
    pub failed_groups: Vec<bool>,
    /// The first reason a write failed, if one did.
    pub error: Option<ArchiveError>,
}

/// Requests a chunk could not write, and why.
struct Unwritten {
    error: ArchiveError,
    requests: Vec<WriteRequest>,
}

/// An item's key: (`conversation_id`, `event_key`).
type ItemKey = (String, String);

fn request_key(request: &WriteRequest) -> Option<ItemKey> {
    let item = request.put_request.as_ref()?.item();
    match (item.get(PARTITION_KEY), item.get(SORT_KEY)) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => {
            Some((pk.clone(), sk.clone()))
        }
        _ => None,
    }
}

/// Each event's item key, with the first group that holds it.
fn group_index(events: &[ChatEvent], groups: &[Range<usize>]) -> HashMap<ItemKey, usize> {
    let mut index = HashMap::with_capacity(events.len());
    for (group, range) in groups.iter().enumerate() {
        for event in &events[range.clone()] {
            index
                .entry((event.history_id.clone(), event.event_key()))
                .or_insert(group);
        }
    }
    index
}

/// A refused chunk's requests, one list per group, in order.
fn split_by_group(
    requests: &[WriteRequest],
    group_of: &HashMap<ItemKey, usize>,
) -> Vec<Vec<WriteRequest>> {
    let mut split: Vec<(Option<usize>, Vec<WriteRequest>)> = Vec::new();
    for request in requests {
        let group = request_key(request).and_then(|k| group_of.get(&k).copied());
        match split.iter_mut().find(|(g, _)| *g == group) {
            Some((_, list)) => list.push(request.clone()),
            None => split.push((group, vec![request.clone()])),
        }
    }
    split.into_iter().map(|(_, list)| list).collect()
}

/// Requests in chunks of at most [`DYNAMO_BATCH_SIZE`].
fn chunked(requests: Vec<WriteRequest>) -> Vec<Vec<WriteRequest>> {
    let mut chunks = Vec::with_capacity(requests.len().div_ceil(DYNAMO_BATCH_SIZE));
    let mut rest = requests;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(DYNAMO_BATCH_SIZE));
        chunks.push(std::mem::replace(&mut rest, tail));
    }
    chunks
}

/// The DynamoDB archive of chat events.
#[derive(Debug, Clone)]
pub struct EventArchive {
    pub(super) client: aws_sdk_dynamodb::Client,
    pub(super) table: String,
    retention_days: u32,
}

impl EventArchive {
    /// The archive in `config`'s table, with its retention.
    pub fn new(client: aws_sdk_dynamodb::Client, config: &EventStoreConfig) -> Self {
        EventArchive {
            client,
            table: config.table.clone(),
            retention_days: config.retention.event_retention_days,
        }
    }

    /// For tools and tests that inspect what the archive holds.
    #[cfg(feature = "test-support")]
    pub fn table(&self) -> &str {
        &self.table
    }

    #[cfg(feature = "test-support")]
    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// One `PutRequest` per distinct event key (a batch may not name a key twice).
    /// Pure, so it can be benchmarked and inspected.
    pub fn write_requests(&self, events: &[ChatEvent], now_secs: i64) -> Vec<WriteRequest> {
        let mut seen = HashSet::with_capacity(events.len());
        let mut requests = Vec::with_capacity(events.len());
        for event in events {
            // The item key is (conversation_id, occurred_at#id).
            if !seen.insert((
                event.history_id.as_str(),
                event.occurred_at.as_str(),
                event.id.as_str(),
            )) {
                continue;
            }
            let expires_at = self
                .expires_at(event)
                .unwrap_or(now_secs + self.retention_secs());
            let item = event_item(event, event.event_key(), expires_at.to_string());
            if let Ok(put) = PutRequest::builder().set_item(Some(item)).build() {
                requests.push(WriteRequest::builder().put_request(put).build());
            }
        }
        requests
    }

    fn retention_secs(&self) -> i64 {
        i64::from(self.retention_days) * 86_400
    }

    /// When DynamoDB drops the event (epoch s): its own time plus the retention, so a
    /// redelivery or a replay never extends how long it is kept.
    pub fn expires_at(&self, event: &ChatEvent) -> Option<i64> {
        millis_of(&event.occurred_at).map(|ms| ms.div_euclid(1000) + self.retention_secs())
    }

    /// Moves out of `batch` the events that cannot be archived: those DynamoDB could not
    /// hold, those already past their retention (`expired`), which storing would bring
    /// back after they were deleted, and those dated more than [`MAX_CLOCK_AHEAD_MS`]
    /// after `now_ms` (`future`), which would sort after every later event and so hide
    /// them from a client following the polling cursor.
    pub fn skip_unarchivable(&self, batch: &mut WebhookBatch, now_ms: i64) {
        let now_secs = now_ms.div_euclid(1000);
        skip(batch, |event| {
            unstorable(event).or_else(|| match millis_of(&event.occurred_at) {
                Some(ms) if ms > now_ms.saturating_add(MAX_CLOCK_AHEAD_MS) => Some("future"),
                Some(ms) if ms.div_euclid(1000) + self.retention_secs() <= now_secs => {
                    Some("expired")
                }
                _ => None,
            })
        });
    }

    /// Writes every event (chunks of 25, concurrently), retrying unprocessed items with
    /// exponential backoff and jitter until `deadline`. Redelivered events overwrite
    /// themselves with the same keys, so a retry never duplicates.
    pub async fn put_all(
        &self,
        events: &[ChatEvent],
        now_secs: i64,
        deadline: Instant,
    ) -> Result<usize, ArchiveError> {
        let whole = std::iter::once(0..events.len()).collect::<Vec<_>>();
        let report = self.put_groups(events, &whole, now_secs, deadline).await;
        match report.error {
            None => Ok(report.written),
            Some(err) => Err(err),
        }
    }

    /// [`Self::put_all`] for events that arrived in several deliveries (`groups`: each
    /// delivery's range of `events`), saying which deliveries were not stored in full.
    /// A request DynamoDB refuses outright is tried again one delivery at a time, so a
    /// delivery it cannot take does not fail the others that shared its request.
    pub async fn put_groups(
        &self,
        events: &[ChatEvent],
        groups: &[Range<usize>],
        now_secs: i64,
        deadline: Instant,
    ) -> ArchiveReport {
        let requests = self.write_requests(events, now_secs);
        let written = requests.len();
        let chunks = chunked(requests);
        let first: Vec<Result<(), Unwritten>> = stream::iter(chunks)
            .map(|chunk| self.write_chunk(chunk, deadline))
            .buffer_unordered(DYNAMO_CONCURRENCY)
            .collect()
            .await;
        if first.iter().all(Result::is_ok) {
            return ArchiveReport {
                written,
                failed_groups: vec![false; groups.len()],
                error: None,
            };
        }
        // Only a failure needs to know which delivery each item came from.
        let group_of = group_index(events, groups);
        let mut retry = Vec::new();
        let mut failed: Vec<Unwritten> = Vec::new();
        for result in first {
            let Err(unwritten) = result else { continue };
            let split = split_by_group(&unwritten.requests, &group_of);
            if matches!(unwritten.error, ArchiveError::Request(_)) && split.len() > 1 {
                retry.extend(split);
            } else {
                failed.push(unwritten);
            }
        }
        let second: Vec<Result<(), Unwritten>> = stream::iter(retry)
            .map(|chunk| self.write_chunk(chunk, deadline))
            .buffer_unordered(DYNAMO_CONCURRENCY)
            .collect()
            .await;
        failed.extend(second.into_iter().filter_map(Result::err));
        let failed_keys: HashSet<ItemKey> = failed
            .iter()
            .flat_map(|u| &u.requests)
            .filter_map(request_key)
            .collect();
        // An event named in two deliveries is written once, and fails both if it fails.
        let failed_groups = groups
            .iter()
            .map(|range| {
                !failed_keys.is_empty()
                    && events[range.clone()].iter().any(|event| {
                        failed_keys.contains(&(event.history_id.clone(), event.event_key()))
                    })
            })
            .collect();
        ArchiveReport {
            written,
            failed_groups,
            error: failed.into_iter().next().map(|u| u.error),
        }
    }

    /// One `BatchWriteItem` of at most 25 requests (puts or deletes), unprocessed ones
    /// retried with backoff until `deadline`.
    pub(crate) async fn write_requests_until(
        &self,
        requests: Vec<WriteRequest>,
        deadline: Instant,
    ) -> Result<(), ArchiveError> {
        self.write_chunk(requests, deadline)
            .await
            .map_err(|unwritten| unwritten.error)
    }

    async fn write_chunk(
        &self,
        mut requests: Vec<WriteRequest>,
        deadline: Instant,
    ) -> Result<(), Unwritten> {
        let mut attempt: u32 = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let error = ArchiveError::Unprocessed(requests.len());
                return Err(Unwritten { error, requests });
            }
            let call = self
                .client
                .batch_write_item()
                .request_items(self.table.clone(), requests.clone())
                .send();
            let output = match tokio::time::timeout(remaining, call).await {
                Err(_) => {
                    let error = ArchiveError::Timeout;
                    return Err(Unwritten { error, requests });
                }
                Ok(Err(e)) => {
                    let error = ArchiveError::Request(describe_sdk_error(&e));
                    return Err(Unwritten { error, requests });
                }
                Ok(Ok(output)) => output,
            };
            let unprocessed = output
                .unprocessed_items
                .and_then(|mut m| m.remove(&self.table))
                .unwrap_or_default();
            if unprocessed.is_empty() {
                return Ok(());
            }
            attempt += 1;
            let ceiling = Duration::from_millis(50u64.saturating_mul(1 << attempt.min(6)));
            let backoff =
                Duration::from_millis(rand::rng().random_range(0..=ceiling.as_millis() as u64));
            if Instant::now() + backoff >= deadline {
                let error = ArchiveError::Unprocessed(unprocessed.len());
                return Err(Unwritten {
                    error,
                    requests: unprocessed,
                });
            }
            tokio::time::sleep(backoff).await;
            requests = unprocessed;
        }
    }

    /// Keeps a delivery that could not be stored as events (a signed body that does not
    /// parse, a batch past Ably's size), keyed by its sha256, so a redelivery overwrites
    /// it. A body too large for one item is kept whole in parts of
    /// [`DEAD_LETTER_PART_BYTES`] (`{sha256}#{part}`, each with `part`, `parts` and
    /// `bytes`), written before `deadline`. Returns the sha256.
    pub async fn dead_letter(
        &self,
        body: &[u8],
        reason: &str,
        now_secs: i64,
        deadline: Instant,
    ) -> Result<String, ArchiveError> {
        let sha = hex::encode(Sha256::digest(body));
        let expires_at = now_secs + self.retention_secs();
        let s = |text: &str| AttributeValue::S(text.to_owned());
        let n = |number: usize| AttributeValue::N(number.to_string());
        let common = |sort_key: String| {
            HashMap::from([
                (PARTITION_KEY.to_owned(), s(DEAD_LETTER_CONVERSATION)),
                (SORT_KEY.to_owned(), AttributeValue::S(sort_key)),
                ("sha256".to_owned(), s(&sha)),
                ("bytes".to_owned(), n(body.len())),
                ("reason".to_owned(), s(reason)),
                (
                    "received_at".to_owned(),
                    s(&iso_millis(now_secs * 1000).unwrap_or_default()),
                ),
                (
                    TTL_ATTRIBUTE.to_owned(),
                    AttributeValue::N(expires_at.to_string()),
                ),
            ])
        };
        let items: Vec<HashMap<String, AttributeValue>> = if body.len() <= DEAD_LETTER_PART_BYTES {
            let mut item = common(sha.clone());
            let raw = match std::str::from_utf8(body) {
                Ok(text) => AttributeValue::S(text.to_owned()),
                Err(_) => AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(body)),
            };
            item.insert("raw_body".to_owned(), raw);
            vec![item]
        } else {
            let parts = body.len().div_ceil(DEAD_LETTER_PART_BYTES);
            body.chunks(DEAD_LETTER_PART_BYTES)
                .enumerate()
                .map(|(part, bytes)| {
                    let mut item = common(format!("{sha}#{part:04}"));
                    item.insert("part".to_owned(), n(part));
                    item.insert("parts".to_owned(), n(parts));
                    item.insert(
                        "raw_part".to_owned(),
                        AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(bytes)),
                    );
                    item
                })
                .collect()
        };
        let requests: Vec<WriteRequest> = items
            .into_iter()
            .filter_map(|item| PutRequest::builder().set_item(Some(item)).build().ok())
            .map(|put| WriteRequest::builder().put_request(put).build())
            .collect();
        for chunk in chunked(requests) {
            self.write_chunk(chunk, deadline)
                .await
                .map_err(|unwritten| unwritten.error)?;
        }
        Ok(sha)
    }
}

pub(crate) fn describe_sdk_error<E: std::error::Error + 'static, R>(
    err: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> String {
    use aws_sdk_dynamodb::error::SdkError;
    match err {
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(_) => "connection failed".into(),
        SdkError::ServiceError(e) => {
            let source = e.err().to_string();
            let mut text = format!("service error: {source}");
            text.truncate(200);
            text
        }
        _ => "request failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::item::item_event;
    use serde_json::json;

    #[test]
    fn an_event_reads_back_the_same_from_the_cache_and_from_the_archive() {
        // Floats whose shortest text serde_json once parsed back one ulp off.
        let body = json!({"channel": "conversation:f", "name": "m", "timestamp": 1, "id": "f-1",
            "encoding": "json",
            "data": format!(r#"{{"a": {}, "b": [0.1, 1e-7, 123456.789e3]}}"#, "2".repeat(83))})
        .to_string();
        let batch =
            crate::ably::webhook::parse(format!(r#"{{"items":[{body}]}}"#).as_bytes()).unwrap();
        let event = &batch.events[0];
        assert!(event.payload.to_value()["a"].is_f64());

        let cached: ChatEvent =
            serde_json::from_str(&serde_json::to_string(event).unwrap()).unwrap();
        assert_eq!(&cached, event, "cache round trip");

        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let archive = EventArchive::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            &EventStoreConfig {
                table: "t".into(),
                retention: crate::storage::config::RetentionConfig {
                    event_retention_days: 1,
                    redis_event_ttl_seconds: 1,
                    redis_event_max: 1,
                },
            },
        );
        let requests = archive.write_requests(std::slice::from_ref(event), 0);
        let item = requests[0].put_request().unwrap().item();
        assert_eq!(item_event(item).as_ref(), Some(event), "archive round trip");
    }
}
