//! Who is calling, once verified: a [`Caller`] with its [`Role`], and the names it goes
//! by (the Ably `clientId`, the rate-limit key). What a caller may use is the channel
//! table's answer (`crate::channels`).

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
    },
}

impl Caller {
    /// The Ably `clientId`: the user id, or `customer-{conversationId}` for a session.
    pub fn client_id(&self) -> String {
        match self {
            Caller::User { user_id, .. } => user_id.clone(),
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

    /// Broker, admin or service.
    pub fn is_staff(&self) -> bool {
        self.role().is_some_and(Role::is_staff)
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
        };
        assert_eq!(user.client_id(), "u1");
        assert_eq!(user.id_for_rate_limit(), "user:u1");
        assert!(user.is_staff());
        assert_eq!(session.client_id(), "customer-c1");
        assert_eq!(session.id_for_rate_limit(), "session:c1");
        assert!(!session.is_staff());
        assert_eq!(session.role(), None);
    }
}
