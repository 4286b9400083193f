//! Where chat events live: the Redis hot cache (Upstash, 24 h sliding, newest first) and
//! the DynamoDB archive (90 days), plus the context loader that reads recent history
//! from the cache and falls back to the archive.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::stream::{self, StreamExt};
use rand::Rng;
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

use crate::cursor::{position_cmp, EventCursor};
use crate::dynamo::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use crate::ratelimit::{RateLimiter, Usage};
use crate::redis::{RedisClient, RedisError};
use crate::webhook::{ChatEvent, WebhookBatch};

/// BatchWriteItem takes at most 25 items.
pub const DYNAMO_BATCH_SIZE: usize = 25;
/// Chunks written at once; keeps a 1000-event batch well inside table throughput bursts.
const DYNAMO_CONCURRENCY: usize = 8;
/// Conversation under which signed but unparseable bodies are kept.
pub const DEAD_LETTER_CONVERSATION: &str = "_dead_letter";
/// Samples kept per latency series for the analytics percentiles.
const SAMPLE_CAP: usize = 10_000;

/// Redis key names, all under one optional prefix (several apps or environments can
/// share one Redis database).
#[derive(Debug, Clone, Default)]
pub struct Keys {
    pub prefix: String,
}

impl Keys {
    pub fn events(&self, conversation_id: &str) -> String {
        format!("{}chat:conversation:{conversation_id}:events", self.prefix)
    }
    pub fn marker(&self, event_id: &str) -> String {
        format!("{}chat:event:{event_id}", self.prefix)
    }
    pub fn active_conversations(&self) -> String {
        format!("{}stats:active", self.prefix)
    }
    pub fn minute(&self, minute: i64) -> String {
        format!("{}stats:minute:{minute}", self.prefix)
    }
    pub fn ai_duration_samples(&self) -> String {
        format!("{}stats:samples:ai_duration_ms", self.prefix)
    }
    pub fn queue_duration_samples(&self) -> String {
        format!("{}stats:samples:queue_duration_ms", self.prefix)
    }
}

/// What mirroring a batch into Redis did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheOutcome {
    pub stored: usize,
    pub duplicates: usize,
}

/// Per event: skip ids already seen (marker with TTL), push onto the conversation list,
/// and update the analytics `ably-stats` reads. Each touched list is trimmed and its TTL
/// refreshed once. Everything happens in this one script, one REST round trip per batch.
///
/// With the pub/sub bridge on (`ARGV[5]` is `1`), each event carries a seventh argument,
/// its bridge envelope (empty for events that are not bridged), published on
/// `{prefix}chat:{conversation}` when, and only when, the event is new. Events come oldest
/// first, so each conversation's subscribers see them in order.
const MIRROR_SCRIPT: &str = r#"
local p = ARGV[1]
local ttl = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local bridge = ARGV[5] == '1'
local lifecycle = tonumber(ARGV[6])
local cap = tonumber(ARGV[7])
local stride = bridge and 7 or 6
local stored, dups, warn, viol = 0, 0, 0, 0
local touched = {}
local active = p .. 'stats:active'
local ai_key = p .. 'stats:samples:ai_duration_ms'
local queue_key = p .. 'stats:samples:queue_duration_ms'
for i = 8, #ARGV, stride do
  local id, conv, json, etype, ai, queue = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5]
  if redis.call('SET', p .. 'chat:event:' .. id, '1', 'NX', 'EX', ttl) then
    local list = p .. 'chat:conversation:' .. conv .. ':events'
    redis.call('LPUSH', list, json)
    touched[list] = true
    redis.call('ZADD', active, now, conv)
    if etype == 'sla:warning' then warn = warn + 1 elseif etype == 'sla:violation' then viol = viol + 1 end
    if ai ~= '' then redis.call('ZADD', ai_key, now, ai .. '|' .. id) end
    if queue ~= '' then redis.call('ZADD', queue_key, now, queue .. '|' .. id) end
    if bridge and ARGV[i+6] ~= '' then redis.call('PUBLISH', p .. 'chat:' .. conv, ARGV[i+6]) end
    stored = stored + 1
  else
    dups = dups + 1
  end
end
for list, _ in pairs(touched) do
  redis.call('LTRIM', list, 0, max - 1)
  redis.call('EXPIRE', list, ttl)
end
if stored > 0 or lifecycle > 0 then
  local bucket = p .. 'stats:minute:' .. math.floor(now / 60000)
  redis.call('HINCRBY', bucket, 'events', stored)
  if warn > 0 then redis.call('HINCRBY', bucket, 'sla:warning', warn) end
  if viol > 0 then redis.call('HINCRBY', bucket, 'sla:violation', viol) end
  if lifecycle > 0 then redis.call('HINCRBY', bucket, 'lifecycle', lifecycle) end
  redis.call('EXPIRE', bucket, 7200)
  local hour_ago = now - 3600000
  for _, key in ipairs({active, ai_key, queue_key}) do
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. hour_ago)
    redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
    redis.call('EXPIRE', key, 7200)
  end
