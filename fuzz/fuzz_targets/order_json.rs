//! Order from JSON: decode → encode → decode gives the same value; validating it against the
//! fixture form at any time is total, and an order that validates seals and opens to exactly
//! the policy's fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warifu_core::Role;
use warifu_core::order::Order;
use warifu_core::rand::SeededRandom;
use warifu_core::sealed::{Disclosed, seal};
use warifu_fuzz_fixtures::{NOW, open_all, world};

fuzz_target!(|data: &[u8]| {
    let Ok(order) = serde_json::from_slice::<Order>(data) else {
        return;
    };
    let json = serde_json::to_vec(&order).expect("an order serializes");
    let back: Order = serde_json::from_slice(&json).expect("its JSON decodes");
    assert_eq!(back, order);
    let w = world();
    let now = data.len() as u64 * 1_000_003;
    let _ = order.validate(&w.form, now);
    if order.validate(&w.form, NOW).is_err() {
        return;
    }
    let sealed = seal(
        &w.form,
        &order,
        &w.form.accepted_issuers[0],
        &w.cardholder,
        NOW,
        &mut SeededRandom::new(b"fuzz"),
    )
    .expect("a valid order seals");
    for (role, opened) in open_all(w, &sealed, &w.form.policy) {
        let fields = opened.expect("each recipient opens its part");
        assert_eq!(fields, Disclosed::from_order(&order, &w.form.policy, role));
        let want: Vec<_> = w.form.policy.fields_for(role).collect();
        assert_eq!(fields.present(), Some(want), "the {role} sees other fields");
        assert!(role != Role::Merchant || fields.card.is_none());
    }
});
