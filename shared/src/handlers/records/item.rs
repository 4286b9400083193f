//! One item of the record as `chat-records` serves it: an archived entry with the role
//! its clientId carries, as JSON and as a CSV row.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::events::change::{Fragments, Version};
use crate::events::ChatEvent;
use crate::identity::Role;

/// An entry of the record: `role` is read from the publisher's clientId (a change's
/// editor is its `version.client_id`).
#[derive(Debug, Serialize)]
pub struct RecordItem<'a> {
    pub id: &'a str,
    pub conversation_id: &'a str,
    pub event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
    pub client_id: Option<&'a str>,
    pub role: &'static str,
    pub trusted: bool,
    pub payload: &'a RawValue,
    pub occurred_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'a Version>,
    /// The appends an archived entry holds (one delivery's, of one message): each one's
    /// version serial and the characters it added at the end of `payload`'s text.
    #[serde(skip_serializing_if = "Fragments::is_empty")]
    pub fragments: &'a Fragments,
}

impl<'a> RecordItem<'a> {
    pub fn of(event: &'a ChatEvent) -> Self {
        RecordItem {
            id: event.message_id(),
            conversation_id: &event.history_id,
            event_type: &event.event_type,
            serial: event.serial.as_deref(),
            action: event.action.map(|a| a.as_str()),
            client_id: event.client_id.as_deref(),
            role: Role::of_publisher(event.client_id.as_deref()).as_str(),
            trusted: event.trusted,
            payload: event.payload.as_raw(),
            occurred_at: &event.occurred_at,
            version: event.version.as_ref(),
            fragments: &event.fragments,
        }
    }

    /// The CSV columns, in [`CSV_HEADER`]'s order; absent values are empty. `fragments`
    /// is the JSON the item's `fragments` are written as (empty when it has none).
    pub fn csv_row<'s>(&'s self, fragments: &'s str) -> [&'s str; 14] {
        let version = self.version;
        [
            self.occurred_at,
            self.conversation_id,
            self.id,
            self.event_type,
            self.serial.unwrap_or_default(),
            self.action.unwrap_or_default(),
            self.client_id.unwrap_or_default(),
            self.role,
            if self.trusted { "true" } else { "false" },
            version.map_or("", |v| v.serial.as_str()),
            version
                .and_then(|v| v.client_id.as_deref())
                .unwrap_or_default(),
            version.map_or("", |v| v.updated_at.as_str()),
            self.payload.get(),
            fragments,
        ]
    }

    /// The JSON of its `fragments` for the CSV column; empty when it has none.
    pub fn fragments_json(&self) -> String {
        if self.fragments.is_empty() {
            return String::new();
        }
        serde_json::to_string(self.fragments).unwrap_or_default()
    }
}

/// The transcript's CSV header row.
pub const CSV_HEADER: [&str; 14] = [
    "occurred_at",
    "conversation_id",
    "id",
    "event_type",
    "serial",
    "action",
    "client_id",
    "role",
    "trusted",
    "version_serial",
    "version_client_id",
    "updated_at",
    "payload",
    "fragments",
];
