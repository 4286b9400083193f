//! DynamoDB client set-up and the chat events table schema.
//!
//! The client is configured from the environment Lambda provides, without the SDK's
//! configuration loader (profiles, SSO, STS, IMDS: none of which a Lambda function uses):
//! region from `AWS_REGION` (or `AWS_DEFAULT_REGION`), the execution role's credentials
//! from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, and the endpoint
//! from `AWS_ENDPOINT_URL_DYNAMODB` (or `AWS_ENDPOINT_URL`), which points it at DynamoDB
//! Local in development and tests. Requests go over reqwest ([`crate::aws_http`]).
//! Building the client does no I/O.

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use crate::aws_http::ReqwestHttpClient;
use crate::config::Env;

pub const PARTITION_KEY: &str = "conversation_id";
pub const SORT_KEY: &str = "event_key";
pub const TTL_ATTRIBUTE: &str = "expires_at";
pub const BY_TYPE_INDEX: &str = "by_type";

/// Time to establish a connection to DynamoDB.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// One attempt, from sending to the last byte of the answer.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// All attempts of one operation together.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);
/// Attempts per operation (the first and two retries).
pub const MAX_ATTEMPTS: u32 = 3;

/// A DynamoDB client from the process environment, with tight timeouts so a slow table
/// fails inside the Lambda's budget instead of at its hard timeout.
pub fn client() -> Client {
    Client::from_conf(config_builder().build())
}

/// The client configuration [`client`] uses, for callers that adjust it (an endpoint,
/// an interceptor) before building.
pub fn config_builder() -> aws_sdk_dynamodb::config::Builder {
    config_builder_from(&Env::from_process())
}

/// [`config_builder`] from a given environment.
pub fn config_builder_from(env: &Env) -> aws_sdk_dynamodb::config::Builder {
    crate::telemetry::install_crypto_provider();
    let mut builder = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .http_client(ReqwestHttpClient::with_connect_timeout(CONNECT_TIMEOUT));
    match env
        .optional("AWS_REGION")
        .or_else(|| env.optional("AWS_DEFAULT_REGION"))
    {
        Some(region) => {
            builder.set_region(Some(Region::new(region)));
        }
        None => tracing::warn!("AWS_REGION is not set; DynamoDB requests will fail"),
    }
    match (
        env.optional("AWS_ACCESS_KEY_ID"),
        env.optional("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(access_key), Some(secret_key)) => {
            builder.set_credentials_provider(Some(
                aws_sdk_dynamodb::config::SharedCredentialsProvider::new(Credentials::new(
                    access_key,
                    secret_key,
                    env.optional("AWS_SESSION_TOKEN"),
                    None,
                    "Environment",
                )),
            ));
        }
        _ => tracing::warn!(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set; DynamoDB requests will fail"
        ),
    }
    if let Some(endpoint) = env
        .optional("AWS_ENDPOINT_URL_DYNAMODB")
        .or_else(|| env.optional("AWS_ENDPOINT_URL"))
    {
        builder.set_endpoint_url(Some(endpoint));
    }
    builder
}

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
