//! The load itself: unique chat messages spread over conversations, shaped as Ably
//! delivers them by webhook or through SQS, and the order they are delivered in.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::{Batch, LoadPlan, SqsBatch, SqsMessage};

/// The time of the run's first message: an hour ago, recent enough to be inside any
/// retention, which runs from an event's time.
fn start_ms() -> i64 {
    chrono::Utc::now().timestamp_millis() - 3_600_000
}

/// The `n`th message of the run, as Ably puts it in a webhook or an enveloped message.
fn message(run: &str, n: usize, client_id: &str, start_ms: i64) -> Value {
    json!({
        "id": message_id(run, n), "clientId": client_id,
        "connectionId": format!("{run}-conn"), "timestamp": start_ms + n as i64,
        "name": "message:user", "encoding": "json",
        "data": json!({"text": format!("message {n} of the load run"), "locale": "en"}).to_string(),
    })
}

fn message_id(run: &str, n: usize) -> String {
    format!("{run}:{n}:0")
}

/// Ably batched webhooks (`items[].data.messages[]`, grouped by channel) holding
/// `plan.events` unique chat messages, `plan.batch_size` per batch, each on one of
/// `plan.conversations` conversations drawn at random. `run` names the run, so ids and
/// conversations never collide with another run's.
pub fn batches(plan: &LoadPlan, run: &str) -> Vec<Batch> {
    let start_ms = start_ms();
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let size = plan.batch_size.max(1);
    let conversations = plan.conversations.max(1);
    (0..plan.events.div_ceil(size))
        .map(|b| {
            let mut channels: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            let mut events = Vec::with_capacity(size);
            for n in b * size..((b + 1) * size).min(plan.events) {
                let conversation = format!("{run}-{}", rng.random_range(0..conversations));
                let client_id = format!("customer-{conversation}");
                channels
                    .entry(conversation.clone())
                    .or_default()
                    .push(message(run, n, &client_id, start_ms));
                events.push((conversation, message_id(run, n)));
            }
            let serial = format!("{run}:{b}");
            let items: Vec<Value> = channels
                .into_iter()
                .map(|(conversation, messages)| {
                    json!({
                        "webhookId": run, "source": "channel.message", "serial": serial,
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

/// The same messages as SQS messages, each one enveloped Ably message (one channel, as
/// Ably's SQS rule sends them) of `plan.batch_size` messages on one conversation drawn at
/// random, `records` messages per invocation.
pub fn sqs_batches(plan: &LoadPlan, records: usize, run: &str) -> Vec<SqsBatch> {
    let start_ms = start_ms();
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let size = plan.batch_size.max(1);
    let conversations = plan.conversations.max(1);
    let sent_ms = chrono::Utc::now().timestamp_millis();
    let messages: Vec<SqsMessage> = (0..plan.events.div_ceil(size))
        .map(|r| {
            let k = rng.random_range(0..conversations);
            let conversation = format!("{run}-{k}");
            let client_id = format!("customer:{run}-user{k}");
            let numbers = r * size..((r + 1) * size).min(plan.events);
            let messages: Vec<Value> = numbers
                .clone()
                .map(|n| message(run, n, &client_id, start_ms))
                .collect();
            let body = json!({
                "source": "channel.message", "appId": "load",
                "channel": format!("conversation:{conversation}"), "site": "local",
                "ruleId": "load", "messages": messages,
            });
            SqsMessage {
                message_id: uuid_v4(&mut rng),
                body: body.to_string(),
                events: numbers
                    .map(|n| (conversation.clone(), message_id(run, n)))
                    .collect(),
                sent_ms,
            }
        })
        .collect();
    messages
        .chunks(records.max(1))
        .map(|messages| SqsBatch {
            messages: messages.to_vec(),
        })
        .collect()
}

/// A random UUID in SQS's `messageId` format (version 4, RFC 4122 variant).
fn uuid_v4(rng: &mut StdRng) -> String {
    let bits: u128 = rng.random();
    let bits = (bits & !(0xf << 76)) | (0x4 << 76);
    let bits = (bits & !(0x3 << 62)) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqs_records_are_enveloped_messages_of_one_conversation_each() {
        let plan = LoadPlan {
            events: 95,
            batch_size: 10,
            ..LoadPlan::default()
        };
        let batches = sqs_batches(&plan, 4, "run");
        assert_eq!(
            batches.iter().map(|b| b.messages.len()).collect::<Vec<_>>(),
            [4, 4, 2]
        );
        let events = batches
            .iter()
            .flat_map(|b| &b.messages)
            .flat_map(|m| &m.events);
        assert_eq!(events.count(), 95);
        let record = &batches[2].messages[1];
        let body: Value = serde_json::from_str(&record.body).unwrap();
        assert_eq!(body["messages"].as_array().unwrap().len(), 5);
        let (conversation, _) = &record.events[0];
        assert_eq!(body["channel"], format!("conversation:{conversation}"));
        assert!(record.events.iter().all(|(c, _)| c == conversation));
        assert!(body["messages"][0]["clientId"]
            .as_str()
            .unwrap()
            .starts_with("customer:"));
        let id = &record.message_id;
        assert_eq!(
            (id.len(), &id[14..15], id.matches('-').count()),
            (36, "4", 4)
        );
    }

    #[test]
    fn webhook_batches_carry_every_event_once() {
        let plan = LoadPlan {
            events: 120,
            batch_size: 50,
            ..LoadPlan::default()
        };
        let batches = batches(&plan, "run");
        assert_eq!(batches.len(), 3);
        let ids: std::collections::HashSet<_> = batches.iter().flat_map(|b| &b.events).collect();
        assert_eq!(ids.len(), 120);
    }
}
