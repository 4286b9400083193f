//! Round trips per endpoint on its main path, counted where they arrive: Redis REST
//! requests at a counting Upstash proxy, DynamoDB requests with an SDK interceptor and
//! Ably requests at wiremock. Each test asserts the minimum the design allows.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chat_core::handlers::resume::mail::LogMailSender;
use chat_core::handlers::resume::{ResumeState, HYDRATION_EVENTS};
use chat_core::identity::email::EmailAddress;
use chat_core::storage::redis::RedisClient;
use chat_core::storage::RedisConfig;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::publish_state;
use crate::helpers::{
    api_request, bearer, body_json, counting_dynamo, counting_redis_url, post_token, post_token_as,
    redis_config, session_token, token_state_over, unique,
};
use crate::helpers::{flat_batch, EventsApp};

/// A counting Upstash proxy in front of the stack's Redis, and a counting DynamoDB
/// client for DynamoDB Local.
struct Counters {
    redis: Arc<AtomicUsize>,
    dynamo: Arc<AtomicUsize>,
    proxy_url: String,
    dynamo_client: aws_sdk_dynamodb::Client,
}

impl Counters {
    async fn start() -> Self {
        let (proxy_url, redis) = counting_redis_url().await;
        let (dynamo_client, dynamo) = counting_dynamo().await;
        Counters {
            redis,
            dynamo,
            proxy_url,
            dynamo_client,
        }
    }

    fn redis_client(&self) -> RedisClient {
        RedisClient::new(&RedisConfig {
            url: self.proxy_url.clone(),
            ..redis_config()
        })
    }

    /// (Redis requests, DynamoDB requests) since the last call.
    fn take(&self) -> (usize, usize) {
        (
            self.redis.swap(0, Ordering::SeqCst),
            self.dynamo.swap(0, Ordering::SeqCst),
        )
    }
}

#[tokio::test]
/// DynamoDB: one BatchGetItem for the tombstones of the delivery's conversations (an
/// erased conversation's events are skipped), then one BatchWriteItem per 25 events.
async fn a_webhook_costs_one_redis_request_and_one_dynamodb_request_per_25_events_after_one_erasure_lookup(
) {
    let counters = Counters::start().await;
    let h = EventsApp::build(
        &[],
        Some(counters.redis_client()),
        Some(counters.dynamo_client.clone()),
    )
    .await;
    for n in [1usize, 25, 26, 100] {
        let conversation = unique("rt-hook");
        let res = h
            .post(&flat_batch(&conversation, n, 1_700_000_000_000))
            .await;
        assert_eq!(res.status(), 200, "{n} events");
        assert_eq!(body_json(&res)["stored"], n, "{n} events");
        assert_eq!(counters.take(), (1, 1 + n.div_ceil(25)), "{n} events");
        assert_eq!(h.cached(&conversation).await.len(), n.min(100));
    }
    // A redelivery is settled by the same single Redis request; DynamoDB puts are
    // idempotent and written again.
    let conversation = unique("rt-hook");
    let body = flat_batch(&conversation, 30, 1_700_000_000_000);
    assert_eq!(h.post(&body).await.status(), 200);
    counters.take();
    let res = h.post(&body).await;
    assert_eq!(body_json(&res)["duplicates"], 30);
    assert_eq!(counters.take(), (1, 1 + 2));
}

#[tokio::test]
async fn a_token_costs_one_redis_request_for_the_rate_limit() {
    let counters = Counters::start().await;
    let state = token_state_over(
        &[("UPSTASH_REDIS_REST_URL", &counters.proxy_url)],
        counters.dynamo_client.clone(),
    );
    let customer = bearer("rt-user", "customer", &["conv-rt"]);
    for body in [
        "{}",
        r#"{"format":"jwt"}"#,
        r#"{"conversationId":"conv-rt","ttlSeconds":600}"#,
    ] {
        let res = post_token_as(&state, &customer, body).await;
        assert_eq!(res.status(), 200, "{body}: {:?}", body_json(&res));
        assert_eq!(counters.take(), (1, 0), "{body}");
    }
    let cookie = format!("__Host-chat_session={}", session_token("conv-rt"));
    // A chat session's conversation is looked up for an erasure: its tombstone once per
    // process, then again only after an erasure anywhere (the epoch item, which says so,
    // is read at most every two seconds and not counted here). Bearer callers above cost
    // no DynamoDB read.
    let res = post_token(&state, &[("cookie", &cookie)], None).await;
    assert_eq!(res.status(), 200, "{:?}", body_json(&res));
    assert_eq!(counters.take(), (1, 1), "first session");
    let res = post_token(&state, &[("cookie", &cookie)], None).await;
    assert_eq!(res.status(), 200, "{:?}", body_json(&res));
    assert_eq!(counters.take(), (1, 0), "session");
    // Refused identities cost nothing.
    let res = post_token(&state, &[("authorization", "Bearer nope")], None).await;
    assert_eq!(res.status(), 401);
    assert_eq!(counters.take(), (0, 0), "refused");
}