end
return {stored, dups}
"#;

/// Refills an empty conversation list from the archive (newest first) and marks the ids
/// as seen, so a later redelivery of the same events does not push them twice.
const REFILL_SCRIPT: &str = r#"
local list = KEYS[1]
local ttl = tonumber(ARGV[1])
local prefix = ARGV[2]
if redis.call('EXISTS', list) == 0 then
  for i = 3, #ARGV, 2 do
    redis.call('RPUSH', list, ARGV[i + 1])
    redis.call('SET', prefix .. 'chat:event:' .. ARGV[i], '1', 'NX', 'EX', ttl)
  end
  redis.call('EXPIRE', list, ttl)
  return 1
end
return 0
"#;

/// A poll in one round trip: counts the caller's request exactly as the rate limiter does
/// (`KEYS[1]`, window `ARGV[1]` ms), and only within the limit (`ARGV[2]`) reads the
/// conversation's whole cached list (`KEYS[2]`) -> `{count, ms until reset, list}`.
const POLL_SCRIPT: &str = concat!(
    crate::ratelimit::count_hit_lua!(),
    "local ttl = redis.call('PTTL', KEYS[1])
if n > tonumber(ARGV[2]) then return {n, ttl, {}} end
return {n, ttl, redis.call('LRANGE', KEYS[2], 0, -1)}"
);

/// The Redis hot cache of recent events per conversation.
#[derive(Debug, Clone)]
pub struct EventCache {
    pub redis: RedisClient,
    pub keys: Keys,
    pub ttl_seconds: u64,
    pub max_events: u32,
    pub pubsub_bridge: bool,
}

impl EventCache {
    /// The `EVAL` arguments mirroring `events` (sorted oldest first, so the list ends up
    /// newest first), with each event's bridge envelope when the bridge is on. Pure, so it
    /// can be benchmarked and inspected.
    pub fn mirror_args(&self, events: &[ChatEvent], lifecycle: usize, now_ms: i64) -> Vec<String> {
        let mut order: Vec<&ChatEvent> = events.iter().collect();
        order.sort_by(|a, b| (&a.occurred_at, &a.id).cmp(&(&b.occurred_at, &b.id)));
        let stride = if self.pubsub_bridge { 7 } else { 6 };
        let mut args = Vec::with_capacity(7 + stride * events.len());
        args.push(self.keys.prefix.clone());
        args.push(self.ttl_seconds.to_string());
        args.push(self.max_events.to_string());
        args.push(now_ms.to_string());
        args.push(if self.pubsub_bridge { "1" } else { "0" }.to_owned());
        args.push(lifecycle.to_string());
        args.push(SAMPLE_CAP.to_string());
        for event in order {
            args.push(event.id.clone());
            args.push(event.conversation_id.clone());
            args.push(serde_json::to_string(event).unwrap_or_default());
            args.push(event.event_type.clone());
            let (ai, queue) = timing_samples(event);
            args.push(ai);
            args.push(queue);
            if self.pubsub_bridge {
                args.push(crate::bridge::envelope(event).unwrap_or_default());
            }
        }
        args
    }

    /// Mirrors a batch in one round trip.
    pub async fn mirror(
        &self,
        events: &[ChatEvent],
        lifecycle: usize,
        now_ms: i64,
    ) -> Result<CacheOutcome, RedisError> {
        if events.is_empty() && lifecycle == 0 {
            return Ok(CacheOutcome::default());
        }
        let args = self.mirror_args(events, lifecycle, now_ms);
        let reply = self
            .redis
            .eval(MIRROR_SCRIPT, &[] as &[&str], &args)
            .await?;
        let counts = reply
            .as_array()
            .filter(|a| a.len() == 2)
            .and_then(|a| Some((a[0].as_u64()?, a[1].as_u64()?)))
            .ok_or_else(|| {
                RedisError::Protocol("mirror script returned an unexpected value".into())
            })?;
        Ok(CacheOutcome {
            stored: counts.0 as usize,
            duplicates: counts.1 as usize,
        })
    }

    /// The newest `limit` cached events of a conversation, newest first.
    pub async fn recent(
        &self,
        conversation_id: &str,
        limit: usize,
    ) -> Result<Vec<ChatEvent>, RedisError> {
        let stop = limit.saturating_sub(1).to_string();
        let reply = self
            .redis
            .command(&["LRANGE", &self.keys.events(conversation_id), "0", &stop])
            .await?;
        Self::cached_events(&reply)
    }

    /// The events of an `LRANGE` reply on a conversation list, newest first.
    pub fn cached_events(reply: &Value) -> Result<Vec<ChatEvent>, RedisError> {
        let Value::Array(items) = reply else {
            return Err(RedisError::Protocol(
                "LRANGE did not return an array".into(),
            ));
        };
        let mut events = list_events(items);
        sort_newest_first(&mut events);
        Ok(events)
    }

