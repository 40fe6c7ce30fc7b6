//! Runs the real `warifu` binary: key center, issuance, seal and open from the shell, and the
//! failures a user meets (wrong passphrase, damaged files, overwriting a master).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Deployment, Options, ok};
use serde_json::Value;

const CARD: &str = "4111111111111111";
const PASS: &str = "correct horse battery staple";
const KEY_PASS: &str = "a different one for the keys";
/// The passphrase of the hybrid's separate SOK center (WARIFU_SOK_PASSPHRASE of every run).
const SOK_PASS: &str = "the SOK center's own passphrase";
const IDS: [&str; 4] = [
    "cardholder:alice@mail.example",
    "merchant:shop.example",
    "issuer:bank.example",
    "carrier:post.example",
];

/// Runs `warifu` with a clean environment for passphrases (but the SOK center's, SOK_PASS)
/// and no terminal on stdin.
fn warifu(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    warifu_env(args, None)
}

fn warifu_env(args: &[&dyn AsRef<std::ffi::OsStr>], pass_env: Option<&str>) -> Output {
    let mut cmd = common::warifu();
    cmd.args(args.iter().map(|a| a.as_ref()));
    cmd.env("WARIFU_SOK_PASSPHRASE", SOK_PASS);
    if let Some(p) = pass_env {
        cmd.env("WARIFU_PASSPHRASE", p);
    }
    cmd.output().expect("run warifu")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a clean failure: exit code 1, one line `warifu: error: …` containing `expect`,
/// no panic, and none of `secrets` in the message. Returns the message.
#[track_caller]
fn fails(o: Output, expect: &str, secrets: &[&str]) -> String {
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "exit code; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("warifu: error: "), "{err}");
    assert!(err.contains(expect), "{expect:?} not in {err:?}");
    for s in secrets {
        assert!(!err.contains(s), "secret in the message: {err}");
    }
    err
}

fn key_path(dir: &Path, id: &str) -> PathBuf {
    let (role, name) = id.split_once(':').expect("role:name");
    dir.join(format!("{role}_{name}.key"))
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// A key center with k = 16 and keys for the four parties of IDS, the master sealed
/// under PASS, the keys under KEY_PASS.
struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    center: PathBuf,
    keys: PathBuf,
    pass_file: PathBuf,
    key_pass_file: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_owned();
    let center = root.join("center");
    let keys = root.join("keys");
    let pass_file = root.join("pass.txt");
    fs::write(&pass_file, format!("{PASS}\n")).expect("write pass");
    let key_pass_file = root.join("key-pass.txt");
    fs::write(&key_pass_file, KEY_PASS).expect("write key pass");
    let out = ok(warifu(&[
        &"keycenter",
        &"init",
        &"--dir",
        &center,
        &"--k",
        &"16",
        &"--passphrase-file",
        &pass_file,
    ]));
    assert!(
        stdout(&out).contains("any 17 key holders"),
        "{}",
        stdout(&out)
    );
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"keycenter",
        &"issue",
        &"--dir",
        &center,
        &"--out",
        &keys,
        &"--passphrase-file",
        &pass_file,
        &"--key-passphrase-file",
        &key_pass_file,
    ];
    args.extend(IDS.iter().map(|s| s as &dyn AsRef<std::ffi::OsStr>));
    let out = ok(warifu(&args));
    assert!(stdout(&out).contains("4 new"), "{}", stdout(&out));
    Setup {
        _tmp: tmp,
        root,
        center,
        keys,
        pass_file,
        key_pass_file,
    }
}

