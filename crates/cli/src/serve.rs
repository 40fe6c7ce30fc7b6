//! `warifu merchant|issuer|carrier serve` (one party's service alone), `warifu issuer enroll`
//! and `warifu keycenter directory …` (the key center's directory of institutions).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use warifu_core::keysource::KeySource;
use warifu_core::order::{CatalogItem, Expiry};
use warifu_core::policy::Policy;
use warifu_core::secret::Secret;
use warifu_core::{PartyId, Role};
use warifu_services::directory::{Directory, Entry, SharedDirectory};
use warifu_services::merchant::MerchantConfig;
use warifu_services::{carrier, issuer, merchant};
use warifu_store::{NewCard, Party, Store, StoreOptions};

use crate::cli::PassphraseArgs;
use crate::{keystore, print};

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
    pub keys: crate::cli::KeyUseArgs,
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
    /// Log format on standard error: `text` or `json` (one object per line).
    #[arg(long, value_enum, default_value_t = crate::demo::LogFormat::Text)]
    pub log_format: crate::demo::LogFormat,
}

/// `warifu merchant …`
#[derive(Debug, Subcommand)]
pub enum MerchantCommand {
    /// Run the merchant's service.
    Serve(MerchantServeArgs),
}

/// `warifu merchant serve`
#[derive(Debug, Args)]
pub struct MerchantServeArgs {
    /// Key, database, address.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// The key center's directory (JSON), re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub directory: PathBuf,
    /// An issuer whose cards are accepted (repeatable).
    #[arg(long = "issuer", value_name = "ID", required = true)]
    pub issuers: Vec<String>,
    /// The carrier to ship with (without it: digital goods only).
    #[arg(long, value_name = "ID")]
    pub carrier: Option<String>,
    /// The catalog (JSON array of {product_number, name, unit_price}); default: the example
    /// shop's.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// The disclosure policy (TOML); default: the patent's table.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// `warifu issuer …`
#[derive(Debug, Subcommand)]
pub enum IssuerCommand {
    /// Run the issuer's service.
    Serve(ServeArgs),
    /// Enroll a card. The number is read from WARIFU_CARD_NUMBER or a prompt, never from the
    /// command line.
    Enroll(EnrollArgs),
}

/// `warifu issuer enroll`
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The issuer's database.
    #[command(flatten)]
    pub db: DbArgs,
    /// The issuer's id for the card.
    #[arg(long)]
    pub card_id: String,
    /// The cardholder's identifier (whose key must seal the card part).
    #[arg(long, value_name = "ID")]
    pub cardholder: String,
    /// The name on the card.
    #[arg(long)]
    pub name: String,
    /// The expiry, YYYY-MM.
    #[arg(long, value_name = "YYYY-MM")]
    pub expiry: String,
    /// The credit limit in minor units.
    #[arg(long)]
    pub limit: u64,
    /// The card's currency.
    #[arg(long, default_value = "JPY")]
    pub currency: String,
}

/// `warifu carrier …`
#[derive(Debug, Subcommand)]
pub enum CarrierCommand {
    /// Run the carrier's service.
    Serve(ServeArgs),
}

/// `warifu keycenter directory …`
#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Add (or move) an institution: identifier → endpoint; the role is the identifier's.
    Add {
        /// The directory file (created if missing).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The identifier, e.g. `merchant:shop.example`.
        #[arg(long, value_name = "ID")]
        id: String,
        /// Its service's base URL, e.g. `http://127.0.0.1:8081`.
        #[arg(long, value_name = "URL")]
        endpoint: String,
    },
    /// Remove an institution.
    Remove {
        /// The directory file.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The identifier.
        #[arg(long, value_name = "ID")]
        id: String,
    },
    /// List the institutions.
    List {
        /// The directory file.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
}

