//! The current view of a conversation: each message once, at its latest trusted version,
//! with its appends added in version order and its reactions attached; a deleted message
//! is left out. Resume history and the history reader serve it, and each entry of the
//! polling feed is the state of its message after that entry's change.
//!
//! It is computed from the entries of the record ([`crate::events::change`]), whatever
//! order they were delivered in and however often: the newest whole version (create,
//! update or delete, by `version.serial`) is the message, and every append newer than it
//! is added once (appends are told apart by their own version serials). Untrusted entries
//! alter nothing.

use std::collections::{BTreeMap, HashMap};

use crate::events::change::{extend, split_fragments, Action, Version};
use crate::events::event::ChatEvent;
use crate::events::Payload;

/// What a message's entries make of it.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// The message as readers see it.
    Shown(ChatEvent),
    /// Its latest trusted version deletes it: the delete, for the change feed.
    Deleted(ChatEvent),
    /// No trusted whole version among the entries (its create lies outside them, or was
    /// never trusted).
    Unknown,
}

impl State {
    /// The entry a change feed serves for it.
    pub fn into_served(self) -> Option<ChatEvent> {
        match self {
            State::Shown(event) | State::Deleted(event) => Some(event),
            State::Unknown => None,
        }
    }
}

/// Whether an entry names no event of its own (a change that left `name` out).
fn nameless(entry: &ChatEvent) -> bool {
    Action::of_name(&entry.event_type).is_some()
}

/// Folds the entries of one message (any order, repeats allowed) into its state.
pub fn fold<'a>(entries: impl IntoIterator<Item = &'a ChatEvent>) -> State {
    let trusted: Vec<&ChatEvent> = entries.into_iter().filter(|e| e.trusted).collect();
    let by_version = |a: &&&ChatEvent, b: &&&ChatEvent| {
        a.version_serial()
            .cmp(b.version_serial())
            .then_with(|| a.fragments.len().cmp(&b.fragments.len()))
    };
    let whole = |e: &&&ChatEvent| e.action.is_none_or(Action::is_whole);
    let Some(newest) = trusted.iter().filter(whole).max_by(by_version).copied() else {
        return State::Unknown;
    };
    // A change that names no event keeps the message's name.
    let event_type = if nameless(newest) {
        match trusted.iter().filter(whole).find(|e| !nameless(e)) {
            Some(named) => named.event_type.clone(),
            None => return State::Unknown,
        }
    } else {
        newest.event_type.clone()
    };
    let id = trusted
        .iter()
        .find(|e| e.action == Some(Action::Create))
        .map_or_else(
            || newest.message_key().to_owned(),
            |e| e.message_id().to_owned(),
        );
    let base_serial = newest.version_serial();
    // Every append newer than the whole version, once each, in version order.
    let mut appended: BTreeMap<&str, (String, &str, Option<&str>)> = BTreeMap::new();
    let mut base = newest.payload.clone();
    for entry in &trusted {
        let Some((own, parts)) = split_fragments(entry) else {
            continue;
        };
        if std::ptr::eq(*entry, newest) {
            base = own;
        }
        for (fragment, text) in parts {
            if fragment.serial.as_str() > base_serial {
                appended.insert(
                    &fragment.serial,
                    (text, entry.occurred_at.as_str(), entry.editor()),
                );
            }
        }
    }
    let mut shown = ChatEvent {
        id,
        event_type,
        occurred_at: newest.message_time().to_owned(),
        message_at: None,
        fragments: Default::default(),
        trusted: true,
        ..newest.clone()
    };
    shown.reactions = trusted
        .iter()
        .filter(|e| e.reactions.is_some())
        .max_by(by_version)
        .and_then(|e| e.reactions.clone());
    if newest.action == Some(Action::Delete) {
        shown.payload = Payload::null();
        return State::Deleted(shown);
    }
    if let Some((serial, (_, at, editor))) = appended.last_key_value() {
        shown.version = Some(Version {
            serial: (*serial).to_owned(),
            client_id: editor.map(str::to_owned),
            updated_at: (*at).to_owned(),
        });
        shown.action = Some(Action::Append);
        let text: String = appended.values().map(|(t, _, _)| t.as_str()).collect();
        shown.payload = extend(&base, &text);
    } else {
        shown.payload = base;
    }
    State::Shown(shown)
}

/// The entries of `entries` grouped by message, in the order each message first appears.
pub fn by_message<'a>(entries: impl IntoIterator<Item = &'a ChatEvent>) -> Vec<Vec<&'a ChatEvent>> {
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let mut groups: Vec<Vec<&ChatEvent>> = Vec::new();
    for entry in entries {
        let key = (entry.history_id.as_str(), entry.message_key());
        match index.get(&key) {
            Some(&i) => groups[i].push(entry),
            None => {
                index.insert(key, groups.len());
                groups.push(vec![entry]);
            }
        }
    }
    groups
}

/// The current view of `entries`: the messages shown, newest first (by the time of each
/// message), and the entries of each message whose state is unknown from these entries
/// alone (a change whose create lies before them).
pub fn current<'a>(
    entries: impl IntoIterator<Item = &'a ChatEvent>,
) -> (Vec<ChatEvent>, Vec<&'a ChatEvent>) {
    let mut shown = Vec::new();
    let mut unknown = Vec::new();
    for group in by_message(entries) {
        match fold(group.iter().copied()) {
            State::Shown(event) => shown.push(event),
            State::Deleted(_) => {}
            State::Unknown => {
                if let Some(first) = group.iter().find(|e| e.trusted) {
                    unknown.push(*first);
                }
            }
        }
    }
    sort_newest_first(&mut shown);
    (shown, unknown)
}

/// A message changed within a page of the change feed: its entries there (trusted), and
/// the position of its last one.
pub struct Changed<'a> {
    pub entries: Vec<&'a ChatEvent>,
    pub position: String,
}

impl Changed<'_> {
    /// Whether its state needs its entries from before the page: none of its entries
    /// here is its create as it was first placed (a create that holds appends is placed
    /// at the last of them, after other changes, perhaps).
    pub fn needs_earlier(&self) -> bool {
        !self
            .entries
            .iter()
            .any(|e| !e.is_change() && e.fragments.is_empty())
    }

    /// Where its earlier entries begin: the time of the message, and its key.
    pub fn message(&self) -> (&str, &str) {
        let first = self.entries[0];
        (first.message_key(), first.message_time())
    }

    /// The state the feed serves for it, given its entries before the page.
    pub fn served(&self, earlier: &[ChatEvent]) -> Option<ChatEvent> {
        fold(earlier.iter().chain(self.entries.iter().copied())).into_served()
    }
}

/// The messages changed (by trusted entries) among `examined`, the entries of a page in
/// the record's order, in the order of their last change there.
pub fn changed(examined: &[ChatEvent]) -> Vec<Changed<'_>> {
    let mut changed: Vec<Changed<'_>> = by_message(examined.iter().filter(|e| e.trusted))
        .into_iter()
        .map(|entries| {
            let position = entries.last().map(|e| e.event_key()).unwrap_or_default();
            Changed { entries, position }
        })
        .collect();
    changed.sort_by(|a, b| a.position.cmp(&b.position));
    changed
}

/// Messages newest first by their time, then id (as history answers them).
pub fn sort_newest_first(events: &mut [ChatEvent]) {
    events.sort_by(|a, b| (&b.occurred_at, &b.id).cmp(&(&a.occurred_at, &a.id)));
}
