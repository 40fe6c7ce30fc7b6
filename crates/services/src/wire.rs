//! The JSON bodies the services exchange: requests, answers and the issuer's decision.
//!
//! Binary values (MACs, digests) are unpadded base64url strings. Every request type refuses
//! unknown fields, so a typo is an error rather than a silently ignored option.

use serde::{Deserialize, Serialize};
use warifu_core::PartyId;
use warifu_core::order::{CatalogItem, Destination};
use warifu_core::policy::Policy;
use warifu_core::sealed::{ForwardedPart, SealedOrder};

/// Header carrying the session id of an authenticated message.
pub const HEADER_SESSION: &str = "warifu-session";
/// Header carrying the message's sequence number.
pub const HEADER_SEQ: &str = "warifu-seq";
/// Header carrying the sender's clock (Unix seconds).
pub const HEADER_TIME: &str = "warifu-time";
/// Header carrying the message MAC (unpadded base64url).
pub const HEADER_MAC: &str = "warifu-mac";

/// Handshake message 1 (`POST /v1/handshake/hello`).
pub const PATH_HELLO: &str = "/v1/handshake/hello";
/// Handshake message 3 (`POST /v1/handshake/confirm`).
pub const PATH_CONFIRM: &str = "/v1/handshake/confirm";

/// The answer to a completed handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionEstablished {
    /// The session id both sides derived.
    pub session: String,
    /// When the session ends, Unix seconds.
    pub expires_at: u64,
}

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
    #[schema(value_type = Vec<crate::openapi::CatalogItemDoc>)]
    pub catalog: Vec<CatalogItem>,
    /// The carrier it ships with, if it ships.
    #[schema(value_type = Option<String>)]
    pub carrier: Option<PartyId>,
    /// The issuers whose cards it accepts.
    #[schema(value_type = Vec<String>)]
    pub accepted_issuers: Vec<PartyId>,
    /// The disclosure policy its forms use.
    #[schema(value_type = crate::openapi::Policy)]
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
    #[schema(value_type = crate::openapi::SealedOrder)]
    pub sealed: SealedOrder,
}

/// Whether the issuer approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Authorized: the amount is held.
    Approved,
    /// Declined, with a reason.
    Declined,
}

impl Outcome {
    /// The one-byte code under the issuer's MACs.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Approved => 1,
            Outcome::Declined => 2,
        }
    }
}

/// Why the issuer declined: stable codes shown to the merchant and the cardholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeclineReason {
    /// No card is enrolled for the cardholder's identifier.
    UnknownCardholder,
    /// The card number, expiry or name does not match the enrolled card.
    CardMismatch,
    /// The card has expired.
    Expired,
    /// The card is blocked.
    Blocked,
    /// Not enough credit.
    InsufficientCredit,
    /// The order's currency is not the card's.
    CurrencyMismatch,
    /// The amount is zero or too large.
    InvalidAmount,
}

