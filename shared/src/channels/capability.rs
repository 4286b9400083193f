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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::ChannelName;
    use crate::identity::Role;

    #[test]
    fn the_operations_json_lists_every_operation_in_order() {
        let expected = serde_json::to_string(&OPERATIONS).unwrap();
        assert_eq!(format!("[{OPERATIONS_JSON}]"), expected);
    }

    use crate::identity::caller::samples::{session, user};

    #[test]
    fn capabilities_are_canonical_and_exactly_the_callers_channels() {
        let ops = r#"["history","presence","publish","subscribe"]"#;
        let customer = user("u1", Role::Customer, &["c2", "c1"]);
        assert_eq!(
            Capability::for_caller(&customer).to_json(),
            format!(
                r#"{{"contacts:u1":{ops},"conversation:c1":{ops},"conversation:c2":{ops},"notifications:u1":{ops},"sms:u1:*":{ops}}}"#
            )
        );
        let broker = user("b1", Role::Broker, &["ignored"]);
        assert_eq!(
            Capability::for_caller(&broker)
                .resources()
                .collect::<Vec<_>>(),
            [
                "contacts:b1",
                "conversation:*",
                "notifications:b1",
                "sms:b1:*"
            ]
        );
        for role in [Role::Admin, Role::Service] {
            assert_eq!(
                Capability::for_caller(&user("x", role, &[]))
                    .resources()
                    .collect::<Vec<_>>(),
                ["contacts:*", "conversation:*", "notifications:*", "sms:*"]
            );
        }
        assert_eq!(
            Capability::for_caller(&session("c7")).to_json(),
            format!(r#"{{"conversation:c7":{ops}}}"#)
        );
        let json: serde_json::Value =
            serde_json::from_str(&Capability::for_caller(&customer).to_json()).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 5);
    }

    #[test]
    fn a_single_conversation_capability_requires_ownership() {
        let customer = user("u1", Role::Customer, &["c1"]);
        let c1 = ChannelName::conversation("c1").unwrap();
        let c2 = ChannelName::conversation("c2").unwrap();
        assert_eq!(
            Capability::for_channel(&customer, &c1)
                .unwrap()
                .resources()
                .collect::<Vec<_>>(),
            ["conversation:c1"]
        );
        let err = Capability::for_channel(&customer, &c2).unwrap_err();
        assert_eq!(
            (err.status().as_u16(), err.code()),
            (403, "conversation_forbidden")
        );
        assert!(ChannelName::conversation("c*").is_err());
        assert!(Capability::for_channel(&user("b", Role::Broker, &[]), &c2).is_ok());
    }
}
