//! The chat events table as the local stack and the tests create it: the schema
//! `template.yaml` gives production (keys, the `by_type` index, TTL on `expires_at`).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use chat_core::storage::dynamo::{BY_TYPE_INDEX, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};

/// Creates the chat events table with its `by_type` index and TTL unless it exists, and
/// waits until it is active. Used by the local stack and the tests; production tables
/// come from `template.yaml` with the same schema.
pub async fn ensure_chat_events_table(client: &Client, table: &str) -> anyhow::Result<()> {
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
        let created = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PARTITION_KEY)?)
            .attribute_definitions(attr(SORT_KEY)?)
            .attribute_definitions(attr("event_type")?)
            .attribute_definitions(attr("occurred_at")?)
            .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
            .key_schema(key(SORT_KEY, KeyType::Range)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(BY_TYPE_INDEX)
                    .key_schema(key("event_type", KeyType::Hash)?)
                    .key_schema(key("occurred_at", KeyType::Range)?)
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
