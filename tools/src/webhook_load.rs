//! A bounded load generator for the `ably-events` handler, in process, against real
//! stores: concurrent senders deliver signed Ably batches (a share of them twice, as Ably
//! redelivers), then every event is checked in DynamoDB (exactly once) and in its Redis
//! list (at most once). Used by the `webhook-load` binary (`scripts/load`) and by a small
//! smoke test in the integration suite.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use chat_core::ably::webhook::signature::sign;
use chat_core::handlers::ably_events::{handle, EventsState};
use lambda_http::{Context, RequestExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// The events function's Lambda timeout (`template.yaml`): each delivery is invoked with
/// this much time left, as Lambda would.
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(30);
/// Ably's first retries of a refused batch (it keeps trying for 5 minutes).
const RETRY_DELAYS_MS: [u64; 5] = [1000, 1414, 2000, 2828, 4000];

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub events: usize,
    pub senders: usize,
    pub batch_size: usize,
    pub conversations: usize,
    /// Share of batches Ably delivers a second time, in percent.
    pub redeliver_percent: u32,
    pub seed: u64,
}

impl Default for LoadPlan {
    fn default() -> Self {
        LoadPlan {
            events: 20_000,
            senders: 50,
            batch_size: 50,
            conversations: 200,
            redeliver_percent: 10,
            seed: 1,
        }
    }
}

/// The webhook key Ably signs with.
#[derive(Clone)]
pub struct Signer {
    pub key_name: String,
    pub secret: String,
}

/// One webhook body and the events in it, as (conversation, id).
#[derive(Debug, Clone)]
pub struct Batch {
    pub body: Vec<u8>,
    pub events: Vec<(String, String)>,
}

/// Ably batched webhooks (`items[].data.messages[]`, grouped by channel) holding
/// `plan.events` unique chat messages spread over `plan.conversations` conversations.
/// `run` names the run, so ids and conversations never collide with another run's.
pub fn batches(plan: &LoadPlan, run: &str) -> Vec<Batch> {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let size = plan.batch_size.max(1);
    let conversations = plan.conversations.max(1);
    // An hour ago: recent enough to be inside any retention, which runs from an event's time.
    let start_ms = chrono::Utc::now().timestamp_millis() - 3_600_000;
    (0..plan.events.div_ceil(size))
        .map(|b| {
            let mut channels: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            let mut events = Vec::with_capacity(size);
            for n in b * size..((b + 1) * size).min(plan.events) {
                let conversation = format!("{run}-{}", rng.random_range(0..conversations));
                let id = format!("{run}:{n}:0");
                let text = format!("message {n} of the load run");
                channels.entry(conversation.clone()).or_default().push(json!({
                    "id": id, "clientId": format!("customer-{conversation}"),
                    "connectionId": format!("{run}-conn"), "timestamp": start_ms + n as i64,
                    "name": "message:user", "encoding": "json",
                    "data": json!({"text": text, "locale": "en"}).to_string(),
                }));
                events.push((conversation, id));
            }
            let items: Vec<Value> = channels
                .into_iter()
                .map(|(conversation, messages)| {
                    json!({
                        "webhookId": run, "source": "channel.message", "serial": format!("{run}:{b}"),
                        "timestamp": start_ms + (b * size) as i64, "name": "channel.message",
                        "data": {"channelId": format!("conversation:{conversation}"),
                                 "site": "local", "messages": messages},
                    })
                })
                .collect();
            Batch {
                body: json!({ "items": items }).to_string().into_bytes(),
                events,
            }
        })
        .collect()
}

/// The order deliveries are made in: every batch once, and `redeliver_percent` of them a
/// second time, somewhere after the first delivery (possibly while it is in flight).
pub fn schedule(plan: &LoadPlan, batches: usize) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ 0x5eed);
    let mut order: Vec<usize> = (0..batches).collect();
    for batch in 0..batches {
        if rng.random_range(0..100) < plan.redeliver_percent {
            let position = order.iter().position(|&b| b == batch).unwrap_or(0);
            let at = rng.random_range(position + 1..=order.len());
            order.insert(at, batch);
        }
    }
    order
}

/// One handler call.
#[derive(Debug, Clone)]
struct Call {
    batch: usize,
    status: u16,
    latency: Duration,
    /// Events the Redis mirror pushed (received - duplicates), when it confirmed.
    pushed: Option<u64>,
}

