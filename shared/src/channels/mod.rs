//! Channel rules: which channels exist, who may use them, which events each accepts and
//! who may publish them, and the Ably capability a caller gets. One table ([`FAMILIES`])
//! drives all of it, so `ably-token` and `ably-publish` cannot disagree.
//!
//! | channel | owner | events |
//! |---|---|---|
//! | `conversation:{conversationId}` | its session; a JWT listing it in `conversations`; broker/admin/service: any | `message:user`, `message:ai`*, `typing:start`, `typing:stop`, `read`, `sla:warning`*, `sla:violation`*, `ui:suggestionSelected`, `agent_joined`* |
//! | `sms:{userId}:{contactId}` | that user; admin/service: any | `message`, `sms_received`, `message_status` |
//! | `contacts:{userId}` | that user; admin/service: any | `update` |
//! | `notifications:{userId}` | that user; admin/service: any | `phone_number_assignment`, `update` |
//!
//! `*`: broker/admin/service only.
//!
//! Capabilities (every resource gets `history`, `presence`, `publish`, `subscribe`):
//! - customer JWT: `conversation:{id}` for each listed conversation, `sms:{userId}:*`,
//!   `contacts:{userId}`, `notifications:{userId}`;
//! - broker: `conversation:*` plus its own `sms`/`contacts`/`notifications` channels;
//! - admin/service: `conversation:*`, `sms:*`, `contacts:*`, `notifications:*`;
//! - session: only `conversation:{its id}`.
//!
//! An Ably capability cannot restrict event names, so a customer holding `publish` on its
//! conversation (which typing and read receipts need) can publish a staff-only event
//! straight to Ably. The same table therefore judges every mirrored event ([`trusts`]):
//! trusted only when the role in its Ably-verified clientId may send it there.

use std::collections::BTreeSet;
use std::fmt;

use crate::identity::ids::is_identifier;
use crate::identity::{Caller, Role};
use crate::platform::error::ApiError;

/// The operations every granted resource carries, sorted (canonical order).
pub const OPERATIONS: [&str; 4] = ["history", "presence", "publish", "subscribe"];

/// [`OPERATIONS`] as the JSON array body every capability entry carries.
const OPERATIONS_JSON: &str = r#""history","presence","publish","subscribe""#;

/// The four kinds of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Conversation,
    Sms,
    Contacts,
    Notifications,
}

/// Who may publish an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publisher {
    /// Anyone who may use the channel.
    Owner,
    /// Only broker, admin or service.
    Staff,
}

/// One row of the channel table.
#[derive(Debug)]
pub struct FamilyRule {
    pub family: Family,
    /// The channel name's first segment.
    pub prefix: &'static str,
    /// Roles that may use every channel of the family.
    pub any_channel: &'static [Role],
    /// The events `ably-publish` accepts on the family's channels.
    pub events: &'static [(&'static str, Publisher)],
}

/// The channel table.
pub static FAMILIES: [FamilyRule; 4] = [
    FamilyRule {
        family: Family::Conversation,
        prefix: "conversation",
        any_channel: &[Role::Broker, Role::Admin, Role::Service],
        events: &[
            ("message:user", Publisher::Owner),
            ("message:ai", Publisher::Staff),
            ("typing:start", Publisher::Owner),
            ("typing:stop", Publisher::Owner),
            ("read", Publisher::Owner),
            ("sla:warning", Publisher::Staff),
            ("sla:violation", Publisher::Staff),
            ("ui:suggestionSelected", Publisher::Owner),
            ("agent_joined", Publisher::Staff),
        ],
    },
    FamilyRule {
        family: Family::Sms,
        prefix: "sms",
        any_channel: &[Role::Admin, Role::Service],
        events: &[
            ("message", Publisher::Owner),
            ("sms_received", Publisher::Owner),
            ("message_status", Publisher::Owner),
        ],
    },
    FamilyRule {
        family: Family::Contacts,
        prefix: "contacts",
        any_channel: &[Role::Admin, Role::Service],
        events: &[("update", Publisher::Owner)],
    },
    FamilyRule {
        family: Family::Notifications,
        prefix: "notifications",
        any_channel: &[Role::Admin, Role::Service],
        events: &[
            ("phone_number_assignment", Publisher::Owner),
            ("update", Publisher::Owner),
        ],
    },
];

