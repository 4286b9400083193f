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
//! Capabilities (every resource gets `history`, `presence`, `publish`, `subscribe`;
//! conversations also the rights to change messages, see [`capability`]):
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

use std::fmt;

use crate::identity::ids::is_identifier;
use crate::identity::{Caller, Role};
use crate::platform::error::ApiError;

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
    /// The family of a valid channel name (as [`ChannelName::parse`] accepts it), without
    /// building the name: the judgement of every mirrored event asks this.
    pub fn of_channel(name: &str) -> Option<Family> {
        let (prefix, ids) = name.split_once(':')?;
        let mut count = 0;
        for id in ids.split(':') {
            if !is_identifier(id) {
                return None;
            }
            count += 1;
        }
        match (prefix, count) {
            ("conversation", 1) => Some(Family::Conversation),
            ("sms", 2) => Some(Family::Sms),
            ("contacts", 1) => Some(Family::Contacts),
            ("notifications", 1) => Some(Family::Notifications),
            _ => None,
        }
    }

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
        // The shape rules (family prefix, number of ids, each an identifier) are
        // `Family::of_channel`'s; here only the ids are taken out.
        let family = Family::of_channel(name).ok_or(InvalidChannel)?;
        let mut ids = name.split(':').skip(1).map(str::to_owned);
        let mut id = || ids.next().ok_or(InvalidChannel);
        Ok(match family {
            Family::Conversation => ChannelName::Conversation {
                conversation_id: id()?,
            },
            Family::Sms => ChannelName::Sms {
                user_id: id()?,
                contact_id: id()?,
            },
            Family::Contacts => ChannelName::Contacts { user_id: id()? },
            Family::Notifications => ChannelName::Notifications { user_id: id()? },
        })
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
    may_send(caller.acting_role(), channel.family(), event_name)
}

/// Whether the table lets `role` send `event_name` on `channel`'s family: the event is
/// one the family accepts, and staff-only events come from staff. Which channel of the
/// family a caller may use is ownership ([`may_use`]), which Ably enforces for token
/// holders through the capability.
pub fn may_send(role: Role, family: Family, event_name: &str) -> Result<(), Denial> {
    let publisher = family
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
    Family::of_channel(channel)
        .is_some_and(|family| may_send(Role::of_publisher(client_id), family, event_type).is_ok())
}

/// Whether a change to a mirrored message (an update, delete or append) is trusted. It is
/// judged on its editor, `editor` (the version's clientId; `None`: the API key), never on
/// the message's publisher: the editor must be `publisher` itself or an admin or service,
/// and its role must be allowed to send `event_type` on the channel. A change that names
/// no event (`event_type: None`) keeps the message's: the publisher may always re-send
/// what it sent, staff may send every event, so only the channel is checked then.
pub fn trusts_change(
    channel: &str,
    event_type: Option<&str>,
    publisher: Option<&str>,
    editor: Option<&str>,
) -> bool {
    let role = Role::of_publisher(editor);
    let owner = editor == publisher || matches!(role, Role::Admin | Role::Service);
    let Some(family) = Family::of_channel(channel) else {
        return false;
    };
    owner && event_type.is_none_or(|name| may_send(role, family, name).is_ok())
}

pub mod capability;

#[cfg(test)]
mod tests {
    use super::*;

    use crate::identity::caller::samples::{session, user};

    fn ch(name: &str) -> ChannelName {
        ChannelName::parse(name).unwrap()
    }

    #[test]
    fn a_change_is_trusted_on_its_editor() {
        let c = "conversation:c1";
        let customer = Some("customer:u1");
        let broker = Some("broker:b1");
        // The publisher itself, within what its role may send.
        assert!(trusts_change(c, Some("message:user"), customer, customer));
        assert!(trusts_change(c, None, customer, customer));
        assert!(!trusts_change(c, Some("message:ai"), customer, customer));
        // Another customer or broker: never, whatever the event.
        assert!(!trusts_change(
            c,
            Some("message:user"),
            customer,
            Some("customer:u2")
        ));
        assert!(!trusts_change(
            c,
            Some("message:ai"),
            broker,
            Some("broker:b2")
        ));
        assert!(!trusts_change(c, None, broker, customer));
        // Admin, service and the API key may change anyone's message.
        for editor in [Some("admin:a"), Some("service:s"), None] {
            assert!(trusts_change(c, Some("message:user"), customer, editor));
            assert!(trusts_change(c, None, broker, editor));
        }
        assert!(!trusts_change("elsewhere", None, None, None));
    }

    #[test]
    fn the_family_of_a_name_is_the_family_of_its_parse() {
        for name in [
            "conversation:c1",
            "sms:u1:k1",
            "contacts:u1",
            "notifications:u1",
            "conversation:",
            "conversation:*",
            "conversation:a:b",
            "sms:u1",
            "other:u1",
            "conversation",
            "",
            "contacts:u1:",
        ] {
            assert_eq!(
                Family::of_channel(name),
                ChannelName::parse(name).ok().map(|c| c.family()),
                "{name}"
            );
        }
    }