    /// Counts one request of `caller_id` against `limiter` and, within its limit, reads
    /// every cached event of the conversation (in list order), in one round trip.
    pub async fn counted_window(
        &self,
        conversation_id: &str,
        limiter: &RateLimiter,
        caller_id: &str,
    ) -> Result<(Usage, Option<Vec<ChatEvent>>), RedisError> {
        let reply = self
            .redis
            .eval(
                POLL_SCRIPT,
                &[limiter.key(caller_id), self.keys.events(conversation_id)],
                &[
                    limiter.window_ms().to_string(),
                    limiter.limit().max.to_string(),
                ],
            )
            .await?;
        let unexpected = || RedisError::Protocol(format!("poll script answered {reply}"));
        let [count, ttl, list] = reply.as_array().map(Vec::as_slice).unwrap_or_default() else {
            return Err(unexpected());
        };
        let (Some(usage), Some(list)) =
            (limiter.usage(count.as_i64(), ttl.as_i64()), list.as_array())
        else {
            return Err(unexpected());
        };
        if usage.count > u64::from(limiter.limit().max) {
            return Ok((usage, None));
        }
        Ok((usage, Some(list_events(list))))
    }

    /// Puts archive events back into an empty cache list.
    pub async fn refill(
        &self,
        conversation_id: &str,
        newest_first: &[ChatEvent],
    ) -> Result<(), RedisError> {
        if newest_first.is_empty() {
            return Ok(());
        }
        let mut args = vec![self.ttl_seconds.to_string(), self.keys.prefix.clone()];
        for event in newest_first.iter().take(self.max_events as usize) {
            args.push(event.id.clone());
            args.push(serde_json::to_string(event).unwrap_or_default());
        }
        self.redis
            .eval(REFILL_SCRIPT, &[self.keys.events(conversation_id)], &args)
            .await
            .map(|_| ())
    }
}

/// The events of a conversation list's entries, in list order; an entry that is not an
/// event is passed over.
fn list_events(entries: &[Value]) -> Vec<ChatEvent> {
    entries
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|s| serde_json::from_str(s).ok())
        .collect()
}

/// `message:ai` timing fields the analytics percentiles are computed from.
fn timing_samples(event: &ChatEvent) -> (String, String) {
    if event.event_type != "message:ai" {
        return (String::new(), String::new());
    }
    let timing = event.payload.get("timing");
    let field = |name: &str| {
        timing
            .and_then(|t| t.get(name))
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    (field("ai_duration_ms"), field("queue_duration_ms"))
}

pub fn sort_newest_first(events: &mut [ChatEvent]) {
    events.sort_by(|a, b| (&b.occurred_at, &b.id).cmp(&(&a.occurred_at, &a.id)));
}

/// The page after `cursor` out of a conversation's cached events, when the cache provably
/// holds every event after it; `None` sends the reader to DynamoDB.
///
/// The list keeps the most recently pushed events, so once it has been trimmed or has
/// expired, only positions from its oldest event on are known to be complete. Without a
/// cursor the client wants the oldest retained event, which only DynamoDB knows.
pub fn cached_page(
    mut cached: Vec<ChatEvent>,
    cursor: Option<&EventCursor>,
    limit: usize,
) -> Option<Vec<ChatEvent>> {
    let cursor = cursor?;
    cached.sort_by(|a, b| (&a.occurred_at, &a.id).cmp(&(&b.occurred_at, &b.id)));
    cached.dedup_by(|a, b| a.occurred_at == b.occurred_at && a.id == b.id);
    if position_cmp(cached.first()?, cursor.key()).is_gt() {
        return None;
    }
    Some(
        cached
            .into_iter()
            .filter(|e| cursor.precedes(e))
            .take(limit)
            .collect(),
    )
}

/// Why the archive could not take everything.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("dynamodb request failed: {0}")]
    Request(String),
    #[error("{0} items still unprocessed when the time budget ran out")]
    Unprocessed(usize),
    #[error("dynamodb did not answer within the time budget")]
    Timeout,
}

/// The DynamoDB archive of chat events.
#[derive(Debug, Clone)]
pub struct EventArchive {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    pub retention_days: u32,
}

impl EventArchive {
    /// One `PutRequest` per distinct event key (a batch may not name a key twice).
    /// Pure, so it can be benchmarked and inspected.
    pub fn write_requests(&self, events: &[ChatEvent], now_secs: i64) -> Vec<WriteRequest> {
        let expires_at = (now_secs + i64::from(self.retention_days) * 86_400).to_string();
        let mut seen = HashSet::with_capacity(events.len());
        let mut requests = Vec::with_capacity(events.len());
        for event in events {
            // The item key is (conversation_id, occurred_at#id).
            if !seen.insert((
                event.conversation_id.as_str(),
                event.occurred_at.as_str(),
                event.id.as_str(),
            )) {
                continue;
            }
            let item = event_item(event, event.event_key(), &expires_at);
            if let Ok(put) = PutRequest::builder().set_item(Some(item)).build() {
                requests.push(WriteRequest::builder().put_request(put).build());
            }
        }
        requests
    }

