//! Cardholder ↔ merchant: the public catalog, order forms in a session, the sealed bundle
//! submitted once, the order's outcome (with the issuer's decision relayed) and cancelling.

use serde::{Deserialize, Serialize};
use warifu_core::OrderId;
use warifu_core::PartyId;
use warifu_core::order::CatalogItem;
use warifu_core::policy::Policy;
use warifu_core::sealed::SealedOrder;

use super::merchant_issuer::{Decision, PaymentReceipt};

/// A merchant's public catalog (`GET /v1/catalog`, unauthenticated, assigns nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogView {
    /// The merchant.
    #[schema(value_type = String)]
    pub merchant: PartyId,
    /// ISO 4217 currency.
    pub currency: String,
    /// What it sells.
    #[schema(value_type = Vec<crate::protocol::schema::CatalogItemDoc>)]
    pub catalog: Vec<CatalogItem>,
    /// The carrier it ships with, if it ships.
    #[schema(value_type = Option<String>)]
    pub carrier: Option<PartyId>,
    /// The issuers whose cards it accepts.
    #[schema(value_type = Vec<String>)]
    pub accepted_issuers: Vec<PartyId>,
    /// The disclosure policy its forms use.
    #[schema(value_type = crate::protocol::schema::Policy)]
    pub policy: Policy,
}

/// `POST /v1/order-forms`: ask the merchant for a fresh order form (authenticated).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormRequest {
    /// Digital goods: no carrier, no delivery destination (【0052】).
    #[serde(default)]
    pub digital: bool,
}

/// `POST /v1/orders`: the sealed bundle, submitted once. The cardholder's identifier travels in
/// clear in the bundle's header (【0035】).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The sealed order.
    #[schema(value_type = crate::protocol::schema::SealedOrder)]
    pub sealed: SealedOrder,
}

/// The merchant's answer to a submission, and to `GET /v1/orders/{id}`. A client ignores
/// members it does not know (later revisions add members only so).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderOutcome {
    /// The order id.
    #[schema(value_type = String)]
    pub order_id: OrderId,
    /// The merchant's state of the order (`received`, `authorized`, `declined`, `shipped`, …).
    pub state: String,
    /// The issuer's decision as relayed (without the carrier's approval MAC).
    pub decision: Option<Decision>,
    /// The carrier, if the goods are shipped.
    #[schema(value_type = Option<String>)]
    pub carrier: Option<PartyId>,
    /// The carrier's tracking number, once shipped.
    pub tracking_number: Option<String>,
    /// The issuer's last answer about the payment (capture, void, refund), once there is one.
    #[serde(default)]
    pub payment: Option<PaymentReceipt>,
    /// The carrier's status of the shipment as last seen by the merchant (`accepted`,
    /// `picked_up`, `in_transit`, `delivered`, `returned`).
    #[serde(default)]
    pub delivery: Option<String>,
}

/// `POST /v1/orders/{order_id}/cancel` (cardholder → merchant, or the merchant's operator at
/// `/v1/admin/orders/{order_id}/cancel`): before shipping the authorization is voided, after
/// capture the payment is refunded in full.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {}
