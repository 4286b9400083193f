//! Small runs of the load generator (`scripts/load` runs the full ones), so the generator
//! and its verdict stay truthful: concurrent signed webhook deliveries and SQS invocations
//! with redeliveries, refusals delivered again, then the stores judged on what they hold.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chat_core::handlers::ably_events::{EventsConfig, EventsState};
use dev_tools::webhook_load::{self, Load, LoadPlan, Signer, Source};

use crate::helpers::{dynamo, env_with, fresh_table, redis, refusing_dynamo, unique};

fn signer() -> Signer {
    Signer {
        key_name: "load.key".into(),
        secret: "load-secret".into(),
    }
}

/// The events state of a fresh table and Redis prefix, around `dynamo`.
async fn load_state(dynamo: aws_sdk_dynamodb::Client) -> Arc<EventsState> {
    let table = fresh_table().await;
    let prefix = format!("{}:", unique("load"));
    let config = EventsConfig::load(env_with(&[
        ("CHAT_EVENTS_TABLE", &table),
        ("REDIS_KEY_PREFIX", &prefix),
        ("ABLY_WEBHOOK_KEYS", "load.key:load-secret"),
    ]))
    .expect("config");
    Arc::new(EventsState::with_clients(config, redis(), dynamo))
}

fn plan() -> LoadPlan {
    LoadPlan {
        events: 2_000,
        senders: 10,
        batch_size: 50,
        conversations: 40,
        redeliver_percent: 10,
        seed: 7,
    }
}

/// The Redis list entries a run of `load` must leave: each conversation's events, up to
/// the list limit.
fn listable(load: &Load, limit: usize) -> usize {
    let mut per_conversation: HashMap<&str, usize> = HashMap::new();
    for index in 0..load.len() {
        for (conversation, _) in load.events(index) {
            *per_conversation.entry(conversation).or_default() += 1;
        }
    }
    per_conversation.values().map(|n| (*n).min(limit)).sum()
}

