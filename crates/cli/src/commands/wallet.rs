//! `warifu wallet` (alias `cardholder`): the cardholder's client from the shell. The card and
//! the destination come from the cardholder's own profile file, never from the command line
//! and never from a merchant's page; sealing happens in this process.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use warifu_core::PartyId;
use warifu_core::order::{Order, OrderForm, PaymentMethod};
use warifu_services::cardholder::Cardholder;
use warifu_services::directory::SharedDirectory;

use crate::support::flags::DisclosureArgs;
use crate::support::format::print;
use crate::support::keystore;
use crate::support::passphrase::PassphraseArgs;
use crate::support::profile::read_profile;

/// `warifu wallet …`
#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Buy: confirm the merchant, get an order form, seal here, submit once, check the
    /// issuer's receipt.
    Buy(BuyArgs),
    /// Show the merchant's catalog (public, unauthenticated).
    Catalog(CommonArgs),
    /// Show an order: the merchant's state, the payment (from the merchant) and the delivery
    /// (from the carrier, with the destination you sealed).
    Status(StatusArgs),
    /// Cancel an order: before shipping the authorization is voided, after capture the
    /// payment is refunded.
    Cancel(StatusArgs),
    /// Ask the carrier where a parcel is (and see the destination you sealed).
    Track(TrackArgs),
    /// Serve the wallet as a web page on 127.0.0.1: cards and addresses in an encrypted
    /// wallet file, the catalog, the order, a disclosure preview, sealing here, the order's
    /// states.
    Web(crate::wallet_web::WebArgs),
}

/// What every wallet command needs.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// The cardholder's key file; repeat it for a Blom and a SOK key from two key centers.
    #[arg(long, value_name = "FILE", required = true)]
    pub key: Vec<PathBuf>,
    /// Key scheme and pairwise-key cache.
    #[command(flatten)]
    pub keys: crate::support::flags::KeyUseArgs,
    /// The key center's directory (JSON).
    #[arg(long, value_name = "FILE")]
    pub directory: PathBuf,
    /// The merchant.
    #[arg(long, value_name = "ID")]
    pub merchant: String,
    /// The passphrase of the key file, if it is sealed.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// `warifu wallet buy`
#[derive(Debug, Args)]
pub struct BuyArgs {
    /// Key, directory and merchant.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The cardholder's profile (JSON: name, address, telephone, card, issuer, destination).
    #[arg(long, value_name = "FILE")]
    pub profile: PathBuf,
    /// What to buy, `PRODUCT-NUMBER:QUANTITY`, repeatable.
    #[arg(long = "item", value_name = "PN:QTY", required = true)]
    pub items: Vec<String>,
    /// Digital goods: no carrier, no destination.
    #[arg(long)]
    pub digital: bool,
    /// Pay in this many monthly instalments (2–60) instead of a lump sum.
    #[arg(long, value_name = "N")]
    pub installments: Option<u8>,
    /// Print the merchant's answer as JSON.
    #[arg(long)]
    pub json: bool,
    /// What the cardholder allows the merchant's form to disclose.
    #[command(flatten)]
    pub disclosure: DisclosureArgs,
}

/// `warifu wallet status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Key, directory and merchant.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The order id.
    #[arg(long)]
    pub order_id: String,
    /// Print the merchant's answer as JSON (with `status`: also the carrier's tracking).
    #[arg(long)]
    pub json: bool,
}

/// `warifu wallet track`
#[derive(Debug, Args)]
pub struct TrackArgs {
    /// Key, directory and merchant.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The carrier.
    #[arg(long, value_name = "ID")]
    pub carrier: String,
    /// The order id.
    #[arg(long)]
    pub order_id: String,
}

