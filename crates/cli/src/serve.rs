//! `warifu merchant|issuer|carrier serve` (one party's service alone), `warifu issuer enroll`
//! and `warifu keycenter directory …` (the key center's directory of institutions); the
//! operators' lifecycle commands (`warifu carrier advance|shipments`, `warifu merchant
//! refund|cancel|orders` over the services' operator routes with the operator token;
//! `warifu issuer statement|settlement` from the issuer's database).

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
use warifu_services::http::dashboard::{date, time_ms as utc};
use warifu_services::merchant::MerchantConfig;
use warifu_services::protocol::cardholder_carrier::TrackingView;
use warifu_services::protocol::cardholder_issuer::Statement;
use warifu_services::protocol::cardholder_merchant::OrderOutcome;
use warifu_services::protocol::merchant_issuer::DisputeAnswer;
use warifu_services::protocol::operator::{self, AdminOrderList, OperatorRefund, ShipmentList};
use warifu_services::session::operator::OperatorAuth;
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
    /// Admit operators (lifecycle commands, dashboards) with the token in this file (first
    /// line), or in WARIFU_OPERATOR_TOKEN. Without either, every operator route answers
    /// `operator_required`.
    #[arg(long, value_name = "FILE")]
    pub operator_token_file: Option<PathBuf>,
    /// Log format on standard error: `text` or `json` (one object per line).
    #[arg(long, value_enum, default_value_t = crate::demo::LogFormat::Text)]
    pub log_format: crate::demo::LogFormat,
}

/// `warifu merchant …`
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum MerchantCommand {
    /// Run the merchant's service.
    Serve(MerchantServeArgs),
    /// Refund a captured order, all of what is left or `--amount` (operator).
    Refund(MerchantRefundArgs),
    /// Cancel an order: voided before capture, refunded after (operator).
    Cancel(OrderArgs),
    /// List the merchant's orders, newest first (operator).
    Orders(ListArgs),
    /// Answer a dispute: show the issuer the carrier's proof of delivery of a delivered
    /// order (no address in it) and print whether the issuer found it valid (operator).
    Dispute(OrderArgs),
}