#[test]
fn init_issue_show_seal_open_round_trip() {
    let s = setup();

    // The register lists the four identifiers; every secret file is 0600.
    let register = fs::read_to_string(s.center.join("issued.txt")).expect("register");
    assert_eq!(register.lines().collect::<Vec<_>>(), IDS);
    #[cfg(unix)]
    {
        assert_eq!(mode(&s.center.join("master.key")), 0o600);
        for id in IDS {
            assert_eq!(mode(&key_path(&s.keys, id)), 0o600, "{id}");
        }
    }

    // Issuing an identifier again gives the same key (it opens the orders below) and does not
    // grow the register.
    let out = ok(warifu(&[
        &"keycenter",
        &"issue",
        &"--dir",
        &s.center,
        &"--out",
        &s.keys,
        &"--passphrase-file",
        &s.pass_file,
        &"--key-passphrase-file",
        &s.key_pass_file,
        &IDS[1],
    ]));
    assert!(stdout(&out).contains("0 new, 1 issued before"));
    let register = fs::read_to_string(s.center.join("issued.txt")).expect("register");
    assert_eq!(register.lines().count(), 4);

    // show: the figures for k = 16 and the count of issued identifiers.
    let out = ok(warifu_env(
        &[&"keycenter", &"show", &"--dir", &s.center, &"--json"],
        Some(PASS),
    ));
    let show: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(show["k"], 16);
    assert_eq!(show["issued"], 4);
    assert_eq!(show["master_sealed"], true);
    assert_eq!(show["personal_key_bytes"], 2 * 17 * 16);
    assert_eq!(show["master_bytes"], 2 * 17 * 18 / 2 * 16);
    assert_eq!(show["field_mults_per_issuance"], 2 * 17 * 17);
    assert!(show["issue_seconds"].as_f64().expect("timed") > 0.0);
    let bound = show["bound"].as_str().expect("bound");
    assert!(bound.contains("any 17 key holders") && bound.contains("16 or fewer"));
    // A hybrid center: the SOK master's public facts too, never its scalar (issue 18).
    assert_eq!(show["scheme"], "hybrid");
    assert_eq!(show["sok"]["curve"], "BLS12-381");
    assert_eq!(show["sok"]["master_sealed"], true);
    assert_eq!(show["sok"]["public_key"].as_str().map(str::len), Some(96));
    assert_eq!(show["sok"]["fingerprint"].as_str().map(str::len), Some(19));
    assert!(show["sok"].get("master").is_none() && show["sok"].get("scalar").is_none());
    let text = stdout(&ok(warifu_env(
        &[&"keycenter", &"show", &"--dir", &s.center],
        Some(PASS),
    )));
    assert!(text.contains("hybrid: Blom ⊕ SOK"), "{text}");
    assert!(
        text.contains("center-sok/sok-master.key, a separate center)"),
        "{text}"
    );
    let fingerprint = show["sok"]["fingerprint"].as_str().unwrap_or_default();
    assert!(text.contains(fingerprint), "{text}");
    let text = stdout(&ok(warifu(&[&"keycenter", &"show", &"--k", &"64"])));
    assert!(text.contains("any 65 key holders"), "{text}");
    assert!(text.contains("time to issue one key"), "{text}");

    // Example files, then seal as the cardholder.
    let form = s.root.join("form.json");
    let order = s.root.join("order.json");
    fs::write(&form, ok(warifu(&[&"example", &"form"])).stdout).expect("form");
    fs::write(
        &order,
        ok(warifu(&[&"example", &"order", &"--form", &form])).stdout,
    )
    .expect("order");
    let sealed = s.root.join("sealed.json");
    ok(warifu(&[
        &"seal",
        &"--key",
        &key_path(&s.keys, IDS[0]),
        &"--form",
        &form,
        &"--order",
        &order,
        &"--issuer",
        &"issuer:bank.example",
        &"--out",
        &sealed,
        &"--passphrase-file",
        &s.key_pass_file,
    ]));
    let wire = fs::read_to_string(&sealed).expect("sealed");
    assert!(
        !wire.contains(CARD) && !wire.contains("Umeda"),
        "sealed in clear"
    );

    // Each party sees its part of the patent's table, and only that.
    let merchant = open_view_with_pass(&s, IDS[1], &sealed, &form);
    let issuer = open_view_with_pass(&s, IDS[2], &sealed, &form);
    let carrier = open_view_with_pass(&s, IDS[3], &sealed, &form);
    assert_eq!(merchant["role"], "merchant");
    assert!(
        !merchant.to_string().contains(CARD),
        "merchant sees the card"
    );
    assert!(merchant["fields"].get("card").is_none());
    assert!(merchant["fields"].get("destination").is_none());
    assert_eq!(
        merchant["fields"]["lines"][0]["product_name"],
        "Sencha, 100 g"
    );
    assert_eq!(issuer["fields"]["card"]["number"], CARD);
    assert!(issuer["fields"]["lines"][0].get("product_name").is_none());
    assert_eq!(carrier["fields"]["destination"]["addressee"], "Taro Suzuki");
    assert!(!carrier.to_string().contains(CARD));
    assert!(carrier["fields"].get("lines").is_none());
    for v in [&merchant, &issuer, &carrier] {
        assert_eq!(v["header"]["cardholder"], IDS[0]);
    }

    // The merchant forwards only the issuer's part (binary); the issuer opens it, the
    // carrier cannot.
    let part = s.root.join("issuer.part");
    ok(warifu(&[
        &"forward",
        &"--in",
        &sealed,
        &"--to",
        &"issuer",
        &"--format",
        &"binary",
        &"--out",
        &part,
    ]));
    let fwd = open_view_with_pass(&s, IDS[2], &part, &form);
    assert_eq!(fwd["fields"]["card"]["number"], CARD);
    let out = open_as(&s, IDS[3], &[&"--form", &form, &"--in", &part]);
    fails(out, "no part for the carrier", &[CARD]);

    // The policy must be the one sealed under: the default policy file works, a changed one
    // does not.
    let policy = s.root.join("policy.toml");
    fs::write(&policy, ok(warifu(&[&"policy", &"default"])).stdout).expect("policy");
    let out = open_as(&s, IDS[1], &[&"--policy", &policy, &"--in", &sealed]);
    ok(out);
    let custom = fs::read_to_string(&policy)
        .expect("policy")
        .replace("fax = [\"merchant\", \"issuer\", \"carrier\"]", "fax = []");
    fs::write(&policy, custom).expect("policy");
    let out = open_as(&s, IDS[1], &[&"--policy", &policy, &"--in", &sealed]);
    fails(out, "another disclosure policy", &[CARD]);

    // A binary seal opens too; a tampered one is refused.
    let bin = s.root.join("sealed.bin");
    ok(warifu_env(
        &[
            &"seal",
            &"--key",
            &key_path(&s.keys, IDS[0]),
            &"--form",
            &form,
            &"--order",
            &order,
            &"--format",
            &"binary",
            &"--out",
            &bin,
        ],
        Some(KEY_PASS),
    ));
    assert_eq!(
        open_view_with_pass(&s, IDS[3], &bin, &form)["fields"]["destination"]["address"],
        "2-2 Umeda, Kita-ku, Osaka"
    );
    let mut bytes = fs::read(&bin).expect("bin");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&bin, &bytes).expect("tamper");
    let out = open_as(&s, IDS[3], &[&"--form", &form, &"--in", &bin]);
    fails(out, "decryption failed", &[CARD, "Umeda"]);
    bytes.truncate(last - 10);
    fs::write(&bin, &bytes).expect("truncate");
    let out = open_as(&s, IDS[3], &[&"--in", &bin]);
    fails(out, "truncated", &[]);

    // The cardholder cannot open; nobody opens without the passphrase.
    let out = open_as(&s, IDS[0], &[&"--in", &sealed]);
    fails(out, "is a cardholder", &[]);
    let out = warifu(&[
        &"open",
        &"--key",
        &key_path(&s.keys, IDS[1]),
        &"--in",
        &sealed,
    ]);
    fails(out, "sealed under a passphrase", &[]);
}

