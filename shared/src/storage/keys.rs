//! The Redis key schema: every key (and the bridge's pub/sub channel) the functions use,
//! under one optional prefix (`REDIS_KEY_PREFIX`), so that several apps or environments
//! can share one database. Nothing else writes a key's format, in Rust or in Lua.

/// Builds every Redis key under one prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// `prefix` is prepended as it is (e.g. `staging:`).
    pub fn new(prefix: impl Into<String>) -> Self {
        Keys {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `prefix` then `parts`, in one allocation: the mirror builds two keys per event.
    fn key(&self, parts: &[&str]) -> String {
        let len = self.prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut key = String::with_capacity(len);
        key.push_str(&self.prefix);
        for part in parts {
            key.push_str(part);
        }
        key
    }

    /// A conversation's cached events, newest first: `chat:conversation:{id}:events`.
    pub fn events(&self, conversation_id: &str) -> String {
        self.key(&["chat:conversation:", conversation_id, ":events"])
    }

    /// The marker of an event id already mirrored in a conversation:
    /// `chat:event:{length of conversationId}:{conversationId}:{id}`. Per conversation,
    /// because Ably lets publishers choose message ids: one conversation's ids never
    /// suppress another's. Both parts may contain `:` (`sms:u1:k1`, `abc:1:0`); the length
    /// says where the conversation ends, so no two pairs share a key.
    pub fn seen(&self, history_id: &str, event_id: &str) -> String {
        let mut digits = itoa::Buffer::new();
        let length = digits.format(history_id.len());
        self.key(&["chat:event:", length, ":", history_id, ":", event_id])
    }

    /// The proof that a conversation's list holds every event after a point (a hash of
    /// `floor` and `epoch`, see `crate::storage::proof::Proof`):
    /// `chat:conversation:{id}:proof`.
    pub fn proof(&self, conversation_id: &str) -> String {
        self.key(&["chat:conversation:", conversation_id, ":proof"])
    }

    /// The pub/sub channel the bridge publishes a conversation's events on:
    /// `chat:{conversationId}` (a channel, not a key; it carries the prefix all the same).
    pub fn bridge_channel(&self, conversation_id: &str) -> String {
        format!("{}chat:{conversation_id}", self.prefix)
    }

    /// Conversations by the time of their last event.
    pub fn active_conversations(&self) -> String {
        format!("{}stats:active", self.prefix)
    }

    /// One minute's counters (`minute` = ms since the epoch / 60 000).
    pub fn minute(&self, minute: i64) -> String {
        format!("{}stats:minute:{minute}", self.prefix)
    }

    pub fn ai_duration_samples(&self) -> String {
        format!("{}stats:samples:ai_duration_ms", self.prefix)
    }

    pub fn queue_duration_samples(&self) -> String {
        format!("{}stats:samples:queue_duration_ms", self.prefix)
    }

    /// A caller's counter under a named limit: `ratelimit:{scope}:{caller}`.
    pub fn rate_limit(&self, scope: &str, caller_id: &str) -> String {
        format!("{}ratelimit:{scope}:{caller_id}", self.prefix)
    }

    /// The marker of a consumed resume link: `resume:used:{jti}`.
    pub fn resume_used(&self, jti: &str) -> String {
        format!("{}resume:used:{jti}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_of_every_key() {
        let keys = Keys::new("staging:");
        assert_eq!(keys.events("c1"), "staging:chat:conversation:c1:events");
        assert_eq!(keys.seen("c1", "m:1:0"), "staging:chat:event:2:c1:m:1:0");
        assert_eq!(keys.proof("c1"), "staging:chat:conversation:c1:proof");
        assert_eq!(keys.active_conversations(), "staging:stats:active");
        assert_eq!(keys.minute(29_383_333), "staging:stats:minute:29383333");
        assert_eq!(
            keys.ai_duration_samples(),
            "staging:stats:samples:ai_duration_ms"
        );
        assert_eq!(
            keys.queue_duration_samples(),
            "staging:stats:samples:queue_duration_ms"
        );
        assert_eq!(
            keys.rate_limit("token", "user:u1"),
            "staging:ratelimit:token:user:u1"
        );
        assert_eq!(keys.resume_used("j1"), "staging:resume:used:j1");
        assert_eq!(Keys::default().events("c1"), "chat:conversation:c1:events");
    }

    #[test]
    fn seen_markers_of_different_conversation_and_id_pairs_never_share_a_key() {
        let keys = Keys::default();
        // Joined by `:` alone, these two pairs made the same key.
        assert_ne!(keys.seen("sms:u1:k1:x", "y"), keys.seen("sms:u1:k1", "x:y"));
        assert_ne!(keys.seen("a", "1:b"), keys.seen("a:1", "b"));
        assert_ne!(keys.seen("1", "1:1:x"), keys.seen("1:1", "x"));
        assert_eq!(keys.seen("sms:u1:k1", "x:y"), "chat:event:9:sms:u1:k1:x:y");
    }

    #[test]
    fn the_bridge_channel_carries_the_prefix_too() {
        assert_eq!(Keys::default().bridge_channel("c1"), "chat:c1");
        assert_eq!(
            Keys::new("staging:").bridge_channel("c1"),
            "staging:chat:c1"
        );
    }
}