/// How an operator command reaches a running service.
#[derive(Debug, Clone, Args)]
pub struct OperatorArgs {
    /// The service's base URL, e.g. `http://127.0.0.1:8081`.
    #[arg(long, value_name = "URL")]
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

/// An operator command on one order.
#[derive(Debug, Args)]
pub struct OrderArgs {
    /// The service and the token.
    #[command(flatten)]
    pub op: OperatorArgs,
    /// The order id.
    #[arg(value_name = "ORDER_ID")]
    pub order_id: String,
}

/// `warifu merchant refund`
#[derive(Debug, Args)]
pub struct MerchantRefundArgs {
    /// The order.
    #[command(flatten)]
    pub order: OrderArgs,
    /// The amount in minor units (default: what is left of the capture).
    #[arg(long)]
    pub amount: Option<u64>,
    /// The refund's id: a retry under the same id refunds once (default: derived from the
    /// amount).
    #[arg(long, value_name = "ID")]
    pub refund_id: Option<String>,
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
    /// A cardholder's statement from the issuer's database: cards (last four digits only),
    /// orders with payment state, method and instalments.
    Statement(StatementArgs),
    /// A merchant's settlement from the issuer's database: captured − refunded, by UTC day.
    Settlement(SettlementArgs),
}

/// `warifu issuer statement`
#[derive(Debug, Args)]
pub struct StatementArgs {
    /// The issuer's database.
    #[command(flatten)]
    pub db: DbArgs,
    /// The cardholder's identifier.
    #[arg(long, value_name = "ID")]
    pub cardholder: String,
    /// Print JSON (the same body as `GET /v1/statement`).
    #[arg(long)]
    pub json: bool,
}

/// `warifu issuer settlement`
#[derive(Debug, Args)]
pub struct SettlementArgs {
    /// The issuer's database.
    #[command(flatten)]
    pub db: DbArgs,
    /// The merchant's identifier.
    #[arg(long, value_name = "ID")]
    pub merchant: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
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
    /// Move a shipment on: to `picked_up`, `in_transit`, `delivered` or `returned`. Towards
    /// `delivered` it takes every step still missing, one move each (operator).
    Advance(AdvanceArgs),
    /// List the shipments, newest first (operator; no destinations).
    Shipments(ListArgs),
}

/// `warifu carrier advance`
#[derive(Debug, Args)]
pub struct AdvanceArgs {
    /// The service and the token.
    #[command(flatten)]
    pub op: OperatorArgs,
    /// The tracking number.
    #[arg(value_name = "TRACKING")]
    pub tracking: String,
    /// Where the shipment is now.
    #[arg(long, value_name = "STATUS")]
    pub to: String,
    /// A note (depot, signature) on the last move.
    #[arg(long)]
    pub note: Option<String>,
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
    warifu_services::http::service::shutdown_signal().await;
}

/// Runs `warifu merchant …`.
pub fn merchant(cmd: &MerchantCommand) -> Result<()> {
    let a = match cmd {
        MerchantCommand::Serve(a) => a,
        MerchantCommand::Refund(a) => return merchant_refund(a),
        MerchantCommand::Cancel(a) => return merchant_cancel(a),
        MerchantCommand::Orders(a) => return merchant_orders(a),
        MerchantCommand::Dispute(a) => return merchant_dispute(a),
    };
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
    let operator = operator_auth(&a.serve)?;
    runtime()?.block_on(async {
        let store = open_store(&a.serve.db, Party::Merchant).await?;
        let state = merchant::MerchantState::new(keys, config, Arc::new(store), directory);
        state.guard().operator().set(operator);
        let l = listen(a.serve.listen, state.id()).await?;
        let worker =
            warifu_services::merchant::worker::Worker::start(state.clone(), Default::default());
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
            let operator = operator_auth(a)?;
            runtime()?.block_on(async {
                let store = open_store(&a.db, Party::Issuer).await?;
                let state = issuer::IssuerState::new(keys, Arc::new(store));
                state.guard().operator().set(operator);
                let l = listen(a.listen, state.id()).await?;
                issuer::run(l, state, ctrl_c()).await?;
                Ok(())
            })
        }
        IssuerCommand::Enroll(a) => enroll(a),
        IssuerCommand::Statement(a) => statement(a),
        IssuerCommand::Settlement(a) => settlement(a),
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
    let a = match cmd {
        CarrierCommand::Serve(a) => a,
        CarrierCommand::Advance(a) => return carrier_advance(a),
        CarrierCommand::Shipments(a) => return carrier_shipments(a),
    };
    crate::demo::init_logs_as(&a.log, a.log_format);
    let keys = load_keys(a, Role::Carrier)?;
    let operator = operator_auth(a)?;
    runtime()?.block_on(async {
        let store = open_store(&a.db, Party::Carrier).await?;
        let state = carrier::CarrierState::new(keys, Arc::new(store));
        state.guard().operator().set(operator);
        let l = listen(a.listen, state.id()).await?;
        carrier::run(l, state, ctrl_c()).await?;
        Ok(())
    })
}

// ------------------------------------------------------------------------------------------
// Operator access and the operators' lifecycle commands

/// The environment variable holding an operator token (for `serve` and the operator commands).
pub const OPERATOR_TOKEN_ENV: &str = "WARIFU_OPERATOR_TOKEN";

/// Reads a token: the first line of `file`, else [`OPERATOR_TOKEN_ENV`].
fn read_token(file: Option<&PathBuf>) -> Result<Option<String>> {
    let raw = match file {
        Some(path) => Some(
            String::from_utf8(keystore::read_file(path)?)
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
fn operator_auth(a: &ServeArgs) -> Result<OperatorAuth> {
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
async fn op_call<R: serde::de::DeserializeOwned>(
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
        bail!(
            "{} answered {}: {}: {}",
            op.url,
            status.as_u16(),
            field("code"),
            field("message")
        );
    }
    let r = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} answered an unexpected body", op.url))?;
    Ok((r, text))
}

/// Prints the raw JSON answer (pretty) or the text lines.
fn answer(json: bool, raw: &str, text: impl FnOnce() -> String) -> Result<()> {
    if json {
        let v: serde_json::Value = serde_json::from_str(raw)?;
        return print(&(serde_json::to_string_pretty(&v)? + "\n"));
    }
    print(&text())
}

fn order_line(o: &OrderOutcome) -> String {
    let mut line = format!("order {}: {}", o.order_id, o.state);
    if let Some(p) = &o.payment {
        line.push_str(&format!(
            "; payment {} (captured {}, refunded {} {}; {})",
            p.state, p.captured, p.refunded, p.currency, p.payment_method
        ));
    }
    if let Some(d) = &o.delivery {
        line.push_str(&format!("; delivery {d}"));
    }
    if let Some(t) = &o.tracking_number {
        line.push_str(&format!("; tracking {t}"));
    }
    line + "\n"
}

fn merchant_refund(a: &MerchantRefundArgs) -> Result<()> {
    let body = serde_json::to_value(OperatorRefund {
        amount: a.amount,
        refund_id: a.refund_id.clone(),
    })?;
    let path = format!("/v1/admin/orders/{}/refund", a.order.order_id);
    runtime()?.block_on(async {
        let (o, raw): (OrderOutcome, _) = op_call(&a.order.op, true, &path, Some(body)).await?;
        answer(a.order.op.json, &raw, || order_line(&o))
    })
}

fn merchant_cancel(a: &OrderArgs) -> Result<()> {
    let path = format!("/v1/admin/orders/{}/cancel", a.order_id);
    runtime()?.block_on(async {
        let (o, raw): (OrderOutcome, _) =
            op_call(&a.op, true, &path, Some(serde_json::json!({}))).await?;
        answer(a.op.json, &raw, || order_line(&o))
    })
}

fn merchant_dispute(a: &OrderArgs) -> Result<()> {
    let path = format!("/v1/admin/orders/{}/dispute", a.order_id);
    runtime()?.block_on(async {
        let (d, raw): (DisputeAnswer, _) = op_call(&a.op, true, &path, None).await?;
        answer(a.op.json, &raw, || {
            format!(
                "order {}: the issuer finds the proof of delivery {} (delivered {})\n",
                d.order_id,
                if d.proof_valid { "valid" } else { "NOT valid" },
                utc(d.delivered_at_ms)
            )
        })
    })
}

fn merchant_orders(a: &ListArgs) -> Result<()> {
    let path = format!("/v1/admin/orders?limit={}&offset={}", a.limit, a.offset);
    runtime()?.block_on(async {
        let (l, raw): (AdminOrderList, _) = op_call(&a.op, false, &path, None).await?;
        answer(a.op.json, &raw, || {
            let mut out = String::new();
            for o in &l.orders {
                out.push_str(&format!(
                    "{:<28} {:<18} {:>10} {} {:<12} {}\n",
                    o.order_id,
                    o.state,
                    o.amount,
                    o.currency,
                    o.tracking_number.as_deref().unwrap_or("-"),
                    utc(o.created_at_ms)
                ));
            }
            out.push_str(&format!(
                "{} orders; {} outbox messages pending\n",
                l.orders.len(),
                l.pending_messages
            ));
            out
        })
    })
}

fn tracking_lines(v: &TrackingView) -> String {
    let mut out = format!(
        "{} (order {}): {}\n",
        v.tracking_number, v.order_id, v.status
    );
    for e in &v.events {
        out.push_str(&format!("  {} {:<11}", utc(e.at_ms), e.status));
        if let Some(n) = &e.note {
            out.push_str(&format!(" {n}"));
        }
        out.push('\n');
    }
    if let Some(p) = &v.proof_of_delivery {
        out.push_str(&format!(
            "  proof of delivery for {} at {} (MAC under K({}, {}))\n",
            p.merchant,
            utc(p.delivered_at_ms),
            p.carrier,
            p.issuer
        ));
    }
    out
}

/// The moves from `from` up to `to`: every missing step towards `delivered`, else one move.
fn moves(from: &str, to: &str) -> Vec<String> {
    const ROAD: [&str; 4] = ["accepted", "picked_up", "in_transit", "delivered"];
    match (
        ROAD.iter().position(|s| *s == from),
        ROAD.iter().position(|s| *s == to),
    ) {
        (Some(i), Some(j)) if i < j => ROAD[i + 1..=j].iter().map(|s| (*s).to_owned()).collect(),
        _ => vec![to.to_owned()],
    }
}

fn carrier_advance(a: &AdvanceArgs) -> Result<()> {
    runtime()?.block_on(async {
        let (now, _): (TrackingView, _) = op_call(
            &a.op,
            false,
            &operator::admin_shipment_path(&a.tracking),
            None,
        )
        .await?;
        let steps = moves(&now.status, &a.to);
        let mut last = None;
        for (i, to) in steps.iter().enumerate() {
            let note = if i + 1 == steps.len() {
                a.note.clone()
            } else {
                None
            };
            let body = serde_json::json!({ "to": to, "note": note });
            last = Some(
                op_call::<TrackingView>(
                    &a.op,
                    true,
                    &operator::advance_path(&a.tracking),
                    Some(body),
                )
                .await?,
            );
        }
        let (v, raw) = last.context("no move to make")?;
        answer(a.op.json, &raw, || tracking_lines(&v))
    })
}

fn carrier_shipments(a: &ListArgs) -> Result<()> {
    let path = format!(
        "{}?limit={}&offset={}",
        operator::PATH_ADMIN_SHIPMENTS,
        a.limit,
        a.offset
    );
    runtime()?.block_on(async {
        let (l, raw): (ShipmentList, _) = op_call(&a.op, false, &path, None).await?;
        answer(a.op.json, &raw, || {
            let mut out = String::new();
            for s in &l.shipments {
                out.push_str(&format!(
                    "{:<14} {:<11} {:<28} {:<24} {}\n",
                    s.tracking_number,
                    s.status,
                    s.order_id,
                    s.merchant,
                    utc(s.updated_at_ms)
                ));
            }
            out.push_str(&format!("{} shipments\n", l.shipments.len()));
            out
        })
    })
}

fn statement_lines(s: &Statement) -> String {
    let mut out = format!("statement of {}\n", s.cardholder);
    for c in &s.cards {
        out.push_str(&format!(
            "  card {} (…{}) {}: limit {} available {} {}\n",
            c.card_id, c.last4, c.status, c.credit_limit, c.available, c.currency
        ));
    }
    for e in &s.entries {
        out.push_str(&format!(
            "  {} {:<28} {:<24} {:>10} {} {:<18} {}",
            utc(e.created_at_ms),
            e.order_id,
            e.merchant,
            e.amount,
            e.currency,
            e.state,
            e.payment_method
        ));
        if !e.instalments.is_empty() {
            let parts: Vec<String> = e.instalments.iter().map(u64::to_string).collect();
            out.push_str(&format!(" [{}]", parts.join(" + ")));
        }
        out.push('\n');
    }
    out
}

fn statement(a: &StatementArgs) -> Result<()> {
    let cardholder = PartyId::parse(&a.cardholder)?;
    if cardholder.role() != Role::Cardholder {
        bail!("{cardholder} is not a cardholder identifier");
    }
    runtime()?.block_on(async {
        let store = open_store(&a.db, Party::Issuer).await?;
        let s = issuer::statement::statement_for(&store, &cardholder).await;
        store.close().await;
        let s = s?;
        if a.json {
            return print(&(serde_json::to_string_pretty(&s)? + "\n"));
        }
        print(&statement_lines(&s))
    })
}

fn settlement(a: &SettlementArgs) -> Result<()> {
    let merchant = PartyId::parse(&a.merchant)?;
    if merchant.role() != Role::Merchant {
        bail!("{merchant} is not a merchant identifier");
    }
    runtime()?.block_on(async {
        let store = open_store(&a.db, Party::Issuer).await?;
        let days = warifu_store::IssuerStore::settlement_report(&store, merchant.as_str()).await;
        store.close().await;
        let days = days?;
        if a.json {
            let v: Vec<serde_json::Value> = days
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "date": date(d.day),
                        "captured": d.captured,
                        "refunded": d.refunded,
                        "net": i128::from(d.captured) - i128::from(d.refunded),
                    })
                })
                .collect();
            let j = serde_json::json!({ "merchant": merchant.as_str(), "days": v });
            return print(&(serde_json::to_string_pretty(&j)? + "\n"));
        }
        let mut out = format!("settlement of {merchant} (UTC days)\n");
        let (mut cap, mut re) = (0u128, 0u128);
        for d in &days {
            cap += u128::from(d.captured);
            re += u128::from(d.refunded);
            out.push_str(&format!(
                "  {}  captured {:>12}  refunded {:>12}  net {:>12}\n",
                date(d.day),
                d.captured,
                d.refunded,
                i128::from(d.captured) - i128::from(d.refunded)
            ));
        }
        out.push_str(&format!(
            "  total       captured {cap:>12}  refunded {re:>12}  net {:>12}\n",
            cap as i128 - re as i128
        ));
        print(&out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_moves() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(19_723), "2024-01-01");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(
            moves("accepted", "delivered"),
            ["picked_up", "in_transit", "delivered"]
        );
        assert_eq!(moves("in_transit", "delivered"), ["delivered"]);
        assert_eq!(moves("delivered", "delivered"), ["delivered"]);
        assert_eq!(moves("picked_up", "returned"), ["returned"]);
        assert_eq!(moves("returned", "delivered"), ["delivered"]);
    }
}
