//! Messages that change: Ably's message actions, the version each change makes, and the
//! collapsing of a delivery's appends into one entry per message.
//!
//! On channels with Ably's "Message annotations, updates, deletes, and appends" rule a
//! message keeps one `serial` and gains versions (ably/docs `messages/updates-deletes`,
//! `messages/annotations`, `ai-transport/`; ably-js 2.x `Message`):
//! - `action` is a number on the wire (0 create, 1 update, 2 delete, 3 meta, 4 summary,
//!   5 append) or, from ably-js, its string name;
//! - `version` says who made this version (`clientId`) and when (`timestamp`); the newest
//!   version has the greatest `version.serial`, whatever order deliveries arrive in;
//! - an update or delete carries the whole message as it now stands, an append only its
//!   fragment (an AI answer streamed token by token), a summary the reaction counts.
//!
//! Each version is an entry of the record, placed at the time of the change, so that a
//! reader that follows the record in time order sees every change once. The appends of
//! one message in one delivery are collapsed into one entry ([`collapse`]): an answer
//! streamed as hundreds of appends costs one write per delivery, not one per token.

use std::collections::HashMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::events::event::ChatEvent;
pub use crate::events::version::{Action, Fragment, Fragments, Version};
use crate::events::Payload;

impl ChatEvent {
    /// The version this entry is (`version.serial`); a create's is its serial.
    pub fn version_serial(&self) -> &str {
        match (&self.version, &self.serial) {
            (Some(v), _) => &v.serial,
            (None, Some(serial)) => serial,
            (None, None) => "",
        }
    }

    /// Who made this entry: the version's clientId, else the publisher's.
    pub fn editor(&self) -> Option<&str> {
        match &self.version {
            Some(v) => v.client_id.as_deref(),
            None => self.client_id.as_deref(),
        }
    }

    /// The time of the message this entry belongs to.
    pub fn message_time(&self) -> &str {
        self.message_at.as_deref().unwrap_or(&self.occurred_at)
    }

    /// What identifies the message across its versions: its serial, else its id.
    pub fn message_key(&self) -> &str {
        self.serial.as_deref().unwrap_or(&self.id)
    }

    /// The message's own id: a create's Ably id, without the tag of the appends the
    /// entry holds.
    pub fn message_id(&self) -> &str {
        if self.fragments.is_empty() {
            return &self.id;
        }
        let tag = fragments_tag(&self.fragments);
        self.id
            .strip_suffix(tag.as_str())
            .and_then(|id| id.strip_suffix('+'))
            .unwrap_or(&self.id)
    }

    /// Whether this entry is a change of an earlier message (not its create).
    pub fn is_change(&self) -> bool {
        self.action.is_some_and(|a| a != Action::Create)
    }
}

