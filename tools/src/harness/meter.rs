//! Counting forwarders in front of the local stores, so that a measured function's Upstash
//! commands and DynamoDB capacity units can be read per invocation.
//!
//! - **Upstash**: every REST request is forwarded unchanged; its commands are counted as
//!   Upstash bills them, one per command of a pipeline or transaction, an `EVAL` as one.
//! - **DynamoDB**: every request is forwarded with `ReturnConsumedCapacity: INDEXES` added
//!   (unless the caller set it), so DynamoDB Local reports the write and read units it
//!   charged the table and each global secondary index; the answer goes back unchanged.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

/// What the stores were asked for, summed since the meter started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub redis_requests: u64,
    pub redis_commands: u64,
    pub redis_by_command: BTreeMap<String, u64>,
    pub dynamo_requests: u64,
    pub dynamo_by_operation: BTreeMap<String, u64>,
    /// Write units DynamoDB reported, table and indexes together.
    pub dynamo_write_units: f64,
    /// Read units DynamoDB reported.
    pub dynamo_read_units: f64,
    /// Items put or deleted (DynamoDB's unprocessed items not included).
    pub dynamo_items_written: u64,
}

impl Counts {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        let diff = |now: &BTreeMap<String, u64>, then: &BTreeMap<String, u64>| {
            now.iter()
                .map(|(k, v)| (k.clone(), v - then.get(k).copied().unwrap_or(0)))
                .filter(|(_, v)| *v > 0)
                .collect()
        };
        Counts {
            redis_requests: self.redis_requests - earlier.redis_requests,
            redis_commands: self.redis_commands - earlier.redis_commands,
            redis_by_command: diff(&self.redis_by_command, &earlier.redis_by_command),
            dynamo_requests: self.dynamo_requests - earlier.dynamo_requests,
            dynamo_by_operation: diff(&self.dynamo_by_operation, &earlier.dynamo_by_operation),
            dynamo_write_units: self.dynamo_write_units - earlier.dynamo_write_units,
            dynamo_read_units: self.dynamo_read_units - earlier.dynamo_read_units,
            dynamo_items_written: self.dynamo_items_written - earlier.dynamo_items_written,
        }
    }
}

/// The running totals both forwarders add to.
#[derive(Debug, Default)]
pub struct Meter {
    counts: Mutex<Counts>,
}

impl Meter {
    pub fn snapshot(&self) -> Counts {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn add(&self, f: impl FnOnce(&mut Counts)) {
        f(&mut self.counts.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Which store a forwarder stands in front of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Upstash,
    DynamoDb,
}

/// Starts a counting forwarder in front of `upstream` (`http://host:port`) on a free local
/// port and answers its URL.
pub async fn start(store: Store, upstream: &str, meter: &Arc<Meter>) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(serve(
        listener,
        store,
        upstream.trim_end_matches('/').to_owned(),
        Arc::clone(meter),
    ));
    Ok(url)
}

/// Forwards every request on `listener` to `upstream`, counting into `meter`, until the
/// task is dropped.
async fn serve(listener: TcpListener, store: Store, upstream: String, meter: Arc<Meter>) {
    chat_core::platform::telemetry::install_crypto_provider();
    let client = reqwest::Client::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let (client, upstream, meter) = (client.clone(), upstream.clone(), Arc::clone(&meter));
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let (client, upstream, meter) =
                    (client.clone(), upstream.clone(), Arc::clone(&meter));
                async move {
                    let response = forward(req, store, &client, &upstream, &meter)
                        .await
                        .unwrap_or_else(|e| {
                            reply(StatusCode::BAD_GATEWAY, Bytes::from(format!("{e:#}")))
                        });
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(
    req: Request<Incoming>,
    store: Store,
    client: &reqwest::Client,
    upstream: &str,
    meter: &Meter,
) -> anyhow::Result<Response<Full<Bytes>>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default()
        .to_owned();
    let body = match store {
        Store::Upstash => {
            let commands = upstash_commands(parts.uri.path(), &body);
            meter.add(|c| {
                c.redis_requests += 1;
                c.redis_commands += commands.len() as u64;
                for name in commands {
                    *c.redis_by_command.entry(name).or_default() += 1;
                }
            });
            body
        }
        Store::DynamoDb => with_consumed_capacity(&body),
    };
    let request_body = body.clone();

    let mut request = client.request(parts.method.clone(), format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        // The body may have changed and the answer must come back uncompressed.
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding" | "accept-encoding"
        ) {
            request = request.header(name, value);
        }
    }
    let response = request.body(body).send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let answer = response.bytes().await?;
    if store == Store::DynamoDb {
        let usage = dynamo_usage(&operation, &request_body, &answer);
        meter.add(|c| {
            c.dynamo_requests += 1;
            *c.dynamo_by_operation.entry(operation).or_default() += 1;
            c.dynamo_write_units += usage.write_units;
            c.dynamo_read_units += usage.read_units;
            c.dynamo_items_written += usage.items_written;
        });
    }
    let mut out = reply(status, answer);
    for (name, value) in &headers {
        if !matches!(
            name.as_str(),
            "content-length" | "connection" | "transfer-encoding"
        ) {
            out.headers_mut().append(name, value.clone());
        }
    }
    Ok(out)
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

/// The command names of one Upstash REST request: one for `POST /` (a JSON array) and for
/// a path-style command (`/get/key`), one per entry of `/pipeline` and `/multi-exec`.
pub fn upstash_commands(path: &str, body: &[u8]) -> Vec<String> {
    let name = |command: &Value| {
        command
            .get(0)
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_ascii_uppercase()
    };
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match path.trim_end_matches('/') {
        "" => vec![parsed.as_ref().map_or_else(|| "?".to_owned(), name)],
        "/pipeline" | "/multi-exec" => parsed
            .as_ref()
            .and_then(Value::as_array)
            .map(|commands| commands.iter().map(name).collect())
            .unwrap_or_default(),
        other => vec![other
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("?")
            .to_ascii_uppercase()],
    }
}

/// The request with `ReturnConsumedCapacity: INDEXES`, unless it is not a JSON object or
/// already asks for capacity.
fn with_consumed_capacity(body: &Bytes) -> Bytes {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut request)) if !request.contains_key("ReturnConsumedCapacity") => {
            request.insert("ReturnConsumedCapacity".into(), "INDEXES".into());
            Bytes::from(Value::Object(request).to_string())
        }
        _ => body.clone(),
    }
}

