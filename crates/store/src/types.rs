//! Record types stored by each party: exactly that party's view of an order, nothing more.
//!
//! Times are Unix milliseconds (`*_at_ms`, `i64`), supplied by the caller so that tests and
//! replays are deterministic. Amounts are minor units of the currency (`u64`; the store
//! refuses amounts above `i64::MAX`, which SQL columns hold).

use serde::{Deserialize, Serialize};
use warifu_core::OrderId;
use warifu_core::order::{Expiry, PaymentMethod};
use warifu_core::secret::Secret;

use crate::error::{Result, StoreError};

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The stable text stored in the database and used on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }

            /// Parses the stable text; `None` for anything else.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($s => Some($name::$v),)+ _ => None }
            }

            pub(crate) fn decode(s: &str) -> Result<$name> {
                $name::parse(s).ok_or(StoreError::Corrupt(stringify!($name)))
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

// ------------------------------------------------------------------------------------------
// Common

/// Which party a database belongs to (one SQLite file per party in a data directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    /// The merchant (`merchant.db`).
    Merchant,
    /// The issuer, the patent's card manager (`issuer.db`).
    Issuer,
    /// The carrier, the patent's distributor (`carrier.db`).
    Carrier,
}

impl Party {
    /// The party's short name: `merchant`, `issuer` or `carrier`.
    pub fn as_str(self) -> &'static str {
        match self {
            Party::Merchant => "merchant",
            Party::Issuer => "issuer",
            Party::Carrier => "carrier",
        }
    }
}

/// The database behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite, embedded, one file per party.
    Sqlite,
    /// PostgreSQL, by URL.
    Postgres,
}

/// The first answer to an idempotent request, returned again on every retry with the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status of the first answer.
    pub status: u16,
    /// The body of the first answer.
    pub body: Vec<u8>,
    /// A digest of the first request (so a different request under the same key is detected).
    pub fingerprint: Vec<u8>,
    /// When the first answer was stored.
    pub created_at_ms: i64,
}

/// An answer a write keeps in its own transaction as the first answer under an idempotency
/// key (as [`crate::PartyStore::idempotency_put`] would, one commit later): `body` makes it
/// (status 200) from the write's result, or gives `None` to keep none (the caller then
/// answers on its own). If an answer is already stored under the key, that one is kept and
/// returned.
#[derive(Clone)]
pub struct Answer<T> {
    /// The idempotency scope.
    pub scope: String,
    /// The key in the scope.
    pub key: String,
    /// The request's fingerprint.
    pub fingerprint: Vec<u8>,
    /// When the answer is made.
    pub created_at_ms: i64,
    /// The answer's body, made from the write's result.
    pub body: AnswerBody<T>,
}

/// How an [`Answer`]'s body is made from a write's result (`None`: keep no answer).
pub type AnswerBody<T> = std::sync::Arc<dyn Fn(&T) -> Option<Vec<u8>> + Send + Sync>;

impl<T> std::fmt::Debug for Answer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("scope", &self.scope)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// How many rows fell in one time bucket under one key: a point of a dashboard's chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The bucket's start: a multiple of the bucket width, Unix milliseconds.
    pub start_ms: i64,
    /// What the rows were (a state, a status, a decline code, …; each query says).
    pub key: String,
    /// How many rows.
    pub count: u64,
}

// ------------------------------------------------------------------------------------------
// Merchant

text_enum! {
    /// Where a merchant's order is in its life (issue 4's state machine).
    OrderState {
        /// Accepted from the cardholder and committed; the authorization request is queued.
        Received = "received",
        /// The issuer approved and holds the amount.
        Authorized = "authorized",
        /// The issuer declined (final).
        Declined = "declined",
        /// The delivery request is queued for the carrier.
        ShippingRequested = "shipping_requested",
        /// The carrier accepted the shipment and gave a tracking number.
        Shipped = "shipped",
        /// The payment was captured.
        Captured = "captured",
        /// The carrier delivered the parcel.
        Delivered = "delivered",
        /// Cancelled: the hold is being voided or the capture refunded (see the decline code).
        Cancelled = "cancelled",
        /// Cancelled after the carrier accepted the parcel: the carrier is being told to stop
        /// it; its answer decides between `cancelled` (not picked up) and `returning`.
        Cancelling = "cancelling",
        /// Cancelled after pick-up: the parcel is on its way back to the merchant; when the
        /// carrier reports it `returned`, the order is cancelled and the capture refunded.
        Returning = "returning",
        /// The authorization was voided (final).
        Voided = "voided",
        /// The captured payment was refunded (final).
        Refunded = "refunded",
        /// The order cannot proceed (a peer refused it permanently); see the decline code.
        Failed = "failed",
    }
}