/// `warifu open` with the key of `id`, its passphrase from the environment, and `args`.
fn open_as(s: &Setup, id: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let key = key_path(&s.keys, id);
    let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"open", &"--key", &key];
    all.extend_from_slice(args);
    warifu_env(&all, Some(KEY_PASS))
}

fn open_view_with_pass(s: &Setup, id: &str, sealed: &Path, form: &Path) -> Value {
    let out = ok(warifu(&[
        &"open",
        &"--key",
        &key_path(&s.keys, id),
        &"--form",
        &form,
        &"--in",
        &sealed,
        &"--passphrase-file",
        &s.key_pass_file,
    ]));
    serde_json::from_slice(&out.stdout).expect("open prints JSON")
}

#[test]
fn wrong_passphrase_fails_cleanly() {
    let s = setup();
    let wrong = s.root.join("wrong.txt");
    fs::write(&wrong, "tr0ub4dor&3\n").expect("write");
    let out = warifu(&[
        &"keycenter",
        &"issue",
        &"--dir",
        &s.center,
        &"--out",
        &s.keys,
        &"--passphrase-file",
        &wrong,
        &"merchant:other.example",
    ]);
    fails(out, "wrong passphrase", &[PASS, "tr0ub4dor&3"]);
    let out = warifu_env(
        &[&"keycenter", &"show", &"--dir", &s.center],
        Some("tr0ub4dor&3"),
    );
    fails(out, "wrong passphrase", &[PASS, "tr0ub4dor&3"]);
    // Nothing was issued by the failed attempt.
    let register = fs::read_to_string(s.center.join("issued.txt")).expect("register");
    assert!(!register.contains("other.example"));
    let out = warifu(&[&"keycenter", &"show", &"--dir", &s.center]);
    fails(out, "--passphrase-file", &[]);
}

#[test]
fn damaged_key_files_fail_cleanly() {
    let s = setup();
    let bad = s.root.join("bad.key");
    let form = s.root.join("form.json");
    let order = s.root.join("order.json");
    fs::write(&form, ok(warifu(&[&"example", &"form"])).stdout).expect("form");
    fs::write(&order, ok(warifu(&[&"example", &"order"])).stdout).expect("order");
    let seal_with = |key: &Path| {
        warifu(&[
            &"seal",
            &"--key",
            &key,
            &"--form",
            &form,
            &"--order",
            &order,
            &"--out",
            &"-",
            &"--passphrase-file",
            &s.key_pass_file,
        ])
    };
    let card = fs::read(key_path(&s.keys, IDS[0])).expect("key");
    ok(seal_with(&key_path(&s.keys, IDS[0])));
    // Truncated anywhere: a clear error, never a panic.
    for cut in [0, 3, 6, 7, 20, card.len() / 2, card.len() - 1] {
        fs::write(&bad, &card[..cut]).expect("write");
        fails(seal_with(&bad), "cannot open key file", &[CARD, KEY_PASS]);
    }
    fs::write(&bad, &card[..card.len() - 5]).expect("write");
    fails(seal_with(&bad), "truncated", &[CARD, KEY_PASS]);
    let mut v2 = card.clone();
    v2[4] = 2;
    fs::write(&bad, &v2).expect("write");
    fails(
        seal_with(&bad),
        "unsupported key file version 2",
        &[CARD, KEY_PASS],
    );
    fs::write(&bad, b"not a key file at all").expect("write");
    fails(seal_with(&bad), "not a Warifu key file", &[]);
    fails(
        seal_with(&s.root.join("nowhere.key")),
        "cannot read",
        &[CARD],
    );
    fails(
        seal_with(&s.center.join("master.key")),
        "wrong passphrase",
        &[PASS, KEY_PASS],
    );
    let out = warifu_env(
        &[
            &"seal",
            &"--key",
            &s.center.join("master.key"),
            &"--form",
            &form,
            &"--order",
            &order,
            &"--out",
            &"-",
        ],
        Some(PASS),
    );
    fails(out, "not a party's key", &[]);
}

#[test]
fn refuses_to_overwrite_a_master() {
    let s = setup();
    let master = s.center.join("master.key");
    let before = fs::read(&master).expect("master");
    type Arg<'a> = &'a dyn AsRef<std::ffi::OsStr>;
    let plain: Vec<Arg<'_>> = vec![&"--no-passphrase"];
    let sealed: Vec<Arg<'_>> = vec![&"--passphrase-file", &s.pass_file];
    for pass in [plain, sealed] {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"keycenter", &"init", &"--dir", &s.center, &"--k", &"16"];
        args.extend(pass);
        fails(warifu(&args), "refusing to overwrite a master", &[]);
    }
    assert_eq!(
        fs::read(&master).expect("master"),
        before,
        "master unchanged"
    );
    // The issued keys still agree with the master: issuing again adds nothing new.
    let register = fs::read_to_string(s.center.join("issued.txt")).expect("register");
    assert_eq!(register.lines().count(), 4);
}

#[test]
fn unsealed_master_needs_an_explicit_choice() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("kc");
    fails(
        warifu(&[&"keycenter", &"init", &"--dir", &dir, &"--k", &"8"]),
        "--no-passphrase",
        &[],
    );
    assert!(!dir.join("master.key").exists());
    ok(warifu(&[
        &"keycenter",
        &"init",
        &"--dir",
        &dir,
        &"--k",
        &"8",
        &"--no-passphrase",
    ]));
    // The environment variable is a passphrase source too.
    let dir2 = tmp.path().join("kc2");
    ok(warifu_env(
        &[&"keycenter", &"init", &"--dir", &dir2, &"--k", &"8"],
        Some(PASS),
    ));
    let show = ok(warifu_env(
        &[&"keycenter", &"show", &"--dir", &dir2, &"--json"],
        Some(PASS),
    ));
    let v: Value = serde_json::from_slice(&show.stdout).expect("json");
    assert_eq!(v["master_sealed"], true);
    assert_eq!(v["issued"], 0);
    fails(
        warifu(&[&"keycenter", &"init", &"--dir", &dir, &"--k", &"0"]),
        "already exists",
        &[],
    );
    fails(
        warifu(&[
            &"keycenter",
            &"init",
            &"--dir",
            &tmp.path().join("kc3"),
            &"--k",
            &"0",
            &"--no-passphrase",
        ]),
        "--k must be in",
        &[],
    );
}