impl Family {
    pub fn rule(self) -> &'static FamilyRule {
        match self {
            Family::Conversation => &FAMILIES[0],
            Family::Sms => &FAMILIES[1],
            Family::Contacts => &FAMILIES[2],
            Family::Notifications => &FAMILIES[3],
        }
    }
}

/// A valid channel name; every id in it is a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChannelName {
    Conversation { conversation_id: String },
    Sms { user_id: String, contact_id: String },
    Contacts { user_id: String },
    Notifications { user_id: String },
}

/// Why a channel name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("channel name must be conversation:{{id}}, sms:{{userId}}:{{contactId}}, contacts:{{userId}} or notifications:{{userId}}, with ids matching ^[A-Za-z0-9_-]{{1,128}}$")]
pub struct InvalidChannel;

impl From<InvalidChannel> for ApiError {
    fn from(err: InvalidChannel) -> Self {
        ApiError::bad_request("invalid_channel", err.to_string())
    }
}

impl ChannelName {
    /// Parses `conversation:{id}`, `sms:{userId}:{contactId}`, `contacts:{userId}` or
    /// `notifications:{userId}`; nothing else (no wildcards, no extra segments).
    pub fn parse(name: &str) -> Result<Self, InvalidChannel> {
        let mut parts = name.split(':');
        let prefix = parts.next().ok_or(InvalidChannel)?;
        let ids: Vec<&str> = parts.collect();
        if !ids.iter().all(|id| is_identifier(id)) {
            return Err(InvalidChannel);
        }
        let owned = |i: usize| ids[i].to_owned();
        match (prefix, ids.len()) {
            ("conversation", 1) => Ok(ChannelName::Conversation {
                conversation_id: owned(0),
            }),
            ("sms", 2) => Ok(ChannelName::Sms {
                user_id: owned(0),
                contact_id: owned(1),
            }),
            ("contacts", 1) => Ok(ChannelName::Contacts { user_id: owned(0) }),
            ("notifications", 1) => Ok(ChannelName::Notifications { user_id: owned(0) }),
            _ => Err(InvalidChannel),
        }
    }

    /// `conversation:{id}`, from an id that must be an identifier.
    pub fn conversation(conversation_id: &str) -> Result<Self, InvalidChannel> {
        if is_identifier(conversation_id) {
            Ok(ChannelName::Conversation {
                conversation_id: conversation_id.to_owned(),
            })
        } else {
            Err(InvalidChannel)
        }
    }

    pub fn family(&self) -> Family {
        match self {
            ChannelName::Conversation { .. } => Family::Conversation,
            ChannelName::Sms { .. } => Family::Sms,
            ChannelName::Contacts { .. } => Family::Contacts,
            ChannelName::Notifications { .. } => Family::Notifications,
        }
    }

    /// The user a `sms`/`contacts`/`notifications` channel belongs to.
    pub fn owner_user_id(&self) -> Option<&str> {
        match self {
            ChannelName::Conversation { .. } => None,
            ChannelName::Sms { user_id, .. }
            | ChannelName::Contacts { user_id }
            | ChannelName::Notifications { user_id } => Some(user_id),
        }
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelName::Conversation { conversation_id } => {
                write!(f, "conversation:{conversation_id}")
            }
            ChannelName::Sms {
                user_id,
                contact_id,
            } => write!(f, "sms:{user_id}:{contact_id}"),
            ChannelName::Contacts { user_id } => write!(f, "contacts:{user_id}"),
            ChannelName::Notifications { user_id } => write!(f, "notifications:{user_id}"),
        }
    }
}

