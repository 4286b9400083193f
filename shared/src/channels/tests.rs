//! The channel table's rules, case by case.

use super::*;

#[test]
fn the_operations_json_lists_every_operation_in_order() {
    let expected = serde_json::to_string(&OPERATIONS).unwrap();
    assert_eq!(format!("[{OPERATIONS_JSON}]"), expected);
}

fn user(id: &str, role: Role, conversations: &[&str]) -> Caller {
    Caller::User {
        user_id: id.into(),
        role,
        conversations: conversations.iter().map(|c| (*c).to_owned()).collect(),
    }
}

fn session(id: &str) -> Caller {
    Caller::Session {
        conversation_id: id.into(),
        email: "a@b.c".into(),
    }
}

fn ch(name: &str) -> ChannelName {
    ChannelName::parse(name).unwrap()
}

#[test]
fn channel_names_parse_and_print_back() {
    for name in [
        "conversation:conv-1",
        "sms:u_1:contact-9",
        "contacts:u1",
        "notifications:u1",
    ] {
        assert_eq!(ch(name).to_string(), name);
    }
    for bad in [
        "",
        "conversation",
        "conversation:",
        "conversation:*",
        "conversation:a:b",
        "conversation:[x]",
        "sms:u1",
        "sms:u1:*",
        "sms:u1:c1:x",
        "contacts:u1:x",
        "other:u1",
        "Conversation:c1",
        "[*]*",
        &format!("conversation:{}", "x".repeat(129)),
    ] {
        assert_eq!(ChannelName::parse(bad), Err(InvalidChannel), "{bad}");
    }
}

