//! The one mirror behind every delivery path: webhook, direct invoke, SQS and Kinesis
//! hand it parsed deliveries, and it stores them all at once (one cache round trip per
//! 1000 events, one set of DynamoDB batch writes, the dead letters beside them), then says what became of
//! each delivery.
//!
//! The cache is written before the archive: when the cache write fails, the cache epoch
//! is moved on (and readers given time to see it) before any of the events is in
//! DynamoDB, so no reader trusts a list that lacks an event DynamoDB holds
//! ([`crate::storage::epoch`]).

use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::ably::webhook::{PayloadError, WebhookBatch};
use crate::events::ChatEvent;
use crate::handlers::ably_events::{Counts, EventsState, Receipt};
use crate::platform::clock;
use crate::storage::archive::{ArchiveError, ArchiveReport};
use crate::storage::cache::CacheOutcome;
use crate::storage::epoch::SNAPSHOT_MAX_AGE;
use crate::storage::erasure::{conversations_of, skip_erased};
use crate::storage::RedisError;

/// One delivery (a webhook, a direct invoke, one SQS or Kinesis record): its raw bytes
/// (kept as a dead letter if they cannot be stored as events) and what the parser made
/// of them.
pub struct Delivery<'a> {
    pub body: &'a [u8],
    pub parsed: Result<WebhookBatch, PayloadError>,
}

/// What became of one delivery.
#[derive(Debug)]
pub enum Outcome {
    /// Every event is in DynamoDB (the cache may have failed: see [`Receipt::cache`]).
    Stored(Receipt),
    /// More items than Ably ever sends in a batch: kept in DynamoDB under `_dead_letter`.
    TooLarge(usize),
    /// It did not parse, and is kept in DynamoDB under `_dead_letter`.
    DeadLetter(PayloadError),
    /// It could not be stored as events, and could not be kept either (logged with its
    /// sha256).
    NotKept(PayloadError),
    /// Not every event was stored: the delivery must come again. Every write is keyed by
    /// the event, so the redelivery overwrites instead of duplicating.
    NotStored(ArchiveError),
}

impl Outcome {
    /// Whether the delivery can be let go (stored or kept), not delivered again.
    pub fn settled(&self) -> bool {
        !matches!(self, Outcome::NotStored(_) | Outcome::NotKept(_))
    }
}

/// What one delivery held, once parsed.
struct Parsed {
    /// Its events, in the invocation's list of them.
    events: Range<usize>,
    lifecycle: usize,
    /// Entries it held that are not stored, with why.
    skipped: Vec<String>,
}

/// A delivery that cannot be stored as events: kept whole as a dead letter.
struct Unreadable<'a> {
    body: &'a [u8],
    error: PayloadError,
}

/// Each delivery, in order, as the mirror treats it.
enum Treated<'a> {
    Parsed(Parsed),
    Unreadable(Unreadable<'a>),
    /// Whether its conversations were erased is not known: nothing of it is stored.
    Unknown(ArchiveError),
}