/// What the senders saw.
#[derive(Debug, Clone)]
pub struct RunStats {
    pub deliveries: usize,
    /// Deliveries of a batch already delivered (the planned redeliveries and any retries).
    pub redeliveries: usize,
    pub retries: usize,
    pub statuses: BTreeMap<u16, usize>,
    pub elapsed: Duration,
    pub latency: Percentiles,
    /// Batches never answered 200, even after Ably's retries.
    pub failed_batches: usize,
    /// Events the Redis mirror reported as newly pushed, over every delivery.
    pub pushed_to_cache: u64,
    /// Deliveries where the Redis mirror did not confirm (answered without the cache).
    pub uncached_deliveries: usize,
}

/// Handler latency per delivery (nearest rank).
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    pub fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort();
        let rank = |p: f64| {
            samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1]
        };
        Percentiles {
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: samples[samples.len() - 1],
        }
    }
}

/// Delivers `batches` in `order` from `plan.senders` concurrent senders, each batch
/// retried like Ably (a few times, with backoff) until it is answered 200.
pub async fn deliver(
    state: Arc<EventsState>,
    signer: &Signer,
    plan: &LoadPlan,
    batches: Arc<Vec<Batch>>,
    order: Vec<usize>,
) -> RunStats {
    let order = Arc::new(order);
    let next = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(Mutex::new(Vec::with_capacity(order.len() + 16)));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let senders: Vec<_> = (0..plan.senders.max(1))
        .map(|_| {
            let (state, batches, order, next, calls, failed, signer) = (
                Arc::clone(&state),
                Arc::clone(&batches),
                Arc::clone(&order),
                Arc::clone(&next),
                Arc::clone(&calls),
                Arc::clone(&failed),
                signer.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let slot = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&batch) = order.get(slot) else { break };
                    let mut stored = false;
                    for delay in std::iter::once(0).chain(RETRY_DELAYS_MS) {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        let call = call(&state, &signer, &batches[batch], batch).await;
                        stored = call.status == 200;
                        calls.lock().unwrap_or_else(|e| e.into_inner()).push(call);
                        if stored {
                            break;
                        }
                    }
                    if !stored {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for sender in senders {
        if let Err(err) = sender.await {
            // A panicking handler is a finding, not something to hide.
            std::panic::resume_unwind(err.into_panic());
        }
    }
    let elapsed = started.elapsed();
    let calls = std::mem::take(&mut *calls.lock().unwrap_or_else(|e| e.into_inner()));

    let mut statuses = BTreeMap::new();
    let mut seen = HashSet::new();
    let mut redeliveries = 0;
    for c in &calls {
        *statuses.entry(c.status).or_insert(0) += 1;
        if !seen.insert(c.batch) {
            redeliveries += 1;
        }
    }
    RunStats {
        deliveries: calls.len(),
        redeliveries,
        retries: calls.len() - order.len(),
        statuses,
        elapsed,
        latency: Percentiles::of(calls.iter().map(|c| c.latency).collect()),
        failed_batches: failed.load(Ordering::Relaxed),
        pushed_to_cache: calls.iter().filter_map(|c| c.pushed).sum(),
        uncached_deliveries: calls
            .iter()
            .filter(|c| c.status == 200 && c.pushed.is_none())
            .count(),
    }
}

/// One delivery as Lambda would invoke the function for API Gateway.
async fn call(state: &EventsState, signer: &Signer, batch: &Batch, index: usize) -> Call {
    let request = api_gateway_request(signer, &batch.body);
    let mut context = Context::default();
    context.request_id = format!("load-{index}");
    context.deadline =
        (chrono::Utc::now().timestamp_millis() as u64) + LAMBDA_TIMEOUT.as_millis() as u64;
    let request = request.with_lambda_context(context);
    let started = Instant::now();
    let response = handle(state, request).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    let receipt: Value = serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null);
    let pushed = match (status, receipt.get("cache")) {
        (200, None) => Some(
            receipt["received"]
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(receipt["duplicates"].as_u64().unwrap_or(0)),
        ),
        _ => None,
    };
    Call {
        batch: index,
        status,
        latency,
        pushed,
    }
}

/// The API Gateway HTTP API (v2) event Ably's POST becomes, as the Lambda runtime
/// deserialises it.
fn api_gateway_request(signer: &Signer, body: &[u8]) -> lambda_http::Request {
    let event = json!({
        "version": "2.0",
        "routeKey": "POST /api/ably/events",
        "rawPath": "/api/ably/events",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "x-ably-key": signer.key_name,
            "x-ably-signature": sign(&signer.secret, body),
        },
        "requestContext": {
            "accountId": "000000000000", "apiId": "load", "domainName": "localhost",
            "domainPrefix": "localhost", "requestId": "load", "routeKey": "POST /api/ably/events",
            "stage": "$default", "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "POST", "path": "/api/ably/events", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "webhook-load"}
        },
        "body": String::from_utf8_lossy(body),
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string())
        .unwrap_or_else(|e| panic!("the load generator built an invalid API Gateway event: {e}"))
}

/// What the stores hold after a run.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    pub expected: usize,
    /// Event items in the table (all, and distinct (conversation, id) pairs).
    pub archived: usize,
    pub archived_distinct: usize,
    pub missing_from_archive: usize,
    pub unexpected_in_archive: usize,
    /// Entries in the conversations' Redis lists.
    pub cached: usize,
    pub cached_twice: usize,
    pub foreign_in_cache: usize,
}

impl Verification {
    /// Every event in DynamoDB exactly once, none twice in Redis, nothing unexpected.
    pub fn passed(&self) -> bool {
        self.archived == self.expected
            && self.archived_distinct == self.expected
            && self.missing_from_archive == 0
            && self.unexpected_in_archive == 0
            && self.cached_twice == 0
            && self.foreign_in_cache == 0
    }
}

/// Reads back both stores and compares them with `batches`.
pub async fn verify(state: &EventsState, batches: &[Batch]) -> anyhow::Result<Verification> {
    let expected: HashSet<(&str, &str)> = batches
        .iter()
        .flat_map(|b| b.events.iter().map(|(c, id)| (c.as_str(), id.as_str())))
        .collect();
    let mut result = Verification {
        expected: expected.len(),
        ..Verification::default()
    };

    let archived = scan_events(state).await?;
    result.archived = archived.len();
    let distinct: HashSet<(&str, &str)> = archived
        .iter()
        .map(|(c, id)| (c.as_str(), id.as_str()))
        .collect();
    result.archived_distinct = distinct.len();
    result.missing_from_archive = expected.difference(&distinct).count();
    result.unexpected_in_archive = distinct.difference(&expected).count();

    let mut by_conversation: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (conversation, id) in &expected {
        by_conversation.entry(conversation).or_default().insert(id);
    }
    let conversations: Vec<&str> = by_conversation.keys().copied().collect();
    for chunk in conversations.chunks(50) {
        let commands: Vec<Vec<String>> = chunk
            .iter()
            .map(|c| {
                vec![
                    "LRANGE".to_owned(),
                    state.stores.cache.keys().events(c),
                    "0".to_owned(),
                    "-1".to_owned(),
                ]
            })
            .collect();
        let replies = state.stores.cache.redis().pipeline(&commands).await?;
        for (conversation, reply) in chunk.iter().zip(replies) {
            let list = reply.map_err(|e| anyhow::anyhow!("LRANGE failed: {e}"))?;
            let mut seen = HashSet::new();
            for entry in list.as_array().map(Vec::as_slice).unwrap_or_default() {
                let event: Value = entry
                    .as_str()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or(Value::Null);
                let id = event["id"].as_str().unwrap_or_default().to_owned();
                result.cached += 1;
                if !by_conversation[conversation].contains(id.as_str()) {
                    result.foreign_in_cache += 1;
                }
                if !seen.insert(id) {
                    result.cached_twice += 1;
                }
            }
        }
    }
    Ok(result)
}

/// (conversation, id) of every event item in the table, with 4 parallel scan segments.
async fn scan_events(state: &EventsState) -> anyhow::Result<Vec<(String, String)>> {
    const SEGMENTS: i32 = 4;
    let segments = (0..SEGMENTS).map(|segment| async move {
        let mut found = Vec::new();
        let mut start = None;
        // Each page is up to 1 MB; far more pages than any run writes.
        for _ in 0..100_000 {
            let page = state
                .stores
                .archive
                .client()
                .scan()
                .table_name(state.stores.archive.table())
                .segment(segment)
                .total_segments(SEGMENTS)
                .projection_expression("conversation_id, id")
                .set_exclusive_start_key(start)
                .send()
                .await?;
            let text = |item: &HashMap<String, AttributeValue>, name: &str| {
                item.get(name)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            found.extend(
                page.items()
                    .iter()
                    .map(|item| (text(item, "conversation_id"), text(item, "id"))),
            );
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok::<_, anyhow::Error>(found),
            }
        }
        anyhow::bail!("table scan did not end")
    });
    let mut all = Vec::new();
    for segment in futures::future::join_all(segments).await {
        all.extend(segment?);
    }
    Ok(all)
}

/// Deletes the run's table and Redis keys.
pub async fn clean_up(state: &EventsState) -> anyhow::Result<()> {
    state
        .stores
        .archive
        .client()
        .delete_table()
        .table_name(state.stores.archive.table())
        .send()
        .await?;
    let pattern = format!("{}*", state.stores.cache.keys().prefix());
    let mut cursor = "0".to_owned();
    for _ in 0..100_000 {
        let reply = state
            .stores
            .cache
            .redis()
            .command(&["SCAN", &cursor, "MATCH", &pattern, "COUNT", "1000"])
            .await?;
        cursor = reply[0].as_str().unwrap_or("0").to_owned();
        let keys: Vec<String> = reply[1]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if !keys.is_empty() {
            let mut del = vec!["DEL".to_owned()];
            del.extend(keys);
            state.stores.cache.redis().command(&del).await?;
        }
        if cursor == "0" {
            return Ok(());
        }
    }
    anyhow::bail!("SCAN did not end")
}

/// The run passed: every batch was stored, every event is in DynamoDB exactly once and at
/// most once in Redis, and (when Redis confirmed every delivery) Redis pushed each event
/// exactly once.
pub fn passed(stats: &RunStats, verification: &Verification) -> bool {
    verification.passed()
        && stats.failed_batches == 0
        && (stats.uncached_deliveries > 0 || stats.pushed_to_cache == verification.expected as u64)
}

/// A run's numbers and verdict, for people.
pub fn report(plan: &LoadPlan, stats: &RunStats, verification: &Verification) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let events_per_s = plan.events as f64 / stats.elapsed.as_secs_f64();
    let statuses: Vec<String> = stats
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    format!(
        "webhook load: {events} events in batches of {batch} over {conversations} conversations, \
         {senders} concurrent senders, {redeliver}% redelivered\n\
         deliveries   {deliveries} ({redeliveries} redeliveries, {retries} retries after a refusal; {statuses})\n\
         time         {elapsed:.2} s: {events_per_s:.0} events/s, {deliveries_per_s:.1} deliveries/s\n\
         latency      per delivery p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms, max {max:.1} ms\n\
         dynamodb     {archived} items, {distinct} distinct, {missing} missing, {unexpected} unexpected (expected {expected})\n\
         redis        {cached} list entries, {twice} twice, {foreign} foreign; pushed {pushed} new, {uncached} deliveries without the cache\n\
         verdict      {verdict}",
        events = plan.events,
        batch = plan.batch_size,
        conversations = plan.conversations,
        senders = plan.senders,
        redeliver = plan.redeliver_percent,
        deliveries = stats.deliveries,
        redeliveries = stats.redeliveries,
        retries = stats.retries,
        statuses = statuses.join(", "),
        elapsed = stats.elapsed.as_secs_f64(),
        deliveries_per_s = stats.deliveries as f64 / stats.elapsed.as_secs_f64(),
        p50 = ms(stats.latency.p50),
        p95 = ms(stats.latency.p95),
        p99 = ms(stats.latency.p99),
        max = ms(stats.latency.max),
        archived = verification.archived,
        distinct = verification.archived_distinct,
        missing = verification.missing_from_archive,
        unexpected = verification.unexpected_in_archive,
        expected = verification.expected,
        cached = verification.cached,
        twice = verification.cached_twice,
        foreign = verification.foreign_in_cache,
        pushed = stats.pushed_to_cache,
        uncached = stats.uncached_deliveries,
        verdict = if passed(stats, verification) {
            "PASS: every event in DynamoDB exactly once and at most once in Redis".to_owned()
        } else {
            format!("FAIL ({} batches never stored)", stats.failed_batches)
        },
    )
}
