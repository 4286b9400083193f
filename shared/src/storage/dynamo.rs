//! DynamoDB client set-up and the chat events table schema.
//!
//! The client is configured from the environment Lambda provides, without the SDK's
//! configuration loader (profiles, SSO, STS, IMDS: none of which a Lambda function uses):
//! region from `AWS_REGION` (or `AWS_DEFAULT_REGION`), the execution role's credentials
//! from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, and the endpoint
//! from `AWS_ENDPOINT_URL_DYNAMODB` (or `AWS_ENDPOINT_URL`), which points it at DynamoDB
//! Local in development and tests. Requests go over reqwest ([`crate::platform::aws_http`]).
//! Building the client does no I/O.

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::Client;

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

/// Records a problem, at cold start, for each AWS setting a DynamoDB client needs and the
/// environment lacks. Lambda always provides them; outside it (`cargo lambda watch`
/// against a real account, a local run) they must be exported, because the functions read
/// AWS settings from the environment only, never from `~/.aws` profiles.
pub fn require_aws_environment(env: &mut Env) {
    if env.optional("AWS_REGION").is_none() && env.optional("AWS_DEFAULT_REGION").is_none() {
        env.problem(
            "missing required environment variable AWS_REGION (or AWS_DEFAULT_REGION): \
             Lambda sets it; elsewhere export it (~/.aws profiles are not read)",
        );
    }
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        if env.optional(name).is_none() {
            env.problem(format!(
                "missing required environment variable {name}: Lambda sets it from the \
                 function's role; elsewhere export credentials (with AWS_SESSION_TOKEN for \
                 temporary ones; ~/.aws profiles are not read)"
            ));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aws_settings_are_required_by_name_and_profiles_are_not_read() {
        let mut env = Env::from_pairs::<_, String, String>([]);
        require_aws_environment(&mut env);
        let text = env.finish().unwrap_err().to_string();
        for name in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            assert!(
                text.contains(&format!("missing required environment variable {name}")),
                "{text}"
            );
        }
        assert!(text.contains("~/.aws profiles are not read"), "{text}");
        let mut env = Env::from_pairs([
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b"),
        ]);
        require_aws_environment(&mut env);
        env.finish().unwrap();
    }
}
