//! What a redeemed link hydrates: the newest trusted events, from Redis or DynamoDB,
//! and what it tells the client about realtime.

use chat_core::handlers::resume::handle;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn redeeming_hydrates_the_newest_20_events_from_redis_then_from_dynamodb() {
    let r = ResumeApp::new().await;
    let start = (unix_now() - 600) * 1000;
    let stored = r.events.post(&flat_batch("conv-h", 25, start)).await;
    assert_eq!(stored.status(), 200, "{:?}", body_json(&stored));
    // Another conversation's events never leak in.
    assert_eq!(
        r.events
            .post(&flat_batch("conv-h2", 3, start))
            .await
            .status(),
        200
    );
    let newest: Vec<String> = (5..25).rev().map(|i| format!("conv-h-m{i}")).collect();

    let response = r.redeem(&r.link("conv-h").await).await;
    assert_eq!(response.status(), 200);
    let body = body_json(&response);
    assert_eq!(body["conversationId"], json!("conv-h"));
    assert_eq!(ids(&body["events"]), newest);
    let first = &body["events"][0];
    assert_eq!(first["event_type"], json!("message:user"));
    assert_eq!(first["payload"], json!({"text": "message 24"}));
    assert_eq!(first["channel"], json!("conversation:conv-h"));

    // With the Redis list gone, the archive answers in the same order and refills Redis.
    let list = format!("{}chat:conversation:conv-h:events", r.events.prefix);
    redis().command(&["DEL", list.as_str()]).await.unwrap();
    let response = r.redeem(&r.link("conv-h").await).await;
    assert_eq!(response.status(), 200);
    let from_archive = body_json(&response);
    assert_eq!(ids(&from_archive["events"]), newest);
    assert_eq!(from_archive["events"], body["events"]);
    let cached: Vec<String> = r
        .events
        .cached("conv-h")
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    // Refilled with every event DynamoDB holds (the list holds up to 100).
    let all: Vec<String> = (0..25).rev().map(|i| format!("conv-h-m{i}")).collect();
    assert_eq!(cached, all);
}

#[tokio::test]
async fn a_spent_link_still_yields_a_session_when_history_cannot_be_read() {
    // The Redis list is empty and DynamoDB refuses every query: history fails. (The
    // conversation's tombstone, one GetItem, is read: a link is never redeemed without
    // knowing its conversation was not erased; see the test below.)
    let r = ResumeApp::new().await;
    let redis = chat_core::storage::redis::RedisClient::new(&r.state.config.redis);
    let broken = resume_state_with(
        &r.events,
        &[],
        redis,
        refusing_dynamo(&["KeyConditionExpression"], usize::MAX),
    );
    let token = r.link("conv-nohist").await;
    let response = redeem_on(&broken, &token).await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    assert!(session_cookie(&response)
        .0
        .starts_with("__Host-chat_session="));
    assert_eq!(
        body_json(&response),
        json!({"conversationId": "conv-nohist", "events": [], "realtime": true, "historyUnavailable": true})
    );
    // Polling the same history is an honest 503.
    let auth = format!("Bearer {}", bearer("broker-1", "broker", &[]));
    let poll = handle(
        &broken,
        api_request(
            "GET",
            "/api/chat/events?conversationId=conv-nohist",
            &[("authorization", &auth)],
            None,
        ),
    )
    .await;
    assert_eq!(poll.status(), 503);
    assert_eq!(body_json(&poll)["code"], json!("history_unavailable"));
}

#[tokio::test]
async fn a_link_is_not_spent_while_the_archive_cannot_say_whether_it_was_erased() {
    // The archive table does not exist: the tombstone cannot be read.
    let r = ResumeApp::new().await;
    let broken = r
        .sibling(&[("CHAT_EVENTS_TABLE", "no-such-table-for-resume-tests")])
        .await;
    let token = r.link("conv-notomb").await;
    let response = redeem_on(&broken, &token).await;
    assert_eq!(response.status(), 503, "{:?}", body_json(&response));
    assert_eq!(body_json(&response)["code"], json!("history_unavailable"));
    // Not spent: once the archive answers, the same link is redeemed.
    assert_eq!(r.redeem(&token).await.status(), 200);
}

#[tokio::test]
async fn a_redeemed_link_tells_the_client_to_poll_when_realtime_is_off() {
    let r = ResumeApp::build(&[("ENABLE_ABLY_REALTIME", "false")]).await;
    let response = r.redeem(&r.link("conv-p").await).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body_json(&response)["realtime"], json!(false));
    let session = session_cookie(&response).0;
    let response = r
        .poll(&[("cookie", &session)], "conversationId=conv-p")
        .await;
    assert_eq!(
        body_json(&response),
        json!({"events": [], "cursor": "", "realtime": false})
    );
}

#[tokio::test]
async fn forged_staff_events_are_absent_from_redeemed_history_and_from_polls() {
    let r = ResumeApp::new().await;
    let conv = "conv-forged-h";
    let start = (unix_now() - 600) * 1000;
    let body = forged_and_genuine(conv, start);
    assert_eq!(r.events.post(&body).await.status(), 200);
    let (forged, genuine) = forged_ids(conv);
    let newest_first: Vec<String> = genuine.iter().rev().cloned().collect();

    // Redeemed history: from Redis, then (the list gone) from DynamoDB, genuine only.
    let response = r.redeem(&r.link(conv).await).await;
    let from_cache = body_json(&response);
    assert_eq!(ids(&from_cache["events"]), newest_first);
    assert!(from_cache["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["trusted"] == true));
    let list = format!("{}chat:conversation:{conv}:events", r.events.prefix);
    assert_eq!(r.events.cached(conv).await.len(), 8, "the record keeps all");
    redis().command(&["DEL", list.as_str()]).await.unwrap();
    let response = r.redeem(&r.link(conv).await).await;
    assert_eq!(ids(&body_json(&response)["events"]), newest_first);

    // Polling: genuine only, oldest first.
    let session = format!("__Host-chat_session={}", session_token(conv));
    let response = r
        .poll(&[("cookie", &session)], &format!("conversationId={conv}"))
        .await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    let page = body_json(&response);
    assert_eq!(ids(&page["events"]), genuine);
    // Forgeries after the cursor are withheld, and the cursor moves past them.
    let later = json!({"items": (8..10).map(|i| json!({"id": format!("{conv}-{i}"),
        "name": "message:ai", "channel": format!("conversation:{conv}"),
        "clientId": format!("customer-{conv}"), "timestamp": start + i, "data": {"text": "forged"}}))
        .collect::<Vec<_>>()});
    assert_eq!(
        r.events.post(later.to_string().as_bytes()).await.status(),
        200
    );
    let cursor = page["cursor"].as_str().unwrap().to_owned();
    let response = r
        .poll(
            &[("cookie", &session)],
            &format!("conversationId={conv}&after={cursor}"),
        )
        .await;
    let next = body_json(&response);
    assert_eq!(next["events"], json!([]));
    assert_ne!(
        next["cursor"],
        json!(cursor),
        "the cursor moved past the withheld events"
    );
    let response = r
        .poll(
            &[("cookie", &session)],
            &format!(
                "conversationId={conv}&after={}",
                next["cursor"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(body_json(&response)["events"], json!([]));
    assert_eq!(body_json(&response)["cursor"], next["cursor"]);
    assert!(forged.iter().all(|id| !ids(&page["events"]).contains(id)));
}