#[test]
fn predistributed_keys_seal_and_open_without_a_carrier() {
    let tmp = tempfile::tempdir().expect("tmp");
    let keys = tmp.path().join("pre");
    let ids = [
        "cardholder:bob@mail.example",
        "merchant:shop.example",
        "issuer:bank.example",
    ];
    ok(warifu(&[
        &"keycenter",
        &"predistribute",
        &"--out",
        &keys,
        &ids[0],
        &ids[1],
        &ids[2],
    ]));
    #[cfg(unix)]
    assert_eq!(mode(&key_path(&keys, ids[0])), 0o600);
    let before = fs::read(key_path(&keys, ids[1])).expect("table");
    fails(
        warifu(&[
            &"keycenter",
            &"predistribute",
            &"--out",
            &keys,
            &ids[0],
            &ids[1],
        ]),
        "--force",
        &[],
    );
    assert_eq!(fs::read(key_path(&keys, ids[1])).expect("table"), before);

    let form = tmp.path().join("form.json");
    let order = tmp.path().join("order.json");
    fs::write(
        &form,
        ok(warifu(&[&"example", &"form", &"--no-carrier"])).stdout,
    )
    .expect("form");
    fs::write(
        &order,
        ok(warifu(&[&"example", &"order", &"--form", &form])).stdout,
    )
    .expect("order");
    let sealed = tmp.path().join("sealed.json");
    ok(warifu(&[
        &"seal",
        &"--key",
        &key_path(&keys, ids[0]),
        &"--form",
        &form,
        &"--order",
        &order,
        &"--out",
        &sealed,
    ]));
    let out = ok(warifu(&[
        &"open",
        &"--key",
        &key_path(&keys, ids[2]),
        &"--in",
        &sealed,
    ]));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["header"]["scheme"], "predistributed");
    assert!(v["header"]["carrier"].is_null());
    assert_eq!(v["fields"]["card"]["number"], CARD);
}

#[test]
fn bad_inputs_never_echo_the_card_number() {
    let tmp = tempfile::tempdir().expect("tmp");
    let form = tmp.path().join("form.json");
    fs::write(&form, ok(warifu(&[&"example", &"form"])).stdout).expect("form");
    let order_text = stdout(&ok(warifu(&[&"example", &"order", &"--form", &form])));
    // The card number as a JSON number instead of a string: serde would echo it.
    let bad = order_text.replace(&format!("\"{CARD}\""), CARD);
    assert_ne!(bad, order_text);
    let order = tmp.path().join("order.json");
    fs::write(&order, bad).expect("order");
    ok(warifu(&[
        &"keycenter",
        &"predistribute",
        &"--out",
        &tmp.path().join("k"),
        &"cardholder:c",
        &"merchant:shop.example",
    ]));
    let out = warifu(&[
        &"seal",
        &"--key",
        &tmp.path().join("k").join("cardholder_c.key"),
        &"--form",
        &form,
        &"--order",
        &order,
        &"--out",
        &"-",
    ]);
    fails(out, "not a valid order", &[CARD]);
}

/// `keycenter show --dir` on a SOK-only center reports the SOK figures instead of failing on
/// the missing Blom master.
#[test]
fn show_reads_a_sok_only_center() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let kc = tmp.path().join("kc");
    ok(warifu(&[
        &"keycenter",
        &"init",
        &"--dir",
        &kc,
        &"--scheme",
        &"sok",
        &"--no-passphrase",
    ]));
    let out = stdout(&ok(warifu(&[
        &"keycenter",
        &"show",
        &"--dir",
        &kc,
        &"--json",
    ])));
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["scheme"], "sok");
    assert_eq!(v["personal_key_bytes"], 144);
    assert_eq!(v["master_sealed"], false);
    assert_eq!(v["public_key"].as_str().map(str::len), Some(96));
    let text = stdout(&ok(warifu(&[&"keycenter", &"show", &"--dir", &kc])));
    assert!(text.contains("BLS12-381"), "{text}");
    assert!(text.contains("fingerprint"), "{text}");
}

// ------------------------------------------------------------------------------------------
// Operators' lifecycle commands against separately served parties (issue 4).

/// `warifu` without any operator token or passphrase from the environment.
fn lifecycle_cmd(args: &[&str]) -> Command {
    let mut cmd = common::warifu();
    cmd.args(args);
    cmd
}

