//! SealedOrder::from_json: decode → encode → decode gives the same value, in JSON and binary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warifu_core::sealed::SealedOrder;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(s) = SealedOrder::from_json(text) else {
        return;
    };
    let json = s.to_json();
    assert_eq!(SealedOrder::from_json(&json).as_ref(), Ok(&s));
    let bytes = s.encode();
    assert_eq!(SealedOrder::decode(&bytes).as_ref(), Ok(&s));
});
