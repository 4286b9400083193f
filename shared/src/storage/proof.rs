//! What a read of a conversation's cached list gives: its events and its [`Proof`], the
//! claim that the list holds every event of the conversation after a point in time.
//!
//! A proof is made from a read of the archive (`scripts/refill.lua`), kept by every
//! push and trim (`scripts/mirror.lua`), dropped when the list is recreated, and counts
//! only in the cache epoch it was made in ([`crate::storage::epoch`]).

use serde_json::Value;

use crate::events::cursor::position_cmp;
use crate::events::ChatEvent;
use crate::storage::redis::RedisError;

/// That a conversation's list holds every event of the conversation after `floor`, as
/// long as the cache epoch is still `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// Empty: every retained event, from the first. A time (`occurred_at`): every event
    /// after that millisecond (what a trim leaves). A position (`{occurred_at}#{id}`, an
    /// event key): every event after that one (what a read of the archive proves).
    pub floor: String,
    pub epoch: u64,
}

impl Proof {
    /// The proof of a script's `HMGET floor epoch` reply, if the list has one.
    fn of_reply(reply: Option<&Value>) -> Option<Proof> {
        let fields = reply?.as_array()?;
        let floor = fields.first()?.as_str()?;
        let epoch = fields.get(1)?.as_str()?.parse().ok()?;
        Some(Proof {
            floor: floor.to_owned(),
            epoch,
        })
    }

    /// Whether the list holds every event after `position` (an event key).
    pub fn covers_after(&self, position: &str) -> bool {
        match self.floor_time() {
            None => true,
            Some(time) if self.floor.len() == time.len() => {
                position.get(..time.len()).is_some_and(|at| at > time)
            }
            Some(_) => position >= self.floor.as_str(),
        }
    }

    /// Whether `event` is one of the events the list holds every one of.
    pub fn covers(&self, event: &ChatEvent) -> bool {
        match self.floor_time() {
            None => true,
            Some(time) if self.floor.len() == time.len() => event.occurred_at.as_str() > time,
            Some(_) => position_cmp(event, &self.floor).is_gt(),
        }
    }

    /// The time part of the floor; `None` when it is empty.
    fn floor_time(&self) -> Option<&str> {
        (!self.floor.is_empty()).then(|| self.floor.split('#').next().unwrap_or_default())
    }
}

/// A conversation's cached events, in list order (a late redelivery may have pushed one
/// twice), and the list's proof.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CachedList {
    pub events: Vec<ChatEvent>,
    pub proof: Option<Proof>,
}

impl CachedList {
    /// The list and proof of a script's reply (`LRANGE`, `HMGET floor epoch`).
    pub fn of_reply(list: &Value, proof: Option<&Value>) -> Result<Self, RedisError> {
        let Value::Array(items) = list else {
            return Err(RedisError::Protocol(
                "LRANGE did not return an array".into(),
            ));
        };
        Ok(CachedList {
            events: list_events(items),
            proof: Proof::of_reply(proof),
        })
    }

    /// Each event once, newest first.
    pub fn newest_first(mut self) -> Vec<ChatEvent> {
        sort_newest_first(&mut self.events);
        self.events
            .dedup_by(|a, b| a.occurred_at == b.occurred_at && a.id == b.id);
        self.events
    }
}

/// The events of a conversation list's entries, in list order; an entry that is not an
/// event is passed over.
fn list_events(entries: &[Value]) -> Vec<ChatEvent> {
    entries
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|s| serde_json::from_str(s).ok())
        .collect()
}

/// Newest first, as the lists hold events and history answers them.
pub fn sort_newest_first(events: &mut [ChatEvent]) {
    events.sort_by(|a, b| (&b.occurred_at, &b.id).cmp(&(&a.occurred_at, &a.id)));
}