#[test]
fn operators_advance_shipments_refund_and_read_statements() {
    let d = Deployment::start(Options {
        operator_token: Some("op-token-7Hq2mWv9Lx4".into()),
        ..Options::default()
    });
    let p = |x: &Path| x.to_str().expect("utf-8").to_owned();
    let (data, carrier_url, merchant_url) = (
        d.data.clone(),
        d.carrier_url.clone(),
        d.merchant_url.clone(),
    );
    let tok = p(d.token_file.as_deref().expect("token file"));
    let card = common::HANAKO_CARD;
    let bought = stdout(&ok(d.buy(&["--item", "TEA-001:2", "--installments", "3"])));
    let order_id = common::order_id_of(&bought);

    // Without the token the operator routes answer operator_required.
    fails(
        lifecycle_cmd(&["carrier", "shipments", "--url", &carrier_url])
            .output()
            .expect("run"),
        "operator_required",
        &[],
    );
    let op = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--token-file", &tok]);
        lifecycle_cmd(&all).output().expect("run")
    };
    let listed = stdout(&ok(op(&["carrier", "shipments", "--url", &carrier_url])));
    assert!(
        listed.contains(&order_id) && listed.contains("accepted"),
        "{listed}"
    );
    assert!(
        !listed.contains("Umeda"),
        "the operator list shows no destination"
    );
    let tracking = listed
        .split_whitespace()
        .next()
        .expect("tracking")
        .to_owned();
    // The token also comes from the environment.
    let from_env = lifecycle_cmd(&["carrier", "shipments", "--url", &carrier_url, "--json"])
        .env("WARIFU_OPERATOR_TOKEN", "op-token-7Hq2mWv9Lx4")
        .output()
        .expect("run");
    let v: Value = serde_json::from_slice(&ok(from_env).stdout).expect("json");
    assert_eq!(v["shipments"][0]["tracking_number"], tracking.as_str());

    // To delivered in every missing step, with a proof of delivery.
    let delivered = stdout(&ok(op(&[
        "carrier",
        "advance",
        "--url",
        &carrier_url,
        &tracking,
        "--to",
        "delivered",
        "--note",
        "signed by T. Suzuki",
    ])));
    for needle in [
        "delivered",
        "picked_up",
        "in_transit",
        "signed by T. Suzuki",
        "proof of delivery",
    ] {
        assert!(
            delivered.contains(needle),
            "{needle:?} missing:\n{delivered}"
        );
    }
    fails(
        op(&[
            "carrier",
            "advance",
            "--url",
            &carrier_url,
            &tracking,
            "--to",
            "returned",
        ]),
        "invalid_transition",
        &[],
    );

    // The merchant learns the delivery (its worker polls the carrier) and shows the issuer the
    // proof in a dispute.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    let disputed = loop {
        let o = op(&["merchant", "dispute", "--url", &merchant_url, &order_id]);
        if o.status.success() {
            break stdout(&o);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no proof of delivery at the merchant: {}",
            stderr(&o)
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    assert!(disputed.contains("proof of delivery valid"), "{disputed}");

    // The merchant's operator: list, partial refund; a delivered order cannot be cancelled
    // (issue 12.3), the rest is refunded by a refund without an amount.
    let orders = stdout(&ok(op(&["merchant", "orders", "--url", &merchant_url])));
    assert!(orders.contains(&order_id), "{orders}");
    let refunded = stdout(&ok(op(&[
        "merchant",
        "refund",
        "--url",
        &merchant_url,
        &order_id,
        "--amount",
        "400",
    ])));
    assert!(
        refunded.contains("partially_refunded") && refunded.contains("refunded 400"),
        "{refunded}"
    );
    fails(
        op(&["merchant", "cancel", "--url", &merchant_url, &order_id]),
        "invalid_transition",
        &[],
    );
    let rest = stdout(&ok(op(&[
        "merchant",
        "refund",
        "--url",
        &merchant_url,
        &order_id,
    ])));
    assert!(rest.contains("refunded 2400"), "{rest}");

    // The issuer's books, read from its database.
    let statement = stdout(&ok(lifecycle_cmd(&[
        "issuer",
        "statement",
        "--data",
        &p(&data),
        "--cardholder",
        "cardholder:hanako@mail.example",
    ])
    .output()
    .expect("run")));
    assert!(
        statement.contains("…6467") && !statement.contains(card),
        "{statement}"
    );
    assert!(
        statement.contains("installments(3)") && statement.contains("refunded"),
        "{statement}"
    );
    let settlement = stdout(&ok(lifecycle_cmd(&[
        "issuer",
        "settlement",
        "--data",
        &p(&data),
        "--merchant",
        "merchant:shop.example",
    ])
    .output()
    .expect("run")));
    assert!(
        settlement.contains("captured         2400") && settlement.contains("net            0"),
        "{settlement}"
    );
}

/// Issue 19.1: the merchant writes the form, the cardholder decides what leaves its hands. A
/// form giving the destination to the merchant is refused by `seal`, nothing written, unless
/// the cardholder widens its ceiling knowingly with `--allow`.
#[test]
fn a_greedy_form_is_refused_unless_the_cardholder_allows_it() {
    let s = setup();
    let policy = s.root.join("greedy.toml");
    let greedy = String::from_utf8(ok(warifu(&[&"policy", &"default"])).stdout)
        .expect("utf-8")
        .replace(
            "delivery_destination = [\"carrier\"]",
            "delivery_destination = [\"merchant\", \"carrier\"]",
        );
    fs::write(&policy, greedy).expect("policy");
    let form = s.root.join("form.json");
    let order = s.root.join("order.json");
    fs::write(
        &form,
        ok(warifu(&[&"example", &"form", &"--policy", &policy])).stdout,
    )
    .expect("form");
    fs::write(
        &order,
        ok(warifu(&[&"example", &"order", &"--form", &form])).stdout,
    )
    .expect("order");
    let sealed = s.root.join("sealed.json");
    let seal = |extra: &[&dyn AsRef<std::ffi::OsStr>]| {
        let key = key_path(&s.keys, IDS[0]);
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"seal",
            &"--key",
            &key,
            &"--form",
            &form,
            &"--order",
            &order,
            &"--out",
            &sealed,
            &"--passphrase-file",
            &s.key_pass_file,
        ];
        args.extend_from_slice(extra);
        warifu(&args)
    };
    fails(
        seal(&[]),
        "discloses delivery_destination to the merchant",
        &[CARD, "Umeda"],
    );
    assert!(!sealed.exists(), "nothing sealed");
    fails(
        seal(&[&"--allow", &"card=merchant"]),
        "--allow card=merchant",
        &[CARD],
    );
    ok(seal(&[&"--allow", &"delivery_destination=merchant"]));
    let merchant = open_view_with_pass(&s, IDS[1], &sealed, &form);
    assert!(
        merchant.to_string().contains("Umeda"),
        "widened knowingly, the merchant gets the destination: {merchant}"
    );
}

