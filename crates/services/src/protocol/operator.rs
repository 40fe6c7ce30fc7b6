//! Operator → merchant and carrier: the bodies and paths of the people who run a party (the
//! merchant's order list and refunds, the carrier's shipment list and moves).

use serde::{Deserialize, Serialize};
use warifu_core::OrderId;

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
    #[schema(value_type = String)]
    pub order_id: OrderId,
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
    #[schema(value_type = String)]
    pub order_id: OrderId,
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

/// The merchant operator's webhook endpoints (`GET` → `WebhookEndpointList`, `POST
/// WebhookEndpointRequest` → `WebhookEndpointCreated`).
pub const PATH_WEBHOOK_ENDPOINTS: &str = "/v1/admin/webhooks/endpoints";
/// One endpoint (`POST WebhookEndpointChange` → `WebhookEndpointCreated`).
pub const PATH_WEBHOOK_ENDPOINT: &str = "/v1/admin/webhooks/endpoints/{endpoint_id}";
/// The delivery log (`GET ?order_id=&endpoint_id=&event_id=&status=&limit=&offset=` →
/// `WebhookDeliveryList`).
pub const PATH_WEBHOOK_DELIVERIES: &str = "/v1/admin/webhooks/deliveries";
/// Send deliveries again (`POST WebhookReplayRequest` → `WebhookReplayAnswer`).
pub const PATH_WEBHOOK_REPLAY: &str = "/v1/admin/webhooks/replay";

/// `POST /v1/admin/webhooks/endpoints`: a new endpoint of the shop's backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointRequest {
    /// The operator's name for it: 1–64 of a–z, 0–9, `-`, `_`.
    pub endpoint_id: String,
    /// Where events are POSTed: an `http://` or `https://` URL.
    pub url: String,
    /// The event types it receives (default: all).
    #[serde(default)]
    pub events: Vec<String>,
}

/// `POST /v1/admin/webhooks/endpoints/{endpoint_id}`: change an endpoint (absent: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointChange {
    /// A new URL.
    #[serde(default)]
    pub url: Option<String>,
    /// New event types (empty: all).
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Enable (events are recorded for it and sent) or disable (nothing new is recorded for
    /// it; what is pending waits).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Derive a new signing secret (answered once).
    #[serde(default)]
    pub rotate_secret: bool,
}

/// An endpoint as the operator sees it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointView {
    /// Its id.
    pub endpoint_id: String,
    /// Its URL.
    pub url: String,
    /// The event types it receives (empty: all).
    pub events: Vec<String>,
    /// Whether it is enabled.
    pub enabled: bool,
    /// When it was added.
    pub created_at_ms: i64,
    /// When it last changed.
    pub updated_at_ms: i64,
}

/// An endpoint just added (or its secret rotated): the signing secret is shown here only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointCreated {
    /// The endpoint.
    pub endpoint: WebhookEndpointView,
    /// `whsec_…`: the key of `Warifu-Signature` (docs/WEBHOOKS.md), when it was just made.
    pub secret: Option<String>,
}

/// `GET /v1/admin/webhooks/endpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointList {
    /// The endpoints, by id.
    pub endpoints: Vec<WebhookEndpointView>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookAttemptView {
    /// Its number since the last replay.
    pub attempt: u32,
    /// When it started, Unix milliseconds.
    pub at_ms: i64,
    /// The endpoint's HTTP status, if it answered.
    pub http_status: Option<u16>,
    /// How long it took.
    pub latency_ms: i64,
    /// Why it failed (timeout, connection refused, HTTP 500, …).
    pub error: Option<String>,
}

/// One event to one endpoint, with its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookDeliveryView {
    /// The delivery's id.
    pub delivery_id: i64,
    /// The event id (the same on every retry).
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// The order.
    #[schema(value_type = String)]
    pub order_id: OrderId,
    /// The endpoint.
    pub endpoint_id: String,
    /// `pending`, `delivered` or `failed` (replayable).
    pub status: String,
    /// Attempts since the last replay.
    pub attempts: u32,
    /// Not tried again before this (while pending).
    pub next_attempt_at_ms: i64,
    /// The last HTTP status.
    pub last_status: Option<u16>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was acknowledged.
    pub delivered_at_ms: Option<i64>,
    /// When the event was recorded.
    pub created_at_ms: i64,
    /// The attempts, oldest first.
    pub log: Vec<WebhookAttemptView>,
}

/// `GET /v1/admin/webhooks/deliveries`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookDeliveryList {
    /// The deliveries.
    pub deliveries: Vec<WebhookDeliveryView>,
    /// How many deliveries are pending in all.
    pub pending: u64,
    /// How many failed (and wait for a replay).
    pub failed: u64,
}

