//! The real `warifu` binary against running services (issue 16): the issuer's card commands
//! with `--url` and the operator token (enroll with the same refusals as the direct mode,
//! cards with the last four digits only, block, limit, statement, settlement), and `warifu
//! merchant webhooks add|endpoints|list|replay` against a running merchant.

use std::path::Path;
use std::process::{Command, Output};

use warifu_services::dev::local::{Local, LocalOptions};
use warifu_services::session::operator::OperatorAuth;

const TOKEN: &str = "cli-operator-token-0123456789";
const NUMBER: &str = "4556737586899855";

fn warifu(args: &[&str], token_file: &Path) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_warifu"));
    c.args(args)
        .arg("--token-file")
        .arg(token_file)
        .env("WARIFU_CARD_NUMBER", NUMBER)
        .env_remove("WARIFU_OPERATOR_TOKEN");
    c.output().expect("run warifu")
}

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "failed: {out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !out.contains(NUMBER),
        "the card number in the output: {out}"
    );
    out
}

fn refused(o: &Output, code: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains(code), "expected {code}: {err}");
    assert!(!err.contains(NUMBER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issuer_and_webhook_commands_over_http() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut opts = LocalOptions::new(&tmp.path().join("data"), 16);
    opts.operator = OperatorAuth::token(TOKEN);
    let local = Local::start(opts).await.expect("deployment");
    let token = tmp.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("token");
    let issuer = local.endpoint(local.issuer.id()).expect("issuer");
    let merchant = local.endpoint(local.merchant.id()).expect("merchant");
    let (i, m) = (issuer.as_str(), merchant.as_str());
    let run = |args: Vec<&str>| {
        let token = token.clone();
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                warifu(&a, &token)
            })
            .await
            .expect("join")
        }
    };
    let enroll = |id: &'static str, expiry: &'static str| {
        vec![
            "issuer",
            "enroll",
            "--url",
            i,
            "--card-id",
            id,
            "--cardholder",
            "cardholder:jiro@mail.example",
            "--name",
            "Jiro Sato",
            "--expiry",
            expiry,
            "--limit",
            "50000",
        ]
    };
    let out = ok(&run(enroll("c-9", "2034-11")).await);
    assert!(out.contains("enrolled c-9"), "{out}");
    refused(&run(enroll("c-9", "2034-11")).await, "already_exists");
    let bad = run(enroll("c-10", "2034-13")).await;
    assert!(!bad.status.success());
    let out = ok(&run(vec!["issuer", "cards", "--url", i]).await);
    assert!(out.contains("…9855") && out.contains("c-9"), "{out}");
    let out = ok(&run(vec!["issuer", "block", "--url", i, "c-9"]).await);
    assert!(out.contains("blocked"), "{out}");
    let out = ok(&run(vec![
        "issuer", "limit", "--url", i, "c-9", "--limit", "70000",
    ])
    .await);
    assert!(out.contains("limit 70000 available 70000"), "{out}");
    refused(
        &run(vec!["issuer", "unblock", "--url", i, "nope"]).await,
        "unknown_card",
    );
    let out = ok(&run(vec![
        "issuer",
        "statement",
        "--url",
        i,
        "--cardholder",
        "cardholder:jiro@mail.example",
    ])
    .await);
    assert!(
        out.contains("statement of cardholder:jiro@mail.example"),
        "{out}"
    );
    let out = ok(&run(vec![
        "issuer",
        "settlement",
        "--url",
        i,
        "--merchant",
        "merchant:shop.example",
        "--json",
    ])
    .await);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["merchant"], "merchant:shop.example");
    // A wrong token is refused.
    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, "not-the-token-at-all-000\n").expect("wrong");
    let o = tokio::task::spawn_blocking({
        let i = i.to_owned();
        move || warifu(&["issuer", "cards", "--url", &i], &wrong)
    })
    .await
    .expect("join");
    refused(&o, "operator_required");

    // Webhooks: add (the secret printed once), endpoints (never the secret), list, replay.
    let out = ok(&run(vec![
        "merchant",
        "webhooks",
        "add",
        "shop",
        "--endpoint-url",
        "http://127.0.0.1:9/hooks",
        "--url",
        m,
    ])
    .await);
    let secret = out
        .split_whitespace()
        .find(|w| w.starts_with("whsec_"))
        .expect("secret printed")
        .to_owned();
    let out = ok(&run(vec!["merchant", "webhooks", "endpoints", "--url", m]).await);
    assert!(out.contains("shop") && !out.contains(&secret), "{out}");
    refused(
        &run(vec![
            "merchant",
            "webhooks",
            "add",
            "x",
            "--endpoint-url",
            "http://127.0.0.1:9/",
            "--events",
            "order.teleported",
            "--url",
            m,
        ])
        .await,
        "malformed_request",
    );
    let out = ok(&run(vec![
        "merchant",
        "webhooks",
        "list",
        "--url",
        m,
        "--attempts",
    ])
    .await);
    assert!(out.contains("0 pending, 0 failed"), "{out}");
    let out = ok(&run(vec!["merchant", "webhooks", "replay", "--url", m]).await);
    assert!(out.contains("0 deliveries queued again"), "{out}");
    local.stop().await;
}