/// Delivers `load` in `order`, reads both stores back and renders the report.
async fn run(
    state: &Arc<EventsState>,
    plan: &LoadPlan,
    load: &Arc<Load>,
    order: &[usize],
) -> (webhook_load::RunStats, webhook_load::Verification, String) {
    let stats = webhook_load::deliver(
        Arc::clone(state),
        &signer(),
        plan,
        Arc::clone(load),
        order.to_vec(),
    )
    .await;
    let verification = webhook_load::verify(state, load).await.expect("read back");
    let report = webhook_load::report(plan, &stats, &verification);
    (stats, verification, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_load_run_stores_every_event_once_despite_redeliveries() {
    let state = load_state(dynamo().await).await;
    let plan = plan();
    let load = Arc::new(Load::new(&plan, Source::Webhook, &unique("smoke")));
    let order = webhook_load::schedule(&plan, load.len());
    assert_eq!(load.len(), 40);
    assert!(order.len() > load.len(), "some batches are redelivered");
    let (stats, verification, report) = run(&state, &plan, &load, &order).await;

    assert_eq!(stats.deliveries, order.len(), "{report}");
    assert_eq!(stats.redeliveries, order.len() - load.len(), "{report}");
    assert_eq!(stats.statuses.get(&200), Some(&order.len()), "{report}");
    assert_eq!(verification.archived, 2_000, "{report}");
    // 50 events per conversation on average, under the list limit: all of them cached.
    assert_eq!(verification.list_limit, 100, "{report}");
    assert_eq!(verification.cached, listable(&load, 100), "{report}");
    assert_eq!(verification.taken_by_cache, 2_000, "{report}");
    // Nothing refused and the cache always up: here the answers' counter is judged too.
    assert_eq!(stats.pushed_to_cache, 2_000, "{report}");
    assert!(webhook_load::passed(&stats, &verification), "{report}");

    webhook_load::clean_up(&state).await.expect("clean up");
}

/// The scripts/load run that failed with "0 batches never stored": deliveries answered 503
/// after their cache half took the events, so their retries report them as duplicates and
/// the 200 answers add up to fewer pushed events than were sent. The stores are right, and
/// so must be the verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_refused_after_their_cache_half_still_pass_on_what_the_stores_hold() {
    let plan = plan();
    let load = Arc::new(Load::new(&plan, Source::Webhook, &unique("refused")));
    let poisons: Vec<&str> = [3, 17]
        .iter()
        .map(|&b| load.events(b)[0].1.as_str())
        .collect();
    let state = load_state(refusing_dynamo(&poisons, 1)).await;
    let order = webhook_load::schedule(&plan, load.len());
    let (stats, verification, report) = run(&state, &plan, &load, &order).await;

    assert_eq!(stats.statuses.get(&503), Some(&2), "{report}");
    assert_eq!(stats.retries, 2, "{report}");
    assert_eq!(stats.unsettled, 0, "{report}");
    assert!(stats.pushed_to_cache < 2_000, "{report}");
    assert_eq!(verification.archived, 2_000, "{report}");
    assert_eq!(verification.archived_distinct, 2_000, "{report}");
    assert_eq!(verification.cached_twice, 0, "{report}");
    assert_eq!(verification.taken_by_cache, 2_000, "{report}");
    assert_eq!(verification.cached, listable(&load, 100), "{report}");
    let verdict = webhook_load::judge(&stats, &verification);
    assert!(verdict.passed(), "{report}");
    assert!(
        report.contains("not judged: 2 refused deliveries"),
        "{report}"
    );

    webhook_load::clean_up(&state).await.expect("clean up");
}

/// The same load as SQS event batches through the Lambda entry point, one record refused
/// by DynamoDB on its first receives: it is listed in `batchItemFailures`, received again
/// until it is not, and every event ends up stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_sqs_run_redelivers_listed_records_until_every_event_is_stored_once() {
    let plan = LoadPlan {
        batch_size: 20,
        ..plan()
    };
    let load = Arc::new(Load::new(&plan, Source::Sqs { records: 5 }, &unique("sqs")));
    let Load::Sqs(batches) = &*load else {
        panic!("an SQS load")
    };
    assert_eq!((batches.len(), load.units()), (20, 100));
    let ids: HashSet<&str> = batches
        .iter()
        .flat_map(|b| &b.messages)
        .map(|m| m.message_id.as_str())
        .collect();
    assert_eq!(ids.len(), 100, "message ids are unique");
    let poison = load.events(6)[0].1.clone();
    let state = load_state(refusing_dynamo(&[&poison], 2)).await;
    let order = webhook_load::schedule(&plan, load.len());
    assert!(order.len() > load.len(), "some invocations are redelivered");
    let (stats, verification, report) = run(&state, &plan, &load, &order).await;

    assert_eq!(stats.source, Source::Sqs { records: 5 }, "{report}");
    assert_eq!(stats.redeliveries, order.len() - load.len(), "{report}");
    assert!(stats.records_refused >= 1, "{report}");
    assert_eq!(stats.retries, stats.deliveries - order.len(), "{report}");
    assert!(stats.retries >= 1, "{report}");
    assert_eq!(stats.invocation_errors, 0, "{report}");
    assert_eq!(stats.unsettled, 0, "{report}");
    assert_eq!(verification.expected, 2_000, "{report}");
    assert_eq!(verification.archived, 2_000, "{report}");
    assert_eq!(verification.archived_distinct, 2_000, "{report}");
    assert_eq!(verification.unexpected_in_archive, 0, "{report}");
    assert_eq!(verification.taken_by_cache, 2_000, "{report}");
    assert_eq!(verification.cached, listable(&load, 100), "{report}");
    assert_eq!(
        (
            verification.cached_twice,
            verification.foreign_in_cache,
            verification.lost_from_cache
        ),
        (0, 0, 0),
        "{report}"
    );
    assert!(webhook_load::passed(&stats, &verification), "{report}");
    assert!(
        report.starts_with("sqs load: 2000 events, 20 per record, 5 records per invocation"),
        "{report}"
    );

    webhook_load::clean_up(&state).await.expect("clean up");
}
