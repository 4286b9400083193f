//! What a token grants: signed TokenRequests and Ably JWTs for exactly the caller's
//! channels, from any body ably-js sends.

use std::collections::HashSet;

use chat_core::ably::credentials::token_request_mac;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::helpers::{
    bearer, body_json, header, post_token, post_token_as, session_token, token_state, unix_now,
};
use crate::helpers::{KEY_NAME, SECRET};

#[test]
fn mac_known_answers_from_the_reference_and_an_independent_computation() {
    let secret = SECRET;
    let capability = r#"{"[*]*":["stats"],"conversation:*":["presence","publish","subscribe"]}"#;
    let full = [
        KEY_NAME,
        "3600000",
        capability,
        "user-123",
        "1700000000000",
        "0123456789abcdef",
    ];
    assert_eq!(
        independent_mac(secret, full),
        "0StyUBtZqvd/8bO2hNyp4TJAMKkg5aiqAs8IenOWx/A="
    );
    assert_eq!(
        token_request_mac(
            secret.as_bytes(),
            KEY_NAME,
            Some(3_600_000),
            Some(capability),
            Some("user-123"),
            1_700_000_000_000,
            "0123456789abcdef"
        ),
        "0StyUBtZqvd/8bO2hNyp4TJAMKkg5aiqAs8IenOWx/A="
    );
    // ttl, capability and clientId absent: their lines stay, empty.
    let absent = [KEY_NAME, "", "", "", "1700000000000", "0123456789abcdef"];
    assert_eq!(
        independent_mac(secret, absent),
        "IN4RrGI4+41fY08a4YV4mlRMgBfRH5tGSmcs2RhF7sM="
    );
    assert_eq!(
        token_request_mac(
            secret.as_bytes(),
            KEY_NAME,
            None,
            None,
            None,
            1_700_000_000_000,
            "0123456789abcdef"
        ),
        "IN4RrGI4+41fY08a4YV4mlRMgBfRH5tGSmcs2RhF7sM="
    );
}

#[tokio::test]
async fn a_customer_gets_a_signed_token_request_for_exactly_its_channels() {
    let state = token_state(&[]);
    let response = post_token_as(
        &state,
        &bearer("u-1", "customer", &["conv-b", "conv-a"]),
        "{}",
    )
    .await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    let body = body_json(&response);
    assert_signed_token_request(&body);
    assert_eq!(body["ttl"], json!(3_600_000));
    assert_eq!(body["clientId"], json!("customer:u-1"));
    assert_eq!(
        capability(&body),
        format!(
            r#"{{"contacts:u-1":{OPS},"conversation:conv-a":{OWN_OPS},"conversation:conv-b":{OWN_OPS},"notifications:u-1":{OPS},"sms:u-1:*":{OPS}}}"#
        )
    );
}

