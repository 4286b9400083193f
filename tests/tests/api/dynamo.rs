//! The DynamoDB client and the chat events table schema against DynamoDB Local.

use aws_sdk_dynamodb::types::{AttributeValue, IndexStatus, TimeToLiveStatus};

use crate::helpers::{dynamo, fresh_table, stack_var};

#[tokio::test]
async fn the_stack_table_exists_with_index_and_ttl() {
    let client = dynamo().await;
    let table = stack_var("CHAT_EVENTS_TABLE");
    let described = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let t = described.table().unwrap();
    let keys: Vec<_> = t
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().as_str()))
        .collect();
    assert_eq!(keys, [("conversation_id", "HASH"), ("event_key", "RANGE")]);
    let gsi = &t.global_secondary_indexes()[0];
    assert_eq!(t.global_secondary_indexes().len(), 1);
    assert_eq!(gsi.index_name(), Some("reports"));
    assert_eq!(gsi.index_status(), Some(&IndexStatus::Active));
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

#[tokio::test]
async fn table_creation_is_idempotent_and_items_round_trip_through_the_index() {
    let client = dynamo().await;
    let table = fresh_table().await;
    dev_tools::table::ensure_chat_events_table(&client, &table)
        .await
        .unwrap();

    let s = |v: &str| AttributeValue::S(v.to_owned());
    client
        .put_item()
        .table_name(&table)
        .item("conversation_id", s("conv-1"))
        .item("event_key", s("2026-11-22T00:00:00.000Z#m1"))
        .item("event_type", s("sla:warning"))
        .item("occurred_at", s("2026-11-22T00:00:00.000Z"))
        .item("report_key", s("sla:warning#2026-11-22"))
        .item("expires_at", AttributeValue::N("1900000000".into()))
        .send()
        .await
        .unwrap();

    let item = client
        .get_item()
        .table_name(&table)
        .key("conversation_id", s("conv-1"))
        .key("event_key", s("2026-11-22T00:00:00.000Z#m1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        item.item().unwrap().get("event_type"),
        Some(&s("sla:warning"))
    );

    let reports = client
        .query()
        .table_name(&table)
        .index_name("reports")
        .key_condition_expression("report_key = :k")
        .expression_attribute_values(":k", s("sla:warning#2026-11-22"))
        .send()
        .await
        .unwrap();
    assert_eq!(reports.count(), 1);
    assert_eq!(
        reports.items()[0].get("conversation_id"),
        Some(&s("conv-1"))
    );
    client
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
}