impl OrderState {
    /// Whether no further transition is expected.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderState::Declined
                | OrderState::Delivered
                | OrderState::Voided
                | OrderState::Refunded
                | OrderState::Failed
        )
    }
}

/// An order form the merchant issued (the order id is its nonce).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFormRecord {
    /// The order id.
    pub order_id: OrderId,
    /// The `OrderForm` as JSON.
    pub form_json: String,
    /// When the form expires.
    pub expires_at_ms: i64,
    /// When it was issued.
    pub created_at_ms: i64,
}

/// A new order as the merchant records it on receipt: its own view, never the card or the
/// destination. The carrier's part is kept still sealed (ciphertext) to forward on approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// The order id (unique per merchant).
    pub order_id: OrderId,
    /// The cardholder's identifier (sent in clear with the bundle).
    pub cardholder_id: String,
    /// The issuer's identifier.
    pub issuer_id: String,
    /// The carrier's identifier, if the goods are shipped.
    pub carrier_id: Option<String>,
    /// The fields the merchant's part disclosed, as JSON (`View<ForMerchant>`).
    pub merchant_view: String,
    /// The order total in minor units.
    pub amount: u64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The carrier's part, still sealed, to forward after approval.
    pub carrier_part: Option<Vec<u8>>,
    /// The time of receipt.
    pub now_ms: i64,
}

/// A merchant's order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// The order id.
    pub order_id: OrderId,
    /// The cardholder's identifier.
    pub cardholder_id: String,
    /// The issuer's identifier.
    pub issuer_id: String,
    /// The carrier's identifier, if shipped.
    pub carrier_id: Option<String>,
    /// The merchant's view as JSON.
    pub merchant_view: String,
    /// The order total in minor units.
    pub amount: u64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The current state.
    pub state: OrderState,
    /// Why the order was declined or failed, if it was.
    pub decline_code: Option<String>,
    /// The issuer's authorization id, once authorized.
    pub authorization_id: Option<String>,
    /// The carrier's tracking number, once shipped.
    pub tracking_number: Option<String>,
    /// The still-sealed carrier part (ciphertext only).
    pub carrier_part: Option<Vec<u8>>,
    /// How many times the state changed.
    pub version: i64,
    /// When the order was received.
    pub created_at_ms: i64,
    /// When it last changed.
    pub updated_at_ms: i64,
}

/// A message to send after a transition commits, written in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxMessage {
    /// What to do (`authorize`, `ship`, `capture`, `void`, `refund`, ...).
    pub kind: String,
    /// The message body (typically JSON; sealed parts stay ciphertext).
    pub payload: Vec<u8>,
    /// How long after the transaction it is first due (0: at once), in milliseconds.
    pub due_in_ms: i64,
}

impl NewOutboxMessage {
    /// A message of `kind` with `payload`, due at once.
    pub fn new(kind: impl Into<String>, payload: impl Into<Vec<u8>>) -> NewOutboxMessage {
        NewOutboxMessage {
            kind: kind.into(),
            payload: payload.into(),
            due_in_ms: 0,
        }
    }

    /// The message first due `ms` milliseconds after the transaction that enqueues it.
    pub fn due_in(mut self, ms: i64) -> NewOutboxMessage {
        self.due_in_ms = ms.max(0);
        self
    }
}

/// A stored outbox message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Its id (increasing).
    pub id: i64,
    /// The order it belongs to.
    pub order_id: OrderId,
    /// What to do.
    pub kind: String,
    /// The message body.
    pub payload: Vec<u8>,
    /// How many times it was claimed for sending.
    pub attempts: u32,
    /// Not to be sent again before this time.
    pub next_attempt_at_ms: i64,
    /// Whether it was delivered (or abandoned).
    pub done: bool,
    /// The last failure, if any (no secret: callers pass a code and a short message).
    pub last_error: Option<String>,
    /// When it was written.
    pub created_at_ms: i64,
}

