//! `openapi.yaml` against the code: every route each function serves is described (and
//! nothing else is), and the answers of the real handlers to a representative set of
//! valid and invalid requests over the local stack are documented for their operation,
//! with bodies that match the documented schema and the documented headers.

use std::collections::{BTreeMap, BTreeSet};

use chat_core::handlers::{ably_events, publish, records, resume, stats, token};
use chat_core::platform::http::Service;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use crate::helpers::api_request;
use crate::helpers::EventsApp;

const SERVICES: [Service; 6] = [
    token::SERVICE,
    publish::SERVICE,
    ably_events::SERVICE,
    stats::SERVICE,
    resume::SERVICE,
    records::SERVICE,
];

pub fn spec() -> Value {
    let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml"));
    serde_norway::from_str(text).expect("openapi.yaml is YAML")
}

fn operation<'a>(spec: &'a Value, path: &str, method: &str) -> Option<&'a Value> {
    spec["paths"]
        .get(path)
        .and_then(|item| item.get(method.to_ascii_lowercase()))
}

/// Follows a local `$ref` (`#/a/b`) once, if `value` is one.
fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => spec
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {reference}")),
        None => value,
    }
}

#[test]
fn every_route_of_every_function_is_described_and_nothing_else() {
    let spec = spec();
    assert_eq!(spec["openapi"], "3.1.0");
    let mut served = BTreeSet::new();
    for service in SERVICES {
        for route in service.routes {
            for method in route.methods.iter().chain(&["OPTIONS"]) {
                assert!(
                    operation(&spec, route.path, method).is_some(),
                    "{} serves {method} {} but openapi.yaml does not describe it",
                    service.name,
                    route.path
                );
                served.insert((route.path.to_owned(), method.to_ascii_lowercase()));
            }
        }
    }
    let paths = spec["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            if ["parameters", "summary", "description", "servers"].contains(&method.as_str()) {
                continue;
            }
            assert!(
                served.contains(&(path.clone(), method.clone())),
                "openapi.yaml describes {method} {path}, which no function serves"
            );
        }
    }
}

mod events_cases;
mod publish_cases;
mod records_cases;
mod resume_cases;
mod stats_cases;
mod token_cases;

// --- what the handlers answer -------------------------------------------------------------

/// One answer of a real handler.
struct Seen {
    what: &'static str,
    path: String,
    method: String,
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

#[derive(Default)]
struct Answers(Vec<Seen>);

impl Answers {
    /// Sends each case, in order, to `handle` and keeps its answer under the case's name.
    async fn run<F, Fut>(&mut self, handle: F, cases: Vec<Case>)
    where
        F: Fn(Request) -> Fut,
        Fut: std::future::Future<Output = Response<Body>>,
    {
        for case in cases {
            let headers: Vec<(&str, &str)> = case
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let request = api_request(case.method, &case.uri, &headers, case.body.as_deref());
            let res = handle(request).await;
            self.0.push(Seen {
                what: case.name,
                path: case
                    .uri
                    .split_once('?')
                    .map_or(case.uri.as_str(), |(p, _)| p)
                    .to_owned(),
                method: case.method.to_owned(),
                status: res.status().as_u16(),
                headers: res.headers().clone(),
                body: res.body().as_ref().to_vec(),
            });
        }
    }
}

/// One request of a function's table: its name (`"<function>: <case>"`, what a failure
/// names) and what is sent.
struct Case {
    name: &'static str,
    method: &'static str,
    uri: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

/// A case without headers or body.
fn case(name: &'static str, method: &'static str, uri: &str) -> Case {
    Case {
        name,
        method,
        uri: uri.to_owned(),
        headers: Vec::new(),
        body: None,
    }
}

impl Case {
    fn headers(mut self, headers: &[(&str, &str)]) -> Self {
        self.headers = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self
    }

    fn body(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }
}

fn auth(token: &str) -> String {
    format!("Bearer {token}")
}

// --- checking the answers against the description -----------------------------------------

/// A validator for `schema`, whose `$ref`s point into the spec's components.
fn validator(spec: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": spec["components"],
        "allOf": [schema],
    });
    jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}\n{schema}"))
}