/// Runs `warifu keycenter directory …`.
pub fn directory(cmd: &DirectoryCommand) -> Result<()> {
    match cmd {
        DirectoryCommand::Add { file, id, endpoint } => {
            let mut d = if file.exists() {
                Directory::load(file)?
            } else {
                Directory::new()
            };
            let entry = Entry::new(PartyId::parse(id)?, endpoint)?;
            let line = format!("{} ({}) → {}\n", entry.id, entry.role, entry.endpoint);
            d.insert(entry);
            d.save(file)?;
            print(&line)
        }
        DirectoryCommand::Remove { file, id } => {
            let mut d = Directory::load(file)?;
            if !d.remove(&PartyId::parse(id)?) {
                bail!("{id} is not in {}", file.display());
            }
            d.save(file)?;
            Ok(())
        }
        DirectoryCommand::List { file } => {
            let d = Directory::load(file)?;
            let mut out = String::new();
            for e in d.entries() {
                out.push_str(&format!("{:<10} {:<32} {}\n", e.role, e.id, e.endpoint));
            }
            print(&out)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn open_store(db: &DbArgs, party: Party) -> Result<Store> {
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

fn load_keys(args: &ServeArgs, role: Role) -> Result<Arc<dyn KeySource>> {
    let keys = keystore::party_key_source(&args.key, &args.keys, &args.passphrase)?;
    if keys.owner().role() != role {
        bail!(
            "the key file(s) hold the key of {}, not of a {role}",
            keys.owner()
        );
    }
    Ok(keys)
}

async fn listen(addr: SocketAddr, id: &PartyId) -> Result<tokio::net::TcpListener> {
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = l.local_addr().context("cannot read the bound address")?;
    print(&format!(
        "{id} listening on http://{bound}\n(list it: warifu keycenter directory add --file DIRECTORY --id {id} --endpoint http://{bound})\n"
    ))?;
    Ok(l)
}

/// SIGTERM or Ctrl-C: the service stops accepting, finishes in-flight requests (bounded).
async fn ctrl_c() {
    warifu_services::service::shutdown_signal().await;
}

/// Runs `warifu merchant …`.
pub fn merchant(cmd: &MerchantCommand) -> Result<()> {
    let MerchantCommand::Serve(a) = cmd;
    crate::demo::init_logs_as(&a.serve.log, a.serve.log_format);
    let keys = load_keys(&a.serve, Role::Merchant)?;
    let issuers = a
        .issuers
        .iter()
        .map(|s| PartyId::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let carrier = a.carrier.as_deref().map(PartyId::parse).transpose()?;
    let mut config = MerchantConfig::example(issuers[0].clone(), carrier);
    config.accepted_issuers = issuers;
    if let Some(path) = &a.catalog {
        let items: Vec<CatalogItem> = serde_json::from_slice(&keystore::read_file(path)?)
            .with_context(|| format!("{} is not a catalog", path.display()))?;
        config.catalog = items;
    }
    if let Some(path) = &a.policy {
        let text = String::from_utf8(keystore::read_file(path)?)
            .with_context(|| format!("{} is not UTF-8", path.display()))?;
        config.policy = Policy::from_toml(&text)?;
    }
    let directory = Arc::new(SharedDirectory::from_file(&a.directory)?);
    runtime()?.block_on(async {
        let store = open_store(&a.serve.db, Party::Merchant).await?;
        let state = merchant::MerchantState::new(keys, config, Arc::new(store), directory);
        let l = listen(a.serve.listen, state.id()).await?;
        let worker = warifu_services::worker::Worker::start(state.clone(), Default::default());
        merchant::run(l, state, ctrl_c()).await?;
        worker.stop().await;
        Ok(())
    })
}

/// Runs `warifu issuer …`.
pub fn issuer(cmd: &IssuerCommand) -> Result<()> {
    match cmd {
        IssuerCommand::Serve(a) => {
            crate::demo::init_logs_as(&a.log, a.log_format);
            let keys = load_keys(a, Role::Issuer)?;
            runtime()?.block_on(async {
                let store = open_store(&a.db, Party::Issuer).await?;
                let state = issuer::IssuerState::new(keys, Arc::new(store));
                let l = listen(a.listen, state.id()).await?;
                issuer::run(l, state, ctrl_c()).await?;
                Ok(())
            })
        }
        IssuerCommand::Enroll(a) => enroll(a),
    }
}

fn parse_expiry(s: &str) -> Result<Expiry> {
    let (y, m) = s.split_once('-').context("--expiry: expected YYYY-MM")?;
    let e = Expiry {
        year: y.parse().context("--expiry: bad year")?,
        month: m.parse().context("--expiry: bad month")?,
    };
    if !(1..=12).contains(&e.month) {
        bail!("--expiry: the month must be 01–12");
    }
    Ok(e)
}

fn card_number() -> Result<Secret> {
    let n = match std::env::var("WARIFU_CARD_NUMBER") {
        Ok(v) => Secret::new(v),
        Err(_) => Secret::new(
            rpassword::prompt_password("Card number: ")
                .context("no WARIFU_CARD_NUMBER and no terminal to ask on")?,
        ),
    };
    let n = Secret::new(n.expose().replace([' ', '-'], ""));
    warifu_core::order::check_card_number(&n)?;
    Ok(n)
}

fn enroll(a: &EnrollArgs) -> Result<()> {
    let cardholder = PartyId::parse(&a.cardholder)?;
    if cardholder.role() != Role::Cardholder {
        bail!("{cardholder} is not a cardholder identifier");
    }
    let expiry = parse_expiry(&a.expiry)?;
    let number = card_number()?;
    runtime()?.block_on(async {
        let store = open_store(&a.db, Party::Issuer).await?;
        let rec = warifu_store::IssuerStore::enroll_card(
            &store,
            &NewCard {
                card_id: a.card_id.clone(),
                cardholder_id: cardholder.to_string(),
                holder_name: a.name.clone(),
                number,
                expiry,
                credit_limit: a.limit,
                currency: a.currency.clone(),
                now_ms: warifu_services::now_ms(),
            },
        )
        .await?;
        store.close().await;
        print(&format!(
            "enrolled {} for {}: limit {} {}\n",
            rec.card_id, rec.cardholder_id, rec.credit_limit, rec.currency
        ))
    })
}

/// Runs `warifu carrier …`.
pub fn carrier(cmd: &CarrierCommand) -> Result<()> {
    let CarrierCommand::Serve(a) = cmd;
    crate::demo::init_logs_as(&a.log, a.log_format);
    let keys = load_keys(a, Role::Carrier)?;
    runtime()?.block_on(async {
        let store = open_store(&a.db, Party::Carrier).await?;
        let state = carrier::CarrierState::new(keys, Arc::new(store));
        let l = listen(a.listen, state.id()).await?;
        carrier::run(l, state, ctrl_c()).await?;
        Ok(())
    })
}