/// A compare-and-set change of an order's state, with the fields it sets and the messages it
/// causes, all committed in one transaction. Build with [`Transition::new`] and the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The order.
    pub order_id: OrderId,
    /// The states the order must be in for the transition to apply.
    pub from: Vec<OrderState>,
    /// The new state.
    pub to: OrderState,
    /// Sets the decline / failure code.
    pub decline_code: Option<String>,
    /// Applies only if the order is still at this version (serializes concurrent changes that
    /// stay in the same state, such as two operator refunds).
    pub version: Option<i64>,
    /// Sets the authorization id.
    pub authorization_id: Option<String>,
    /// Sets the tracking number.
    pub tracking_number: Option<String>,
    /// Erases the stored carrier part (after it was forwarded or is no longer needed).
    pub clear_carrier_part: bool,
    /// Messages to enqueue in the same transaction.
    pub outbox: Vec<NewOutboxMessage>,
    /// Outbox messages to mark done in the same transaction (the one whose answer caused this).
    pub complete_outbox: Vec<i64>,
    /// Facts learned with this transition, stored (or replaced) in the same transaction.
    pub facts: Vec<OrderFact>,
    /// Answers to keep under (scope, key), stored in the same transaction unless one is there.
    pub records: Vec<(String, String, StoredResponse)>,
    /// The time of the transition.
    pub now_ms: i64,
}

impl Transition {
    /// A transition of `order_id` from `from` to `to` at `now_ms`.
    pub fn new(
        order_id: impl Into<OrderId>,
        from: OrderState,
        to: OrderState,
        now_ms: i64,
    ) -> Transition {
        Transition {
            order_id: order_id.into(),
            from: vec![from],
            to,
            decline_code: None,
            version: None,
            authorization_id: None,
            tracking_number: None,
            clear_carrier_part: false,
            outbox: Vec::new(),
            complete_outbox: Vec::new(),
            facts: Vec::new(),
            records: Vec::new(),
            now_ms,
        }
    }
    /// Stores fact `kind` of the order in the same transaction.
    pub fn fact(mut self, kind: impl Into<String>, body: impl Into<Vec<u8>>) -> Transition {
        self.facts.push(OrderFact {
            order_id: self.order_id.clone(),
            kind: kind.into(),
            body: body.into(),
            updated_at_ms: self.now_ms,
        });
        self
    }
    /// Keeps `response` under (`scope`, `key`) in the same transaction (a first answer is
    /// never replaced).
    pub fn record(
        mut self,
        scope: impl Into<String>,
        key: impl Into<String>,
        response: StoredResponse,
    ) -> Transition {
        self.records.push((scope.into(), key.into(), response));
        self
    }
    /// Also applies when the order is in `state`.
    pub fn or_from(mut self, state: OrderState) -> Transition {
        self.from.push(state);
        self
    }
    /// Applies only if the order is still at `version`.
    pub fn at_version(mut self, version: i64) -> Transition {
        self.version = Some(version);
        self
    }
    /// Sets the decline code.
    pub fn decline_code(mut self, code: impl Into<String>) -> Transition {
        self.decline_code = Some(code.into());
        self
    }
    /// Sets the authorization id.
    pub fn authorization_id(mut self, id: impl Into<String>) -> Transition {
        self.authorization_id = Some(id.into());
        self
    }
    /// Sets the tracking number.
    pub fn tracking_number(mut self, n: impl Into<String>) -> Transition {
        self.tracking_number = Some(n.into());
        self
    }
    /// Erases the carrier part.
    pub fn clear_carrier_part(mut self) -> Transition {
        self.clear_carrier_part = true;
        self
    }
    /// Enqueues a message in the same transaction.
    pub fn send(mut self, kind: impl Into<String>, payload: impl Into<Vec<u8>>) -> Transition {
        self.outbox.push(NewOutboxMessage::new(kind, payload));
        self
    }
    /// Marks outbox message `id` done in the same transaction.
    pub fn complete(mut self, id: i64) -> Transition {
        self.complete_outbox.push(id);
        self
    }
}

