//! What is refused (bad signatures, unreadable or oversized bodies) writes no event, and
//! what Ably signed is kept.

use chat_core::ably::webhook::signature::sign;

use crate::helpers::*;
use crate::helpers::{body_json, flat_batch, s, signed_request, EventsApp, KEY_NAME, SECRET};

#[tokio::test]
async fn bad_signatures_are_401_and_write_nothing() {
    let h = EventsApp::new().await;
    let body = flat_batch("c-sig", 3, 1_700_000_000_000);
    let good = sign(SECRET, &body);
    let hex_good = chat_core::ably::webhook::signature::sign_hex(SECRET, &body);
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("x-ably-key", KEY_NAME.into())],
        vec![
            ("x-ably-key", KEY_NAME.into()),
            ("x-ably-signature", String::new()),
        ],
        vec![
            ("x-ably-key", KEY_NAME.into()),
            ("x-ably-signature", "%%%notbase64%%%".into()),
        ],
        vec![
            ("x-ably-key", KEY_NAME.into()),
            ("x-ably-signature", good[..30].to_owned()),
        ],
        vec![
            ("x-ably-key", KEY_NAME.into()),
            ("x-ably-signature", sign("wrong-secret", &body)),
        ],
        vec![
            ("x-ably-key", KEY_NAME.into()),
            ("x-ably-signature", hex_good.to_uppercase()),
        ],
        vec![
            ("x-ably-key", KEY_NAME.into()),
            ("x-ably-signature", sign(SECRET, &body[1..])),
        ],
    ];
    for headers in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = h.send(signed_request(&body, &headers)).await;
        assert_eq!(res.status(), 401, "{headers:?}");
        let b = body_json(&res);
        assert_eq!(b["error"], "Invalid signature");
        assert_eq!(b["code"], "invalid_signature");
        assert!(b["requestId"].is_string());
    }
    h.assert_nothing_written().await;
    // The hex form of the right digest is accepted.
    let res = h
        .send(signed_request(
            &body,
            &[("x-ably-key", KEY_NAME), ("x-ably-signature", &hex_good)],
        ))
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn rotated_keys_and_the_legacy_secret_are_accepted() {
    let h = EventsApp::build(
        &[
            ("ABLY_WEBHOOK_KEYS", "app.new:new-secret,app.old:old-secret"),
            ("ABLY_WEBHOOK_SIGNING_KEY", "legacy-secret"),
        ],
        None,
        None,
    )
    .await;
    let body = flat_batch("c-rot", 1, 1_700_000_000_000);
    // Ably names the key it signed with; the legacy secret's key is not configured by name.
    for (key, secret) in [
        ("app.new", "new-secret"),
        ("app.old", "old-secret"),
        ("app.legacy", "legacy-secret"),
    ] {
        let sig = sign(secret, &body);
        let res = h
            .send(signed_request(
                &body,
                &[("x-ably-key", key), ("x-ably-signature", &sig)],
            ))
            .await;
        assert_eq!(res.status(), 200, "{key}");
    }
    let sig = sign("old-secret", &body);
    let res = h
        .send(signed_request(
            &body,
            &[("x-ably-key", "app.new"), ("x-ably-signature", &sig)],
        ))
        .await;
    assert_eq!(
        res.status(),
        401,
        "a key named but signed with another must fail"
    );
    // With several keys, a request that names none is refused before any HMAC.
    for secret in ["new-secret", "legacy-secret"] {
        let res = h
            .send(signed_request(
                &body,
                &[("x-ably-signature", &sign(secret, &body))],
            ))
            .await;
        assert_eq!(res.status(), 401, "no X-Ably-Key, signed with {secret}");
    }
    assert_eq!(h.chat_items().await.len(), 1);
}

#[tokio::test]
async fn unparseable_signed_bodies_are_400_and_kept_as_dead_letters() {
    let h = EventsApp::new().await;
    for body in [&b"this is not json"[..], br#"{"unexpected":"shape"}"#, b""] {
        let res = h.post(body).await;
        assert_eq!(res.status(), 400, "{:?}", String::from_utf8_lossy(body));
        assert_eq!(body_json(&res)["code"], "invalid_payload");
    }
    let items = h.items().await;
    assert_eq!(items.len(), 3);
    for item in &items {
        assert_eq!(s(item, "conversation_id"), "_dead_letter");
        let raw = s(item, "raw_body");
        let sha = hex_sha256(raw.as_bytes());
        assert_eq!(s(item, "sha256"), sha);
        assert_eq!(s(item, "event_key"), sha);
    }
    assert_eq!(h.redis_keys().await, Vec::<String>::new());
    // Redelivering the same bad body overwrites its dead letter instead of adding one.
    h.post(b"this is not json").await;
    assert_eq!(h.items().await.len(), 3);
}

#[tokio::test]
async fn oversized_bodies_and_batches_are_413_and_only_the_signed_batch_is_kept() {
    let h = EventsApp::new().await;
    let big = format!(r#"{{"items":[],"pad":"{}"}}"#, "x".repeat(6 * 1024 * 1024));
    let res = h.post(big.as_bytes()).await;
    assert_eq!(res.status(), 413);
    h.assert_nothing_written().await;
    // A signed batch past Ably's 1000 items is refused, and kept whole as a dead letter.
    let batch = flat_batch("c-big", 1001, 1_700_000_000_000);
    let res = h.post(&batch).await;
    assert_eq!(res.status(), 413);
    assert_eq!(body_json(&res)["code"], "batch_too_large");
    assert_eq!(h.chat_items().await.len(), 0);
    assert_eq!(h.redis_keys().await, Vec::<String>::new());
    let kept = h.items().await;
    assert_eq!(kept.len(), 1);
    assert_eq!(s(&kept[0], "conversation_id"), "_dead_letter");
    assert_eq!(s(&kept[0], "sha256"), hex_sha256(&batch));
    assert_eq!(s(&kept[0], "raw_body").as_bytes(), &batch[..]);
    assert!(
        s(&kept[0], "reason").contains("1001 items"),
        "{:?}",
        kept[0]
    );
}

#[tokio::test]
async fn a_dead_letter_larger_than_an_item_is_kept_whole_in_parts() {
    let h = EventsApp::new().await;
    // 1 MB that does not parse, with bytes that are not UTF-8 near a part boundary.
    let mut body = b"{\"items\": [".to_vec();
    body.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    body[360_000] = 0xff;
    let res = h.post_bytes(&body).await;
    assert_eq!(res.status(), 400);
    assert_eq!(body_json(&res)["code"], "invalid_payload");
    let mut parts = h.items().await;
    parts.sort_by_key(|item| s(item, "event_key"));
    let sha = hex_sha256(&body);
    assert_eq!(parts.len(), 3);
    let mut whole = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        assert_eq!(s(part, "conversation_id"), "_dead_letter");
        assert_eq!(s(part, "event_key"), format!("{sha}#{i:04}"));
        assert_eq!(s(part, "sha256"), sha);
        assert_eq!(part["part"].as_n().unwrap(), &i.to_string());
        assert_eq!(part["parts"].as_n().unwrap(), "3");
        assert_eq!(part["bytes"].as_n().unwrap(), &body.len().to_string());
        whole.extend_from_slice(part["raw_part"].as_b().unwrap().as_ref());
    }
    assert_eq!(whole, body);
}
