//! `warifu wallet` (alias `cardholder`): the cardholder's client from the shell. The card and
//! the destination come from the cardholder's own profile file (or the card from the wallet
//! file), never from the command line and never from a merchant's page; sealing happens in
//! this process.

use std::path::PathBuf;
use std::sync::Arc;
use warifu_core::OrderId;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use warifu_core::PartyId;
use warifu_core::order::{Card, Order, OrderForm, PaymentMethod};
use warifu_services::cardholder::{CancelFate, Cardholder};
use warifu_services::directory::SharedDirectory;
use warifu_services::http::dashboard::money;

use crate::support::flags::DisclosureArgs;
use crate::support::format::print;
use crate::support::keystore;
use crate::support::passphrase::{self, PassphraseArgs};
use crate::support::profile::read_profile;
use crate::support::service::revocation_feed;
use crate::wallet_web::history;
use warifu_core::secret::Secret;

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
    /// payment is refunded; a parcel already delivered is not cancelled (exit status 1).
    Cancel(CancelArgs),
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
    /// The key center's signed revocation list, checked under the revocation key in the
    /// directory: a revoked merchant, issuer or carrier is refused before anything is sent.
    #[arg(long, value_name = "FILE")]
    pub revocations: Option<PathBuf>,
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
    /// Digital goods: no carrier, no destination (`--no-carrier` is the same).
    #[arg(long, alias = "no-carrier")]
    pub digital: bool,
    /// How to pay. Default: lump sum, or instalments when `--instalments N` is given.
    #[arg(long, value_enum, value_name = "METHOD")]
    pub method: Option<MethodArg>,
    /// Pay in this many monthly instalments (2–60).
    #[arg(long, value_name = "N", alias = "installments")]
    pub instalments: Option<u8>,
    /// Print the merchant's answer as JSON.
    #[arg(long)]
    pub json: bool,
    /// What the cardholder allows the merchant's form to disclose.
    #[command(flatten)]
    pub disclosure: DisclosureArgs,
    /// The wallet file whose order history records the order (the one `wallet web` shows).
    /// Default: `wallet.vault` next to the first key file, when it exists.
    #[arg(long, value_name = "FILE")]
    pub wallet: Option<PathBuf>,
    /// The wallet passphrase (first line of this file); else WARIFU_WALLET_PASSPHRASE, or a
    /// prompt on a terminal. Given with a wallet file that does not exist yet, creates it.
    #[arg(long, value_name = "FILE")]
    pub wallet_passphrase_file: Option<PathBuf>,
}

/// A payment method on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// One payment.
    LumpSum,
    /// Monthly instalments (`--instalments N`, default 3).
    Instalments,
    /// Revolving credit.
    Revolving,
    /// With the next bonus.
    Bonus,
}

pub use crate::support::passphrase::WALLET_PASSPHRASE_ENV;

impl BuyArgs {
    /// The payment method the flags ask for.
    fn payment_method(&self) -> Result<PaymentMethod> {
        Ok(match (self.method, self.instalments) {
            (None | Some(MethodArg::Instalments), Some(count)) => {
                PaymentMethod::Installments { count }
            }
            (Some(MethodArg::Instalments), None) => PaymentMethod::Installments { count: 3 },
            (None | Some(MethodArg::LumpSum), None) => PaymentMethod::LumpSum,
            (Some(MethodArg::Revolving), None) => PaymentMethod::Revolving,
            (Some(MethodArg::Bonus), None) => PaymentMethod::Bonus,
            (Some(m), Some(_)) => {
                bail!("--instalments goes only with --method instalments, not {m:?}")
            }
        })
    }
}

/// `warifu wallet status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Key, directory and merchant.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The order id.
    #[arg(long)]
    pub order_id: OrderId,
    /// Print the merchant's answer as JSON (with `status`: also the carrier's tracking).
    #[arg(long)]
    pub json: bool,
}

