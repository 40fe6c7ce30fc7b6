//! The first hour as a user (issue 18, points 6 and 8), over the real binary: `warifu up` keeps
//! its ports for the same data directory; `--url` without a scheme works and nonsense is refused
//! clearly; a command pointed at the wrong service says which service answered; `--db` and
//! `--postgres`, `--digital` and `--no-carrier`, `--instalments` and `--installments` are one
//! flag each; `wallet buy` pays revolving and bonus and records the order in the wallet's history.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_warifu");

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `warifu up` on `data`; its output lines up to "Press Ctrl-C".
fn up(data: &Path) -> (Killed, Vec<String>) {
    let mut child = Command::new(BIN)
        .args([
            "up", "--log", "warn", "--scheme", "blom", "--k", "64", "--data",
        ])
        .arg(data)
        // The demo wallet file is created at once (it alone keeps the card number).
        .env("WARIFU_WALLET_PASSPHRASE", "correct horse battery")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("warifu up");
    let out = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.expect("line");
        let done = line.starts_with("Press Ctrl-C");
        lines.push(line);
        if done {
            break;
        }
    }
    (Killed(child), lines)
}

/// The endpoint `up` printed for `id`.
fn endpoint(lines: &[String], id: &str) -> String {
    lines
        .iter()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(id)).then(|| w.next().map(str::to_owned))?
        })
        .unwrap_or_else(|| panic!("no endpoint of {id} in {lines:?}"))
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("warifu")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn up_keeps_its_ports_and_urls_and_flags_are_consistent() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");

    // Point 6: the same data directory, the same ports (the wallet tab survives a restart).
    let (first, lines) = up(&data);
    let merchant = endpoint(&lines, "merchant:shop.example");
    let carrier = endpoint(&lines, "carrier:post.example");
    let wallet = lines
        .iter()
        .find(|l| l.contains("in your browser: "))
        .cloned()
        .expect("wallet url");
    drop(first);
    let (second, again) = up(&data);
    assert_eq!(endpoint(&again, "merchant:shop.example"), merchant);
    assert_eq!(endpoint(&again, "carrier:post.example"), carrier);
    assert!(
        again.contains(&wallet),
        "the wallet page's port is kept too"
    );
    assert!(data.join("ports.json").exists());
    // Issue 15: what `up` wrote is private (but the public directory and ports), and nothing
    // holds the card number in clear (the profile, the cardholder's own 0600 file, keeps the
    // default destination).
    #[cfg(unix)]
    assert_eq!(
        common::not_private(&data, &["directory.json", "ports.json"]),
        Vec::<String>::new()
    );
    let card = common::leaks(&data);
    assert!(
        !card.iter().any(|l| l.contains(common::HANAKO_CARD)),
        "{card:?}"
    );

    // Point 8: --url without a scheme works; a bad one is refused clearly.
    let bare = merchant.trim_start_matches("http://");
    let o = run(&["merchant", "orders", "--url", bare]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["merchant", "orders", "--url", "ftp://127.0.0.1:1"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("not a service URL"), "{}", text(&o));
    // A merchant command at the carrier: the error names who answered.
    let o = run(&["merchant", "orders", "--url", &carrier]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("carrier:post.example"),
        "says which service answered: {}",
        text(&o)
    );

    // `wallet buy` pays revolving and bonus, and the order goes into the wallet's history.
    let key = data.join("wallet/hanako.key");
    let profile = data.join("wallet/hanako.json");
    let directory = data.join("directory.json");
    let pass = tmp.path().join("wallet-pass.txt");
    std::fs::write(&pass, "correct horse battery\n").expect("pass");
    // The profile `up` wrote keeps no card number: the card comes from the wallet file.
    let kept = std::fs::read_to_string(&profile).expect("profile");
    assert!(!kept.contains("4539148803436467"), "{kept}");
    let vault = data.join("wallet/wallet.vault");
    // `wallet buy` of one tea from the demo's shop, as hanako, with her wallet's card.
    let buy = || {
        let mut c = Command::new(BIN);
        c.args(["wallet", "buy", "--merchant", "merchant:shop.example"])
            .arg("--key")
            .arg(&key)
            .arg("--profile")
            .arg(&profile)
            .arg("--directory")
            .arg(&directory)
            .args(["--item", "TEA-001:1", "--json"]);
        c
    };
    for method in ["revolving", "bonus"] {
        let o = buy()
            .args(["--method", method])
            .arg("--wallet")
            .arg(&vault)
            .arg("--wallet-passphrase-file")
            .arg(&pass)
            .output()
            .expect("buy");
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        let paid = v["payment"]["payment_method"].as_str().unwrap_or_default();
        assert_eq!(paid, method, "{v}");
        assert!(text(&o).contains("recorded in the wallet"), "{}", text(&o));
    }
    let raw = std::fs::read(&vault).expect("the wallet file holds the history");
    assert!(
        !raw.windows(7).any(|w| w == b"TEA-001"),
        "the history is encrypted"
    );
    // --instalments, with the old spelling as an alias; one spelling in the help.
    let o = buy()
        .args(["--installments", "4"])
        .arg("--wallet-passphrase-file")
        .arg(&pass)
        .output()
        .expect("buy");
    assert!(o.status.success(), "{}", text(&o));
    let help = text(&run(&["wallet", "buy", "--help"]));
    assert!(help.contains("--instalments") && !help.contains("--installments"));
    drop(second);

    // One flag per idea: --db (alias --postgres), --digital (alias --no-carrier).
    for flag in ["--db", "--postgres"] {
        let o = run(&["demo", flag, "sqlite://x.db"]);
        assert!(!o.status.success());
        assert!(
            text(&o).contains("expected a PostgreSQL URL"),
            "{flag}: {}",
            text(&o)
        );
    }
    for flag in ["--digital", "--no-carrier"] {
        let o = run(&["example", "form", flag]);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("form");
        assert!(v["carrier"].is_null(), "{flag}: {v}");
    }
}
