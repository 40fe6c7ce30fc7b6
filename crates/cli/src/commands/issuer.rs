//! `warifu issuer`: the issuer's service alone, and the operator's card administration
//! (enroll, block/unblock, limit, cards, statement, settlement), either against a running
//! issuer (`--url`, operator token: the routes under `/v1/admin/cards`, …) or directly on the
//! issuer's database (`--data`/`--db`, e.g. before the service first starts). Both run the
//! rules of `warifu_services::issuer::cards`.
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use warifu_core::Role;
use warifu_core::secret::Secret;
use warifu_services::clock::Clock;
use warifu_services::error::AppError;
use warifu_services::http::dashboard::time_ms as utc;
use warifu_services::issuer;
use warifu_services::issuer::cards;
use warifu_services::protocol::cardholder_issuer::Statement;
use warifu_services::protocol::operator::{
    AdminCard, AdminCardList, CardLimit, EnrollCard, PATH_ADMIN_CARDS, PATH_ADMIN_SETTLEMENT,
    PATH_ADMIN_STATEMENT, PATH_CARD_BLOCK, PATH_CARD_LIMIT, PATH_CARD_UNBLOCK, Settlement,
    card_path,
};
use warifu_store::{Party, Store};

use crate::support::logging::init_logs_as;
use crate::support::service::{
    DbArgs, OperatorArgs, RotateArgs, RotateKemArgs, ServeArgs, answer, ctrl_c, listen, load_keys,
    op_call, open_store, operator_auth, rotate_data_key, rotate_kem_key, runtime,
    watch_revocations,
};
/// `warifu issuer …`
#[derive(Debug, Subcommand)]
pub enum IssuerCommand {
    /// Run the issuer's service.
    Serve(IssuerServeArgs),
    /// Enroll a card. The number is read from WARIFU_CARD_NUMBER or a prompt, never from the
    /// command line.
    Enroll(EnrollArgs),
    /// Block a card: every new authorization on it is declined.
    Block(CardArgs),
    /// Unblock a blocked card.
    Unblock(CardArgs),
    /// Change a card's credit limit (not below what it already uses).
    Limit(LimitArgs),
    /// List cards (last four digits only).
    Cards(CardsArgs),
    /// A cardholder's statement: cards (last four digits only), orders with payment state,
    /// method, instalments, captured and refunded amounts.
    Statement(StatementArgs),
    /// A merchant's settlement: captured − refunded, by UTC day.
    Settlement(SettlementArgs),
    /// Rotate the data key of the card numbers while the service runs: a new key, every
    /// card re-encrypted under it, the old key dropped (optionally a new key-encryption key).
    RotateDataKey(RotateArgs),
    /// Rotate the issuer's KEM key (forward secrecy of the card parts): a new epoch, the
    /// epochs past their grace period deleted.
    RotateKemKey(RotateKemArgs),
}

/// Where an operator command acts: a running issuer (`--url`) or its database.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// A running issuer's base URL, e.g. `http://127.0.0.1:8082` (operator routes).
    #[arg(long, value_name = "URL", conflicts_with_all = ["data", "db"])]
    pub url: Option<String>,
    /// With --url: the operator token (first line of the file); default WARIFU_OPERATOR_TOKEN.
    #[arg(long, value_name = "FILE", requires = "url")]
    pub token_file: Option<PathBuf>,
    /// The issuer's data directory (its SQLite file), instead of --url.
    #[arg(long, value_name = "DIR", conflicts_with = "db")]
    pub data: Option<PathBuf>,
    /// The issuer's database URL (`postgres://…` or `sqlite://PATH`), instead of --url.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// PostgreSQL schema (default: issuer).
    #[arg(long, value_name = "NAME", requires = "db")]
    pub schema: Option<String>,
    /// Print JSON (the body the issuer's route answers).
    #[arg(long)]
    pub json: bool,
}

/// How a command reaches the issuer.
enum Via {
    Http(OperatorArgs),
    Db(Store),
}

impl Target {
    async fn open(&self) -> Result<Via> {
        if let Some(url) = &self.url {
            return Ok(Via::Http(OperatorArgs {
                url: url.clone(),
                token_file: self.token_file.clone(),
                json: self.json,
            }));
        }
        if self.data.is_none() && self.db.is_none() {
            bail!("give --url URL (a running issuer) or --data DIR / --db URL (its database)");
        }
        let db = DbArgs {
            data: self.data.clone(),
            db: self.db.clone(),
            schema: self.schema.clone(),
        };
        Ok(Via::Db(open_store(&db, Party::Issuer).await?))
    }
}