/// What one DynamoDB answer reports.
#[derive(Debug, Default, PartialEq)]
pub struct Usage {
    pub write_units: f64,
    pub read_units: f64,
    pub items_written: u64,
}

/// The capacity `answer` reports for `operation` (writes count as write units, everything
/// else as read units) and the items `request` wrote that the answer does not list as
/// unprocessed.
pub fn dynamo_usage(operation: &str, request: &[u8], answer: &[u8]) -> Usage {
    let Ok(answer) = serde_json::from_slice::<Value>(answer) else {
        return Usage::default();
    };
    let units: f64 = match &answer["ConsumedCapacity"] {
        Value::Array(entries) => entries.iter().map(capacity_units).sum(),
        entry @ Value::Object(_) => capacity_units(entry),
        _ => 0.0,
    };
    let request: Value = serde_json::from_slice(request).unwrap_or_default();
    let items_written = match operation {
        "BatchWriteItem" => {
            table_entries(&request["RequestItems"]) - table_entries(&answer["UnprocessedItems"])
        }
        "TransactWriteItems" => request["TransactItems"].as_array().map_or(0, Vec::len),
        "PutItem" | "UpdateItem" | "DeleteItem" if answer.get("__type").is_none() => 1,
        _ => 0,
    };
    let writes = items_written > 0 || operation.contains("Write");
    // DynamoDB Local reports no capacity for keys that hold no item; DynamoDB charges
    // every key read at least its minimum (1 unit strongly consistent, 0.5 eventually),
    // which is what a tombstone lookup of a conversation never erased costs.
    let read_units = if writes {
        0.0
    } else if answer.get("__type").is_some() {
        units
    } else {
        units.max(minimum_read_units(operation, &request))
    };
    Usage {
        write_units: if writes { units } else { 0.0 },
        read_units,
        items_written: items_written as u64,
    }
}

/// The least a `GetItem` or `BatchGetItem` of `request` costs: per key, 1 read unit if
/// strongly consistent, else 0.5.
fn minimum_read_units(operation: &str, request: &Value) -> f64 {
    let per_key = |consistent: &Value| {
        if consistent == &Value::Bool(true) {
            1.0
        } else {
            0.5
        }
    };
    match operation {
        "GetItem" => per_key(&request["ConsistentRead"]),
        "BatchGetItem" => request["RequestItems"].as_object().map_or(0.0, |tables| {
            tables
                .values()
                .map(|table| {
                    table["Keys"].as_array().map_or(0, Vec::len) as f64
                        * per_key(&table["ConsistentRead"])
                })
                .sum()
        }),
        _ => 0.0,
    }
}

