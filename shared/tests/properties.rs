//! Properties of the webhook path that must hold for every input.

use chat_core::ably::webhook::{parse, signature, SignatureError, WebhookVerifier};
use chat_core::ably::WebhookKeys;
use chat_core::platform::env::Secret;
use proptest::prelude::*;
use serde_json::{json, Value};

fn keys(secret: &str) -> WebhookVerifier {
    WebhookVerifier::new(&WebhookKeys {
        keys: vec![("app.key".to_owned(), Secret::new(secret))],
    })
}

fn is_iso_utc_millis(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19, 23].contains(&i) || c.is_ascii_digit())
}

/// Arbitrary JSON values of bounded size.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sign_then_verify_passes_and_any_bit_flip_fails(
        body in prop::collection::vec(any::<u8>(), 0..512),
        secret in "[ -~]{1,40}",
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
        in_signature in any::<bool>(),
    ) {
        let k = keys(&secret);
        let sig = signature::sign(&secret, &body);
        prop_assert!(k.verify(Some("app.key"), Some(&sig), &body).is_ok());
        let hex = signature::sign_hex(&secret, &body);
        prop_assert!(k.verify(Some("app.key"), Some(&hex), &body).is_ok());

        if in_signature || body.is_empty() {
            // Flip a bit of the decoded digest and re-encode it, so the header stays well-formed.
            use base64::Engine;
            let mut digest = base64::engine::general_purpose::STANDARD.decode(&sig).unwrap();
            let i = flip.index(digest.len());
            digest[i] ^= 1 << bit;
            let bad = base64::engine::general_purpose::STANDARD.encode(&digest);
            prop_assert_eq!(
                k.verify(Some("app.key"), Some(&bad), &body),
                Err(SignatureError::Mismatch)
            );
        } else {
            let mut bad = body.clone();
            let i = flip.index(bad.len());
            bad[i] ^= 1 << bit;
            prop_assert_eq!(
                k.verify(Some("app.key"), Some(&sig), &bad),
                Err(SignatureError::Mismatch)
            );
        }
    }

    #[test]
    fn parsing_never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&body);
    }

    #[test]
    fn normalisation_always_yields_iso_utc_timestamps_and_stable_ids(
        timestamps in prop::collection::vec(any::<i64>(), 1..20),
        data in prop::collection::vec(json_value(), 20),
        names in prop::collection::vec(prop::option::of("[a-z:]{0,12}"), 20),
        shape in 0u8..3,
    ) {
        let entries: Vec<Value> = timestamps.iter().enumerate().map(|(i, ts)| {
            let mut m = json!({"timestamp": ts, "data": data[i]});
            if let Some(n) = &names[i] { m["name"] = json!(n); }
            m
        }).collect();
        let body = match shape {
            0 => json!({"items": [{"data": {"channelId": "conversation:p", "messages": entries}}]}),
            1 => json!({"channel": "conversation:p", "presence": entries}),
            _ => json!({"items": entries.iter().map(|e| { let mut e = e.clone(); e["channel"] = json!("c"); e }).collect::<Vec<_>>()}),
        };
        let bytes = body.to_string().into_bytes();
        let batch = parse(&bytes).unwrap();
        prop_assert_eq!(batch.events.len() + batch.skipped.len(), timestamps.len());
        for e in &batch.events {
            prop_assert!(is_iso_utc_millis(&e.occurred_at), "{}", e.occurred_at);
            prop_assert!(!e.id.is_empty());
        }
        // Deterministic: the same body always normalises to the same events.
        prop_assert_eq!(parse(&bytes).unwrap(), batch);
    }
}

mod ownership {
    use chat_core::channels::capability::Capability;
    use chat_core::channels::{may_publish, may_use, ChannelName};
    use chat_core::identity::{Caller, Role};
    use proptest::prelude::*;

    /// Ably's resource matching: an exact name, or a `prefix*` wildcard.
    fn covers(resource: &str, channel: &str) -> bool {
        match resource.strip_suffix('*') {
            Some(prefix) => channel.starts_with(prefix),
            None => resource == channel,
        }
    }

