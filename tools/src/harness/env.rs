//! The environment a bootstrap runs in: what Lambda sets for a `provided.al2023` function
//! and the function's own settings, taken from the local stack's (`.dev/stack.env`).

use std::collections::HashMap;
use std::path::Path;

/// The environment Lambda gives a `provided.al2023` function, plus the function's own
/// settings (`app`). Nothing else from the caller's environment is passed on.
pub fn lambda_env(
    function: &str,
    runtime_api: &str,
    task_root: &Path,
    app: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", function),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            &format!("/aws/lambda/{function}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2025/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "ASIACOLDSTARTLOCAL00"),
        ("AWS_SECRET_ACCESS_KEY", "coldstart-local-secret-not-real"),
        ("AWS_SESSION_TOKEN", "coldstart-local-session-not-real"),
        ("_HANDLER", "bootstrap"),
        ("LAMBDA_TASK_ROOT", &task_root.display().to_string()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
        ("LANG", "en_US.UTF-8"),
        ("TZ", ":UTC"),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
        (
            "LD_LIBRARY_PATH",
            "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (key, value) in app {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    env
}

/// The app settings passed to every function: these variables of the current environment
/// (`.dev/stack.env`), with `overrides` on top (an empty value removes a variable).
pub fn app_env(overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    const PASSED: [&str; 18] = [
        "ABLY_API_KEY",
        "ABLY_WEBHOOK_KEYS",
        "ABLY_REST_URL",
        "JWT_SECRET",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "RESUME_TOKEN_SECRET",
        "UPSTASH_REDIS_REST_URL",
        "UPSTASH_REDIS_REST_TOKEN",
        "CHAT_EVENTS_TABLE",
        "CORS_ORIGIN",
        "PUBLIC_APP_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "REDIS_KEY_PREFIX",
        "RUST_LOG",
        "ENABLE_ABLY_REALTIME",
        "EVENT_RETENTION_DAYS",
    ];
    let mut env: HashMap<String, String> = PASSED
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect();
    for (k, v) in overrides {
        if v.is_empty() {
            env.remove(*k);
        } else {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
    }
    let mut env: Vec<_> = env.into_iter().collect();
    env.sort();
    env
}

/// A variable of the local stack's settings, which the harness cannot run without.
pub fn required(name: &str) -> anyhow::Result<String> {
    use anyhow::Context as _;
    std::env::var(name)
        .with_context(|| format!("missing {name}: source .dev/stack.env (scripts/stack up) first"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lambda_environment_is_complete_and_app_settings_win() {
        let env = lambda_env(
            "ably-token",
            "127.0.0.1:9",
            Path::new("/var/task"),
            &[("AWS_REGION".into(), "eu-west-1".into())],
        );
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), Some("127.0.0.1:9"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_NAME"), Some("ably-token"));
        assert_eq!(get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(env.iter().filter(|(n, _)| n == "AWS_REGION").count(), 1);
        assert!(get("AWS_SESSION_TOKEN").is_some());
    }
}
