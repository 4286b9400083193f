//! `GET /api/chat/events`, the polling fallback, through the real resume handler over the
//! real Redis (Upstash proxy) and DynamoDB Local, with events written by the real webhook
//! handler: a client paging with the returned cursor sees every event exactly once, in
//! order, whether a page comes from the Redis window or from DynamoDB behind it; and every
//! request costs one Redis round trip, plus one DynamoDB query only when Redis cannot
//! prove it holds the page.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use chat_core::handlers::resume::mail::LogMailSender;
use chat_core::handlers::resume::{handle, ResumeConfig, ResumeState};
use chat_core::storage::history::HistorySource;
use chat_core::storage::redis::RedisClient;
use lambda_http::{Body, Response};
use serde_json::{json, Value};

use crate::helpers::resume_state_with;
use crate::helpers::EventsApp;
use crate::helpers::{
    api_request, bearer, body_json, closed_port, counting_dynamo, counting_redis, env_with, header,
    session_token,
};

/// The resume function over an events [`EventsApp`]'s table and Redis prefix, with its
/// Redis and DynamoDB requests counted.
struct Poller {
    events: EventsApp,
    state: ResumeState,
    redis_requests: Arc<AtomicUsize>,
    dynamo_requests: Arc<AtomicUsize>,
}

impl Poller {
    async fn new(events_overrides: &[(&str, &str)], overrides: &[(&str, &str)]) -> Self {
        let events = EventsApp::build(events_overrides, None, None).await;
        let (redis, redis_requests) = counting_redis().await;
        let (dynamo, dynamo_requests) = counting_dynamo().await;
        let state = resume_state_with(&events, overrides, redis, dynamo);
        Poller {
            events,
            state,
            redis_requests,
            dynamo_requests,
        }
    }

    /// Another resume function over the same stores (e.g. with one of them down).
    async fn sibling(&self, overrides: &[(&str, &str)]) -> ResumeState {
        let mut vars = vec![
            ("CHAT_EVENTS_TABLE", self.events.table.as_str()),
            ("REDIS_KEY_PREFIX", self.events.prefix.as_str()),
        ];
        vars.extend_from_slice(overrides);
        let config = ResumeConfig::load(env_with(&vars)).expect("resume config");
        let redis = RedisClient::new(&config.redis);
        ResumeState::with_clients(
            config,
            redis,
            crate::helpers::dynamo().await,
            Arc::new(LogMailSender),
        )
    }

    async fn get(&self, auth: &str, query: &str) -> Response<Body> {
        get_on(&self.state, auth, query).await
    }

    /// One page as `(event ids, cursor)`, asserting a 200 and the response's shape.
    async fn page(&self, auth: &str, conversation: &str, after: &str, limit: usize) -> Page {
        let query = format!("conversationId={conversation}&after={after}&limit={limit}");
        let response = self.get(auth, &query).await;
        Page::of(&response)
    }

    /// `(redis, dynamodb)` requests since the last call.
    fn requests(&self) -> (usize, usize) {
        (
            self.redis_requests.swap(0, Ordering::SeqCst),
            self.dynamo_requests.swap(0, Ordering::SeqCst),
        )
    }

    async fn post(&self, conversation: &str, range: std::ops::Range<i64>) {
        let response = self.events.post(&batch(conversation, range.clone())).await;
        assert_eq!(response.status(), 200, "{:?}", body_json(&response));
        assert_eq!(
            body_json(&response)["stored"],
            json!(range.end - range.start)
        );
    }
}

async fn get_on(state: &ResumeState, auth: &str, query: &str) -> Response<Body> {
    let headers: Vec<(&str, &str)> = if auth.starts_with("__Host-") {
        vec![("cookie", auth)]
    } else if auth.is_empty() {
        vec![]
    } else {
        vec![("authorization", auth)]
    };
    handle(
        state,
        api_request("GET", &format!("/api/chat/events?{query}"), &headers, None),
    )
    .await
}

#[derive(Debug)]
struct Page {
    events: Vec<Value>,
    cursor: String,
    realtime: bool,
}

