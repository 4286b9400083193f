//! Reading history: a conversation's recent events (resume redeem, an AI worker's
//! context) and the polling pages after a cursor, from the Redis cache when it provably
//! holds them, else from the DynamoDB archive (which then proves the cache again).
//!
//! The cache is read as whole only under its list's [`Proof`] and only in the cache
//! epoch the proof was made in ([`crate::storage::epoch`]): a cache write that failed, a
//! trim or an expiry can leave a list without events DynamoDB holds, and a reader that
//! trusted it would never see them. A read of the archive proves the list again, merging
//! what it lacked, once the epoch has settled.
//!
//! History is what the channel table trusts: an untrusted event (a customer's forged
//! `message:ai`, say) stays in both stores as the record, marked `trusted: false`, but no
//! reader here ever returns it.
//!
//! Both stores hold the record's entries, one per version of a message, placed at the
//! time of each change ([`crate::events::change`]). Recent history is the current view of
//! them ([`crate::events::view`]): each message once, as it now stands. A polling page is
//! a change feed: each message changed in it, once, as it stood after its last change
//! there (a delete as the delete), so a client that upserts by `serial` and drops deletes
//! holds the current view.

use crate::events::cursor::EventCursor;
use crate::events::event::is_reserved;
use crate::events::view::{self, fold};
use crate::events::ChatEvent;
use crate::platform::clock;
use crate::storage::archive::{ArchiveError, EventArchive};
use crate::storage::cache::EventCache;
use crate::storage::epoch::{EpochView, EpochWatch};
use crate::storage::proof::{CachedList, Proof};
use crate::storage::redis::RedisError;

/// Where a conversation's recent history was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistorySource {
    Cache,
    Archive,
}

/// A polling page: the messages changed strictly after the cursor, each as it stood after
/// its last change in the page, in the order of those changes, and the position of the
/// last entry looked at (trusted or not), so the next page starts after the entries
/// withheld here too.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub events: Vec<ChatEvent>,
    pub last: Option<EventCursor>,
    pub source: HistorySource,
}

impl Page {
    fn empty() -> Self {
        Page {
            events: Vec::new(),
            last: None,
            source: HistorySource::Archive,
        }
    }
}

/// Queries for the earlier entries of a page's changed messages made at once.
const FEED_QUERIES_AT_ONCE: usize = 8;
/// Unknown messages whose entries a recent read fetches, at most.
const MAX_FETCHED_MESSAGES: usize = 10;
/// Entries a recent read takes from the archive at most, looking for enough messages.
const MAX_RECENT_ENTRIES: usize = 1000;

/// Nothing to read: a reserved partition (the dead letters, never chat history) or an
/// empty page.
fn nothing_to_read(conversation_id: &str, limit: usize) -> bool {
    is_reserved(conversation_id) || limit == 0
}

/// The proof of `cached` if the epoch lets it be read as whole. A list is never empty:
/// none is there (it expired, or was deleted), whatever proof is left.
fn trusted_proof<'a>(cached: &'a CachedList, epoch: &EpochView) -> Option<&'a Proof> {
    cached
        .proof
        .as_ref()
        .filter(|proof| !cached.events.is_empty() && epoch.trusts(proof.epoch))
}

/// Reads history: Redis when its list is proven; else DynamoDB, and then proves the list,
/// so the next read is hot again.
#[derive(Debug, Clone)]
pub struct HistoryReader {
    cache: EventCache,
    archive: EventArchive,
    epoch: EpochWatch,
}

impl HistoryReader {
    pub fn new(cache: EventCache, archive: EventArchive, epoch: EpochWatch) -> Self {
        HistoryReader {
            cache,
            archive,
            epoch,
        }
    }

    pub fn cache(&self) -> &EventCache {
        &self.cache
    }

    /// What this process knows of the cache epoch (read at most every two seconds).
    pub async fn epoch(&self) -> EpochView {
        self.epoch.current().await
    }

    /// The newest `limit` trusted events of a conversation, newest first.
    pub async fn recent_events(
        &self,
        conversation_id: &str,
        limit: usize,
    ) -> Result<(Vec<ChatEvent>, HistorySource), ArchiveError> {
        if nothing_to_read(conversation_id, limit) {
            return Ok((Vec::new(), HistorySource::Archive));
        }
        let (cached, epoch) =
            tokio::join!(self.cache.recent(conversation_id), self.epoch.current());
        self.recent_from(conversation_id, limit, cached, epoch)
            .await
    }

    /// [`Self::recent_events`] when the cache was already read (by a script that did
    /// more in the same round trip).
    pub async fn recent_events_after_cache(
        &self,
        conversation_id: &str,
        limit: usize,
        cached: Result<CachedList, RedisError>,
    ) -> Result<(Vec<ChatEvent>, HistorySource), ArchiveError> {
        if nothing_to_read(conversation_id, limit) {
            return Ok((Vec::new(), HistorySource::Archive));
        }
        let epoch = self.epoch.current().await;
        self.recent_from(conversation_id, limit, cached, epoch)
            .await
    }

