//! What the party commands (`merchant`, `issuer`, `carrier`) share: the database and serve
//! flags, the runtime, opening a store, the party's keys, the operator token, and calling an
//! operator route.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use warifu_core::keysource::KeySource;
use warifu_core::{PartyId, Role};
use warifu_services::directory::Directory;
use warifu_services::http::listen::Limits;
use warifu_services::revocations::{RevocationError, RevocationFeed, WATCH_PERIOD};
use warifu_services::session::operator::OperatorAuth;
use warifu_services::session::server::{Guard, GuardLimits, Rate, ReplayMode};
use warifu_store::{Party, Store, StoreOptions};

use crate::support::files;
use crate::support::format::print;
use crate::support::keystore;
use crate::support::passphrase::PassphraseArgs;

/// Where a party's database is.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// The data directory: the party's SQLite file (`merchant.db`, …) is created in it.
    #[arg(long, value_name = "DIR", required_unless_present = "db")]
    pub data: Option<PathBuf>,
    /// A database URL instead (`postgres://…` or `sqlite://PATH`).
    #[arg(long, value_name = "URL", conflicts_with = "data")]
    pub db: Option<String>,
    /// PostgreSQL schema (default: the party's name).
    #[arg(long, value_name = "NAME", requires = "db")]
    pub schema: Option<String>,
}

/// What every service needs.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The party's key file (from `warifu keycenter issue`); repeat it for a Blom and a SOK
    /// key from two key centers.
    #[arg(long, value_name = "FILE", required = true)]
    pub key: Vec<PathBuf>,
    /// Key scheme and pairwise-key cache.
    #[command(flatten)]
    pub keys: crate::support::flags::KeyUseArgs,
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The passphrase of the key file, if it is sealed.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// Log filter.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    pub log: String,
    /// Admit operators (lifecycle commands, dashboards) with the token in this file (first
    /// line), or in WARIFU_OPERATOR_TOKEN. Without either, every operator route answers
    /// `operator_required`.
    #[arg(long, value_name = "FILE")]
    pub operator_token_file: Option<PathBuf>,
    /// Log format on standard error: `text` or `json` (one object per line).
    #[arg(long, value_enum, default_value_t = crate::support::logging::LogFormat::Text)]
    pub log_format: crate::support::logging::LogFormat,
    /// Connection and handshake limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// The key center's signed revocation list (`warifu keycenter revoke` writes it),
    /// verified under the revocation key named in the directory (`--directory`) and re-read
    /// when the file changes: handshakes, sessions, sealed orders, forwarded parts and
    /// approvals of a revoked identity are refused (`identity_revoked`). A missing file is an
    /// empty list until it appears.
    #[arg(long, value_name = "FILE")]
    pub revocations: Option<PathBuf>,
}

/// How much a service lets its clients hold and cost it.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Open connections at most; further clients wait in the listen backlog.
    #[arg(long, value_name = "N", default_value_t = Limits::BUILTIN.max_connections)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers (also the idle time of a kept-alive
    /// connection).
    #[arg(long, value_name = "SECS", default_value_t = Limits::BUILTIN.header_timeout.as_secs())]
    pub header_timeout: u64,
    /// Seconds a request body may pause between two pieces.
    #[arg(long, value_name = "SECS", default_value_t = Limits::BUILTIN.body_timeout.as_secs())]
    pub body_timeout: u64,
    /// Key derivations per second for identities not yet proven here, per source address
    /// (burst: twice as many); beyond it a hello gets `429 rate_limited`.
    #[arg(long, value_name = "N", default_value_t = GuardLimits::BUILTIN.unknown_per_source.per_second)]
    pub hello_rate_per_source: f64,
    /// Key derivations per second for identities not yet proven here, in all (burst: twice as
    /// many).
    #[arg(long, value_name = "N", default_value_t = GuardLimits::BUILTIN.unknown_global.per_second)]
    pub hello_rate_global: f64,
    /// Where accepted session requests are recorded against replays: `auto` (the database
    /// when it is PostgreSQL, which replicas share; else this process), `memory` or
    /// `database`.
    #[arg(long, value_enum, default_value_t = ReplayArg::Auto)]
    pub replay: ReplayArg,
}

/// `--replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayArg {
    /// The database when it is PostgreSQL, else this process.
    Auto,
    /// This process (one replica).
    Memory,
    /// The party's database (replicas).
    Database,
}

