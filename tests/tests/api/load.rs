//! A small run of the webhook load generator (`scripts/load` runs the full one), so the
//! generator and its checks stay working: concurrent signed deliveries with redeliveries,
//! then every event in DynamoDB exactly once and at most once in Redis.

use std::sync::Arc;

use chat_core::handlers::ably_events::{EventsConfig, EventsState};
use dev_tools::webhook_load::{self, LoadPlan, Signer};

use crate::helpers::{dynamo, env_with, fresh_table, redis, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_load_run_stores_every_event_once_despite_redeliveries() {
    let table = fresh_table().await;
    let prefix = format!("{}:", unique("load"));
    let config = EventsConfig::load(env_with(&[
        ("CHAT_EVENTS_TABLE", &table),
        ("REDIS_KEY_PREFIX", &prefix),
        ("ABLY_WEBHOOK_KEYS", "load.key:load-secret"),
    ]))
    .expect("config");
    let state = Arc::new(EventsState::with_clients(config, redis(), dynamo().await));
    let signer = Signer {
        key_name: "load.key".into(),
        secret: "load-secret".into(),
    };
    let plan = LoadPlan {
        events: 2_000,
        senders: 10,
        batch_size: 50,
        conversations: 40,
        redeliver_percent: 10,
        seed: 7,
    };

    let batches = Arc::new(webhook_load::batches(&plan, &unique("smoke")));
    let order = webhook_load::schedule(&plan, batches.len());
    assert_eq!(batches.len(), 40);
    assert!(order.len() > batches.len(), "some batches are redelivered");
    let stats = webhook_load::deliver(
        Arc::clone(&state),
        &signer,
        &plan,
        Arc::clone(&batches),
        order.clone(),
    )
    .await;
    let verification = webhook_load::verify(&state, &batches)
        .await
        .expect("read back");
    let report = webhook_load::report(&plan, &stats, &verification);

    assert_eq!(stats.deliveries, order.len(), "{report}");
    assert_eq!(stats.redeliveries, order.len() - batches.len(), "{report}");
    assert_eq!(stats.statuses.get(&200), Some(&order.len()), "{report}");
    assert_eq!(verification.archived, 2_000, "{report}");
    // 50 events per conversation on average, under the list limit: all of them cached.
    assert_eq!(verification.cached, 2_000, "{report}");
    assert_eq!(stats.pushed_to_cache, 2_000, "{report}");
    assert!(webhook_load::passed(&stats, &verification), "{report}");

    webhook_load::clean_up(&state).await.expect("clean up");
}