/// Runs `f` on the database, or calls the route (`post` or not, `path`, `body`); prints the
/// answer as JSON or with `text`.
async fn act<T, F>(
    t: &Target,
    post: bool,
    path: &str,
    body: Option<serde_json::Value>,
    f: F,
    text: impl FnOnce(&T) -> String,
) -> Result<()>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
    F: AsyncFnOnce(&Store) -> Result<T, AppError>,
{
    let (value, raw) = match t.open().await? {
        Via::Http(op) => op_call::<T>(&op, post, path, body).await?,
        Via::Db(store) => {
            let r = f(&store).await;
            store.close().await;
            let v = r.map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
            let raw = serde_json::to_string(&v)?;
            (v, raw)
        }
    };
    answer(t.json, &raw, || text(&value))
}

/// `warifu issuer enroll`
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The issuer.
    #[command(flatten)]
    pub target: Target,
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

/// A command on one card.
#[derive(Debug, Args)]
pub struct CardArgs {
    /// The issuer.
    #[command(flatten)]
    pub target: Target,
    /// The card id.
    #[arg(value_name = "CARD_ID")]
    pub card_id: String,
}

/// `warifu issuer limit`
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// The card.
    #[command(flatten)]
    pub card: CardArgs,
    /// The new credit limit in minor units.
    #[arg(long)]
    pub limit: u64,
}

/// `warifu issuer cards`
#[derive(Debug, Args)]
pub struct CardsArgs {
    /// The issuer.
    #[command(flatten)]
    pub target: Target,
    /// Only this cardholder's cards.
    #[arg(long, value_name = "ID")]
    pub cardholder: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Skip this many.
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
}

/// `warifu issuer statement`
#[derive(Debug, Args)]
pub struct StatementArgs {
    /// The issuer.
    #[command(flatten)]
    pub target: Target,
    /// The cardholder's identifier.
    #[arg(long, value_name = "ID")]
    pub cardholder: String,
}

/// `warifu issuer settlement`
#[derive(Debug, Args)]
pub struct SettlementArgs {
    /// The issuer.
    #[command(flatten)]
    pub target: Target,
    /// The merchant's identifier.
    #[arg(long, value_name = "ID")]
    pub merchant: String,
}

/// `warifu issuer serve`
#[derive(Debug, Args)]
pub struct IssuerServeArgs {
    /// Key, data, address, logs and operator access.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// The key center's directory (JSON): the issuer reads the key center's revocation key
    /// from it (needed with --revocations).
    #[arg(long, value_name = "FILE")]
    pub directory: Option<std::path::PathBuf>,
}

