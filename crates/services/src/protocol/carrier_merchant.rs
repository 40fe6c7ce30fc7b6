//! Carrier → merchant: the delivery events the carrier pushes to the order's merchant in a
//! session the carrier opens (its shipment picked up, in transit, delivered with the proof of
//! delivery, or returned), and the merchant's acknowledgement.

use serde::{Deserialize, Serialize};
use warifu_core::OrderId;

use super::merchant_issuer::ProofOfDelivery;

/// The path of the delivery events (`POST DeliveryEvent`, carrier session) →
/// `DeliveryEventAck`.
pub const PATH_DELIVERY_EVENTS: &str = "/v1/delivery-events";

/// `POST /v1/delivery-events` (carrier → merchant): a shipment of the merchant's order moved.
/// Sent by the carrier named in the order (the session's peer), once per move, retried until
/// the merchant answers; the merchant applies it once (the same event again changes nothing).
/// It never carries the destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryEvent {
    /// The carrier's id of the event (unique per shipment move; for logs).
    pub event_id: String,
    /// The merchant's order id.
    #[schema(value_type = String)]
    pub order_id: OrderId,
    /// The tracking number the carrier gave the shipment.
    pub tracking_number: String,
    /// The status reached: `picked_up`, `in_transit`, `delivered` or `returned`.
    pub status: String,
    /// When, Unix milliseconds.
    pub at_ms: i64,
    /// The carrier's proof of delivery (only with `delivered`; no address in it).
    #[serde(default)]
    pub proof_of_delivery: Option<ProofOfDelivery>,
}

/// The merchant's answer to a delivery event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryEventAck {
    /// The merchant's order id.
    #[schema(value_type = String)]
    pub order_id: OrderId,
    /// The order's state after the event.
    pub state: String,
    /// Whether this event changed anything (`false`: the merchant already knew it).
    pub applied: bool,
}
