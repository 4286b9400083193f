//! The in-process path of `ably-events` per batch: verify the signature over the raw
//! body, parse and normalise every entry, and build both store writes (the Redis `EVAL`
//! keys and arguments and the DynamoDB `PutRequest`s). Network time is not included.
//! `webhook_in_process/appends_1000` is a batch of 1000 messages that are AI answers
//! streamed as appends, collapsed to one entry per answer.
//!
//! `cargo bench -p chat-core --bench webhook`

use std::collections::HashMap;
use std::hint::black_box;

use aws_lambda_events::sqs::SqsEvent;
use chat_core::ably::webhook::{parse, parse_msgpack, signature, WebhookVerifier};
use chat_core::ably::WebhookKeys;
use chat_core::platform::env::Secret;
use chat_core::storage::erasure::{conversations_of, skip_erased};
use chat_core::storage::{
    EventStoreConfig, EventStores, Keys, RedisClient, RedisConfig, RetentionConfig,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::json;

/// A realistic batched webhook: `n` chat messages in items of up to 10 messages.
fn batched_body(n: usize) -> Vec<u8> {
    let items: Vec<_> = (0..n.div_ceil(10))
        .map(|item| {
            let messages: Vec<_> = (item * 10..((item + 1) * 10).min(n))
                .map(|i| {
                    let mut m = message(i);
                    m["id"] = json!(format!("conn{item}:{i}:0"));
                    m["connectionId"] = json!(format!("conn{item}"));
                    m
                })
                .collect();
            json!({
                "webhookId": "ABcDEf", "source": "channel.message", "serial": format!("s:{item}"),
                "timestamp": 1_763_000_000_000i64, "name": "channel.message",
                "data": {"channelId": format!("conversation:conv-{}", item % 5), "site": "eu-west-1-A", "messages": messages}
            })
        })
        .collect();
    json!({ "items": items }).to_string().into_bytes()
}

/// AI answers streamed as appends (Ably AI Transport): `n` messages in items of up to 10,
/// 10 answers of a create and `n / 10 - 1` appends each, an answer's messages in order.
fn appends_body(n: usize) -> Vec<u8> {
    let per = n / 10;
    let messages: Vec<_> = (0..n)
        .map(|i| {
            let (answer, k) = (i / per, i % per);
            let serial = format!("01763000000000-{answer:03}@e1");
            let ts = 1_763_000_000_000i64 + i as i64;
            if k == 0 {
                json!({"id": format!("conn:{answer}:0"), "clientId": "broker:b-1", "connectionId": "conn",
                    "timestamp": ts, "name": "message:ai", "serial": serial, "action": 0,
                    "data": "", "version": {"serial": serial, "timestamp": ts}})
            } else {
                json!({"id": format!("conn:{answer}:{k}"), "clientId": "broker:b-1", "connectionId": "conn",
                    "timestamp": ts, "serial": serial, "action": 5, "data": format!("token{k} "),
                    "version": {"serial": format!("{serial}:{k:05}"), "timestamp": ts, "clientId": "broker:b-1"}})
            }
        })
        .collect();
    let items: Vec<_> = messages
        .chunks(10)
        .enumerate()
        .map(|(item, chunk)| {
            json!({
                "webhookId": "ABcDEf", "source": "channel.message", "serial": format!("s:{item}"),
                "timestamp": 1_763_000_000_000i64, "name": "channel.message",
                "data": {"channelId": format!("conversation:conv-{}", item * 10 / per), "site": "eu-west-1-A", "messages": chunk}
            })
        })
        .collect();
    json!({ "items": items }).to_string().into_bytes()
}

fn message(i: usize) -> serde_json::Value {
    json!({
        "id": format!("conn:{i}:0"),
        "clientId": "customer-conv-42",
        "connectionId": "conn",
        "timestamp": 1_763_000_000_000i64 + i as i64,
        "name": "message:user",
        "data": format!(r#"{{"text":"message number {i} from the customer","locale":"en"}}"#),
        "encoding": "json"
    })
}

/// The other shapes Ably sends, `n` entries each: one enveloped message delivery, the
/// seed's flat items, and a batched presence delivery.
fn other_shapes(n: usize) -> [(&'static str, Vec<u8>); 3] {
    let enveloped = json!({
        "source": "channel.message", "appId": "aBCdEf", "channel": "conversation:conv-42",
        "site": "eu-central-1-A", "ruleId": "1-a2Bc",
        "messages": (0..n).map(message).collect::<Vec<_>>()
    });
    let flat = json!({"items": (0..n).map(|i| json!({
        "id": format!("flat-{i}"),
        "name": "message:user",
        "channel": "conversation:conv-42",
        "clientId": "customer-conv-42",
        "data": {"text": format!("message number {i} from the customer"), "locale": "en"},
        "timestamp": 1_763_000_000_000i64 + i as i64
    })).collect::<Vec<_>>()});
    let presence = json!({"items": [{
        "webhookId": "ABcDEf", "source": "channel.presence", "serial": "s:0",
        "timestamp": 1_763_000_000_000i64, "name": "presence.message",
        "data": {"channelId": "conversation:conv-42", "site": "eu-west-1-A",
            "presence": (0..n).map(|i| json!({
                "id": format!("conn:{i}:0"), "clientId": format!("agent-{i}"),
                "connectionId": "conn", "timestamp": 1_763_000_000_000i64 + i as i64,
                "action": 2, "data": {"status": "available"}
            })).collect::<Vec<_>>()}
    }]});
    [
        ("enveloped", enveloped.to_string().into_bytes()),
        ("flat_items", flat.to_string().into_bytes()),
        ("batched_presence", presence.to_string().into_bytes()),
    ]
}

fn bench(c: &mut Criterion) {
    let secret = "bench-secret-not-real";
    let verifier = WebhookVerifier::new(&WebhookKeys {
        keys: vec![("app.key".to_owned(), Secret::new(secret))],
    });
    let redis = RedisClient::new(&RedisConfig {
        url: "http://127.0.0.1:1".into(),
        token: Secret::new("t"),
        key_prefix: String::new(),
    });
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build(),
    );
    let config = EventStoreConfig {
        table: "chat-events".into(),
        retention: RetentionConfig {
            event_retention_days: 90,
            redis_event_ttl_seconds: 86_400,
            redis_event_max: 100,
        },
    };
    let stores = |bridge| {
        EventStores::new(
            &config,
            redis.clone(),
            Keys::default(),
            dynamo.clone(),
            bridge,
        )
    };
    let EventStores { cache, archive, .. } = stores(false);

    let mut group = c.benchmark_group("webhook_in_process");
    // Ten answers: ten entries, whatever the number of appends.
    assert_eq!(parse(&appends_body(1000)).unwrap().events.len(), 10);
    let cases = [
        ("1", batched_body(1), 1),
        ("100", batched_body(100), 100),
        ("1000", batched_body(1000), 1000),
        ("appends_1000", appends_body(1000), 1000),
    ];
    for (name, body, n) in cases {
        let sig = signature::sign(secret, &body);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| {
                assert!(verifier.verify(Some("app.key"), Some(&sig), body).is_ok());
                let batch = parse(black_box(body)).expect("valid batch");
                let redis_args =
                    cache.planned_calls(&batch.events, batch.lifecycle, 1_763_000_000_000);
                let dynamo_writes = archive.write_requests(&batch.events, 1_763_000_000);
                black_box((redis_args, dynamo_writes))
            })
        });
    }
    // The erasure check's in-process part beside the same 1000 events: the delivery's
    // conversations (whose tombstones one BatchGetItem looks up) and every event held
    // against its conversation's erasure (one of them erased, before the events).
    let body = batched_body(1000);
    let sig = signature::sign(secret, &body);
    let erased: HashMap<String, String> =
        HashMap::from([("conv-1".to_owned(), "2025-01-01T00:00:00.000Z".to_owned())]);
    group.throughput(Throughput::Elements(1000));
    group.bench_function("1000_erasure_check", |b| {
        b.iter(|| {
            assert!(verifier.verify(Some("app.key"), Some(&sig), &body).is_ok());
            let mut batch = parse(black_box(&body)).expect("valid batch");
            let lookup = conversations_of(&batch.events).len();
            skip_erased(&mut batch, black_box(&erased));
            let redis_args = cache.planned_calls(&batch.events, batch.lifecycle, 1_763_000_000_000);
            let dynamo_writes = archive.write_requests(&batch.events, 1_763_000_000);
            black_box((lookup, redis_args, dynamo_writes))
        })
    });
    group.finish();

    // The lookup itself, one strongly consistent BatchGetItem for the 5 conversations of
    // a 1000-event webhook, against DynamoDB Local when the dev stack's settings are in
    // the environment (`set -a; . .dev/stack.env; set +a`); skipped otherwise.
    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let table = std::env::var("CHAT_EVENTS_TABLE").unwrap_or_else(|_| "chat-events".into());
        let local = runtime.block_on(async {
            let client = chat_core::storage::dynamo::client();
            EventStores::new(
                &EventStoreConfig {
                    table: table.clone(),
                    retention: config.retention.clone(),
                },
                redis.clone(),
                Keys::default(),
                client,
                false,
            )
            .archive
        });
        let conversations = ["conv-0", "conv-1", "conv-2", "conv-3", "conv-4"];
        let mut lookup = c.benchmark_group("erasure_lookup_dynamodb_local");
        lookup.bench_function("5_conversations", |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
                    local
                        .erased_at(&conversations, until)
                        .await
                        .expect("lookup")
                })
            })
        });
        lookup.finish();
    }

    let body = batched_body(1000);
    let batch = parse(&body).unwrap();
    let sig = signature::sign(secret, &body);
    let mut parts = c.benchmark_group("webhook_parts_1000");
    parts.bench_function("verify", |b| {
        b.iter(|| verifier.verify(Some("app.key"), Some(&sig), black_box(&body)))
    });
    parts.bench_function("parse", |b| b.iter(|| parse(black_box(&body))));
    parts.bench_function("json_value_only", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&body)))
    });
    parts.bench_function("redis_args", |b| {
        b.iter(|| cache.mirror_call(black_box(&batch.events), 0, 1))
    });
    let bridged = stores(true).cache;
    parts.bench_function("redis_args_bridged", |b| {
        b.iter(|| bridged.mirror_call(black_box(&batch.events), 0, 1))
    });
    parts.bench_function("dynamo_writes", |b| {
        b.iter(|| archive.write_requests(black_box(&batch.events), 1))
    });
    parts.finish();

    // Normalisation alone (parse, decode `data`, normalise), per payload shape.
    let mut shapes = c.benchmark_group("normalise_100");
    shapes.throughput(Throughput::Elements(100));
    let batched = batched_body(100);
    shapes.bench_function("batched_messages", |b| {
        b.iter(|| parse(black_box(&batched)))
    });
    for (name, body) in other_shapes(100) {
        assert_eq!(
            parse(&body).map(|batch| batch.events.len()).ok(),
            Some(100),
            "{name}"
        );
        shapes.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| parse(black_box(body)))
        });
    }
    shapes.finish();

    // The same 1000 events as Ably's "MsgPack" encoding and as JSON: parse + normalise.
    let packed =
        rmp_serde::to_vec_named(&serde_json::from_slice::<serde_json::Value>(&body).unwrap())
            .unwrap();
    assert_eq!(parse_msgpack(&packed).unwrap(), parse(&body).unwrap());
    let mut encodings = c.benchmark_group("encoding_1000");
    encodings.throughput(Throughput::Elements(1000));
    encodings.bench_function("json", |b| b.iter(|| parse(black_box(&body))));
    encodings.bench_function("msgpack", |b| b.iter(|| parse_msgpack(black_box(&packed))));
    encodings.finish();

    // The queue path's in-process part for one SQS invocation of 10 records of 100
    // events: the event JSON as AWS delivers it, each body parsed and normalised, and
    // the store writes for all of them (one mirror for the batch).
    let records: Vec<serde_json::Value> = (0..10)
        .map(|r| {
            let messages: Vec<_> = (0..100)
                .map(|i| {
                    let mut m = message(r * 100 + i);
                    m["id"] = json!(format!("conn{r}:{i}:0"));
                    m
                })
                .collect();
            let envelope = json!({
                "source": "channel.message", "appId": "aBCdEf", "channel": format!("conversation:conv-{r}"),
                "site": "eu-central-1-A", "ruleId": "1-a2Bc", "messages": messages
            });
            json!({
                "messageId": format!("m-{r}"), "receiptHandle": "h", "body": envelope.to_string(),
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "md5OfBody": "0", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ably-events", "awsRegion": "us-east-1"
            })
        })
        .collect();
    let sqs_event = json!({ "Records": records }).to_string();
    let mut queue = c.benchmark_group("sqs_in_process");
    queue.throughput(Throughput::Elements(1000));
    queue.bench_function("10x100", |b| {
        b.iter(|| {
            let event: SqsEvent = serde_json::from_str(black_box(&sqs_event)).unwrap();
            let mut events = Vec::with_capacity(1000);
            for record in &event.records {
                let mut batch = parse(record.body.as_deref().unwrap().as_bytes()).unwrap();
                events.append(&mut batch.events);
            }
            let redis_args = cache.planned_calls(&events, 0, 1_763_000_000_000);
            let dynamo_writes = archive.write_requests(&events, 1_763_000_000);
            black_box((redis_args, dynamo_writes))
        })
    });
    queue.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