impl DeclineReason {
    /// The code as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DeclineReason::UnknownCardholder => "unknown_cardholder",
            DeclineReason::CardMismatch => "card_mismatch",
            DeclineReason::Expired => "expired",
            DeclineReason::Blocked => "blocked",
            DeclineReason::InsufficientCredit => "insufficient_credit",
            DeclineReason::CurrencyMismatch => "currency_mismatch",
            DeclineReason::InvalidAmount => "invalid_amount",
        }
    }

    /// Every reason.
    pub const ALL: [DeclineReason; 7] = [
        DeclineReason::UnknownCardholder,
        DeclineReason::CardMismatch,
        DeclineReason::Expired,
        DeclineReason::Blocked,
        DeclineReason::InsufficientCredit,
        DeclineReason::CurrencyMismatch,
        DeclineReason::InvalidAmount,
    ];

    /// The reason for its code.
    pub fn parse(s: &str) -> Option<DeclineReason> {
        DeclineReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl core::fmt::Display for DeclineReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /v1/authorizations` (merchant → issuer): the issuer's part as the merchant forwards
/// it, and the amount the merchant expects. The issuer authorizes what the cardholder sealed;
/// if the merchant's figure differs, it refuses (`amount_mismatch`) and holds nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// The header, the issuer's part and the other parts' commitments.
    #[schema(value_type = crate::openapi::ForwardedPart)]
    pub forwarded: ForwardedPart,
    /// The disclosure policy of the order form (its digest is sealed in the header, so the
    /// merchant cannot substitute another).
    #[schema(value_type = crate::openapi::Policy)]
    pub policy: Policy,
    /// The total the merchant read in its own part.
    pub amount: u64,
    /// Its currency.
    pub currency: String,
}

/// The issuer's decision, bound to the sealed order (header digest), order id, amount and
/// currency. The whole body is authenticated to the merchant by the session MAC; the
/// cardholder can check `cardholder_receipt` with its own pairwise key with the issuer, and
/// the carrier `carrier_approval` with its pairwise key with the issuer (see [`crate::attest`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The merchant's order id.
    pub order_id: String,
    /// The issuer that decided.
    #[schema(value_type = String)]
    pub issuer: PartyId,
    /// The merchant.
    #[schema(value_type = String)]
    pub merchant: PartyId,
    /// The cardholder.
    #[schema(value_type = String)]
    pub cardholder: PartyId,
    /// Digest of the sealed order's header (`Header::digest`).
    #[serde(with = "b64_array")]
    #[schema(value_type = String)]
    pub header_digest: [u8; 32],
    /// Approved or declined.
    pub outcome: Outcome,
    /// Why it was declined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DeclineReason>,
    /// The amount the cardholder sealed, in minor units.
    pub amount: u64,
    /// Its currency.
    pub currency: String,
    /// The issuer's authorization id, when approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_id: Option<String>,
    /// HMAC for the cardholder under its pairwise key with the issuer.
    #[serde(with = "b64_array")]
    #[schema(value_type = String)]
    pub cardholder_receipt: [u8; 32],
    /// HMAC for the carrier under its pairwise key with the issuer (approved, shipped orders).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "b64_opt")]
    #[schema(value_type = Option<String>)]
    pub carrier_approval: Option<[u8; 32]>,
}

impl Decision {
    /// Whether the issuer approved.
    pub fn approved(&self) -> bool {
        self.outcome == Outcome::Approved
    }
}

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
    #[schema(value_type = crate::openapi::ForwardedPart)]
    pub forwarded: ForwardedPart,
    /// The disclosure policy of the order form (checked against the header's digest).
    #[schema(value_type = crate::openapi::Policy)]
    pub policy: Policy,
    /// The issuer's `carrier_approval` MAC from its decision.
    #[serde(with = "b64_array")]
    #[schema(value_type = String)]
    pub approval: [u8; 32],
    /// What to pick up.
    pub delivery: DeliveryRequest,
}

/// The carrier's answer: the shipment is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentReceipt {
    /// The merchant's order id.
    pub order_id: String,
    /// The tracking number.
    pub tracking_number: String,
    /// The shipment's status (`accepted` at first).
    pub status: String,
}

/// `GET /v1/shipments/{merchant}/{order_id}` for the cardholder: status and the destination it
/// sealed (the merchant asking gets `destination: null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackingView {
    /// The merchant's order id.
    pub order_id: String,
    /// The tracking number.
    pub tracking_number: String,
    /// The status.
    pub status: String,
    /// The destination, only for the cardholder who sealed it.
    #[schema(value_type = Option<crate::openapi::DestinationDoc>)]
    pub destination: Option<Destination>,
    /// The shipment's history, oldest first.
    #[serde(default)]
    pub events: Vec<TrackingEvent>,
    /// The carrier's proof of delivery, once delivered (no address in it).
    #[serde(default)]
    pub proof_of_delivery: Option<ProofOfDelivery>,
}

/// The merchant's answer to a submission, and to `GET /v1/orders/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderOutcome {
    /// The order id.
    pub order_id: String,
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

// Issuer and carrier lifecycle

/// `POST /v1/authorizations/{order_id}/capture` (merchant → issuer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// The amount to capture in minor units; `None` captures all of the hold (the rest of a
    /// partial capture is released).
    #[serde(default)]
    pub amount: Option<u64>,
}

