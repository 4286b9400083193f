//! Fault injection for `ably-events`: real stores that the test itself starts, kills and
//! restarts (a private `redis-server` behind an in-process Upstash REST proxy, a private
//! DynamoDB Local), and a TCP proxy adding latency or resets in front of either store.
//!
//! Whatever happens, afterwards: every event is in DynamoDB exactly once (a 503 only when
//! DynamoDB could not take everything, and Ably's redelivery then stores it all), at most
//! once in its Redis list, history falls back to DynamoDB while Redis is down, and no
//! handler call outlives its time budget (the Lambda deadline, or 10 s without one).

mod cache;
mod processes;
mod tcp_proxy;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client as DynamoClient;
use chat_core::handlers::ably_events::{handle, EventsConfig, EventsState};
use chat_core::storage::history::HistorySource;
use chat_core::storage::redis::RedisClient;
use chat_core::storage::RedisConfig;
use futures::future::join_all;
use lambda_http::{Context, RequestExt};
use serde_json::{json, Value};

use crate::helpers::WEBHOOK_KEY;
use crate::helpers::{body_json, env_with, redis_config, stack_var, unique};
use crate::helpers::{s, signed_webhook};
use processes::{client_for, PrivateDynamo, PrivateRedis};
use tcp_proxy::{Fault, FaultProxy};

/// The handler's budget without a Lambda context.
const DEFAULT_BUDGET: Duration = Duration::from_secs(10);
/// Scheduling on a busy 2-core machine; the handler itself keeps 750 ms in hand.
const SLACK: Duration = Duration::from_millis(1500);

/// How long the handler may take for one delivery.
#[derive(Debug, Clone, Copy)]
enum Budget {
    /// No Lambda context: the handler's own 10 s default.
    Default,
    /// Invoked by Lambda with this much time left.
    Lambda(Duration),
}

impl Budget {
    fn limit(self) -> Duration {
        match self {
            Budget::Default => DEFAULT_BUDGET,
            Budget::Lambda(left) => left,
        }
    }
}

/// A batch as Ably sends it, and the events it holds as (conversation, id).
#[derive(Clone)]
struct Batch {
    body: Vec<u8>,
    events: Vec<(String, String)>,
}

