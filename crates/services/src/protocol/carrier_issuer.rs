//! Carrier ↔ issuer: before it accepts a shipment, the carrier asks the order's issuer whether
//! the authorization still stands (issue 12.8): the approval MAC in the shipment request
//! proves the issuer approved once, not that the payment was not voided or refunded since.

use serde::{Deserialize, Serialize};
use warifu_core::OrderId;

/// An authorization's liveness (`GET`, carrier session) → `AuthorizationLiveness`. Only the
/// carrier the order names may ask; any other caller gets `unknown_order`.
pub const PATH_AUTHORIZATION_LIVE: &str = "/v1/authorizations/{merchant}/{order_id}/live";

/// `PATH_AUTHORIZATION_LIVE` for one merchant's order.
pub fn live_path(merchant: &str, order_id: &str) -> String {
    PATH_AUTHORIZATION_LIVE
        .replace("{merchant}", merchant)
        .replace("{order_id}", order_id)
}

/// The issuer's answer: whether the payment still stands behind the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationLiveness {
    /// The merchant.
    pub merchant: String,
    /// The merchant's order id.
    #[schema(value_type = String)]
    pub order_id: OrderId,
    /// The payment's state as on a receipt (`authorized`, `captured`, `partially_refunded`,
    /// `voided`, `refunded`, `declined`).
    pub state: String,
    /// Whether the authorization is held or captured (and not wholly refunded): only then
    /// may the carrier accept the shipment.
    pub live: bool,
}