#[tokio::test]
async fn capabilities_per_role_and_for_a_session() {
    let state = token_state(&[]);
    let resources = |body: &Value, conversation_ops: &str| -> Vec<String> {
        let cap: Value = serde_json::from_str(&capability(body)).unwrap();
        let map = cap.as_object().unwrap();
        for (resource, ops) in map {
            let expected = match resource.starts_with("conversation:") {
                true => conversation_ops,
                false => OPS,
            };
            assert_eq!(ops.to_string(), expected, "{resource}");
        }
        map.keys().cloned().collect()
    };
    let cases = [
        (
            bearer("c-0", "customer", &["conv-0"]),
            OWN_OPS,
            vec![
                "contacts:c-0",
                "conversation:conv-0",
                "notifications:c-0",
                "sms:c-0:*",
            ],
        ),
        (
            bearer("b-1", "broker", &["conv-ignored"]),
            OWN_OPS,
            vec![
                "contacts:b-1",
                "conversation:*",
                "notifications:b-1",
                "sms:b-1:*",
            ],
        ),
        (
            bearer("a-1", "admin", &[]),
            ANY_OPS,
            vec!["contacts:*", "conversation:*", "notifications:*", "sms:*"],
        ),
        (
            bearer("s-1", "service", &[]),
            ANY_OPS,
            vec!["contacts:*", "conversation:*", "notifications:*", "sms:*"],
        ),
    ];
    for (token, conversation_ops, expected) in cases {
        let body = body_json(&post_token_as(&state, &token, "{}").await);
        assert_signed_token_request(&body);
        assert_eq!(resources(&body, conversation_ops), expected);
        let cap = capability(&body);
        assert!(!cap.contains(' ') && !cap.contains('\n'), "{cap}");
    }

    let cookie = format!("__Host-chat_session={}", session_token("conv-77"));
    let response = post_token(&state, &[("cookie", &cookie)], None).await;
    let body = body_json(&response);
    assert_signed_token_request(&body);
    assert_eq!(body["clientId"], json!("customer-conv-77"));
    assert_eq!(
        capability(&body),
        format!(r#"{{"conversation:conv-77":{OWN_OPS}}}"#)
    );
}

#[tokio::test]
async fn one_conversation_when_asked_and_only_if_allowed() {
    let state = token_state(&[]);
    let customer = bearer("u-2", "customer", &["conv-1", "conv-2"]);
    let body = body_json(&post_token_as(&state, &customer, r#"{"conversationId":"conv-2"}"#).await);
    assert_signed_token_request(&body);
    assert_eq!(
        capability(&body),
        format!(r#"{{"conversation:conv-2":{OWN_OPS}}}"#)
    );

    let response = post_token_as(&state, &customer, r#"{"conversationId":"conv-3"}"#).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        body_json(&response)["code"],
        json!("conversation_forbidden")
    );

    let broker = bearer("b-2", "broker", &[]);
    let body = body_json(&post_token_as(&state, &broker, r#"{"conversationId":"any-conv"}"#).await);
    assert_eq!(
        capability(&body),
        format!(r#"{{"conversation:any-conv":{OWN_OPS}}}"#)
    );
    let admin = bearer("a-2", "admin", &[]);
    let body = body_json(&post_token_as(&state, &admin, r#"{"conversationId":"any-conv"}"#).await);
    assert_eq!(
        capability(&body),
        format!(r#"{{"conversation:any-conv":{ANY_OPS}}}"#)
    );

    let cookie = format!("__Host-chat_session={}", session_token("conv-s"));
    let other = post_token(
        &state,
        &[("cookie", &cookie), ("content-type", "application/json")],
        Some(r#"{"conversationId":"conv-t"}"#),
    )
    .await;
    assert_eq!(other.status(), 403);
}

#[tokio::test]
async fn injected_ids_and_bad_bodies_are_400() {
    let state = token_state(&[]);
    let customer = bearer("u-3", "customer", &["conv-1"]);
    let long = "x".repeat(129);
    for id in ["*", "conv-1:*", "conv:1", "[*]*", "conv 1", "", &long] {
        let body = json!({ "conversationId": id }).to_string();
        let response = post_token_as(&state, &customer, &body).await;
        assert_eq!(response.status(), 400, "{id}");
        assert_eq!(
            body_json(&response)["code"],
            json!("invalid_identifier"),
            "{id}"
        );
    }
    for (body, code) in [
        (r#"{"conversationId": 7}"#, "invalid_body"),
        (r#"["conv-1"]"#, "invalid_body"),
        ("{not json", "invalid_json"),
        (r#"{"format": "xml"}"#, "invalid_format"),
        (r#"{"ttlSeconds": 0}"#, "invalid_ttl"),
        (r#"{"ttlSeconds": 86401}"#, "invalid_ttl"),
        (r#"{"ttlSeconds": -5}"#, "invalid_ttl"),
        (r#"{"ttlSeconds": 1.5}"#, "invalid_ttl"),
        (r#"{"ttlSeconds": "60"}"#, "invalid_ttl"),
    ] {
        let response = post_token_as(&state, &customer, body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(body_json(&response)["code"], json!(code), "{body}");
    }
}

#[tokio::test]
async fn ttl_is_chosen_within_a_day_and_the_body_is_optional() {
    let state = token_state(&[]);
    let customer = bearer("u-4", "customer", &[]);
    for (body, ttl) in [
        (r#"{"ttlSeconds": 60}"#, 60_000),
        (r#"{"ttlSeconds": 86400}"#, 86_400_000),
        (
            r#"{"ttlSeconds": null, "format": "tokenRequest"}"#,
            3_600_000,
        ),
        ("", 3_600_000),
        ("  ", 3_600_000),
        // Integers in JSON Schema's sense (and openapi.yaml's): a number with no fraction.
        (r#"{"ttlSeconds": 60.0}"#, 60_000),
        (r#"{"ttlSeconds": 6e1}"#, 60_000),
    ] {
        let response = post_token_as(&state, &customer, body).await;
        assert_eq!(response.status(), 200, "{body:?}");
        let json = body_json(&response);
        assert_signed_token_request(&json);
        assert_eq!(json["ttl"], json!(ttl), "{body:?}");
    }
}

#[tokio::test]
async fn form_encoded_bodies_as_ably_js_sends_them() {
    let state = token_state(&[]);
    let auth = format!("Bearer {}", bearer("u-5", "customer", &["conv-f"]));
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let response = post_token(
        &state,
        &headers,
        Some("conversationId=conv-f&ttlSeconds=120&clientId=someone-else&capability=%7B%22*%22%3A%5B%22*%22%5D%7D"),
    )
    .await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    let body = body_json(&response);
    assert_signed_token_request(&body);
    // Token params a client forwards never widen what it gets.
    assert_eq!(body["clientId"], json!("customer:u-5"));
    assert_eq!(
        capability(&body),
        format!(r#"{{"conversation:conv-f":{OWN_OPS}}}"#)
    );
    assert_eq!(body["ttl"], json!(120_000));

    let response = post_token(&state, &headers, Some("conversationId=conv%3A*")).await;
    assert_eq!(response.status(), 400);
    let response = post_token(&state, &headers, Some("ttlSeconds=abc")).await;
    assert_eq!(body_json(&response)["code"], json!("invalid_ttl"));
}

#[tokio::test]
async fn two_calls_never_share_a_nonce() {
    let state = token_state(&[]);
    let customer = bearer("u-6", "customer", &[]);
    let mut nonces = HashSet::new();
    for _ in 0..20 {
        let body = body_json(&post_token_as(&state, &customer, "{}").await);
        assert!(nonces.insert(body["nonce"].as_str().unwrap().to_owned()));
    }
}

#[tokio::test]
async fn format_jwt_is_an_ably_jwt_signed_with_the_key() {
    let state = token_state(&[]);
    let response = post_token_as(
        &state,
        &bearer("u-7", "customer", &["conv-j"]),
        r#"{"format":"jwt","ttlSeconds":600}"#,
    )
    .await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    let body = body_json(&response);
    let token = body["token"].as_str().unwrap();
    let (key_name, secret) = key_parts();

    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(header.kid.as_deref(), Some(key_name.as_str()));

    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "iat"]);
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims;
    let iat = claims["iat"].as_i64().unwrap();
    assert!((iat - unix_now()).abs() < 5);
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + 600);
    assert_eq!(claims["x-ably-clientId"], json!("customer:u-7"));
    let capability = claims["x-ably-capability"].as_str().unwrap();
    assert_eq!(
        capability,
        format!(
            r#"{{"contacts:u-7":{OPS},"conversation:conv-j":{OWN_OPS},"notifications:u-7":{OPS},"sms:u-7:*":{OPS}}}"#
        )
    );
    assert_eq!(body["expires"], json!((iat + 600) * 1000));
    assert_eq!(body["issued"], json!(iat * 1000));
    assert_eq!(body["capability"], json!(capability));
    assert_eq!(body["clientId"], json!("customer:u-7"));
}
