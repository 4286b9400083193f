//! Cold-start configuration: a missing variable fails naming it.

use chat_core::handlers::{ably_events, publish, resume, stats, token};
use chat_core::platform::env::Env;

fn problems(err: impl ToString) -> String {
    err.to_string()
}

#[test]
fn every_function_names_each_missing_required_variable() {
    let cases: [(&str, String, &[&str]); 5] = [
        (
            "ably-token",
            problems(
                token::TokenConfig::load(Env::from_pairs::<_, String, String>([])).unwrap_err(),
            ),
            &[
                "ABLY_API_KEY",
                "JWT_SECRET",
                "RESUME_TOKEN_SECRET",
                "UPSTASH_REDIS_REST_URL",
                "UPSTASH_REDIS_REST_TOKEN",
                "CHAT_EVENTS_TABLE",
                "AWS_REGION",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
            ],
        ),
        (
            "ably-publish",
            problems(
                publish::PublishConfig::load(Env::from_pairs::<_, String, String>([])).unwrap_err(),
            ),
            &[
                "ABLY_API_KEY",
                "JWT_SECRET",
                "UPSTASH_REDIS_REST_URL",
                "UPSTASH_REDIS_REST_TOKEN",
                "CHAT_EVENTS_TABLE",
                "AWS_REGION",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
            ],
        ),
        (
            "ably-events",
            problems(
                ably_events::EventsConfig::load(Env::from_pairs::<_, String, String>([]))
                    .unwrap_err(),
            ),
            &[
                "ABLY_WEBHOOK_KEYS",
                "UPSTASH_REDIS_REST_URL",
                "UPSTASH_REDIS_REST_TOKEN",
                "CHAT_EVENTS_TABLE",
                "AWS_REGION",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
            ],
        ),
        (
            "ably-stats",
            problems(
                stats::StatsConfig::load(Env::from_pairs::<_, String, String>([])).unwrap_err(),
            ),
            &[
                "ABLY_API_KEY",
                "JWT_SECRET",
                "UPSTASH_REDIS_REST_URL",
                "CHAT_EVENTS_TABLE",
                "AWS_REGION",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
            ],
        ),
        (
            "resume",
            problems(
                resume::ResumeConfig::load(Env::from_pairs::<_, String, String>([])).unwrap_err(),
            ),
            &[
                "JWT_SECRET",
                "RESUME_TOKEN_SECRET",
                "UPSTASH_REDIS_REST_URL",
                "CHAT_EVENTS_TABLE",
                "PUBLIC_APP_URL",
                "AWS_REGION",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
            ],
        ),
    ];
    for (function, message, names) in cases {
        for name in names {
            assert!(
                message.contains(&format!("missing required environment variable {name}")),
                "{function}: {message}"
            );
        }
    }
}

#[test]
fn the_stack_environment_is_a_complete_configuration_for_every_function() {
    let env = || crate::helpers::env_with(&[]);
    token::TokenConfig::load(env()).unwrap();
    publish::PublishConfig::load(env()).unwrap();
    ably_events::EventsConfig::load(env()).unwrap();
    stats::StatsConfig::load(env()).unwrap();
    resume::ResumeConfig::load(env()).unwrap();
}

#[test]
fn secrets_are_never_printed_in_config_errors_or_debug_output() {
    let secret = "super-secret-value-that-must-not-leak-0123456789";
    let env = Env::from_pairs([
        ("ABLY_API_KEY", format!("app.key:{secret}")),
        ("JWT_SECRET", secret.to_owned()),
        ("RESUME_TOKEN_SECRET", secret.to_owned()),
        ("UPSTASH_REDIS_REST_URL", "ftp://nope".to_owned()),
        ("UPSTASH_REDIS_REST_TOKEN", secret.to_owned()),
    ]);
    let err = token::TokenConfig::load(env).unwrap_err().to_string();
    assert!(
        err.contains("UPSTASH_REDIS_REST_URL must be an http(s) URL"),
        "{err}"
    );
    assert!(!err.contains(secret));

    let ok = Env::from_pairs([
        ("ABLY_API_KEY", format!("app.key:{secret}")),
        ("JWT_SECRET", secret.to_owned()),
        ("RESUME_TOKEN_SECRET", format!("{secret}-resume")),
        ("UPSTASH_REDIS_REST_URL", "http://127.0.0.1:1".to_owned()),
        ("UPSTASH_REDIS_REST_TOKEN", secret.to_owned()),
        ("CHAT_EVENTS_TABLE", "chat-events".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", secret.to_owned()),
    ]);
    let config = token::TokenConfig::load(ok).unwrap();
    assert!(!format!("{config:?}").contains(secret));
}

#[test]
fn the_realtime_switch_is_true_or_false_and_on_by_default() {
    use ably_events::EventsConfig;
    use resume::ResumeConfig;
    use token::TokenConfig;
    let env = crate::helpers::env_with;
    assert!(
        TokenConfig::load(env(&[("ENABLE_ABLY_REALTIME", "")]))
            .unwrap()
            .realtime
            .enabled
    );
    assert!(
        ResumeConfig::load(env(&[("ENABLE_ABLY_REALTIME", "")]))
            .unwrap()
            .realtime
            .enabled
    );
    assert!(
        !EventsConfig::load(env(&[("REDIS_PUBSUB_BRIDGE", "")]))
            .unwrap()
            .pubsub_bridge
    );
    assert!(
        EventsConfig::load(env(&[("REDIS_PUBSUB_BRIDGE", "TRUE")]))
            .unwrap()
            .pubsub_bridge
    );
    assert!(
        !TokenConfig::load(env(&[("ENABLE_ABLY_REALTIME", "false")]))
            .unwrap()
            .realtime
            .enabled
    );
    for value in ["0", "no", "off", "disabled"] {
        let token = TokenConfig::load(env(&[("ENABLE_ABLY_REALTIME", value)])).unwrap_err();
        let resume = ResumeConfig::load(env(&[("ENABLE_ABLY_REALTIME", value)])).unwrap_err();
        let events = EventsConfig::load(env(&[("REDIS_PUBSUB_BRIDGE", value)])).unwrap_err();
        for (err, name) in [
            (token.to_string(), "ENABLE_ABLY_REALTIME"),
            (resume.to_string(), "ENABLE_ABLY_REALTIME"),
            (events.to_string(), "REDIS_PUBSUB_BRIDGE"),
        ] {
            assert_eq!(
                err,
                format!("invalid configuration: {name} must be true or false")
            );
        }
    }
}
