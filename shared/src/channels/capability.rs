//! The Ably capability a caller gets: every channel it owns, by the table, as the
//! canonical JSON Ably signs.

use std::collections::BTreeSet;

use crate::channels::{ensure_may_use, ChannelName, Family, FAMILIES};
use crate::identity::Caller;
use crate::platform::error::ApiError;

/// The operations every granted resource carries, sorted (canonical order).
pub const OPERATIONS: [&str; 4] = ["history", "presence", "publish", "subscribe"];

/// [`OPERATIONS`] as the JSON array body every capability entry carries.
pub(crate) const OPERATIONS_JSON: &str = r#""history","presence","publish","subscribe""#;

/// An Ably capability: resource names, each with all of [`OPERATIONS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    resources: BTreeSet<String>,
}

impl Capability {
    /// Every channel the caller owns, wildcards where its role owns a whole family.
    pub fn for_caller(caller: &Caller) -> Self {
        let mut resources = BTreeSet::new();
        for rule in &FAMILIES {
            match caller {
                Caller::User { role, .. } if rule.any_channel.contains(role) => {
                    resources.insert(format!("{}:*", rule.prefix));
                }
                Caller::User {
                    user_id,
                    conversations,
                    ..
                } => match rule.family {
                    Family::Conversation => {
                        resources.extend(conversations.iter().map(|c| format!("conversation:{c}")))
                    }
                    // Every contact of the user: `sms:{userId}:*`.
                    Family::Sms => {
                        resources.insert(format!("sms:{user_id}:*"));
                    }
                    Family::Contacts | Family::Notifications => {
                        resources.insert(format!("{}:{user_id}", rule.prefix));
                    }
                },
                Caller::Session {
                    conversation_id, ..
                } => {
                    if rule.family == Family::Conversation {
                        resources.insert(format!("conversation:{conversation_id}"));
                    }
                }
            }
        }
        Capability { resources }
    }

    /// Only `channel`, or 403 if the caller does not own it (see [`ensure_may_use`]).
    pub fn for_channel(caller: &Caller, channel: &ChannelName) -> Result<Self, ApiError> {
        ensure_may_use(caller, channel)?;
        Ok(Capability {
            resources: BTreeSet::from([channel.to_string()]),
        })
    }

    pub fn resources(&self) -> impl Iterator<Item = &str> {
        self.resources.iter().map(String::as_str)
    }

    /// Canonical JSON: resources sorted, operations sorted, no whitespace. Resource names
    /// are built from identifiers, so nothing in them needs escaping.
    pub fn to_json(&self) -> String {
        let mut out =
            String::with_capacity(self.resources.len() * (OPERATIONS_JSON.len() + 40) + 2);
        out.push('{');
        for (i, resource) in self.resources.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(resource);
            out.push_str("\":[");
            out.push_str(OPERATIONS_JSON);
            out.push(']');
        }
        out.push('}');
        out
    }
}
