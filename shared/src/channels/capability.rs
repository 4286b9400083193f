//! The Ably capability a caller gets: every channel it owns, by the table, as the
//! canonical JSON Ably signs.
//!
//! Every resource carries [`OPERATIONS`]. Conversation channels are mutable (Ably's
//! "Message annotations, updates, deletes, and appends" rule), so they also carry the
//! rights to change messages: a customer, a session or a broker its own messages
//! ([`Grant::OwnMessages`]), admin and service anyone's ([`Grant::AnyMessage`]), both
//! with `annotation-publish`. The other families keep [`OPERATIONS`] only.

use std::collections::BTreeMap;

use crate::channels::{ensure_may_use, ChannelName, Family, FAMILIES};
use crate::identity::{Caller, Role};
use crate::platform::error::ApiError;

/// The operations every granted resource carries, sorted (canonical order).
pub const OPERATIONS: [&str; 4] = ["history", "presence", "publish", "subscribe"];

/// A conversation channel for its customer, session or broker: [`OPERATIONS`] and the
/// rights to update and delete its own messages and to annotate any, sorted.
pub const OWN_MESSAGES_OPERATIONS: [&str; 7] = [
    "annotation-publish",
    "history",
    "message-delete-own",
    "message-update-own",
    "presence",
    "publish",
    "subscribe",
];

/// A conversation channel for admin and service: [`OPERATIONS`] and the rights to update
/// and delete anyone's messages and to annotate any, sorted.
pub const ANY_MESSAGE_OPERATIONS: [&str; 7] = [
    "annotation-publish",
    "history",
    "message-delete-any",
    "message-update-any",
    "presence",
    "publish",
    "subscribe",
];

/// What one resource of a capability grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grant {
    /// [`OPERATIONS`]: sms, contacts and notifications channels.
    Channel,
    /// [`OWN_MESSAGES_OPERATIONS`]: conversations, for a customer, a session or a broker.
    OwnMessages,
    /// [`ANY_MESSAGE_OPERATIONS`]: conversations, for admin and service.
    AnyMessage,
}

impl Grant {
    /// What `caller` gets on the channels of `family`.
    pub fn for_family(caller: &Caller, family: Family) -> Grant {
        match (family, caller.role()) {
            (Family::Conversation, Some(Role::Admin | Role::Service)) => Grant::AnyMessage,
            (Family::Conversation, _) => Grant::OwnMessages,
            _ => Grant::Channel,
        }
    }

    /// The operations, sorted.
    pub fn operations(self) -> &'static [&'static str] {
        match self {
            Grant::Channel => &OPERATIONS,
            Grant::OwnMessages => &OWN_MESSAGES_OPERATIONS,
            Grant::AnyMessage => &ANY_MESSAGE_OPERATIONS,
        }
    }

    /// [`Grant::operations`] as the body of a JSON array (written out once, checked by a
    /// test against the lists).
    pub(crate) fn operations_json(self) -> &'static str {
        match self {
            Grant::Channel => r#""history","presence","publish","subscribe""#,
            Grant::OwnMessages => {
                r#""annotation-publish","history","message-delete-own","message-update-own","presence","publish","subscribe""#
            }
            Grant::AnyMessage => {
                r#""annotation-publish","history","message-delete-any","message-update-any","presence","publish","subscribe""#
            }
        }
    }
}

/// An Ably capability: resource names, each with the operations of its [`Grant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    resources: BTreeMap<String, Grant>,
}

