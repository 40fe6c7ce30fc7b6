//! `warifu example`: example order forms and orders, to try `seal` and `open` from the shell.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use warifu_core::PartyId;
use warifu_core::order::{
    Card, CatalogItem, Destination, Expiry, Order, OrderForm, PaymentMethod, year_month,
};
use warifu_core::policy::Policy;
use warifu_core::rand::{OsRandom, Randomness};

use crate::support::files::{now, pretty, read_json, read_policy};
use crate::support::format::print;

/// `warifu example …`
#[derive(Debug, Subcommand)]
pub enum ExampleCommand {
    /// Print an example order form (JSON) valid for seven days.
    Form(ExampleFormArgs),
    /// Print an example order (JSON) for a form's catalog, with a test card number.
    Order(ExampleOrderArgs),
}

/// `warifu example form`
#[derive(Debug, Args)]
pub struct ExampleFormArgs {
    /// The merchant.
    #[arg(long, value_name = "ID", default_value = "merchant:shop.example")]
    pub merchant: String,
    /// The accepted issuer.
    #[arg(long, value_name = "ID", default_value = "issuer:bank.example")]
    pub issuer: String,
    /// The carrier.
    #[arg(
        long,
        value_name = "ID",
        default_value = "carrier:post.example",
        conflicts_with = "no_carrier"
    )]
    pub carrier: String,
    /// Digital goods: no carrier and no delivery destination (【0052】), as `wallet buy
    /// --digital` (`--no-carrier` is the same).
    #[arg(long = "digital", alias = "no-carrier")]
    pub no_carrier: bool,
    /// A disclosure policy (TOML) instead of the patent's default.
    #[arg(long, value_name = "POLICY.toml")]
    pub policy: Option<PathBuf>,
}

/// `warifu example order`
#[derive(Debug, Args)]
pub struct ExampleOrderArgs {
    /// Fill the order from this form's catalog (default: the example form's catalog).
    #[arg(long, value_name = "FORM.json")]
    pub form: Option<PathBuf>,
}
/// `warifu example …`
pub fn example(cmd: &ExampleCommand) -> Result<()> {
    match cmd {
        ExampleCommand::Form(a) => print(&pretty(&example_form(a)?)?),
        ExampleCommand::Order(a) => print(&pretty(&example_order(a)?)?),
    }
}

fn example_catalog() -> Vec<CatalogItem> {
    vec![
        CatalogItem {
            product_number: "TEA-001".into(),
            name: "Sencha, 100 g".into(),
            unit_price: 1200,
            ships: true,
        },
        CatalogItem {
            product_number: "CUP-002".into(),
            name: "Yunomi tea cup".into(),
            unit_price: 800,
            ships: true,
        },
        CatalogItem {
            product_number: "EBOOK-003".into(),
            name: "The way of tea (e-book)".into(),
            unit_price: 1500,
            ships: false,
        },
    ]
}

fn example_form(a: &ExampleFormArgs) -> Result<OrderForm> {
    let mut nonce = [0u8; 6];
    OsRandom.fill(&mut nonce)?;
    let order_id = format!(
        "ord-{}",
        nonce.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let policy = match &a.policy {
        Some(p) => read_policy(p)?,
        None => Policy::patent_default(),
    };
    let form = OrderForm {
        order_id: order_id.into(),
        merchant: PartyId::parse(&a.merchant).context("--merchant")?,
        carrier: if a.no_carrier {
            None
        } else {
            Some(PartyId::parse(&a.carrier).context("--carrier")?)
        },
        accepted_issuers: vec![PartyId::parse(&a.issuer).context("--issuer")?],
        currency: "JPY".into(),
        catalog: example_catalog(),
        expires_at: now()? + 7 * 24 * 3600,
        policy,
    };
    form.validate().context("the example form is invalid")?;
    Ok(form)
}

/// A test card number (passes Luhn; issued to no one).
const TEST_CARD: &str = "4111111111111111";

fn example_order(a: &ExampleOrderArgs) -> Result<Order> {
    let form = match &a.form {
        Some(path) => read_json::<OrderForm>(path, "order form")?,
        None => example_form(&ExampleFormArgs {
            merchant: "merchant:shop.example".into(),
            issuer: "issuer:bank.example".into(),
            carrier: "carrier:post.example".into(),
            no_carrier: false,
            policy: None,
        })?,
    };
    // Goods that ship only when the form has a carrier (digital goods otherwise).
    let picks: Vec<(&str, u32)> = form
        .catalog
        .iter()
        .filter(|item| form.carrier.is_some() == item.ships)
        .take(2)
        .zip([2, 1])
        .map(|(item, q)| (item.product_number.as_str(), q))
        .collect();
    let (lines, amount) = Order::lines_from(&form, &picks)?;
    let (year, _) = year_month(now()?);
    Ok(Order {
        cardholder_name: "Hanako Yamada".into(),
        cardholder_address: "1-1 Chiyoda, Chiyoda-ku, Tokyo".into(),
        telephone: "+81-3-0000-0000".into(),
        fax: Some("+81-3-0000-0001".into()),
        card: Card {
            number: TEST_CARD.into(),
            expiry: Expiry {
                year: year.saturating_add(3),
                month: 12,
            },
        },
        lines,
        amount,
        currency: form.currency.clone(),
        payment_method: PaymentMethod::Installments { count: 3 },
        destination: form.carrier.as_ref().map(|_| Destination {
            addressee: "Taro Suzuki".into(),
            address: "2-2 Umeda, Kita-ku, Osaka".into(),
        }),
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_seal_under_the_default_policy() {
        let form = example_form(&ExampleFormArgs {
            merchant: "merchant:m.example".into(),
            issuer: "issuer:i.example".into(),
            carrier: "carrier:c.example".into(),
            no_carrier: true,
            policy: None,
        })
        .expect("form");
        assert!(form.carrier.is_none());
        let path = tempfile::NamedTempFile::new().expect("tmp");
        std::fs::write(path.path(), pretty(&form).expect("json")).expect("write");
        let order = example_order(&ExampleOrderArgs {
            form: Some(path.path().to_owned()),
        })
        .expect("order");
        order.validate(&form, now().expect("now")).expect("valid");
        assert!(order.destination.is_none());
    }
}