impl LimitArgs {
    /// Makes these the limits of every service this process serves.
    pub(crate) fn apply(&self) -> Result<()> {
        let rate = |per_second: f64, flag: &str| {
            if per_second.is_finite() && per_second > 0.0 {
                Ok(Rate {
                    per_second,
                    burst: (2.0 * per_second).max(1.0),
                })
            } else {
                bail!("{flag} must be a positive number")
            }
        };
        if self.max_connections == 0 || self.header_timeout == 0 || self.body_timeout == 0 {
            bail!("--max-connections, --header-timeout and --body-timeout must be positive");
        }
        Limits::set_process_default(Limits {
            max_connections: self.max_connections,
            header_timeout: Duration::from_secs(self.header_timeout),
            body_timeout: Duration::from_secs(self.body_timeout),
        });
        GuardLimits::set_process_default(GuardLimits {
            unknown_per_source: rate(self.hello_rate_per_source, "--hello-rate-per-source")?,
            unknown_global: rate(self.hello_rate_global, "--hello-rate-global")?,
            replay: match self.replay {
                ReplayArg::Auto => ReplayMode::Auto,
                ReplayArg::Memory => ReplayMode::Memory,
                ReplayArg::Database => ReplayMode::Database,
            },
            ..GuardLimits::BUILTIN
        });
        Ok(())
    }
}
/// How an operator command reaches a running service.
#[derive(Debug, Clone, Args)]
pub struct OperatorArgs {
    /// The service's base URL, e.g. `http://127.0.0.1:8081` (`127.0.0.1:8081` means http).
    #[arg(long, value_name = "URL", value_parser = crate::support::flags::base_url)]
    pub url: String,
    /// The operator token (first line of the file); default WARIFU_OPERATOR_TOKEN. Without
    /// either the request goes without a token (a loopback deployment such as `warifu up`
    /// admits it).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Print the service's JSON answer instead of text.
    #[arg(long)]
    pub json: bool,
}
/// An operator list.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The service and the token.
    #[command(flatten)]
    pub op: OperatorArgs,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Skip this many.
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
}
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub(crate) async fn open_store(db: &DbArgs, party: Party) -> Result<Store> {
    let store = match (&db.data, &db.db) {
        (Some(dir), _) => Store::open_party(dir, party).await,
        (None, Some(url)) => {
            let mut o = StoreOptions::new(url.clone());
            if url.starts_with("postgres") {
                o = o.schema(
                    db.schema
                        .clone()
                        .unwrap_or_else(|| party.as_str().to_owned()),
                );
            }
            Store::open_with(o).await
        }
        (None, None) => bail!("give --data DIR or --db URL"),
    };
    store.with_context(|| format!("cannot open the {} database", party.as_str()))
}

/// A service's revocation list, when it was started with `--revocations`.
pub(crate) type Feed = Option<Arc<RevocationFeed>>;

/// Loads the party's keys for serving, refusing revoked peers when `--revocations` is given
/// (checked under the revocation key of the directory file `directory`); also makes `args`'
/// limits this process's (every serve command loads its keys before it builds its service).
pub(crate) fn load_keys(
    args: &ServeArgs,
    role: Role,
    directory: Option<&Path>,
) -> Result<(Arc<dyn KeySource>, Feed)> {
    args.limits.apply()?;
    let keys = keystore::party_key_source(&args.key, &args.keys, &args.passphrase)?;
    if keys.owner().role() != role {
        bail!(
            "the key file(s) hold the key of {}, not of a {role}",
            keys.owner()
        );
    }
    let feed = revocation_feed(args.revocations.as_deref(), directory)?;
    Ok(match &feed {
        Some(f) => (f.protect(keys), feed),
        None => (keys, None),
    })
}

/// The revocation list of `--revocations FILE`, verified under the revocation key named in
/// the directory file `directory`; `None` without `--revocations`.
pub(crate) fn revocation_feed(
    file: Option<&Path>,
    directory: Option<&Path>,
) -> Result<Option<Arc<RevocationFeed>>> {
    let Some(path) = file else {
        return Ok(None);
    };
    let Some(directory) = directory else {
        bail!("--revocations needs --directory: the key center's revocation key is read from it");
    };
    let key = Directory::load(directory)?
        .revocation_key()
        .cloned()
        .ok_or(RevocationError::NoCenterKey)?;
    let feed = RevocationFeed::open(path, key)?;
    eprintln!(
        "revocations: {} (serial {})",
        path.display(),
        feed.revocations().serial()
    );
    Ok(Some(feed))
}

/// Makes `guard` refuse sessions of revoked peers and watches the revocation file (call it in
/// the runtime).
pub(crate) fn watch_revocations(feed: Option<&Arc<RevocationFeed>>, guard: &Guard) {
    if let Some(f) = feed {
        guard.use_revocations(f.revocations().clone());
        f.watch(WATCH_PERIOD);
        eprintln!(
            "revocations: re-read every {} s when the file changes",
            WATCH_PERIOD.as_secs()
        );
    }
}