#[test]
fn ownership_follows_the_table() {
    let customer = user("u1", Role::Customer, &["c1"]);
    let broker = user("b1", Role::Broker, &[]);
    let admin = user("a1", Role::Admin, &[]);
    let service = user("s1", Role::Service, &[]);
    let cases = [
        ("conversation:c1", [true, true, true, true, true]),
        ("conversation:c2", [false, true, true, true, false]),
        ("sms:u1:x", [true, false, true, true, false]),
        ("sms:u2:x", [false, false, true, true, false]),
        ("sms:b1:x", [false, true, true, true, false]),
        ("contacts:u1", [true, false, true, true, false]),
        ("contacts:u2", [false, false, true, true, false]),
        ("notifications:u1", [true, false, true, true, false]),
        ("notifications:b1", [false, true, true, true, false]),
    ];
    let sess = session("c1");
    for (name, expected) in cases {
        let got = [&customer, &broker, &admin, &service, &sess].map(|c| may_use(c, &ch(name)));
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn staff_only_events_and_unknown_events() {
    let customer = user("u1", Role::Customer, &["c1"]);
    let broker = user("b1", Role::Broker, &[]);
    let conv = ch("conversation:c1");
    assert_eq!(may_publish(&customer, &conv, "message:user"), Ok(()));
    assert_eq!(may_publish(&session("c1"), &conv, "typing:start"), Ok(()));
    for staff_only in ["message:ai", "sla:warning", "sla:violation", "agent_joined"] {
        assert_eq!(
            may_publish(&customer, &conv, staff_only),
            Err(Denial::EventNotAllowed)
        );
        assert_eq!(
            may_publish(&session("c1"), &conv, staff_only),
            Err(Denial::EventNotAllowed)
        );
        assert_eq!(may_publish(&broker, &conv, staff_only), Ok(()));
    }
    assert_eq!(
        may_publish(&customer, &conv, "update"),
        Err(Denial::UnknownEvent)
    );
    assert_eq!(
        may_publish(&customer, &ch("conversation:c2"), "message:user"),
        Err(Denial::ChannelNotOwned)
    );
    assert_eq!(
        may_publish(
            &customer,
            &ch("notifications:u1"),
            "phone_number_assignment"
        ),
        Ok(())
    );
    assert_eq!(
        may_publish(&customer, &ch("sms:u1:k"), "sms_received"),
        Ok(())
    );
    assert_eq!(
        may_publish(&broker, &ch("contacts:u1"), "update"),
        Err(Denial::ChannelNotOwned)
    );
    assert_eq!(
        ApiError::from(Denial::EventNotAllowed).code(),
        "event_forbidden"
    );
}

#[test]
fn capabilities_are_canonical_and_exactly_the_callers_channels() {
    let ops = r#"["history","presence","publish","subscribe"]"#;
    let customer = user("u1", Role::Customer, &["c2", "c1"]);
    assert_eq!(
        Capability::for_caller(&customer).to_json(),
        format!(
            r#"{{"contacts:u1":{ops},"conversation:c1":{ops},"conversation:c2":{ops},"notifications:u1":{ops},"sms:u1:*":{ops}}}"#
        )
    );
    let broker = user("b1", Role::Broker, &["ignored"]);
    assert_eq!(
        Capability::for_caller(&broker)
            .resources()
            .collect::<Vec<_>>(),
        [
            "contacts:b1",
            "conversation:*",
            "notifications:b1",
            "sms:b1:*"
        ]
    );
    for role in [Role::Admin, Role::Service] {
        assert_eq!(
            Capability::for_caller(&user("x", role, &[]))
                .resources()
                .collect::<Vec<_>>(),
            ["contacts:*", "conversation:*", "notifications:*", "sms:*"]
        );
    }
    assert_eq!(
        Capability::for_caller(&session("c7")).to_json(),
        format!(r#"{{"conversation:c7":{ops}}}"#)
    );
    let json: serde_json::Value =
        serde_json::from_str(&Capability::for_caller(&customer).to_json()).unwrap();
    assert_eq!(json.as_object().unwrap().len(), 5);
}

#[test]
fn a_single_conversation_capability_requires_ownership() {
    let customer = user("u1", Role::Customer, &["c1"]);
    let c1 = ChannelName::conversation("c1").unwrap();
    let c2 = ChannelName::conversation("c2").unwrap();
    assert_eq!(
        Capability::for_channel(&customer, &c1)
            .unwrap()
            .resources()
            .collect::<Vec<_>>(),
        ["conversation:c1"]
    );
    let err = Capability::for_channel(&customer, &c2).unwrap_err();
    assert_eq!(
        (err.status().as_u16(), err.code()),
        (403, "conversation_forbidden")
    );
    assert!(ChannelName::conversation("c*").is_err());
    assert!(Capability::for_channel(&user("b", Role::Broker, &[]), &c2).is_ok());
}

#[test]
fn mirrored_events_are_trusted_when_their_publishers_role_may_send_them() {
    // Staff-only events: from staff clientIds and the API key, never from customers.
    for staff in [
        None,
        Some("service:s1"),
        Some("broker:b1"),
        Some("admin:a1"),
    ] {
        assert!(trusts("conversation:c1", "message:ai", staff), "{staff:?}");
        assert!(
            trusts("conversation:c1", "sla:violation", staff),
            "{staff:?}"
        );
    }
    for customer in [
        Some("customer:u1"),
        Some("customer-c1"),
        Some("b1"),
        Some(""),
    ] {
        assert!(
            !trusts("conversation:c1", "message:ai", customer),
            "{customer:?}"
        );
        assert!(
            !trusts("conversation:c1", "agent_joined", customer),
            "{customer:?}"
        );
        assert!(
            trusts("conversation:c1", "message:user", customer),
            "{customer:?}"
        );
        assert!(
            trusts("conversation:c1", "typing:start", customer),
            "{customer:?}"
        );
    }
    // Presence always; unknown events and channels outside the table never.
    assert!(trusts(
        "conversation:c1",
        "presence:enter",
        Some("customer-c1")
    ));
    assert!(trusts("chat-channel-4", "presence:update", Some("bob")));
    assert!(!trusts("conversation:c1", "update", None));
    assert!(!trusts("chat-channel-4", "a message name", None));
    assert!(!trusts("conversation:*", "message:user", None));
    assert!(trusts("sms:u1:k1", "sms_received", Some("customer:u1")));
    assert!(!trusts("sms:u1:k1", "message:user", None));
}