    fn id() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_-]{1,12}"
    }

    /// A customer (bearer JWT) or a chat session.
    fn caller() -> impl Strategy<Value = Caller> {
        prop_oneof![
            (id(), prop::collection::vec(id(), 0..4)).prop_map(|(user_id, conversations)| {
                Caller::User {
                    user_id,
                    role: Role::Customer,
                    conversations,
                }
            }),
            id().prop_map(|conversation_id| Caller::Session {
                conversation_id,
                email: "someone@example.com".into(),
                issued_at: 0,
            }),
        ]
    }

    /// Every channel `owner` owns, with a sample contact for the sms family.
    fn channels_of(owner: &Caller, contact: &str) -> Vec<String> {
        match owner {
            Caller::User {
                user_id,
                conversations,
                ..
            } => {
                let mut v: Vec<String> = conversations
                    .iter()
                    .map(|c| format!("conversation:{c}"))
                    .collect();
                v.push(format!("sms:{user_id}:{contact}"));
                v.push(format!("contacts:{user_id}"));
                v.push(format!("notifications:{user_id}"));
                v
            }
            Caller::Session {
                conversation_id, ..
            } => vec![format!("conversation:{conversation_id}")],
        }
    }

    fn shares_identity(a: &Caller, b: &Caller) -> bool {
        let convs = |c: &Caller| match c {
            Caller::User { conversations, .. } => conversations.clone(),
            Caller::Session {
                conversation_id, ..
            } => vec![conversation_id.clone()],
        };
        let user = |c: &Caller| match c {
            Caller::User { user_id, .. } => Some(user_id.clone()),
            Caller::Session { .. } => None,
        };
        (user(a).is_some() && user(a) == user(b)) || convs(a).iter().any(|c| convs(b).contains(c))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn no_decision_for_a_covers_a_channel_of_b(a in caller(), b in caller(), contact in id()) {
            prop_assume!(!shares_identity(&a, &b));
            let capability = Capability::for_caller(&a);
            for name in channels_of(&b, &contact) {
                let channel = ChannelName::parse(&name).expect("valid channel");
                prop_assert!(!may_use(&a, &channel), "{a:?} may use {name}");
                prop_assert!(may_publish(&a, &channel, "message:user").is_err());
                prop_assert!(Capability::for_channel(&a, &channel).is_err());
                for resource in capability.resources() {
                    prop_assert!(!covers(resource, &name), "{resource} of {a:?} covers {name}");
                }
            }
            // And A's own channels are A's.
            for name in channels_of(&a, &contact) {
                let channel = ChannelName::parse(&name).expect("valid channel");
                prop_assert!(may_use(&a, &channel), "{a:?} may not use its own {name}");
                prop_assert!(capability.resources().any(|r| covers(r, &name)), "{name} missing");
            }
        }
    }
}

mod provenance {
    use chat_core::ably::webhook::parse;
    use chat_core::channels::{trusts, Publisher, FAMILIES};
    use proptest::prelude::*;
    use serde_json::json;

    /// Channels of every family, wildcards and other shapes, and strangers.
    fn channel() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9-]{1,8}".prop_map(|id| format!("conversation:{id}")),
            ("[a-z0-9]{1,6}", "[a-z0-9]{1,6}").prop_map(|(u, c)| format!("sms:{u}:{c}")),
            "[a-z0-9]{1,6}".prop_map(|u| format!("contacts:{u}")),
            "[a-z0-9]{1,6}".prop_map(|u| format!("notifications:{u}")),
            Just("conversation:*".to_owned()),
            Just("sms:u1".to_owned()),
            "[a-z:*-]{0,16}",
        ]
    }

    /// Every event name the table knows, presence, and anything else.
    fn event_name() -> impl Strategy<Value = String> {
        let known: Vec<String> = FAMILIES
            .iter()
            .flat_map(|rule| rule.events.iter().map(|(name, _)| (*name).to_owned()))
            .collect();
        prop_oneof![
            prop::sample::select(known),
            "presence:(enter|leave|update|present|absent)".prop_map(String::from),
            "[a-z:_]{1,12}",
        ]
    }

    /// What Ably may deliver as a clientId: none (the API key), the forms this service
    /// mints, and foreign ones.
    fn client_id() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            ("(customer|broker|admin|service)", "[a-z0-9]{1,6}")
                .prop_map(|(role, id)| Some(format!("{role}:{id}"))),
            "[a-z0-9]{1,6}".prop_map(|id| Some(format!("customer-{id}"))),
            "[A-Za-z:_-]{0,12}".prop_map(Some),
        ]
    }

    /// The table's answer, read straight from its rows: is the event one the channel's
    /// family accepts, from this publisher?
    fn table_allows(channel: &str, event: &str, client_id: Option<&str>) -> bool {
        if event.starts_with("presence:") {
            return true;
        }
        let staff = match client_id {
            None => true,
            Some(id) => ["broker:", "admin:", "service:"]
                .iter()
                .any(|prefix| id.starts_with(prefix)),
        };
        let mut parts = channel.split(':');
        let prefix = parts.next().unwrap_or_default();
        let ids: Vec<&str> = parts.collect();
        let well_formed = !ids.is_empty()
            && ids.iter().all(|id| {
                !id.is_empty()
                    && id.len() <= 128
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        let arity = if prefix == "sms" { 2 } else { 1 };
        FAMILIES
            .iter()
            .find(|rule| rule.prefix == prefix && well_formed && ids.len() == arity)
            .and_then(|rule| rule.events.iter().find(|(name, _)| *name == event))
            .is_some_and(|(_, publisher)| *publisher == Publisher::Owner || staff)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn an_event_is_trusted_exactly_when_the_table_lets_its_publishers_role_send_it(
            channel in channel(),
            event in event_name(),
            client_id in client_id(),
        ) {
            let expected = table_allows(&channel, &event, client_id.as_deref());
            prop_assert_eq!(trusts(&channel, &event, client_id.as_deref()), expected);
            // And what a webhook delivers is judged the same way.
            if !event.starts_with("presence:") {
                let mut message = json!({"id": "m", "name": event, "timestamp": 1, "data": null});
                if let Some(id) = &client_id {
                    message["clientId"] = json!(id);
                }
                let body = json!({"channel": channel, "messages": [message]}).to_string();
                if let Ok(batch) = parse(body.as_bytes()) {
                    for event in batch.events {
                        prop_assert_eq!(event.trusted, expected);
                    }
                }
            }
        }
    }
}
