//! Merchant ↔ carrier: the shipment request (the carrier's part, the issuer's approval and
//! what to pick up), the carrier's receipt with its tracking number, and the cancellation.

use serde::{Deserialize, Serialize};
use warifu_core::OrderId;
use warifu_core::policy::Policy;
use warifu_core::sealed::ForwardedPart;

use super::b64_array;

/// The path of the shipment endpoint.
pub const PATH_SHIPMENTS: &str = "/v1/shipments";

/// The merchant's delivery request to the carrier (【0042】): what to pick up, from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryRequest {
    /// The parcel: size and weight, not the goods.
    pub parcel: String,
    /// Where and when to pick it up.
    pub pickup: String,
}

/// `POST /v1/shipments` (merchant → carrier): the carrier's part, the issuer's approval for
/// the carrier, and the delivery request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentRequest {
    /// The header, the carrier's part and the other parts' commitments.
    #[schema(value_type = crate::protocol::schema::ForwardedPart)]
    pub forwarded: ForwardedPart,
    /// The disclosure policy of the order form (checked against the header's digest).
    #[schema(value_type = crate::protocol::schema::Policy)]
    pub policy: Policy,
    /// The issuer's `carrier_approval` MAC from its decision.
    #[serde(with = "b64_array")]
    #[schema(value_type = String)]
    pub approval: [u8; 32],
    /// What to pick up.
    pub delivery: DeliveryRequest,
}

/// The carrier's answer: the shipment is accepted (or, to a cancellation, `cancelled` or
/// `returning`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentReceipt {
    /// The merchant's order id.
    #[schema(value_type = String)]
    pub order_id: OrderId,
    /// The tracking number.
    pub tracking_number: String,
    /// The shipment's status (`accepted` at first; `cancelled` or `returning` after a
    /// cancellation).
    pub status: String,
}

/// The path of a shipment's cancellation (`POST CancelShipmentRequest`, merchant session) →
/// `ShipmentReceipt` whose `status` is `cancelled` (not picked up: it will never move) or
/// `returning` (picked up: on its way back to the merchant, later `returned`). A delivered
/// shipment is refused with `invalid_transition`. For an order the carrier holds no shipment
/// of, it records a cancelled tombstone, so a late `POST /v1/shipments` is refused.
pub const PATH_SHIPMENT_CANCEL: &str = "/v1/shipments/{order_id}/cancel";

/// `PATH_SHIPMENT_CANCEL` with its `{order_id}` filled in.
pub fn cancel_path(order_id: &str) -> String {
    PATH_SHIPMENT_CANCEL.replace("{order_id}", order_id)
}

/// `POST /v1/shipments/{order_id}/cancel` (merchant → carrier): the order was cancelled; do
/// not deliver it. The merchant is the session's peer. Idempotent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelShipmentRequest {}
