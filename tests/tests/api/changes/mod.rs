//! Messages that change, over the real local stack, delivered every way Ably delivers
//! them (a signed JSON webhook, its MessagePack twin, an SQS record): edits, deletes and
//! reaction summaries as every reader sees them, and the record that keeps each version.

mod appends;

use serde_json::{json, Value};

use crate::helpers::{
    ably_change, ably_create, ably_edit, bearer, body_json, deliver, s, serial_for, unique,
    version_of, with, ResumeApp, Via, EVERY_WAY,
};

const CUSTOMER: &str = "customer:u-1";
const OTHER_CUSTOMER: &str = "customer:u-2";
const BROKER: &str = "broker:b-1";
const ADMIN: &str = "admin:a-1";

/// A resume app whose rate limits leave room for the many reads here.
async fn roomy() -> ResumeApp {
    ResumeApp::build(&[
        ("RATE_LIMIT_RESUME_MAX", "1000"),
        ("RATE_LIMIT_RESUME_EMAIL_MAX", "1000"),
        ("RATE_LIMIT_RESUME_REDEEM_MAX", "1000"),
        ("RATE_LIMIT_POLL_MAX", "1000"),
    ])
    .await
}

/// A minute ago: inside retention, not in the future.
fn a_minute_ago() -> i64 {
    chrono::Utc::now().timestamp_millis() - 60_000
}

/// The history a redeemed resume link hydrates, newest first.
async fn history(app: &ResumeApp, conv: &str) -> Vec<Value> {
    let response = app.redeem(&app.link(conv).await).await;
    let body = body_json(&response);
    assert_eq!(response.status(), 200, "{body}");
    body["events"].as_array().expect("events").clone()
}

/// One page of the change feed after `after` (empty: from the start), as a broker polls.
async fn feed(app: &ResumeApp, conv: &str, after: &str) -> (Vec<Value>, String) {
    let auth = format!("Bearer {}", bearer("broker-poll", "broker", &[]));
    let response = app
        .poll(
            &[("authorization", &auth)],
            &format!("conversationId={conv}&after={after}&limit=100"),
        )
        .await;
    let body = body_json(&response);
    assert_eq!(response.status(), 200, "{body}");
    (
        body["events"].as_array().expect("events").clone(),
        body["cursor"].as_str().expect("cursor").to_owned(),
    )
}

/// What a client holds after reading the whole feed, upserting by `serial` (else `id`)
/// and dropping deletes: its messages, oldest first.
async fn replayed(app: &ResumeApp, conv: &str) -> Vec<Value> {
    let mut held: Vec<Value> = Vec::new();
    let (page, _) = feed(app, conv, "").await;
    for event in page {
        let key = |e: &Value| e["serial"].as_str().or(e["id"].as_str()).map(str::to_owned);
        held.retain(|h| key(h) != key(&event));
        if event["action"] != "message.delete" {
            held.push(event);
        }
    }
    held.sort_by(|a, b| a["occurred_at"].as_str().cmp(&b["occurred_at"].as_str()));
    held
}

/// The archived items of a conversation.
async fn archived(
    app: &ResumeApp,
    conv: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    app.events
        .chat_items()
        .await
        .into_iter()
        .filter(|i| s(i, "conversation_id") == conv)
        .collect()
}