/// Issue 15: a new master or key passphrase has at least 8 characters (as the wallet's), and
/// the refusal does not echo it.
#[test]
fn a_short_new_passphrase_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let short = tmp.path().join("short.txt");
    fs::write(&short, "abcde\n").expect("write");
    let center = tmp.path().join("kc");
    let out = warifu(&[
        &"keycenter",
        &"init",
        &"--dir",
        &center,
        &"--k",
        &"4",
        &"--passphrase-file",
        &short,
    ]);
    fails(out, "at least 8 characters", &["abcde"]);
    assert!(!center.join("master.key").exists(), "no master written");
}

/// Issue 15: reads are bounded: a device as a key file is refused at once (it used to fill
/// memory), an oversized input is refused before it is read, each naming the file.
#[cfg(unix)]
#[test]
fn reads_are_bounded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let form = tmp.path().join("form.json");
    fs::write(&form, ok(warifu(&[&"example", &"form"])).stdout).expect("form");
    let order = tmp.path().join("order.json");
    fs::write(
        &order,
        ok(warifu(&[&"example", &"order", &"--form", &form])).stdout,
    )
    .expect("order");
    let started = std::time::Instant::now();
    let out = warifu(&[
        &"seal",
        &"--key",
        &"/dev/zero",
        &"--form",
        &form,
        &"--order",
        &order,
        &"--out",
        &tmp.path().join("sealed.json"),
    ]);
    fails(out, "/dev/zero is not a regular file", &[]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let big = tmp.path().join("big.json");
    let f = fs::File::create(&big).expect("create");
    f.set_len(17 << 20).expect("sparse 17 MiB");
    let out = warifu(&[&"example", &"order", &"--form", &big]);
    fails(out, "larger than the 16384 KiB allowed", &[]);
}

/// Issue 19: a Blom center refuses a new identity past k − margin (k = 8: margin 1, limit 7),
/// re-issuing a registered one still works, and `show` counts what remains; a hybrid center
/// goes on past the limit and warns that its keys rest on SOK alone.
#[test]
fn issuing_past_the_collusion_bound() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ids: Vec<String> = (0..8)
        .map(|i| format!("cardholder:c{i}@mail.example"))
        .collect();
    for scheme in ["blom", "hybrid"] {
        let kc = tmp.path().join(scheme);
        let keys = tmp.path().join(format!("{scheme}-keys"));
        ok(warifu(&[
            &"keycenter",
            &"init",
            &"--dir",
            &kc,
            &"--k",
            &"8",
            &"--scheme",
            &scheme,
            &"--no-passphrase",
        ]));
        let issue = |ids: &[String]| {
            let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
                vec![&"keycenter", &"issue", &"--dir", &kc, &"--out", &keys];
            args.extend(ids.iter().map(|s| s as &dyn AsRef<std::ffi::OsStr>));
            warifu(&args)
        };
        let first = ok(issue(&ids[..7]));
        assert!(stderr(&first).is_empty(), "{}", stderr(&first));
        let show = |kc: &Path| -> Value {
            let out = ok(warifu(&[&"keycenter", &"show", &"--dir", &kc, &"--json"]));
            serde_json::from_slice(&out.stdout).expect("json")
        };
        let v = show(&kc);
        assert_eq!(
            (v["issue_limit"].as_u64(), v["remaining"].as_u64()),
            (Some(7), Some(0))
        );
        // Issuing a registered identifier again counts nothing and is never refused.
        ok(issue(&ids[..1]));
        let eighth = issue(&ids[7..]);
        if scheme == "blom" {
            fails(eighth, "recovers the master", &[]);
            assert!(!key_path(&keys, &ids[7]).exists(), "no key past the bound");
        } else {
            let eighth = ok(eighth);
            assert!(
                stderr(&eighth).contains("rest on SOK alone"),
                "{}",
                stderr(&eighth)
            );
            assert!(key_path(&keys, &ids[7]).exists());
        }
    }
}

#[test]
fn revoke_then_reissue_under_a_new_epoch() {
    let s = setup();
    let alice = IDS[0];
    #[cfg(unix)]
    assert_eq!(mode(&s.center.join("revocation.key")), 0o600);
    let revoke = |ids: &[&str]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"keycenter",
            &"revoke",
            &"--dir",
            &s.center,
            &"--passphrase-file",
            &s.pass_file,
        ];
        args.extend(ids.iter().map(|s| s as &dyn AsRef<std::ffi::OsStr>));
        warifu(&args)
    };
    let out = stdout(&ok(revoke(&[alice])));
    assert!(out.contains("serial 1"), "{out}");
    assert!(out.contains(&format!("re-issue it as {alice}~2")), "{out}");
    assert!(out.contains("still count toward Blom's k"), "{out}");
    let list_path = s.center.join("revocations.json");
    let list: Value = serde_json::from_slice(&fs::read(&list_path).expect("list")).expect("json");
    assert_eq!(list["list"]["serial"], 1);
    assert_eq!(list["list"]["revoked"][0], alice);
    #[cfg(unix)]
    assert_eq!(mode(&list_path), 0o644);
    // Revoking it again signs nothing new.
    let out = stdout(&ok(revoke(&[alice])));
    assert!(
        out.contains("already revoked") && out.contains("serial 1"),
        "{out}"
    );

    // The revoked identifier is never issued again; its next epoch is, and counts toward k.
    let issue = |id: &str| {
        warifu(&[
            &"keycenter",
            &"issue",
            &"--dir",
            &s.center,
            &"--out",
            &s.keys,
            &"--passphrase-file",
            &s.pass_file,
            &id,
        ])
    };
    fails(
        issue(alice),
        &format!("issue its next epoch instead, {alice}~2"),
        &[],
    );
    let out = stdout(&ok(issue(&format!("{alice}~2"))));
    assert!(out.contains("still count toward Blom's k"), "{out}");
    assert!(
        s.keys
            .join("cardholder_alice@mail.example%7E2.key")
            .exists()
    );
    let register = fs::read_to_string(s.center.join("issued.txt")).expect("register");
    assert!(register.contains(&format!("{alice}~2")) && register.contains(alice));

    // The directory names the center's key; a service verifies its list under it.
    let directory = s.root.join("directory.json");
    let serve = |list: &Path| {
        warifu(&[
            &"merchant",
            &"serve",
            &"--key",
            &key_path(&s.keys, IDS[1]),
            &"--passphrase-file",
            &s.key_pass_file,
            &"--data",
            &s.root.join("merchant-data"),
            &"--directory",
            &directory,
            &"--issuer",
            &IDS[2],
            &"--revocations",
            &list,
            &"--listen",
            &"127.0.0.1:0",
        ])
    };
    ok(warifu(&[
        &"keycenter",
        &"directory",
        &"add",
        &"--file",
        &directory,
        &"--id",
        &IDS[2],
        &"--endpoint",
        &"http://127.0.0.1:9",
    ]));
    fails(serve(&list_path), "names no revocation key", &[]);
    let out = stdout(&ok(warifu(&[
        &"keycenter",
        &"directory",
        &"center",
        &"--file",
        &directory,
        &"--dir",
        &s.center,
        &"--passphrase-file",
        &s.pass_file,
    ])));
    assert!(out.contains("fingerprint"), "{out}");
    let dir_json: Value =
        serde_json::from_slice(&fs::read(&directory).expect("directory")).expect("json");
    assert!(dir_json["revocation_key"].is_string(), "{dir_json}");
    // A list altered after signing is refused at start.
    let forged = s.root.join("forged.json");
    fs::write(
        &forged,
        fs::read_to_string(&list_path)
            .expect("list")
            .replace(alice, "cardholder:bob@mail.example"),
    )
    .expect("write");
    fails(serve(&forged), "not signed by the key center", &[]);
}