/// Which orders to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// Only orders of this cardholder.
    pub cardholder_id: Option<String>,
    /// Only orders in this state.
    pub state: Option<OrderState>,
    /// At most this many (default 100, newest first).
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: Option<u32>,
}

/// What an applied transition (or a new order) left: the order as it now is and the messages
/// it enqueued, so the caller runs them without reading them back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedTransition {
    /// The order after the change.
    pub order: OrderRecord,
    /// The messages the change enqueued, oldest first.
    pub outbox: Vec<OutboxMessage>,
}

/// A pin of the first request under an idempotency key: (scope, key, the request's
/// fingerprint). A different fingerprint under the key is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The scope.
    pub scope: String,
    /// The key.
    pub key: String,
    /// The request's fingerprint.
    pub fingerprint: Vec<u8>,
}

/// What inserting an order did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inserted<T> {
    /// The stored row: the new one, or the one already there.
    pub record: T,
    /// Whether this call created it (false: it existed, and nothing was written).
    pub created: bool,
}

/// What the merchant last learned about an order from a peer (one per order and kind:
/// `payment`, `delivery`, `proof`), replaced on each update. Never a card number or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFact {
    /// The order.
    pub order_id: OrderId,
    /// What it is about.
    pub kind: String,
    /// The fact (typically JSON).
    pub body: Vec<u8>,
    /// When it was last written.
    pub updated_at_ms: i64,
}

// ------------------------------------------------------------------------------------------
// Issuer

text_enum! {
    /// Whether a card can be used.
    CardStatus {
        /// Usable.
        Active = "active",
        /// Blocked by the issuer (lost, stolen, fraud).
        Blocked = "blocked",
        /// Past its expiry (also checked from the expiry month at authorization).
        Expired = "expired",
    }
}

/// A card to enroll at the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCard {
    /// The issuer's id for the card.
    pub card_id: String,
    /// The cardholder's identifier (the Blom identity that must seal the issuer part).
    pub cardholder_id: String,
    /// The name on the card.
    pub holder_name: String,
    /// The card number (the issuer is entitled to it).
    pub number: Secret,
    /// The expiry month.
    pub expiry: Expiry,
    /// The credit limit in minor units.
    pub credit_limit: u64,
    /// The card's currency.
    pub currency: String,
    /// The time of enrollment.
    pub now_ms: i64,
}

/// A card as the issuer stores it. `Debug` redacts the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRecord {
    /// The issuer's id for the card.
    pub card_id: String,
    /// The cardholder's identifier.
    pub cardholder_id: String,
    /// The name on the card.
    pub holder_name: String,
    /// The card number.
    pub number: Secret,
    /// The expiry month.
    pub expiry: Expiry,
    /// Active, blocked or expired.
    pub status: CardStatus,
    /// The credit limit.
    pub credit_limit: u64,
    /// Credit left: limit − holds − captures + refunds.
    pub available: u64,
    /// The card's currency.
    pub currency: String,
    /// When it was enrolled.
    pub created_at_ms: i64,
}

text_enum! {
    /// Why the issuer declined an authorization: stable codes for the merchant and cardholder.
    DeclineCode {
        /// No card is enrolled for this cardholder identifier.
        UnknownCardholder = "unknown_cardholder",
        /// The card number is not one of the cardholder's cards.
        CardMismatch = "card_mismatch",
        /// The name does not match the card.
        NameMismatch = "name_mismatch",
        /// The expiry does not match the card.
        ExpiryMismatch = "expiry_mismatch",
        /// The card has expired.
        Expired = "expired",
        /// The card is blocked.
        Blocked = "blocked",
        /// Not enough credit is available.
        InsufficientCredit = "insufficient_credit",
        /// The order's currency is not the card's.
        CurrencyMismatch = "currency_mismatch",
        /// The amount is zero or too large.
        InvalidAmount = "invalid_amount",
    }
}

text_enum! {
    /// Where an authorization is in its life.
    AuthorizationStatus {
        /// Declined: no money held.
        Declined = "declined",
        /// The amount is held.
        Held = "held",
        /// Captured (fully or partly; the rest released).
        Captured = "captured",
        /// The hold was released.
        Voided = "voided",
        /// The whole captured amount was refunded.
        Refunded = "refunded",
    }
}

