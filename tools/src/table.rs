//! The chat events table as the local stack and the tests create it: the schema
//! `template.yaml` gives production (keys, the sparse `reports` index, TTL on
//! `expires_at`); and, to measure what it replaced, the table as it was before (the
//! `by_type` index of every event).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use chat_core::storage::dynamo::{
    LEGACY_TYPE_INDEX, PARTITION_KEY, REPORTS_INDEX, REPORT_KEY, SORT_KEY, TTL_ATTRIBUTE,
};

/// Creates the chat events table with its `reports` index and TTL unless it exists, and
/// waits until it is active. Used by the local stack and the tests; production tables
/// come from `template.yaml` with the same schema.
pub async fn ensure_chat_events_table(client: &Client, table: &str) -> anyhow::Result<()> {
    ensure_table(client, table, Schema::Current).await
}

/// The table as it was before the `reports` index: `by_type` (`event_type`,
/// `occurred_at`, every attribute) instead. For measurements only.
pub async fn ensure_legacy_chat_events_table(client: &Client, table: &str) -> anyhow::Result<()> {
    ensure_table(client, table, Schema::Legacy).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Schema {
    Current,
    Legacy,
}

async fn ensure_table(client: &Client, table: &str, schema: Schema) -> anyhow::Result<()> {
    let exists = match client.describe_table().table_name(table).send().await {
        Ok(_) => true,
        Err(err) => {
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception())
            {
                false
            } else {
                return Err(anyhow::Error::new(err).context("DescribeTable failed"));
            }
        }
    };
    if !exists {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let (index, index_keys): (&str, [&str; 2]) = match schema {
            Schema::Current => (REPORTS_INDEX, [REPORT_KEY, SORT_KEY]),
            Schema::Legacy => (LEGACY_TYPE_INDEX, ["event_type", "occurred_at"]),
        };
        let mut create = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PARTITION_KEY)?)
            .attribute_definitions(attr(SORT_KEY)?);
        for name in index_keys.iter().filter(|n| **n != SORT_KEY) {
            create = create.attribute_definitions(attr(name)?);
        }
        let created = create
            .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
            .key_schema(key(SORT_KEY, KeyType::Range)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index)
                    .key_schema(key(index_keys[0], KeyType::Hash)?)
                    .key_schema(key(index_keys[1], KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()?,
            )
            .send()
            .await;
        if let Err(err) = created {
            // Another process may have created it between our describe and create.
            if !err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception())
            {
                return Err(anyhow::Error::new(err).context("CreateTable failed"));
            }
        }
    }
    for _ in 0..100 {
        let described = client.describe_table().table_name(table).send().await?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()?,
        )
        .send()
        .await
        .map(|_| ())
        .or_else(|err| {
            // Enabling TTL twice is refused with "already enabled"; that is the state we want.
            let already = err
                .as_service_error()
                .and_then(|e| e.meta().message())
                .is_some_and(|m| m.contains("already enabled"));
            if already {
                Ok(())
            } else {
                Err(anyhow::Error::new(err).context("UpdateTimeToLive failed"))
            }
        })
}
