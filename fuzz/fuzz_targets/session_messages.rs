//! The handshake and session messages (claim 5), as a peer receives them in JSON: each decodes
//! → encodes → decodes to the same value, and a fixed genuine handshake between the fixture
//! merchant and issuer accepts a fuzzed message only if it equals the genuine one. The first
//! input byte selects the message; the rest is its JSON (or, for 4, a request body).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::{Serialize, de::DeserializeOwned};
use warifu_fuzz_fixtures::{Handshake, NOW, handshake, world};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    bytes: &[u8],
) -> Option<T> {
    let v: T = serde_json::from_slice(bytes).ok()?;
    let json = serde_json::to_vec(&v).expect("a decoded message serializes");
    let back: T = serde_json::from_slice(&json).expect("its JSON decodes");
    assert_eq!(back, v);
    Some(v)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let w = world();
    let Handshake {
        challenge,
        confirm,
        request,
        body,
        ..
    } = handshake(w);
    match selector % 5 {
        0 => {
            let Some(h) = round_trip::<warifu_core::session::Hello>(rest) else {
                return;
            };
            let mut rng = warifu_core::rand::SeededRandom::new(b"fuzz");
            if warifu_core::session::PendingHandshake::respond(&w.issuer, &h, NOW, &mut rng).is_ok()
            {
                assert_eq!(h.version, warifu_core::session::VERSION);
                assert_eq!(&h.responder, w.issuer.id());
                assert!(h.time.abs_diff(NOW) <= warifu_core::session::TIME_WINDOW);
            }
        }
        1 => {
            let Some(c) = round_trip::<warifu_core::session::Challenge>(rest) else {
                return;
            };
            let fresh = handshake(w);
            let accepted = fresh.initiator.finish(&c).is_ok();
            assert_eq!(accepted, c == challenge, "a forged challenge was accepted");
        }
        2 => {
            let Some(c) = round_trip::<warifu_core::session::Confirm>(rest) else {
                return;
            };
            let fresh = handshake(w);
            let accepted = fresh.pending.confirm(&c, NOW + 1).is_ok();
            assert_eq!(accepted, c == confirm, "a forged confirmation was accepted");
        }
        3 => {
            let Some(auth) = round_trip::<warifu_core::session::MessageAuth>(rest) else {
                return;
            };
            let mut server = handshake(w).server;
            let accepted = server
                .verify_request(&auth, "POST", "/v1/authorize", &body, NOW)
                .is_ok();
            assert_eq!(accepted, auth == request, "a forged request was accepted");
        }
        _ => {
            let mut server = handshake(w).server;
            let accepted = server
                .verify_request(&request, "POST", "/v1/authorize", rest, NOW)
                .is_ok();
            assert_eq!(
                accepted,
                rest == body.as_slice(),
                "a changed body was accepted"
            );
        }
    }
});
