//! What each party holds about an order, read back from its own store: the facts behind the
//! demo's disclosure matrix (field × party).

use std::collections::BTreeSet;
use warifu_core::OrderId;

use warifu_core::Role;
use warifu_core::policy::{Field, Policy};
use warifu_core::sealed::Disclosed;
use warifu_store::{CarrierStore, IssuerStore, MerchantStore, StoreError};

/// The fields a party holds about one order, from its store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    /// The fields found.
    pub fields: BTreeSet<Field>,
}

/// The merchant: the fields of its stored view of the order.
pub async fn merchant(
    store: &dyn MerchantStore,
    order_id: &OrderId,
) -> Result<Holdings, StoreError> {
    let mut h = Holdings::default();
    if let Some(order) = store.get_order(order_id).await? {
        let view: Disclosed = serde_json::from_str(&order.merchant_view)
            .map_err(|_| StoreError::Corrupt("merchant view"))?;
        h.fields.extend(view.present().unwrap_or_default());
        if order.amount > 0 {
            h.fields.insert(Field::Amount);
        }
    }
    Ok(h)
}

/// The issuer: its authorization of the order (amount, payment method) and the card it
/// matched (holder name, number and expiry).
pub async fn issuer(
    store: &dyn IssuerStore,
    merchant_id: &str,
    order_id: &OrderId,
) -> Result<Holdings, StoreError> {
    let mut h = Holdings::default();
    if let Some(a) = store.get_authorization(merchant_id, order_id).await? {
        h.fields.insert(Field::Amount);
        h.fields.insert(Field::PaymentMethod);
        if let Some(card_id) = &a.card_id
            && let Some(card) = store.get_card(card_id).await?
        {
            if !card.holder_name.trim().is_empty() {
                h.fields.insert(Field::CardholderName);
            }
            if !card.number.is_blank() {
                h.fields.insert(Field::Card);
            }
        }
    }
    Ok(h)
}

/// The carrier: the destination of its shipment of the order.
pub async fn carrier(
    store: &dyn CarrierStore,
    merchant_id: &str,
    order_id: &OrderId,
) -> Result<Holdings, StoreError> {
    let mut h = Holdings::default();
    if let Some(s) = store.get_shipment(merchant_id, order_id).await?
        && !s.address.is_blank()
    {
        h.fields.insert(Field::DeliveryDestination);
    }
    Ok(h)
}

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// The party holds the field.
    Holds,
    /// The policy gave it to the party, which opened it but did not keep it.
    NotKept,
    /// The party never received it.
    Never,
    /// The party holds a field the policy did not give it: a leak.
    Leak,
}

impl Cell {
    /// The cell's symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Cell::Holds => "✔",
            Cell::NotKept => "○",
            Cell::Never => "—",
            Cell::Leak => "LEAK",
        }
    }
}

/// The cell for `field` at the party in `role`.
pub fn cell(policy: &Policy, role: Role, held: &Holdings, field: Field) -> Cell {
    match (held.fields.contains(&field), policy.receives(role, field)) {
        (true, true) => Cell::Holds,
        (true, false) => Cell::Leak,
        (false, true) => Cell::NotKept,
        (false, false) => Cell::Never,
    }
}

/// The matrix as text: one row per field, one column per party.
pub fn render(policy: &Policy, columns: &[(Role, &Holdings)]) -> String {
    let mut out = format!("{:<22}", "field");
    for (role, _) in columns {
        out.push_str(&format!("{:^12}", role.as_str()));
    }
    out.push('\n');
    for field in Field::ALL {
        out.push_str(&format!("{:<22}", field.name()));
        for (role, held) in columns {
            out.push_str(&format!(
                "{:^12}",
                cell(policy, *role, held, field).symbol()
            ));
        }
        out.push('\n');
    }
    out
}