/// Every way `seen` departs from what openapi.yaml documents for it.
fn departures(spec: &Value, seen: &Seen) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(op) = operation(spec, &seen.path, &seen.method) else {
        return vec![format!("{} {} is not described", seen.method, seen.path)];
    };
    let Some(response) = op["responses"].get(seen.status.to_string()) else {
        return vec![format!(
            "status {} is not documented for {} {}",
            seen.status, seen.method, seen.path
        )];
    };
    let response = resolve(spec, response);
    if let Some(headers) = response.get("headers").and_then(Value::as_object) {
        for (name, header) in headers {
            let header = resolve(spec, header);
            let value = seen
                .headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok());
            match value {
                None if header["required"] == true => {
                    problems.push(format!("required header {name} is missing"))
                }
                None => {}
                Some(value) => {
                    let v = validator(spec, &header["schema"]);
                    if let Err(e) = v.validate(&Value::from(value)) {
                        problems.push(format!("header {name}: {value:?}: {e}"));
                    }
                }
            }
        }
    }
    // A body in another documented media type: NDJSON lines valid as the array its
    // schema describes, CSV whose first line is the documented header row.
    let media_type = seen
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default();
    if media_type != "application/json" {
        if let Some(media) = response["content"].get(media_type) {
            let text = String::from_utf8_lossy(&seen.body);
            match media_type {
                "application/x-ndjson" => {
                    // Its lines, as the array the schema describes.
                    let lines: Result<Vec<Value>, _> =
                        text.lines().map(serde_json::from_str::<Value>).collect();
                    match lines {
                        Err(e) => problems.push(format!("a line is not JSON: {e}")),
                        Ok(lines) => {
                            let v = validator(spec, &media["schema"]);
                            let lines = Value::Array(lines);
                            problems.extend(
                                v.iter_errors(&lines)
                                    .map(|e| format!("line at {}: {e}", e.instance_path())),
                            );
                        }
                    }
                }
                _ => {
                    let header = media["example"].as_str().and_then(|e| e.lines().next());
                    if header.is_none() || text.lines().next() != header {
                        problems.push(format!(
                            "first line {:?} is not {header:?}",
                            text.lines().next()
                        ));
                    }
                }
            }
            return problems;
        }
    }
    match response["content"].get("application/json") {
        None if seen.body.is_empty() => {}
        None => problems.push(format!(
            "undocumented body {:?}",
            String::from_utf8_lossy(&seen.body)
        )),
        Some(media) => {
            let content_type = seen
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok());
            if content_type != Some("application/json") {
                problems.push(format!("content-type is {content_type:?}"));
            }
            match serde_json::from_slice::<Value>(&seen.body) {
                Err(e) => problems.push(format!("body is not JSON: {e}")),
                Ok(body) => {
                    let v = validator(spec, &media["schema"]);
                    for e in v.iter_errors(&body) {
                        problems.push(format!("body at {}: {e}", e.instance_path()));
                    }
                    if problems.iter().any(|p| p.starts_with("body")) {
                        problems.push(format!("body: {body}"));
                    }
                }
            }
        }
    }
    problems
}

#[tokio::test]
async fn the_handlers_answer_only_as_documented() {
    let spec = spec();
    let mut answers = Answers::default();
    let h = EventsApp::new().await;
    token_cases::answers(&mut answers).await;
    publish_cases::answers(&mut answers).await;
    events_cases::answers(&mut answers, &h).await;
    stats_cases::answers(&mut answers, &h).await;
    resume_cases::answers(&mut answers, &h).await;
    records_cases::answers(&mut answers).await;

    let mut failures = Vec::new();
    let mut seen: BTreeMap<(String, String), BTreeSet<u16>> = BTreeMap::new();
    for answer in &answers.0 {
        seen.entry((answer.path.clone(), answer.method.clone()))
            .or_default()
            .insert(answer.status);
        for problem in departures(&spec, answer) {
            failures.push(format!(
                "{} ({} {} -> {}): {problem}",
                answer.what, answer.method, answer.path, answer.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The set above must reach every operation and its success answers, so that a
    // drifting success schema cannot go unnoticed.
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let statuses = &seen[&(path.clone(), method.to_ascii_uppercase())];
            for status in op["responses"].as_object().unwrap().keys() {
                if status.starts_with('2') {
                    let status: u16 = status.parse().unwrap();
                    assert!(
                        statuses.contains(&status),
                        "no request reached {status} of {method} {path}"
                    );
                }
            }
        }
    }
}
