//! `warifu wallet buy` against a merchant serving a greedy disclosure policy (issue 19.1): the
//! wallet refuses to seal, naming the field and the party, unless the cardholder allows that
//! grant with `--allow FIELD=PARTY`. Then the key center revokes the merchant, and a wallet
//! given the signed list (`--revocations`) refuses it before sending anything.

mod common;

use common::{Deployment, HANAKO_CARD, Options, ok, path, stdout_ok, warifu};

#[test]
fn wallet_buy_refuses_a_greedy_merchant_unless_allowed() {
    let card = HANAKO_CARD;
    // The merchant asks for the destination too (the 【0033】 variant).
    let greedy = stdout_ok(warifu().args(["policy", "default"])).replace(
        "delivery_destination = [\"carrier\"]",
        "delivery_destination = [\"merchant\", \"carrier\"]",
    );
    let d = Deployment::start(Options {
        merchant_policy: Some(greedy),
        ..Options::default()
    });
    let buy = |extra: &[&str]| {
        let mut args = vec!["--item", "TEA-001:2"];
        args.extend_from_slice(extra);
        d.buy(&args)
    };

    let refused = buy(&[]);
    assert!(!refused.status.success(), "a greedy form was sealed");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("delivery_destination") && err.contains("merchant"),
        "{err}"
    );
    assert!(!err.contains(card), "{err}");

    let bought = String::from_utf8(ok(buy(&["--allow", "delivery_destination=merchant"])).stdout)
        .expect("utf-8");
    assert!(
        bought.starts_with("order ") && bought.contains("approved"),
        "{bought}"
    );

    let kc = d.tmp.path().join("kc");
    stdout_ok(warifu().args([
        "keycenter",
        "revoke",
        "--dir",
        path(&kc),
        "merchant:shop.example",
    ]));
    stdout_ok(warifu().args([
        "keycenter",
        "directory",
        "center",
        "--file",
        path(&d.dir),
        "--dir",
        path(&kc),
    ]));
    let list = kc.join("revocations.json");
    let allowed = ["--allow", "delivery_destination=merchant"];
    let refused = buy(&[allowed[0], allowed[1], "--revocations", path(&list)]);
    assert!(!refused.status.success(), "bought from a revoked merchant");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("merchant:shop.example is revoked"), "{err}");
    // Without the list the wallet does not know (the list must reach it).
    assert!(buy(&allowed).status.success());
}
