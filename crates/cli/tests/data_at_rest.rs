//! Data at rest from the shell (issue 15): `warifu issuer|carrier rotate-data-key` while the
//! services run (SQLite, and PostgreSQL when WARIFU_TEST_POSTGRES holds a URL), a new
//! key-encryption key, and the modes of every file `warifu up` and `serve` create.

mod common;

use std::process::Stdio;

use common::books::Db;
use common::{
    CARRIER, Deployment, HANAKO, IN_CLEAR, ISSUER, Options, leaks, ok, order_id_of, path, stdout_ok,
};
use warifu_store::Party;

const TOKEN: &str = "op-token-atrest-0123456789";

fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Buys and delivers, rotates both parties' data keys while their services run (and a
/// purchase goes through during the grace period), then checks that the statement and the
/// order's tracking read as before, the old keys are gone, and nothing is in clear.
fn rotation_keeps_everything_readable(postgres: Option<String>) {
    let d = Deployment::start(Options {
        operator_token: Some(TOKEN.into()),
        postgres,
        ..Options::default()
    });
    let tok = path(d.token_file.as_deref().expect("token")).to_owned();
    let first = order_id_of(&text(&ok(d.buy(&["--item", "TEA-001:2"]))));
    let shipments = stdout_ok(d.cmd().args([
        "carrier",
        "shipments",
        "--url",
        &d.carrier_url,
        "--token-file",
        &tok,
    ]));
    let tracking = shipments.split_whitespace().next().expect("tracking");
    stdout_ok(d.cmd().args([
        "carrier",
        "advance",
        "--url",
        &d.carrier_url,
        tracking,
        "--to",
        "delivered",
        "--token-file",
        &tok,
    ]));
    let statement = || {
        stdout_ok(d.cmd().args([
            "issuer",
            "statement",
            "--url",
            &d.issuer_url,
            "--token-file",
            &tok,
            "--cardholder",
            HANAKO,
        ]))
    };
    let line_of = |s: &str, id: &str| s.lines().find(|l| l.contains(id)).map(str::to_owned);
    let before = statement();
    // The delivery line of the order's status: the destination from the carrier.
    let delivery = |order: &str| line_of(&d.wallet("status", order), "delivery:");
    let status = delivery(&first);
    assert!(
        status.as_deref().unwrap_or("").contains("Taro Suzuki"),
        "{status:?}"
    );

    // Both rotations at once, with the default grace: the running services switch keys.
    let rotate = |party: Party| {
        d.cmd()
            .args([party.as_str(), "rotate-data-key"])
            .args(d.db.args(party))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rotate")
    };
    let (issuer, carrier) = (rotate(Party::Issuer), rotate(Party::Carrier));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let during = order_id_of(&text(&ok(d.buy(&["--item", "TEA-001:1"]))));
    for (who, child) in [(ISSUER, issuer), (CARRIER, carrier)] {
        let out = ok(child.wait_with_output().expect("rotate"));
        let said = format!("{}{}", text(&out), String::from_utf8_lossy(&out.stderr));
        assert!(said.contains("data key 3 is active"), "{who}: {said}");
        assert!(said.contains("dropped 1 old data keys"), "{who}: {said}");
        assert!(
            said.contains("data key 3: ") && !said.contains("data key 2:"),
            "{who}: {said}"
        );
        for s in IN_CLEAR {
            assert!(!said.contains(s), "{who} printed a secret");
        }
    }

    // Everything reads as before; a purchase after the rotation goes through too.
    let after = statement();
    assert_eq!(line_of(&after, &first), line_of(&before, &first), "{after}");
    assert!(line_of(&after, &during).is_some(), "{after}");
    assert!(after.contains("(…6467)"), "{after}");
    assert_eq!(delivery(&first), status);
    assert!(
        delivery(&during)
            .unwrap_or_default()
            .contains("Taro Suzuki")
    );
    let last = order_id_of(&text(&ok(d.buy(&["--item", "TEA-001:1"]))));
    assert!(delivery(&last).unwrap_or_default().contains("Taro Suzuki"));

    // A new key-encryption key: the services are restarted with it (SQLite: `NAME.kek` now
    // holds it, so the plain `--data` still works).
    let kek = d.tmp.path().join("new.kek");
    std::fs::write(&kek, format!("{}\n", "ab".repeat(32))).expect("kek");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let rewrapped = stdout_ok(
        d.cmd()
            .args([
                "issuer",
                "rotate-data-key",
                "--grace",
                "0",
                "--new-kek-file",
            ])
            .arg(&kek)
            .args(d.db.args(Party::Issuer)),
    );
    assert!(rewrapped.contains("re-wrapped 2 keys"), "{rewrapped}");
    let mut cards = d.cmd();
    cards
        .args(["issuer", "cards"])
        .args(d.db.args(Party::Issuer));
    if matches!(d.db, Db::Postgres { .. }) {
        cards.env("WARIFU_DATA_KEK_FILE", &kek);
    }
    assert!(stdout_ok(&mut cards).contains("…6467"));

    if matches!(d.db, Db::Sqlite(_)) {
        assert_eq!(leaks(&d.data), Vec::<String>::new());
        // The databases, their WAL and SHM, the key-encryption keys: 0600 in a 0700 directory.
        #[cfg(unix)]
        assert_eq!(common::not_private(&d.data, &[]), Vec::<String>::new());
    }
}

#[test]
fn rotation_on_sqlite() {
    rotation_keeps_everything_readable(None);
}

#[test]
fn rotation_on_postgres() {
    let Ok(url) = std::env::var("WARIFU_TEST_POSTGRES") else {
        eprintln!("WARIFU_TEST_POSTGRES is not set: skipping the PostgreSQL rotation test");
        return;
    };
    rotation_keeps_everything_readable(Some(url));
}
