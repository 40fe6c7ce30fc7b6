//! A fixed valid sealed order (seeded, k = 4) in one of eight encodings (binary or JSON, whole
//! or one forwarded part), edited by fuzzer-chosen mutations, then opened with the right keys:
//! every open either fails with a typed error or yields exactly the original header and view;
//! and an input that decodes to the original value must open.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warifu_core::sealed::{ForwardedPart, SealedOrder};
use warifu_fuzz_fixtures::{Opened, Target, mutate, open_all_with_headers, open_forwarded, world};

fn check(role: warifu_core::Role, opened: &warifu_core::Result<Opened>, must_open: bool) {
    let w = world();
    match opened {
        Ok((header, fields)) => {
            assert_eq!(
                header, &w.sealed.header,
                "the {role} opened under another header"
            );
            assert_eq!(Some(fields), w.view(role), "the {role} opened another view");
        }
        Err(e) => assert!(!must_open, "the unmodified {role} part failed to open: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, ops)) = data.split_first() else {
        return;
    };
    let w = world();
    let target = Target::from_selector(selector);
    let mut bytes = target.original(w);
    mutate(&mut bytes, ops);
    let policy = &w.form.policy;
    match target {
        Target::SealedBinary | Target::SealedJson => {
            let decoded = if target == Target::SealedBinary {
                SealedOrder::decode(&bytes).ok()
            } else {
                std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|t| SealedOrder::from_json(t).ok())
            };
            let Some(s) = decoded else {
                return;
            };
            let same = s == w.sealed;
            for (role, opened) in open_all_with_headers(w, &s, policy) {
                check(role, &opened, same);
            }
        }
        Target::ForwardedBinary(role) | Target::ForwardedJson(role) => {
            let decoded = if matches!(target, Target::ForwardedBinary(_)) {
                ForwardedPart::decode(&bytes).ok()
            } else {
                serde_json::from_slice::<ForwardedPart>(&bytes).ok()
            };
            let Some(f) = decoded else {
                return;
            };
            let same = w.sealed.forward(role).ok().as_ref() == Some(&f);
            // The recipient named by the part opens it; every other party must fail.
            for r in warifu_core::policy::RECIPIENTS {
                let opened = open_forwarded(w, &f, r, policy);
                if r == f.part.recipient {
                    check(r, &opened, same);
                } else {
                    assert!(
                        opened.is_err(),
                        "the {r} opened the {}'s part",
                        f.part.recipient
                    );
                }
            }
        }
    }
});
