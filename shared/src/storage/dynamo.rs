//! DynamoDB client set-up and the chat events table schema.
//!
//! The client is configured from the environment Lambda provides
//! ([`crate::platform::aws_env`]; `AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB Local in
//! development and tests). Requests go over reqwest ([`crate::platform::aws_http`]).
//! Building the client does no I/O.

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::BehaviorVersion;
use aws_sdk_dynamodb::Client;

use crate::platform::aws_env;
use crate::platform::aws_http::ReqwestHttpClient;
use crate::platform::env::Env;

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
    crate::platform::telemetry::install_crypto_provider();
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
    builder.set_region(aws_env::region(env));
    builder.set_credentials_provider(
        aws_env::credentials(env).map(aws_sdk_dynamodb::config::SharedCredentialsProvider::new),
    );
    builder.set_endpoint_url(aws_env::endpoint(env, "DYNAMODB"));
    builder
}
