//! The Redis hot cache: each conversation's recent events (newest pushed first, trimmed to
//! `REDIS_EVENT_MAX`, a sliding `REDIS_EVENT_TTL_SECONDS`), written for a whole batch in
//! one `EVAL` that also maintains the analytics and, with the bridge on, publishes.
//!
//! A list is a cache, never the record: it is read as whole only under its [`Proof`],
//! made from a read of the archive and kept by every push and trim (see
//! `scripts/refill.lua`), and only in the cache epoch it was made in
//! ([`crate::storage::epoch`]).

use crate::events::bridge;
use crate::events::ChatEvent;
use crate::storage::analytics::{KEY_TTL_SECONDS, MINUTE_MS, SAMPLE_CAP, WINDOW_MS};
use crate::storage::config::RetentionConfig;
use crate::storage::keys::Keys;
use crate::storage::proof::CachedList;
use crate::storage::ratelimit::{RateLimiter, Usage};
use crate::storage::redis::{RedisClient, RedisError, MAX_REQUEST_BYTES};
use crate::storage::scripts;

/// Events in one mirror call: a script runs alone on the Redis server, so it is kept short.
pub const MAX_EVENTS_PER_CALL: usize = 1000;
/// Room kept under the request limit for the command's own framing.
const REQUEST_MARGIN: usize = 64 * 1024;

/// The bytes a string takes in the REST request's JSON array (quotes, escapes, comma).
fn json_string_bytes(s: &str) -> usize {
    let escapes: usize = s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
            0..=0x1f => 5,
            _ => 0,
        })
        .sum();
    s.len() + escapes + 3
}

/// [`request_bytes_from`], or (not `exact`) a bound on it that reads only lengths: each
/// byte escaped as `\u00XX`.
fn measure(call: &ScriptCall, from: (usize, usize), exact: bool) -> usize {
    if exact {
        return request_bytes_from(call, from);
    }
    call.keys[from.0..]
        .iter()
        .chain(&call.args[from.1..])
        .map(|s| s.len() * 6 + 3)
        .sum()
}

/// The request bytes of `call`'s keys and arguments from the given positions on.
fn request_bytes_from(call: &ScriptCall, (keys, args): (usize, usize)) -> usize {
    call.keys[keys..]
        .iter()
        .chain(&call.args[args..])
        .map(|s| json_string_bytes(s))
        .sum()
}

/// What mirroring a batch into Redis did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheOutcome {
    pub stored: usize,
    pub duplicates: usize,
}

/// The `KEYS` and `ARGV` of one script call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptCall {
    pub keys: Vec<String>,
    pub args: Vec<String>,
}

/// The Redis hot cache of recent events per conversation.
#[derive(Debug, Clone)]
pub struct EventCache {
    pub(crate) redis: RedisClient,
    pub(crate) keys: Keys,
    ttl_seconds: u64,
    max_events: u32,
    pubsub_bridge: bool,
}

impl EventCache {
    /// The cache under `keys`, with `REDIS_PUBSUB_BRIDGE` as `pubsub_bridge`.
    pub fn new(
        redis: RedisClient,
        keys: Keys,
        retention: &RetentionConfig,
        pubsub_bridge: bool,
    ) -> Self {
        EventCache {
            redis,
            keys,
            ttl_seconds: retention.redis_event_ttl_seconds,
            max_events: retention.redis_event_max,
            pubsub_bridge,
        }
    }

    /// For tools and tests that inspect what the cache holds.
    #[cfg(feature = "test-support")]
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    #[cfg(feature = "test-support")]
    pub fn redis(&self) -> &RedisClient {
        &self.redis
    }

    /// The mirror script's `KEYS` and `ARGV` for `events` (sorted oldest first, so each
    /// list ends up newest first), with each trusted event's bridge channel and envelope
    /// when the bridge is on, in one call. Pure, so it can be benchmarked and inspected.
    pub fn mirror_call(&self, events: &[ChatEvent], lifecycle: usize, now_ms: i64) -> ScriptCall {
        let mut calls = self.mirror_calls(events, lifecycle, now_ms, usize::MAX, usize::MAX);
        calls.pop().unwrap_or_default()
    }

