//! DynamoDB client set-up and the chat events table schema.
//!
//! The client is configured from the environment Lambda provides
//! ([`crate::platform::aws_env`]; `AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB Local in
//! development and tests). Requests go over reqwest ([`crate::platform::aws_http`]).
//! Building the client does no I/O.

use aws_sdk_dynamodb::config::BehaviorVersion;
use aws_sdk_dynamodb::Client;

use crate::platform::aws_env;
use crate::platform::env::Env;

pub const PARTITION_KEY: &str = "conversation_id";
pub const SORT_KEY: &str = "event_key";
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// The sparse index reports read: only report-worthy events carry its key
/// ([`crate::storage::item::report_key`]), so an ordinary message is written once.
pub const REPORTS_INDEX: &str = "reports";
/// Its partition key: `{report type}#{day}`, so that no partition holds every tenant's
/// events; its sort key is the table's [`SORT_KEY`].
pub const REPORT_KEY: &str = "report_key";
/// The index the table had before: every event by type, every write twice.
pub const LEGACY_TYPE_INDEX: &str = "by_type";

/// A DynamoDB client from the process environment, with the tight timeouts of
/// [`aws_env`], so a slow table fails inside the Lambda's budget.
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
    let mut builder = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .timeout_config(aws_env::timeout_config())
        .retry_config(aws_env::retry_config())
        .http_client(aws_env::http_client());
    builder.set_region(aws_env::region(env));
    builder.set_credentials_provider(
        aws_env::credentials(env).map(aws_sdk_dynamodb::config::SharedCredentialsProvider::new),
    );
    builder.set_endpoint_url(aws_env::endpoint(env, "DYNAMODB"));
    builder
}
