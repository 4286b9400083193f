//! `X-Ably-Signature` verification over the raw body
//! (`chat_core::ably::webhook::WebhookVerifier`).
//!
//! Any header values and body: `WebhookVerifier::verify` never panics, and accepts only
//! a signature that is exactly the base64 or hex HMAC of the body under one of the
//! configured secrets. The right signature always verifies; over any other body, or
//! under another named key, it never does.
#![no_main]

use arbitrary::Arbitrary;
use chat_core::ably::webhook::signature::{sign, sign_hex};
use chat_core_fuzz::{secrets, webhook_verifier};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    key_name: Option<&'a str>,
    signature: Option<&'a str>,
    /// Which configured key signs the body in the round-trip checks.
    signer: u8,
    /// Where to change the body for the tamper check.
    flip_at: u16,
    body: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let verifier = webhook_verifier();
    let secrets = secrets();
    // The old `verify(..) -> bool`: `true` exactly when the verifier answers `Ok(())`.
    let verify = |key_name: Option<&str>, signature: Option<&str>, body: &[u8]| {
        verifier.verify(key_name, signature, body).is_ok()
    };

    // 1. Arbitrary headers: accepted only if exactly a right digest (modulo surrounding
    //    whitespace), in either encoding.
    if verify(input.key_name, input.signature, input.body) {
        let presented = input.signature.map(str::trim).unwrap_or_default();
        assert!(
            secrets.iter().any(|(_, secret)| {
                presented == sign(secret, input.body) || presented == sign_hex(secret, input.body)
            }),
            "accepted a signature that is no configured key's digest: {presented:?}"
        );
    }

    // 2. The right signature verifies, named or not, in both encodings.
    let (name, secret) = secrets[usize::from(input.signer) % secrets.len()];
    let good = sign(secret, input.body);
    let good_hex = sign_hex(secret, input.body);
    for signature in [&good, &good_hex] {
        assert!(verify(Some(name), Some(signature), input.body));
        assert!(verify(None, Some(signature), input.body));
        assert!(verify(Some("unknown.key"), Some(signature), input.body));
        // HTTP header values may arrive with surrounding whitespace.
        assert!(verify(
            Some(name),
            Some(&format!(" {signature}\t")),
            input.body
        ));
    }

    // 3. The same signature over any other body fails.
    let mut tampered = input.body.to_vec();
    if tampered.is_empty() {
        tampered.push(b'x');
    } else {
        let at = usize::from(input.flip_at) % tampered.len();
        tampered[at] ^= 0x01;
    }
    assert!(!verify(Some(name), Some(&good), &tampered));
    assert!(!verify(None, Some(&good_hex), &tampered));
    // A truncated or extended signature fails.
    assert!(!verify(
        Some(name),
        Some(&good[..good.len() - 1]),
        input.body
    ));
    assert!(!verify(
        Some(name),
        Some(&format!("{good_hex}0")),
        input.body
    ));
    assert!(
        !verify(Some(name), Some(&good_hex.to_uppercase()), input.body)
            || good_hex.bytes().all(|b| b.is_ascii_digit())
    );

    // 4. Naming one configured key while signing with another fails.
    for (other_name, other_secret) in secrets {
        if !other_name.is_empty()
            && !name.is_empty()
            && other_name != &name
            && other_secret != &secret
        {
            assert!(!verify(Some(other_name), Some(&good), input.body));
        }
    }
});