    async fn recent_from(
        &self,
        conversation_id: &str,
        limit: usize,
        cached: Result<CachedList, RedisError>,
        epoch: EpochView,
    ) -> Result<(Vec<ChatEvent>, HistorySource), ArchiveError> {
        let cache_answered = match cached {
            Ok(cached) => match cached_recent(cached, limit, &epoch) {
                Some(events) => return Ok((events, HistorySource::Cache)),
                None => true,
            },
            Err(e) => {
                tracing::warn!(error = %e, "redis unavailable, reading history from dynamodb");
                false
            }
        };
        let now_ms = clock::now_ms();
        let now_secs = now_ms.div_euclid(1000);
        // When the cache answered, as many as it holds, to prove it with: the newest
        // `limit` are then read from it next time. More while they hold fewer messages.
        let mut read = if cache_answered {
            limit.max(self.cache.capacity())
        } else {
            limit
        };
        let (entries, mut shown, unknown) = loop {
            let entries = self.archive.recent(conversation_id, read, now_secs).await?;
            let (shown, unknown) = view::current(&entries);
            // Only a message created before the oldest entry read has entries elsewhere.
            let oldest = match entries.last() {
                Some(oldest) if entries.len() == read => oldest.occurred_at.as_str(),
                _ => "",
            };
            let unknown: Vec<(String, String)> = unknown
                .iter()
                .filter(|e| e.message_time() < oldest)
                .map(|e| (e.message_key().to_owned(), e.message_time().to_owned()))
                .collect();
            if shown.len() >= limit || entries.len() < read || read >= MAX_RECENT_ENTRIES {
                break (entries, shown, unknown);
            }
            read = (read * 4).min(MAX_RECENT_ENTRIES);
        };
        if cache_answered {
            // The list is proven after the oldest of them, or wholly when the archive
            // holds fewer.
            let floor = match entries.last() {
                Some(oldest) if entries.len() == read => oldest.event_key(),
                _ => String::new(),
            };
            self.prove(conversation_id, entries.iter(), &floor, &epoch, now_ms)
                .await;
        }
        // A message changed within the read whose create lies before it: its own entries.
        for (serial, since) in unknown.into_iter().take(MAX_FETCHED_MESSAGES) {
            let entries = self
                .archive
                .message_entries(conversation_id, &serial, &since, None, now_secs)
                .await?;
            if let view::State::Shown(message) = fold(&entries) {
                shown.push(message);
            }
        }
        view::sort_newest_first(&mut shown);
        shown.truncate(limit);
        Ok((shown, HistorySource::Archive))
    }