    /// The same split into calls of at most `max_events` events and about `max_bytes` of
    /// request each (an event is never split), in order: oldest events first, the
    /// channel lifecycle count in the first call.
    pub fn mirror_calls(
        &self,
        events: &[ChatEvent],
        lifecycle: usize,
        now_ms: i64,
        max_events: usize,
        max_bytes: usize,
    ) -> Vec<ScriptCall> {
        let mut order: Vec<&ChatEvent> = events.iter().collect();
        order.sort_by(|a, b| (&a.occurred_at, &a.id).cmp(&(&b.occurred_at, &b.id)));
        let per_call = order.len().min(max_events);
        let mut calls = Vec::with_capacity(1);
        let mut call = self.mirror_header(per_call, lifecycle, now_ms);
        // Bytes are counted from a cheap bound (every byte escaped) until the bound could
        // pass `max_bytes`; from then on, exactly. A typical batch is never scanned.
        let mut exact = false;
        let mut bytes = measure(&call, (0, 0), exact);
        let mut count = 0;
        for event in order {
            let mark = (call.keys.len(), call.args.len());
            self.push_event(&mut call, event);
            let mut added = measure(&call, mark, exact);
            if !exact && bytes.saturating_add(added) > max_bytes {
                exact = true;
                added = measure(&call, mark, exact);
                bytes = measure(&call, (0, 0), exact) - added;
            }
            if count > 0 && (count == max_events || bytes.saturating_add(added) > max_bytes) {
                let moved_keys = call.keys.split_off(mark.0);
                let moved_args = call.args.split_off(mark.1);
                calls.push(std::mem::replace(
                    &mut call,
                    self.mirror_header(per_call, 0, now_ms),
                ));
                call.keys.extend(moved_keys);
                call.args.extend(moved_args);
                bytes = measure(&call, (0, 0), exact);
                count = 1;
            } else {
                bytes += added;
                count += 1;
            }
        }
        calls.push(call);
        calls
    }

    /// The calls [`Self::mirror`] makes for a batch: [`Self::mirror_calls`] within
    /// [`MAX_EVENTS_PER_CALL`] and Upstash's request limit, less the script and a margin.
    pub fn planned_calls(
        &self,
        events: &[ChatEvent],
        lifecycle: usize,
        now_ms: i64,
    ) -> Vec<ScriptCall> {
        let budget = MAX_REQUEST_BYTES - scripts::MIRROR.source.len() - REQUEST_MARGIN;
        self.mirror_calls(events, lifecycle, now_ms, MAX_EVENTS_PER_CALL, budget)
    }

    /// The four analytics `KEYS` and eight settings of a mirror call, with room for
    /// `events` events.
    fn mirror_header(&self, events: usize, lifecycle: usize, now_ms: i64) -> ScriptCall {
        let keys = &self.keys;
        let mut call = ScriptCall {
            keys: Vec::with_capacity(4 + 3 * events),
            args: Vec::with_capacity(8 + 9 * events),
        };
        call.keys.extend([
            keys.active_conversations(),
            keys.ai_duration_samples(),
            keys.queue_duration_samples(),
            keys.minute(now_ms.div_euclid(MINUTE_MS)),
        ]);
        call.args.extend([
            self.ttl_seconds.to_string(),
            self.max_events.to_string(),
            now_ms.to_string(),
            WINDOW_MS.to_string(),
            KEY_TTL_SECONDS.to_string(),
            SAMPLE_CAP.to_string(),
            lifecycle.to_string(),
            if self.pubsub_bridge { "1" } else { "0" }.to_owned(),
        ]);
        call
    }

    fn push_event(&self, call: &mut ScriptCall, event: &ChatEvent) {
        let keys = &self.keys;
        call.keys.push(keys.seen(&event.history_id, &event.id));
        call.keys.push(keys.events(&event.history_id));
        call.keys.push(keys.proof(&event.history_id));
        call.args.push(event.id.clone());
        call.args.push(event.history_id.clone());
        call.args
            .push(serde_json::to_string(event).unwrap_or_default());
        // A change of a message is not another message for the analytics.
        call.args.push(
            match (event.trusted, event.is_change()) {
                (false, _) => "0",
                (true, false) => "1",
                (true, true) => "2",
            }
            .to_owned(),
        );
        call.args.push(event.event_type.clone());
        let (ai, queue) = timing_samples(event);
        call.args.push(ai);
        call.args.push(queue);
        if self.pubsub_bridge {
            // Only what the channel table trusts is bridged.
            match bridge::envelope(event).filter(|_| event.trusted) {
                Some(envelope) => {
                    call.args.push(keys.bridge_channel(&event.history_id));
                    call.args.push(envelope);
                }
                None => call.args.extend([String::new(), String::new()]),
            }
        }
    }

