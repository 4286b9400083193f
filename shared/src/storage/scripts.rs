//! The Lua scripts the functions run with `EVAL`, one `.lua` file each under `scripts/`.
//!
//! Every key a script touches arrives in `KEYS[]`, built by [`crate::storage::keys`]: Upstash
//! runs a script that touches undeclared keys under its global lock (reading cold keys
//! from disk while holding it), and Redis Cluster routes a script by its declared keys.
//! Each file's header names its `KEYS` and `ARGV`; [`Script`] repeats those names, and the
//! tests below hold the two sides together.

/// A script and the names of its `KEYS` and `ARGV`, in order, as its header lists them.
#[derive(Debug, Clone, Copy)]
pub struct Script {
    pub name: &'static str,
    pub source: &'static str,
    pub keys: &'static [&'static str],
    pub args: &'static [&'static str],
}

/// Mirrors a webhook batch into the conversation lists and the analytics.
pub const MIRROR: Script = Script {
    name: "mirror",
    source: concat!(
        include_str!("scripts/times.lua"),
        include_str!("scripts/mirror.lua")
    ),
    keys: &[
        "active",
        "ai_samples",
        "queue_samples",
        "minute",
        "seen",
        "list",
        "proof",
    ],
    args: &[
        "ttl",
        "max",
        "now",
        "window",
        "stats_ttl",
        "cap",
        "lifecycle",
        "bridge",
        "event",
    ],
};

/// Proves a conversation list from a read of the archive, merging what it lacks.
pub const REFILL: Script = Script {
    name: "refill",
    source: concat!(
        include_str!("scripts/times.lua"),
        include_str!("scripts/refill.lua")
    ),
    keys: &["list", "proof", "seen"],
    args: &["ttl", "max", "epoch", "floor", "event"],
};

/// Reads a conversation list and its proof together.
pub const READ: Script = Script {
    name: "read",
    source: include_str!("scripts/read.lua"),
    keys: &["list", "proof"],
    args: &["last"],
};

/// Counts one request against a rate limit.
pub const RATE_LIMIT: Script = Script {
    name: "rate_limit",
    source: include_str!("scripts/rate_limit.lua"),
    keys: &["counter"],
    args: &["window"],
};

/// Counts a poll and reads the cached list in one round trip.
pub const POLL: Script = Script {
    name: "poll",
    source: include_str!("scripts/poll.lua"),
    keys: &["counter", "list", "proof"],
    args: &["window", "max"],
};

/// Counts a redeem, consumes the link and reads the cached list in one round trip.
pub const REDEEM: Script = Script {
    name: "redeem",
    source: include_str!("scripts/redeem.lua"),
    keys: &["counter", "used", "list", "proof"],
    args: &["window", "max", "used_ttl", "last"],
};

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Script; 6] = [MIRROR, REFILL, READ, RATE_LIMIT, POLL, REDEEM];

    /// The names of a header's `-- KEYS[..] name ...` (or `ARGV`) lines, in order.
    fn declared<'a>(script: &'a Script, kind: &str) -> Vec<&'a str> {
        let tag = format!("-- {kind}[");
        script
            .source
            .lines()
            .filter_map(|line| line.strip_prefix(tag.as_str()))
            .filter_map(|rest| rest.split_once(']'))
            .filter_map(|(_, rest)| rest.split_whitespace().next())
            .collect()
    }

    /// The script without its comments.
    fn code(script: &Script) -> String {
        script
            .source
            .lines()
            .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn each_header_names_the_keys_and_arguments_rust_passes() {
        for script in ALL {
            assert_eq!(declared(&script, "KEYS"), script.keys, "{}", script.name);
            assert_eq!(declared(&script, "ARGV"), script.args, "{}", script.name);
        }
    }

    #[test]
    fn every_key_a_script_touches_comes_from_keys() {
        for script in ALL {
            let code = code(&script);
            let calls: Vec<&str> = code.split(concat!("redis", ".call(")).skip(1).collect();
            assert!(!calls.is_empty(), "{}", script.name);
            for call in calls {
                let (command, rest) = call.split_once(',').unwrap_or((call, ""));
                let command = command.trim().trim_matches('\'');
                if command == "PUBLISH" {
                    // Its first argument is a pub/sub channel, not a key.
                    assert!(rest.trim_start().starts_with("ARGV["), "{}", script.name);
                    continue;
                }
                assert!(
                    rest.trim_start().starts_with("KEYS["),
                    "{}: {command} on a key not taken from KEYS: {call}",
                    script.name
                );
            }
            // No key is assembled inside a script: none of the key schema's parts appears.
            for fragment in ["chat:", "stats:", "ratelimit:", "resume:", ":events"] {
                assert!(!code.contains(fragment), "{}: {fragment}", script.name);
            }
        }
    }

    #[test]
    fn every_limit_counts_the_way_rate_limit_lua_does() {
        // rate_limit.lua's counting lines: the counter and its expiry, before its answer.
        let code = code(&RATE_LIMIT);
        let counting: Vec<&str> = code
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with("return"))
            .collect();
        assert_eq!(counting.len(), 2, "{counting:?}");
        for script in [POLL, REDEEM] {
            assert!(
                script.source.contains(&counting.join("\n")),
                "{}",
                script.name
            );
            assert_eq!(&script.keys[0], &"counter");
            assert_eq!(&script.args[0], &"window");
        }
    }
}
