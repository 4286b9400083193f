//! The production Upstash REST client against the proxy and the real Redis.

use std::time::{Duration, Instant};

use chat_core::platform::env::Secret;
use chat_core::storage::redis::{cmd, RedisClient, RedisError};
use chat_core::storage::RedisConfig;
use serde_json::json;

use crate::helpers::{closed_port, redis, redis_config, unique};

#[tokio::test]
async fn command_pipeline_transaction_and_eval_round_trip() {
    let client = redis();
    let key = unique("client");
    client.ping().await.unwrap();
    assert_eq!(
        client
            .command(&["SET", &key, "hello", "EX", "60"])
            .await
            .unwrap(),
        json!("OK")
    );
    assert_eq!(
        client.command(&["GET", &key]).await.unwrap(),
        json!("hello")
    );

    let list = format!("{key}:list");
    let replies = client
        .pipeline(&[
            cmd(["LPUSH", &list, "a"]),
            cmd(["LPUSH", &list, "b"]),
            cmd(["LRANGE", &list, "0", "-1"]),
            cmd(["INCR", &key]),
        ])
        .await
        .unwrap();
    assert_eq!(replies[0], Ok(json!(1)));
    assert_eq!(replies[1], Ok(json!(2)));
    assert_eq!(replies[2], Ok(json!(["b", "a"])));
    assert_eq!(
        replies[3],
        Err("ERR value is not an integer or out of range".to_owned())
    );

    let counter = format!("{key}:tx");
    let replies = client
        .transaction(&[
            cmd(["INCR", &counter]),
            cmd(["INCR", &counter]),
            cmd(["EXPIRE", &counter, "30"]),
        ])
        .await
        .unwrap();
    assert_eq!(replies, vec![Ok(json!(1)), Ok(json!(2)), Ok(json!(1))]);

    let script = "redis.call('SET', KEYS[1], ARGV[1]); return {redis.call('GET', KEYS[1]), tonumber(ARGV[2]) + 1}";
    let evaluated = client
        .eval(script, &[format!("{key}:eval")], &["stored", "41"])
        .await
        .unwrap();
    assert_eq!(evaluated, json!(["stored", 42]));
    assert_eq!(
        client
            .command(&["GET", &format!("{key}:eval")])
            .await
            .unwrap(),
        json!("stored")
    );
}

#[tokio::test]
async fn redis_errors_are_typed() {
    let client = redis();
    let key = unique("client:err");
    client.command(&["SET", &key, "text"]).await.unwrap();
    match client.command(&["LPUSH", &key, "x"]).await {
        Err(RedisError::Command(msg)) => assert!(msg.starts_with("WRONGTYPE"), "{msg}"),
        other => panic!("expected a command error, got {other:?}"),
    }
    match client
        .eval("return redis.call('NOPE')", &[] as &[&str], &[] as &[&str])
        .await
    {
        Err(RedisError::Command(msg)) => {
            assert!(msg.contains("NOPE") || msg.contains("Unknown"), "{msg}")
        }
        other => panic!("expected a script error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized() {
    let config = RedisConfig {
        token: Secret::new("not-the-token"),
        ..redis_config()
    };
    assert!(matches!(
        RedisClient::new(&config).ping().await,
        Err(RedisError::Unauthorized)
    ));
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable() {
    let config = RedisConfig {
        url: format!("http://127.0.0.1:{}", closed_port()),
        ..redis_config()
    };
    match RedisClient::new(&config).ping().await {
        Err(RedisError::Unavailable(reason)) => assert_eq!(reason, "connection failed"),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_hanging_endpoint_times_out_within_the_client_timeout() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let http =
        chat_core::platform::http_client::build(Duration::from_secs(2), Duration::from_millis(300));
    let client = RedisClient::with_http(
        &RedisConfig {
            url,
            ..redis_config()
        },
        http,
    );
    let started = Instant::now();
    match client.ping().await {
        Err(RedisError::Unavailable(reason)) => assert_eq!(reason, "timed out"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    hold.abort();
}

#[tokio::test]
async fn an_empty_pipeline_makes_no_request() {
    let config = RedisConfig {
        url: format!("http://127.0.0.1:{}", closed_port()),
        ..redis_config()
    };
    assert_eq!(
        RedisClient::new(&config).pipeline(&[]).await.unwrap(),
        vec![]
    );
}