    /// Mirrors a batch: one round trip, or one per [`MAX_EVENTS_PER_CALL`] events, with
    /// no request over Upstash's limit ([`MAX_REQUEST_BYTES`]). The calls run in order,
    /// so each list still ends newest first.
    pub async fn mirror(
        &self,
        events: &[ChatEvent],
        lifecycle: usize,
        now_ms: i64,
    ) -> Result<CacheOutcome, RedisError> {
        if events.is_empty() && lifecycle == 0 {
            return Ok(CacheOutcome::default());
        }
        let calls = self.planned_calls(events, lifecycle, now_ms);
        let mut outcome = CacheOutcome::default();
        for call in calls {
            let reply = self
                .redis
                .run(&scripts::MIRROR, &call.keys, &call.args)
                .await?;
            let counts = reply
                .as_array()
                .filter(|a| a.len() == 2)
                .and_then(|a| Some((a[0].as_u64()?, a[1].as_u64()?)))
                .ok_or_else(|| {
                    RedisError::Protocol("mirror script returned an unexpected value".into())
                })?;
            outcome.stored += counts.0 as usize;
            outcome.duplicates += counts.1 as usize;
        }
        Ok(outcome)
    }

    /// A conversation's cached events (at most `REDIS_EVENT_MAX`) and the list's proof,
    /// read together.
    pub async fn recent(&self, conversation_id: &str) -> Result<CachedList, RedisError> {
        let reply = self
            .redis
            .run(
                &scripts::READ,
                &[
                    self.keys.events(conversation_id),
                    self.keys.proof(conversation_id),
                ],
                &[self.last_index().to_string()],
            )
            .await?;
        let parts = reply.as_array().map(Vec::as_slice).unwrap_or_default();
        let [list, proof] = parts else {
            return Err(RedisError::Protocol(format!(
                "read script answered {reply}"
            )));
        };
        CachedList::of_reply(list, Some(proof))
    }

    /// The last index of a full conversation list (`REDIS_EVENT_MAX - 1`).
    pub fn last_index(&self) -> u32 {
        self.max_events.saturating_sub(1)
    }

    /// The events a conversation list holds at most (`REDIS_EVENT_MAX`).
    pub fn capacity(&self) -> usize {
        self.max_events as usize
    }

    /// Counts one request of `caller_id` against `limiter` and, within its limit, reads
    /// every cached event of the conversation (in list order) and the list's proof, in
    /// one round trip.
    pub async fn counted_window(
        &self,
        conversation_id: &str,
        limiter: &RateLimiter,
        caller_id: &str,
    ) -> Result<(Usage, Option<CachedList>), RedisError> {
        let reply = self
            .redis
            .run(
                &scripts::POLL,
                &[
                    limiter.key(caller_id),
                    self.keys.events(conversation_id),
                    self.keys.proof(conversation_id),
                ],
                &[
                    limiter.window_ms().to_string(),
                    limiter.limit().max.to_string(),
                ],
            )
            .await?;
        let unexpected = || RedisError::Protocol(format!("poll script answered {reply}"));
        let [count, ttl, list, proof] = reply.as_array().map(Vec::as_slice).unwrap_or_default()
        else {
            return Err(unexpected());
        };
        let Some(usage) = limiter.usage(count.as_i64(), ttl.as_i64()) else {
            return Err(unexpected());
        };
        if usage.count > u64::from(limiter.limit().max) {
            return Ok((usage, None));
        }
        let cached = CachedList::of_reply(list, Some(proof)).map_err(|_| unexpected())?;
        Ok((usage, Some(cached)))
    }