/// A request to authorize (hold) an amount, as the issuer reads it from its opened part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    /// The merchant asking.
    pub merchant_id: String,
    /// The merchant's order id (with the merchant: the idempotency key).
    pub order_id: OrderId,
    /// The id to give a new authorization (the caller makes it unique).
    pub authorization_id: String,
    /// The cardholder whose key sealed the part.
    pub cardholder_id: String,
    /// The name from the part.
    pub holder_name: String,
    /// The card number from the part.
    pub card_number: Secret,
    /// The expiry from the part.
    pub expiry: Expiry,
    /// The amount in minor units.
    pub amount: u64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// How the cardholder pays.
    pub payment_method: PaymentMethod,
    /// The order's carrier from the sealed header (`None`: nothing ships). A dispute accepts
    /// a proof of delivery only from this carrier.
    pub carrier_id: Option<String>,
    /// The sealed header's digest (under the carrier's proof of delivery).
    pub header_digest: [u8; 32],
    /// Now (also decides whether the card has expired).
    pub now_ms: i64,
}

/// An authorization (approved or declined) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRecord {
    /// The authorization id.
    pub authorization_id: String,
    /// The merchant.
    pub merchant_id: String,
    /// The merchant's order id.
    pub order_id: OrderId,
    /// The cardholder.
    pub cardholder_id: String,
    /// The card, when one matched.
    pub card_id: Option<String>,
    /// The amount requested.
    pub amount: u64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// How the cardholder pays.
    pub payment_method: PaymentMethod,
    /// The decline reason, when declined.
    pub decline_code: Option<DeclineCode>,
    /// The current status.
    pub status: AuthorizationStatus,
    /// The amount still held.
    pub held: u64,
    /// The amount captured.
    pub captured: u64,
    /// The amount refunded.
    pub refunded: u64,
    /// When it was decided.
    pub created_at_ms: i64,
    /// When it last changed.
    pub updated_at_ms: i64,
}

/// What an authorization is bound to besides its amount: the order's carrier and the sealed
/// header's digest, recorded when it was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationBinding {
    /// The order's carrier (`None`: the order ships nothing, or it was decided before schema
    /// version 4; see `header_digest`).
    pub carrier_id: Option<String>,
    /// The sealed header's digest (`None` for authorizations decided before schema version 4,
    /// which are bound to nothing: no proof of delivery is accepted for them).
    pub header_digest: Option<[u8; 32]>,
}

impl AuthorizationRecord {
    /// Whether the issuer approved it.
    pub fn approved(&self) -> bool {
        self.decline_code.is_none()
    }
}

/// The monthly amounts a cardholder pays for `amount` by `method` (its statement lines).
///
/// Lump sum, revolving and bonus are one line of the whole amount (revolving and bonus are
/// billed by their own rules, outside this schedule). Installments split the amount into
/// `count` monthly payments of `amount / count`; the remainder (`amount % count`) is added to
/// the **first** instalment, so later ones are equal. A count of 0 is treated as 1.
pub fn installment_schedule(amount: u64, method: PaymentMethod) -> Vec<u64> {
    match method {
        PaymentMethod::Installments { count } if count > 1 => {
            let n = u64::from(count);
            let mut v = vec![amount / n; usize::from(count)];
            v[0] += amount % n;
            v
        }
        _ => vec![amount],
    }
}

impl AuthorizationRecord {
    /// The monthly schedule of what the cardholder owes on this authorization: the captured
    /// amount less refunds, or the held amount before capture.
    pub fn schedule(&self) -> Vec<u64> {
        let owed = if self.captured > 0 {
            self.captured.saturating_sub(self.refunded)
        } else {
            self.held
        };
        installment_schedule(owed, self.payment_method)
    }
}

/// What a capture, void or refund did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The authorization after the operation.
    pub authorization: AuthorizationRecord,
    /// Whether this call moved money (false: a retry of something already done).
    pub applied: bool,
}