/// Stores `deliveries` in both stores and the dead letters, within `until`; one
/// [`Outcome`] per delivery, in order. `counts` gathers the invocation's metrics.
pub async fn mirror(
    state: &EventsState,
    deliveries: Vec<Delivery<'_>>,
    until: Instant,
    counts: &mut Counts,
) -> Vec<Outcome> {
    let now_ms = clock::now_ms();
    let now_secs = now_ms.div_euclid(1000);
    let mut deliveries = deliveries;
    for delivery in &mut deliveries {
        if let Ok(batch) = &mut delivery.parsed {
            // An event DynamoDB cannot hold would fail every redelivery; one past its
            // retention would come back from the dead; one from the future would hide
            // every later one from a polling cursor.
            state.stores.archive.skip_unarchivable(batch, now_ms);
        }
    }
    // An erased conversation's events dated at or before its erasure never come back,
    // whichever path redelivers them. A delivery whose erasures are unknown stores
    // nothing: it comes again.
    let (erased, unknown) = erasures(state, &deliveries, until).await;
    let mut events: Vec<ChatEvent> = Vec::new();
    let mut lifecycle = 0;
    let mut treated = Vec::with_capacity(deliveries.len());
    for (delivery, unknown) in deliveries.into_iter().zip(unknown) {
        if let Some(err) = unknown {
            counts.dynamodb_failed = true;
            tracing::warn!(error = %err, "the erasure lookup failed; the delivery comes again");
            treated.push(Treated::Unknown(err));
            continue;
        }
        treated.push(match delivery.parsed {
            Ok(mut batch) => {
                skip_erased(&mut batch, &erased);
                let start = events.len();
                if events.is_empty() {
                    // The usual single delivery: its events, moved as they are.
                    events = std::mem::take(&mut batch.events);
                } else {
                    events.append(&mut batch.events);
                }
                lifecycle += batch.lifecycle;
                Treated::Parsed(Parsed {
                    events: start..events.len(),
                    lifecycle: batch.lifecycle,
                    skipped: batch.skipped,
                })
            }
            // Not parsed, or past Ably's batch size: kept whole, never let go unrecorded.
            Err(error) => Treated::Unreadable(Unreadable {
                body: delivery.body,
                error,
            }),
        });
    }
    let parsed: Vec<&Parsed> = treated
        .iter()
        .filter_map(|t| match t {
            Treated::Parsed(p) => Some(p),
            Treated::Unreadable(_) | Treated::Unknown(_) => None,
        })
        .collect();
    let unreadable: Vec<&Unreadable<'_>> = treated
        .iter()
        .filter_map(|t| match t {
            Treated::Unreadable(u) => Some(u),
            Treated::Parsed(_) | Treated::Unknown(_) => None,
        })
        .collect();
    counts.received += events.len();
    counts.untrusted += events.iter().filter(|e| !e.trusted).count();
    counts.skipped += parsed.iter().map(|p| p.skipped.len()).sum::<usize>();
    counts.dead_letters += unreadable.len();

    let groups: Vec<Range<usize>> = parsed.iter().map(|p| p.events.clone()).collect();
    // Boxed: the stores' futures nest deep enough to pass the compiler's layout limit
    // in the binaries that await this one; one allocation per invocation.
    let ((cached, archived), kept) = tokio::join!(
        Box::pin(store(state, &events, lifecycle, &groups, now_ms, until)),
        futures::future::join_all(
            unreadable
                .iter()
                .map(|u| keep_dead_letter(state, u.body, &u.error, now_secs, until)),
        ),
    );
    let cache = match cached {
        Ok(outcome) => {
            counts.duplicates += outcome.duplicates;
            None
        }
        Err(_) => {
            counts.redis_failed = true;
            Some("unavailable")
        }
    };
    if let Some(err) = &archived.error {
        counts.dynamodb_failed = true;
        tracing::warn!(error = %err, events = events.len(), "dynamodb did not take every event");
    }
    let mut failed_groups = archived.failed_groups.into_iter();
    let mut kept = kept.into_iter();
    treated
        .into_iter()
        .map(|delivery| match delivery {
            Treated::Parsed(parsed) => {
                if failed_groups.next().unwrap_or(true) {
                    let error = archived
                        .error
                        .clone()
                        .unwrap_or(ArchiveError::Unprocessed(parsed.events.len()));
                    return Outcome::NotStored(error);
                }
                counts.stored += parsed.events.len();
                Outcome::Stored(Receipt {
                    received: parsed.events.len(),
                    stored: parsed.events.len(),
                    duplicates: 0,
                    lifecycle: parsed.lifecycle,
                    skipped: parsed.skipped,
                    cache,
                })
            }
            Treated::Unknown(error) => Outcome::NotStored(error),
            Treated::Unreadable(Unreadable { error, .. }) => {
                match (kept.next().unwrap_or(Err(ArchiveError::Timeout)), error) {
                    (Ok(()), PayloadError::TooLarge(items)) => Outcome::TooLarge(items),
                    (Ok(()), error) => Outcome::DeadLetter(error),
                    (Err(_), error) => Outcome::NotKept(error),
                }
            }
        })
        .collect()
}

