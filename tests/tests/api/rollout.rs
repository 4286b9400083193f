//! The per-conversation realtime rollout: one conversation is in or out in every
//! function, and the allow and deny lists win over the share.

use chat_core::platform::realtime::bucket;
use serde_json::{json, Value};

use crate::helpers::{bearer, body_json, post_token, post_token_as, session_token, token_state};

/// A conversation id whose bucket is inside (`true`) or outside a 50% rollout.
fn conversation(inside: bool) -> String {
    (0..)
        .map(|i| format!("conv-roll-{i}"))
        .find(|id| (bucket(id) < 50) == inside)
        .unwrap()
}

async fn session_token_status(
    state: &chat_core::handlers::token::TokenState,
    conv: &str,
) -> (u16, Value) {
    let cookie = format!("__Host-chat_session={}", session_token(conv));
    let response = post_token(state, &[("cookie", &cookie)], None).await;
    (response.status().as_u16(), body_json(&response))
}

#[tokio::test]
async fn a_conversation_outside_the_rollout_polls_in_every_function_and_staff_are_unaffected() {
    let (inside, outside) = (conversation(true), conversation(false));
    let rollout = [("ABLY_REALTIME_ROLLOUT_PERCENT", "50")];
    let state = token_state(&rollout);

    // Sessions: realtime inside, 503 realtime_disabled outside.
    assert_eq!(session_token_status(&state, &inside).await.0, 200);
    let (status, body) = session_token_status(&state, &outside).await;
    assert_eq!(
        (status, body["code"].clone()),
        (503, json!("realtime_disabled"))
    );

    // A customer asking for one conversation: the same answer; for all its channels, a
    // capability without the conversations outside.
    let customer = bearer("u-roll", "customer", &[&inside, &outside]);
    let ask = |conv: &str| json!({"conversationId": conv}).to_string();
    assert_eq!(
        post_token_as(&state, &customer, &ask(&inside))
            .await
            .status(),
        200
    );
    let refused = post_token_as(&state, &customer, &ask(&outside)).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(body_json(&refused)["code"], json!("realtime_disabled"));
    let all = body_json(&post_token_as(&state, &customer, "{}").await);
    let capability = all["capability"].as_str().unwrap();
    assert!(
        capability.contains(&format!("conversation:{inside}")),
        "{capability}"
    );
    assert!(
        !capability.contains(&format!("conversation:{outside}")),
        "{capability}"
    );
    assert!(capability.contains("contacts:u-roll"), "{capability}");

    // Staff are never held back.
    let broker = bearer("b-roll", "broker", &[]);
    assert_eq!(
        post_token_as(&state, &broker, &ask(&outside))
            .await
            .status(),
        200
    );

    // The resume function tells the same conversations to poll.
    let r = crate::helpers::ResumeApp::build(&rollout).await;
    assert_eq!(r.realtime_after_redeem(&inside).await, json!(true));
    assert_eq!(r.realtime_after_redeem(&outside).await, json!(false));
    assert_eq!(r.realtime_of_poll(&inside).await, json!(true));
    assert_eq!(r.realtime_of_poll(&outside).await, json!(false));
}

#[tokio::test]
async fn zero_and_a_hundred_percent_are_exact_and_allow_and_deny_win() {
    let ids: Vec<String> = (0..40).map(|i| format!("conv-share-{i}")).collect();
    for (percent, expected) in [("0", 503), ("100", 200)] {
        let state = token_state(&[("ABLY_REALTIME_ROLLOUT_PERCENT", percent)]);
        for id in &ids {
            assert_eq!(
                session_token_status(&state, id).await.0,
                expected,
                "{percent}% {id}"
            );
        }
    }
    let (inside, outside) = (conversation(true), conversation(false));
    let state = token_state(&[
        ("ABLY_REALTIME_ROLLOUT_PERCENT", "50"),
        ("ABLY_REALTIME_ALLOW", &format!("{outside},conv-both")),
        ("ABLY_REALTIME_DENY", &format!("{inside},conv-both")),
    ]);
    assert_eq!(
        session_token_status(&state, &outside).await.0,
        200,
        "allowed"
    );
    assert_eq!(session_token_status(&state, &inside).await.0, 503, "denied");
    assert_eq!(
        session_token_status(&state, "conv-both").await.0,
        503,
        "deny wins"
    );
    // ENABLE_ABLY_REALTIME=false is still the one switch, whatever the lists say.
    let off = token_state(&[
        ("ENABLE_ABLY_REALTIME", "false"),
        ("ABLY_REALTIME_ALLOW", &outside),
    ]);
    assert_eq!(session_token_status(&off, &outside).await.0, 503);
}