    /// Writes every event (chunks of 25, concurrently), retrying unprocessed items with
    /// exponential backoff and jitter until `deadline`. Redelivered events overwrite
    /// themselves with the same keys, so a retry never duplicates.
    pub async fn put_all(
        &self,
        events: &[ChatEvent],
        now_secs: i64,
        deadline: Instant,
    ) -> Result<usize, ArchiveError> {
        let requests = self.write_requests(events, now_secs);
        let count = requests.len();
        let mut chunks = Vec::with_capacity(count.div_ceil(DYNAMO_BATCH_SIZE));
        let mut rest = requests;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(DYNAMO_BATCH_SIZE));
            chunks.push(std::mem::replace(&mut rest, tail));
        }
        let results: Vec<Result<(), ArchiveError>> = stream::iter(chunks)
            .map(|chunk| self.write_chunk(chunk, deadline))
            .buffer_unordered(DYNAMO_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(count)
    }

    async fn write_chunk(
        &self,
        mut requests: Vec<WriteRequest>,
        deadline: Instant,
    ) -> Result<(), ArchiveError> {
        let mut attempt: u32 = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ArchiveError::Unprocessed(requests.len()));
            }
            let call = self
                .client
                .batch_write_item()
                .request_items(self.table.clone(), requests.clone())
                .send();
            let output = tokio::time::timeout(remaining, call)
                .await
                .map_err(|_| ArchiveError::Timeout)?
                .map_err(|e| ArchiveError::Request(describe_sdk_error(&e)))?;
            let unprocessed = output
                .unprocessed_items
                .and_then(|mut m| m.remove(&self.table))
                .unwrap_or_default();
            if unprocessed.is_empty() {
                return Ok(());
            }
            attempt += 1;
            let ceiling = Duration::from_millis(50u64.saturating_mul(1 << attempt.min(6)));
            let backoff =
                Duration::from_millis(rand::rng().random_range(0..=ceiling.as_millis() as u64));
            if Instant::now() + backoff >= deadline {
                return Err(ArchiveError::Unprocessed(unprocessed.len()));
            }
            tokio::time::sleep(backoff).await;
            requests = unprocessed;
        }
    }

    /// Keeps a signed body that could not be parsed, keyed by its sha256 (a redelivery
    /// overwrites it). Returns the sha256.
    pub async fn dead_letter(
        &self,
        body: &[u8],
        reason: &str,
        now_secs: i64,
    ) -> Result<String, ArchiveError> {
        let sha = hex::encode(Sha256::digest(body));
        let raw = match std::str::from_utf8(body) {
            Ok(text) => AttributeValue::S(text.to_owned()),
            Err(_) => AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(body)),
        };
        let expires_at = now_secs + i64::from(self.retention_days) * 86_400;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(
                PARTITION_KEY,
                AttributeValue::S(DEAD_LETTER_CONVERSATION.into()),
            )
            .item(SORT_KEY, AttributeValue::S(sha.clone()))
            .item("sha256", AttributeValue::S(sha.clone()))
            .item("raw_body", raw)
            .item("reason", AttributeValue::S(reason.to_owned()))
            .item(
                "received_at",
                AttributeValue::S(
                    crate::webhook::payload::iso_millis(now_secs * 1000).unwrap_or_default(),
                ),
            )
            .item(TTL_ATTRIBUTE, AttributeValue::N(expires_at.to_string()))
            .send()
            .await
            .map_err(|e| ArchiveError::Request(describe_sdk_error(&e)))?;
        Ok(sha)
    }

    /// The newest `limit` unexpired events of a conversation, newest first.
    pub async fn recent(
        &self,
        conversation_id: &str,
        limit: usize,
        now_secs: i64,
    ) -> Result<Vec<ChatEvent>, ArchiveError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :c")
            .filter_expression("#ttl > :now")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":c", AttributeValue::S(conversation_id.to_owned()))
            .expression_attribute_values(":now", AttributeValue::N(now_secs.to_string()))
            .scan_index_forward(false)
            .limit((limit * 2).clamp(10, 1000) as i32);
        Self::collect(query, limit).await
    }

    /// The events of `query`, page after page, until there are `limit` of them or the
    /// partition ends.
    async fn collect(
        query: QueryFluentBuilder,
        limit: usize,
    ) -> Result<Vec<ChatEvent>, ArchiveError> {
        let mut events = Vec::with_capacity(limit);
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = query
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| ArchiveError::Request(describe_sdk_error(&e)))?;
            for item in page.items() {
                if let Some(event) = item_event(item) {
                    events.push(event);
                }
                if events.len() == limit {
                    return Ok(events);
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(events),
            }
        }
    }
}

