//! Policy::from_toml: decode → encode → decode gives the same policy (and digest), in TOML and
//! JSON; every accepted policy keeps the card for the issuer alone (claim 3).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warifu_core::Role;
use warifu_core::policy::{Field, Policy};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = Policy::from_toml(text) else {
        return;
    };
    let back = Policy::from_toml(&p.to_toml()).expect("a policy's TOML parses");
    assert_eq!(back, p);
    assert_eq!(back.digest(), p.digest());
    let json = serde_json::to_string(&p).expect("a policy serializes");
    let from_json: Policy = serde_json::from_str(&json).expect("its JSON decodes");
    assert_eq!(from_json, p);
    assert_eq!(
        p.recipients(Field::Card).collect::<Vec<_>>(),
        [Role::Issuer]
    );
    assert!(p.receives(Role::Carrier, Field::DeliveryDestination));
});
