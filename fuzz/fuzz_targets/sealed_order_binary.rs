//! SealedOrder::decode: any accepted input is the canonical encoding of its value
//! (encode(decode(x)) == x), survives the JSON form, and forwards losslessly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warifu_core::sealed::{ForwardedPart, SealedOrder};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = SealedOrder::decode(data) else {
        return;
    };
    let bytes = s.encode();
    assert_eq!(bytes, data, "the binary form is not canonical");
    assert_eq!(SealedOrder::decode(&bytes).as_ref(), Ok(&s));
    assert_eq!(SealedOrder::from_json(&s.to_json()).as_ref(), Ok(&s));
    for role in s.header.recipients() {
        let f = s
            .forward(role)
            .expect("a decoded order has every recipient's part");
        assert_eq!(ForwardedPart::decode(&f.encode()).as_ref(), Ok(&f));
    }
});