#[tokio::test]
async fn a_publish_costs_one_ably_request_and_one_redis_request() {
    let counters = Counters::start().await;
    let ably = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/channels/conversation%3Aconv-rt/messages"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"channel": "conversation:conv-rt", "messageId": "x"})),
        )
        .expect(1)
        .mount(&ably)
        .await;
    let state = publish_state(
        &ably.uri(),
        &[("UPSTASH_REDIS_REST_URL", counters.proxy_url.as_str())],
    );
    let auth = format!("Bearer {}", bearer("rt-user", "customer", &["conv-rt"]));
    let body = json!({"channelName": "conversation:conv-rt", "eventName": "message:user",
                      "data": {"text": "hi"}, "idempotencyKey": "rt-1"})
    .to_string();
    let res = chat_core::handlers::publish::handle(
        &state,
        api_request(
            "POST",
            "/api/ably/publish",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(&body),
        ),
    )
    .await;
    assert_eq!(res.status(), 200, "{:?}", body_json(&res));
    assert_eq!(counters.take(), (1, 0));
    assert_eq!(ably.received_requests().await.unwrap().len(), 1);
}

/// A resume state over the events harness's table and prefix, with counting clients.
async fn counted_resume(events: &EventsApp, counters: &Counters) -> ResumeState {
    ResumeState::with_clients(
        crate::helpers::resume_config(events, &[]),
        counters.redis_client(),
        counters.dynamo_client.clone(),
        Arc::new(LogMailSender),
    )
}

async fn redeem(state: &ResumeState, conversation: &str) -> serde_json::Value {
    let email = EmailAddress::parse("customer@example.com").unwrap();
    let link = state.links.issue(conversation, &email).expect("link");
    let res = chat_core::handlers::resume::handle(
        state,
        api_request(
            "GET",
            &format!("/api/chat/resume?token={}", link.token),
            &[],
            None,
        ),
    )
    .await;
    assert_eq!(res.status(), 200, "{:?}", body_json(&res));
    body_json(&res)
}

#[tokio::test]
async fn a_redeem_costs_one_redis_request_and_dynamodb_only_when_the_cache_is_not_proven() {
    let events = EventsApp::new().await;
    let conversation = unique("rt-redeem");
    let res = events
        .post(&flat_batch(&conversation, 30, 1_700_000_000_000))
        .await;
    assert_eq!(res.status(), 200);
    let counters = Counters::start().await;
    let state = counted_resume(&events, &counters).await;

    // A list only the mirror wrote proves nothing: one DynamoDB query, and one Redis
    // request to prove the list. The conversation's tombstone (none: never erased) is
    // read once per process, and again only after an erasure anywhere.
    let body = redeem(&state, &conversation).await;
    assert_eq!(body["events"].as_array().unwrap().len(), HYDRATION_EVENTS);
    assert_eq!(
        counters.take(),
        (2, 1 + 1),
        "history from dynamodb, the list proven"
    );

    // Proven: the rate limit, the single-use mark and the history in one request.
    let body = redeem(&state, &conversation).await;
    assert_eq!(body["events"].as_array().unwrap().len(), HYDRATION_EVENTS);
    assert_eq!(counters.take(), (1, 0), "cached history");

    // Not cached (the list is gone): one DynamoDB query, then one Redis request to refill
    // and prove it.
    let key = format!("{}chat:conversation:{conversation}:events", events.prefix);
    events.redis.command(&["DEL", &key]).await.unwrap();
    let body = redeem(&state, &conversation).await;
    assert_eq!(body["events"].as_array().unwrap().len(), HYDRATION_EVENTS);
    assert_eq!(
        counters.take(),
        (2, 1),
        "history from dynamodb, then refilled"
    );
    // Refilled with all 30, as many as the list holds.
    assert_eq!(events.cached(&conversation).await.len(), 30);

    // Refilled: back to one request.
    redeem(&state, &conversation).await;
    assert_eq!(counters.take(), (1, 0), "refilled history");
}
