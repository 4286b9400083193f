//! Identity through the real token handler: every JWT pitfall is a 401, sessions and
//! bearer tokens never stand in for each other, malformed ids are a 400.

use serde_json::{json, Value};

use crate::helpers::{
    bearer, body_json, hand_jwt, hs256, post_token, post_token_as, session_token, stack_var,
    token_state, unix_now,
};

fn jwt_secret() -> String {
    stack_var("JWT_SECRET")
}

fn resume_secret() -> String {
    stack_var("RESUME_TOKEN_SECRET")
}

fn customer_claims() -> Value {
    let now = unix_now();
    json!({"userId": "u-auth", "role": "customer", "iat": now, "exp": now + 600})
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

/// Asserts a 401 with the JSON error body, for the token carried as a bearer.
async fn assert_bearer_refused(
    state: &chat_core::handlers::token::TokenState,
    token: &str,
    why: &str,
) {
    let response = post_token_as(state, token, "{}").await;
    assert_eq!(response.status(), 401, "{why}: {:?}", body_json(&response));
    let body = body_json(&response);
    assert_eq!(body["code"], json!("invalid_token"), "{why}");
    assert!(body["requestId"].is_string());
}

async fn with_cookie(
    state: &chat_core::handlers::token::TokenState,
    cookie: &str,
) -> lambda_http::Response<lambda_http::Body> {
    post_token(state, &[("cookie", cookie)], None).await
}

#[tokio::test]
async fn a_valid_bearer_token_is_accepted() {
    let state = token_state(&[]);
    let response = post_token_as(&state, &hs256(&customer_claims(), &jwt_secret()), "{}").await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    assert_eq!(body_json(&response)["clientId"], json!("customer:u-auth"));

    // `sub` stands in for `userId`.
    let claims = with(customer_claims(), json!({"userId": null, "sub": "u-sub"}));
    let response = post_token_as(&state, &hs256(&claims, &jwt_secret()), "{}").await;
    assert_eq!(body_json(&response)["clientId"], json!("customer:u-sub"));
}

#[tokio::test]
async fn forged_algorithms_and_signatures_are_401() {
    let state = token_state(&[]);
    let claims = customer_claims();
    let secret = jwt_secret();
    let valid = hs256(&claims, &secret);
    let (header_b64, rest) = valid.split_once('.').unwrap();
    let payload_b64 = rest.split_once('.').unwrap().0;

    let none_header = crate::helpers::b64url(br#"{"alg":"none","typ":"JWT"}"#);
    assert_bearer_refused(&state, &format!("{none_header}.{payload_b64}."), "alg none").await;
    assert_bearer_refused(
        &state,
        &format!(
            "{none_header}.{payload_b64}.{}",
            rest.split_once('.').unwrap().1
        ),
        "alg none with a signature",
    )
    .await;

    // HS512 with the right secret: the algorithm is pinned to HS256.
    let hs512 = {
        use hmac::Mac as _;
        let input = format!(
            "{}.{payload_b64}",
            crate::helpers::b64url(br#"{"alg":"HS512","typ":"JWT"}"#)
        );
        let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            crate::helpers::b64url(&mac.finalize().into_bytes())
        )
    };
    assert_bearer_refused(&state, &hs512, "HS512").await;
    assert_bearer_refused(
        &state,
        &hand_jwt(&json!({"alg": "RS256", "typ": "JWT"}), &claims, &secret),
        "RS256 header",
    )
    .await;
    assert_bearer_refused(
        &state,
        &hs256(&claims, "another-secret-0123456789abcdef-xyz"),
        "wrong secret",
    )
    .await;
    assert_bearer_refused(&state, &format!("{header_b64}.{payload_b64}"), "two parts").await;
    assert_bearer_refused(&state, &format!("{valid}.extra"), "four parts").await;
    assert_bearer_refused(&state, "not-a-jwt", "garbage").await;
    // A valid signature over a tampered payload.
    let tampered = crate::helpers::b64url(
        with(claims.clone(), json!({"role": "admin"}))
            .to_string()
            .as_bytes(),
    );
    assert_bearer_refused(
        &state,
        &valid.replacen(payload_b64, &tampered, 1),
        "tampered payload",
    )
    .await;
}

#[tokio::test]
async fn time_claims_are_enforced_with_60_seconds_of_leeway() {
    let state = token_state(&[]);
    let secret = jwt_secret();
    let now = unix_now();
    let cases = [
        (json!({"exp": null}), false, "missing exp"),
        (
            json!({"exp": now - 120}),
            false,
            "expired beyond the leeway",
        ),
        (json!({"exp": now - 30}), true, "expired within the leeway"),
        (json!({"exp": (now + 600).to_string()}), false, "string exp"),
        (json!({"exp": "never"}), false, "non-numeric string exp"),
        (json!({"exp": null, "nbf": now}), false, "nbf without exp"),
        (json!({"nbf": now + 300}), false, "nbf in the future"),
        (json!({"nbf": now + 30}), true, "nbf within the leeway"),
        (json!({"nbf": now.to_string()}), false, "string nbf"),
        (json!({"nbf": now - 10}), true, "nbf in the past"),
    ];
    let verifier = chat_core::identity::BearerVerifier::new(&state.config.identity.jwt);
    for (changes, accepted, why) in cases {
        let token = hs256(&with(customer_claims(), changes), &secret);
        if accepted {
            assert!(verifier.verify(&token).is_ok(), "{why}");
            let response = post_token_as(&state, &token, "{}").await;
            if why == "expired within the leeway" {
                // Authenticated, but an Ably token may not outlive it: nothing left to give.
                assert_eq!(response.status(), 401, "{why}: {:?}", body_json(&response));
                assert_eq!(body_json(&response)["code"], "invalid_token");
            } else {
                assert_eq!(response.status(), 200, "{why}: {:?}", body_json(&response));
            }
        } else {
            assert_bearer_refused(&state, &token, why).await;
        }
    }
}

#[tokio::test]
async fn issuer_and_audience_are_enforced_when_configured() {
    let secret = jwt_secret();
    let unconfigured = token_state(&[("JWT_ISSUER", ""), ("JWT_AUDIENCE", "")]);
    // Without a configured audience, a token that names any audience is refused.
    assert_bearer_refused(
        &unconfigured,
        &hs256(
            &with(customer_claims(), json!({"aud": "chat-app"})),
            &secret,
        ),
        "unexpected aud",
    )
    .await;
    let response = post_token_as(
        &unconfigured,
        &hs256(&with(customer_claims(), json!({"iss": "anyone"})), &secret),
        "{}",
    )
    .await;
    assert_eq!(response.status(), 200, "iss is free when not configured");

    let state = token_state(&[
        ("JWT_ISSUER", "https://id.example"),
        ("JWT_AUDIENCE", "chat-app"),
    ]);
    let good = json!({"iss": "https://id.example", "aud": "chat-app"});
    let response = post_token_as(
        &state,
        &hs256(&with(customer_claims(), good.clone()), &secret),
        "{}",
    )
    .await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    let response = post_token_as(
        &state,
        &hs256(
            &with(
                customer_claims(),
                json!({"iss": "https://id.example", "aud": ["other", "chat-app"]}),
            ),
            &secret,
        ),
        "{}",
    )
    .await;
    assert_eq!(response.status(), 200, "aud array containing ours");

    for (changes, why) in [
        (json!({"aud": "other-app"}), "wrong aud"),
        (json!({"aud": null}), "missing aud"),
        (json!({"aud": ["other", "more"]}), "aud array without ours"),
        (json!({"iss": "https://evil.example"}), "wrong iss"),
        (json!({"iss": null}), "missing iss"),
        (json!({"aud": "chat-session"}), "session audience"),
    ] {
        let claims = with(with(customer_claims(), good.clone()), changes);
        assert_bearer_refused(&state, &hs256(&claims, &secret), why).await;
    }
}

#[tokio::test]
async fn tokens_over_8_kib_are_refused_before_decoding() {
    let state = token_state(&[]);
    let secret = jwt_secret();
    let sized = |len: usize| {
        // Grow a padding claim until the whole token has about `len` bytes.
        let mut pad = String::new();
        loop {
            let token = hs256(&with(customer_claims(), json!({"pad": pad})), &secret);
            if token.len() >= len {
                return token;
            }
            pad.push_str(&"x".repeat(((len - token.len()) * 3 / 4).max(1)));
        }
    };
    let just_under = sized(8 * 1024 - 200);
    assert!(just_under.len() <= 8 * 1024);
    let response = post_token_as(&state, &just_under, "{}").await;
    assert_eq!(response.status(), 200, "{} bytes", just_under.len());

    let over = sized(8 * 1024 + 1);
    assert!(over.len() > 8 * 1024);
    assert_bearer_refused(&state, &over, "over 8 KiB").await;
    let cookie = format!("__Host-chat_session={}", "a".repeat(9000));
    assert_eq!(with_cookie(&state, &cookie).await.status(), 401);
}

#[tokio::test]
async fn roles_are_required_and_closed() {
    let state = token_state(&[]);
    let secret = jwt_secret();
    for (changes, why) in [
        (json!({"role": null}), "missing role"),
        (json!({"role": "superuser"}), "unknown role"),
        (json!({"role": "Admin"}), "role is case-sensitive"),
        (json!({"role": 1}), "numeric role"),
        (json!({"userId": null}), "no user id"),
        (json!({"userId": 42}), "numeric user id"),
    ] {
        assert_bearer_refused(
            &state,
            &hs256(&with(customer_claims(), changes), &secret),
            why,
        )
        .await;
    }
}

#[tokio::test]
async fn malformed_identifiers_in_a_valid_token_are_400() {
    let state = token_state(&[]);
    let secret = jwt_secret();
    let long = "x".repeat(129);
    for changes in [
        json!({"userId": "*"}),
        json!({"userId": "a:b"}),
        json!({"userId": "[*]*"}),
        json!({"userId": ""}),
        json!({"userId": long}),
        json!({"conversations": ["ok", "x*"]}),
        json!({"conversations": ["a:b"]}),
    ] {
        let response = post_token_as(
            &state,
            &hs256(&with(customer_claims(), changes.clone()), &secret),
            "{}",
        )
        .await;
        assert_eq!(response.status(), 400, "{changes}");
        assert_eq!(body_json(&response)["code"], json!("invalid_identifier"));
    }
}

#[tokio::test]
async fn no_credentials_or_another_scheme_is_401_unauthorized() {
    let state = token_state(&[]);
    for headers in [
        vec![],
        vec![("authorization", "Basic dXNlcjpwYXNz")],
        vec![("authorization", "Bearer")],
        vec![("cookie", "chat_session=abc; other=1")],
    ] {
        let response = post_token(&state, &headers, None).await;
        assert_eq!(response.status(), 401, "{headers:?}");
        assert_eq!(
            body_json(&response)["code"],
            json!("unauthorized"),
            "{headers:?}"
        );
    }
}

#[tokio::test]
async fn a_session_cookie_authenticates_its_conversation() {
    let state = token_state(&[]);
    let token = session_token("conv-s1");
    for cookie in [
        format!("__Host-chat_session={token}"),
        format!("theme=dark; __Host-chat_session={token}; lang=en"),
        format!("theme=dark;__Host-chat_session=\"{token}\""),
    ] {
        let response = with_cookie(&state, &cookie).await;
        assert_eq!(
            response.status(),
            200,
            "{cookie}: {:?}",
            body_json(&response)
        );
        let body = body_json(&response);
        assert_eq!(body["clientId"], json!("customer-conv-s1"));
    }
}

#[tokio::test]
async fn an_invalid_bearer_does_not_fall_back_to_the_cookie() {
    let state = token_state(&[]);
    let cookie = format!("__Host-chat_session={}", session_token("conv-s2"));
    let response = post_token(
        &state,
        &[("authorization", "Bearer not.a.jwt"), ("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn sessions_and_bearer_tokens_never_stand_in_for_each_other() {
    let state = token_state(&[]);
    let now = unix_now();
    let session = session_token("conv-x");
    assert_bearer_refused(&state, &session, "a real session as bearer").await;

    // Session-shaped tokens signed with the bearer secret.
    let session_claims = json!({"conversationId": "conv-x", "email": "a@example.com", "aud": "chat-session", "iat": now, "exp": now + 600});
    assert_bearer_refused(
        &state,
        &hs256(&session_claims, &jwt_secret()),
        "session claims, JWT secret",
    )
    .await;
    let no_aud = with(session_claims.clone(), json!({"aud": null}));
    assert_bearer_refused(
        &state,
        &hs256(&no_aud, &jwt_secret()),
        "conversationId and no role",
    )
    .await;
    let with_role = with(no_aud, json!({"role": "customer", "userId": "u1"}));
    assert_bearer_refused(
        &state,
        &hs256(&with_role, &jwt_secret()),
        "conversationId with a role",
    )
    .await;

    // A bearer token in the cookie, and bearer-shaped tokens signed with the resume secret.
    let bearer_token = bearer("u-b", "customer", &["conv-x"]);
    assert_eq!(
        with_cookie(&state, &format!("__Host-chat_session={bearer_token}"))
            .await
            .status(),
        401,
        "bearer as session"
    );
    let bearer_claims = with(
        customer_claims(),
        json!({"conversationId": "conv-x", "email": "a@example.com"}),
    );
    assert_eq!(
        with_cookie(
            &state,
            &format!(
                "__Host-chat_session={}",
                hs256(&bearer_claims, &resume_secret())
            )
        )
        .await
        .status(),
        401,
        "no chat-session audience"
    );
    let session_with_role = with(session_claims.clone(), json!({"role": "admin"}));
    assert_eq!(
        with_cookie(
            &state,
            &format!(
                "__Host-chat_session={}",
                hs256(&session_with_role, &resume_secret())
            )
        )
        .await
        .status(),
        401,
        "a session never carries a role"
    );
    // The right shape and audience, but the bearer secret.
    assert_eq!(
        with_cookie(
            &state,
            &format!(
                "__Host-chat_session={}",
                hs256(&session_claims, &jwt_secret())
            )
        )
        .await
        .status(),
        401,
        "session signed with the JWT secret"
    );
}

#[tokio::test]
async fn a_resume_link_token_is_neither_a_session_nor_a_bearer() {
    let state = token_state(&[]);
    let now = unix_now();
    let resume = hs256(
        &json!({"jti": "j-1", "conversationId": "conv-r", "email": "a@example.com", "aud": "chat-resume", "iat": now, "exp": now + 600}),
        &resume_secret(),
    );
    assert_eq!(
        with_cookie(&state, &format!("__Host-chat_session={resume}"))
            .await
            .status(),
        401
    );
    assert_bearer_refused(&state, &resume, "resume token as bearer").await;
    // Even with a role added, the audience and secret keep it out.
    let resume_with_role = hs256(
        &json!({"jti": "j-2", "userId": "u1", "role": "customer", "aud": "chat-resume", "iat": now, "exp": now + 600}),
        &resume_secret(),
    );
    assert_bearer_refused(&state, &resume_with_role, "resume token with a role").await;
}

#[tokio::test]
async fn a_session_audience_cannot_be_configured_for_bearer_tokens() {
    for audience in ["chat-session", "chat-resume"] {
        let err = chat_core::handlers::token::TokenConfig::load(crate::helpers::env_with(&[(
            "JWT_AUDIENCE",
            audience,
        )]))
        .unwrap_err();
        assert!(err.to_string().contains("JWT_AUDIENCE"), "{err}");
    }
    let same = stack_var("JWT_SECRET");
    let err = chat_core::handlers::token::TokenConfig::load(crate::helpers::env_with(&[(
        "RESUME_TOKEN_SECRET",
        &same,
    )]))
    .unwrap_err();
    assert!(
        err.to_string().contains("RESUME_TOKEN_SECRET must differ"),
        "{err}"
    );
    assert!(!err.to_string().contains(&same));
}
