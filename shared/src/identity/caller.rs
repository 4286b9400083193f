//! Who is calling, once verified: a [`Caller`] with its [`Role`], and the names it goes
//! by (the Ably `clientId`, the rate-limit key). What a caller may use is the channel
//! table's answer (`crate::channels`).
//!
//! The Ably `clientId` carries the role, and is the trust anchor of every mirrored event:
//! bearer callers are `{role}:{userId}` (`customer:u1`, `broker:b1`, `admin:a1`,
//! `service:s1`), a chat session is `customer-{conversationId}`. Ably verifies the
//! clientId of every message a token holder publishes, and a message without one can only
//! have been published with the API key (a server or worker); so [`Role::of_publisher`]
//! reads the publisher's role back from what Ably verified.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Broker,
    Admin,
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Broker => "broker",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }

    /// Broker, admin and service act for the business rather than for one customer.
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Customer)
    }

    /// The role of whoever published a message, from its Ably-verified `clientId`:
    /// `broker:`, `admin:` and `service:` give that role; no clientId means the API key
    /// (a server or worker), so service; anything else (`customer:`, `customer-{id}`, a
    /// foreign form) is a customer.
    pub fn of_publisher(client_id: Option<&str>) -> Role {
        let Some(client_id) = client_id else {
            return Role::Service;
        };
        match client_id.split_once(':') {
            Some(("broker", _)) => Role::Broker,
            Some(("admin", _)) => Role::Admin,
            Some(("service", _)) => Role::Service,
            _ => Role::Customer,
        }
    }
}

/// An authenticated caller. Every id in it is a valid identifier (see [`crate::identity::ids`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A bearer JWT.
    User {
        user_id: String,
        role: Role,
        /// Conversations a customer may use (`conversations` claim); empty when absent.
        conversations: Vec<String>,
    },
    /// A chat session cookie: a customer without an account, bound to one conversation.
    Session {
        conversation_id: String,
        email: String,
        /// When the session was issued (`iat`, Unix seconds): an erasure of the
        /// conversation refuses every session issued at or before it.
        issued_at: u64,
    },
}

impl Caller {
    /// The Ably `clientId`: `{role}:{userId}`, or `customer-{conversationId}` for a session.
    pub fn client_id(&self) -> String {
        match self {
            Caller::User { user_id, role, .. } => format!("{}:{user_id}", role.as_str()),
            Caller::Session {
                conversation_id, ..
            } => format!("customer-{conversation_id}"),
        }
    }

    /// The key rate limits count under; also the caller id in the request log line.
    /// Users and sessions live in different namespaces so that neither can exhaust the other.
    pub fn id_for_rate_limit(&self) -> String {
        match self {
            Caller::User { user_id, .. } => format!("user:{user_id}"),
            Caller::Session {
                conversation_id, ..
            } => format!("session:{conversation_id}"),
        }
    }

    /// The JWT role; a session has none (it is treated as a customer).
    pub fn role(&self) -> Option<Role> {
        match self {
            Caller::User { role, .. } => Some(*role),
            Caller::Session { .. } => None,
        }
    }

    /// The role the channel table applies: the JWT's, or customer for a session.
    pub fn acting_role(&self) -> Role {
        self.role().unwrap_or(Role::Customer)
    }

    /// Broker, admin or service.
    pub fn is_staff(&self) -> bool {
        self.role().is_some_and(Role::is_staff)
    }
}

/// Callers for unit tests: a bearer user with conversations, and a session.
#[cfg(test)]
pub(crate) mod samples {
    use super::{Caller, Role};

    pub fn user(id: &str, role: Role, conversations: &[&str]) -> Caller {
        Caller::User {
            user_id: id.into(),
            role,
            conversations: conversations.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    pub fn session(id: &str) -> Caller {
        Caller::Session {
            conversation_id: id.into(),
            email: "a@b.c".into(),
            issued_at: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_name_themselves_for_ably_and_rate_limits() {
        let user = Caller::User {
            user_id: "u1".into(),
            role: Role::Broker,
            conversations: vec![],
        };
        let session = Caller::Session {
            conversation_id: "c1".into(),
            email: "a@b.c".into(),
            issued_at: 0,
        };
        assert_eq!(user.client_id(), "broker:u1");
        assert_eq!(user.id_for_rate_limit(), "user:u1");
        assert!(user.is_staff());
        assert_eq!(session.client_id(), "customer-c1");
        assert_eq!(session.id_for_rate_limit(), "session:c1");
        assert!(!session.is_staff());
        assert_eq!(session.role(), None);
    }

    #[test]
    fn the_publishers_role_is_read_from_its_client_id() {
        for (client_id, role) in [
            (None, Role::Service),
            (Some("service:s1"), Role::Service),
            (Some("broker:b1"), Role::Broker),
            (Some("admin:a1"), Role::Admin),
            (Some("customer:u1"), Role::Customer),
            (Some("customer-conv-1"), Role::Customer),
            (Some("b1"), Role::Customer),
            (Some("broker"), Role::Customer),
            (Some("broker-b1"), Role::Customer),
            (Some("Broker:b1"), Role::Customer),
            (Some(""), Role::Customer),
        ] {
            assert_eq!(Role::of_publisher(client_id), role, "{client_id:?}");
        }
        // What this service mints reads back as the role it was minted for.
        for role in [Role::Customer, Role::Broker, Role::Admin, Role::Service] {
            let caller = Caller::User {
                user_id: "x".into(),
                role,
                conversations: vec![],
            };
            assert_eq!(Role::of_publisher(Some(&caller.client_id())), role);
        }
        let session = Caller::Session {
            conversation_id: "c1".into(),
            email: "a@b.co".into(),
            issued_at: 0,
        };
        assert_eq!(
            Role::of_publisher(Some(&session.client_id())),
            Role::Customer
        );
        assert_eq!(session.acting_role(), Role::Customer);
    }
}
