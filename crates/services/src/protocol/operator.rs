//! Operator → merchant and carrier: the bodies and paths of the people who run a party (the
//! merchant's order list and refunds, the carrier's shipment list and moves).

use serde::{Deserialize, Serialize};

/// The operator's list of shipments (`GET ?limit=&offset=`) → `ShipmentList`.
pub const PATH_ADMIN_SHIPMENTS: &str = "/v1/admin/shipments";

/// The operator advances a shipment (`POST AdvanceRequest`) → `TrackingView`.
pub const PATH_ADVANCE: &str = "/v1/admin/shipments/{tracking_number}/advance";

/// The operator's view of one shipment (`GET`) → `TrackingView` (without the destination).
pub const PATH_ADMIN_SHIPMENT: &str = "/v1/admin/shipments/{tracking_number}";

/// The operator's path of a tracking number.
pub fn admin_shipment_path(tracking_number: &str) -> String {
    PATH_ADMIN_SHIPMENT.replace("{tracking_number}", tracking_number)
}

/// The advance path of a tracking number.
pub fn advance_path(tracking_number: &str) -> String {
    PATH_ADVANCE.replace("{tracking_number}", tracking_number)
}

/// `POST /v1/admin/shipments/{tracking_number}/advance` (carrier operator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceRequest {
    /// `picked_up`, `in_transit`, `delivered` or `returned`.
    pub to: String,
    /// A note (depot, signature), if any.
    #[serde(default)]
    pub note: Option<String>,
}

/// One shipment in the carrier operator's list (`GET /v1/admin/shipments`); no destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentSummary {
    /// The tracking number.
    pub tracking_number: String,
    /// The merchant.
    pub merchant: String,
    /// The merchant's order id.
    pub order_id: String,
    /// The order's issuer, if known.
    pub issuer: Option<String>,
    /// Where it is.
    pub status: String,
    /// When it was accepted.
    pub created_at_ms: i64,
    /// When it last changed.
    pub updated_at_ms: i64,
}

/// `GET /v1/admin/shipments?limit=&offset=` (carrier operator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentList {
    /// The shipments, newest first.
    pub shipments: Vec<ShipmentSummary>,
}

/// `POST /v1/admin/orders/{order_id}/refund` (the merchant's operator).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorRefund {
    /// The amount in minor units; `None` refunds what is left of the capture.
    #[serde(default)]
    pub amount: Option<u64>,
    /// An idempotency key for this refund (as the `Idempotency-Key` header): refunded once as
    /// `op-key-<key>`, retries answer the first. Without one, each request is a new refund,
    /// `op-<n>`.
    #[serde(default)]
    pub refund_id: Option<String>,
}

/// One order in the merchant operator's list (its own view: no card, no destination).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminOrder {
    /// The order id.
    pub order_id: String,
    /// The cardholder's identifier.
    pub cardholder: String,
    /// The total in minor units.
    pub amount: u64,
    /// ISO 4217 currency.
    pub currency: String,
    /// The merchant's state of the order.
    pub state: String,
    /// Why it was declined, failed or cancelled by a peer, if so.
    pub decline_code: Option<String>,
    /// The issuer's authorization id, once authorized.
    pub authorization_id: Option<String>,
    /// The carrier's tracking number, once shipped.
    pub tracking_number: Option<String>,
    /// When it was received, Unix milliseconds.
    pub created_at_ms: i64,
    /// When it last changed.
    pub updated_at_ms: i64,
}

/// `GET /v1/admin/orders?limit=&offset=&state=` (the merchant's operator), newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminOrderList {
    /// The orders.
    pub orders: Vec<AdminOrder>,
    /// How many outbox messages are still to be delivered (across all orders).
    pub pending_messages: u64,
}