/// A payment step on an authorization ([`crate::IssuerStore::payment_step_answered`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentStep {
    /// [`crate::IssuerStore::capture`] of `amount` (all of the hold if `None`).
    Capture {
        /// The amount to capture.
        amount: Option<u64>,
    },
    /// [`crate::IssuerStore::void`].
    Void,
    /// [`crate::IssuerStore::refund`] of `amount` under `refund_id`.
    Refund {
        /// The merchant's refund id.
        refund_id: String,
        /// The amount to refund.
        amount: u64,
    },
}

/// One ledger entry: part of a movement whose entries sum to zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Its id.
    pub id: i64,
    /// The movement it belongs to.
    pub movement_id: String,
    /// What kind of movement (`limit`, `hold`, `capture`, `void`, `refund`).
    pub kind: String,
    /// The account: `card:<id>:available`, `card:<id>:held`, `merchant:<id>`, `issuer:credit`.
    pub account: String,
    /// Signed amount in minor units.
    pub amount: i64,
    /// When it was written.
    pub created_at_ms: i64,
}

/// The result of [`crate::IssuerStore::audit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// The sum of every ledger entry (0 when the books balance).
    pub ledger_sum: i64,
    /// Movements whose entries do not sum to zero.
    pub unbalanced_movements: u64,
    /// How many cards were checked.
    pub cards: u64,
    /// Cards whose available credit disagrees with their authorizations or their ledger
    /// account (by card id).
    pub card_mismatches: Vec<String>,
}

impl Audit {
    /// Whether everything balances.
    pub fn is_clean(&self) -> bool {
        self.ledger_sum == 0 && self.unbalanced_movements == 0 && self.card_mismatches.is_empty()
    }
}

/// A merchant's settlement for one day (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementDay {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// Captured that day.
    pub captured: u64,
    /// Refunded that day.
    pub refunded: u64,
}

// ------------------------------------------------------------------------------------------
// Carrier

text_enum! {
    /// Where a shipment is.
    ShipmentStatus {
        /// The carrier accepted the delivery request.
        Accepted = "accepted",
        /// Picked up from the merchant.
        PickedUp = "picked_up",
        /// On its way.
        InTransit = "in_transit",
        /// Delivered (proof of delivery).
        Delivered = "delivered",
        /// Returned to the merchant.
        Returned = "returned",
        /// Cancelled before it was picked up (or before it was even requested: a tombstone);
        /// it never moves again.
        Cancelled = "cancelled",
        /// Cancelled after it was picked up: on its way back to the merchant, then
        /// [`ShipmentStatus::Returned`]. It can never be delivered.
        Returning = "returning",
    }
}

/// A shipment to accept: the destination from the carrier's opened part, the parcel from the
/// merchant's delivery request. No card data, no goods list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShipment {
    /// The merchant.
    pub merchant_id: String,
    /// The merchant's order id.
    pub order_id: OrderId,
    /// The cardholder (who may ask for the status).
    pub cardholder_id: String,
    /// The order's issuer (from the forwarded header): the party whose pairwise key with the
    /// carrier verifies the proof of delivery.
    pub issuer_id: String,
    /// The tracking number to give a new shipment.
    pub tracking_number: String,
    /// Who receives the parcel.
    pub addressee: Secret,
    /// Where.
    pub address: Secret,
    /// The merchant's parcel description (size, weight, pickup), not the goods.
    pub parcel: String,
    /// The sealed header's digest (under the proof of delivery).
    pub header_digest: [u8; 32],
    /// Now.
    pub now_ms: i64,
}

/// A shipment as the carrier stores it. `Debug` redacts the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentRecord {
    /// The tracking number.
    pub tracking_number: String,
    /// The merchant.
    pub merchant_id: String,
    /// The merchant's order id.
    pub order_id: OrderId,
    /// The cardholder.
    pub cardholder_id: String,
    /// Who receives the parcel.
    pub addressee: Secret,
    /// Where.
    pub address: Secret,
    /// The merchant's parcel description.
    pub parcel: String,
    /// Where it is.
    pub status: ShipmentStatus,
    /// The order's issuer (`None` for shipments stored before schema version 2).
    pub issuer_id: Option<String>,
    /// When it was delivered (set by the move to [`ShipmentStatus::Delivered`]).
    pub delivered_at_ms: Option<i64>,
    /// When it was accepted.
    pub created_at_ms: i64,
    /// When it last changed.
    pub updated_at_ms: i64,
}