impl std::str::FromStr for ChannelName {
    type Err = InvalidChannel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelName::parse(s)
    }
}

/// Whether `caller` owns `channel` (may subscribe to it and publish on it).
pub fn may_use(caller: &Caller, channel: &ChannelName) -> bool {
    let rule = channel.family().rule();
    match caller {
        Caller::User {
            user_id,
            role,
            conversations,
        } => {
            rule.any_channel.contains(role)
                || match channel {
                    ChannelName::Conversation { conversation_id } => {
                        conversations.iter().any(|c| c == conversation_id)
                    }
                    other => other.owner_user_id() == Some(user_id.as_str()),
                }
        }
        Caller::Session {
            conversation_id: own,
            ..
        } => {
            matches!(channel, ChannelName::Conversation { conversation_id } if conversation_id == own)
        }
    }
}

/// [`may_use`] as an answer: Ok, or 403 `conversation_forbidden` for a conversation
/// (`channel_forbidden` for any other channel).
pub fn ensure_may_use(caller: &Caller, channel: &ChannelName) -> Result<(), ApiError> {
    if may_use(caller, channel) {
        return Ok(());
    }
    Err(match channel.family() {
        Family::Conversation => ApiError::forbidden(
            "conversation_forbidden",
            "This conversation is not available to the caller",
        ),
        _ => ApiError::forbidden(
            "channel_forbidden",
            "This channel is not available to the caller",
        ),
    })
}

/// Why a publish is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("channel not allowed for this caller")]
    ChannelNotOwned,
    #[error("event not accepted on this channel")]
    UnknownEvent,
    #[error("event not allowed for this caller's role")]
    EventNotAllowed,
}

impl From<Denial> for ApiError {
    fn from(denial: Denial) -> Self {
        let message = denial.to_string();
        match denial {
            Denial::ChannelNotOwned => ApiError::forbidden("channel_forbidden", message),
            Denial::UnknownEvent => ApiError::bad_request("invalid_event", message),
            Denial::EventNotAllowed => ApiError::forbidden("event_forbidden", message),
        }
    }
}

/// Whether `caller` may publish `event_name` on `channel`: it owns the channel, and its
/// role may send that event there.
pub fn may_publish(caller: &Caller, channel: &ChannelName, event_name: &str) -> Result<(), Denial> {
    if !may_use(caller, channel) {
        return Err(Denial::ChannelNotOwned);
    }
    may_send(caller.acting_role(), channel, event_name)
}

/// Whether the table lets `role` send `event_name` on `channel`'s family: the event is
/// one the family accepts, and staff-only events come from staff. Which channel of the
/// family a caller may use is ownership ([`may_use`]), which Ably enforces for token
/// holders through the capability.
pub fn may_send(role: Role, channel: &ChannelName, event_name: &str) -> Result<(), Denial> {
    let publisher = channel
        .family()
        .rule()
        .events
        .iter()
        .find(|(name, _)| *name == event_name)
        .map(|(_, publisher)| *publisher)
        .ok_or(Denial::UnknownEvent)?;
    match publisher {
        Publisher::Owner => Ok(()),
        Publisher::Staff if role.is_staff() => Ok(()),
        Publisher::Staff => Err(Denial::EventNotAllowed),
    }
}

/// Whether a mirrored event is trusted: its publisher's role, read from the clientId Ably
/// verified ([`Role::of_publisher`]), may send that event on that channel, by the same
/// table `ably-publish` enforces. Presence is always trusted (Ably itself reports who
/// entered or left); an event on a channel outside the table never is.
pub fn trusts(channel: &str, event_type: &str, client_id: Option<&str>) -> bool {
    if event_type.starts_with("presence:") {
        return true;
    }
    ChannelName::parse(channel)
        .is_ok_and(|channel| may_send(Role::of_publisher(client_id), &channel, event_type).is_ok())
}

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

#[cfg(test)]
mod tests;