impl EventArchive {
    /// At most `limit` unexpired events of a conversation strictly after `after` (a sort
    /// key), oldest first. Strongly consistent, so that an event stored before the read
    /// cannot be skipped by a client whose cursor then moves past it.
    pub async fn after(
        &self,
        conversation_id: &str,
        after: Option<&str>,
        limit: usize,
        now_secs: i64,
    ) -> Result<Vec<ChatEvent>, ArchiveError> {
        let mut names = HashMap::from([
            ("#pk".to_owned(), PARTITION_KEY.to_owned()),
            ("#ttl".to_owned(), TTL_ATTRIBUTE.to_owned()),
        ]);
        let mut values = HashMap::from([
            (
                ":c".to_owned(),
                AttributeValue::S(conversation_id.to_owned()),
            ),
            (":now".to_owned(), AttributeValue::N(now_secs.to_string())),
        ]);
        let condition = match after {
            Some(key) => {
                names.insert("#sk".to_owned(), SORT_KEY.to_owned());
                values.insert(":after".to_owned(), AttributeValue::S(key.to_owned()));
                "#pk = :c AND #sk > :after"
            }
            None => "#pk = :c",
        };
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(condition)
            .filter_expression("#ttl > :now")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(true)
            .consistent_read(true)
            .limit(limit.clamp(1, 1000) as i32);
        Self::collect(query, limit).await
    }
}

fn describe_sdk_error<E: std::error::Error + 'static, R>(
    err: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> String {
    use aws_sdk_dynamodb::error::SdkError;
    match err {
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(_) => "connection failed".into(),
        SdkError::ServiceError(e) => {
            let source = e.err().to_string();
            let mut text = format!("service error: {source}");
            text.truncate(200);
            text
        }
        _ => "request failed".into(),
    }
}

fn event_item(
    event: &ChatEvent,
    event_key: String,
    expires_at: &str,
) -> HashMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let mut item = HashMap::with_capacity(11);
    item.insert(PARTITION_KEY.to_owned(), s(&event.conversation_id));
    item.insert(SORT_KEY.to_owned(), AttributeValue::S(event_key));
    item.insert("id".to_owned(), s(&event.id));
    item.insert("event_type".to_owned(), s(&event.event_type));
    item.insert("channel".to_owned(), s(&event.channel));
    item.insert("occurred_at".to_owned(), s(&event.occurred_at));
    item.insert(
        TTL_ATTRIBUTE.to_owned(),
        AttributeValue::N(expires_at.to_owned()),
    );
    if let Some(client_id) = &event.client_id {
        item.insert("client_id".to_owned(), s(client_id));
    }
    if let Some(encoding) = &event.encoding {
        item.insert("encoding".to_owned(), s(encoding));
    }
    if fits_dynamo(&event.payload, 0) {
        item.insert("payload".to_owned(), json_to_attr(&event.payload));
    } else {
        // Too deep or a number DynamoDB cannot hold: keep it exact as JSON text.
        item.insert(
            "payload_json".to_owned(),
            AttributeValue::S(event.payload.to_string()),
        );
    }
    item
}

/// DynamoDB's limits on an archived event: partition keys (the table's and the `by_type`
/// index's) of 1 to 2048 bytes, sort keys up to 1024 bytes, items up to 400 KB.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
pub const MAX_SORT_KEY_BYTES: usize = 1024;
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Why DynamoDB could not hold `event`, if it could not. Such an event would make its
/// whole `BatchWriteItem` chunk fail on every redelivery (and with it the batch, until
/// Ably gives up), so the handler skips it and reports it instead.
pub fn unstorable(event: &ChatEvent) -> Option<&'static str> {
    if event.conversation_id.is_empty() {
        return Some("no channel");
    }
    if event.conversation_id.len() > MAX_PARTITION_KEY_BYTES {
        return Some("channel name longer than a DynamoDB key");
    }
    // The sort key is `{occurred_at}#{id}`.
    if event.occurred_at.len() + 1 + event.id.len() > MAX_SORT_KEY_BYTES {
        return Some("id longer than a DynamoDB key");
    }
    if event.event_type.is_empty() || event.event_type.len() > MAX_PARTITION_KEY_BYTES {
        return Some("name longer than a DynamoDB key");
    }
    if item_bytes(event) > MAX_ITEM_BYTES {
        return Some("event larger than a DynamoDB item");
    }
    None
}

/// Moves the events DynamoDB could not hold out of `batch`, into its skipped reasons.
pub fn skip_unstorable(batch: &mut WebhookBatch) {
    let skipped = &mut batch.skipped;
    let mut index = 0;
    batch.events.retain(|event| {
        index += 1;
        match unstorable(event) {
            Some(reason) => {
                skipped.push(format!("event {}: {reason}", index - 1));
                false
            }
            None => true,
        }
    });
}

