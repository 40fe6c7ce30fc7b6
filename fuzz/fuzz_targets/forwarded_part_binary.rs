//! ForwardedPart::decode: any accepted input is the canonical encoding of its value and
//! survives the JSON form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warifu_core::sealed::ForwardedPart;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = ForwardedPart::decode(data) else {
        return;
    };
    let bytes = f.encode();
    assert_eq!(bytes, data, "the binary form is not canonical");
    assert_eq!(ForwardedPart::decode(&bytes).as_ref(), Ok(&f));
    let json = serde_json::to_string(&f).expect("a forwarded part serializes");
    let back: ForwardedPart = serde_json::from_str(&json).expect("its JSON decodes");
    assert_eq!(back, f);
});