#[test]
fn hybrid_centers_are_separate_by_default() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let (kc, sok, keys) = (root.join("kc"), root.join("kc-sok"), root.join("keys"));
    let blom_pass = root.join("blom-pass.txt");
    let sok_pass = root.join("sok-pass.txt");
    fs::write(&blom_pass, format!("{PASS}\n")).expect("write");
    fs::write(&sok_pass, "another long passphrase\n").expect("write");
    let init = |extra: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"keycenter",
            &"init",
            &"--dir",
            &kc,
            &"--k",
            &"8",
            &"--passphrase-file",
            &blom_pass,
        ];
        args.extend_from_slice(extra);
        warifu(&args)
    };
    // Two centers need two passphrases: the same one is refused, nothing written.
    fails(
        init(&[&"--sok-passphrase-file", &blom_pass]),
        "two passphrases",
        &[PASS],
    );
    assert!(!kc.join("master.key").exists() && !sok.join("sok-master.key").exists());
    let out = stdout(&ok(init(&[&"--sok-passphrase-file", &sok_pass])));
    assert!(
        out.contains("two centers, each under its own passphrase"),
        "{out}"
    );
    assert!(
        !kc.join("sok-master.key").exists(),
        "the Blom center holds no SOK master"
    );
    assert!(sok.join("sok-master.key").exists());
    #[cfg(unix)]
    assert_eq!(mode(&sok.join("sok-master.key")), 0o600);

    // `issue` takes each center: without the SOK center's passphrase it stops (the
    // environment's WARIFU_SOK_PASSPHRASE is not that center's), with both it writes one hybrid
    // key file.
    let issue = |pass: &Path| {
        warifu(&[
            &"keycenter",
            &"issue",
            &"--dir",
            &kc,
            &"--out",
            &keys,
            &"--passphrase-file",
            &blom_pass,
            &"--sok-passphrase-file",
            &pass,
            &"merchant:shop.example",
        ])
    };
    fails(issue(&blom_pass), "wrong passphrase", &[PASS]);
    let out = stdout(&ok(issue(&sok_pass)));
    assert!(out.contains("1 hybrid (Blom + SOK) key(s)"), "{out}");
    let text = stdout(&ok(warifu(&[
        &"keycenter",
        &"show",
        &"--dir",
        &kc,
        &"--passphrase-file",
        &blom_pass,
        &"--sok-passphrase-file",
        &sok_pass,
    ])));
    assert!(text.contains("a separate center"), "{text}");

    // One directory for both is an explicit choice, with a warning.
    let one = root.join("one");
    let o = ok(warifu(&[
        &"keycenter",
        &"init",
        &"--dir",
        &one,
        &"--k",
        &"8",
        &"--no-passphrase",
        &"--single-center",
    ]));
    assert!(stderr(&o).contains("holds both masters"), "{}", stderr(&o));
    assert!(one.join("sok-master.key").exists() && one.join("master.key").exists());
    assert!(!root.join("one-sok").exists());
    // --sok-dir puts the SOK center anywhere; `issue` finds it through sok-center.txt.
    let (kc2, elsewhere) = (root.join("kc2"), root.join("vault").join("sok"));
    ok(warifu(&[
        &"keycenter",
        &"init",
        &"--dir",
        &kc2,
        &"--k",
        &"8",
        &"--no-passphrase",
        &"--sok-dir",
        &elsewhere,
    ]));
    assert!(elsewhere.join("sok-master.key").exists());
    let out = stdout(&ok(warifu(&[
        &"keycenter",
        &"issue",
        &"--dir",
        &kc2,
        &"--out",
        &keys,
        &"cardholder:alice@mail.example",
    ])));
    assert!(out.contains("hybrid (Blom + SOK)"), "{out}");
}

