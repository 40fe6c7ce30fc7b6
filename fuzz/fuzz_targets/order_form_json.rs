//! OrderForm from JSON: decode → encode → decode gives the same value; validation is total.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warifu_core::order::OrderForm;

fuzz_target!(|data: &[u8]| {
    let Ok(form) = serde_json::from_slice::<OrderForm>(data) else {
        return;
    };
    let _ = form.validate();
    let json = serde_json::to_vec(&form).expect("a form serializes");
    let back: OrderForm = serde_json::from_slice(&json).expect("its JSON decodes");
    assert_eq!(back, form);
    assert_eq!(back.policy.digest(), form.policy.digest());
});