impl Page {
    fn of(response: &Response<Body>) -> Self {
        let body = body_json(response);
        assert_eq!(response.status(), 200, "{body:?}");
        assert_eq!(header(response, "cache-control"), Some("no-store"));
        let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["cursor", "events", "realtime"]);
        Page {
            events: body["events"].as_array().unwrap().clone(),
            cursor: body["cursor"].as_str().unwrap().to_owned(),
            realtime: body["realtime"].as_bool().unwrap(),
        }
    }

    fn ids(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Event `i` of a conversation: one second apart from 2026-01-02T03:04:05.000Z.
const START_MS: i64 = 1_767_323_045_000;

fn occurred_at(i: i64) -> String {
    chrono::DateTime::from_timestamp_millis(START_MS + i * 1000)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn id(conversation: &str, i: i64) -> String {
    format!("{conversation}-e{i:03}")
}

fn ids(conversation: &str, range: std::ops::Range<i64>) -> Vec<String> {
    range.map(|i| id(conversation, i)).collect()
}

/// Events `range` of `conversation` as a flat webhook batch, newest first in the body.
fn batch(conversation: &str, range: std::ops::Range<i64>) -> Vec<u8> {
    let items: Vec<Value> = range
        .rev()
        .map(|i| {
            json!({"id": id(conversation, i), "name": "message:user",
                "channel": format!("conversation:{conversation}"), "clientId": "customer-1",
                "data": {"text": format!("message {i}")}, "timestamp": START_MS + i * 1000})
        })
        .collect();
    json!({ "items": items }).to_string().into_bytes()
}

/// The cursor the service hands out for event `i`: base64url of its DynamoDB sort key.
fn cursor_of(conversation: &str, i: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}#{}",
        occurred_at(i),
        id(conversation, i)
    ))
}

