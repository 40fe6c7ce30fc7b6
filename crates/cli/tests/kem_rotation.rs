//! Forward secrecy from the shell (issue 19): `warifu merchant|issuer|carrier rotate-kem-key`
//! while the services run. A purchase goes through after each rotation; a grace period
//! shorter than the cardholder's cache is refused; the output names epochs, never a key.

mod common;

use common::{Deployment, IN_CLEAR, Options, ok, order_id_of};
use warifu_store::Party;

fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn rotate_kem_key_while_the_services_run() {
    let d = Deployment::start(Options::default());
    order_id_of(&text(&ok(d.buy(&["--item", "TEA-001:1"]))));
    let rotate = |party: Party, grace: &str| {
        d.cmd()
            .args([party.as_str(), "rotate-kem-key", "--grace", grace])
            .args(d.db.args(party))
            .output()
            .expect("rotate")
    };
    let short = rotate(Party::Issuer, "10");
    assert!(!short.status.success());
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("at least 120"),
        "{short:?}"
    );
    for party in [Party::Merchant, Party::Issuer, Party::Carrier] {
        let said = text(&ok(rotate(party, "120")));
        assert!(
            said.contains(
                "KEM key epoch 2 is current; kept in their grace period: 1; deleted: none"
            ),
            "{party:?}: {said}"
        );
        for s in IN_CLEAR {
            assert!(!said.contains(s), "printed a secret");
        }
    }
    // A new wallet process asks the parties afresh: it seals to epoch 2, and the services,
    // which read the new epoch from their databases, open it.
    order_id_of(&text(&ok(d.buy(&["--item", "TEA-001:1"]))));
}
