//! `template.yaml`'s alarms against what the functions emit: every alarm on an EMF metric
//! names a metric and dimension the code emits, every failure metric has an alarm, every
//! function has its Lambda `Errors` and `Throttles` alarms, the chat events table and each
//! of its indexes their DynamoDB throttling alarms, and the Kinesis path its iterator age
//! alarm, all notifying one topic.
//! Every queue that holds Ably events `ably-events` gave up on (the SQS path's dead-letter
//! queue, the on-failure destination of the Kinesis mapping and of direct invocations) has
//! an alarm on its depth, present exactly when the queue is.

use std::collections::{BTreeMap, BTreeSet};

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

/// `!GetAtt Resource.Attribute` as `(Resource, Attribute)`.
fn get_att(value: &Value) -> Option<(String, String)> {
    let text = text(value);
    let (resource, attribute) = text.strip_prefix("GetAtt:")?.split_once('.')?;
    Some((resource.to_owned(), attribute.to_owned()))
}

/// A resource's `Condition`, if it has one.
fn condition(resource: &Value) -> Option<String> {
    resource.get("Condition").map(text)
}

fn number(value: &Value) -> Option<f64> {
    value.as_f64()
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
    let mut throttles = BTreeSet::new();
    let mut alarms = 0;
    let mut emf_alarms = 0;
    let mut queue_alarms = 0;
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
        if metrics
            .iter()
            .any(|(namespace, ..)| namespace == "AblyChat")
        {
            emf_alarms += 1;
        }
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
                    if metric == "IteratorAge" {
                        assert_eq!(
                            condition(resource).as_deref(),
                            Some("HasAblyKinesisStream"),
                            "{name}: only when the Kinesis path is on"
                        );
                    }
                    lambda.insert((function.clone(), metric));
                }
                "AWS/DynamoDB" => {
                    let dimension = |wanted: &str| {
                        dimensions
                            .iter()
                            .find(|(d, _)| d == wanted)
                            .map(|(_, v)| v.clone())
                    };
                    assert_eq!(
                        dimension("TableName").as_deref(),
                        Some("Ref:ChatEventsTable"),
                        "{name}"
                    );
                    throttles.insert((metric, dimension("GlobalSecondaryIndexName")));
                }
                // Queue alarms: not EMF metrics, held to their queues by the test below.
                "AWS/SQS" => queue_alarms += 1,
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
    assert_eq!(functions.len(), 6);
    for function in &functions {
        for metric in ["Errors", "Throttles"] {
            assert!(
                lambda.contains(&(function.clone(), metric.to_owned())),
                "{function} has no {metric} alarm"
            );
        }
    }
    assert!(
        lambda.contains(&(
            "Ref:AblyEventsFunction".to_owned(),
            "IteratorAge".to_owned()
        )),
        "the Kinesis path has no iterator age alarm"
    );
    // The table's reads and writes, and each index's writes.
    let indexes: Vec<String> = resources
        .get("ChatEventsTable")
        .and_then(|t| t["Properties"]["GlobalSecondaryIndexes"].as_sequence())
        .into_iter()
        .flatten()
        .map(|index| text(&index["IndexName"]))
        .collect();
    let mut expected: BTreeSet<(String, Option<String>)> =
        ["ReadThrottleEvents", "WriteThrottleEvents"]
            .into_iter()
            .map(|m| (m.to_owned(), None))
            .collect();
    expected.extend(
        indexes
            .iter()
            .map(|index| ("WriteThrottleEvents".to_owned(), Some(index.clone()))),
    );
    assert_eq!(throttles, expected, "DynamoDB throttling alarms");
    assert_eq!(
        alarms,
        emf_alarms + 2 * functions.len() + 1 + throttles.len() + queue_alarms
    );
}

/// An alarm on the depth of a queue: `ApproximateNumberOfMessagesVisible > 0` on that
/// queue's name, notifying the topic.
struct QueueAlarm {
    name: String,
    queue: String,
    condition: Option<String>,
}

fn queue_depth_alarms(resources: &serde_norway::Mapping) -> Vec<QueueAlarm> {
    let mut alarms = Vec::new();
    for (name, resource) in resources {
        if resource["Type"] != "AWS::CloudWatch::Alarm" {
            continue;
        }
        let name = text(name);
        let properties = &resource["Properties"];
        for (namespace, metric, dimensions, stat) in alarm_metrics(properties) {
            if namespace != "AWS/SQS" {
                continue;
            }
            assert_eq!(
                metric, "ApproximateNumberOfMessagesVisible",
                "{name} reads the queue depth"
            );
            assert_eq!(stat, "Maximum", "{name}");
            let [(dimension, queue)] = dimensions.as_slice() else {
                panic!("{name}: one dimension, QueueName: {dimensions:?}");
            };
            assert_eq!(dimension, "QueueName", "{name}");
            let queue = queue
                .strip_prefix("GetAtt:")
                .and_then(|q| q.strip_suffix(".QueueName"))
                .unwrap_or_else(|| {
                    panic!("{name}: QueueName is not !GetAtt <queue>.QueueName: {queue}")
                });
            assert_eq!(
                number(&properties["Threshold"]),
                Some(0.0),
                "{name}: any message"
            );
            assert_eq!(
                text(&properties["ComparisonOperator"]),
                "GreaterThanThreshold",
                "{name}"
            );
            assert_eq!(
                properties["AlarmActions"]
                    .as_sequence()
                    .map(|a| a.iter().map(text).collect::<Vec<_>>()),
                Some(vec!["Ref:AlarmTopic".to_owned()]),
                "{name} notifies the one topic"
            );
            alarms.push(QueueAlarm {
                name: name.clone(),
                queue: queue.to_owned(),
                condition: condition(resource),
            });
        }
    }
    alarms
}

