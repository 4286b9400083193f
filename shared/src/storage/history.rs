//! Reading history: a conversation's recent events (resume redeem, an AI worker's
//! context) and the polling pages after a cursor, from the Redis cache when it provably
//! holds them, else from the DynamoDB archive (which then refills the cache).
//!
//! History is what the channel table trusts: an untrusted event (a customer's forged
//! `message:ai`, say) stays in both stores as the record, marked `trusted: false`, but no
//! reader here ever returns it.

use crate::events::cursor::{position_cmp, EventCursor};
use crate::events::event::is_reserved;
use crate::events::ChatEvent;
use crate::platform::clock;
use crate::storage::archive::{ArchiveError, EventArchive};
use crate::storage::cache::EventCache;
use crate::storage::redis::RedisError;

/// Where a conversation's recent history was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistorySource {
    Cache,
    Archive,
}

/// A polling page: the trusted events strictly after the cursor, oldest first, and the
/// position of the last event looked at (trusted or not), so the next page starts after
/// the events withheld here too.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub events: Vec<ChatEvent>,
    pub last: Option<EventCursor>,
    pub source: HistorySource,
}

impl Page {
    fn of(examined: Vec<ChatEvent>, source: HistorySource) -> Self {
        let last = examined.last().map(EventCursor::of);
        Page {
            events: trusted(examined),
            last,
            source,
        }
    }
}

fn trusted(mut events: Vec<ChatEvent>) -> Vec<ChatEvent> {
    events.retain(|event| event.trusted);
    events
}

/// Nothing to read: a reserved partition (the dead letters, never chat history) or an
/// empty page.
fn nothing_to_read(conversation_id: &str, limit: usize) -> bool {
    is_reserved(conversation_id) || limit == 0
}

/// Reads history: Redis first; when Redis is empty or down, DynamoDB, and then refills
/// Redis so the next read is hot again.
#[derive(Debug, Clone)]
pub struct HistoryReader {
    cache: EventCache,
    archive: EventArchive,
}

impl HistoryReader {
    pub fn new(cache: EventCache, archive: EventArchive) -> Self {
        HistoryReader { cache, archive }
    }

    pub fn cache(&self) -> &EventCache {
        &self.cache
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
        let cached = self.cache.recent(conversation_id).await;
        self.cached_else_archived(conversation_id, limit, cached)
            .await
    }

    /// [`Self::recent_events`] when the cache was already read (by a script that did
    /// more in the same round trip): the cached events if there are any, else the
    /// archive's, refilling the cache when it answered.
    pub async fn recent_events_after_cache(
        &self,
        conversation_id: &str,
        limit: usize,
        cached: Result<Vec<ChatEvent>, RedisError>,
    ) -> Result<(Vec<ChatEvent>, HistorySource), ArchiveError> {
        if nothing_to_read(conversation_id, limit) {
            return Ok((Vec::new(), HistorySource::Archive));
        }
        self.cached_else_archived(conversation_id, limit, cached)
            .await
    }

    async fn cached_else_archived(
        &self,
        conversation_id: &str,
        limit: usize,
        cached: Result<Vec<ChatEvent>, RedisError>,
    ) -> Result<(Vec<ChatEvent>, HistorySource), ArchiveError> {
        let cached = cached.map(|events| {
            let mut events = trusted(events);
            events.truncate(limit);
            events
        });
        let cache_answered = match cached {
            Ok(events) if !events.is_empty() => return Ok((events, HistorySource::Cache)),
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "redis unavailable, reading history from dynamodb");
                false
            }
        };
        let now_secs = clock::now_ms().div_euclid(1000);
        let events = self
            .archive
            .recent(conversation_id, limit, now_secs)
            .await?;
        if cache_answered && !events.is_empty() {
            if let Err(e) = self.cache.refill(conversation_id, &events).await {
                tracing::warn!(error = %e, "could not refill the redis history cache");
            }
        }
        Ok((events, HistorySource::Archive))
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
        cached: Option<Vec<ChatEvent>>,
    ) -> Result<Page, ArchiveError> {
        if nothing_to_read(conversation_id, limit) {
            return Ok(Page::of(Vec::new(), HistorySource::Archive));
        }
        if let Some(page) = cached.and_then(|c| cached_page(c, cursor, limit)) {
            return Ok(Page::of(page, HistorySource::Cache));
        }
        let now_secs = clock::now_ms().div_euclid(1000);
        let events = self
            .archive
            .after(
                conversation_id,
                cursor.map(EventCursor::key),
                limit,
                now_secs,
            )
            .await?;
        Ok(Page::of(events, HistorySource::Archive))
    }
}

/// The page after `cursor` out of a conversation's cached events, when the cache provably
/// holds every event after it; `None` sends the reader to DynamoDB.
///
/// The list keeps the most recently pushed events, so once it has been trimmed or has
/// expired, only positions from its oldest event on are known to be complete. Without a
/// cursor the client wants the oldest retained event, which only DynamoDB knows.
pub fn cached_page(
    mut cached: Vec<ChatEvent>,
    cursor: Option<&EventCursor>,
    limit: usize,
) -> Option<Vec<ChatEvent>> {
    let cursor = cursor?;
    cached.sort_by(|a, b| (&a.occurred_at, &a.id).cmp(&(&b.occurred_at, &b.id)));
    cached.dedup_by(|a, b| a.occurred_at == b.occurred_at && a.id == b.id);
    if position_cmp(cached.first()?, cursor.key()).is_gt() {
        return None;
    }
    Some(
        cached
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

    fn ids(events: &[ChatEvent]) -> Vec<&str> {
        events.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn the_cache_answers_a_poll_only_from_inside_its_window() {
        // Newest first, as the list holds them, with one event pushed late.
        let list = vec![at(5, "e"), at(3, "c"), at(4, "d"), at(2, "b")];
        let cursor = |e: &ChatEvent| EventCursor::of(e);
        let page = |c: Option<&EventCursor>, limit| cached_page(list.clone(), c, limit);

        assert_eq!(
            page(None, 10),
            None,
            "no cursor: only DynamoDB knows the oldest"
        );
        assert_eq!(
            cached_page(Vec::new(), Some(&cursor(&at(2, "b"))), 10),
            None
        );
        assert_eq!(
            page(Some(&cursor(&at(1, "a"))), 10),
            None,
            "before the window"
        );
        assert_eq!(page(Some(&cursor(&at(2, "a"))), 10), None, "just before it");
        let from_oldest = page(Some(&cursor(&at(2, "b"))), 10).unwrap();
        assert_eq!(ids(&from_oldest), ["c", "d", "e"]);
        assert_eq!(ids(&page(Some(&cursor(&at(3, "c"))), 1).unwrap()), ["d"]);
        assert_eq!(
            ids(&page(Some(&cursor(&at(4, "c"))), 5).unwrap()),
            ["d", "e"]
        );
        assert_eq!(page(Some(&cursor(&at(5, "e"))), 5).unwrap(), Vec::new());
        assert_eq!(page(Some(&cursor(&at(9, "z"))), 5).unwrap(), Vec::new());
        // A doubled entry is served once.
        let doubled = vec![at(3, "c"), at(3, "c"), at(2, "b")];
        assert_eq!(
            ids(&cached_page(doubled, Some(&cursor(&at(2, "b"))), 5).unwrap()),
            ["c"]
        );
    }
}
