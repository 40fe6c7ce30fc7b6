//! `warifu issuer`: the issuer's service alone, card enrollment, and the statement and
//! settlement read from the issuer's database.
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use warifu_core::order::Expiry;
use warifu_core::secret::Secret;
use warifu_core::{PartyId, Role};
use warifu_services::http::dashboard::{date, time_ms as utc};
use warifu_services::issuer;
use warifu_services::protocol::cardholder_issuer::Statement;
use warifu_store::{NewCard, Party};

use crate::support::format::print;
use crate::support::logging::init_logs_as;
use crate::support::service::{
    DbArgs, ServeArgs, ctrl_c, listen, load_keys, open_store, operator_auth, runtime,
};
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
/// Runs `warifu issuer …`.
pub fn issuer(cmd: &IssuerCommand) -> Result<()> {
    match cmd {
        IssuerCommand::Serve(a) => {
            init_logs_as(&a.log, a.log_format);
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