/// `count` batched webhooks of `size` messages each, spread over `conversations`
/// conversations, every event unique and later than the one before.
fn batches(tag: &str, count: usize, size: usize, conversations: usize) -> Vec<Batch> {
    let run = unique(tag);
    (0..count)
        .map(|b| {
            let mut per_channel: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            let mut events = Vec::with_capacity(size);
            for i in 0..size {
                let n = b * size + i;
                let conversation = format!("{run}-c{}", n % conversations);
                let id = format!("{run}-b{b}-e{i}:0:0");
                per_channel
                    .entry(conversation.clone())
                    .or_default()
                    .push(json!({
                        "id": id, "clientId": "customer-1", "connectionId": "conn",
                        "timestamp": 1_700_000_000_000i64 + n as i64,
                        "name": "message:user", "encoding": "json",
                        "data": json!({"text": format!("message {n}")}).to_string(),
                    }));
                events.push((conversation, id));
            }
            let items: Vec<Value> = per_channel
                .into_iter()
                .map(|(conversation, messages)| {
                    json!({
                        "webhookId": "hook", "source": "channel.message", "serial": format!("{run}:{b}"),
                        "timestamp": 1_700_000_000_000i64, "name": "channel.message",
                        "data": {"channelId": format!("conversation:{conversation}"), "site": "local",
                                 "messages": messages},
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

/// An Upstash-compatible REST proxy served in-process in front of `redis_addr`.
struct RestProxy {
    url: String,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RestProxy {
    async fn start(redis_addr: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind REST proxy");
        let addr = listener.local_addr().expect("REST proxy address");
        let task = tokio::spawn(dev_tools::upstash_proxy::serve(
            listener,
            dev_tools::upstash_proxy::ProxyConfig {
                redis_addr,
                token: stack_var("UPSTASH_REDIS_REST_TOKEN"),
                request_counter: None,
            },
        ));
        RestProxy {
            url: format!("http://{addr}"),
            addr,
            task,
        }
    }
}

impl Drop for RestProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn redis_at(url: &str) -> RedisClient {
    RedisClient::new(&RedisConfig {
        url: url.to_owned(),
        ..redis_config()
    })
}

fn socket_addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .expect("a http://ip:port url")
}

/// One delivery's outcome.
struct Delivery {
    status: u16,
    receipt: Value,
}

impl Delivery {
    /// Redis confirmed the mirror (the receipt does not say the cache was unavailable).
    fn cached(&self) -> bool {
        self.status == 200 && self.receipt.get("cache").is_none()
    }
}

/// The handler over given store endpoints, plus direct clients that bypass any fault to
/// check what the stores hold.
struct Rig {
    state: EventsState,
    table: String,
    prefix: String,
    redis: RedisClient,
    dynamo: DynamoClient,
}

impl Rig {
    /// `handler_*`: where the handler's clients go (possibly through a fault);
    /// `check_*`: the same stores reached directly.
    async fn new(
        handler_redis: &str,
        check_redis: &str,
        handler_dynamo: &str,
        check_dynamo: &str,
    ) -> Self {
        let dynamo = client_for(check_dynamo).await;
        let table = unique("faults");
        dev_tools::table::ensure_chat_events_table(&dynamo, &table)
            .await
            .expect("create table");
        let prefix = format!("{}:", unique("f"));
        let config = EventsConfig::load(env_with(&[
            ("CHAT_EVENTS_TABLE", &table),
            ("REDIS_KEY_PREFIX", &prefix),
            ("ABLY_WEBHOOK_KEYS", WEBHOOK_KEY),
            // Keep every event in the lists, so "at most once" covers all of them.
            ("REDIS_EVENT_MAX", "10000"),
            ("EVENT_RETENTION_DAYS", crate::helpers::RETENTION_DAYS),
        ]))
        .expect("config");
        let state = EventsState::with_clients(
            config,
            redis_at(handler_redis),
            client_for(handler_dynamo).await,
        );
        Rig {
            state,
            table,
            prefix,
            redis: redis_at(check_redis),
            dynamo,
        }
    }

    /// Posts a signed body as Ably does and checks the call kept to its budget.
    async fn call(&self, body: &[u8], budget: Budget) -> (u16, Value) {
        let mut req = signed_webhook(body);
        if let Budget::Lambda(left) = budget {
            let now_ms = chrono::Utc::now().timestamp_millis() as u64;
            let mut context = Context::default();
            context.request_id = unique("invocation");
            context.deadline = now_ms + left.as_millis() as u64;
            req = req.with_lambda_context(context);
        }
        let started = Instant::now();
        let res = handle(&self.state, req).await;
        let elapsed = started.elapsed();
        assert!(
            elapsed <= budget.limit() + SLACK,
            "a call took {elapsed:?}, over its budget of {:?}",
            budget.limit()
        );
        (res.status().as_u16(), body_json(&res))
    }

    /// Delivers a batch and checks the answer is one the status policy allows.
    async fn deliver(&self, batch: &Batch, budget: Budget) -> Delivery {
        let (status, receipt) = self.call(&batch.body, budget).await;
        match status {
            200 => assert_eq!(receipt["stored"].as_u64(), Some(batch.events.len() as u64)),
            503 => assert_eq!(receipt["code"], "storage_unavailable"),
            other => panic!("unexpected status {other}: {receipt}"),
        }
        Delivery { status, receipt }
    }

    /// Delivers `batches` concurrently.
    async fn deliver_all(&self, batches: &[Batch], budget: Budget) -> Vec<Delivery> {
        join_all(batches.iter().map(|b| self.deliver(b, budget))).await
    }

    /// Redelivers like Ably (bounded): until the answer is 200.
    async fn deliver_until_stored(&self, batch: &Batch, budget: Budget) -> Delivery {
        for _ in 0..10 {
            let delivery = self.deliver(batch, budget).await;
            if delivery.status == 200 {
                return delivery;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("a batch was still refused after 10 deliveries");
    }

    /// Every event id in the table, as many times as it is there (not the reserved
    /// partitions: the dead letters, the cache epoch).
    async fn archived(&self) -> Vec<(String, String)> {
        crate::helpers::scan_table(&self.dynamo, &self.table)
            .await
            .iter()
            .map(|item| (s(item, "conversation_id"), s(item, "id")))
            .filter(|(conversation, _)| !conversation.starts_with('_'))
            .collect()
    }

    /// The ids in a conversation's cache list, newest first.
    async fn cached_ids(&self, conversation: &str) -> Vec<String> {
        let key = format!("{}chat:conversation:{conversation}:events", self.prefix);
        let list = self
            .redis
            .command(&["LRANGE", &key, "0", "-1"])
            .await
            .expect("LRANGE");
        list.as_array()
            .expect("a list")
            .iter()
            .map(|entry| {
                let event: Value = serde_json::from_str(entry.as_str().expect("a string"))
                    .expect("a cached event");
                event["id"].as_str().expect("an id").to_owned()
            })
            .collect()
    }

    /// DynamoDB holds exactly the events of `batches`, each once.
    async fn assert_archived_exactly_once(&self, batches: &[Batch]) {
        let mut archived = self.archived().await;
        archived.sort();
        let mut expected: Vec<(String, String)> =
            batches.iter().flat_map(|b| b.events.clone()).collect();
        expected.sort();
        let missing: Vec<_> = expected.iter().filter(|e| !archived.contains(e)).collect();
        let extra: Vec<_> = archived.iter().filter(|e| !expected.contains(e)).collect();
        let mut distinct = archived.clone();
        distinct.dedup();
        assert_eq!(
            (archived.len(), distinct.len(), missing.len()),
            (expected.len(), expected.len(), 0),
            "events in dynamodb (all, distinct, missing); missing {missing:?}, extra {extra:?}"
        );
        assert!(
            archived == expected,
            "dynamodb holds other events than sent"
        );
    }

    /// Each cache list holds events of its own conversation, each at most once; and every
    /// event of a batch whose delivery Redis confirmed is there.
    async fn assert_cached_at_most_once(&self, batches: &[Batch], confirmed: &[&Batch]) {
        let mut sent: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (conversation, id) in batches.iter().flat_map(|b| b.events.iter()) {
            sent.entry(conversation).or_default().insert(id);
        }
        for (conversation, ids) in &sent {
            let cached = self.cached_ids(conversation).await;
            let distinct: BTreeSet<&str> = cached.iter().map(String::as_str).collect();
            assert_eq!(
                distinct.len(),
                cached.len(),
                "{conversation}: an event cached twice"
            );
            assert!(distinct.is_subset(ids), "{conversation}: a foreign event");
        }
        for batch in confirmed {
            for (conversation, id) in &batch.events {
                let cached = self.cached_ids(conversation).await;
                assert!(cached.contains(id), "{id}: confirmed by redis, not cached");
            }
        }
    }

    /// The newest `n` events of `conversation` among `batches`, newest first.
    fn newest(batches: &[Batch], conversation: &str, n: usize) -> Vec<String> {
        // Ids and timestamps both grow with the batch and position.
        let mut ids: Vec<(usize, &str)> = batches
            .iter()
            .enumerate()
            .flat_map(|(b, batch)| {
                batch
                    .events
                    .iter()
                    .enumerate()
                    .filter_map(move |(i, (c, id))| {
                        (c == conversation).then_some((b * 1_000_000 + i, id.as_str()))
                    })
            })
            .collect();
        ids.sort();
        ids.iter()
            .rev()
            .take(n)
            .map(|(_, id)| (*id).to_owned())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_and_restarted_loses_no_event() {
    let mut redis = PrivateRedis::start().await;
    let rest = RestProxy::start(redis.addr()).await;
    let dynamo = stack_var("AWS_ENDPOINT_URL_DYNAMODB");
    let rig = Rig::new(&rest.url, &rest.url, &dynamo, &dynamo).await;
    let all = batches("redis-kill", 24, 20, 4);
    let budget = Budget::Default;

    let before = rig.deliver_all(&all[0..8], budget).await;
    assert!(before.iter().all(Delivery::cached));

    // Killed while the next deliveries are in flight, then down for a few more.
    let (during, ()) = tokio::join!(rig.deliver_all(&all[8..16], budget), async { redis.kill() });
    let down = rig.deliver_all(&all[16..20], budget).await;
    for delivery in during.iter().chain(&down) {
        assert_eq!(
            delivery.status, 200,
            "a redis outage is not a webhook failure"
        );
    }
    for delivery in &down {
        assert_eq!(delivery.receipt["cache"], "unavailable");
    }

    // History comes from DynamoDB meanwhile, complete and newest first.
    let conversation = &all[0].events[0].0;
    let (events, source) = rig
        .state
        .stores
        .history()
        .recent_events(conversation, 20)
        .await
        .expect("history from dynamodb");
    assert_eq!(source, HistorySource::Archive);
    let ids: Vec<String> = events.into_iter().map(|e| e.id).collect();
    assert_eq!(ids, Rig::newest(&all[0..20], conversation, 20));

    redis.restart().await;
    let after = rig.deliver_all(&all[20..24], budget).await;
    // Ably redelivers some batches: from before, during and after the outage.
    let again: Vec<Batch> = [3, 9, 17, 22].iter().map(|&i| all[i].clone()).collect();
    let redelivered = rig.deliver_all(&again, budget).await;
    assert!(after.iter().chain(&redelivered).all(|d| d.status == 200));

    // History after the restart has every event, those of the outage included: a list
    // that lacks them is never read as whole (the cache epoch moved on).
    let (events, _) = rig
        .state
        .stores
        .history()
        .recent_events(conversation, 20)
        .await
        .expect("history");
    let ids: Vec<String> = events.into_iter().map(|e| e.id).collect();
    assert_eq!(ids, Rig::newest(&all, conversation, 20));
    rig.assert_archived_exactly_once(&all).await;
    let deliveries: Vec<&Delivery> = before
        .iter()
        .chain(&during)
        .chain(&down)
        .chain(&after)
        .collect();
    let confirmed: Vec<&Batch> = all
        .iter()
        .zip(&deliveries)
        .filter(|(_, d)| d.cached())
        .map(|(b, _)| b)
        .collect();
    rig.assert_cached_at_most_once(&all, &confirmed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_killed_and_restarted_is_503_until_back_then_everything_once() {
    let mut dynamo = PrivateDynamo::start().await;
    let redis = stack_var("UPSTASH_REDIS_REST_URL");
    let rig = Rig::new(&redis, &redis, &dynamo.endpoint(), &dynamo.endpoint()).await;
    let all = batches("dynamodb-kill", 12, 20, 3);
    let budget = Budget::Default;

    let before = rig.deliver_all(&all[0..4], budget).await;
    assert!(before.iter().all(|d| d.status == 200));

    dynamo.kill();
    // Invoked by Lambda with 3 s left: refused in time, not cut off by the Lambda timeout.
    let down = rig
        .deliver_all(&all[4..8], Budget::Lambda(Duration::from_secs(3)))
        .await;
    for delivery in &down {
        assert_eq!(
            delivery.status, 503,
            "dynamodb is down: {}",
            delivery.receipt
        );
    }
    // A redelivery while it is still down is refused the same way.
    assert_eq!(rig.deliver(&all[0], Budget::Default).await.status, 503);

    dynamo.restart().await;
    // Ably redelivers what was refused; new batches keep coming.
    for batch in &all[4..8] {
        rig.deliver_until_stored(batch, budget).await;
    }
    let after = rig.deliver_all(&all[8..12], budget).await;
    assert!(after.iter().all(|d| d.status == 200));

    // What was stored before the kill survived it; nothing is doubled.
    rig.assert_archived_exactly_once(&all).await;
    rig.assert_cached_at_most_once(&all, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_latency_is_absorbed_within_the_budget_or_refused_before_the_deadline() {
    let redis = PrivateRedis::start().await;
    let rest = RestProxy::start(redis.addr()).await;
    let slow_redis = FaultProxy::start(rest.addr).await;
    let dynamo = stack_var("AWS_ENDPOINT_URL_DYNAMODB");
    let slow_dynamo = FaultProxy::start(socket_addr(&dynamo)).await;
    let rig = Rig::new(&slow_redis.url(), &rest.url, &slow_dynamo.url(), &dynamo).await;
    let all = batches("latency", 8, 60, 3);
    let short = Budget::Lambda(Duration::from_secs(3));

    // 1 s each way: every store round trip takes 2 s.
    slow_redis.set(Fault::Latency(Duration::from_secs(1)));
    slow_dynamo.set(Fault::Latency(Duration::from_secs(1)));
    let slow = rig.deliver_all(&all[0..4], Budget::Default).await;
    assert!(slow.iter().all(|d| d.status == 200 && d.cached()));

    // Invoked with 3 s left, DynamoDB 4 s away: refused before the Lambda deadline.
    slow_redis.set(Fault::Pass);
    slow_dynamo.set(Fault::Latency(Duration::from_secs(2)));
    for delivery in rig.deliver_all(&all[4..6], short).await {
        assert_eq!(delivery.status, 503);
    }
    // A signed body that does not parse is answered 400 in time, even if it could not be
    // kept as a dead letter before the deadline.
    let (status, answer) = rig.call(b"not json", short).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("invalid_payload"))
    );

    // Invoked with 5 s left, Redis 6 s away: DynamoDB has everything, so the answer is a
    // 200 before the Lambda deadline, not a Lambda timeout while waiting for the cache.
    // (The cache gets a third of the time; after it failed, the cache epoch moves on and
    // the events wait two seconds for every reader to see it.)
    slow_redis.set(Fault::Latency(Duration::from_secs(3)));
    slow_dynamo.set(Fault::Pass);
    for delivery in rig
        .deliver_all(&all[6..8], Budget::Lambda(Duration::from_secs(5)))
        .await
    {
        assert_eq!(delivery.status, 200);
        assert_eq!(delivery.receipt["cache"], "unavailable");
    }

    slow_redis.set(Fault::Pass);
    slow_dynamo.set(Fault::Pass);
    for batch in &all[4..6] {
        rig.deliver_until_stored(batch, Budget::Default).await;
    }
    rig.assert_archived_exactly_once(&all).await;
    let confirmed: Vec<&Batch> = all[0..4].iter().collect();
    rig.assert_cached_at_most_once(&all, &confirmed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_resets_are_503_only_when_dynamodb_is_cut_and_a_redelivery_stores_once() {
    let redis = PrivateRedis::start().await;
    let rest = RestProxy::start(redis.addr()).await;
    let flaky_redis = FaultProxy::start(rest.addr).await;
    let dynamo = stack_var("AWS_ENDPOINT_URL_DYNAMODB");
    let flaky_dynamo = FaultProxy::start(socket_addr(&dynamo)).await;
    let rig = Rig::new(&flaky_redis.url(), &rest.url, &flaky_dynamo.url(), &dynamo).await;
    let all = batches("resets", 8, 30, 3);
    let budget = Budget::Default;
    let short = Budget::Lambda(Duration::from_secs(4));

    // Redis resets every connection: the webhook still succeeds, from DynamoDB alone.
    flaky_redis.set(Fault::Reset);
    for delivery in rig.deliver_all(&all[0..2], budget).await {
        assert_eq!(delivery.status, 200);
        assert_eq!(delivery.receipt["cache"], "unavailable");
    }

    // DynamoDB resets every connection: 503, and the redelivery once it is back stores it.
    flaky_redis.set(Fault::Pass);
    flaky_dynamo.set(Fault::Reset);
    for delivery in rig.deliver_all(&all[2..4], short).await {
        assert_eq!(delivery.status, 503);
    }

    // Both stores do the work but every answer is cut off: Redis has mirrored the batch
    // without the handler knowing, DynamoDB has written it and the SDK's retries are cut
    // too, so Ably must redeliver; the redelivery must not push the events twice.
    flaky_redis.set(Fault::CutAnswers);
    flaky_dynamo.set(Fault::CutAnswers);
    for delivery in rig.deliver_all(&all[4..6], short).await {
        assert_eq!(delivery.status, 503);
    }

    flaky_redis.set(Fault::Pass);
    flaky_dynamo.set(Fault::Pass);
    for batch in &all[2..6] {
        rig.deliver_until_stored(batch, budget).await;
    }
    let fine = rig.deliver_all(&all[6..8], budget).await;
    assert!(fine.iter().all(Delivery::cached));

    rig.assert_archived_exactly_once(&all).await;
    let confirmed: Vec<&Batch> = all[2..8].iter().collect();
    rig.assert_cached_at_most_once(&all, &confirmed).await;
}
