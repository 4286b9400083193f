//! Redis is a cache: what a failed cache write leaves out of a list is never hidden from a
//! reader, and a request that fails in transit is tried once more.

use serde_json::json;

use super::tcp_proxy::{Fault, FaultProxy};
use super::{redis_at, socket_addr, Budget, Rig};
use crate::helpers::{poll_ids, resume_over, stack_var, unique, until_epoch_settles};
use chat_core::storage::history::HistorySource;
use chat_core::storage::RedisError;

/// A flat batch of one `message:user` of `conversation` at `ms`.
fn one_event(conversation: &str, id: &str, ms: i64) -> Vec<u8> {
    json!({"items": [{"id": id, "name": "message:user", "channel": format!("conversation:{conversation}"),
        "clientId": "customer-1", "data": {"text": id}, "timestamp": ms}]})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_cache_write_failed_reaches_every_reader_after_redis_is_back() {
    // The mirror reaches Redis through a proxy that can cut it off; the readers (another
    // function) reach it directly. The list itself outlives the outage, as on Upstash.
    let redis_url = stack_var("UPSTASH_REDIS_REST_URL");
    let cut = FaultProxy::start(socket_addr(&redis_url)).await;
    let dynamo = stack_var("AWS_ENDPOINT_URL_DYNAMODB");
    let rig = Rig::new(&cut.url(), &redis_url, &dynamo, &dynamo).await;
    let resume = resume_over(&rig.table, &rig.prefix, &redis_url).await;
    let history = resume.history.clone();
    let conversation = unique("outage");
    let start = chrono::Utc::now().timestamp_millis() - 60_000;
    let ids = |names: &[&str]| -> Vec<String> { names.iter().map(|n| (*n).to_owned()).collect() };

    let (status, receipt) = rig
        .call(&one_event(&conversation, "e0", start), Budget::Default)
        .await;
    assert_eq!((status, receipt.get("cache")), (200, None));
    // A client polls from the start (which proves the list) and holds e0's cursor.
    let (page, cursor) = poll_ids(&resume, &conversation, "").await;
    assert_eq!(page, ids(&["e0"]));

    // Redis unreachable for the mirror of e1: stored in DynamoDB, not in the list.
    cut.set(Fault::Reset);
    let (status, receipt) = rig
        .call(&one_event(&conversation, "e1", start + 1), Budget::Default)
        .await;
    assert_eq!(
        (status, receipt["cache"].as_str()),
        (200, Some("unavailable"))
    );
    cut.set(Fault::Pass);
    let (status, _) = rig
        .call(&one_event(&conversation, "e2", start + 2), Budget::Default)
        .await;
    assert_eq!(status, 200);
    assert_eq!(rig.cached_ids(&conversation).await, ids(&["e2", "e0"]));

    // The client following its cursor gets both, and resume history has e1.
    let (page, cursor) = poll_ids(&resume, &conversation, &cursor).await;
    assert_eq!(page, ids(&["e1", "e2"]));
    let (events, source) = history.recent_events(&conversation, 20).await.unwrap();
    let newest_first: Vec<String> = events.into_iter().map(|e| e.id).collect();
    assert_eq!(
        (newest_first, source),
        (ids(&["e2", "e1", "e0"]), HistorySource::Archive)
    );

    // Once the failed mirror's writes have settled, a read of DynamoDB proves the list
    // again, with e1 merged into it, and the list answers.
    until_epoch_settles(&rig.state.stores).await;
    let reader = resume_over(&rig.table, &rig.prefix, &redis_url)
        .await
        .history;
    let (_, source) = reader.recent_events(&conversation, 20).await.unwrap();
    assert_eq!(source, HistorySource::Archive);
    let mut cached = rig.cached_ids(&conversation).await;
    cached.sort();
    assert_eq!(cached, ids(&["e0", "e1", "e2"]));
    let (events, source) = reader.recent_events(&conversation, 20).await.unwrap();
    let newest_first: Vec<String> = events.into_iter().map(|e| e.id).collect();
    assert_eq!(
        (newest_first, source),
        (ids(&["e2", "e1", "e0"]), HistorySource::Cache)
    );
    let (page, _) = poll_ids(&resume, &conversation, &cursor).await;
    assert!(page.is_empty(), "{page:?}");
}

#[tokio::test]
async fn an_upstash_request_that_fails_in_transit_is_tried_once_more() {
    let redis_url = stack_var("UPSTASH_REDIS_REST_URL");
    let proxy = FaultProxy::start(socket_addr(&redis_url)).await;
    let client = redis_at(&proxy.url());

    // One request lost: the retry answers.
    proxy.set(Fault::ResetRequests(1));
    assert_eq!(client.command(&["PING"]).await.unwrap(), json!("PONG"));
    assert_eq!(proxy.reset_requests(), 1);

    // Lost twice: an error, after exactly two attempts (the third reset is left over).
    proxy.set(Fault::ResetRequests(3));
    let err = client.command(&["PING"]).await.unwrap_err();
    assert!(matches!(err, RedisError::Unavailable(_)), "{err}");
    assert_eq!(proxy.reset_requests(), 3);

    // A mirror through a blip is cached, and the cache epoch stays where it was.
    let dynamo = stack_var("AWS_ENDPOINT_URL_DYNAMODB");
    proxy.set(Fault::ResetRequests(1));
    let rig = Rig::new(&proxy.url(), &redis_url, &dynamo, &dynamo).await;
    let conversation = unique("blip");
    let (status, receipt) = rig
        .call(
            &one_event(&conversation, "b0", 1_767_323_045_000),
            Budget::Default,
        )
        .await;
    assert_eq!((status, receipt.get("cache")), (200, None), "{receipt}");
    assert_eq!(rig.cached_ids(&conversation).await, ["b0"]);
    assert_eq!(rig.state.stores.epoch.read().await.unwrap().number, 0);
}