#[test]
fn a_split_sok_master_issues_from_any_t_share_centers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let (kc, keys) = (root.join("kc"), root.join("keys"));
    let out = stdout(&ok(warifu(&[
        &"keycenter",
        &"init",
        &"--dir",
        &kc,
        &"--k",
        &"16",
        &"--passphrase-file",
        &{
            let p = root.join("pass.txt");
            fs::write(&p, PASS).expect("write");
            p
        },
        &"--sok-shares",
        &"2/3",
    ])));
    assert!(
        out.contains("split 2 of 3") && out.contains("never written"),
        "{out}"
    );
    for i in 1..=3 {
        let share = root.join(format!("kc-sok-{i}")).join("sok-share.key");
        assert!(share.exists(), "{}", share.display());
        #[cfg(unix)]
        assert_eq!(mode(&share), 0o600);
    }
    assert!(!kc.join("sok-master.key").exists() && !root.join("kc-sok").exists());
    // One share center is away: the other two issue, and the keys they make agree (an order
    // sealed by the cardholder opens at the merchant and the issuer).
    fs::remove_dir_all(root.join("kc-sok-2")).expect("one center away");
    let issue = |ids: &[&str]| {
        let pass = root.join("pass.txt");
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"keycenter",
            &"issue",
            &"--dir",
            &kc,
            &"--out",
            &keys,
            &"--passphrase-file",
            &pass,
        ];
        args.extend(ids.iter().map(|s| s as &dyn AsRef<std::ffi::OsStr>));
        warifu(&args)
    };
    let out = stdout(&ok(issue(&IDS)));
    assert!(out.contains("combined from share centers 1, 3"), "{out}");
    let (form, order, sealed) = (
        root.join("form.json"),
        root.join("order.json"),
        root.join("sealed.json"),
    );
    fs::write(&form, stdout(&ok(warifu(&[&"example", &"form"])))).expect("form");
    fs::write(
        &order,
        stdout(&ok(warifu(&[&"example", &"order", &"--form", &form]))),
    )
    .expect("order");
    ok(warifu(&[
        &"seal",
        &"--key",
        &key_path(&keys, IDS[0]),
        &"--form",
        &form,
        &"--order",
        &order,
        &"--issuer",
        &IDS[2],
        &"--out",
        &sealed,
    ]));
    for id in [IDS[1], IDS[2]] {
        ok(warifu(&[
            &"open",
            &"--key",
            &key_path(&keys, id),
            &"--form",
            &form,
            &"--in",
            &sealed,
        ]));
    }
    // With a second center away, one share is not enough.
    fs::remove_dir_all(root.join("kc-sok-1")).expect("another away");
    fails(
        issue(&["cardholder:bob@mail.example"]),
        "2 are needed",
        &[PASS],
    );
    fails(
        warifu(&[
            &"keycenter",
            &"init",
            &"--dir",
            &root.join("bad"),
            &"--no-passphrase",
            &"--sok-shares",
            &"4/3",
        ]),
        "T/N",
        &[],
    );
}

#[test]
fn bench_drives_a_deployment_already_running() {
    let d = Deployment::start(Options {
        operator_token: Some("op-token-Bq8zLm3Wv7Kx".into()),
        ..Options::default()
    });
    let tok = d.token_file.clone().expect("token file");
    let bench_keys = d.tmp.path().join("bench-keys");
    let out = d.tmp.path().join("bench-out");
    let bench_with = |keys: &Path, orders: &str, token: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"bench",
            &"--target",
            &d.dir,
            &"--merchant",
            &common::MERCHANT,
            &"--issuer",
            &common::ISSUER,
            &"--keys",
            &keys,
        ];
        args.extend_from_slice(token);
        args.extend_from_slice(&[
            &"--cardholders",
            &"2",
            &"--orders",
            &orders,
            &"--rounds",
            &"1",
            &"--no-baseline",
            &"--out",
            &out,
        ]);
        warifu(&args)
    };
    let bench =
        |keys: &Path, orders: &str| bench_with(keys, orders, &[&"--operator-token-file", &tok]);
    // Without the bench cardholders' keys: a clear error, nothing bought.
    fails(bench(&bench_keys, "4"), "no key file", &[]);
    ok(warifu(&[
        &"keycenter",
        &"issue",
        &"--dir",
        &d.tmp.path().join("kc"),
        &"--out",
        &bench_keys,
        &"cardholder:bench-0@bench.example",
        &"cardholder:bench-1@bench.example",
    ]));
    // Without the operator token the issuer lists no cards: a clear error naming the flag.
    let err = fails(bench_with(&bench_keys, "4", &[]), "operator_required", &[]);
    assert!(err.contains("without --operator-token-file"), "{err}");
    // The first run enrolls the two cards through the issuer's operator route, the second
    // finds them.
    for orders in ["12", "4"] {
        let o = bench(&bench_keys, orders);
        assert!(o.status.success(), "bench failed: {}", stderr(&o));
        let report: Value =
            serde_json::from_slice(&fs::read(out.join("bench.json")).expect("bench.json"))
                .expect("json");
        let f = &report["sealed"];
        assert_eq!(f["name"], "target", "{f}");
        assert_eq!(f["in_process"], false);
        assert_eq!(f["orders_ok"].as_u64(), orders.parse().ok(), "{f}");
        assert_eq!(f["states"]["captured"].as_u64(), orders.parse().ok(), "{f}");
        assert_eq!(f["errors"], serde_json::json!({}), "{f}");
        assert!(report["baseline"].is_null());
    }
    let cards = warifu(&[
        &"issuer",
        &"cards",
        &"--url",
        &d.issuer_url,
        &"--token-file",
        &tok,
        &"--json",
    ]);
    let cards: Value = serde_json::from_slice(&cards.stdout).expect("cards json");
    let bench_cards: Vec<&str> = cards["cards"]
        .as_array()
        .expect("cards")
        .iter()
        .filter_map(|c| c["card_id"].as_str())
        .filter(|id| id.starts_with("bench-card-"))
        .collect();
    assert_eq!(bench_cards, ["bench-card-0", "bench-card-1"]);
}