#[tokio::test]
async fn a_poller_sees_every_event_once_across_pages_and_from_redis_into_dynamodb() {
    // Redis keeps the 10 newest events of a conversation; DynamoDB keeps them all.
    let p = Poller::new(
        &[("REDIS_EVENT_MAX", "10")],
        &[("ENABLE_ABLY_REALTIME", "false")],
    )
    .await;
    let conv = "conv-pages";
    for start in (0..25).step_by(5) {
        p.post(conv, start..start + 5).await;
    }
    let session = format!("__Host-chat_session={}", session_token(conv));
    let mut seen: Vec<Value> = Vec::new();

    // No cursor: from the oldest retained event, which only DynamoDB knows.
    let first = p.page(&session, conv, "", 7).await;
    assert_eq!(first.ids(), ids(conv, 0..7));
    assert_eq!(first.cursor, cursor_of(conv, 6));
    assert!(!first.realtime);
    // The query, and once per conversation and process the tombstone that says it was
    // never erased (a session is refused after an erasure).
    assert_eq!(p.requests(), (1, 2));
    seen.extend(first.events);

    // Before the Redis window (events 15..25): DynamoDB.
    let second = p.page(&session, conv, &first.cursor, 7).await;
    assert_eq!(second.ids(), ids(conv, 7..14));
    assert_eq!(p.requests(), (1, 1));
    seen.extend(second.events);
    let third = p.page(&session, conv, &second.cursor, 7).await;
    assert_eq!(third.ids(), ids(conv, 14..21));
    assert_eq!(p.requests(), (1, 1));
    seen.extend(third.events);

    // Inside the window, but the list the mirror made proves nothing: DynamoDB, which
    // has fewer than a page after the cursor, so the list is proven from there on (one
    // more Redis request).
    let fourth = p.page(&session, conv, &third.cursor, 7).await;
    assert_eq!(fourth.ids(), ids(conv, 21..25));
    assert_eq!(fourth.cursor, cursor_of(conv, 24));
    assert_eq!(p.requests(), (2, 1));
    seen.extend(fourth.events);

    // Nothing new: no events, the same cursor back.
    let idle = p.page(&session, conv, &fourth.cursor, 7).await;
    assert_eq!(idle.events, Vec::<Value>::new());
    assert_eq!(idle.cursor, fourth.cursor);
    assert_eq!(p.requests(), (1, 0));

    // New events while the client polls: the next page has exactly those.
    p.post(conv, 25..28).await;
    let fresh = p.page(&session, conv, &idle.cursor, 7).await;
    assert_eq!(fresh.ids(), ids(conv, 25..28));
    assert_eq!(p.requests(), (1, 0));
    seen.extend(fresh.events);

    // The Redis list expires; the next event starts a new one, which proves nothing:
    // DynamoDB answers and proves it, then Redis again.
    let list = format!("{}chat:conversation:{conv}:events", p.events.prefix);
    p.events
        .redis
        .command(&["DEL", list.as_str()])
        .await
        .unwrap();
    p.post(conv, 28..29).await;
    let after_expiry = p.page(&session, conv, &fresh.cursor, 7).await;
    assert_eq!(after_expiry.ids(), ids(conv, 28..29));
    assert_eq!(p.requests(), (2, 1));
    seen.extend(after_expiry.events);
    p.post(conv, 29..30).await;
    let last = p.page(&session, conv, &after_expiry.cursor, 7).await;
    assert_eq!(last.ids(), ids(conv, 29..30));
    assert_eq!(p.requests(), (1, 0));
    seen.extend(last.events);

    // Every event exactly once, in order, in the same shape as resume's history.
    let expected: Vec<Value> = (0..30)
        .map(|i| {
            json!({"id": id(conv, i), "conversation_id": conv,
                "channel": format!("conversation:{conv}"), "event_type": "message:user",
                "client_id": "customer-1", "trusted": true, "payload": {"text": format!("message {i}")},
                "occurred_at": occurred_at(i)})
        })
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn pages_from_redis_and_from_dynamodb_are_the_same_events() {
    let p = Poller::new(&[], &[]).await;
    let conv = "conv-same";
    p.post(conv, 0..12).await;
    let broker = format!("Bearer {}", bearer("broker-s", "broker", &[]));
    // From the start: DynamoDB, which holds less than a page, so the list is proven
    // (one more Redis request); after event 0, Redis alone.
    let mut from_dynamodb = p.page(&broker, conv, "", 100).await;
    assert_eq!(p.requests(), (2, 1));
    assert_eq!(from_dynamodb.ids(), ids(conv, 0..12));
    let from_redis = p.page(&broker, conv, &cursor_of(conv, 0), 100).await;
    assert_eq!(p.requests(), (1, 0));
    assert!(from_dynamodb.realtime);
    from_dynamodb.events.remove(0);
    assert_eq!(from_redis.events, from_dynamodb.events);
    // The default page is 50 events.
    p.post(conv, 12..60).await;
    let page = Page::of(&p.get(&broker, &format!("conversationId={conv}")).await);
    assert_eq!(page.ids(), ids(conv, 0..50));
    let page = Page::of(
        &p.get(
            &broker,
            &format!("conversationId={conv}&after={}", page.cursor),
        )
        .await,
    );
    assert_eq!(page.ids(), ids(conv, 50..60));
}

#[tokio::test]
async fn each_store_stands_in_for_the_other() {
    let five = [("REDIS_EVENT_MAX", "5")];
    let p = Poller::new(&five, &five).await;
    let conv = "conv-down";
    p.post(conv, 0..8).await;
    let broker = format!("Bearer {}", bearer("broker-d", "broker", &[]));

    // Redis down: DynamoDB serves every page, and polling is not refused.
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let no_redis = p
        .sibling(&[("UPSTASH_REDIS_REST_URL", dead.as_str())])
        .await;
    for (after, expected) in [("".to_owned(), 0..8), (cursor_of(conv, 5), 6..8)] {
        let query = format!("conversationId={conv}&after={after}");
        let page = Page::of(&get_on(&no_redis, &broker, &query).await);
        assert_eq!(page.ids(), ids(conv, expected));
    }

    // A poll from the start proves the list (it holds events 3..8, so it holds every
    // event after event 2's time). Then DynamoDB down: a cursor inside the proven window
    // is still served; one before it cannot be, and says so.
    let query = format!("conversationId={conv}");
    assert_eq!(
        Page::of(&p.get(&broker, &query).await).ids(),
        ids(conv, 0..8)
    );
    let no_table = p
        .sibling(&[("CHAT_EVENTS_TABLE", "no-such-table-for-polling-tests")])
        .await;
    let query = format!("conversationId={conv}&after={}", cursor_of(conv, 3));
    let page = Page::of(&get_on(&no_table, &broker, &query).await);
    assert_eq!(page.ids(), ids(conv, 4..8));
    for after in [cursor_of(conv, 2), String::new()] {
        let query = format!("conversationId={conv}&after={after}");
        let response = get_on(&no_table, &broker, &query).await;
        assert_eq!(response.status(), 503);
        assert_eq!(body_json(&response)["code"], json!("history_unavailable"));
    }
}

#[tokio::test]
async fn only_the_conversations_own_callers_poll_and_only_with_valid_parameters() {
    let p = Poller::new(&[], &[]).await;
    let conv = "conv-auth";
    p.post(conv, 0..3).await;
    p.post("conv-other", 0..2).await;
    let all = ids(conv, 0..3);

    let session = format!("__Host-chat_session={}", session_token(conv));
    let listed = format!("Bearer {}", bearer("cust-a", "customer", &[conv]));
    for who in [
        session.clone(),
        listed.clone(),
        format!("Bearer {}", bearer("broker-a", "broker", &[])),
        format!("Bearer {}", bearer("admin-a", "admin", &[])),
        format!("Bearer {}", bearer("svc-a", "service", &[])),
    ] {
        assert_eq!(p.page(&who, conv, "", 10).await.ids(), all, "{who}");
    }

    for (who, code) in [
        (
            format!("__Host-chat_session={}", session_token("conv-other")),
            "conversation_forbidden",
        ),
        (
            format!("Bearer {}", bearer("cust-b", "customer", &["conv-other"])),
            "conversation_forbidden",
        ),
    ] {
        let response = p.get(&who, &format!("conversationId={conv}")).await;
        assert_eq!(response.status(), 403);
        assert_eq!(body_json(&response)["code"], json!(code));
    }
    let response = p.get("", &format!("conversationId={conv}")).await;
    assert_eq!(response.status(), 401);
    assert_eq!(body_json(&response)["code"], json!("unauthorized"));

    // A cursor made for another conversation is only a position.
    let page = p.page(&listed, conv, &cursor_of("conv-other", 0), 10).await;
    assert_eq!(page.ids(), ids(conv, 1..3));

    let b64 = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
    let valid = cursor_of(conv, 0);
    for (query, code) in [
        (format!("conversationId={conv}&limit=0"), "invalid_limit"),
        (format!("conversationId={conv}&limit=101"), "invalid_limit"),
        (format!("conversationId={conv}&limit=-1"), "invalid_limit"),
        (format!("conversationId={conv}&limit=ten"), "invalid_limit"),
        (
            format!("conversationId={conv}&after=nope!"),
            "invalid_cursor",
        ),
        (
            format!("conversationId={conv}&after={valid}%3D"),
            "invalid_cursor",
        ),
        (
            format!("conversationId={conv}&after={}", b64("2026-01-02#x")),
            "invalid_cursor",
        ),
        (
            format!(
                "conversationId={conv}&after={}",
                b64(&format!("{}#", occurred_at(0)))
            ),
            "invalid_cursor",
        ),
        (
            format!(
                "conversationId={conv}&after={}",
                b64("2026-13-02T03:04:05.000Z#x")
            ),
            "invalid_cursor",
        ),
        (
            format!("conversationId={conv}&after={valid}&after={valid}"),
            "invalid_query",
        ),
        ("conversationId=conv%3A%2A".to_owned(), "invalid_identifier"),
        (String::new(), "invalid_query"),
        (
            "conversationId=a&conversationId=b".to_owned(),
            "invalid_query",
        ),
    ] {
        let response = p.get(&listed, &query).await;
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(body_json(&response)["code"], json!(code), "{query}");
    }
    for limit in [1, 100] {
        let page = p.page(&listed, conv, "", limit).await;
        assert_eq!(page.ids(), all[..limit.min(3)]);
    }
    // The reserved dead-letter partition is never history.
    let admin = format!("Bearer {}", bearer("admin-a", "admin", &[]));
    let page = p.page(&admin, "_dead_letter", "", 10).await;
    assert_eq!(page.events, Vec::<Value>::new());
    assert_eq!(page.cursor, "");
}

#[tokio::test]
async fn polls_are_limited_per_caller_and_conversation_in_their_one_round_trip() {
    let p = Poller::new(
        &[],
        &[
            ("RATE_LIMIT_POLL_MAX", "3"),
            ("RATE_LIMIT_POLL_WINDOW_SECONDS", "60"),
        ],
    )
    .await;
    let conv = "conv-limit";
    p.post(conv, 0..2).await;
    let customer = format!(
        "Bearer {}",
        bearer("cust-l", "customer", &[conv, "conv-l2"])
    );
    let within = cursor_of(conv, 0);
    for _ in 0..3 {
        assert_eq!(
            p.page(&customer, conv, &within, 10).await.ids(),
            ids(conv, 1..2)
        );
    }
    // The first poll proves the list from DynamoDB (and one more Redis request).
    assert_eq!(p.requests(), (4, 1));
    let response = p
        .get(&customer, &format!("conversationId={conv}&after={within}"))
        .await;
    assert_eq!(response.status(), 429);
    assert_eq!(body_json(&response)["code"], json!("rate_limited"));
    let retry_after: u64 = header(&response, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Refused in the same round trip, before any DynamoDB read.
    assert_eq!(p.requests(), (1, 0));
    let response = p.get(&customer, &format!("conversationId={conv}")).await;
    assert_eq!(response.status(), 429);
    assert_eq!(p.requests(), (1, 0));

    // Another conversation, another caller: their own budgets.
    assert_eq!(
        p.page(&customer, "conv-l2", "", 10).await.ids(),
        Vec::<String>::new()
    );
    let session = format!("__Host-chat_session={}", session_token(conv));
    assert_eq!(
        p.page(&session, conv, &within, 10).await.ids(),
        ids(conv, 1..2)
    );
    let key = format!("{}ratelimit:poll:user:cust-l:{conv}", p.events.prefix);
    let ttl = p
        .events
        .redis
        .command(&["PTTL", key.as_str()])
        .await
        .unwrap();
    let ttl = ttl.as_i64().unwrap();
    assert!((1..=60_000).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn an_event_from_the_year_9999_is_skipped_and_later_events_are_still_polled() {
    let p = Poller::new(&[], &[]).await;
    let conv = "conv-future";
    p.post(conv, 0..1).await;
    let broker = format!("Bearer {}", bearer("broker-f", "broker", &[]));
    let first = p.page(&broker, conv, "", 10).await;
    assert_eq!(first.ids(), ids(conv, 0..1));

    // Dated 9999-12-31: skipped, in neither store, no cursor past it.
    let future = json!({"items": [{"id": "from-the-future", "name": "message:user",
        "channel": format!("conversation:{conv}"), "clientId": "customer-1",
        "data": {"text": "later than everything"}, "timestamp": 253_402_300_799_000i64}]});
    let response = p.events.post(future.to_string().as_bytes()).await;
    let receipt = body_json(&response);
    assert_eq!(response.status(), 200, "{receipt}");
    assert_eq!(
        (receipt["stored"].clone(), receipt["skipped"].clone()),
        (json!(0), json!(["event 0: future"]))
    );
    assert_eq!(p.events.chat_items().await.len(), 1);
    assert_eq!(p.events.cached(conv).await.len(), 1);

    // The next event is polled after the first one's cursor.
    p.post(conv, 1..2).await;
    let next = p.page(&broker, conv, &first.cursor, 10).await;
    assert_eq!(next.ids(), ids(conv, 1..2));
}

#[tokio::test]
async fn an_event_pushed_again_after_its_seen_marker_expired_is_read_once() {
    let p = Poller::new(&[], &[]).await;
    let conv = "conv-redelivered";
    p.post(conv, 0..3).await;
    let history = p.state.history.clone();
    // The first read proves the list from DynamoDB.
    let (events, _) = history.recent_events(conv, 20).await.unwrap();
    assert_eq!(events.len(), 3);

    // A day later the seen markers are gone (as their TTL ends them); an SQS redrive
    // brings the same events again, and the mirror pushes them a second time.
    let keys = chat_core::storage::Keys::new(p.events.prefix.clone());
    for i in 0..3 {
        let marker = keys.seen(conv, &id(conv, i));
        p.events
            .redis
            .command(&["DEL", marker.as_str()])
            .await
            .unwrap();
    }
    let response = p.events.post(&batch(conv, 0..3)).await;
    assert_eq!(body_json(&response)["duplicates"], json!(0));
    assert_eq!(
        p.events.cached(conv).await.len(),
        6,
        "each entry twice in the list"
    );

    // Every reader returns each event once.
    let (events, source) = history.recent_events(conv, 20).await.unwrap();
    assert_eq!(source, HistorySource::Cache);
    let newest_first: Vec<String> = events.into_iter().map(|e| e.id).collect();
    let mut expected = ids(conv, 0..3);
    expected.reverse();
    assert_eq!(newest_first, expected);
    let broker = format!("Bearer {}", bearer("broker-r", "broker", &[]));
    let page = p.page(&broker, conv, &cursor_of(conv, 0), 10).await;
    assert_eq!(page.ids(), ids(conv, 1..3));
    assert_eq!(p.requests().1, 1, "the first read only went to DynamoDB");
}
