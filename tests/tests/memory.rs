//! The memory bound of `ably-events`: a webhook of small messages that are large as values
//! (data a JSON array of 17 000 zeros: 34 KB on the wire, half a megabyte as a value tree)
//! is stored within a bounded heap, against the real local stack.
//!
//! Its own test binary, so that the counting allocator below sees this one delivery and
//! nothing that other tests do at the same time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use chat_core::ably::webhook::signature::sign;
use chat_core::handlers::ably_events::{handle, EventsConfig, EventsState};
use chat_core::platform::env::Env;
use serde_json::{json, Value};

/// The system allocator, counting the bytes in use and the most ever in use.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `layout`, passed on as it is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on as it is.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                let grown = new_size - layout.size();
                let now = IN_USE.fetch_add(grown, Ordering::Relaxed) + grown;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                IN_USE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: usize = 1024 * 1024;
/// The template gives ably-events 256 MB; the issue's bound for the process is 128 MB, of
/// which the runtime, TLS and clients take about 15 (the release bootstrap's RSS).
const HEAP_BOUND: usize = 96 * MIB;
const KEY_NAME: &str = "app.memory";
const SECRET: &str = "memory-test-webhook-secret";

fn stack_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test, which starts the local stack")
    })
}

/// One batched webhook item: a message of `numbers` zeros, timed now.
fn item(id: &str, conversation: &str, numbers: usize, now_ms: i64) -> String {
    let data = format!("[{}0]", "0,".repeat(numbers - 1));
    format!(
        r#"{{"webhookId":"w","source":"channel.message","serial":"{id}","timestamp":{now_ms},"name":"channel.message","data":{{"channelId":"conversation:{conversation}","site":"local","messages":[{{"id":"{id}","clientId":"customer-1","timestamp":{now_ms},"name":"message:user","data":{data}}}]}}}}"#
    )
}

#[tokio::test]
async fn a_six_megabyte_webhook_of_number_arrays_is_stored_within_a_bounded_heap() {
    let suffix: u32 = rand::random();
    let table = format!("memory-{suffix:08x}");
    let dynamo = chat_core::storage::dynamo::client();
    dev_tools::table::ensure_chat_events_table(&dynamo, &table)
        .await
        .expect("create table");
    let prefix = format!("memory-{suffix:08x}:");
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.extend([
        ("CHAT_EVENTS_TABLE".to_owned(), table.clone()),
        ("REDIS_KEY_PREFIX".to_owned(), prefix.clone()),
        (
            "ABLY_WEBHOOK_KEYS".to_owned(),
            format!("{KEY_NAME}:{SECRET}"),
        ),
    ]);
    stack_var("UPSTASH_REDIS_REST_URL");
    let state = EventsState::new(EventsConfig::load(Env::from_pairs(vars)).expect("config"));

    // 6 MB of 34 KB messages, and one legitimate payload of 19 000 numbers.
    let now_ms = chrono::Utc::now().timestamp_millis();
    let conversation = format!("mem-{suffix:08x}");
    let mut items = vec![item("big-19000:0", &conversation, 19_000, now_ms)];
    let mut size = items[0].len();
    let mut n = 0;
    while size < 6_000_000 {
        let next = item(&format!("m-{n}:0"), &conversation, 17_000, now_ms);
        size += next.len() + 1;
        items.push(next);
        n += 1;
    }
    let body = format!(r#"{{"items":[{}]}}"#, items.join(","));
    drop(items);
    assert!(
        (6_000_000..6_300_000).contains(&body.len()),
        "{}",
        body.len()
    );
    let event = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/api/ably/events", "rawQueryString": "",
        "headers": {"content-type": "application/json", "x-ably-key": KEY_NAME,
            "x-ably-signature": sign(SECRET, body.as_bytes())},
        "requestContext": {"accountId": "1", "apiId": "a", "domainName": "localhost", "domainPrefix": "l",
            "http": {"method": "POST", "path": "/api/ably/events", "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1", "userAgent": "Ably-Webhooks"},
            "requestId": "memory", "routeKey": "$default", "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0},
        "body": body, "isBase64Encoded": false
    })
    .to_string();
    let request = lambda_http::request::from_str(&event).expect("an API Gateway event");
    drop(event);

    // The heap the delivery adds on top of the request it is handed.
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let response = handle(&state, request).await;
    let peak = PEAK.load(Ordering::Relaxed) - before;

    let receipt: Value = serde_json::from_slice(response.body().as_ref()).expect("JSON");
    assert_eq!(response.status(), 200, "{receipt}");
    assert_eq!(receipt["stored"], json!(n + 1), "{receipt}");
    assert_eq!(receipt["skipped"], json!([]));
    assert!(
        peak < HEAP_BOUND,
        "the delivery's heap peaked at {} MiB (bound {} MiB)",
        peak / MIB,
        HEAP_BOUND / MIB
    );
    eprintln!(
        "heap peak of the delivery: {:.1} MiB",
        peak as f64 / MIB as f64
    );

    // The 19 000 numbers are stored whole, in both stores.
    let item = dynamo
        .get_item()
        .table_name(&table)
        .key(
            "conversation_id",
            aws_sdk_dynamodb::types::AttributeValue::S(conversation.clone()),
        )
        .key(
            "event_key",
            aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "{}#big-19000:0",
                chrono::DateTime::from_timestamp_millis(now_ms)
                    .unwrap()
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            )),
        )
        .send()
        .await
        .expect("get item")
        .item
        .expect("the 19 000 numbers are archived");
    let text = item["payload_json"].as_s().expect("payload_json");
    let numbers: Vec<u8> = serde_json::from_str(text).expect("a JSON array");
    assert_eq!(numbers.len(), 19_000);
    assert!(numbers.iter().all(|n| *n == 0));
}