/// `POST /v1/admin/webhooks/replay`: with `event_id`, that event's deliveries are sent again
/// whatever their status (the same event id, so the receiver deduplicates); otherwise every
/// `failed` delivery matching the filters. Each gets a fresh retry window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookReplayRequest {
    /// Only this event.
    #[serde(default)]
    pub event_id: Option<String>,
    /// Only this order's.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub order_id: Option<OrderId>,
    /// Only to this endpoint.
    #[serde(default)]
    pub endpoint_id: Option<String>,
}

/// How many deliveries a replay queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookReplayAnswer {
    /// Deliveries queued again.
    pub replayed: u64,
}

/// The issuer operator's cards (`GET ?cardholder=&limit=&offset=` → `AdminCardList`, `POST
/// EnrollCard` → `AdminCard`).
pub const PATH_ADMIN_CARDS: &str = "/v1/admin/cards";
/// One card (`GET` → `AdminCard`).
pub const PATH_ADMIN_CARD: &str = "/v1/admin/cards/{card_id}";
/// Block a card (`POST {}` → `AdminCard`): it declines every new authorization (`blocked`).
pub const PATH_CARD_BLOCK: &str = "/v1/admin/cards/{card_id}/block";
/// Unblock a card (`POST {}` → `AdminCard`).
pub const PATH_CARD_UNBLOCK: &str = "/v1/admin/cards/{card_id}/unblock";
/// Change a card's credit limit (`POST CardLimit` → `AdminCard`).
pub const PATH_CARD_LIMIT: &str = "/v1/admin/cards/{card_id}/limit";
/// A cardholder's statement (`GET` → `Statement`, the body of `GET /v1/statement`).
pub const PATH_ADMIN_STATEMENT: &str = "/v1/admin/statements/{cardholder}";
/// A merchant's settlement (`GET` → `Settlement`).
pub const PATH_ADMIN_SETTLEMENT: &str = "/v1/admin/settlements/{merchant}";

/// A card path template with its card id.
pub fn card_path(template: &str, card_id: &str) -> String {
    template.replace("{card_id}", card_id)
}

/// `POST /v1/admin/cards`: enroll a card, with the rules of `warifu issuer enroll`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollCard {
    /// The issuer's id for the card.
    pub card_id: String,
    /// The cardholder's identifier (`cardholder:…`), whose key must seal the card part.
    pub cardholder: String,
    /// The name on the card.
    pub name: String,
    /// The card number (12–19 digits; spaces and dashes are ignored). Never answered back,
    /// never logged.
    pub number: String,
    /// The expiry, `YYYY-MM`.
    pub expiry: String,
    /// The credit limit in minor units.
    pub credit_limit: u64,
    /// ISO 4217 currency (default JPY).
    #[serde(default = "default_currency")]
    pub currency: String,
}

fn default_currency() -> String {
    "JPY".into()
}

impl core::fmt::Debug for EnrollCard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EnrollCard")
            .field("card_id", &self.card_id)
            .field("cardholder", &self.cardholder)
            .field("number", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// `POST /v1/admin/cards/{card_id}/limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardLimit {
    /// The new credit limit in minor units (not below what the card already uses).
    pub credit_limit: u64,
}

/// A card as the issuer's operator sees it: the last four digits, never the number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminCard {
    /// The issuer's id for the card.
    pub card_id: String,
    /// The cardholder.
    pub cardholder: String,
    /// The name on the card.
    pub name: String,
    /// The last four digits.
    pub last4: String,
    /// `YYYY-MM`.
    pub expiry: String,
    /// `active`, `blocked` or `expired`.
    pub status: String,
    /// The credit limit, minor units.
    pub credit_limit: u64,
    /// The credit still available.
    pub available: u64,
    /// ISO 4217.
    pub currency: String,
    /// When it was enrolled.
    pub created_at_ms: i64,
}

/// `GET /v1/admin/cards`, by card id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminCardList {
    /// The cards.
    pub cards: Vec<AdminCard>,
}

/// One UTC day of a merchant's settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettlementDayView {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Captured that day, minor units.
    pub captured: u64,
    /// Refunded that day.
    pub refunded: u64,
    /// Captured − refunded (may be negative).
    pub net: i64,
}

/// `GET /v1/admin/settlements/{merchant}`: what the issuer owes the merchant, by UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settlement {
    /// The merchant.
    pub merchant: String,
    /// The days with captures or refunds, oldest first.
    pub days: Vec<SettlementDayView>,
    /// Captured in all.
    pub captured: u64,
    /// Refunded in all.
    pub refunded: u64,
    /// Captured − refunded in all.
    pub net: i64,
}
