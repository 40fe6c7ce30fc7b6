//! Cardholder ↔ carrier: tracking a shipment, with the destination the cardholder sealed (the
//! order's merchant reads the same view without it).

use serde::{Deserialize, Serialize};
use warifu_core::OrderId;
use warifu_core::order::Destination;

use super::merchant_issuer::ProofOfDelivery;

/// A shipment's tracking view (`GET`, the order's merchant or cardholder) → `TrackingView`.
pub const PATH_TRACK: &str = "/v1/shipments/{merchant}/{order_id}";

/// The tracking path of a merchant's order.
pub fn track_path(merchant: &str, order_id: &str) -> String {
    PATH_TRACK
        .replace("{merchant}", merchant)
        .replace("{order_id}", order_id)
}

/// `GET /v1/shipments/{merchant}/{order_id}` for the cardholder: status and the destination it
/// sealed (the merchant asking gets `destination: null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackingView {
    /// The merchant's order id.
    #[schema(value_type = String)]
    pub order_id: OrderId,
    /// The tracking number.
    pub tracking_number: String,
    /// The status.
    pub status: String,
    /// The destination, only for the cardholder who sealed it.
    #[schema(value_type = Option<crate::protocol::schema::DestinationDoc>)]
    pub destination: Option<Destination>,
    /// The shipment's history, oldest first.
    #[serde(default)]
    pub events: Vec<TrackingEvent>,
    /// The carrier's proof of delivery, once delivered (no address in it).
    #[serde(default)]
    pub proof_of_delivery: Option<ProofOfDelivery>,
}

/// One step of a shipment's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackingEvent {
    /// The status reached: `accepted`, `picked_up`, `in_transit`, `delivered`, `returned`.
    pub status: String,
    /// When, Unix milliseconds.
    pub at_ms: i64,
    /// A note (depot, signature), if any.
    #[serde(default)]
    pub note: Option<String>,
}
