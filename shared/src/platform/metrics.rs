//! CloudWatch Embedded Metric Format: one JSON line on stdout that CloudWatch turns into
//! metrics, with no API call on the request path.

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "AblyChat";

/// A metric value with its CloudWatch unit (`Count`, `Milliseconds`).
pub struct Metric {
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
}

impl Metric {
    pub fn count(name: &'static str, value: usize) -> Self {
        Metric {
            name,
            value: value as f64,
            unit: "Count",
        }
    }
    pub fn millis(name: &'static str, value: f64) -> Self {
        Metric {
            name,
            value,
            unit: "Milliseconds",
        }
    }
}

/// The EMF document for `metrics`, dimensioned by function name.
pub fn emf_line(function: &str, timestamp_ms: i64, metrics: &[Metric]) -> String {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"Name": m.name, "Unit": m.unit}))
        .collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": definitions,
            }]
        }),
    );
    doc.insert("Function".into(), json!(function));
    for m in metrics {
        doc.insert(m.name.into(), json!(m.value));
    }
    Value::Object(doc).to_string()
}

/// Writes the EMF line to stdout, where the Lambda runtime ships it to CloudWatch Logs.
pub fn emit(function: &str, metrics: &[Metric]) {
    println!(
        "{}",
        emf_line(function, crate::platform::clock::now_ms(), metrics)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_declares_every_metric() {
        let line = emf_line(
            "ably-events",
            1_700_000_000_000,
            &[
                Metric::count("received", 3),
                Metric::millis("duration", 1.5),
            ],
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "AblyChat");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1],
            json!({"Name": "duration", "Unit": "Milliseconds"})
        );
        assert_eq!(v["received"], json!(3.0));
        assert_eq!(v["Function"], "ably-events");
        assert_eq!(v["_aws"]["Timestamp"], json!(1_700_000_000_000i64));
    }
}
