//! Cardholder ↔ issuer: the statement (cards without their numbers, orders with payment
//! state, method and instalments).

use serde::{Deserialize, Serialize};
use warifu_core::OrderId;
use warifu_core::PartyId;

/// The cardholder's statement (`GET`, cardholder session) → `Statement`.
pub const PATH_STATEMENT: &str = "/v1/statement";

/// One of the cardholder's cards on its statement (never the full number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatementCard {
    /// The issuer's id for the card.
    pub card_id: String,
    /// The last four digits of the number.
    pub last4: String,
    /// `active`, `blocked` or `expired`.
    pub status: String,
    /// The credit limit in minor units.
    pub credit_limit: u64,
    /// The credit left.
    pub available: u64,
    /// The card's currency.
    pub currency: String,
}

/// One order on the cardholder's statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatementEntry {
    /// The merchant's order id.
    #[schema(value_type = String)]
    pub order_id: OrderId,
    /// The merchant.
    pub merchant: String,
    /// The amount authorized, in minor units.
    pub amount: u64,
    /// ISO 4217 currency.
    pub currency: String,
    /// The payment state, as in [`PaymentReceipt::state`].
    pub state: String,
    /// The payment method, as in [`PaymentReceipt::payment_method`].
    pub payment_method: String,
    /// The monthly instalments of what is owed (remainder on the first); empty for lump
    /// sum, revolving, bonus, and orders that owe nothing.
    pub instalments: Vec<u64>,
    /// Captured so far, in minor units.
    #[serde(default)]
    pub captured: u64,
    /// Refunded so far (a partly refunded order shows it here), in minor units.
    #[serde(default)]
    pub refunded: u64,
    /// When the issuer decided.
    pub created_at_ms: i64,
}

/// `GET /v1/statement` (cardholder → issuer): its cards and its orders, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// The cardholder.
    #[schema(value_type = String)]
    pub cardholder: PartyId,
    /// Its cards.
    pub cards: Vec<StatementCard>,
    /// Its orders.
    pub entries: Vec<StatementEntry>,
}