fn client(c: &CommonArgs) -> Result<(Cardholder, PartyId)> {
    let keys = keystore::party_key_source(&c.key, &c.keys, &c.passphrase)?;
    if keys.owner().role() != warifu_core::Role::Cardholder {
        bail!(
            "the key file(s) hold the key of {}, not of a cardholder",
            keys.owner()
        );
    }
    let dir = Arc::new(
        SharedDirectory::from_file(&c.directory)
            .with_context(|| format!("cannot read the directory {}", c.directory.display()))?,
    );
    Ok((Cardholder::new(keys, dir), PartyId::parse(&c.merchant)?))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs a wallet command.
pub fn run(cmd: &WalletCommand) -> Result<()> {
    runtime()?.block_on(async {
        match cmd {
            WalletCommand::Buy(a) => buy(a).await,
            WalletCommand::Web(a) => crate::wallet_web::run(a).await,
            WalletCommand::Catalog(c) => {
                let (wallet, merchant) = client(c)?;
                let catalog = wallet.catalog(&merchant).await?;
                print(&(serde_json::to_string_pretty(&catalog)? + "\n"))
            }
            WalletCommand::Status(a) => {
                let (wallet, merchant) = client(&a.common)?;
                let v = wallet.order_view(&merchant, &a.order_id).await?;
                if a.json {
                    let j = serde_json::json!({ "order": v.outcome, "tracking": v.tracking });
                    return print(&(serde_json::to_string_pretty(&j)? + "\n"));
                }
                print(&status_lines(&v))
            }
            WalletCommand::Cancel(a) => {
                let (wallet, merchant) = client(&a.common)?;
                let o = wallet.cancel(&merchant, &a.order_id).await?;
                if a.json {
                    return print(&(serde_json::to_string_pretty(&o)? + "\n"));
                }
                let payment = o.payment.as_ref().map(|p| {
                    format!(
                        "; payment {} (captured {}, refunded {} {})",
                        p.state, p.captured, p.refunded, p.currency
                    )
                });
                print(&format!(
                    "order {}: {}{}\n",
                    o.order_id,
                    o.state,
                    payment.unwrap_or_default()
                ))
            }
            WalletCommand::Track(a) => {
                let (wallet, merchant) = client(&a.common)?;
                let carrier = PartyId::parse(&a.carrier)?;
                let t = wallet.tracking(&carrier, &merchant, &a.order_id).await?;
                let dest = t
                    .destination
                    .as_ref()
                    .map(|d| format!("{}, {}", d.addressee.expose(), d.address.expose()))
                    .unwrap_or_else(|| "-".into());
                print(&format!(
                    "{}: {} {} to {dest}\n",
                    t.order_id, t.tracking_number, t.status
                ))
            }
        }
    })
}

/// The three states of an order, one per line: merchant, payment, delivery.
fn status_lines(v: &warifu_services::cardholder::OrderView) -> String {
    let o = &v.outcome;
    let mut out = format!("order {}\n  merchant: {}\n", o.order_id, v.merchant_state());
    let payment = match (&o.payment, v.payment_state()) {
        (Some(p), _) => format!(
            "{} — {} {} authorized, {} captured, {} refunded, {}",
            p.state, p.amount, p.currency, p.captured, p.refunded, p.payment_method
        ),
        (None, Some(s)) => s,
        (None, None) => "-".into(),
    };
    out.push_str(&format!("  payment:  {payment}\n"));
    if let Some(i) = v.instalments().filter(|i| i.len() > 1) {
        let list: Vec<String> = i.iter().map(u64::to_string).collect();
        out.push_str(&format!("  instalments: {}\n", list.join(" + ")));
    }
    let delivery = match (&v.tracking, v.delivery_state()) {
        (Some(t), _) => {
            let dest = t
                .destination
                .as_ref()
                .map(|d| format!(" to {}, {}", d.addressee.expose(), d.address.expose()))
                .unwrap_or_default();
            format!("{} ({}){dest}", t.status, t.tracking_number)
        }
        (None, Some(s)) => s.to_owned(),
        (None, None) if o.carrier.is_none() => "none (digital goods)".into(),
        (None, None) => "not shipped yet".into(),
    };
    out.push_str(&format!("  delivery: {delivery}\n"));
    if let Some(e) = &v.tracking_error {
        out.push_str(&format!("  (the carrier could not be asked: {e})\n"));
    }
    out
}

fn parse_items(items: &[String]) -> Result<Vec<(String, u32)>> {
    items
        .iter()
        .map(|s| {
            let (pn, q) = s
                .rsplit_once(':')
                .with_context(|| format!("--item {s:?}: expected PRODUCT-NUMBER:QUANTITY"))?;
            let q: u32 = q
                .parse()
                .with_context(|| format!("--item {s:?}: the quantity is not a number"))?;
            Ok((pn.to_owned(), q))
        })
        .collect()
}

async fn buy(a: &BuyArgs) -> Result<()> {
    let (wallet, merchant) = client(&a.common)?;
    let wallet = wallet.with_ceiling(a.disclosure.ceiling()?);
    let profile = read_profile(&a.profile)?;
    let items = parse_items(&a.items)?;
    let method = match a.installments {
        Some(count) => PaymentMethod::Installments { count },
        None => PaymentMethod::LumpSum,
    };
    let fill = |form: &OrderForm| {
        let picks: Vec<(&str, u32)> = items.iter().map(|(p, q)| (p.as_str(), *q)).collect();
        let (lines, amount) = Order::lines_from(form, &picks)?;
        Ok(Order {
            cardholder_name: profile.name.clone(),
            cardholder_address: profile.address.clone(),
            telephone: profile.telephone.clone(),
            fax: profile.fax.clone(),
            card: profile.card.clone(),
            lines,
            amount,
            currency: form.currency.clone(),
            payment_method: method,
            destination: form
                .carrier
                .as_ref()
                .and_then(|_| profile.destination.clone()),
        })
    };
    let p = wallet
        .purchase(&merchant, &profile.issuer, a.digital, fill)
        .await?;
    if a.json {
        return print(&(serde_json::to_string_pretty(&p.outcome)? + "\n"));
    }
    let decision = match &p.outcome.decision {
        Some(d) if d.approved() => format!(
            "approved by {} ({} {}, receipt verified)",
            d.issuer, d.amount, d.currency
        ),
        Some(d) => format!(
            "declined by {}: {} (receipt verified)",
            d.issuer,
            d.reason.map(|r| r.as_str()).unwrap_or("-")
        ),
        None => "no decision yet".into(),
    };
    print(&format!(
        "order {}: {}; {}{}\n",
        p.outcome.order_id,
        p.outcome.state,
        decision,
        p.outcome
            .tracking_number
            .as_deref()
            .map(|t| format!("; tracking {t}"))
            .unwrap_or_default()
    ))
}
