//! The merchant's order form and the cardholder's order (every field of Fig. 2), validated.

use serde::{Deserialize, Serialize};

pub use crate::id::OrderId;
use crate::id::{PartyId, Role};
use crate::policy::Policy;
use crate::secret::Secret;
use crate::{Error, Result};

/// Longest free-text field accepted, in bytes.
pub const MAX_TEXT: usize = 512;
/// Most lines in one order.
pub const MAX_LINES: usize = 100;

/// One product the merchant sells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogItem {
    /// The product number.
    pub product_number: String,
    /// The product name.
    pub name: String,
    /// Unit price in minor units of the form's currency.
    pub unit_price: u64,
    /// Whether it is physical goods that a carrier delivers (default, and what a form
    /// without the member means); `false` for digital goods. An order holding any item that
    /// ships needs the form's carrier. Written only when `false`.
    #[serde(default = "ships_default", skip_serializing_if = "is_true")]
    pub ships: bool,
}

fn ships_default() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_true(b: &bool) -> bool {
    *b
}

/// What the merchant hands the cardholder before an order (【0028】–【0034】).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderForm {
    /// The order id the merchant assigned; also the order's nonce (unique per merchant).
    pub order_id: OrderId,
    /// The merchant.
    pub merchant: PartyId,
    /// The carrier the merchant designates, or none for digital goods (【0052】).
    pub carrier: Option<PartyId>,
    /// Issuers whose cards the merchant accepts.
    pub accepted_issuers: Vec<PartyId>,
    /// ISO 4217 currency code.
    pub currency: String,
    /// What can be bought.
    pub catalog: Vec<CatalogItem>,
    /// When the form stops being valid, in Unix seconds.
    pub expires_at: u64,
    /// Which party receives which field.
    pub policy: Policy,
}

impl OrderForm {
    /// Checks the form itself: identifiers of the right roles, a sane id, currency and catalog.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidOrder(m));
        if self.order_id.is_empty()
            || self.order_id.len() > 64
            || !self
                .order_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad("order id must be 1–64 characters of A–Z, a–z, 0–9, '-' or '_'".into());
        }
        if self.merchant.role() != Role::Merchant {
            return bad(format!("{} is not a merchant identifier", self.merchant));
        }
        if let Some(c) = self.carrier.as_ref().filter(|c| c.role() != Role::Carrier) {
            return bad(format!("{c} is not a carrier identifier"));
        }
        if self.accepted_issuers.is_empty() {
            return bad("the form accepts no issuer".into());
        }
        if let Some(i) = self
            .accepted_issuers
            .iter()
            .find(|i| i.role() != Role::Issuer)
        {
            return bad(format!("{i} is not an issuer identifier"));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return bad("currency must be a three-letter ISO 4217 code".into());
        }
        if self.catalog.is_empty() {
            return bad("the catalog is empty".into());
        }
        for item in &self.catalog {
            text("product number", &item.product_number)?;
            text("product name", &item.name)?;
        }
        Ok(())
    }

    /// The catalog entry for a product number.
    pub fn item(&self, product_number: &str) -> Option<&CatalogItem> {
        self.catalog
            .iter()
            .find(|i| i.product_number == product_number)
    }
}

/// A card's expiry month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expiry {
    /// Four-digit year.
    pub year: u16,
    /// Month 1–12.
    pub month: u8,
}

/// A payment card: number and expiry, sealed only for the issuer (claim 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    /// The primary account number, digits only.
    #[serde(serialize_with = "crate::secret::serialize_exposed")]
    pub number: Secret,
    /// The expiry month.
    pub expiry: Expiry,
}

/// How the cardholder pays (【0030】).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PaymentMethod {
    /// One payment.
    LumpSum,
    /// A fixed number of monthly instalments (2–60).
    Installments {
        /// Number of instalments.
        count: u8,
    },
    /// Revolving credit.
    Revolving,
    /// Paid with the next bonus.
    Bonus,
}