fn capacity_units(entry: &Value) -> f64 {
    entry["CapacityUnits"].as_f64().unwrap_or(0.0)
}

/// The write requests of a `RequestItems` or `UnprocessedItems` map, over all its tables.
fn table_entries(tables: &Value) -> usize {
    tables.as_object().map_or(0, |tables| {
        tables
            .values()
            .filter_map(Value::as_array)
            .map(Vec::len)
            .sum()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstash_commands_are_counted_as_upstash_bills_them() {
        let eval = br#"["EVAL","return 1","1","k","a"]"#;
        assert_eq!(upstash_commands("/", eval), ["EVAL"]);
        let pipeline = br#"[["get","a"],["SET","b","1"],["EXPIRE","b","9"]]"#;
        assert_eq!(
            upstash_commands("/pipeline", pipeline),
            ["GET", "SET", "EXPIRE"]
        );
        assert_eq!(
            upstash_commands("/multi-exec", br#"[["INCR","c"]]"#),
            ["INCR"]
        );
        assert_eq!(upstash_commands("/get/some-key", b""), ["GET"]);
    }

    #[test]
    fn dynamo_capacity_is_read_from_the_answer() {
        let answer = br#"{"UnprocessedItems":{},"ConsumedCapacity":[{"TableName":"t","CapacityUnits":6.0,"Table":{"CapacityUnits":3.0},"GlobalSecondaryIndexes":{"by_type":{"CapacityUnits":3.0}}}]}"#;
        let request = br#"{"RequestItems":{"t":[{"PutRequest":{}},{"PutRequest":{}}]}}"#;
        let usage = dynamo_usage("BatchWriteItem", request, answer);
        assert_eq!(
            usage,
            Usage {
                write_units: 6.0,
                read_units: 0.0,
                items_written: 2
            }
        );
        let unprocessed = br#"{"UnprocessedItems":{"t":[{"PutRequest":{}}]}}"#;
        assert_eq!(
            dynamo_usage("BatchWriteItem", request, unprocessed).items_written,
            1
        );
        let query = br#"{"Items":[],"ConsumedCapacity":{"TableName":"t","CapacityUnits":0.5}}"#;
        assert_eq!(dynamo_usage("Query", b"{}", query).read_units, 0.5);
        // Keys that hold nothing: DynamoDB Local reports no capacity, DynamoDB charges the
        // minimum per key.
        let lookup = br#"{"RequestItems":{"t":{"Keys":[{},{},{}],"ConsistentRead":true},"u":{"Keys":[{}]}}}"#;
        let nothing = br#"{"Responses":{"t":[]},"UnprocessedKeys":{},"ConsumedCapacity":[]}"#;
        assert_eq!(
            dynamo_usage("BatchGetItem", lookup, nothing).read_units,
            3.5
        );
        let get = br#"{"Key":{},"ConsistentRead":true}"#;
        assert_eq!(dynamo_usage("GetItem", get, b"{}").read_units, 1.0);
        // One of two keys found (1 unit reported, for it): never less than the minimum.
        let one_found = br#"{"Responses":{"t":[{}]},"ConsumedCapacity":[{"TableName":"t","CapacityUnits":1.0}]}"#;
        let two = br#"{"RequestItems":{"t":{"Keys":[{},{}],"ConsistentRead":true}}}"#;
        assert_eq!(dynamo_usage("BatchGetItem", two, one_found).read_units, 2.0);
        let failed = br#"{"__type":"ResourceNotFoundException"}"#;
        assert_eq!(dynamo_usage("GetItem", get, failed).read_units, 0.0);
        let asked = with_consumed_capacity(&Bytes::from_static(request));
        assert!(String::from_utf8_lossy(&asked).contains(r#""ReturnConsumedCapacity":"INDEXES""#));
    }

    #[test]
    fn counts_since_subtract_every_field() {
        let mut later = Counts {
            redis_requests: 3,
            redis_commands: 5,
            dynamo_write_units: 4.0,
            ..Counts::default()
        };
        later.redis_by_command.insert("EVAL".into(), 3);
        let mut earlier = Counts {
            redis_requests: 1,
            redis_commands: 1,
            ..Counts::default()
        };
        earlier.redis_by_command.insert("EVAL".into(), 1);
        let delta = later.since(&earlier);
        assert_eq!((delta.redis_requests, delta.redis_commands), (2, 4));
        assert_eq!(delta.redis_by_command["EVAL"], 2);
        assert_eq!(delta.dynamo_write_units, 4.0);
    }
}
