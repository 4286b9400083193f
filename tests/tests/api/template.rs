//! `template.yaml`'s secrets and limits: every secret comes from Secrets Manager (never a
//! plaintext Lambda variable), each function reads exactly the secrets it is given, the
//! function that verifies webhooks is not given the API key, and the public webhook route
//! is throttled.

use std::collections::BTreeSet;

use chat_core::platform::secrets::{ARN_SUFFIX, SECRET_VARIABLES};
use serde_norway::Value;

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    serde_norway::from_str(&std::fs::read_to_string(path).expect("template.yaml")).expect("YAML")
}

/// `!Ref X` as `X`; anything else as its debug text.
fn reference(value: &Value) -> String {
    match value {
        Value::Tagged(tagged) if tagged.tag == "!Ref" => {
            tagged.value.as_str().unwrap_or_default().to_owned()
        }
        Value::String(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// The environment variables of `Globals` and of `function`, by name.
fn variables<'a>(template: &'a Value, function: &'a Value) -> Vec<(String, &'a Value)> {
    [
        &template["Globals"]["Function"]["Environment"]["Variables"],
        &function["Properties"]["Environment"]["Variables"],
    ]
    .into_iter()
    .filter_map(Value::as_mapping)
    .flatten()
    .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v))
    .collect()
}

#[test]
fn every_secret_comes_from_secrets_manager_and_each_function_reads_only_its_own() {
    let template = template();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let mut functions = 0;
    for (name, function) in resources {
        if function["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        functions += 1;
        let name = name.as_str().unwrap_or_default();
        let vars = variables(&template, function);
        let mut given = BTreeSet::new();
        for (var, value) in &vars {
            assert!(
                !SECRET_VARIABLES.contains(&var.as_str()),
                "{name}: {var} is a plaintext Lambda variable"
            );
            if let Some(secret) = var.strip_suffix(ARN_SUFFIX) {
                assert!(SECRET_VARIABLES.contains(&secret), "{name}: {var}");
                let resource = reference(value);
                assert_eq!(
                    resources
                        .get(resource.as_str())
                        .map(|r| r["Type"].as_str().unwrap_or_default()),
                    Some("AWS::SecretsManager::Secret"),
                    "{name}: {var} names {resource}"
                );
                given.insert(resource);
            }
        }
        // secretsmanager:GetSecretValue on exactly the secrets it is given.
        let readable: BTreeSet<String> = function["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|policy| policy["Statement"].as_sequence().into_iter().flatten())
            .filter(|statement| statement["Action"] == "secretsmanager:GetSecretValue")
            .flat_map(|statement| statement["Resource"].as_sequence().into_iter().flatten())
            .map(reference)
            .collect();
        assert_eq!(
            readable, given,
            "{name} reads exactly the secrets it is given"
        );
        if name == "AblyEventsFunction" {
            assert!(
                !given.contains("AblyApiKeySecret"),
                "the function that verifies webhooks is never given the API key"
            );
            assert!(given.contains("AblyWebhookKeysSecret"));
        }
    }
    assert_eq!(functions, 6);
    // One secret per value.
    let secrets = resources
        .values()
        .filter(|r| r["Type"] == "AWS::SecretsManager::Secret")
        .count();
    assert_eq!(secrets, SECRET_VARIABLES.len());
}

#[test]
fn the_webhook_route_is_throttled_and_ably_events_may_reserve_concurrency() {
    let template = template();
    let route =
        &template["Resources"]["ChatApi"]["Properties"]["RouteSettings"]["POST /api/ably/events"];
    assert_eq!(
        reference(&route["ThrottlingRateLimit"]),
        "WebhookThrottleRateLimit"
    );
    assert_eq!(
        reference(&route["ThrottlingBurstLimit"]),
        "WebhookThrottleBurstLimit"
    );
    let reserved =
        &template["Resources"]["AblyEventsFunction"]["Properties"]["ReservedConcurrentExecutions"];
    assert!(
        format!("{reserved:?}").contains("AblyEventsReservedConcurrency"),
        "{reserved:?}"
    );
}