/// Where the goods go: the addressee may differ from the cardholder (a gift, 【0048】).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// Who receives the parcel.
    #[serde(serialize_with = "crate::secret::serialize_exposed")]
    pub addressee: Secret,
    /// The delivery address.
    #[serde(serialize_with = "crate::secret::serialize_exposed")]
    pub address: Secret,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// The product number from the catalog.
    pub product_number: String,
    /// The product name from the catalog.
    pub product_name: String,
    /// How many, at least 1.
    pub quantity: u32,
    /// Unit price × quantity, in minor units.
    pub amount: u64,
}

/// The cardholder's order: every field of Fig. 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// Cardholder's name (as on the card).
    pub cardholder_name: String,
    /// Cardholder's address.
    pub cardholder_address: String,
    /// Telephone number.
    pub telephone: String,
    /// FAX number, if any.
    pub fax: Option<String>,
    /// The card.
    pub card: Card,
    /// What is bought.
    pub lines: Vec<Line>,
    /// The total in minor units.
    pub amount: u64,
    /// ISO 4217 currency code (the form's).
    pub currency: String,
    /// How the cardholder pays.
    pub payment_method: PaymentMethod,
    /// Where it is delivered; required when the form names a carrier.
    pub destination: Option<Destination>,
}

fn text(what: &str, s: &str) -> Result<()> {
    if s.trim().is_empty() {
        return Err(Error::InvalidOrder(format!("{what} is empty")));
    }
    if s.len() > MAX_TEXT || s.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::InvalidOrder(format!(
            "{what} is longer than {MAX_TEXT} bytes or has control characters"
        )));
    }
    Ok(())
}

/// Whether `digits` passes the Luhn check (digits only; callers check the alphabet).
pub fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b.wrapping_sub(b'0'));
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Checks a card number's alphabet, length (12–19) and Luhn digit. The error never contains
/// the number.
pub fn check_card_number(number: &Secret) -> Result<()> {
    let n = number.expose();
    if !(12..=19).contains(&n.len()) || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidOrder(
            "card number must be 12–19 digits".into(),
        ));
    }
    if !luhn(n) {
        return Err(Error::InvalidOrder(
            "card number fails the Luhn check".into(),
        ));
    }
    Ok(())
}

impl Order {
    /// Builds the lines and the total from `(product number, quantity)` pairs and the form's
    /// catalog; the caller supplies the rest.
    pub fn lines_from(form: &OrderForm, picks: &[(&str, u32)]) -> Result<(Vec<Line>, u64)> {
        let mut lines = Vec::with_capacity(picks.len());
        let mut total = 0u64;
        for &(number, quantity) in picks {
            let item = form.item(number).ok_or_else(|| {
                Error::InvalidOrder(format!("no product {number:?} in the catalog"))
            })?;
            let amount = item
                .unit_price
                .checked_mul(u64::from(quantity))
                .ok_or_else(|| Error::InvalidOrder("amount overflows".into()))?;
            total = total
                .checked_add(amount)
                .ok_or_else(|| Error::InvalidOrder("amount overflows".into()))?;
            lines.push(Line {
                product_number: item.product_number.clone(),
                product_name: item.name.clone(),
                quantity,
                amount,
            });
        }
        Ok((lines, total))
    }