/// The text an append adds: its string, or the JSON text of anything else.
pub fn fragment_text(payload: &Payload) -> String {
    match payload.to_value() {
        Value::String(text) => text,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The text appends extend in a payload: the payload itself when it is a string (or
/// nothing yet), else the `text` field of an object (this project's messages carry
/// `{"text": ...}`). `None` when neither.
fn extendable_text(payload: &Payload) -> Option<String> {
    match payload.to_value() {
        Value::String(text) => Some(text),
        Value::Null => Some(String::new()),
        Value::Object(mut fields) => match fields.remove("text") {
            Some(Value::String(text)) => Some(text),
            _ => None,
        },
        _ => None,
    }
}

/// `payload` with its extendable text replaced by `text` (see [`extendable_text`]); a
/// payload without one becomes `text`, or gets it as its `text` field if an object.
fn with_text(payload: &Payload, text: String) -> Payload {
    match payload.to_value() {
        Value::Object(mut fields) => {
            fields.insert("text".to_owned(), Value::String(text));
            Payload::from_value(&Value::Object(fields))
        }
        _ => Payload::from_value(&Value::String(text)),
    }
}

/// `base` with `added` appended to its text (see [`extendable_text`]).
pub fn extend(base: &Payload, added: &str) -> Payload {
    let mut text = extendable_text(base).unwrap_or_default();
    text.push_str(added);
    with_text(base, text)
}

/// Collapses the appends of one delivery: per message, editor and trust, they join the
/// newest whole version of that message in the delivery by the same editor when it is
/// older than them and holds text, else they become one append entry. An entry with
/// appends is placed at the time of its last one and its payload is its text with them
/// added; [`Fragment`]s say where each begins, so that a reader can drop an append it
/// already has from another delivery. Everything else is kept as it is, in order.
pub fn collapse(events: &mut Vec<ChatEvent>) {
    if !events.iter().any(|e| e.action == Some(Action::Append)) {
        return;
    }
    type Key = (String, String, Option<String>, bool);
    let key = |e: &ChatEvent| -> Key {
        (
            e.history_id.clone(),
            e.message_key().to_owned(),
            e.editor().map(str::to_owned),
            e.trusted,
        )
    };
    let mut appends: HashMap<Key, Vec<ChatEvent>> = HashMap::new();
    let mut order: Vec<Key> = Vec::new();
    let mut kept: Vec<ChatEvent> = Vec::with_capacity(events.len());
    for event in events.drain(..) {
        if event.action == Some(Action::Append) && event.serial.is_some() {
            let k = key(&event);
            if !appends.contains_key(&k) {
                order.push(k.clone());
            }
            appends.entry(k).or_default().push(event);
        } else {
            kept.push(event);
        }
    }
    // The whole versions appends may join, by message, editor and trust.
    let mut wholes: HashMap<Key, Vec<usize>> = HashMap::new();
    for (i, e) in kept.iter().enumerate() {
        if matches!(e.action, Some(Action::Create | Action::Update)) {
            let k = key(e);
            if appends.contains_key(&k) {
                wholes.entry(k).or_default().push(i);
            }
        }
    }
    for k in order {
        let Some(mut group) = appends.remove(&k) else {
            continue;
        };
        group.sort_by(|a, b| a.version_serial().cmp(b.version_serial()));
        group.dedup_by(|a, b| a.version_serial() == b.version_serial());
        let base = wholes
            .get(&k)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| {
                let e = &kept[i];
                e.fragments.is_empty()
                    && e.version_serial() < group[0].version_serial()
                    && extendable_text(&e.payload).is_some()
            })
            .max_by(|&a, &b| kept[a].version_serial().cmp(kept[b].version_serial()));
        match base {
            Some(base) => {
                let base = &mut kept[base];
                if base.message_at.is_none() {
                    base.message_at = Some(base.occurred_at.clone());
                }
                attach(base, &group);
            }
            None => {
                let mut entry = group[0].clone();
                entry.payload = Payload::null();
                entry.headers = group.iter().rev().find_map(|e| e.headers.clone());
                let first = group[0].version_serial().to_owned();
                entry.id = format!("{}@{first}", entry.message_key());
                attach(&mut entry, &group);
                kept.push(entry);
            }
        }
    }
    *events = kept;
}

/// Adds `group`'s appends (oldest first) to `entry`'s text.
fn attach(entry: &mut ChatEvent, group: &[ChatEvent]) {
    let mut text = extendable_text(&entry.payload).unwrap_or_default();
    for append in group {
        let added = fragment_text(&append.payload);
        entry.fragments.push(Fragment {
            serial: append.version_serial().to_owned(),
            chars: added.chars().count(),
        });
        text.push_str(&added);
    }
    if let Some(last) = group.last() {
        entry.occurred_at = last.occurred_at.clone();
        if let Some(headers) = &last.headers {
            entry.headers = Some(headers.clone());
        }
        if entry.action == Some(Action::Append) {
            entry.version = last.version.clone();
        }
    }
    entry.payload = with_text(&entry.payload, text);
    // An entry per set of appends: another delivery that holds other appends of the
    // message is another entry, never an overwrite of this one.
    entry.id = format!("{}+{}", entry.id, fragments_tag(&entry.fragments));
}

/// What tells a set of appends apart: a hash of their version serials.
fn fragments_tag(fragments: &[Fragment]) -> String {
    let mut hasher = Sha256::new();
    for fragment in fragments {
        hasher.update(fragment.serial.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// An entry's own payload and its appends' texts, oldest first: its text split where its
/// [`Fragment`]s say. `None` when its text is not the one they were added to.
pub fn split_fragments(entry: &ChatEvent) -> Option<(Payload, Vec<(&Fragment, String)>)> {
    if entry.fragments.is_empty() {
        return Some((entry.payload.clone(), Vec::new()));
    }
    let chars: Vec<char> = extendable_text(&entry.payload)?.chars().collect();
    let appended: usize = entry.fragments.iter().map(|f| f.chars).sum();
    let own = chars.len().checked_sub(appended)?;
    let mut at = own;
    let mut parts = Vec::with_capacity(entry.fragments.len());
    for fragment in entry.fragments.iter() {
        parts.push((fragment, chars[at..at + fragment.chars].iter().collect()));
        at += fragment.chars;
    }
    let base = if own == 0 && entry.action == Some(Action::Append) {
        Payload::null()
    } else {
        with_text(&entry.payload, chars[..own].iter().collect())
    };
    Some((base, parts))
}