impl Capability {
    /// Every channel the caller owns, wildcards where its role owns a whole family.
    pub fn for_caller(caller: &Caller) -> Self {
        let mut resources = BTreeMap::new();
        for rule in &FAMILIES {
            let grant = Grant::for_family(caller, rule.family);
            let mut insert = |name: String| {
                resources.insert(name, grant);
            };
            match caller {
                Caller::User { role, .. } if rule.any_channel.contains(role) => {
                    insert(format!("{}:*", rule.prefix));
                }
                Caller::User {
                    user_id,
                    conversations,
                    ..
                } => match rule.family {
                    Family::Conversation => conversations
                        .iter()
                        .for_each(|c| insert(format!("conversation:{c}"))),
                    // Every contact of the user: `sms:{userId}:*`.
                    Family::Sms => insert(format!("sms:{user_id}:*")),
                    Family::Contacts | Family::Notifications => {
                        insert(format!("{}:{user_id}", rule.prefix))
                    }
                },
                Caller::Session {
                    conversation_id, ..
                } => {
                    if rule.family == Family::Conversation {
                        insert(format!("conversation:{conversation_id}"));
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
            resources: BTreeMap::from([(
                channel.to_string(),
                Grant::for_family(caller, channel.family()),
            )]),
        })
    }

    pub fn resources(&self) -> impl Iterator<Item = &str> {
        self.resources.keys().map(String::as_str)
    }

    /// Each resource with what it grants, in canonical order.
    pub fn grants(&self) -> impl Iterator<Item = (&str, Grant)> {
        self.resources
            .iter()
            .map(|(name, grant)| (name.as_str(), *grant))
    }

    /// Canonical JSON: resources sorted, operations sorted, no whitespace. Resource names
    /// are built from identifiers, so nothing in them needs escaping.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(self.resources.len() * 160 + 2);
        out.push('{');
        for (i, (resource, grant)) in self.resources.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(resource);
            out.push_str("\":[");
            out.push_str(grant.operations_json());
            out.push(']');
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::ChannelName;
    use crate::identity::Role;

    use crate::identity::caller::samples::{session, user};

    const GRANTS: [Grant; 3] = [Grant::Channel, Grant::OwnMessages, Grant::AnyMessage];

    #[test]
    fn each_grant_lists_its_operations_sorted_and_its_json_matches() {
        for grant in GRANTS {
            let ops = grant.operations();
            assert!(ops.windows(2).all(|w| w[0] < w[1]), "{grant:?} sorted");
            assert!(OPERATIONS.iter().all(|op| ops.contains(op)), "{grant:?}");
            let expected = serde_json::to_string(ops).unwrap();
            assert_eq!(format!("[{}]", grant.operations_json()), expected);
        }
        let extra = |grant: Grant| -> Vec<&str> {
            grant
                .operations()
                .iter()
                .copied()
                .filter(|op| !OPERATIONS.contains(op))
                .collect()
        };
        assert!(extra(Grant::Channel).is_empty());
        assert_eq!(
            extra(Grant::OwnMessages),
            [
                "annotation-publish",
                "message-delete-own",
                "message-update-own"
            ]
        );
        assert_eq!(
            extra(Grant::AnyMessage),
            [
                "annotation-publish",
                "message-delete-any",
                "message-update-any"
            ]
        );
    }

    #[test]
    fn capabilities_are_canonical_and_exactly_the_callers_channels() {
        let ops = r#"["history","presence","publish","subscribe"]"#;
        let own = r#"["annotation-publish","history","message-delete-own","message-update-own","presence","publish","subscribe"]"#;
        let any = r#"["annotation-publish","history","message-delete-any","message-update-any","presence","publish","subscribe"]"#;
        let customer = user("u1", Role::Customer, &["c2", "c1"]);
        assert_eq!(
            Capability::for_caller(&customer).to_json(),
            format!(
                r#"{{"contacts:u1":{ops},"conversation:c1":{own},"conversation:c2":{own},"notifications:u1":{ops},"sms:u1:*":{ops}}}"#
            )
        );
        let broker = user("b1", Role::Broker, &["ignored"]);
        assert_eq!(
            Capability::for_caller(&broker).to_json(),
            format!(
                r#"{{"contacts:b1":{ops},"conversation:*":{own},"notifications:b1":{ops},"sms:b1:*":{ops}}}"#
            )
        );
        for role in [Role::Admin, Role::Service] {
            assert_eq!(
                Capability::for_caller(&user("x", role, &[])).to_json(),
                format!(
                    r#"{{"contacts:*":{ops},"conversation:*":{any},"notifications:*":{ops},"sms:*":{ops}}}"#
                )
            );
        }
        assert_eq!(
            Capability::for_caller(&session("c7")).to_json(),
            format!(r#"{{"conversation:c7":{own}}}"#)
        );
        let json: serde_json::Value =
            serde_json::from_str(&Capability::for_caller(&customer).to_json()).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 5);
        // The JSON says what `grants` says.
        for (resource, grant) in Capability::for_caller(&customer).grants() {
            assert_eq!(json[resource], serde_json::json!(grant.operations()));
        }
    }

    #[test]
    fn a_single_conversation_capability_requires_ownership() {
        let customer = user("u1", Role::Customer, &["c1"]);
        let c1 = ChannelName::conversation("c1").unwrap();
        let c2 = ChannelName::conversation("c2").unwrap();
        assert_eq!(
            Capability::for_channel(&customer, &c1)
                .unwrap()
                .grants()
                .collect::<Vec<_>>(),
            [("conversation:c1", Grant::OwnMessages)]
        );
        let err = Capability::for_channel(&customer, &c2).unwrap_err();
        assert_eq!(
            (err.status().as_u16(), err.code()),
            (403, "conversation_forbidden")
        );
        assert!(ChannelName::conversation("c*").is_err());
        assert_eq!(
            Capability::for_channel(&user("b", Role::Broker, &[]), &c2)
                .unwrap()
                .grants()
                .collect::<Vec<_>>(),
            [("conversation:c2", Grant::OwnMessages)]
        );
        assert_eq!(
            Capability::for_channel(&user("a", Role::Admin, &[]), &c2)
                .unwrap()
                .grants()
                .collect::<Vec<_>>(),
            [("conversation:c2", Grant::AnyMessage)]
        );
        let sms = ChannelName::parse("sms:u1:k1").unwrap();
        assert_eq!(
            Capability::for_channel(&user("a", Role::Admin, &[]), &sms)
                .unwrap()
                .grants()
                .collect::<Vec<_>>(),
            [("sms:u1:k1", Grant::Channel)]
        );
    }
}