/// A shipment after a cancellation: `applied` is false when it was already cancelled (or
/// returning, or returned) and nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentCancel {
    /// The shipment (a tombstone if the carrier held none: status cancelled, no destination).
    pub record: ShipmentRecord,
    /// Whether this call changed it.
    pub applied: bool,
}

/// One step of a shipment's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentEvent {
    /// The status reached.
    pub status: ShipmentStatus,
    /// When.
    pub at_ms: i64,
    /// A note (depot, signature), if any.
    pub note: Option<String>,
}

/// Where a delivery event pushed by the carrier to the order's merchant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushState {
    /// Not yet answered by the merchant; retried with backoff.
    Pending,
    /// The merchant took it (applied, or already knew it).
    Sent,
    /// The merchant answered with a verdict (an unknown order, a state that cannot take it):
    /// recorded, not sent again.
    Refused,
    /// Gave up after the retry window (the merchant's tracking poll is the safety net).
    Failed,
}

impl PushState {
    /// The stable text.
    pub fn as_str(self) -> &'static str {
        match self {
            PushState::Pending => "pending",
            PushState::Sent => "sent",
            PushState::Refused => "refused",
            PushState::Failed => "failed",
        }
    }

    /// Parses the stable text.
    pub fn parse(s: &str) -> Option<PushState> {
        [
            PushState::Pending,
            PushState::Sent,
            PushState::Refused,
            PushState::Failed,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// One delivery event in the carrier's outbox: a shipment's status change to push to the
/// order's merchant, with what its proof of delivery is computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPush {
    /// Its id (increasing: one shipment's events are sent in this order).
    pub id: i64,
    /// The shipment.
    pub tracking_number: String,
    /// The merchant to tell.
    pub merchant_id: String,
    /// The merchant's order.
    pub order_id: OrderId,
    /// The status the shipment moved to.
    pub status: ShipmentStatus,
    /// When it moved.
    pub at_ms: i64,
    /// Where the push is.
    pub state: PushState,
    /// Attempts so far (a claim counts one).
    pub attempts: u32,
    /// Not sent again before this (the lease of a claimed push, or its next retry).
    pub next_attempt_at_ms: i64,
    /// When it was first sent.
    pub first_attempt_at_ms: Option<i64>,
    /// The last failure or verdict.
    pub last_error: Option<String>,
    /// When it was sent, refused or given up.
    pub done_at_ms: Option<i64>,
    /// When it was enqueued.
    pub created_at_ms: i64,
    /// The shipment's issuer (under the proof of delivery).
    pub issuer_id: Option<String>,
    /// The sealed header's digest (under the proof of delivery).
    pub header_digest: Option<[u8; 32]>,
    /// When the shipment was delivered (the time under the proof of delivery).
    pub delivered_at_ms: Option<i64>,
}

/// How an attempt of a [`DeliveryPush`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The merchant took it.
    Sent,
    /// The merchant answered with a verdict (the note): not sent again.
    Refused(String),
    /// Not answered (the note): sent again at `at_ms`.
    Retry {
        /// When to send it again.
        at_ms: i64,
        /// What failed.
        error: String,
    },
    /// Retried for too long (the note): given up.
    GiveUp(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installments_put_the_remainder_first() {
        let three = PaymentMethod::Installments { count: 3 };
        assert_eq!(installment_schedule(1000, three), vec![334, 333, 333]);
        assert_eq!(installment_schedule(999, three), vec![333, 333, 333]);
        assert_eq!(installment_schedule(2, three), vec![2, 0, 0]);
        assert_eq!(
            installment_schedule(1000, PaymentMethod::LumpSum),
            vec![1000]
        );
        assert_eq!(installment_schedule(7, PaymentMethod::Bonus), vec![7]);
        let sixty = PaymentMethod::Installments { count: 60 };
        let v = installment_schedule(123_456, sixty);
        assert_eq!(v.len(), 60);
        assert_eq!(v.iter().sum::<u64>(), 123_456);
        assert!(v[1..].iter().all(|x| *x == v[1]));
    }
}