    /// Proves the list from `newest_first`, read from the archive after `floor`, when
    /// the epoch allows; a failure is logged (the next read tries again).
    async fn prove<'e>(
        &self,
        conversation_id: &str,
        newest_first: impl ExactSizeIterator<Item = &'e ChatEvent>,
        floor: &str,
        epoch: &EpochView,
        now_ms: i64,
    ) {
        let Some(epoch) = epoch.provable(now_ms) else {
            return;
        };
        if let Err(e) = self
            .cache
            .prove(conversation_id, newest_first, floor, epoch)
            .await
        {
            tracing::warn!(error = %e, "could not prove the redis history cache");
        }
    }

    /// The page of at most `limit` events strictly after `cursor` (from the oldest
    /// retained event without one), oldest first, with the untrusted ones withheld: from
    /// `cached` (the conversation's cache list, when Redis could be read) if it provably
    /// holds them all, else from DynamoDB.
    pub async fn page_after(
        &self,
        conversation_id: &str,
        cursor: Option<&EventCursor>,
        limit: usize,
        cached: Option<CachedList>,
        epoch: EpochView,
    ) -> Result<Page, ArchiveError> {
        if nothing_to_read(conversation_id, limit) {
            return Ok(Page::empty());
        }
        // A proven list is not proven again: the archive was read only because the
        // cursor lies before its floor.
        let unproven = cached
            .as_ref()
            .is_some_and(|c| trusted_proof(c, &epoch).is_none());
        if let Some(page) = cached.and_then(|c| cached_page(c, cursor, limit, &epoch)) {
            return self
                .feed(conversation_id, cursor, page, HistorySource::Cache)
                .await;
        }
        let now_ms = clock::now_ms();
        let events = self
            .archive
            .after(
                conversation_id,
                cursor.map(EventCursor::key),
                limit,
                now_ms.div_euclid(1000),
            )
            .await?;
        if unproven && events.len() < limit {
            // The archive's every event after the cursor: the list holds them all once
            // they are merged.
            let floor = cursor.map_or("", EventCursor::key);
            self.prove(conversation_id, events.iter().rev(), floor, &epoch, now_ms)
                .await;
        }
        self.feed(conversation_id, cursor, events, HistorySource::Archive)
            .await
    }

    /// The entries of the message `want` (its key and time) up to `cursor`; none when
    /// there is no such message or no cursor.
    async fn earlier_entries(
        &self,
        conversation_id: &str,
        want: Option<(&str, &str)>,
        cursor: Option<&EventCursor>,
        now_secs: i64,
    ) -> Result<Vec<ChatEvent>, ArchiveError> {
        match (want, cursor) {
            (Some((serial, since)), Some(cursor)) => {
                self.archive
                    .message_entries(conversation_id, serial, since, Some(cursor.key()), now_secs)
                    .await
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The change feed of the entries `examined` after `cursor`: each message once, as
    /// it stood after its last trusted change among them, in the order of those changes.
    /// A change whose create lies before the cursor is folded with the message's earlier
    /// entries, read from the archive.
    async fn feed(
        &self,
        conversation_id: &str,
        cursor: Option<&EventCursor>,
        examined: Vec<ChatEvent>,
        source: HistorySource,
    ) -> Result<Page, ArchiveError> {
        let last = examined.last().map(EventCursor::of);
        let now_secs = clock::now_ms().div_euclid(1000);
        // Each message changed here whose create lies before the page: its earlier
        // entries, a few queries at a time.
        let changed = view::changed(&examined);
        let wanted: Vec<Option<(&str, &str)>> = changed
            .iter()
            .map(|message| (cursor.is_some() && message.needs_earlier()).then(|| message.message()))
            .collect();
        let mut earlier = Vec::with_capacity(wanted.len());
        for chunk in wanted.chunks(FEED_QUERIES_AT_ONCE) {
            let reads = chunk
                .iter()
                .map(|want| self.earlier_entries(conversation_id, *want, cursor, now_secs));
            earlier.extend(futures::future::try_join_all(reads).await?);
        }
        let served: Vec<ChatEvent> = changed
            .iter()
            .zip(&earlier)
            .filter_map(|(message, earlier)| message.served(earlier))
            .collect();
        Ok(Page {
            events: served,
            last,
            source,
        })
    }
}

/// The newest `limit` messages of the current view out of a conversation's cached list,
/// when its proof shows the list holds every entry they are made of; `None` sends the
/// reader to DynamoDB.
pub fn cached_recent(
    cached: CachedList,
    limit: usize,
    epoch: &EpochView,
) -> Option<Vec<ChatEvent>> {
    let proof = trusted_proof(&cached, epoch)?.clone();
    let entries = cached.newest_first();
    // Newest first: those the proof covers come first.
    let covered = entries.iter().take_while(|e| proof.covers(e)).count();
    let (mut shown, unknown) = view::current(&entries[..covered]);
    if !proof.floor.is_empty() {
        // Enough messages, and none changed here whose create lies under the floor yet
        // is newer than the last of them.
        let enough = shown.len() >= limit;
        let oldest = shown
            .get(limit.saturating_sub(1))
            .map(|e| e.occurred_at.as_str());
        let floor_time = proof.floor.split('#').next().unwrap_or_default();
        let hidden = unknown.iter().any(|e| {
            e.message_time() <= floor_time && oldest.is_none_or(|o| e.message_time() >= o)
        });
        if !enough || hidden {
            return None;
        }
    }
    shown.truncate(limit);
    Some(shown)
}

/// The page after `cursor` out of a conversation's cached list, when its proof shows the
/// list holds every event after the cursor; `None` sends the reader to DynamoDB. Without
/// a cursor the client wants the oldest retained event, which only DynamoDB knows.
pub fn cached_page(
    cached: CachedList,
    cursor: Option<&EventCursor>,
    limit: usize,
    epoch: &EpochView,
) -> Option<Vec<ChatEvent>> {
    let cursor = cursor?;
    if !trusted_proof(&cached, epoch)?.covers_after(cursor.key()) {
        return None;
    }
    let mut events = cached.newest_first();
    events.reverse();
    Some(
        events
            .into_iter()
            .filter(|e| cursor.precedes(e))
            .take(limit)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::event::sample as at;
    use crate::storage::epoch::CacheEpoch;

    fn ids(events: &[ChatEvent]) -> Vec<&str> {
        events.iter().map(|e| e.id.as_str()).collect()
    }

    /// A list proven after the time `floor_ms` (`None`: from the first event).
    fn proven(events: Vec<ChatEvent>, floor_ms: Option<i64>, epoch: u64) -> CachedList {
        let floor = floor_ms.map_or(String::new(), |ms| at(ms, "x").occurred_at);
        proven_after(events, floor, epoch)
    }

    fn proven_after(events: Vec<ChatEvent>, floor: String, epoch: u64) -> CachedList {
        CachedList {
            events,
            proof: Some(Proof { floor, epoch }),
        }
    }

    const EPOCH: EpochView = EpochView::Current(CacheEpoch {
        number: 4,
        settled_after_ms: 0,
        erasures: 0,
    });

    #[test]
    fn the_cache_answers_a_poll_only_after_its_proven_floor_and_in_its_epoch() {
        // Newest pushed first, with one event pushed late and one pushed twice.
        let list = vec![at(5, "e"), at(3, "c"), at(4, "d"), at(3, "c"), at(2, "b")];
        let cursor = |e: &ChatEvent| EventCursor::of(e);
        let page = |c: Option<&EventCursor>, limit| {
            cached_page(proven(list.clone(), Some(2), 4), c, limit, &EPOCH)
        };

        assert_eq!(
            page(None, 10),
            None,
            "no cursor: only DynamoDB knows the oldest"
        );
        assert_eq!(
            page(Some(&cursor(&at(1, "a"))), 10),
            None,
            "before the floor"
        );
        assert_eq!(
            page(Some(&cursor(&at(2, "b"))), 10),
            None,
            "at the floor: an event of the same millisecond may be missing"
        );
        let after_floor = page(Some(&cursor(&at(3, "a"))), 10).unwrap();
        assert_eq!(ids(&after_floor), ["c", "d", "e"], "each event once");
        assert_eq!(ids(&page(Some(&cursor(&at(3, "c"))), 1).unwrap()), ["d"]);
        assert_eq!(page(Some(&cursor(&at(5, "e"))), 5).unwrap(), Vec::new());
        assert_eq!(page(Some(&cursor(&at(9, "z"))), 5).unwrap(), Vec::new());

        // No proof, a proof of another epoch, or no epoch known but a proof: the list
        // alone is not enough, except when DynamoDB cannot be asked either.
        let c = cursor(&at(4, "d"));
        let unproven = CachedList {
            events: list.clone(),
            proof: None,
        };
        assert_eq!(cached_page(unproven, Some(&c), 5, &EPOCH), None);
        assert_eq!(
            cached_page(proven(list.clone(), Some(2), 3), Some(&c), 5, &EPOCH),
            None
        );
        let unknown = EpochView::Unknown;
        assert_eq!(
            ids(&cached_page(proven(list.clone(), Some(2), 3), Some(&c), 5, &unknown).unwrap()),
            ["e"]
        );
        // Proven after a position (a read of the archive after a cursor): from that
        // cursor on.
        let after_b = proven_after(list.clone(), at(2, "b").event_key(), 4);
        assert_eq!(
            ids(&cached_page(after_b.clone(), Some(&cursor(&at(2, "b"))), 5, &EPOCH).unwrap()),
            ["c", "d", "e"]
        );
        assert_eq!(
            cached_page(after_b, Some(&cursor(&at(2, "a"))), 5, &EPOCH),
            None
        );
        // Proven from the first event: any cursor.
        assert_eq!(
            ids(
                &cached_page(proven(list, None, 4), Some(&cursor(&at(0, "a"))), 5, &EPOCH).unwrap()
            ),
            ["b", "c", "d", "e"]
        );
    }

    #[test]
    fn recent_history_comes_from_the_cache_only_when_the_proof_covers_enough_of_it() {
        let mut forged = at(6, "f");
        forged.trusted = false;
        let list = vec![
            forged,
            at(5, "e"),
            at(4, "d"),
            at(5, "e"),
            at(3, "c"),
            at(2, "b"),
        ];
        let recent = |floor, limit| cached_recent(proven(list.clone(), floor, 4), limit, &EPOCH);
        assert_eq!(ids(&recent(Some(2), 3).unwrap()), ["e", "d", "c"]);
        assert_eq!(recent(Some(2), 4), None, "b is at the floor: not covered");
        let after_c = proven_after(list.clone(), at(3, "c").event_key(), 4);
        assert_eq!(
            ids(&cached_recent(after_c.clone(), 2, &EPOCH).unwrap()),
            ["e", "d"]
        );
        assert_eq!(
            cached_recent(after_c, 3, &EPOCH),
            None,
            "c itself is the floor"
        );
        assert_eq!(ids(&recent(None, 10).unwrap()), ["e", "d", "c", "b"]);
        assert_eq!(
            cached_recent(proven(list.clone(), None, 5), 2, &EPOCH),
            None,
            "another epoch"
        );
        let unproven = CachedList {
            events: list,
            proof: None,
        };
        assert_eq!(cached_recent(unproven, 1, &EPOCH), None);
    }
}
