//! Channel-name parsing and ownership (`chat_core::channels`).
//!
//! Any string: no panic; a parsed name prints back to exactly the input; a customer or a
//! session may use a channel only if its own id is in it, and a capability never grants
//! more than `may_use` allows.
#![no_main]

use arbitrary::Arbitrary;
use chat_core::channels::capability::Capability;
use chat_core::channels::{may_publish, may_use, ChannelName};
use chat_core::identity::{Caller, Role};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    channel: &'a str,
    event: &'a str,
    user: &'a str,
    conversation: &'a str,
    session: bool,
}

fuzz_target!(|input: Input<'_>| {
    let Ok(channel) = ChannelName::parse(input.channel) else {
        return;
    };
    assert_eq!(channel.to_string(), input.channel, "parse/print round trip");
    // Nothing that could widen an Ably capability survives parsing.
    assert!(!input.channel.contains('*') && !input.channel.contains('['));

    let caller = if input.session {
        Caller::Session {
            conversation_id: input.conversation.to_owned(),
            email: "fuzz@example.com".to_owned(),
        }
    } else {
        Caller::User {
            user_id: input.user.to_owned(),
            role: Role::Customer,
            conversations: vec![input.conversation.to_owned()],
        }
    };
    let allowed = may_use(&caller, &channel);
    if allowed {
        let own_conversation = input.channel == format!("conversation:{}", input.conversation);
        let own_user = !input.session && input.channel.split(':').nth(1) == Some(input.user);
        assert!(
            own_conversation || own_user,
            "{caller:?} may use {}",
            input.channel
        );
    }
    if may_publish(&caller, &channel, input.event).is_ok() {
        assert!(allowed);
    }
    assert_eq!(Capability::for_channel(&caller, &channel).is_ok(), allowed);
});