    /// Proves a conversation's list from a read of the archive made in cache epoch
    /// `epoch`: `newest_first` are every event the archive held after `floor` (an
    /// `occurred_at`; empty: all of them), or the newest of them when `floor` is the time
    /// of the oldest. Merges what the list lacks (see `scripts/refill.lua`); whether the
    /// list is now proven.
    pub async fn prove<'e>(
        &self,
        conversation_id: &str,
        newest_first: impl ExactSizeIterator<Item = &'e ChatEvent>,
        floor: &str,
        epoch: u64,
    ) -> Result<bool, RedisError> {
        // All of them, even past the list's length: the script trims what does not fit
        // and raises the floor past it.
        let mut keys = Vec::with_capacity(2 + newest_first.len());
        keys.push(self.keys.events(conversation_id));
        keys.push(self.keys.proof(conversation_id));
        let mut args = Vec::with_capacity(4 + newest_first.len());
        args.extend([
            self.ttl_seconds.to_string(),
            self.max_events.to_string(),
            epoch.to_string(),
            floor.to_owned(),
        ]);
        for event in newest_first {
            keys.push(self.keys.seen(conversation_id, &event.id));
            args.push(serde_json::to_string(event).unwrap_or_default());
        }
        let reply = self.redis.run(&scripts::REFILL, &keys, &args).await?;
        Ok(reply.as_i64() == Some(1))
    }
}

