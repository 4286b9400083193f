//! Messages that change, as Ably delivers them (numeric actions, `serial`, `version`,
//! `annotations.summary`, `extras.headers`): what the parser makes of each, how a
//! delivery's appends collapse, and the property that the current view and the change
//! feed agree with the newest trusted version whatever the deliveries were.

use std::collections::{BTreeMap, HashMap};

use chat_core::ably::webhook::{parse, parse_delivery};
use chat_core::events::change::Action;
use chat_core::events::view::{self, State};
use chat_core::events::ChatEvent;
use proptest::prelude::*;
use serde_json::{json, Value};

const CHANNEL: &str = "conversation:c1";
const OWNER: &str = "customer:u1";
const ADMIN: &str = "admin:a1";
const INTRUDER: &str = "customer:u2";
const SERIAL: &str = "01726500000000-000@e1";
const T0: i64 = 1_726_500_000_000;

fn batched(messages: &[Value]) -> Vec<u8> {
    json!({"items": [{"webhookId": "w", "source": "channel.message", "timestamp": T0,
        "data": {"channelId": CHANNEL, "site": "eu", "messages": messages}}]})
    .to_string()
    .into_bytes()
}

/// Version `n` of the message: Ably's version serial and time for it.
fn version_serial(n: usize) -> String {
    format!("{SERIAL}:{n:04}")
}

fn create(text: &str) -> Value {
    json!({"id": "m:0", "clientId": OWNER, "name": "message:user", "timestamp": T0,
        "serial": SERIAL, "action": 0, "data": text,
        "version": {"serial": SERIAL, "timestamp": T0}})
}

fn change(action: u8, n: usize, editor: Option<&str>, data: Option<&str>) -> Value {
    let mut message = json!({"id": format!("m:{n}"), "clientId": OWNER, "timestamp": T0,
        "serial": SERIAL, "action": action,
        "version": {"serial": version_serial(n), "timestamp": T0 + 10 * n as i64}});
    if let Some(editor) = editor {
        message["version"]["clientId"] = json!(editor);
    }
    if let Some(data) = data {
        message["data"] = json!(data);
    }
    if action == 1 || action == 2 {
        message["name"] = json!("message:user");
    }
    message
}

#[test]
fn every_field_of_a_change_is_read_and_judged_on_its_editor() {
    let mut summary = change(4, 3, None, None);
    summary["annotations"] = json!({"summary": {"reaction:distinct.v1": {"👍": {"total": 2}}}});
    let mut edit = change(1, 1, Some(OWNER), Some("edited"));
    edit["extras"] = json!({"headers": {"status": "final"}});
    let body = batched(&[
        create("hello"),
        edit,
        change(1, 2, Some(INTRUDER), Some("forged")),
        summary,
        json!({"serial": SERIAL, "action": 3, "timestamp": T0}),
        json!({"action": "message.update", "timestamp": T0, "name": "message:user"}),
        json!({"serial": SERIAL, "action": 9, "timestamp": T0}),
    ]);
    let batch = parse(&body).unwrap();
    assert_eq!(batch.lifecycle, 1, "meta is counted like lifecycle");
    assert_eq!(
        batch.skipped,
        [
            "item 0 messages[5]: message.update without serial",
            "item 0 messages[6]: unknown action 9"
        ]
    );
    let [created, edited, forged, summarised] = &batch.events[..] else {
        panic!("{:?}", batch.events);
    };
    assert_eq!(created.action, Some(Action::Create));
    assert_eq!(created.serial.as_deref(), Some(SERIAL));
    assert!(created.version.is_none() && created.trusted);
    assert_eq!(edited.action, Some(Action::Update));
    assert_eq!(edited.id, format!("{SERIAL}@{}", version_serial(1)));
    assert_eq!(
        edited.occurred_at, "2024-09-16T15:20:00.010Z",
        "the change's time"
    );
    assert_eq!(
        edited.message_at.as_deref(),
        Some("2024-09-16T15:20:00.000Z")
    );
    let version = edited.version.as_ref().unwrap();
    assert_eq!(version.client_id.as_deref(), Some(OWNER));
    assert_eq!(
        edited.headers.as_ref().unwrap(),
        &json!({"status": "final"})
    );
    assert!(edited.trusted);
    assert!(!forged.trusted, "another customer's edit");
    assert_eq!(summarised.action, Some(Action::Summary));
    assert_eq!(summarised.event_type, "message.summary");
    assert!(summarised.trusted);
    assert_eq!(
        summarised.reactions.as_ref().unwrap(),
        &json!({"reaction:distinct.v1": {"👍": {"total": 2}}})
    );

    let (shown, unknown) = view::current(&batch.events);
    assert!(unknown.is_empty());
    assert_eq!(shown.len(), 1, "one message, not a message per version");
    let message = &shown[0];
    assert_eq!(message.payload, json!("edited"));
    assert_eq!(message.id, "m:0");
    assert_eq!(message.occurred_at, "2024-09-16T15:20:00.000Z");
    assert_eq!(message.action, Some(Action::Update));
    assert_eq!(message.version.as_ref().unwrap().serial, version_serial(1));
    assert!(message.reactions.is_some());
    // Served as Ably names it.
    let served = serde_json::to_value(message).unwrap();
    assert_eq!(served["action"], "message.update");
    assert_eq!(served["version"]["updated_at"], "2024-09-16T15:20:00.010Z");
}