    /// Validates the order against its form at time `now` (Unix seconds): required fields,
    /// card number (length, Luhn) and expiry, catalog lines, quantities, amounts that match
    /// the catalog and add up, currency, and a destination iff a carrier delivers.
    pub fn validate(&self, form: &OrderForm, now: u64) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidOrder(m.to_owned()));
        form.validate()?;
        if now >= form.expires_at {
            return bad("the order form has expired; fetch a new one");
        }
        text("cardholder name", &self.cardholder_name)?;
        text("cardholder address", &self.cardholder_address)?;
        text("telephone", &self.telephone)?;
        if let Some(fax) = &self.fax {
            text("fax", fax)?;
        }
        check_card_number(&self.card.number)?;
        let Expiry { year, month } = self.card.expiry;
        if !(1..=12).contains(&month) {
            return bad("card expiry month must be 1–12");
        }
        let (now_year, now_month) = year_month(now);
        if (year, month) < (now_year, now_month) {
            return bad("the card has expired");
        }
        if self.lines.is_empty() || self.lines.len() > MAX_LINES {
            return bad("an order has 1–100 lines");
        }
        let mut total = 0u64;
        for line in &self.lines {
            let Some(item) = form.item(&line.product_number) else {
                return Err(Error::InvalidOrder(format!(
                    "no product {:?} in the catalog",
                    line.product_number
                )));
            };
            if line.product_name != item.name {
                return bad("a product name does not match the catalog");
            }
            if item.ships && form.carrier.is_none() {
                return Err(Error::InvalidOrder(format!(
                    "{:?} is delivered by a carrier, and this order form has none",
                    line.product_number
                )));
            }
            if line.quantity == 0 {
                return bad("quantities must be at least 1");
            }
            if item.unit_price.checked_mul(u64::from(line.quantity)) != Some(line.amount) {
                return bad("a line amount does not equal unit price × quantity");
            }
            total = total
                .checked_add(line.amount)
                .ok_or_else(|| Error::InvalidOrder("amount overflows".into()))?;
        }
        if total != self.amount {
            return bad("the total does not equal the sum of the lines");
        }
        if self.amount == 0 {
            return bad("the total must be positive");
        }
        if self.currency != form.currency {
            return bad("the currency differs from the order form's");
        }
        if let PaymentMethod::Installments { count } = self.payment_method
            && !(2..=60).contains(&count)
        {
            return bad("installments are 2–60 payments");
        }
        match (&form.carrier, &self.destination) {
            (Some(_), None) => bad("a delivery destination is required"),
            (None, Some(_)) => bad("this order has no carrier, so no destination"),
            (_, Some(d)) if d.addressee.is_blank() || d.address.is_blank() => {
                bad("the delivery addressee and address must not be empty")
            }
            (_, Some(d))
                if d.addressee.expose().len() > MAX_TEXT || d.address.expose().len() > MAX_TEXT =>
            {
                bad("the delivery destination is too long")
            }
            _ => Ok(()),
        }
    }
}

