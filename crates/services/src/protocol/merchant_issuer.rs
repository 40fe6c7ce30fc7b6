//! Merchant ↔ issuer: the issuer's part forwarded for authorization and the decision bound to
//! the order; the payment's lifecycle (capture, void, refunds); a dispute answered with the
//! carrier's proof of delivery (which the merchant relays but cannot forge).

use serde::{Deserialize, Serialize};
use warifu_core::OrderId;
use warifu_core::PartyId;
use warifu_core::policy::Policy;
use warifu_core::sealed::ForwardedPart;

use super::{b64_array, b64_opt};

/// The path of the authorization endpoint.
pub const PATH_AUTHORIZE: &str = "/v1/authorizations";

/// An order's payment (`GET`, merchant session) → `PaymentReceipt`.
pub const PATH_AUTHORIZATION: &str = "/v1/authorizations/{order_id}";

/// Capture (`POST CaptureRequest`, merchant session) → `PaymentReceipt`.
pub const PATH_CAPTURE: &str = "/v1/authorizations/{order_id}/capture";

/// Void (`POST VoidRequest`, merchant session) → `PaymentReceipt`.
pub const PATH_VOID: &str = "/v1/authorizations/{order_id}/void";

/// Refund (`POST RefundRequest`, merchant session) → `PaymentReceipt`.
pub const PATH_REFUNDS: &str = "/v1/authorizations/{order_id}/refunds";

/// A dispute answered with the carrier's proof (`POST ProofOfDelivery`, merchant session) →
/// `DisputeAnswer`.
pub const PATH_PROOF_OF_DELIVERY: &str = "/v1/disputes/{order_id}/proof-of-delivery";

/// One of the `PATH_*` templates above with its `{order_id}` filled in (order ids are the
/// merchant's URL-safe identifiers).
pub fn order_path(template: &str, order_id: &str) -> String {
    template.replace("{order_id}", order_id)
}

/// `POST /v1/authorizations` (merchant → issuer): the issuer's part as the merchant forwards
/// it, and the amount the merchant expects. The issuer authorizes what the cardholder sealed;
/// if the merchant's figure differs, it refuses (`amount_mismatch`) and holds nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// The header, the issuer's part and the other parts' commitments.
    #[schema(value_type = crate::protocol::schema::ForwardedPart)]
    pub forwarded: ForwardedPart,
    /// The disclosure policy of the order form (its digest is sealed in the header, so the
    /// merchant cannot substitute another).
    #[schema(value_type = crate::protocol::schema::Policy)]
    pub policy: Policy,
    /// The total the merchant read in its own part.
    pub amount: u64,
    /// Its currency.
    pub currency: String,
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

/// The issuer's decision, bound to the sealed order (header digest), order id, amount and
/// currency. The whole body is authenticated to the merchant by the session MAC; the
/// cardholder can check `cardholder_receipt` with its own pairwise key with the issuer, and
/// the carrier `carrier_approval` with its pairwise key with the issuer (see [`crate::attest`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The merchant's order id.
    #[schema(value_type = String)]
    pub order_id: OrderId,
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
    #[schema(value_type = String)]
    pub order_id: OrderId,
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

/// The carrier's proof that it delivered an order, for the issuer in a dispute: an
/// HMAC-SHA256 under the carrier–issuer pairwise key (see [`crate::attest`]). It carries no
/// address; the merchant can relay it but cannot forge it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofOfDelivery {
    /// The merchant's order id.
    #[schema(value_type = String)]
    pub order_id: OrderId,
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
    #[schema(value_type = String)]
    pub order_id: OrderId,
    /// Whether the carrier's MAC verifies for this order, merchant and issuer.
    pub proof_valid: bool,
    /// When the carrier says it delivered.
    pub delivered_at_ms: i64,
}
