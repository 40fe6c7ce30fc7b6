//! `warifu wallet buy` against a merchant serving a greedy disclosure policy (issue 19.1): the
//! wallet refuses to seal, naming the field and the party, unless the cardholder allows that
//! grant with `--allow FIELD=PARTY`.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_warifu"));
    c.args(args)
        .env_remove("WARIFU_PASSPHRASE")
        .env_remove("WARIFU_OPERATOR_TOKEN")
        .stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    cmd(args).output().expect("run")
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Starts `warifu <party> serve …` and returns it with the URL it printed.
fn serve(args: &[&str]) -> (Served, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Served(
        cmd(args)
            .args(["--log", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    let out = child.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(url) = line.split("listening on ").nth(1) {
            return (child, url.trim().to_owned());
        }
    }
    panic!("{args:?} did not print its address");
}

#[test]
fn wallet_buy_refuses_a_greedy_merchant_unless_allowed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |x: &Path| x.to_str().expect("utf-8").to_owned();
    let (kc, keys, data) = (
        tmp.path().join("kc"),
        tmp.path().join("keys"),
        tmp.path().join("data"),
    );
    let dir = tmp.path().join("directory.json");
    let card = "4539148803436467";
    ok(run(&[
        "keycenter",
        "init",
        "--dir",
        &p(&kc),
        "--k",
        "16",
        "--no-passphrase",
    ]));
    ok(run(&[
        "keycenter",
        "issue",
        "--dir",
        &p(&kc),
        "--out",
        &p(&keys),
        "merchant:shop.example",
        "issuer:bank.example",
        "carrier:post.example",
        "cardholder:hanako@mail.example",
    ]));
    let key = |name: &str| p(&keys.join(name));
    ok(cmd(&[
        "issuer",
        "enroll",
        "--data",
        &p(&data),
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
    .env("WARIFU_CARD_NUMBER", card)
    .output()
    .expect("run"));
    let (_issuer, issuer_url) = serve(&[
        "issuer",
        "serve",
        "--key",
        &key("issuer_bank.example.key"),
        "--data",
        &p(&data),
    ]);
    let (_carrier, carrier_url) = serve(&[
        "carrier",
        "serve",
        "--key",
        &key("carrier_post.example.key"),
        "--data",
        &p(&data),
    ]);
    let add = |id: &str, url: &str| {
        ok(run(&[
            "keycenter",
            "directory",
            "add",
            "--file",
            &p(&dir),
            "--id",
            id,
            "--endpoint",
            url,
        ]));
    };
    add("issuer:bank.example", &issuer_url);
    add("carrier:post.example", &carrier_url);
    // The merchant asks for the destination too (the 【0033】 variant).
    let policy = tmp.path().join("greedy.toml");
    let greedy = String::from_utf8(ok(run(&["policy", "default"])).stdout)
        .expect("utf-8")
        .replace(
            "delivery_destination = [\"carrier\"]",
            "delivery_destination = [\"merchant\", \"carrier\"]",
        );
    fs::write(&policy, greedy).expect("policy");
    let (_merchant, merchant_url) = serve(&[
        "merchant",
        "serve",
        "--key",
        &key("merchant_shop.example.key"),
        "--data",
        &p(&data),
        "--directory",
        &p(&dir),
        "--issuer",
        "issuer:bank.example",
        "--carrier",
        "carrier:post.example",
        "--policy",
        &p(&policy),
    ]);
    add("merchant:shop.example", &merchant_url);
    let profile = tmp.path().join("hanako.json");
    fs::write(
        &profile,
        format!(
            r#"{{"name": "Hanako Yamada", "address": "1-1 Chiyoda, Tokyo", "telephone": "+81-3-0000-0000",
            "card": {{"number": "{card}", "expiry": {{"year": 2035, "month": 7}}}},
            "issuer": "issuer:bank.example",
            "destination": {{"addressee": "Taro Suzuki", "address": "2-2 Umeda, Osaka"}}}}"#
        ),
    )
    .expect("profile");
    let key_file = key("cardholder_hanako@mail.example.key");
    let buy = |extra: &[&str]| {
        let mut args = vec![
            "wallet",
            "buy",
            "--key",
            &key_file,
            "--directory",
            dir.to_str().expect("utf-8"),
            "--merchant",
            "merchant:shop.example",
            "--profile",
            profile.to_str().expect("utf-8"),
            "--item",
            "TEA-001:2",
        ];
        args.extend_from_slice(extra);
        run(&args)
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
}
