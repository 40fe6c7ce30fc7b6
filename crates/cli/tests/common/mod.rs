//! Shared set-up of the CLI's integration tests: the `warifu` binary with a clean environment,
//! served parties killed on drop, and a whole deployment from separate commands (key center,
//! issuance, enrolment, the `serve` processes, the directory, the cardholder's profile); the
//! parties' books and their invariants in [`books`].
#![allow(dead_code)]

pub mod books;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use books::Db;
use warifu_services::cardholder::Cardholder;
use warifu_services::directory::SharedDirectory;
use warifu_store::Party;

/// The card number enrolled in a [`Deployment`] and written in its profile.
pub const HANAKO_CARD: &str = "4539148803436467";
/// The cardholder of a [`Deployment`].
pub const HANAKO: &str = "cardholder:hanako@mail.example";
/// The merchant of a [`Deployment`].
pub const MERCHANT: &str = "merchant:shop.example";
/// The issuer of a [`Deployment`].
pub const ISSUER: &str = "issuer:bank.example";
/// The carrier of a [`Deployment`].
pub const CARRIER: &str = "carrier:post.example";

/// `warifu` without any passphrase or operator token from the environment, and no terminal
/// on stdin.
pub fn warifu() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_warifu"));
    c.env_remove("WARIFU_PASSPHRASE")
        .env_remove("WARIFU_SOK_PASSPHRASE")
        .env_remove("WARIFU_OPERATOR_TOKEN")
        .stdin(Stdio::null());
    c
}

/// Asserts that `o` succeeded, showing its output otherwise.
#[track_caller]
pub fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "warifu failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    o
}