/// Runs `warifu issuer …`.
pub fn issuer(cmd: &IssuerCommand) -> Result<()> {
    if let IssuerCommand::Serve(IssuerServeArgs {
        serve: a,
        directory,
    }) = cmd
    {
        init_logs_as(&a.log, a.log_format);
        let (keys, revocations) = load_keys(a, Role::Issuer, directory.as_deref())?;
        let operator = operator_auth(a)?;
        return runtime()?.block_on(async {
            let store = open_store(&a.db, Party::Issuer).await?;
            let state = issuer::IssuerState::new(keys, Arc::new(store), Clock::system());
            state.guard().operator().set(operator);
            watch_revocations(revocations.as_ref(), state.guard());
            let l = listen(a.listen, state.id()).await?;
            issuer::run(l, state, ctrl_c()).await?;
            Ok(())
        });
    }
    if let IssuerCommand::RotateDataKey(a) = cmd {
        return rotate_data_key(a, Party::Issuer);
    }
    if let IssuerCommand::RotateKemKey(a) = cmd {
        return rotate_kem_key(a, Party::Issuer);
    }
    runtime()?.block_on(async {
        match cmd {
            IssuerCommand::Serve(_)
            | IssuerCommand::RotateDataKey(_)
            | IssuerCommand::RotateKemKey(_) => Ok(()),
            IssuerCommand::Enroll(a) => enroll(a).await,
            IssuerCommand::Block(a) | IssuerCommand::Unblock(a) => {
                let blocked = matches!(cmd, IssuerCommand::Block(_));
                let template = if blocked {
                    PATH_CARD_BLOCK
                } else {
                    PATH_CARD_UNBLOCK
                };
                let path = card_path(template, &a.card_id);
                let body = Some(serde_json::json!({}));
                act(
                    &a.target,
                    true,
                    &path,
                    body,
                    async |s: &Store| cards::set_blocked(s, &a.card_id, blocked).await,
                    card_line,
                )
                .await
            }
            IssuerCommand::Limit(a) => {
                let path = card_path(PATH_CARD_LIMIT, &a.card.card_id);
                let body = serde_json::to_value(CardLimit {
                    credit_limit: a.limit,
                })?;
                act(
                    &a.card.target,
                    true,
                    &path,
                    Some(body),
                    async |s: &Store| {
                        cards::set_limit(s, &a.card.card_id, a.limit, Clock::system().now_ms())
                            .await
                    },
                    card_line,
                )
                .await
            }
            IssuerCommand::Cards(a) => {
                let mut path = format!("{PATH_ADMIN_CARDS}?limit={}&offset={}", a.limit, a.offset);
                if let Some(c) = &a.cardholder {
                    cards::party_of(Role::Cardholder, "--cardholder", c)
                        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
                    path.push_str(&format!("&cardholder={c}"));
                }
                act(
                    &a.target,
                    false,
                    &path,
                    None,
                    async |s: &Store| {
                        cards::cards(s, a.cardholder.as_deref(), a.limit, a.offset).await
                    },
                    |l: &AdminCardList| l.cards.iter().map(card_line).collect(),
                )
                .await
            }
            IssuerCommand::Statement(a) => {
                cards::party_of(Role::Cardholder, "--cardholder", &a.cardholder)
                    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
                let path = PATH_ADMIN_STATEMENT.replace("{cardholder}", &a.cardholder);
                act(
                    &a.target,
                    false,
                    &path,
                    None,
                    async |s: &Store| cards::statement_of(s, &a.cardholder).await,
                    statement_lines,
                )
                .await
            }
            IssuerCommand::Settlement(a) => {
                cards::party_of(Role::Merchant, "--merchant", &a.merchant)
                    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
                let path = PATH_ADMIN_SETTLEMENT.replace("{merchant}", &a.merchant);
                act(
                    &a.target,
                    false,
                    &path,
                    None,
                    async |s: &Store| cards::settlement_for(s, &a.merchant).await,
                    settlement_lines,
                )
                .await
            }
        }
    })
}

fn card_number() -> Result<Secret> {
    Ok(match std::env::var("WARIFU_CARD_NUMBER") {
        Ok(v) => Secret::new(v),
        Err(_) => Secret::new(
            rpassword::prompt_password("Card number: ")
                .context("no WARIFU_CARD_NUMBER and no terminal to ask on")?,
        ),
    })
}

async fn enroll(a: &EnrollArgs) -> Result<()> {
    let req = EnrollCard {
        card_id: a.card_id.clone(),
        cardholder: a.cardholder.clone(),
        name: a.name.clone(),
        number: card_number()?.expose().to_owned(),
        expiry: a.expiry.clone(),
        credit_limit: a.limit,
        currency: a.currency.clone(),
    };
    // The same checks before anything leaves this process.
    cards::new_card(&req, 0).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let body = serde_json::to_value(&req)?;
    act(
        &a.target,
        true,
        PATH_ADMIN_CARDS,
        Some(body),
        async |s: &Store| cards::enroll(s, &req, Clock::system().now_ms()).await,
        |c: &AdminCard| {
            format!(
                "enrolled {} for {}: limit {} {}\n",
                c.card_id, c.cardholder, c.credit_limit, c.currency
            )
        },
    )
    .await
}

fn card_line(c: &AdminCard) -> String {
    format!(
        "card {} (…{}) of {} [{}], expires {}: {}, limit {} available {} {}\n",
        c.card_id,
        c.last4,
        c.cardholder,
        c.name,
        c.expiry,
        c.status,
        c.credit_limit,
        c.available,
        c.currency
    )
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
        if e.refunded > 0 {
            out.push_str(&format!(
                " (captured {}, refunded {})",
                e.captured, e.refunded
            ));
        }
        if !e.instalments.is_empty() {
            let parts: Vec<String> = e.instalments.iter().map(u64::to_string).collect();
            out.push_str(&format!(" [{}]", parts.join(" + ")));
        }
        out.push('\n');
    }
    out
}

fn settlement_lines(s: &Settlement) -> String {
    let mut out = format!("settlement of {} (UTC days)\n", s.merchant);
    for d in &s.days {
        out.push_str(&format!(
            "  {}  captured {:>12}  refunded {:>12}  net {:>12}\n",
            d.date, d.captured, d.refunded, d.net
        ));
    }
    out.push_str(&format!(
        "  total       captured {:>12}  refunded {:>12}  net {:>12}\n",
        s.captured, s.refunded, s.net
    ));
    out
}
