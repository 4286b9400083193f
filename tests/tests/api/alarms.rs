//! `template.yaml`'s alarms against what the functions emit: every alarm on an EMF metric
//! names a metric and dimension the code emits, every failure metric has an alarm, and
//! every function has its Lambda `Errors` and `Throttles` alarms, all notifying one topic.

use std::collections::BTreeSet;

use chat_core::handlers::{ably_events, publish};
use serde_norway::Value;

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    serde_norway::from_str(&std::fs::read_to_string(path).expect("template.yaml")).expect("YAML")
}

/// `!Ref X` (and plain strings) as text: `Ref:X`.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Tagged(tagged) => format!("{}:{}", tagged.tag, text(&tagged.value)).replace('!', ""),
        other => format!("{other:?}"),
    }
}

/// A metric an alarm reads: namespace, metric name, `(dimension, value)`s, statistic.
type AlarmMetric = (String, String, Vec<(String, String)>, String);

fn alarm_metrics(properties: &Value) -> Vec<AlarmMetric> {
    let dimensions = |metric: &Value| -> Vec<(String, String)> {
        metric["Dimensions"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|d| (text(&d["Name"]), text(&d["Value"])))
            .collect()
    };
    if properties.get("MetricName").is_some() {
        let stat = properties
            .get("ExtendedStatistic")
            .or_else(|| properties.get("Statistic"))
            .map(text)
            .unwrap_or_default();
        return vec![(
            text(&properties["Namespace"]),
            text(&properties["MetricName"]),
            dimensions(properties),
            stat,
        )];
    }
    properties["Metrics"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("MetricStat"))
        .map(|stat| {
            let metric = &stat["Metric"];
            (
                text(&metric["Namespace"]),
                text(&metric["MetricName"]),
                dimensions(metric),
                text(&stat["Stat"]),
            )
        })
        .collect()
}

#[test]
fn every_alarm_reads_an_emitted_metric_and_every_failure_metric_has_one() {
    let template = template();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let emitted: BTreeSet<(&str, &str)> = ably_events::METRICS
        .iter()
        .map(|m| (ably_events::SERVICE.name, *m))
        .chain(publish::METRICS.iter().map(|m| (publish::SERVICE.name, *m)))
        .collect();
    let mut alarmed = BTreeSet::new();
    let mut lambda = BTreeSet::new();
    let mut alarms = 0;
    for (name, resource) in resources {
        if resource["Type"] != "AWS::CloudWatch::Alarm" {
            continue;
        }
        alarms += 1;
        let name = text(name);
        let properties = &resource["Properties"];
        assert_eq!(
            properties["AlarmActions"]
                .as_sequence()
                .map(|a| a.iter().map(text).collect::<Vec<_>>()),
            Some(vec!["Ref:AlarmTopic".to_owned()]),
            "{name} notifies the one topic"
        );
        let metrics = alarm_metrics(properties);
        assert!(!metrics.is_empty(), "{name} reads no metric");
        for (namespace, metric, dimensions, stat) in metrics {
            match namespace.as_str() {
                "AblyChat" => {
                    let [(dimension, function)] = dimensions.as_slice() else {
                        panic!("{name}: EMF metrics carry one dimension, Function: {dimensions:?}");
                    };
                    assert_eq!(dimension, "Function", "{name}");
                    assert!(
                        emitted.contains(&(function.as_str(), metric.as_str())),
                        "{name}: {function} never emits {metric}"
                    );
                    alarmed.insert((metric, stat));
                }
                "AWS/Lambda" => {
                    let [(dimension, function)] = dimensions.as_slice() else {
                        panic!("{name}: {dimensions:?}");
                    };
                    assert_eq!(dimension, "FunctionName", "{name}");
                    lambda.insert((function.clone(), metric));
                }
                other => panic!("{name}: unexpected namespace {other}"),
            }
        }
    }
    for failure in ably_events::FAILURE_METRICS {
        assert!(
            alarmed.iter().any(|(metric, _)| metric == failure),
            "the failure metric {failure} has no alarm"
        );
    }
    assert!(
        alarmed.contains(&("duration".to_owned(), "p95".to_owned())),
        "webhook duration P95"
    );
    let functions: Vec<String> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(name, _)| format!("Ref:{}", text(name)))
        .collect();
    assert_eq!(functions.len(), 5);
    for function in &functions {
        for metric in ["Errors", "Throttles"] {
            assert!(
                lambda.contains(&(function.clone(), metric.to_owned())),
                "{function} has no {metric} alarm"
            );
        }
    }
    assert_eq!(alarms, 5 + 2 * functions.len());
}
