//! The Upstash-compatible proxy with the official Upstash JavaScript client (`tests/node`,
//! npm `@upstash/redis`) at its default settings, which include `Upstash-Encoding: base64`:
//! if the proxy answered anything the real Upstash would not, the client would read it
//! wrongly or reject it, and the script's checks would fail.

use std::process::Command;
use std::sync::atomic::Ordering;

use crate::helpers::{counting_redis_url, node_dir, run_node, stack_var, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_upstash_client_works_against_the_proxy() {
    assert!(
        node_dir().join("node_modules/@upstash/redis").is_dir(),
        "tests/node/node_modules is missing @upstash/redis: run scripts/test, or npm ci --prefix tests/node"
    );
    // A proxy on this test's runtime, so the code under test is what the client talks to.
    let (url, requests) = counting_redis_url().await;
    let mut command = Command::new("node");
    command
        .arg(node_dir().join("upstash-client.mjs"))
        .current_dir(node_dir())
        .env("UPSTASH_URL", &url)
        .env("UPSTASH_TOKEN", stack_var("UPSTASH_REDIS_REST_TOKEN"))
        .env("KEY_PREFIX", unique("upstash-js"));
    let stdout = run_node(command).await;
    assert!(stdout.contains("UPSTASH-JS OK"), "{stdout}");
    assert!(
        requests.load(Ordering::SeqCst) > 0,
        "the client never reached the proxy"
    );
}
