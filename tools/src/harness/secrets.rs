//! Secrets stored in the local AWS API emulator (moto), so that a run's functions read
//! them by ARN at cold start, as they do in AWS.

use anyhow::Context as _;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use chat_core::platform::aws_http::ReqwestHttpClient;
use chat_core::platform::secrets::{ARN_SUFFIX, SECRET_VARIABLES};

use super::env::required;

/// Each secret variable of the current environment stored as a secret: the app settings
/// that give it by ARN instead (`X` removed, `X_SECRET_ARN` set).
pub async fn stored_by_arn(session: &str) -> anyhow::Result<Vec<(String, String)>> {
    let endpoint = required("AWS_ENDPOINT_URL_SECRETS_MANAGER")?;
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(
            std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        ))
        .credentials_provider(Credentials::new("local", "local", None, None, "harness"))
        .endpoint_url(endpoint)
        .http_client(ReqwestHttpClient::with_connect_timeout(
            std::time::Duration::from_secs(2),
        ))
        .build();
    let client = aws_sdk_secretsmanager::Client::from_conf(config);
    let mut overrides = Vec::new();
    for name in SECRET_VARIABLES {
        let Ok(value) = std::env::var(name) else {
            continue;
        };
        let arn = client
            .create_secret()
            .name(format!("{session}-{name}"))
            .secret_string(value)
            .send()
            .await
            .with_context(|| format!("storing {name} in Secrets Manager"))?
            .arn
            .context("a secret without an ARN")?;
        overrides.push((name.to_owned(), String::new()));
        overrides.push((format!("{name}{ARN_SUFFIX}"), arn));
    }
    Ok(overrides)
}