    #[test]
    fn channel_names_parse_and_print_back() {
        for name in [
            "conversation:conv-1",
            "sms:u_1:contact-9",
            "contacts:u1",
            "notifications:u1",
        ] {
            assert_eq!(ch(name).to_string(), name);
        }
        for bad in [
            "",
            "conversation",
            "conversation:",
            "conversation:*",
            "conversation:a:b",
            "conversation:[x]",
            "sms:u1",
            "sms:u1:*",
            "sms:u1:c1:x",
            "contacts:u1:x",
            "other:u1",
            "Conversation:c1",
            "[*]*",
            &format!("conversation:{}", "x".repeat(129)),
        ] {
            assert_eq!(ChannelName::parse(bad), Err(InvalidChannel), "{bad}");
        }
    }

    #[test]
    fn ownership_follows_the_table() {
        let customer = user("u1", Role::Customer, &["c1"]);
        let broker = user("b1", Role::Broker, &[]);
        let admin = user("a1", Role::Admin, &[]);
        let service = user("s1", Role::Service, &[]);
        let cases = [
            ("conversation:c1", [true, true, true, true, true]),
            ("conversation:c2", [false, true, true, true, false]),
            ("sms:u1:x", [true, false, true, true, false]),
            ("sms:u2:x", [false, false, true, true, false]),
            ("sms:b1:x", [false, true, true, true, false]),
            ("contacts:u1", [true, false, true, true, false]),
            ("contacts:u2", [false, false, true, true, false]),
            ("notifications:u1", [true, false, true, true, false]),
            ("notifications:b1", [false, true, true, true, false]),
        ];
        let sess = session("c1");
        for (name, expected) in cases {
            let got = [&customer, &broker, &admin, &service, &sess].map(|c| may_use(c, &ch(name)));
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn staff_only_events_and_unknown_events() {
        let customer = user("u1", Role::Customer, &["c1"]);
        let broker = user("b1", Role::Broker, &[]);
        let conv = ch("conversation:c1");
        assert_eq!(may_publish(&customer, &conv, "message:user"), Ok(()));
        assert_eq!(may_publish(&session("c1"), &conv, "typing:start"), Ok(()));
        for staff_only in ["message:ai", "sla:warning", "sla:violation", "agent_joined"] {
            assert_eq!(
                may_publish(&customer, &conv, staff_only),
                Err(Denial::EventNotAllowed)
            );
            assert_eq!(
                may_publish(&session("c1"), &conv, staff_only),
                Err(Denial::EventNotAllowed)
            );
            assert_eq!(may_publish(&broker, &conv, staff_only), Ok(()));
        }
        assert_eq!(
            may_publish(&customer, &conv, "update"),
            Err(Denial::UnknownEvent)
        );
        assert_eq!(
            may_publish(&customer, &ch("conversation:c2"), "message:user"),
            Err(Denial::ChannelNotOwned)
        );
        assert_eq!(
            may_publish(
                &customer,
                &ch("notifications:u1"),
                "phone_number_assignment"
            ),
            Ok(())
        );
        assert_eq!(
            may_publish(&customer, &ch("sms:u1:k"), "sms_received"),
            Ok(())
        );
        assert_eq!(
            may_publish(&broker, &ch("contacts:u1"), "update"),
            Err(Denial::ChannelNotOwned)
        );
        assert_eq!(
            ApiError::from(Denial::EventNotAllowed).code(),
            "event_forbidden"
        );
    }

    #[test]
    fn mirrored_events_are_trusted_when_their_publishers_role_may_send_them() {
        // Staff-only events: from staff clientIds and the API key, never from customers.
        for staff in [
            None,
            Some("service:s1"),
            Some("broker:b1"),
            Some("admin:a1"),
        ] {
            assert!(trusts("conversation:c1", "message:ai", staff), "{staff:?}");
            assert!(
                trusts("conversation:c1", "sla:violation", staff),
                "{staff:?}"
            );
        }
        for customer in [
            Some("customer:u1"),
            Some("customer-c1"),
            Some("b1"),
            Some(""),
        ] {
            assert!(
                !trusts("conversation:c1", "message:ai", customer),
                "{customer:?}"
            );
            assert!(
                !trusts("conversation:c1", "agent_joined", customer),
                "{customer:?}"
            );
            assert!(
                trusts("conversation:c1", "message:user", customer),
                "{customer:?}"
            );
            assert!(
                trusts("conversation:c1", "typing:start", customer),
                "{customer:?}"
            );
        }
        // Presence always; unknown events and channels outside the table never.
        assert!(trusts(
            "conversation:c1",
            "presence:enter",
            Some("customer-c1")
        ));
        assert!(trusts("chat-channel-4", "presence:update", Some("bob")));
        assert!(!trusts("conversation:c1", "update", None));
        assert!(!trusts("chat-channel-4", "a message name", None));
        assert!(!trusts("conversation:*", "message:user", None));
        assert!(trusts("sms:u1:k1", "sms_received", Some("customer:u1")));
        assert!(!trusts("sms:u1:k1", "message:user", None));
    }
}
