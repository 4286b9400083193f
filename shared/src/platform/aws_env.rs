//! The AWS settings Lambda hands a function in its environment, read the same way for
//! every SDK client (DynamoDB, Secrets Manager), without the SDK's configuration loader
//! (profiles, SSO, STS, IMDS: none of which a Lambda function uses): the region from
//! `AWS_REGION` (or `AWS_DEFAULT_REGION`), the execution role's credentials from
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, and a service's endpoint
//! from `AWS_ENDPOINT_URL_<SERVICE>` (or `AWS_ENDPOINT_URL`), which points it at a local
//! stand-in in development and tests. Also the timeouts and retries every client keeps:
//! tight, so that a slow service fails inside the Lambda's budget instead of at its hard
//! timeout.

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::region::Region;

use crate::platform::aws_http::ReqwestHttpClient;
use crate::platform::env::Env;

/// Time to establish a connection to an AWS service.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// One attempt, from sending to the last byte of the answer.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// All attempts of one operation together.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);
/// Attempts per operation (the first and two retries).
pub const MAX_ATTEMPTS: u32 = 3;

/// The timeouts above.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The SDK's standard retries, [`MAX_ATTEMPTS`] in all.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// The SDK's HTTP client: requests over reqwest, with its own connection pool.
pub fn http_client() -> ReqwestHttpClient {
    crate::platform::telemetry::install_crypto_provider();
    ReqwestHttpClient::with_connect_timeout(CONNECT_TIMEOUT)
}

/// The region, if the environment names one.
pub fn region(env: &Env) -> Option<Region> {
    let region = env
        .optional("AWS_REGION")
        .or_else(|| env.optional("AWS_DEFAULT_REGION"));
    if region.is_none() {
        tracing::warn!("AWS_REGION is not set; AWS requests will fail");
    }
    region.map(Region::new)
}

/// The execution role's credentials, if the environment holds them.
pub fn credentials(env: &Env) -> Option<Credentials> {
    match (
        env.optional("AWS_ACCESS_KEY_ID"),
        env.optional("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(access_key), Some(secret_key)) => Some(Credentials::new(
            access_key,
            secret_key,
            env.optional("AWS_SESSION_TOKEN"),
            None,
            "Environment",
        )),
        _ => {
            tracing::warn!(
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set; AWS requests will fail"
            );
            None
        }
    }
}

/// The endpoint of a service (`DYNAMODB`, `SECRETS_MANAGER`) when the environment
/// overrides it.
pub fn endpoint(env: &Env, service: &str) -> Option<String> {
    env.optional(&format!("AWS_ENDPOINT_URL_{service}"))
        .or_else(|| env.optional("AWS_ENDPOINT_URL"))
}

/// Records a problem, at cold start, for each AWS setting an SDK client needs and the
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

    #[test]
    fn a_service_endpoint_wins_over_the_general_one() {
        let env = Env::from_pairs([
            ("AWS_ENDPOINT_URL", "http://general"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://dynamodb"),
        ]);
        assert_eq!(
            endpoint(&env, "DYNAMODB").as_deref(),
            Some("http://dynamodb")
        );
        assert_eq!(
            endpoint(&env, "SECRETS_MANAGER").as_deref(),
            Some("http://general")
        );
        assert_eq!(
            endpoint(&Env::from_pairs::<_, String, String>([]), "DYNAMODB"),
            None
        );
        assert_eq!(region(&env), None);
    }
}