#[test]
fn every_queue_of_given_up_ably_events_has_a_depth_alarm() {
    let template = template();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let resource = |name: &str| {
        resources
            .get(name)
            .unwrap_or_else(|| panic!("no resource {name}"))
    };
    let events_timeout = number(&resource("AblyEventsFunction")["Properties"]["Timeout"])
        .expect("AblyEventsFunction sets its Timeout");

    // Every queue where an event ably-events gave up on ends: dead-letter queues of SQS
    // queues, on-failure destinations of event source mappings and async invocations.
    let mut watched: BTreeMap<String, String> = BTreeMap::new();
    for (name, source) in resources {
        let name = text(name);
        let properties = &source["Properties"];
        match text(&source["Type"]).as_str() {
            "AWS::SQS::Queue" => {
                assert_eq!(
                    number(&properties["MessageRetentionPeriod"]),
                    Some(1_209_600.0),
                    "{name} keeps messages 14 days"
                );
                let Some(redrive) = properties.get("RedrivePolicy") else {
                    continue;
                };
                assert_eq!(
                    number(&redrive["maxReceiveCount"]),
                    Some(5.0),
                    "{name}: 5 receives"
                );
                let visibility = number(&properties["VisibilityTimeout"])
                    .unwrap_or_else(|| panic!("{name} sets its VisibilityTimeout"));
                assert!(
                    visibility >= 6.0 * events_timeout,
                    "{name}: a visibility timeout of {visibility} s is under 6 x the function's {events_timeout} s"
                );
                let (dlq, attribute) =
                    get_att(&redrive["deadLetterTargetArn"]).unwrap_or_else(|| {
                        panic!("{name}: deadLetterTargetArn is not !GetAtt <queue>.Arn")
                    });
                assert_eq!(attribute, "Arn", "{name}");
                watched.insert(dlq, format!("dead-letter queue of {name}"));
            }
            kind @ ("AWS::Lambda::EventSourceMapping" | "AWS::Lambda::EventInvokeConfig") => {
                if kind == "AWS::Lambda::EventSourceMapping" {
                    assert!(
                        properties["FunctionResponseTypes"]
                            .as_sequence()
                            .is_some_and(|t| t.iter().any(|t| t == "ReportBatchItemFailures")),
                        "{name} reports partial batch failures"
                    );
                }
                let Some(destination) = properties
                    .get("DestinationConfig")
                    .and_then(|d| d.get("OnFailure"))
                    .map(|d| &d["Destination"])
                else {
                    continue;
                };
                let (queue, attribute) = get_att(destination).unwrap_or_else(|| {
                    panic!("{name}: the OnFailure destination is not !GetAtt <queue>.Arn")
                });
                assert_eq!(attribute, "Arn", "{name}");
                watched
                    .entry(queue)
                    .or_insert_with(|| format!("on-failure destination of {name}"));
            }
            _ => {}
        }
    }
    for path in [
        "AblyEventsQueueMapping",
        "AblyEventsStreamMapping",
        "AblyEventsInvokeConfig",
    ] {
        assert!(
            resources.get(path).is_some(),
            "{path}: the template lost a delivery path"
        );
    }
    assert!(
        watched.len() >= 2,
        "the dead-letter queue and the failure queue: {watched:?}"
    );

    let alarms = queue_depth_alarms(resources);
    for alarm in &alarms {
        let queue = resource(&alarm.queue);
        assert_eq!(
            text(&queue["Type"]),
            "AWS::SQS::Queue",
            "{} reads a queue",
            alarm.name
        );
        // The alarm is created exactly when its queue is (a reference to a queue that is
        // not created fails the deployment; a queue without its alarm goes unwatched).
        assert_eq!(
            alarm.condition,
            condition(queue),
            "{}: the condition of {}",
            alarm.name,
            alarm.queue
        );
    }
    for (queue, why) in &watched {
        assert_eq!(
            text(&resource(queue)["Type"]),
            "AWS::SQS::Queue",
            "{queue}, the {why}"
        );
        assert!(
            alarms.iter().any(|a| &a.queue == queue),
            "{queue}, the {why}, has no depth alarm"
        );
    }
    assert!(
        alarms.iter().all(|a| watched.contains_key(&a.queue)),
        "a depth alarm on a queue that holds no given-up events"
    );
}