/// Runs `c`, asserts it succeeded, and returns its standard output.
#[track_caller]
pub fn stdout_ok(c: &mut Command) -> String {
    let out = c.output().expect("run warifu");
    assert!(
        out.status.success(),
        "{c:?}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A path as the `&str` argument of a command.
pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The order id of a `wallet buy` answer (`order <id>: …`).
pub fn order_id_of(bought: &str) -> String {
    bought
        .split_whitespace()
        .nth(1)
        .expect("order id")
        .trim_end_matches(':')
        .to_owned()
}

/// A key center in `kc` (k = 16, no passphrase) and the keys of `ids` it issued into `keys`.
pub fn key_center<'a>(kc: &Path, keys: &Path, ids: impl IntoIterator<Item = &'a str>) {
    stdout_ok(warifu().args([
        "keycenter",
        "init",
        "--dir",
        path(kc),
        "--k",
        "16",
        "--no-passphrase",
    ]));
    stdout_ok(
        warifu()
            .args(["keycenter", "issue", "--dir", path(kc), "--out", path(keys)])
            .args(ids),
    );
}

/// A served party, killed when dropped.
pub struct Served(pub Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `<cmd> <party> serve …` (`cmd`: [`warifu`] with its environment) and returns it
/// with the URL it printed.
pub fn serve(mut cmd: Command, args: &[String]) -> (Served, String) {
    let mut child = Served(
        cmd.args(args)
            .args(["--log", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    let out = child.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(url) = line.split("listening on ").nth(1) {
            return (child, url.trim().to_owned());
        }
    }
    panic!("{args:?} did not print its address");
}

/// How to start a [`Deployment`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The operator token every party serves with (written to a file), if any.
    pub operator_token: Option<String>,
    /// The merchant's disclosure policy (TOML text), if not the default.
    pub merchant_policy: Option<String>,
    /// The card number as given to `issuer enroll` (WARIFU_CARD_NUMBER); [`HANAKO_CARD`] if
    /// `None`.
    pub enroll_card: Option<String>,
    /// A PostgreSQL URL: every party's database there (a fresh schema per party) under
    /// [`books::TEST_KEK`], instead of SQLite files under `data`.
    pub postgres: Option<String>,
    /// How many `merchant serve` processes serve the merchant's one database (1 if 0).
    pub merchants: usize,
    /// More cardholders, `cardholder:c<i>@mail.example`, each with card
    /// [`books::card_number`]`(i)` enrolled with this limit.
    pub cardholders: Vec<u64>,
}

/// A deployment of separate processes: a key center with k = 16 and no passphrase, keys for
/// the parties, Hanako's card enrolled (limit 100 000), the issuer, carrier and merchant(s)
/// served on SQLite under `data` (or PostgreSQL), all three in the directory file (the
/// merchant at its first process), and Hanako's profile (card [`HANAKO_CARD`], destination
/// "Taro Suzuki, 2-2 Umeda, Osaka").
pub struct Deployment {
    /// The temporary directory holding everything.
    pub tmp: tempfile::TempDir,
    /// The key files.
    pub keys: PathBuf,
    /// The parties' data directory.
    pub data: PathBuf,
    /// The directory file.
    pub dir: PathBuf,
    /// Hanako's wallet profile.
    pub profile: PathBuf,
    /// The operator token file, if the parties have one.
    pub token_file: Option<PathBuf>,
    /// The issuer's URL.
    pub issuer_url: String,
    /// The carrier's URL.
    pub carrier_url: String,
    /// The merchant's URL (its first process).
    pub merchant_url: String,
    /// Where the parties' databases are.
    pub db: Db,
    /// The merchant's processes, all over its one database, and their URLs.
    pub merchants: Vec<(Served, String)>,
    /// The ids of [`Options::cardholders`].
    pub cardholders: Vec<String>,
    _served: [Served; 2],
}

impl Deployment {
    /// Starts a deployment as `opts` says.
    pub fn start(opts: Options) -> Deployment {
        static DEPLOYMENTS: AtomicU32 = AtomicU32::new(0);
        let tmp = tempfile::tempdir().expect("tmp");
        let (kc, keys, data) = (
            tmp.path().join("kc"),
            tmp.path().join("keys"),
            tmp.path().join("data"),
        );
        let dir = tmp.path().join("directory.json");
        // PostgreSQL stores need a key-encryption key: the test's.
        let (db, cmd): (Db, fn() -> Command) = match &opts.postgres {
            Some(url) => (
                Db::Postgres {
                    url: url.clone(),
                    prefix: format!(
                        "cli_{}_{}",
                        std::process::id(),
                        DEPLOYMENTS.fetch_add(1, Ordering::Relaxed)
                    ),
                },
                books::warifu,
            ),
            None => (Db::Sqlite(data.clone()), warifu),
        };
        let cardholders: Vec<String> = (0..opts.cardholders.len())
            .map(|i| format!("cardholder:c{i}@mail.example"))
            .collect();
        let ids = [MERCHANT, ISSUER, CARRIER, HANAKO].into_iter();
        key_center(
            &kc,
            &keys,
            ids.chain(cardholders.iter().map(String::as_str)),
        );
        // (id, card id, name, number, limit).
        let hanako_card = opts
            .enroll_card
            .as_deref()
            .unwrap_or(HANAKO_CARD)
            .to_owned();
        let hanako = (
            HANAKO.to_owned(),
            "c1".to_owned(),
            "Hanako Yamada",
            hanako_card,
            100_000,
        );
        let others = cardholders.iter().zip(&opts.cardholders).enumerate();
        let others = others.map(|(i, (id, limit))| {
            let card = books::card_number(i);
            (
                id.clone(),
                format!("card-{i}"),
                books::CARDHOLDER_NAME,
                card,
                *limit,
            )
        });
        for (id, card_id, name, number, limit) in std::iter::once(hanako).chain(others) {
            stdout_ok(
                cmd()
                    .args(["issuer", "enroll"])
                    .args(db.args(Party::Issuer))
                    .args(["--card-id", &card_id, "--cardholder", &id, "--name", name])
                    .args(["--expiry", "2035-07", "--limit", &limit.to_string()])
                    .env("WARIFU_CARD_NUMBER", number),
            );
        }
        let token_file = opts.operator_token.as_ref().map(|t| {
            let file = tmp.path().join("operator.token");
            fs::write(&file, format!("{t}\n")).expect("token");
            file
        });
        let serve_party = |party: Party, key: &str, extra: &[&str]| {
            let mut args = vec![party.as_str().to_owned(), "serve".into(), "--key".into()];
            args.push(path(&keys.join(key)).to_owned());
            args.extend(db.args(party));
            args.extend(extra.iter().map(|s| s.to_string()));
            if let Some(t) = &token_file {
                args.extend(["--operator-token-file".into(), path(t).to_owned()]);
            }
            serve(cmd(), &args)
        };
        let add = |id: &str, url: &str| {
            stdout_ok(warifu().args([
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
        };
        // The carrier reads the directory (re-read as the others are added) to ask the issuer
        // about a payment and to push deliveries to the merchant: the file exists before it
        // starts.
        let (issuer, issuer_url) = serve_party(Party::Issuer, "issuer_bank.example.key", &[]);
        add(ISSUER, &issuer_url);
        let (carrier, carrier_url) = serve_party(
            Party::Carrier,
            "carrier_post.example.key",
            &["--directory", path(&dir)],
        );
        add(CARRIER, &carrier_url);
        let policy = opts.merchant_policy.as_ref().map(|text| {
            let file = tmp.path().join("merchant-policy.toml");
            fs::write(&file, text).expect("policy");
            file
        });
        let mut merchant_extra = vec![
            "--directory",
            path(&dir),
            "--issuer",
            ISSUER,
            "--carrier",
            CARRIER,
        ];
        if let Some(p) = &policy {
            merchant_extra.extend(["--policy", path(p)]);
        }
        let merchants: Vec<_> = (0..opts.merchants.max(1))
            .map(|_| {
                serve_party(
                    Party::Merchant,
                    "merchant_shop.example.key",
                    &merchant_extra,
                )
            })
            .collect();
        let merchant_url = merchants[0].1.clone();
        add(MERCHANT, &merchant_url);
        let profile = tmp.path().join("hanako.json");
        fs::write(
            &profile,
            format!(
                r#"{{"name": "Hanako Yamada", "address": "1-1 Chiyoda, Tokyo", "telephone": "+81-3-0000-0000",
            "card": {{"number": "{HANAKO_CARD}", "expiry": {{"year": 2035, "month": 7}}}},
            "issuer": "{ISSUER}",
            "destination": {{"addressee": "Taro Suzuki", "address": "2-2 Umeda, Osaka"}}}}"#
            ),
        )
        .expect("profile");
        Deployment {
            tmp,
            keys,
            data,
            dir,
            profile,
            token_file,
            issuer_url,
            carrier_url,
            merchant_url,
            db,
            merchants,
            cardholders,
            _served: [issuer, carrier],
        }
    }

    /// `warifu` as the deployment's services run it: with the test's key-encryption key on
    /// PostgreSQL ([`books::TEST_KEK`]).
    pub fn cmd(&self) -> Command {
        match self.db {
            Db::Postgres { .. } => books::warifu(),
            Db::Sqlite(_) => warifu(),
        }
    }

    /// The cardholder `id` (Hanako or one of [`Deployment::cardholders`]) as an in-process
    /// client, finding the parties in the directory file as it is now.
    pub fn cardholder(&self, id: &str) -> Cardholder {
        let dir = SharedDirectory::from_file(&self.dir).expect("directory");
        books::load_cardholder(&self.keys, id, &Arc::new(dir))
    }

    /// The key file of a party's key (`merchant_shop.example.key`, …).
    pub fn key(&self, name: &str) -> String {
        path(&self.keys.join(name)).to_owned()
    }

    /// Hanako's key file.
    pub fn hanako_key(&self) -> String {
        self.key("cardholder_hanako@mail.example.key")
    }

    /// `warifu keycenter directory add` of `id` at `url` to the deployment's directory.
    pub fn directory_add(&self, id: &str, url: &str) {
        stdout_ok(warifu().args([
            "keycenter",
            "directory",
            "add",
            "--file",
            path(&self.dir),
            "--id",
            id,
            "--endpoint",
            url,
        ]));
    }

    /// `warifu wallet buy` from the merchant as Hanako, with `extra` arguments (items, …).
    pub fn buy(&self, extra: &[&str]) -> Output {
        let key = self.hanako_key();
        let mut args = vec![
            "wallet",
            "buy",
            "--key",
            &key,
            "--directory",
            path(&self.dir),
            "--merchant",
            MERCHANT,
            "--profile",
            path(&self.profile),
        ];
        args.extend_from_slice(extra);
        warifu().args(args).output().expect("run")
    }

    /// `warifu wallet <cmd>` (status, cancel) of an order, as Hanako; its standard output.
    pub fn wallet(&self, cmd: &str, order_id: &str) -> String {
        stdout_ok(warifu().args([
            "wallet",
            cmd,
            "--key",
            &self.hanako_key(),
            "--directory",
            path(&self.dir),
            "--merchant",
            MERCHANT,
            "--order-id",
            order_id,
        ]))
    }
}

/// Every file under `dir` (recursively).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// What must never be in clear in a party's or the wallet's files: Hanako's card number and
/// the demo destination.
pub const IN_CLEAR: [&str; 3] = [HANAKO_CARD, "Taro Suzuki", "2-2 Umeda"];

/// The files under `dir` holding one of [`IN_CLEAR`] in clear.
pub fn leaks(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for f in files_under(dir) {
        let bytes = fs::read(&f).unwrap_or_default();
        for s in IN_CLEAR {
            if bytes.windows(s.len()).any(|w| w == s.as_bytes()) {
                found.push(format!("{} holds {s:?}", f.display()));
            }
        }
    }
    found
}

/// The files under `dir` not 0600 (but those named in `public`) and the directories not 0700,
/// `dir` included.
#[cfg(unix)]
pub fn not_private(dir: &Path, public: &[&str]) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    let mut bad = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    for f in files_under(dir) {
        dirs.extend(f.parent().map(Path::to_owned));
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if mode(&f) != 0o600 && !public.contains(&name) {
            bad.push(format!("{} is {:o}", f.display(), mode(&f)));
        }
    }
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        if mode(&d) != 0o700 {
            bad.push(format!("{}/ is {:o}", d.display(), mode(&d)));
        }
    }
    bad
}