#[tokio::test]
async fn an_edit_replaces_the_content_everywhere_and_the_original_stays_in_the_archive() {
    let app = roomy().await;
    for via in EVERY_WAY {
        let conv = unique("edit");
        let serial = serial_for("edit");
        let ms = a_minute_ago();
        let create = ably_create(
            "m-1:0",
            &serial,
            CUSTOMER,
            "message:user",
            json!({"text": "helo"}),
            ms,
        );
        deliver(&app.events, via, &conv, &[create]).await;
        // A client that has read the message...
        let (first, cursor) = feed(&app, &conv, "").await;
        assert_eq!(first.len(), 1, "{via:?}");
        assert_eq!(first[0]["action"], "message.create");
        assert_eq!(first[0]["serial"], serial.as_str());

        let edit = ably_edit(
            &serial,
            1,
            CUSTOMER,
            CUSTOMER,
            "message:user",
            json!({"text": "hello"}),
            ms,
        );
        deliver(&app.events, via, &conv, &[edit]).await;

        // ...gets the edit after its cursor, as the message now stands.
        let (after, _) = feed(&app, &conv, &cursor).await;
        assert_eq!(after.len(), 1, "{via:?}: {after:?}");
        let edited = &after[0];
        assert_eq!(edited["action"], "message.update");
        assert_eq!(edited["payload"], json!({"text": "hello"}));
        assert_eq!(edited["id"], "m-1:0", "the message's own id");
        assert_eq!(edited["client_id"], CUSTOMER);
        assert_eq!(edited["version"]["serial"], version_of(&serial, 1).as_str());
        assert_eq!(edited["version"]["client_id"], CUSTOMER);

        let hydrated = history(&app, &conv).await;
        assert_eq!(
            hydrated.len(),
            1,
            "{via:?}: one message, not one per version"
        );
        assert_eq!(hydrated[0]["payload"], json!({"text": "hello"}));
        assert_eq!(replayed(&app, &conv).await, hydrated);

        // The archive keeps both versions, with who made each.
        let items = archived(&app, &conv).await;
        assert_eq!(items.len(), 2, "{via:?}");
        let original = items
            .iter()
            .find(|i| s(i, "action") == "message.create")
            .unwrap();
        assert_eq!(s(original, "payload_json"), r#"{"text":"helo"}"#);
        assert_eq!(s(original, "serial"), serial);
        let update = items
            .iter()
            .find(|i| s(i, "action") == "message.update")
            .unwrap();
        assert_eq!(s(update, "version_serial"), version_of(&serial, 1));
        assert_eq!(s(update, "version_client_id"), CUSTOMER);
        assert_eq!(s(update, "serial"), serial);

        // A redelivery of either version changes nothing.
        let create = ably_create(
            "m-1:0",
            &serial,
            CUSTOMER,
            "message:user",
            json!({"text": "helo"}),
            ms,
        );
        deliver(&app.events, via, &conv, &[create]).await;
        assert_eq!(archived(&app, &conv).await.len(), 2);
        assert_eq!(history(&app, &conv).await, hydrated);
    }
}

#[tokio::test]
async fn out_of_order_versions_leave_the_newest() {
    let app = roomy().await;
    for via in EVERY_WAY {
        let conv = unique("order");
        let serial = serial_for("order");
        let ms = a_minute_ago();
        let edit = |n: u32, text: &str| {
            ably_edit(&serial, n, BROKER, BROKER, "message:ai", json!(text), ms)
        };
        // The second edit arrives first, the create last.
        deliver(&app.events, via, &conv, &[edit(2, "third")]).await;
        deliver(&app.events, via, &conv, &[edit(1, "second")]).await;
        let create = ably_create("a-1:0", &serial, BROKER, "message:ai", json!("first"), ms);
        deliver(&app.events, via, &conv, &[create]).await;
        let hydrated = history(&app, &conv).await;
        assert_eq!(hydrated.len(), 1, "{via:?}");
        assert_eq!(hydrated[0]["payload"], "third");
        assert_eq!(
            hydrated[0]["version"]["serial"],
            version_of(&serial, 2).as_str()
        );
        assert_eq!(replayed(&app, &conv).await, hydrated);
    }
}

#[tokio::test]
async fn a_customers_edit_or_delete_of_a_brokers_message_is_kept_untrusted_and_changes_nothing() {
    let app = roomy().await;
    for via in EVERY_WAY {
        let conv = unique("forged-edit");
        let serial = serial_for("forged");
        let ms = a_minute_ago();
        let create = ably_create(
            "b-1:0",
            &serial,
            BROKER,
            "message:ai",
            json!({"text": "Your refund is approved? No."}),
            ms,
        );
        deliver(&app.events, via, &conv, &[create]).await;
        let before = history(&app, &conv).await;
        let forged_edit = ably_edit(
            &serial,
            1,
            BROKER,
            CUSTOMER,
            "message:ai",
            json!({"text": "Your refund is approved."}),
            ms,
        );
        let forged_delete = ably_change(2, &serial, 2, BROKER, Some(OTHER_CUSTOMER), ms);
        let answer = deliver(&app.events, via, &conv, &[forged_edit, forged_delete]).await;
        if via != Via::Sqs {
            assert_eq!(answer["stored"], 2, "{answer}");
        }
        assert_eq!(history(&app, &conv).await, before, "{via:?}");
        assert_eq!(replayed(&app, &conv).await, before);
        let items = archived(&app, &conv).await;
        assert_eq!(items.len(), 3, "every version is archived");
        let untrusted: Vec<String> = items
            .iter()
            .filter(|i| i.get("trusted").and_then(|t| t.as_bool().ok()) == Some(&false))
            .map(|i| s(i, "version_client_id"))
            .collect();
        assert_eq!(untrusted.len(), 2, "{via:?}: {untrusted:?}");
    }
}

#[tokio::test]
async fn an_admins_delete_removes_a_customers_message_from_every_read() {
    let app = roomy().await;
    for via in EVERY_WAY {
        let conv = unique("delete");
        let ms = a_minute_ago();
        let (keep, gone) = (serial_for("keep"), serial_for("gone"));
        deliver(
            &app.events,
            via,
            &conv,
            &[
                ably_create(
                    "k:0",
                    &keep,
                    CUSTOMER,
                    "message:user",
                    json!({"text": "fine"}),
                    ms,
                ),
                ably_create(
                    "g:0",
                    &gone,
                    CUSTOMER,
                    "message:user",
                    json!({"text": "my card is 4111..."}),
                    ms + 1,
                ),
            ],
        )
        .await;
        let (_, cursor) = feed(&app, &conv, "").await;
        let delete = with(
            ably_change(2, &gone, 1, CUSTOMER, Some(ADMIN), ms + 1),
            "name",
            json!("message:user"),
        );
        deliver(&app.events, via, &conv, &[delete]).await;

        let hydrated = history(&app, &conv).await;
        let ids: Vec<&str> = hydrated.iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["k:0"], "{via:?}");
        // A client past the message hears of the delete; one from the start never sees it.
        let (after, _) = feed(&app, &conv, &cursor).await;
        assert_eq!(after.len(), 1);
        assert_eq!(after[0]["action"], "message.delete");
        assert_eq!(after[0]["serial"], gone.as_str());
        assert_eq!(
            after[0]["payload"],
            Value::Null,
            "the deleted content is not served"
        );
        assert_eq!(replayed(&app, &conv).await, hydrated);
        let history_reader = &app.state.history;
        let (recent, _) = history_reader.recent_events(&conv, 20).await.unwrap();
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].id, "k:0");
    }
}

#[tokio::test]
async fn a_reaction_summary_is_not_a_message_and_shows_as_reactions() {
    let app = roomy().await;
    for via in EVERY_WAY {
        let conv = unique("reactions");
        let serial = serial_for("liked");
        let ms = a_minute_ago();
        let create = ably_create(
            "r:0",
            &serial,
            BROKER,
            "message:ai",
            json!({"text": "Done!"}),
            ms,
        );
        let summary = with(
            ably_change(4, &serial, 1, BROKER, None, ms),
            "annotations",
            json!({"summary": {"reaction:distinct.v1": {"👍": {"total": 2, "clientIds": ["customer:u-1", "customer:u-2"]}}}}),
        );
        deliver(&app.events, via, &conv, &[create]).await;
        deliver(&app.events, via, &conv, &[summary]).await;
        let hydrated = history(&app, &conv).await;
        assert_eq!(hydrated.len(), 1, "{via:?}: {hydrated:?}");
        assert_eq!(hydrated[0]["payload"], json!({"text": "Done!"}));
        assert_eq!(
            hydrated[0]["reactions"]["reaction:distinct.v1"]["👍"]["total"],
            2
        );
        assert_eq!(replayed(&app, &conv).await, hydrated);
    }
}