pub(crate) async fn listen(addr: SocketAddr, id: &PartyId) -> Result<tokio::net::TcpListener> {
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = l.local_addr().context("cannot read the bound address")?;
    let scheme = warifu_services::http::tls::scheme();
    print(&format!(
        "{id} listening on {scheme}://{bound}\n(list it: warifu keycenter directory add --file DIRECTORY --id {id} --endpoint {scheme}://{bound})\n"
    ))?;
    Ok(l)
}

/// SIGTERM or Ctrl-C: the service stops accepting, finishes in-flight requests (bounded).
pub(crate) async fn ctrl_c() {
    warifu_services::http::service::shutdown_signal().await;
}
/// The environment variable holding an operator token (for `serve` and the operator commands).
pub const OPERATOR_TOKEN_ENV: &str = "WARIFU_OPERATOR_TOKEN";

/// Reads a token: the first line of `file`, else [`OPERATOR_TOKEN_ENV`].
pub(crate) fn read_token(file: Option<&PathBuf>) -> Result<Option<String>> {
    let raw = match file {
        Some(path) => Some(
            String::from_utf8(files::read_file(path)?)
                .with_context(|| format!("{} is not UTF-8", path.display()))?,
        ),
        None => std::env::var(OPERATOR_TOKEN_ENV).ok(),
    };
    let Some(raw) = raw else {
        return Ok(None);
    };
    let token = raw.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        bail!("the operator token is empty");
    }
    Ok(Some(token))
}

/// How a served party admits operators: by the token of `--operator-token-file` or
/// WARIFU_OPERATOR_TOKEN, else not at all (fail closed).
pub(crate) fn operator_auth(a: &ServeArgs) -> Result<OperatorAuth> {
    Ok(match read_token(a.operator_token_file.as_ref())? {
        Some(t) => {
            if t.len() < 16 {
                bail!("the operator token must be at least 16 characters");
            }
            eprintln!("operator routes: enabled (token)");
            OperatorAuth::token(&t)
        }
        None => {
            eprintln!(
                "operator routes: disabled (no --operator-token-file and no {OPERATOR_TOKEN_ENV})"
            );
            OperatorAuth::Disabled
        }
    })
}

/// Calls an operator route of the service at `op.url`; a refusal becomes an error carrying
/// the service's code and message.
pub(crate) async fn op_call<R: serde::de::DeserializeOwned>(
    op: &OperatorArgs,
    post: bool,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(R, String)> {
    let http = warifu_services::session::client::http_client();
    let url = format!("{}{path}", op.url.trim_end_matches('/'));
    let mut req = if post {
        http.post(&url)
    } else {
        http.get(&url)
    };
    if let Some(t) = read_token(op.token_file.as_ref())? {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach {}", op.url))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .with_context(|| format!("reading the answer of {}", op.url))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if !status.is_success() {
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let field = |k: &str| v.get(k).and_then(|c| c.as_str()).unwrap_or("").to_owned();
        // A route this service does not have: say which service answered (a wrong --url).
        let who = match status.as_u16() {
            404 | 405 => crate::support::flags::who_answers(&op.url).await.map(|w| {
                format!(
                    " (the service at {} is {w}: is --url the right one?)",
                    op.url
                )
            }),
            _ => None,
        };
        bail!(
            "{} answered {}: {}: {}{}",
            op.url,
            status.as_u16(),
            field("code"),
            field("message"),
            who.unwrap_or_default()
        );
    }
    let r = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} answered an unexpected body", op.url))?;
    Ok((r, text))
}

/// Prints the raw JSON answer (pretty) or the text lines.
pub(crate) fn answer(json: bool, raw: &str, text: impl FnOnce() -> String) -> Result<()> {
    if json {
        let v: serde_json::Value = serde_json::from_str(raw)?;
        return print(&(serde_json::to_string_pretty(&v)? + "\n"));
    }
    print(&text())
}

/// `warifu issuer|carrier rotate-data-key`.
#[derive(Debug, Clone, Args)]
pub struct RotateArgs {
    /// The database (as the party's `serve` names it; the key-encryption key likewise:
    /// WARIFU_DATA_KEK_FILE, WARIFU_DATA_KEK, else `NAME.kek` beside a SQLite file).
    #[command(flatten)]
    pub db: DbArgs,
    /// Seconds to wait between making the new data key active and re-encrypting: running
    /// services look for a new key every 30 s, so the old keys are dropped only once none
    /// writes under them. 0 when no service uses the database now.
    #[arg(long, value_name = "SECS", default_value_t = warifu_store::atrest::REFRESH.as_secs() + 5)]
    pub grace: u64,
    /// Also re-wrap every data key under the key-encryption key in this file (64 hex digits,
    /// 0600); start the services with it (WARIFU_DATA_KEK_FILE) from then on. A SQLite
    /// database's default `NAME.kek` is replaced by it.
    #[arg(long, value_name = "FILE")]
    pub new_kek_file: Option<PathBuf>,
}

