//! Secrets from AWS Secrets Manager, read by ARN at cold start, against moto (the local
//! AWS API emulator `scripts/stack` starts): the SDK request path that runs in AWS.

use std::collections::HashMap;

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_secretsmanager::primitives::Blob;
use chat_core::handlers::ably_events::{EventsConfig, EventsState};
use chat_core::handlers::token::TokenState;
use chat_core::platform::aws_http::ReqwestHttpClient;
use chat_core::platform::env::Env;
use chat_core::platform::secrets::resolve;
use serde_json::Value;

use crate::helpers::{body_json, closed_port, hs256, post_token, stack_var, unique, unix_now};

/// A Secrets Manager client for moto, to create the secrets the functions then read.
fn moto() -> aws_sdk_secretsmanager::Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .endpoint_url(stack_var("AWS_ENDPOINT_URL_SECRETS_MANAGER"))
        .http_client(ReqwestHttpClient::with_connect_timeout(
            std::time::Duration::from_secs(2),
        ))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

/// A new secret holding `value`; its ARN.
async fn secret(client: &aws_sdk_secretsmanager::Client, value: &str) -> String {
    client
        .create_secret()
        .name(unique("chat-secret"))
        .secret_string(value)
        .send()
        .await
        .expect("create secret")
        .arn
        .expect("an ARN")
}

/// The stack's environment with each of `secrets` given only as `X_SECRET_ARN`.
fn vars_with(secrets: &[(&str, String)]) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    for (name, arn) in secrets {
        vars.remove(*name);
        vars.insert(format!("{name}_SECRET_ARN"), arn.clone());
    }
    vars
}

#[tokio::test]
async fn functions_read_their_secrets_by_arn() {
    let client = moto();
    let jwt_secret = format!("{}-jwt-secret-from-secrets-manager", unique("s"));
    let api_key = "appSm.keySm:api-key-secret-from-secrets-manager";
    let webhook_key = "appSm.hookSm:webhook-key-secret-from-secrets-manager";
    let resume_secret = format!("{}-resume-secret-from-secrets-manager", unique("r"));
    let upstash_token = stack_var("UPSTASH_REDIS_REST_TOKEN");
    let secrets = [
        ("JWT_SECRET", secret(&client, &jwt_secret).await),
        ("ABLY_API_KEY", secret(&client, api_key).await),
        ("ABLY_WEBHOOK_KEYS", secret(&client, webhook_key).await),
        ("RESUME_TOKEN_SECRET", secret(&client, &resume_secret).await),
        (
            "UPSTASH_REDIS_REST_TOKEN",
            secret(&client, &upstash_token).await,
        ),
    ];
    let vars = resolve(vars_with(&secrets))
        .await
        .expect("every secret read");
    for (name, value) in [
        ("JWT_SECRET", jwt_secret.as_str()),
        ("ABLY_API_KEY", api_key),
        ("ABLY_WEBHOOK_KEYS", webhook_key),
        ("RESUME_TOKEN_SECRET", resume_secret.as_str()),
        ("UPSTASH_REDIS_REST_TOKEN", upstash_token.as_str()),
    ] {
        assert_eq!(vars.get(name).map(String::as_str), Some(value), "{name}");
    }

    // The token function built from them: a caller's JWT signed with the JWT secret from
    // Secrets Manager is accepted, and the TokenRequest is signed with its API key.
    let mut token_vars = vars.clone();
    token_vars.insert("REDIS_KEY_PREFIX".into(), format!("{}:", unique("sm")));
    let token = TokenState::from_env(Env::from_pairs(token_vars)).expect("token state");
    let now = unix_now();
    let jwt = hs256(
        &serde_json::json!({"userId": "u-sm", "role": "customer", "iat": now, "exp": now + 600}),
        &jwt_secret,
    );
    let auth = format!("Bearer {jwt}");
    let response = post_token(&token, &[("authorization", &auth)], None).await;
    let request: Value = body_json(&response);
    assert_eq!(response.status(), 200, "{request}");
    assert_eq!(request["keyName"], "appSm.keySm");

    // The events function: its webhook key from Secrets Manager.
    let events =
        EventsState::new(EventsConfig::load(Env::from_pairs(vars)).expect("events config"));
    assert_eq!(
        format!("{:?}", events.verifier),
        r#"WebhookVerifier { keys: ["appSm.hookSm"] }"#
    );
}

#[tokio::test]
async fn a_cold_start_whose_secret_is_missing_or_unreadable_names_it_and_fails() {
    let client = moto();
    let region_account = "us-east-1:123456789012";
    let missing = format!("arn:aws:secretsmanager:{region_account}:secret:never-created-AbCdEf");
    let binary = client
        .create_secret()
        .name(unique("binary"))
        .secret_binary(Blob::new(vec![0u8, 1, 2]))
        .send()
        .await
        .expect("create binary secret")
        .arn
        .expect("an ARN");
    let present = secret(
        &client,
        &format!("{}-a-resume-secret-long-enough", unique("ok")),
    )
    .await;
    let err = resolve(vars_with(&[
        ("JWT_SECRET", missing),
        ("RESUME_TOKEN_SECRET", present),
        ("ABLY_API_KEY", binary),
    ]))
    .await
    .expect_err("a secret that cannot be read fails the cold start");
    let mut problems = err.problems.clone();
    problems.sort();
    assert_eq!(
        problems,
        [
            "ABLY_API_KEY_SECRET_ARN names a binary secret; store ABLY_API_KEY as a secret string",
            "JWT_SECRET_SECRET_ARN could not be read from Secrets Manager (ResourceNotFoundException)",
        ]
    );

    // Secrets Manager out of reach.
    let mut vars = vars_with(&[(
        "JWT_SECRET",
        "arn:aws:secretsmanager:us-east-1:1:secret:x".into(),
    )]);
    vars.insert(
        "AWS_ENDPOINT_URL_SECRETS_MANAGER".into(),
        format!("http://127.0.0.1:{}", closed_port()),
    );
    let err = resolve(vars).await.expect_err("unreachable");
    assert_eq!(
        err.problems,
        ["JWT_SECRET_SECRET_ARN could not be read from Secrets Manager (connection failed)"]
    );
}
