//! Runs the real `warifu demo` and checks its exit status, its outcomes and its disclosure
//! matrix; and a whole deployment from separate commands (`keycenter`, `directory`,
//! `issuer enroll`, three `serve` processes, `wallet buy`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn warifu() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_warifu"));
    c.env_remove("WARIFU_PASSPHRASE").stdin(Stdio::null());
    c
}

/// The matrix row of `field`: its cells, merchant, issuer, carrier.
fn row<'a>(out: &'a str, field: &str) -> Vec<&'a str> {
    let line = out
        .lines()
        .map(str::trim)
        .find(|l| l.split_whitespace().next() == Some(field))
        .unwrap_or_else(|| panic!("no matrix row {field} in:\n{out}"));
    line.split_whitespace().skip(1).collect()
}

#[test]
fn demo_runs_a_whole_purchase_and_prints_the_matrix() {
    let started = Instant::now();
    let out = warifu()
        .args(["demo", "--k", "16"])
        .output()
        .expect("run warifu demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    eprintln!("warifu demo --k 16 took {:?}", started.elapsed());
    for needle in [
        "k = 16",
        "approved",
        "declined",
        "insufficient_credit",
        "captured",
        "tracking WRF",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing:\n{stdout}");
    }
    // field × (merchant, issuer, carrier)
    assert_eq!(row(&stdout, "card"), ["—", "✔", "—"]);
    assert_eq!(row(&stdout, "delivery_destination"), ["—", "—", "✔"]);
    assert_eq!(row(&stdout, "product_name"), ["✔", "—", "—"]);
    assert_eq!(row(&stdout, "amount"), ["✔", "✔", "—"]);
    assert_eq!(row(&stdout, "cardholder_name")[0], "✔");
    assert!(!stdout.contains("LEAK"), "{stdout}");
    assert!(
        stdout.contains("card number found at: issuer; destination found at: carrier"),
        "{stdout}"
    );
    // The card number itself is never printed.
    assert!(!stdout.contains("4539148803436467") && !stderr.contains("4539148803436467"));
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `warifu <party> serve …` and returns it with the URL it printed.
fn serve(args: &[&str]) -> (Killed, String) {
    let mut child = Killed(
        warifu()
            .args(args)
            .args(["--log", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(url) = line.split("listening on ").nth(1) {
            return (child, url.trim().to_owned());
        }
    }
    panic!("{args:?} did not print its address");
}

fn ok(c: &mut Command) -> String {
    let out = c.output().expect("run");
    assert!(
        out.status.success(),
        "{:?}\n{}\n{}",
        c,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn separate_processes_buy_through_the_directory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let kc = tmp.path().join("kc");
    let keys = tmp.path().join("keys");
    let dir = tmp.path().join("directory.json");
    ok(warifu().args([
        "keycenter",
        "init",
        "--dir",
        path(&kc),
        "--k",
        "16",
        "--no-passphrase",
    ]));
    ok(warifu().args([
        "keycenter",
        "issue",
        "--dir",
        path(&kc),
        "--out",
        path(&keys),
        "merchant:shop.example",
        "issuer:bank.example",
        "carrier:post.example",
        "cardholder:hanako@mail.example",
    ]));
    let key = |name: &str| keys.join(name).to_str().expect("utf-8").to_owned();
    let data = tmp.path().join("data");
    ok(warifu()
        .args([
            "issuer",
            "enroll",
            "--data",
            path(&data),
            "--card-id",
            "c1",
            "--cardholder",
            "cardholder:hanako@mail.example",
            "--name",
            "Hanako Yamada",
            "--expiry",
            "2035-07",
            "--limit",
            "100000",
        ])
        .env("WARIFU_CARD_NUMBER", "4539 1488 0343 6467"));
    let (_issuer, issuer_url) = serve(&[
        "issuer",
        "serve",
        "--key",
        &key("issuer_bank.example.key"),
        "--data",
        path(&data),
    ]);
    let (_carrier, carrier_url) = serve(&[
        "carrier",
        "serve",
        "--key",
        &key("carrier_post.example.key"),
        "--data",
        path(&data),
    ]);
    for (id, url) in [
        ("issuer:bank.example", &issuer_url),
        ("carrier:post.example", &carrier_url),
    ] {
        ok(warifu().args([
            "keycenter",
            "directory",
            "add",
            "--file",
            path(&dir),
            "--id",
            id,
            "--endpoint",
            url,
        ]));
    }
    let (_merchant, merchant_url) = serve(&[
        "merchant",
        "serve",
        "--key",
        &key("merchant_shop.example.key"),
        "--data",
        path(&data),
        "--directory",
        path(&dir),
        "--issuer",
        "issuer:bank.example",
        "--carrier",
        "carrier:post.example",
    ]);
    ok(warifu().args([
        "keycenter",
        "directory",
        "add",
        "--file",
        path(&dir),
        "--id",
        "merchant:shop.example",
        "--endpoint",
        &merchant_url,
    ]));
    let listed = ok(warifu().args(["keycenter", "directory", "list", "--file", path(&dir)]));
    assert_eq!(listed.lines().count(), 3, "{listed}");
    let profile = tmp.path().join("hanako.json");
    std::fs::write(
        &profile,
        r#"{"name": "Hanako Yamada", "address": "1-1 Chiyoda, Tokyo", "telephone": "+81-3-0000-0000",
            "card": {"number": "4539148803436467", "expiry": {"year": 2035, "month": 7}},
            "issuer": "issuer:bank.example",
            "destination": {"addressee": "Taro Suzuki", "address": "2-2 Umeda, Osaka"}}"#,
    )
    .expect("profile");
    let bought = ok(warifu().args([
        "wallet",
        "buy",
        "--key",
        &key("cardholder_hanako@mail.example.key"),
        "--directory",
        path(&dir),
        "--merchant",
        "merchant:shop.example",
        "--profile",
        path(&profile),
        "--item",
        "TEA-001:2",
        "--installments",
        "3",
    ]));
    assert!(
        bought.contains("captured") && bought.contains("approved"),
        "{bought}"
    );
    assert!(bought.contains("receipt verified"), "{bought}");
    // The order's three states, then a cancellation after capture: refunded.
    let order_id = bought
        .split_whitespace()
        .nth(1)
        .expect("order id")
        .trim_end_matches(':')
        .to_owned();
    let wallet_cmd = |cmd: &str| {
        ok(warifu().args([
            "wallet",
            cmd,
            "--key",
            &key("cardholder_hanako@mail.example.key"),
            "--directory",
            path(&dir),
            "--merchant",
            "merchant:shop.example",
            "--order-id",
            &order_id,
        ]))
    };
    let status = wallet_cmd("status");
    for needle in [
        "merchant: captured",
        "payment:  captured",
        "installments(3)",
        "instalments: 800 + 800 + 800",
        "delivery: accepted",
        "2-2 Umeda, Osaka",
    ] {
        assert!(status.contains(needle), "{needle:?} missing:\n{status}");
    }
    let cancelled = wallet_cmd("cancel");
    assert!(
        cancelled.contains(": refunded") && cancelled.contains("refunded 2400 JPY"),
        "{cancelled}"
    );
    // A fake merchant endpoint (the issuer's, which holds no merchant key) gets nothing.
    ok(warifu().args([
        "keycenter",
        "directory",
        "add",
        "--file",
        path(&dir),
        "--id",
        "merchant:shop.example",
        "--endpoint",
        &carrier_url,
    ]));
    let out = warifu()
        .args([
            "wallet",
            "buy",
            "--key",
            &key("cardholder_hanako@mail.example.key"),
            "--directory",
            path(&dir),
            "--merchant",
            "merchant:shop.example",
            "--profile",
            path(&profile),
            "--item",
            "TEA-001:1",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not_addressed_here") || err.contains("prove"),
        "{err}"
    );
}

#[test]
fn demo_runs_in_every_key_scheme_and_says_which() {
    for scheme in ["blom", "sok", "hybrid"] {
        let out = warifu()
            .args(["demo", "--k", "8", "--scheme", scheme, "--key-cache", "16"])
            .output()
            .expect("run warifu demo");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{scheme}: exit {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("Key centers: scheme {scheme} (")),
            "{scheme}:\n{stdout}"
        );
        assert_eq!(stdout.contains("SOK master"), scheme != "blom", "{stdout}");
        assert_eq!(
            stdout.contains("Blom master k = 8"),
            scheme != "sok",
            "{stdout}"
        );
        for needle in ["captured", "declined"] {
            assert!(
                stdout.contains(needle),
                "{scheme}: {needle:?} missing:\n{stdout}"
            );
        }
    }
    // The default is the hybrid.
    let out = warifu()
        .args(["demo", "--k", "8"])
        .output()
        .expect("run warifu demo");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Key centers: scheme hybrid ("));
}
