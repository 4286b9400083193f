//! `POST /api/chat/erase` over the real local stack (DynamoDB Local, Redis behind the
//! Upstash REST proxy): a conversation erased from both stores, another left whole, and
//! nothing that could bring the erased events back able to: a webhook redelivery, an SQS
//! record and a Kinesis record are skipped as `erased`, an old session (by `resume`,
//! `ably-token` and `ably-publish`) and an old resume link are refused; a new event after
//! the erasure is stored.

use aws_sdk_dynamodb::types::AttributeValue;
use chat_core::storage::dynamo::REPORTS_INDEX;
use chat_core::storage::Keys;
use serde_json::{json, Value};

use crate::helpers::*;

const CUSTOMER: &str = "customer:u-1";

/// A conversation's day: a customer's message and an edit of it, a broker's answer, an
/// SLA warning (in the reports index) and a forgery (untrusted, in the index too).
fn conversation(conv: &str, ms: i64) -> Vec<Value> {
    let serial = serial_for(conv);
    vec![
        ably_create(
            &format!("{conv}:0"),
            &serial,
            CUSTOMER,
            "message:user",
            json!({"text": "my card number is ..."}),
            ms,
        ),
        ably_edit(
            &serial,
            1,
            CUSTOMER,
            CUSTOMER,
            "message:user",
            json!({"text": "my address is ..."}),
            ms + 1,
        ),
        json!({"id": format!("{conv}:2"), "clientId": "broker:b-1", "name": "message:ai", "timestamp": ms + 2, "data": {"text": "noted"}}),
        json!({"id": format!("{conv}:3"), "clientId": "service:sla", "name": "sla:warning", "timestamp": ms + 3, "data": {"minutes": 5}}),
        json!({"id": format!("{conv}:4"), "clientId": CUSTOMER, "name": "agent_joined", "timestamp": ms + 4, "data": {}}),
    ]
}

/// The sort keys of `conv`'s items in the table, and the partitions of the reports index.
async fn stored(app: &ResumeApp, conv: &str) -> (Vec<String>, Vec<String>) {
    let items = scan_table(&app.events.dynamo, &app.events.table).await;
    let keys = items
        .iter()
        .filter(|i| i.get("conversation_id") == Some(&AttributeValue::S(conv.to_owned())))
        .filter_map(|i| i.get("event_key")?.as_s().ok().cloned())
        .collect();
    let indexed = app
        .events
        .dynamo
        .scan()
        .table_name(&app.events.table)
        .index_name(REPORTS_INDEX)
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .filter(|i| i.get("conversation_id") == Some(&AttributeValue::S(conv.to_owned())))
        .filter_map(|i| i.get("id")?.as_s().ok().cloned())
        .collect();
    (keys, indexed)
}

/// Which of `conv`'s cache keys exist: its list, and the seen markers of `ids`.
async fn cached(app: &ResumeApp, conv: &str, ids: &[String]) -> Vec<String> {
    let keys = Keys::new(app.events.prefix.clone());
    let mut names = vec![keys.events(conv)];
    names.extend(ids.iter().map(|id| keys.seen(conv, id)));
    let mut present = Vec::new();
    for name in names {
        let exists = app
            .events
            .redis
            .command(&["EXISTS", name.as_str()])
            .await
            .unwrap();
        if exists == json!(1) {
            present.push(name);
        }
    }
    present
}

fn session_cookie(conv: &str) -> String {
    format!("__Host-chat_session={}", session_token(conv))
}