/// The size DynamoDB counts for the item [`event_item`] builds (attribute names plus
/// values), rounded up where DynamoDB's own rule is approximate.
fn item_bytes(event: &ChatEvent) -> usize {
    let text = |name: &str, value: &str| name.len() + value.len();
    let mut size = text(PARTITION_KEY, &event.conversation_id)
        + text(SORT_KEY, &event.occurred_at)
        + 1
        + event.id.len()
        + text("id", &event.id)
        + text("event_type", &event.event_type)
        + text("channel", &event.channel)
        + text("occurred_at", &event.occurred_at)
        + TTL_ATTRIBUTE.len()
        + 21;
    if let Some(client_id) = &event.client_id {
        size += text("client_id", client_id);
    }
    if let Some(encoding) = &event.encoding {
        size += text("encoding", encoding);
    }
    size += if fits_dynamo(&event.payload, 0) {
        "payload".len() + attribute_bytes(&event.payload)
    } else {
        "payload_json".len() + event.payload.to_string().len()
    };
    size
}

/// DynamoDB's size of a value: strings their UTF-8 length, numbers at most 21 bytes,
/// lists and maps 3 bytes plus 1 per element (and the names of map entries).
fn attribute_bytes(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 1,
        Value::Number(_) => 21,
        Value::String(s) => s.len(),
        Value::Array(items) => 3 + items.iter().map(|v| 1 + attribute_bytes(v)).sum::<usize>(),
        Value::Object(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + attribute_bytes(v))
                .sum::<usize>()
        }
    }
}

/// DynamoDB nests at most 32 levels and holds numbers up to 38 digits / 1E+126.
fn fits_dynamo(value: &Value, depth: usize) -> bool {
    match value {
        Value::Number(n) => {
            n.as_i64().is_some()
                || n.as_u64().is_some()
                || n.as_f64()
                    .is_some_and(|f| f == 0.0 || (1e-130..9.9e125).contains(&f.abs()))
        }
        Value::Array(items) => depth < 30 && items.iter().all(|v| fits_dynamo(v, depth + 1)),
        Value::Object(map) => {
            depth < 30
                && map
                    .iter()
                    .all(|(k, v)| !k.is_empty() && fits_dynamo(v, depth + 1))
        }
        _ => true,
    }
}

/// JSON -> DynamoDB attribute (objects become maps, arrays lists).
pub fn json_to_attr(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(json_to_attr).collect()),
        Value::Object(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_attr(v)))
                .collect(),
        ),
    }
}

/// DynamoDB attribute -> JSON (the inverse of [`json_to_attr`]).
pub fn attr_to_json(attr: &AttributeValue) -> Value {
    match attr {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| n.parse::<u64>().map(Value::from))
            .ok()
            .or_else(|| {
                n.parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
            })
            .unwrap_or_else(|| Value::String(n.clone())),
        AttributeValue::L(items) => Value::Array(items.iter().map(attr_to_json).collect()),
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), attr_to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        AttributeValue::Ss(items) => {
            Value::Array(items.iter().cloned().map(Value::String).collect())
        }
        _ => Value::Null,
    }
}

/// A stored item back as a chat event; `None` for items that are not events.
pub fn item_event(item: &HashMap<String, AttributeValue>) -> Option<ChatEvent> {
    let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let payload = match (item.get("payload"), s("payload_json")) {
        (Some(attr), _) => attr_to_json(attr),
        (None, Some(text)) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        (None, None) => Value::Null,
    };
    Some(ChatEvent {
        id: s("id")?,
        conversation_id: s(PARTITION_KEY)?,
        channel: s("channel")?,
        event_type: s("event_type")?,
        client_id: s("client_id"),
        payload,
        occurred_at: s("occurred_at")?,
        encoding: s("encoding"),
    })
}

/// Where a conversation's recent history was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistorySource {
    Cache,
    Archive,
}

/// Reads recent history: Redis first; when Redis is empty or down, DynamoDB, and then
/// refills Redis so the next read is hot again.
#[derive(Debug, Clone)]
pub struct ContextLoader {
    pub cache: EventCache,
    pub archive: EventArchive,
}

impl ContextLoader {
    /// The newest `limit` events of a conversation, newest first.
    pub async fn recent_events(
        &self,
        conversation_id: &str,
        limit: usize,
    ) -> Result<(Vec<ChatEvent>, HistorySource), ArchiveError> {
        if conversation_id.starts_with('_') || limit == 0 {
            // Reserved partitions (the dead letters) are never chat history.
            return Ok((Vec::new(), HistorySource::Archive));
        }
        let cached = self.cache.recent(conversation_id, limit).await;
        self.recent_events_after_cache(conversation_id, limit, cached)
            .await
    }