#[test]
fn a_deliverys_appends_collapse_into_one_entry_and_msgpack_gives_the_same() {
    let mut messages = vec![create("")];
    messages.extend((1..=50).map(|n| change(5, n, Some(OWNER), Some("tok "))));
    let body = batched(&messages);
    let batch = parse(&body).unwrap();
    assert_eq!(
        batch.events.len(),
        1,
        "one entry for the create and its 50 appends"
    );
    let entry = &batch.events[0];
    assert_eq!(entry.fragments.len(), 50);
    assert_eq!(entry.payload, json!("tok ".repeat(50)));
    assert_eq!(entry.message_id(), "m:0");
    let packed = rmp_serde::to_vec_named(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    let header = |name: &str| (name == "content-type").then_some("application/x-msgpack");
    assert_eq!(parse_delivery(&packed, header).unwrap(), batch);

    // Appends alone: one entry placed at the last of them.
    let alone = parse(&batched(&[
        change(5, 7, Some(OWNER), Some("a")),
        change(5, 8, Some(OWNER), Some("b")),
        change(5, 9, Some(INTRUDER), Some("x")),
    ]))
    .unwrap();
    assert_eq!(
        alone.events.len(),
        2,
        "the intruder's appends are their own entry"
    );
    let own = alone.events.iter().find(|e| e.trusted).unwrap();
    assert_eq!(own.payload, json!("ab"));
    assert_eq!(own.occurred_at, "2024-09-16T15:20:00.080Z");
    assert_eq!(own.version.as_ref().unwrap().serial, version_serial(8));
    assert_eq!(
        view::fold(&alone.events),
        State::Unknown,
        "no create among them"
    );
}

/// One operation after the create.
#[derive(Debug, Clone)]
enum Op {
    Update(&'static str, String),
    Append(&'static str, String),
    Delete(&'static str),
    Summary(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let editor = prop_oneof![Just(OWNER), Just(ADMIN), Just(INTRUDER)];
    prop_oneof![
        (editor.clone(), "[a-z]{1,4}").prop_map(|(e, t)| Op::Update(e, t)),
        (editor.clone(), "[a-z ]{1,3}").prop_map(|(e, t)| Op::Append(e, t)),
        (editor.clone(), "[a-z ]{1,3}").prop_map(|(e, t)| Op::Append(e, t)),
        editor.prop_map(Op::Delete),
        (0u8..9).prop_map(Op::Summary),
    ]
}

/// The messages Ably sends, and what the message is after the trusted ones: its text
/// and reactions, or `None` when deleted.
fn history(ops: &[Op]) -> (Vec<Value>, Option<(String, Option<u8>)>) {
    let mut messages = vec![create("start")];
    let (mut text, mut reactions, mut deleted) = ("start".to_owned(), None, false);
    for (i, op) in ops.iter().enumerate() {
        let n = i + 1;
        let trusted = |editor: &str| editor != INTRUDER;
        match op {
            Op::Update(editor, new) => {
                messages.push(change(1, n, Some(editor), Some(new)));
                if trusted(editor) {
                    // The newest trusted version is the message, even after a delete.
                    text = new.clone();
                    deleted = false;
                }
            }
            Op::Append(editor, fragment) => {
                messages.push(change(5, n, Some(editor), Some(fragment)));
                if trusted(editor) && !deleted {
                    text.push_str(fragment);
                }
            }
            Op::Delete(editor) => {
                messages.push(change(2, n, Some(editor), None));
                deleted |= trusted(editor);
            }
            Op::Summary(count) => {
                let mut summary = change(4, n, None, None);
                summary["annotations"] =
                    json!({"summary": {"reaction:total.v1": {"total": count}}});
                messages.push(summary);
                reactions = Some(*count);
            }
        }
    }
    (messages, (!deleted).then_some((text, reactions)))
}

/// Deliveries of `messages`: each at least once, some twice, in any order and grouping.
fn deliveries(messages: &[Value], order: &[(usize, usize)], cuts: &[usize]) -> Vec<Vec<Value>> {
    let mut sent: Vec<(usize, Value)> = messages.iter().cloned().enumerate().collect();
    for &(key, which) in order {
        if key % 3 == 0 {
            sent.push(sent[which % messages.len()].clone());
        }
    }
    sent.sort_by_key(|(i, _)| order.get(*i).map_or(*i, |(k, _)| *k));
    let mut out = Vec::new();
    let mut rest: Vec<Value> = sent.into_iter().map(|(_, m)| m).collect();
    for &cut in cuts {
        if rest.is_empty() {
            break;
        }
        let tail = rest.split_off(cut.clamp(1, rest.len()));
        out.push(std::mem::replace(&mut rest, tail));
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

fn text_of(event: &ChatEvent) -> (String, Option<u8>) {
    let reactions = event.reactions.as_ref().map(|r| {
        r.to_value()["reaction:total.v1"]["total"]
            .as_u64()
            .unwrap_or_default() as u8
    });
    (
        event
            .payload
            .to_value()
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        reactions,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_current_view_and_the_replayed_feed_are_the_newest_trusted_version(
        ops in prop::collection::vec(op(), 0..12),
        order in prop::collection::vec((0usize..1000, 0usize..100), 0..40),
        cuts in prop::collection::vec(1usize..6, 0..12),
        page in 1usize..5,
    ) {
        let (messages, expected) = history(&ops);
        // The archive: one item per key, the last write winning.
        let mut archive: BTreeMap<String, ChatEvent> = BTreeMap::new();
        for delivery in deliveries(&messages, &order, &cuts) {
            for event in parse(&batched(&delivery)).unwrap().events {
                archive.insert(event.event_key(), event);
            }
        }
        let entries: Vec<ChatEvent> = archive.values().cloned().collect();
        let (shown, _) = view::current(&entries);
        prop_assert_eq!(shown.iter().map(text_of).collect::<Vec<_>>(), expected.iter().cloned().collect::<Vec<_>>());

        // The feed, page by page; a client upserting by serial and dropping deletes.
        let mut client: HashMap<String, ChatEvent> = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let examined: Vec<ChatEvent> = entries
                .iter()
                .filter(|e| cursor.as_ref().is_none_or(|c| e.event_key() > *c))
                .take(page)
                .cloned()
                .collect();
            let Some(last) = examined.last().map(ChatEvent::event_key) else { break };
            for message in view::changed(&examined) {
                let (serial, since) = message.message();
                let earlier: Vec<ChatEvent> = match &cursor {
                    Some(c) if message.needs_earlier() => entries
                        .iter()
                        .filter(|e| e.serial.as_deref() == Some(serial))
                        .filter(|e| e.event_key().as_str() >= since && e.event_key() <= *c)
                        .cloned()
                        .collect(),
                    _ => Vec::new(),
                };
                if let Some(served) = message.served(&earlier) {
                    let key = served.message_key().to_owned();
                    if served.action == Some(Action::Delete) {
                        client.remove(&key);
                    } else {
                        client.insert(key, served);
                    }
                }
            }
            cursor = Some(last);
        }
        let replayed: Vec<(String, Option<u8>)> = client.values().map(text_of).collect();
        prop_assert_eq!(replayed, expected.into_iter().collect::<Vec<_>>());
    }
}