/// `message:ai` timing fields the analytics percentiles are computed from; none from an
/// untrusted event, whose timing is whatever its publisher wrote, and none from a change
/// of a message (one sample per answer, however it was streamed).
fn timing_samples(event: &ChatEvent) -> (String, String) {
    if event.event_type != "message:ai" || !event.trusted || event.is_change() {
        return (String::new(), String::new());
    }
    let fields = event.payload.fields();
    let field = |name: &str| {
        fields
            .as_ref()
            .and_then(|f| f.number_in("timing", name))
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    (field("ai_duration_ms"), field("queue_duration_ms"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::event::sample;
    use crate::storage::redis::RedisConfig;

    fn cache(pubsub_bridge: bool) -> EventCache {
        let redis = RedisClient::new(&RedisConfig {
            url: "http://127.0.0.1:1".into(),
            ..RedisConfig::default()
        });
        let retention = RetentionConfig {
            event_retention_days: 1,
            redis_event_ttl_seconds: 60,
            redis_event_max: 10,
        };
        EventCache::new(redis, Keys::new("p:"), &retention, pubsub_bridge)
    }

    fn sms(ms: i64, id: &str) -> ChatEvent {
        let mut sms = sample(ms, id);
        sms.channel = "sms:u:c".into();
        sms.history_id = "sms:u:c".into();
        sms
    }

    #[test]
    fn each_events_keys_come_in_the_order_the_script_declares() {
        let events = [sample(2, "b"), sms(1, "s"), sample(0, "a")];
        let call = cache(false).mirror_call(&events, 0, 61_000);
        let keys = Keys::new("p:");
        assert_eq!(
            call.keys,
            [
                keys.active_conversations(),
                keys.ai_duration_samples(),
                keys.queue_duration_samples(),
                keys.minute(1),
                // Oldest first: `seen`, `list` and `proof` per event.
                keys.seen("c", "a"),
                keys.events("c"),
                keys.proof("c"),
                keys.seen("sms:u:c", "s"),
                keys.events("sms:u:c"),
                keys.proof("sms:u:c"),
                keys.seen("c", "b"),
                keys.events("c"),
                keys.proof("c"),
            ]
        );
        assert_eq!(
            &call.args[..8],
            ["60", "10", "61000", "3600000", "7200", "10000", "0", "0"]
        );
        assert_eq!(
            scripts::MIRROR.args.len(),
            9,
            "eight fixed arguments, then the events"
        );
        let ids: Vec<&str> = call.args[8..].chunks(7).map(|c| c[0].as_str()).collect();
        assert_eq!(ids, ["a", "s", "b"]);
    }

    #[test]
    fn an_untrusted_event_is_cached_but_gives_no_sample_and_no_envelope() {
        let mut forged = sample(1, "f");
        forged.event_type = "message:ai".into();
        forged.payload = serde_json::json!({"text": "x", "timing": {"ai_duration_ms": 9e9}}).into();
        forged.trusted = false;
        let mut genuine = forged.clone();
        genuine.id = "g".into();
        genuine.trusted = true;
        let call = cache(true).mirror_call(&[forged, genuine.clone()], 0, 0);
        let per_event: Vec<&[String]> = call.args[8..].chunks(9).collect();
        // id, conversation, json, trusted, type, ai ms, queue ms, channel, envelope
        assert_eq!(per_event[0][0], "f");
        assert_eq!(&per_event[0][3..], ["0", "message:ai", "", "", "", ""]);
        assert_eq!(per_event[1][0], "g");
        assert_eq!(&per_event[1][3..7], ["1", "message:ai", "9000000000", ""]);
        assert_eq!(
            per_event[1][8],
            bridge::envelope(&genuine).unwrap(),
            "trusted: bridged"
        );
    }

    #[test]
    fn the_bridge_adds_a_channel_and_an_envelope_per_event_only_when_it_is_on() {
        let events = [sample(2, "b"), sms(1, "s"), sample(0, "a")];
        let off = cache(false).mirror_call(&events, 0, 0);
        assert_eq!(off.args.len(), 8 + 7 * 3);
        assert_eq!(off.args[7], "0");
        let on = cache(true).mirror_call(&events, 0, 0);
        assert_eq!(on.args.len(), 8 + 9 * 3);
        assert_eq!(on.args[7], "1");
        assert_eq!(
            on.keys, off.keys,
            "the bridge publishes on channels, not keys"
        );
        // Oldest first; each event's channel and envelope last; not bridged: empty.
        let bridged: Vec<(&str, &str)> = on.args[8..]
            .chunks(9)
            .map(|c| (c[7].as_str(), c[8].as_str()))
            .collect();
        assert_eq!(
            bridged,
            [
                (
                    "p:chat:c",
                    bridge::envelope(&sample(0, "a")).unwrap().as_str()
                ),
                ("", ""),
                (
                    "p:chat:c",
                    bridge::envelope(&sample(2, "b")).unwrap().as_str()
                ),
            ]
        );
        let without: Vec<&String> = on.args[8..].chunks(9).flat_map(|c| &c[..7]).collect();
        assert_eq!(without, off.args[8..].iter().collect::<Vec<_>>());
    }

    #[test]
    fn a_big_batch_is_split_in_order_within_the_limits() {
        let events: Vec<ChatEvent> = (0..25)
            .map(|i| {
                let mut e = sample(1_700_000_000_000 + i, &format!("e{i:02}"));
                e.payload = serde_json::json!({"text": "x".repeat(100 * (i as usize % 3))}).into();
                e
            })
            .collect();
        let cache = cache(true);
        let whole = cache.mirror_call(&events, 3, 0);
        let stride = 9;
        for (max_events, max_bytes) in [(10, usize::MAX), (usize::MAX, 2_000), (4, 1_500)] {
            let calls = cache.mirror_calls(&events, 3, 0, max_events, max_bytes);
            assert!(calls.len() > 1, "{max_events} / {max_bytes}: one call");
            let mut keys = Vec::new();
            let mut args = Vec::new();
            for (n, call) in calls.iter().enumerate() {
                let count = (call.keys.len() - 4) / 3;
                assert!((1..=max_events).contains(&count));
                assert_eq!(call.args.len(), 8 + stride * count);
                assert!(count == 1 || measure(call, (0, 0), true) <= max_bytes);
                assert_eq!(call.keys[..4], whole.keys[..4]);
                // The lifecycle count goes with the first call only.
                assert_eq!(call.args[6], if n == 0 { "3" } else { "0" });
                keys.extend_from_slice(&call.keys[4..]);
                args.extend_from_slice(&call.args[8..]);
            }
            // Together, exactly the events of the single call, in its order.
            assert_eq!(keys, whole.keys[4..]);
            assert_eq!(args, whole.args[8..]);
        }
        assert_eq!(
            json_string_bytes("a\"\n\u{1}é"),
            "a\"\n\u{1}é".len() + 2 + 5 + 3
        );
        assert_eq!(
            json_string_bytes(&serde_json::to_string("a\"\n\u{1}é").unwrap()[1..]) - 3,
            serde_json::to_string(&serde_json::to_string("a\"\n\u{1}é").unwrap()[1..])
                .unwrap()
                .len()
                - 2
        );
    }
}