/// `warifu merchant|issuer|carrier rotate-kem-key`.
#[derive(Debug, Clone, Args)]
pub struct RotateKemArgs {
    /// The database (as the party's `serve` names it; the key-encryption key likewise).
    #[command(flatten)]
    pub db: DbArgs,
    /// Seconds an old epoch stays after its successor became current; on a rotation, the
    /// epochs whose successor is older than this are deleted for good (their parts can
    /// never be opened again). At least 120; longer than an order may wait in a merchant's
    /// outbox.
    #[arg(long, value_name = "SECS", default_value_t = warifu_services::kem::DEFAULT_GRACE.as_secs())]
    pub grace: u64,
}

/// Rotates `party`'s KEM key (sealed format version 3): a new epoch becomes current
/// (running services find it within 30 s), the keys of epochs past their grace period are
/// deleted. Prints epochs, never a key.
pub(crate) fn rotate_kem_key(a: &RotateKemArgs, party: Party) -> Result<()> {
    let grace = Duration::from_secs(a.grace);
    if grace < warifu_services::kem::MIN_GRACE {
        bail!(
            "--grace must be at least {} s: a cardholder may seal to the old key for a minute \
             after the rotation",
            warifu_services::kem::MIN_GRACE.as_secs()
        );
    }
    runtime()?.block_on(async {
        let store = Arc::new(open_store(&a.db, party).await?);
        let clock = warifu_services::clock::Clock::system();
        let kem = warifu_services::kem::KemKeys::new(store.clone(), clock.clone());
        // A party never started has no key yet: its first epoch, then the rotation.
        kem.ring(false).await.context("cannot read the KEM keys")?;
        let r = kem
            .rotate(grace, clock.now_ms())
            .await
            .context("cannot rotate the KEM key")?;
        let list = |v: &[u32]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            }
        };
        print(&format!(
            "KEM key epoch {} is current; kept in their grace period: {}; deleted: {}\n",
            r.epoch,
            list(&r.kept),
            list(&r.deleted)
        ))?;
        store.close().await;
        Ok(())
    })
}

/// Rotates `party`'s data key without stopping its services: a new active key, a wait of
/// `--grace`, every row re-encrypted under it, the old keys no row uses dropped, optionally
/// every key re-wrapped under a new key-encryption key. Prints counts, never a key.
pub(crate) fn rotate_data_key(a: &RotateArgs, party: Party) -> Result<()> {
    use warifu_store::atrest::{Kek, KekSource};
    let new_kek = a.new_kek_file.as_deref().map(Kek::read_file).transpose()?;
    runtime()?.block_on(async {
        let store = open_store(&a.db, party).await?;
        let rotated_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let active = store
            .rotate_data_key(rotated_at)
            .await
            .context("cannot rotate the data key")?;
        print(&format!("data key {active} is active\n"))?;
        if a.grace > 0 {
            print(&format!(
                "waiting {} s for running services to write under it…\n",
                a.grace
            ))?;
            tokio::time::sleep(Duration::from_secs(a.grace)).await;
        }
        let moved = store.reencrypt(256).await.context("cannot re-encrypt")?;
        let dropped = store
            .retire_data_keys(rotated_at + 1)
            .await
            .context("cannot drop the old data keys")?;
        let mut text = format!(
            "re-encrypted {moved} rows; dropped {} old data keys\n",
            dropped.len()
        );
        for k in store.data_keys().await? {
            text.push_str(&format!(
                "  {} key {}: {} rows{}\n",
                k.purpose,
                k.key_id,
                k.rows,
                if k.active { " (active)" } else { "" }
            ));
        }
        print(&text)?;
        if let (Some(kek), Some(file)) = (new_kek, &a.new_kek_file) {
            let n = store
                .rewrap_data_keys(&kek)
                .await
                .context("cannot re-wrap the data keys")?;
            // The store's key-encryption key came from `NAME.kek` beside its SQLite file.
            let sqlite = match (&a.db.data, &a.db.db) {
                (Some(dir), _) => Some(Store::party_path(dir, party)),
                (None, Some(url)) => url
                    .strip_prefix("sqlite://")
                    .map(|p| PathBuf::from(p.split('?').next().unwrap_or(p))),
                _ => None,
            };
            let default = sqlite
                .filter(|_| matches!(KekSource::from_env(), Ok(None)))
                .map(|db| db.with_extension("kek"));
            if let Some(d) = &default {
                let mut hex = kek.to_hex();
                hex.push('\n');
                files::write_secret(d, hex.as_bytes(), files::Overwrite::Replace)?;
            }
            print(&format!(
                "re-wrapped {n} keys under the key-encryption key of {}{}; restart the \
                 running services with it\n",
                file.display(),
                default
                    .map(|d| format!(" (now also in {})", d.display()))
                    .unwrap_or_default()
            ))?;
        }
        store.close().await;
        Ok(())
    })
}