/// `warifu wallet cancel`
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// Key, directory, merchant and order id.
    #[command(flatten)]
    pub order: StatusArgs,
    /// While the carrier has not answered (`cancelling`), ask again for up to this many
    /// seconds (0: print the first answer).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub wait: u64,
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
    pub order_id: OrderId,
}

fn client(c: &CommonArgs) -> Result<(Cardholder, PartyId)> {
    let keys = keystore::party_key_source(&c.key, &c.keys, &c.passphrase)?;
    if keys.owner().role() != warifu_core::Role::Cardholder {
        bail!(
            "the key file(s) hold the key of {}, not of a cardholder",
            keys.owner()
        );
    }
    let keys = match revocation_feed(c.revocations.as_deref(), Some(&c.directory))? {
        Some(feed) => feed.protect(keys),
        None => keys,
    };
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
                let (wallet, merchant) = client(&a.order.common)?;
                let wait = std::time::Duration::from_secs(a.wait);
                let (o, fate) = wallet
                    .cancel_and_wait(&merchant, &a.order.order_id, wait)
                    .await?;
                if a.order.json {
                    let mut j = serde_json::to_value(&o)?;
                    j["cancel"] = serde_json::to_value(format!("{fate:?}"))?;
                    print(&(serde_json::to_string_pretty(&j)? + "\n"))?;
                } else {
                    let payment = o.payment.as_ref().map(|p| {
                        format!(
                            "; payment {} (captured {}, refunded {} {})",
                            p.state, p.captured, p.refunded, p.currency
                        )
                    });
                    print(&format!(
                        "order {}: {}{}\n{}\n",
                        o.order_id,
                        o.state,
                        payment.unwrap_or_default(),
                        fate.words(&o)
                    ))?;
                }
                match fate {
                    CancelFate::RefusedDelivered | CancelFate::Other => {
                        bail!("order {} was not cancelled", o.order_id)
                    }
                    CancelFate::Pending | CancelFate::Cancelled | CancelFate::Returning => Ok(()),
                }
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

/// A payment method as the issuer's receipt names it (`installments(3)`), in words.
fn method_words(wire: &str) -> String {
    match wire
        .strip_prefix("installments(")
        .and_then(|r| r.strip_suffix(')'))
    {
        Some(n) => format!("{n} monthly instalments"),
        None => wire.replace('_', " "),
    }
}

/// The three states of an order, one per line: merchant, payment, delivery.
fn status_lines(v: &warifu_services::cardholder::OrderView) -> String {
    let o = &v.outcome;
    let mut out = format!("order {}\n  merchant: {}\n", o.order_id, v.merchant_state());
    let payment = match (&o.payment, v.payment_state()) {
        (Some(p), _) => format!(
            "{} — {} authorized, {} captured, {} refunded, {}",
            p.state,
            money(p.amount, &p.currency),
            money(p.captured, &p.currency),
            money(p.refunded, &p.currency),
            method_words(&p.payment_method)
        ),
        (None, Some(s)) => s,
        (None, None) => "-".into(),
    };
    out.push_str(&format!("  payment:  {payment}\n"));
    if let Some(i) = v.instalments().filter(|i| i.len() > 1) {
        let currency = o
            .payment
            .as_ref()
            .map(|p| p.currency.as_str())
            .unwrap_or("");
        let list: Vec<String> = i.iter().map(|x| money(*x, currency)).collect();
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

/// Records the order in the wallet file's history when there is a wallet to record it in; says
/// on standard error why not otherwise (the order itself went through either way).
fn remember(
    a: &BuyArgs,
    file: &std::path::Path,
    pass: Option<Secret>,
    entry: crate::wallet_web::vault::OrderRef,
) {
    let explicit = a.wallet.is_some() || a.wallet_passphrase_file.is_some();
    if !file.exists() && !explicit {
        eprintln!(
            "(no wallet file at {}: the order is in no wallet's history; `--wallet FILE \
             --wallet-passphrase-file FILE` keeps it there)",
            file.display()
        );
        return;
    }
    let pass = match pass.map_or_else(|| wallet_passphrase(a, file), Ok) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("(the order is not recorded in the wallet: {e:#})");
            return;
        }
    };
    match history::record(file, &pass, entry) {
        Ok(()) => eprintln!("(recorded in the wallet {})", file.display()),
        Err(e) => eprintln!("(the order is not recorded in the wallet: {e:#})"),
    }
}

/// The wallet passphrase: `--wallet-passphrase-file`, WARIFU_WALLET_PASSPHRASE, or a prompt.
fn wallet_passphrase(a: &BuyArgs, file: &std::path::Path) -> Result<Secret> {
    if let Some(f) = &a.wallet_passphrase_file {
        return passphrase::passphrase_from_file(f);
    }
    match std::env::var(WALLET_PASSPHRASE_ENV) {
        Ok(v) if !v.is_empty() => return Ok(Secret::new(v)),
        _ => {}
    }
    if !passphrase::can_prompt() {
        bail!(
            "{} is sealed: give --wallet-passphrase-file FILE or set {WALLET_PASSPHRASE_ENV}",
            file.display()
        );
    }
    passphrase::prompt(&format!("Passphrase of the wallet {}: ", file.display()))
}

/// The card of `issuer` kept in the wallet file at `file`.
fn card_from_wallet(file: &std::path::Path, pass: &Secret, issuer: &PartyId) -> Result<Card> {
    if !file.exists() {
        bail!(
            "the profile keeps no card number and there is no wallet file at {}: create it on \
             the wallet page (or name it with --wallet FILE)",
            file.display()
        );
    }
    let v = crate::wallet_web::vault::Vault::open(file, pass)?;
    let c = v
        .data
        .cards
        .iter()
        .find(|c| &c.issuer == issuer)
        .with_context(|| format!("the wallet {} holds no card of {issuer}", file.display()))?;
    Ok(Card {
        number: c.number.clone(),
        expiry: c.expiry,
    })
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
    let method = a.payment_method()?;
    let wallet_file = a
        .wallet
        .clone()
        .unwrap_or_else(|| history::default_path(&a.common.key));
    // A profile without a card (as `warifu up` writes): the issuer's card in the wallet file.
    let (card, pass) = match &profile.card {
        Some(c) => (c.clone(), None),
        None => {
            let pass = wallet_passphrase(a, &wallet_file)?;
            (
                card_from_wallet(&wallet_file, &pass, &profile.issuer)?,
                Some(pass),
            )
        }
    };
    let mut placed: Option<Order> = None;
    let fill = |form: &OrderForm| {
        let picks: Vec<(&str, u32)> = items.iter().map(|(p, q)| (p.as_str(), *q)).collect();
        let (lines, amount) = Order::lines_from(form, &picks)?;
        let order = Order {
            cardholder_name: profile.name.clone(),
            cardholder_address: profile.address.clone(),
            telephone: profile.telephone.clone(),
            fax: profile.fax.clone(),
            card: card.clone(),
            lines,
            amount,
            currency: form.currency.clone(),
            payment_method: method,
            destination: form
                .carrier
                .as_ref()
                .and_then(|_| profile.destination.clone()),
        };
        placed = Some(order.clone());
        Ok(order)
    };
    let p = wallet
        .purchase(&merchant, &profile.issuer, a.digital, fill)
        .await?;
    if let Some(order) = &placed {
        let last4 = warifu_core::card::last4(order.card.number.expose()).to_owned();
        let placed_at = wallet.clock().now_ms();
        let entry = history::entry(
            &p.form,
            order,
            &profile.issuer,
            &last4,
            &p.outcome.state,
            placed_at,
        );
        remember(a, &wallet_file, pass, entry);
    }
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