/// The (year, month) in UTC of a Unix time.
pub fn year_month(unix: u64) -> (u16, u8) {
    // Civil-from-days (H. Hinnant), valid for all u64 seconds this century and beyond.
    let days = (unix / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year.clamp(0, u16::MAX as i64) as u16, month as u8)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A test card number that passes Luhn.
    pub const CARD: &str = "4111111111111111";

    pub fn form(carrier: bool) -> OrderForm {
        OrderForm {
            order_id: "ord-1".into(),
            merchant: PartyId::parse("merchant:shop.example").expect("id"),
            carrier: carrier.then(|| PartyId::parse("carrier:post.example").expect("id")),
            accepted_issuers: vec![PartyId::parse("issuer:bank.example").expect("id")],
            currency: "JPY".into(),
            catalog: vec![
                CatalogItem {
                    product_number: "P-1".into(),
                    name: "Tea".into(),
                    unit_price: 1200,
                    ships: carrier,
                },
                CatalogItem {
                    product_number: "P-2".into(),
                    name: "Cup".into(),
                    unit_price: 800,
                    ships: carrier,
                },
            ],
            expires_at: 4_000_000_000,
            policy: Policy::patent_default(),
        }
    }

    pub fn order(form: &OrderForm) -> Order {
        let (lines, amount) = Order::lines_from(form, &[("P-1", 2), ("P-2", 1)]).expect("lines");
        Order {
            cardholder_name: "Hanako Yamada".into(),
            cardholder_address: "1-1 Chiyoda, Tokyo".into(),
            telephone: "+81-3-0000-0000".into(),
            fax: None,
            card: Card {
                number: CARD.into(),
                expiry: Expiry {
                    year: 2030,
                    month: 12,
                },
            },
            lines,
            amount,
            currency: form.currency.clone(),
            payment_method: PaymentMethod::Installments { count: 3 },
            destination: form.carrier.as_ref().map(|_| Destination {
                addressee: "Taro Suzuki".into(),
                address: "2-2 Umeda, Osaka".into(),
            }),
        }
    }

    const NOW: u64 = 1_800_000_000; // 2027-01

    /// Issue 12.4: physical goods cannot be bought without a carrier.
    #[test]
    fn goods_that_ship_need_a_carrier() {
        let mut f = form(false);
        f.catalog[0].ships = true;
        let e = order(&form(false)).validate(&f, NOW);
        assert!(
            matches!(&e, Err(Error::InvalidOrder(m)) if m.contains("carrier")),
            "{e:?}"
        );
        // A form without the member reads as physical goods; digital goods write it.
        let json = r#"{"product_number":"P","name":"N","unit_price":1}"#;
        let item: CatalogItem = serde_json::from_str(json).expect("item");
        assert!(item.ships);
        assert_eq!(serde_json::to_string(&item).expect("json"), json);
        let digital = CatalogItem {
            ships: false,
            ..item
        };
        let back = serde_json::to_string(&digital).expect("json");
        assert!(back.contains(r#""ships":false"#), "{back}");
    }

    #[test]
    fn a_good_order_validates() {
        for carrier in [true, false] {
            let f = form(carrier);
            order(&f).validate(&f, NOW).expect("valid");
        }
    }

    #[test]
    fn each_bad_field_is_refused_with_a_clear_error() {
        let f = form(true);
        type Mutation = Box<dyn Fn(&mut Order)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "Luhn",
                Box::new(|o| o.card.number = "4111111111111112".into()),
            ),
            ("12–19 digits", Box::new(|o| o.card.number = "41111".into())),
            (
                "12–19 digits",
                Box::new(|o| o.card.number = "4111-1111-1111-1111".into()),
            ),
            (
                "expired",
                Box::new(|o| {
                    o.card.expiry = Expiry {
                        year: 2026,
                        month: 12,
                    }
                }),
            ),
            ("month", Box::new(|o| o.card.expiry.month = 13)),
            (
                "at least 1",
                Box::new(|o| {
                    o.lines[0].quantity = 0;
                    o.lines[0].amount = 0;
                }),
            ),
            ("unit price", Box::new(|o| o.lines[0].amount += 1)),
            ("sum of the lines", Box::new(|o| o.amount += 1)),
            (
                "catalog",
                Box::new(|o| o.lines[0].product_number = "X".into()),
            ),
            (
                "cardholder name is empty",
                Box::new(|o| o.cardholder_name = " ".into()),
            ),
            (
                "destination is required",
                Box::new(|o| o.destination = None),
            ),
            ("currency", Box::new(|o| o.currency = "USD".into())),
            (
                "2–60",
                Box::new(|o| o.payment_method = PaymentMethod::Installments { count: 1 }),
            ),
        ];
        for (expect, mutate) in cases {
            let mut o = order(&f);
            mutate(&mut o);
            let err = o.validate(&f, NOW).expect_err(expect).to_string();
            assert!(err.contains(expect), "{expect:?} not in {err:?}");
            assert!(!err.contains(CARD) && !err.contains("4111111111111112"));
        }
        assert!(
            order(&f).validate(&f, f.expires_at).is_err(),
            "expired form"
        );
    }

    #[test]
    fn year_month_is_right() {
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(1_800_000_000), (2027, 1));
        assert_eq!(year_month(951_782_400), (2000, 2)); // 2000-02-29
    }
}
