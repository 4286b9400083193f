//! Secrets from AWS Secrets Manager: each secret variable `X` (`ABLY_API_KEY`,
//! `ABLY_WEBHOOK_KEYS`, `JWT_SECRET`, `RESUME_TOKEN_SECRET`, `UPSTASH_REDIS_REST_TOKEN`)
//! may be given as `X_SECRET_ARN`, the secret whose string is `X`'s value. They are read
//! once, concurrently, at cold start, before the configuration is; a secret that cannot be
//! read fails the cold start with a message naming its variable. Without any
//! `*_SECRET_ARN`, nothing is read and no client is built.
//!
//! Read with the SDK's own Secrets Manager client over the project's reqwest connector
//! (`platform::aws_http`): the request path that runs in AWS is the one the tests run
//! against a local emulator, and it adds no HTTP or TLS stack. (The Parameters and Secrets
//! Lambda Extension would add a layer per region and a process of its own to every cold
//! start, and could not be tested outside AWS.)

use std::collections::HashMap;

use aws_sdk_secretsmanager::config::{BehaviorVersion, SharedCredentialsProvider};

use crate::platform::aws_env;
use crate::platform::env::{ConfigError, Env};

/// The variables that may come from Secrets Manager.
pub const SECRET_VARIABLES: [&str; 5] = [
    "ABLY_API_KEY",
    "ABLY_WEBHOOK_KEYS",
    "JWT_SECRET",
    "RESUME_TOKEN_SECRET",
    "UPSTASH_REDIS_REST_TOKEN",
];

/// The suffix of a variable that names a secret instead of holding its value.
pub const ARN_SUFFIX: &str = "_SECRET_ARN";

/// The process environment, each `X_SECRET_ARN` read into `X`.
pub async fn process_env() -> Result<Env, ConfigError> {
    resolve(std::env::vars().collect())
        .await
        .map(Env::from_pairs)
}

/// `vars` with each `X_SECRET_ARN` replaced by `X`, the secret's string.
pub async fn resolve(
    mut vars: HashMap<String, String>,
) -> Result<HashMap<String, String>, ConfigError> {
    let mut problems = Vec::new();
    let mut wanted = Vec::new();
    for name in SECRET_VARIABLES {
        let arn_variable = format!("{name}{ARN_SUFFIX}");
        let Some(arn) = vars
            .get(&arn_variable)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        else {
            continue;
        };
        if vars.get(name).is_some_and(|v| !v.trim().is_empty()) {
            problems.push(format!("set {name} or {arn_variable}, not both"));
            continue;
        }
        wanted.push((name, arn_variable, arn.to_owned()));
    }
    if !wanted.is_empty() {
        let mut env = Env::from_pairs(vars.clone());
        let client = client(&env);
        aws_env::require_aws_environment(&mut env);
        if let Err(err) = env.finish() {
            problems.extend(err.problems);
        }
        let reads = futures::future::join_all(
            wanted
                .iter()
                .map(|(_, _, arn)| client.get_secret_value().secret_id(arn).send()),
        )
        .await;
        for ((name, arn_variable, _), read) in wanted.into_iter().zip(reads) {
            match read {
                Ok(output) => match output.secret_string {
                    Some(value) => {
                        vars.insert(name.to_owned(), value);
                    }
                    None => problems.push(format!(
                        "{arn_variable} names a binary secret; store {name} as a secret string"
                    )),
                },
                Err(err) => problems.push(format!(
                    "{arn_variable} could not be read from Secrets Manager ({})",
                    describe(&err)
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(vars)
    } else {
        Err(ConfigError { problems })
    }
}

/// A Secrets Manager client from the environment.
fn client(env: &Env) -> aws_sdk_secretsmanager::Client {
    let mut builder = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .timeout_config(aws_env::timeout_config())
        .retry_config(aws_env::retry_config())
        .http_client(aws_env::http_client());
    builder.set_region(aws_env::region(env));
    builder.set_credentials_provider(aws_env::credentials(env).map(SharedCredentialsProvider::new));
    builder.set_endpoint_url(aws_env::endpoint(env, "SECRETS_MANAGER"));
    aws_sdk_secretsmanager::Client::from_conf(builder.build())
}

/// Why a read failed, without anything the secret holds: the service's error code, or
/// what went wrong on the way.
fn describe<E, R>(err: &aws_sdk_secretsmanager::error::SdkError<E, R>) -> String
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata,
{
    use aws_sdk_secretsmanager::error::SdkError;
    match err {
        SdkError::ServiceError(service) => {
            service.err().code().unwrap_or("service error").to_owned()
        }
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(_) => "connection failed".to_owned(),
        _ => "request failed".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_arns_nothing_is_read_and_both_forms_of_one_secret_are_refused() {
        let vars = HashMap::from([("JWT_SECRET".to_owned(), "plain".to_owned())]);
        assert_eq!(resolve(vars.clone()).await.unwrap(), vars);
        let both = HashMap::from([
            ("JWT_SECRET".to_owned(), "plain".to_owned()),
            (
                "JWT_SECRET_SECRET_ARN".to_owned(),
                "arn:aws:secretsmanager:us-east-1:1:secret:x".to_owned(),
            ),
        ]);
        let err = resolve(both).await.unwrap_err();
        assert_eq!(
            err.problems,
            ["set JWT_SECRET or JWT_SECRET_SECRET_ARN, not both"]
        );
    }
}