/// `POST /v1/authorizations/{order_id}/void` (merchant → issuer): release the hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {}

/// `POST /v1/authorizations/{order_id}/refunds` (merchant → issuer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// The merchant's id for this refund: a retry under the same id refunds once.
    pub refund_id: String,
    /// The amount to refund in minor units (never more than captured less refunded).
    pub amount: u64,
}

/// The issuer's view of an order's payment, answered to capture, void, refund and
/// `GET /v1/authorizations/{order_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentReceipt {
    /// The merchant's order id.
    pub order_id: String,
    /// The issuer's authorization id (absent when declined).
    pub authorization_id: Option<String>,
    /// `authorized`, `declined`, `captured`, `voided`, `refunded` or `partially_refunded`.
    pub state: String,
    /// The amount authorized, in minor units.
    pub amount: u64,
    /// The amount captured.
    pub captured: u64,
    /// The amount refunded.
    pub refunded: u64,
    /// ISO 4217 currency.
    pub currency: String,
    /// How the cardholder pays: `lump_sum`, `installments(N)`, `revolving` or `bonus`.
    pub payment_method: String,
}

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
    pub order_id: String,
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

/// The carrier's proof that it delivered an order, for the issuer in a dispute: an
/// HMAC-SHA256 under the carrier–issuer pairwise key (see [`crate::attest`]). It carries no
/// address; the merchant can relay it but cannot forge it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofOfDelivery {
    /// The merchant's order id.
    pub order_id: String,
    /// The merchant.
    #[schema(value_type = String)]
    pub merchant: PartyId,
    /// The carrier that delivered.
    #[schema(value_type = String)]
    pub carrier: PartyId,
    /// The order's issuer (whose key with the carrier verifies the MAC).
    #[schema(value_type = String)]
    pub issuer: PartyId,
    /// The tracking number.
    pub tracking_number: String,
    /// When it was delivered, Unix milliseconds.
    pub delivered_at_ms: i64,
    /// HMAC-SHA256 under K(carrier, issuer), unpadded base64url.
    #[serde(with = "b64_array")]
    #[schema(value_type = String)]
    pub mac: [u8; 32],
}

/// The issuer's answer to `POST /v1/disputes/{order_id}/proof-of-delivery`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeAnswer {
    /// The merchant's order id.
    pub order_id: String,
    /// Whether the carrier's MAC verifies for this order, merchant and issuer.
    pub proof_valid: bool,
    /// When the carrier says it delivered.
    pub delivered_at_ms: i64,
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

// Merchant lifecycle

/// `POST /v1/orders/{order_id}/cancel` (cardholder → merchant, or the merchant's operator at
/// `/v1/admin/orders/{order_id}/cancel`): before shipping the authorization is voided, after
/// capture the payment is refunded in full.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {}

/// `POST /v1/admin/orders/{order_id}/refund` (the merchant's operator).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorRefund {
    /// The amount in minor units; `None` refunds what is left of the capture.
    #[serde(default)]
    pub amount: Option<u64>,
    /// The refund's id (a retry under it refunds once); default `op-full` for the rest, or
    /// `op-<amount>` for a partial refund.
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

/// Serde for `[u8; N]` as unpadded base64url.
pub mod b64_array {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Serializes.
    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }

    /// Deserializes, refusing a wrong length.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        let v = B64
            .decode(s.as_bytes())
            .map_err(|_| D::Error::custom("not unpadded base64url"))?;
        v.try_into()
            .map_err(|_| D::Error::custom(format!("expected {N} bytes")))
    }
}

/// Serde for `Option<[u8; N]>` as unpadded base64url or absent.
pub mod b64_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes.
    pub fn serialize<S: Serializer, const N: usize>(
        v: &Option<[u8; N]>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::b64_array::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    /// Deserializes.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<Option<[u8; N]>, D::Error> {
        #[derive(Deserialize)]
        struct W<const M: usize>(#[serde(with = "super::b64_array")] [u8; M]);
        Ok(Option::<W<N>>::deserialize(d)?.map(|w| w.0))
    }
}