    /// [`Self::recent_events`] when the cache was already read (by a script that did
    /// more in the same round trip): the cached events if there are any, else the
    /// archive's, refilling the cache when it answered.
    pub async fn recent_events_after_cache(
        &self,
        conversation_id: &str,
        limit: usize,
        cached: Result<Vec<ChatEvent>, RedisError>,
    ) -> Result<(Vec<ChatEvent>, HistorySource), ArchiveError> {
        if conversation_id.starts_with('_') || limit == 0 {
            return Ok((Vec::new(), HistorySource::Archive));
        }
        let cache_answered = match cached {
            Ok(events) if !events.is_empty() => return Ok((events, HistorySource::Cache)),
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "redis unavailable, reading history from dynamodb");
                false
            }
        };
        let now_secs = chrono::Utc::now().timestamp();
        let events = self
            .archive
            .recent(conversation_id, limit, now_secs)
            .await?;
        if cache_answered && !events.is_empty() {
            if let Err(e) = self.cache.refill(conversation_id, &events).await {
                tracing::warn!(error = %e, "could not refill the redis history cache");
            }
        }
        Ok((events, HistorySource::Archive))
    }

    /// At most `limit` events strictly after `cursor` (from the oldest retained event
    /// without one), oldest first: from `cached` (the conversation's cache list, when
    /// Redis could be read) if it provably holds them all, else from DynamoDB.
    pub async fn page_after(
        &self,
        conversation_id: &str,
        cursor: Option<&EventCursor>,
        limit: usize,
        cached: Option<Vec<ChatEvent>>,
    ) -> Result<(Vec<ChatEvent>, HistorySource), ArchiveError> {
        if conversation_id.starts_with('_') || limit == 0 {
            // Reserved partitions (the dead letters) are never chat history.
            return Ok((Vec::new(), HistorySource::Archive));
        }
        if let Some(page) = cached.and_then(|c| cached_page(c, cursor, limit)) {
            return Ok((page, HistorySource::Cache));
        }
        let now_secs = chrono::Utc::now().timestamp();
        let events = self
            .archive
            .after(
                conversation_id,
                cursor.map(EventCursor::key),
                limit,
                now_secs,
            )
            .await?;
        Ok((events, HistorySource::Archive))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_and_attributes_round_trip() {
        let value =
            json!({"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "big": 18446744073709551615u64});
        assert_eq!(attr_to_json(&json_to_attr(&value)), value);
    }

    #[test]
    fn events_at_dynamodbs_limits_are_storable_and_past_them_are_not() {
        let event = |conversation: &str, id: &str, name: &str, payload: Value| ChatEvent {
            id: id.into(),
            conversation_id: conversation.into(),
            channel: format!("conversation:{conversation}"),
            event_type: name.into(),
            client_id: None,
            payload,
            occurred_at: "2023-11-14T22:13:20.000Z".into(),
            encoding: None,
        };
        let longest_id = "i".repeat(MAX_SORT_KEY_BYTES - 25);
        let key = "k".repeat(MAX_PARTITION_KEY_BYTES);
        for ok in [
            event("c", "1", "m", json!({"a": [1, "b"]})),
            event(&key, &longest_id, &key, json!("x".repeat(390 * 1024))),
        ] {
            assert_eq!(unstorable(&ok), None);
        }
        for (bad, reason) in [
            (event("", "1", "m", json!(1)), "no channel"),
            (
                event(&format!("{key}k"), "1", "m", json!(1)),
                "channel name longer than a DynamoDB key",
            ),
            (
                event("c", &format!("{longest_id}i"), "m", json!(1)),
                "id longer than a DynamoDB key",
            ),
            (
                event("c", "1", &format!("{key}k"), json!(1)),
                "name longer than a DynamoDB key",
            ),
            (
                event("c", "1", "m", json!("x".repeat(MAX_ITEM_BYTES))),
                "event larger than a DynamoDB item",
            ),
            // Kept as JSON text (too deep for a map): its text length counts.
            (
                event(
                    "c",
                    "1",
                    "m",
                    json!({"deep": nested(40), "s": "\u{1}".repeat(70_000)}),
                ),
                "event larger than a DynamoDB item",
            ),
        ] {
            assert_eq!(unstorable(&bad), Some(reason));
        }
    }

    fn nested(depth: usize) -> Value {
        (0..depth).fold(json!(1), |v, _| json!([v]))
    }

    #[test]
    fn an_event_reads_back_the_same_from_the_cache_and_from_the_archive() {
        // Floats whose shortest text serde_json once parsed back one ulp off.
        let body = json!({"channel": "conversation:f", "name": "m", "timestamp": 1, "id": "f-1",
            "encoding": "json",
            "data": format!(r#"{{"a": {}, "b": [0.1, 1e-7, 123456.789e3]}}"#, "2".repeat(83))})
        .to_string();
        let batch = crate::webhook::parse(format!(r#"{{"items":[{body}]}}"#).as_bytes()).unwrap();
        let event = &batch.events[0];
        assert!(event.payload["a"].is_f64());

        let cached: ChatEvent =
            serde_json::from_str(&serde_json::to_string(event).unwrap()).unwrap();
        assert_eq!(&cached, event, "cache round trip");

        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let archive = EventArchive {
            client: aws_sdk_dynamodb::Client::from_conf(config),
            table: "t".into(),
            retention_days: 1,
        };
        let requests = archive.write_requests(std::slice::from_ref(event), 0);
        let item = requests[0].put_request().unwrap().item();
        assert_eq!(item_event(item).as_ref(), Some(event), "archive round trip");
    }

    fn at(ms: i64, id: &str) -> ChatEvent {
        ChatEvent {
            id: id.into(),
            conversation_id: "c".into(),
            channel: "conversation:c".into(),
            event_type: "message:user".into(),
            client_id: Some("customer-c".into()),
            payload: json!({"text": id}),
            occurred_at: crate::webhook::payload::iso_millis(ms).unwrap(),
            encoding: None,
        }
    }

    fn ids(events: &[ChatEvent]) -> Vec<&str> {
        events.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn the_cache_answers_a_poll_only_from_inside_its_window() {
        // Newest first, as the list holds them, with one event pushed late.
        let list = vec![at(5, "e"), at(3, "c"), at(4, "d"), at(2, "b")];
        let cursor = |e: &ChatEvent| EventCursor::of(e);
        let page = |c: Option<&EventCursor>, limit| cached_page(list.clone(), c, limit);

        assert_eq!(
            page(None, 10),
            None,
            "no cursor: only DynamoDB knows the oldest"
        );
        assert_eq!(
            cached_page(Vec::new(), Some(&cursor(&at(2, "b"))), 10),
            None
        );
        assert_eq!(
            page(Some(&cursor(&at(1, "a"))), 10),
            None,
            "before the window"
        );
        assert_eq!(page(Some(&cursor(&at(2, "a"))), 10), None, "just before it");
        let from_oldest = page(Some(&cursor(&at(2, "b"))), 10).unwrap();
        assert_eq!(ids(&from_oldest), ["c", "d", "e"]);
        assert_eq!(ids(&page(Some(&cursor(&at(3, "c"))), 1).unwrap()), ["d"]);
        assert_eq!(
            ids(&page(Some(&cursor(&at(4, "c"))), 5).unwrap()),
            ["d", "e"]
        );
        assert_eq!(page(Some(&cursor(&at(5, "e"))), 5).unwrap(), Vec::new());
        assert_eq!(page(Some(&cursor(&at(9, "z"))), 5).unwrap(), Vec::new());
        // A doubled entry is served once.
        let doubled = vec![at(3, "c"), at(3, "c"), at(2, "b")];
        assert_eq!(
            ids(&cached_page(doubled, Some(&cursor(&at(2, "b"))), 5).unwrap()),
            ["c"]
        );
    }

    #[test]
    fn the_bridge_adds_one_argument_per_event_only_when_it_is_on() {
        let redis = RedisClient::new(&crate::config::RedisConfig {
            url: "http://127.0.0.1:1".into(),
            token: crate::config::Secret::new("t"),
        });
        let mut cache = EventCache {
            redis,
            keys: Keys::default(),
            ttl_seconds: 60,
            max_events: 10,
            pubsub_bridge: false,
        };
        let mut sms = at(1, "s");
        sms.channel = "sms:u:c".into();
        sms.conversation_id = "sms:u:c".into();
        let events = [at(2, "b"), sms, at(0, "a")];
        let off = cache.mirror_args(&events, 0, 0);
        assert_eq!(off.len(), 7 + 6 * 3);
        assert_eq!(off[4], "0");
        cache.pubsub_bridge = true;
        let on = cache.mirror_args(&events, 0, 0);
        assert_eq!(on.len(), 7 + 7 * 3);
        assert_eq!(on[4], "1");
        // Oldest first; each event's envelope last; not bridged: empty.
        let envelopes: Vec<&str> = on[7..].chunks(7).map(|c| c[6].as_str()).collect();
        assert_eq!(
            envelopes,
            [
                crate::bridge::envelope(&at(0, "a")).unwrap().as_str(),
                "",
                crate::bridge::envelope(&at(2, "b")).unwrap().as_str(),
            ]
        );
        let without: Vec<&String> = on[7..].chunks(7).flat_map(|c| &c[..6]).collect();
        assert_eq!(without, off[7..].iter().collect::<Vec<_>>());
    }

    #[test]
    fn payloads_dynamodb_cannot_hold_are_flagged() {
        assert!(fits_dynamo(&json!({"a": [1, 2.5, "s"]}), 0));
        assert!(!fits_dynamo(&json!({"a": 1e300}), 0));
        assert!(!fits_dynamo(&json!({"": 1}), 0));
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        assert!(!fits_dynamo(&deep, 0));
    }
}