#[tokio::test]
async fn erasure_removes_a_conversation_everywhere_and_nothing_brings_it_back() {
    let app = ResumeApp::new().await;
    let records = records_state_over(&app.events).await;
    let (gone, kept) = (unique("erase"), unique("keep"));
    let ms = chrono::Utc::now().timestamp_millis() - 60_000;
    let (gone_batch, kept_batch) = (conversation(&gone, ms), conversation(&kept, ms));
    deliver(&app.events, Via::Json, &gone, &gone_batch).await;
    deliver(&app.events, Via::Json, &kept, &kept_batch).await;
    let ids_of = |batch: &[Value]| {
        batch
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let (gone_ids, kept_ids) = (ids_of(&gone_batch), ids_of(&kept_batch));
    let (before, indexed) = stored(&app, &gone).await;
    assert_eq!(before.len(), 5, "every version is an item: {before:?}");
    assert_eq!(
        indexed.len(),
        2,
        "the SLA warning and the forgery are in reports"
    );
    assert!(!cached(&app, &gone, &gone_ids).await.is_empty());
    let kept_cache = cached(&app, &kept, &kept_ids).await;
    assert!(kept_cache.len() > 1, "{kept_cache:?}");
    // Credentials issued before the erasure.
    let old_session = session_cookie(&gone);
    let old_link = app.link(&gone).await;
    let poll = |cookie: String, conv: String| {
        let app = &app;
        async move {
            app.poll(
                &[("cookie", cookie.as_str())],
                &format!("conversationId={conv}"),
            )
            .await
        }
    };
    assert_eq!(poll(old_session.clone(), gone.clone()).await.status(), 200);
    // ably-token and ably-publish over the same table; nothing reaches Ably (a closed
    // port): every publish below is refused before it.
    let token = token_state(&[("CHAT_EVENTS_TABLE", &app.events.table)]);
    let no_ably = format!("http://127.0.0.1:{}", closed_port());
    let publisher = publish_state(&no_ably, &[("CHAT_EVENTS_TABLE", &app.events.table)]);
    let publish_as = |cookie: String, conv: String| {
        let publisher = &publisher;
        async move {
            let body = json!({"channelName": format!("conversation:{conv}"),
                "eventName": "message:user", "data": "hi"})
            .to_string();
            chat_core::handlers::publish::handle(
                publisher,
                api_request(
                    "POST",
                    "/api/ably/publish",
                    &[("cookie", cookie.as_str())],
                    Some(&body),
                ),
            )
            .await
        }
    };
    let old_token = post_token(&token, &[("cookie", old_session.as_str())], None).await;
    assert_eq!(old_token.status(), 200, "{:?}", body_json(&old_token));

    // Only an admin may erase.
    for role in ["broker", "service", "customer"] {
        let refused = erase_as(&records, role, &gone).await;
        assert_eq!(refused.status(), 403, "{role}");
        assert_eq!(body_json(&refused)["code"], "role_forbidden");
    }
    let answer = erase_as(&records, "admin", &gone).await;
    let erased = body_json(&answer);
    assert_eq!(answer.status(), 200, "{erased}");
    assert_eq!(erased["conversationId"], gone.as_str());
    assert_eq!(erased["archiveItems"], 5, "{erased}");
    assert!(erased["cacheKeys"].as_u64().unwrap() >= 1, "{erased}");
    let erased_at = erased["erasedAt"].as_str().unwrap().to_owned();

    // DynamoDB holds the tombstone only, and no index holds anything of it; Redis nothing.
    let (after, indexed) = stored(&app, &gone).await;
    assert_eq!(after, ["!erased"], "only the content-free tombstone");
    assert!(indexed.is_empty(), "{indexed:?}");
    let tombstone = scan_table(&app.events.dynamo, &app.events.table)
        .await
        .into_iter()
        .find(|i| i.get("conversation_id") == Some(&AttributeValue::S(gone.clone())))
        .unwrap();
    let mut fields: Vec<&str> = tombstone.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "archive_items",
            "cache_keys",
            "conversation_id",
            "erased_at",
            "erased_by",
            "erasures",
            "event_key"
        ],
        "counts and who, never content"
    );
    assert_eq!(tombstone["erased_by"].as_s().unwrap(), "admin:admin-1");
    assert!(cached(&app, &gone, &gone_ids).await.is_empty());
    // The other conversation is whole.
    assert_eq!(stored(&app, &kept).await.0.len(), 5);
    assert_eq!(cached(&app, &kept, &kept_ids).await, kept_cache);

    // Every path that could bring the events back skips them as erased.
    let redelivered = deliver(&app.events, Via::Json, &gone, &gone_batch).await;
    assert_eq!(redelivered["stored"], 0, "{redelivered}");
    assert_eq!(
        redelivered["skipped"],
        json!((0..5)
            .map(|i| format!("event {i}: erased"))
            .collect::<Vec<_>>()),
        "{redelivered}"
    );
    // Each queue path's record also carries one event from after the erasure: it parsed,
    // and only the erased events were skipped.
    let mut since = Vec::new();
    for (n, via) in [Via::Msgpack, Via::Sqs, Via::Kinesis]
        .into_iter()
        .enumerate()
    {
        let mut batch = gone_batch.clone();
        let id = format!("{gone}:after-{n}");
        batch.push(
            json!({"id": id, "clientId": CUSTOMER, "name": "message:user",
            "timestamp": chrono::Utc::now().timestamp_millis(), "data": {"text": "new"}}),
        );
        deliver(&app.events, via, &gone, &batch).await;
        since.push(id);
        let (keys, _) = stored(&app, &gone).await;
        assert_eq!(keys.len(), 1 + since.len(), "{via:?}: {keys:?}");
        assert!(
            since
                .iter()
                .all(|id| keys.iter().any(|k| k.ends_with(&format!("#{id}")))),
            "{via:?}: {keys:?}"
        );
    }
    // The list holds the new events; no erased event's seen marker came back.
    assert_eq!(
        cached(&app, &gone, &gone_ids).await,
        [Keys::new(app.events.prefix.clone()).events(&gone)]
    );

    // The old session and the old link are refused; the transcript says when.
    let refused = poll(old_session.clone(), gone.clone()).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(body_json(&refused)["code"], "conversation_erased");
    let refused = app.redeem(&old_link).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(body_json(&refused)["code"], "conversation_erased");
    // Nor does the old session get an Ably token (whose history capability would read
    // Ably's own copy of the erased messages) or publish; a bearer customer of the
    // conversation still gets one.
    let refused = post_token(&token, &[("cookie", old_session.as_str())], None).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(body_json(&refused)["code"], "conversation_erased");
    let refused = publish_as(old_session.clone(), gone.clone()).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(body_json(&refused)["code"], "conversation_erased");
    let customer = bearer("u-1", "customer", &[gone.as_str()]);
    let body = json!({"conversationId": gone}).to_string();
    let admitted = post_token_as(&token, &customer, &body).await;
    assert_eq!(admitted.status(), 200, "{:?}", body_json(&admitted));
    let transcript = chat_core::handlers::records::handle(
        &records,
        api_request(
            "GET",
            &format!("/api/chat/transcript?conversationId={gone}"),
            &[(
                "authorization",
                &format!("Bearer {}", bearer("ops-1", "admin", &[])),
            )],
            None,
        ),
    )
    .await;
    let transcript = body_json(&transcript);
    let items: Vec<&str> = transcript["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(items, since, "only what came after: {transcript}");
    assert_eq!(transcript["erasedAt"], erased_at.as_str());
    // The other conversation's session still works.
    assert_eq!(
        poll(session_cookie(&kept), kept.clone()).await.status(),
        200
    );

    // After the erasure: a new session works, and a new event is stored.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let new_session = session_cookie(&gone);
    let later = chrono::Utc::now().timestamp_millis();
    let fresh = json!({"id": format!("{gone}:new"), "clientId": CUSTOMER, "name": "message:user",
        "timestamp": later, "data": {"text": "hello again"}});
    let answer = deliver(&app.events, Via::Json, &gone, &[fresh]).await;
    assert_eq!(answer["stored"], 1, "{answer}");
    let admitted = post_token(&token, &[("cookie", new_session.as_str())], None).await;
    assert_eq!(admitted.status(), 200, "{:?}", body_json(&admitted));
    let polled = poll(new_session, gone.clone()).await;
    let polled = body_json(&polled);
    let seen: Vec<&str> = polled["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    since.push(format!("{gone}:new"));
    assert_eq!(seen, since, "{polled}");

    // Idempotent: erasing again deletes what came since, and moves erasedAt on.
    let again = erase_as(&records, "admin", &gone).await;
    let again = body_json(&again);
    assert_eq!(again["archiveItems"], since.len(), "{again}");
    assert!(again["erasedAt"].as_str().unwrap() > erased_at.as_str());
    let once_more = body_json(&erase_as(&records, "admin", &gone).await);
    assert_eq!(once_more["archiveItems"], 0, "{once_more}");
    assert_eq!(stored(&app, &gone).await.0, ["!erased"]);
}