/// The erasure time of every erased conversation the deliveries' events belong to (no
/// lookup when they hold no event), and per delivery, why its erasures are unknown. One
/// lookup for all; if DynamoDB refuses it, one per delivery, so that a delivery it
/// cannot answer for does not hold back the others.
async fn erasures(
    state: &EventsState,
    deliveries: &[Delivery<'_>],
    until: Instant,
) -> (HashMap<String, String>, Vec<Option<ArchiveError>>) {
    let each: Vec<Vec<&str>> = deliveries
        .iter()
        .map(|d| match &d.parsed {
            Ok(batch) => conversations_of(&batch.events),
            Err(_) => Vec::new(),
        })
        .collect();
    let mut unknown = vec![None; deliveries.len()];
    let mut all: Vec<&str> = each.iter().flatten().copied().collect();
    all.sort_unstable();
    all.dedup();
    if all.is_empty() {
        return (HashMap::new(), unknown);
    }
    let archive = &state.stores.archive;
    let err = match archive.erased_at(&all, until).await {
        Ok(erased) => return (erased, unknown),
        Err(err) => err,
    };
    if each.iter().filter(|ids| !ids.is_empty()).count() == 1 {
        for (slot, ids) in unknown.iter_mut().zip(&each) {
            if !ids.is_empty() {
                *slot = Some(err.clone());
            }
        }
        return (HashMap::new(), unknown);
    }
    let apart = futures::future::join_all(each.iter().map(|ids| async move {
        if ids.is_empty() {
            Ok(HashMap::new())
        } else {
            archive.erased_at(ids, until).await
        }
    }))
    .await;
    let mut erased = HashMap::new();
    for (slot, found) in unknown.iter_mut().zip(apart) {
        match found {
            Ok(found) => erased.extend(found),
            Err(err) => *slot = Some(err),
        }
    }
    (erased, unknown)
}

/// Both stores, the cache first (see the module's documentation).
async fn store(
    state: &EventsState,
    events: &[ChatEvent],
    lifecycle: usize,
    groups: &[Range<usize>],
    now_ms: i64,
    until: Instant,
) -> (Result<CacheOutcome, RedisError>, ArchiveReport) {
    let cached = cache_first(state, events, lifecycle, now_ms, until).await;
    let mut recorded = None;
    if let Err(err) = &cached {
        if !events.is_empty() {
            match advance_epoch(state, err, events.len(), now_ms, until).await {
                Ok(settling) => recorded = settling,
                Err(epoch_err) => {
                    let refused = ArchiveReport {
                        written: 0,
                        failed_groups: vec![true; groups.len()],
                        error: Some(epoch_err),
                    };
                    return (cached, refused);
                }
            }
        }
    }
    let now_secs = now_ms.div_euclid(1000);
    let archived = state
        .stores
        .archive
        .put_groups(events, groups, now_secs, until)
        .await;
    if let Some(recorded) = recorded {
        // Every write has ended: the lists may be proven again from now on.
        state.stores.epoch.settle(recorded, clock::now_ms()).await;
    }
    (cached, archived)
}

/// The Redis mirror, within a third of what is left of the budget (at least a second):
/// the archive, which comes after it, is the record.
async fn cache_first(
    state: &EventsState,
    events: &[ChatEvent],
    lifecycle: usize,
    now_ms: i64,
    until: Instant,
) -> Result<CacheOutcome, RedisError> {
    let left = until.saturating_duration_since(Instant::now());
    let cache_until = Instant::now() + (left / 3).max(Duration::from_secs(1)).min(left);
    let mirrored = tokio::time::timeout_at(
        cache_until.into(),
        state.stores.cache.mirror(events, lifecycle, now_ms),
    )
    .await
    .unwrap_or_else(|_| Err(RedisError::Unavailable("timed out".into())));
    if let Err(err) = &mirrored {
        tracing::warn!(error = %err, events = events.len(), "redis mirror failed; dynamodb is the record");
    }
    mirrored
}

/// After a failed cache write: moves the cache epoch on, then waits until every reader's
/// view of the epoch is newer than the move, before the events may reach DynamoDB. An
/// epoch that cannot be moved fails the delivery (it comes again), so that no event is
/// in DynamoDB that a proven list lacks.
async fn advance_epoch(
    state: &EventsState,
    cause: &RedisError,
    events: usize,
    now_ms: i64,
    until: Instant,
) -> Result<Option<i64>, ArchiveError> {
    let left = until.saturating_duration_since(Instant::now());
    let writes_end_ms = now_ms.saturating_add(i64::try_from(left.as_millis()).unwrap_or(i64::MAX));
    let moved = tokio::time::timeout_at(until.into(), state.stores.epoch.advance(writes_end_ms))
        .await
        .unwrap_or(Err(ArchiveError::Timeout));
    let waited = moved.and_then(|settling| {
        tracing::warn!(cause = %cause, events, "cache epoch moved on: lists are read from dynamodb until proven again");
        // Too little time left to wait for the readers: the delivery comes again.
        let ready = Instant::now() + SNAPSHOT_MAX_AGE;
        if ready < until {
            Ok((ready, settling))
        } else {
            Err(ArchiveError::Timeout)
        }
    });
    match waited {
        Ok((ready, settling)) => {
            tokio::time::sleep_until(ready.into()).await;
            Ok(settling)
        }
        Err(err) => {
            tracing::error!(error = %err, cause = %cause, events, "cache epoch could not be moved on in time; the delivery is not stored");
            Err(err)
        }
    }
}

/// A delivery that does not parse is kept (with its sha256), so nothing is lost.
async fn keep_dead_letter(
    state: &EventsState,
    body: &[u8],
    err: &PayloadError,
    now_secs: i64,
    until: Instant,
) -> Result<(), ArchiveError> {
    let kept = tokio::time::timeout_at(
        until.into(),
        state
            .stores
            .archive
            .dead_letter(body, &err.to_string(), now_secs, until),
    )
    .await
    .unwrap_or(Err(ArchiveError::Timeout));
    match &kept {
        // The archive keys the dead letter by its sha256 and answers with it.
        Ok(sha) => {
            tracing::warn!(sha256 = %sha, bytes = body.len(), reason = %err, "unparseable delivery kept as dead letter")
        }
        Err(store_err) => {
            let sha = hex::encode(Sha256::digest(body));
            tracing::error!(sha256 = %sha, bytes = body.len(), reason = %err, error = %store_err, "unparseable delivery could not be kept")
        }
    }
    kept.map(|_| ())
}
