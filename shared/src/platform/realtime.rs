//! Which conversations use Ably realtime, and which poll `GET /api/chat/events`.
//!
//! `ENABLE_ABLY_REALTIME=false` is the one switch that sends everyone to polling. Within
//! it, `ABLY_REALTIME_ROLLOUT_PERCENT` (0-100) picks a stable share of conversations by a
//! hash of the conversation id, the same in every function and on every cold start;
//! `ABLY_REALTIME_ALLOW` and `ABLY_REALTIME_DENY` (comma-separated conversation ids)
//! override it, and deny wins.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::platform::env::Env;

/// The realtime rollout, read once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealtimeRollout {
    /// `ENABLE_ABLY_REALTIME`.
    pub enabled: bool,
    /// `ABLY_REALTIME_ROLLOUT_PERCENT`: conversations whose bucket is below it are in.
    pub percent: u8,
    pub allow: HashSet<String>,
    pub deny: HashSet<String>,
}

impl Default for RealtimeRollout {
    fn default() -> Self {
        RealtimeRollout {
            enabled: true,
            percent: 100,
            allow: HashSet::new(),
            deny: HashSet::new(),
        }
    }
}

impl RealtimeRollout {
    pub fn from_env(env: &mut Env) -> Self {
        let enabled = env.flag("ENABLE_ABLY_REALTIME", true);
        let percent = env.parsed_or("ABLY_REALTIME_ROLLOUT_PERCENT", 100u8);
        if percent > 100 {
            env.problem("ABLY_REALTIME_ROLLOUT_PERCENT must be from 0 to 100");
        }
        let list = |env: &Env, name: &str| -> HashSet<String> {
            env.optional(name)
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|id| !id.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        RealtimeRollout {
            enabled,
            percent: percent.min(100),
            allow: list(env, "ABLY_REALTIME_ALLOW"),
            deny: list(env, "ABLY_REALTIME_DENY"),
        }
    }

    /// Whether `conversation_id` uses Ably realtime: the switch is on, it is not denied,
    /// and it is allowed or its bucket is inside the rollout.
    pub fn includes(&self, conversation_id: &str) -> bool {
        self.enabled
            && !self.deny.contains(conversation_id)
            && (self.allow.contains(conversation_id)
                || bucket(conversation_id) < u32::from(self.percent))
    }
}

/// A conversation's stable bucket, 0 to 99: the first 8 bytes of SHA-256 of its id, as a
/// big-endian number, modulo 100. Any function and any language can compute the same.
pub fn bucket(conversation_id: &str) -> u32 {
    let digest = Sha256::digest(conversation_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % 100) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(pairs: &[(&str, &str)]) -> RealtimeRollout {
        let mut env = Env::from_pairs(pairs.iter().copied());
        let rollout = RealtimeRollout::from_env(&mut env);
        env.finish().unwrap();
        rollout
    }

    #[test]
    fn the_bucket_is_stable_and_spread() {
        // Pinned: changing the derivation would move conversations between the groups.
        let digest = Sha256::digest(b"conv-1");
        let expected = u64::from_be_bytes(digest[..8].try_into().unwrap()) % 100;
        assert_eq!(u64::from(bucket("conv-1")), expected);
        let ids: Vec<String> = (0..10_000).map(|i| format!("conv-{i}")).collect();
        let in_half = ids.iter().filter(|id| bucket(id) < 50).count();
        assert!((4_500..5_500).contains(&in_half), "{in_half}");
        assert!(ids.iter().all(|id| bucket(id) < 100));
    }

    #[test]
    fn zero_and_a_hundred_percent_are_exact_and_the_lists_win() {
        let ids: Vec<String> = (0..1000).map(|i| format!("c-{i}")).collect();
        let none = rollout(&[("ABLY_REALTIME_ROLLOUT_PERCENT", "0")]);
        assert!(ids.iter().all(|id| !none.includes(id)));
        let all = rollout(&[]);
        assert!(ids.iter().all(|id| all.includes(id)));
        let ten = rollout(&[("ABLY_REALTIME_ROLLOUT_PERCENT", "10")]);
        assert_eq!(
            ids.iter().filter(|id| ten.includes(id)).count(),
            ids.iter().filter(|id| bucket(id) < 10).count()
        );

        let out = ids.iter().find(|id| bucket(id) >= 10).unwrap();
        let inside = ids.iter().find(|id| bucket(id) < 10).unwrap();
        let listed = rollout(&[
            ("ABLY_REALTIME_ROLLOUT_PERCENT", "10"),
            ("ABLY_REALTIME_ALLOW", &format!("{out}, both")),
            ("ABLY_REALTIME_DENY", &format!("{inside},both")),
        ]);
        assert!(listed.includes(out), "allowed though outside the share");
        assert!(!listed.includes(inside), "denied though inside the share");
        assert!(!listed.includes("both"), "deny wins");
        // The switch is the one rollback: off, no conversation is in.
        let off = rollout(&[
            ("ENABLE_ABLY_REALTIME", "false"),
            ("ABLY_REALTIME_ALLOW", out),
        ]);
        assert!(!off.includes(out));
    }

    #[test]
    fn a_percentage_outside_0_to_100_names_the_variable() {
        for bad in ["101", "-1", "ten"] {
            let mut env = Env::from_pairs([("ABLY_REALTIME_ROLLOUT_PERCENT", bad)]);
            RealtimeRollout::from_env(&mut env);
            let text = env.finish().unwrap_err().to_string();
            assert!(
                text.contains("ABLY_REALTIME_ROLLOUT_PERCENT"),
                "{bad}: {text}"
            );
        }
    }
}
