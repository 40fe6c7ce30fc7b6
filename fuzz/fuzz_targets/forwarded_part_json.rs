//! ForwardedPart from JSON: decode → encode → decode gives the same value, in JSON and binary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warifu_core::sealed::ForwardedPart;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = serde_json::from_slice::<ForwardedPart>(data) else {
        return;
    };
    let json = serde_json::to_string(&f).expect("a forwarded part serializes");
    let back: ForwardedPart = serde_json::from_str(&json).expect("its JSON decodes");
    assert_eq!(back, f);
    assert_eq!(ForwardedPart::decode(&f.encode()).as_ref(), Ok(&f));
});
