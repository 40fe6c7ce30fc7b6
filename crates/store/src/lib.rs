//! Warifu's durable storage: one trait per party aggregate, for SQLite and PostgreSQL.
//!
//! Each party keeps exactly its own view of an order (issue 3, item 4):
//! - the merchant ([`MerchantStore`]) stores its disclosed fields as JSON and the still-sealed
//!   carrier part (ciphertext), never a card number or a destination;
//! - the issuer ([`IssuerStore`]) stores cards (it is entitled to the number), authorizations
//!   and a double-entry ledger, never a destination;
//! - the carrier ([`CarrierStore`]) stores shipments with their destination, never card data
//!   or goods.
//!
//! [`Store`] implements every trait over either backend; a service holds the one it needs as
//! `Arc<dyn MerchantStore>` (the traits are object safe through `async-trait`). Open with
//! [`Store::open`] (`sqlite://PATH` or `postgres://…`) or [`Store::open_party`] (one SQLite
//! file per party in a data directory). Migrations are embedded and run on open.
//!
//! Durability and concurrency:
//! - SQLite (through rusqlite, module `lite`) runs in WAL mode with `synchronous=FULL` by
//!   default, foreign keys on, a busy timeout, and one writer thread per database: every
//!   write goes to it, and it runs the queued operations in one `BEGIN IMMEDIATE`
//!   transaction, each under its own savepoint, and answers each caller only after the shared
//!   `COMMIT` (so concurrent writers share one fsync, and a write crosses threads once, not
//!   once per statement). Reads run on the caller's thread over a few read-only connections.
//! - PostgreSQL runs each write in its own transaction; row locks (`FOR UPDATE`, `SKIP
//!   LOCKED` for the outbox) keep concurrent replicas correct. [`StoreOptions::schema`] puts a
//!   party (or a test run) in its own schema.
//! - Every multi-row change is one transaction: an order, the pin of the request that placed
//!   it and its first outbox message; a state transition, the messages it causes, the outbox
//!   entry it completes and the facts and answers it learned (returning the new row and the
//!   new messages, so the caller reads nothing back); an authorization (or a capture, void
//!   or refund), its hold, the card's available credit, the balanced ledger movement and the
//!   answer kept for retries ([`Answer`]).
//!
//! Times are Unix milliseconds passed by the caller; amounts are minor units.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod atrest;
mod cards;
mod error;
mod impls;
mod kemkeys;
mod lite;
mod migrate;
mod open;
pub mod rules;
mod sessions;
mod sql;
mod types;
mod webhooks;

use async_trait::async_trait;
use warifu_core::OrderId;

pub use cards::CardAdminStore;
pub use error::{Result, StoreError};
pub use kemkeys::{KemKeyStore, StoredKemKey};
pub use open::{Store, StoreOptions, Synchronous, create_private_dir};
pub use sessions::SessionStore;
pub use types::*;
pub use webhooks::*;

/// What every party's store offers: health and idempotency records.
#[async_trait]
pub trait PartyStore: SessionStore + KemKeyStore + Send + Sync {
    /// The database behind the store.
    fn backend(&self) -> Backend;

    /// Checks that the database answers (for readiness probes).
    async fn ping(&self) -> Result<()>;

    /// The first answer stored under `key` in `scope` (e.g. the endpoint and the caller).
    async fn idempotency_get(&self, scope: &str, key: &str) -> Result<Option<StoredResponse>>;

    /// Stores the first answer under `key` in `scope` unless one is there; returns the stored
    /// answer either way (so the caller replies with the first answer on a race).
    async fn idempotency_put(
        &self,
        scope: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<StoredResponse>;

    /// Deletes idempotency records stored before `before_ms`; returns how many.
    async fn idempotency_purge(&self, before_ms: i64) -> Result<u64>;
}

/// The merchant's aggregate: order forms, orders as a state machine, and the outbox.
#[async_trait]
pub trait MerchantStore: PartyStore + WebhookStore {
    /// Records an order form it issued. Fails with [`StoreError::Conflict`] if the id is taken.
    async fn put_order_form(&self, form: &OrderFormRecord) -> Result<()>;

    /// The order form issued under `order_id`.
    async fn get_order_form(&self, order_id: &OrderId) -> Result<Option<OrderFormRecord>>;

    /// Inserts a new order in state [`OrderState::Received`] together with `outbox` messages in
    /// one transaction. If the order id exists nothing is written and the stored order is
    /// returned with `created: false` (a replayed submission never acts twice).
    async fn insert_order(
        &self,
        order: &NewOrder,
        outbox: &[NewOutboxMessage],
    ) -> Result<Inserted<OrderRecord>>;

    /// [`MerchantStore::insert_order`] behind a pin, in one transaction: the first request
    /// under the pin's key records its fingerprint; a request with another fingerprint under
    /// the key writes nothing and fails with [`StoreError::Conflict`]. The record holds the
    /// order and the messages enqueued now (none if it existed).
    async fn insert_order_pinned(
        &self,
        pin: &Pin,
        order: &NewOrder,
        outbox: &[NewOutboxMessage],
    ) -> Result<Inserted<AppliedTransition>>;

    /// The order with `order_id`.
    async fn get_order(&self, order_id: &OrderId) -> Result<Option<OrderRecord>>;

    /// Orders matching `filter`, newest first.
    async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<OrderRecord>>;

    /// Applies `t` only if the order is in one of `t.from` (compare-and-set): sets the state and
    /// fields, enqueues `t.outbox` and completes `t.complete_outbox`, in one transaction.
    /// Returns whether it applied; `false` writes nothing. [`StoreError::NotFound`] if there
    /// is no such order.
    async fn transition(&self, t: &Transition) -> Result<bool>;

    /// [`MerchantStore::transition`] that also stores `t.facts` and `t.records` and returns
    /// the order as it now is with the messages it enqueued (`None`: not applied, nothing
    /// written). Every state change of an order passes here, inside its transaction.
    async fn apply_transition(&self, t: &Transition) -> Result<Option<AppliedTransition>>;

    /// Claims up to `limit` due messages (not done, `next_attempt_at_ms <= now_ms`), oldest
    /// first: each one's attempts grow by one and it is leased until `now_ms + lease_ms`, so
    /// another worker does not take it meanwhile.
    async fn claim_outbox(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>>;

    /// Marks a message delivered.
    async fn complete_outbox(&self, id: i64) -> Result<()>;

    /// Keeps a message that is being sent from being claimed: moves its due time up to
    /// `due_ms` (never back; a claim waits for the due time plus its grace). Returns whether
    /// it moved (`false`: done, or already due later).
    async fn hold_outbox(&self, id: i64, due_ms: i64) -> Result<bool>;

    /// Records a failed attempt: not before `next_attempt_at_ms` again.
    async fn retry_outbox(&self, id: i64, next_attempt_at_ms: i64, error: &str) -> Result<()>;

    /// Every message of an order, oldest first.
    async fn outbox_for_order(&self, order_id: &OrderId) -> Result<Vec<OutboxMessage>>;

    /// How many messages are not done.
    async fn outbox_pending(&self) -> Result<u64>;

    /// How many orders are in each state.
    async fn count_orders_by_state(&self) -> Result<Vec<(OrderState, u64)>>;

    /// Orders received since `since_ms`, by `bucket_ms`-wide bucket of their receipt and
    /// outcome so far: the decline code of a declined order, `approved` once the issuer
    /// approved, else the state (`received`, `failed`, …).
    async fn order_buckets(&self, since_ms: i64, bucket_ms: i64) -> Result<Vec<Bucket>>;

    /// The outbox's messages not done, by `bucket_ms`-wide bucket of their enqueueing and
    /// kind; those enqueued before `since_ms` count in its bucket.
    async fn outbox_pending_buckets(&self, since_ms: i64, bucket_ms: i64) -> Result<Vec<Bucket>>;

    /// Stores (or replaces) what the merchant last learned about an order (merchant lifecycle).
    async fn put_order_fact(&self, fact: &OrderFact) -> Result<()>;

    /// Stores `fact` unless the order already has one of its kind whose body is not in
    /// `replaceable`, in one statement (a status that only moves forward, such as a parcel's:
    /// a later one written meanwhile is kept). True if it was written.
    async fn put_order_fact_over(&self, fact: &OrderFact, replaceable: &[Vec<u8>]) -> Result<bool>;

    /// Every fact stored about an order, by kind.
    async fn order_facts(&self, order_id: &OrderId) -> Result<Vec<OrderFact>>;
}

/// The issuer's aggregate: cards, authorizations and the double-entry ledger.
#[async_trait]
pub trait IssuerStore: PartyStore + CardAdminStore {
    /// Enrolls a card and books its credit line in the ledger. Fails with
    /// [`StoreError::Conflict`] if the card id is taken.
    async fn enroll_card(&self, card: &NewCard) -> Result<CardRecord>;

    /// The card with `card_id`.
    async fn get_card(&self, card_id: &str) -> Result<Option<CardRecord>>;

    /// Every card of a cardholder.
    async fn cards_for_cardholder(&self, cardholder_id: &str) -> Result<Vec<CardRecord>>;

    /// Sets a card's status; returns whether the card exists.
    async fn set_card_status(&self, card_id: &str, status: CardStatus) -> Result<bool>;

    /// Decides an authorization in one transaction: finds the cardholder's card by number,
    /// checks name, expiry, status, currency and available credit, and on approval inserts
    /// the hold, decrements the available credit and books the ledger movement. Declines are
    /// stored too. Unique on (merchant, order): a retry returns the stored decision with
    /// `created: false` and never holds twice, even under concurrency.
    async fn authorize(&self, req: &AuthorizeRequest) -> Result<Inserted<AuthorizationRecord>>;

    /// [`IssuerStore::authorize`] keeping `answer` of its result in the same transaction:
    /// returns the stored answer too (the one a request before stored, if any; `None` if
    /// `answer` made none).
    async fn authorize_answered(
        &self,
        req: &AuthorizeRequest,
        answer: &Answer<Inserted<AuthorizationRecord>>,
    ) -> Result<(Inserted<AuthorizationRecord>, Option<StoredResponse>)>;

    /// The authorization for a merchant's order.
    async fn get_authorization(
        &self,
        merchant_id: &str,
        order_id: &OrderId,
    ) -> Result<Option<AuthorizationRecord>>;

    /// What the authorization for a merchant's order is bound to: the order's carrier and
    /// the sealed header's digest.
    async fn authorization_binding(
        &self,
        merchant_id: &str,
        order_id: &OrderId,
    ) -> Result<Option<AuthorizationBinding>>;

    /// A cardholder's authorizations (its statement), newest first.
    async fn authorizations_for_cardholder(
        &self,
        cardholder_id: &str,
    ) -> Result<Vec<AuthorizationRecord>>;

    /// Captures `amount` (all of the hold if `None`) and releases the rest of the hold. A
    /// retry after a capture returns `applied: false`. [`StoreError::Conflict`] if the
    /// authorization is declined or voided, or the amount exceeds the hold.
    async fn capture(
        &self,
        merchant_id: &str,
        order_id: &OrderId,
        amount: Option<u64>,
        now_ms: i64,
    ) -> Result<Applied>;

    /// Releases the hold. A retry after a void returns `applied: false`;
    /// [`StoreError::Conflict`] if it was captured or declined.
    async fn void(&self, merchant_id: &str, order_id: &OrderId, now_ms: i64) -> Result<Applied>;

    /// Refunds `amount` of the captured amount under `refund_id`, idempotent per (merchant,
    /// order, refund id): the same id on another order is another refund; a retry with the
    /// same amount returns `applied: false`, with another amount [`StoreError::Conflict`].
    /// [`StoreError::Conflict`] too if it would refund more than was captured.
    async fn refund(
        &self,
        merchant_id: &str,
        order_id: &OrderId,
        refund_id: &str,
        amount: u64,
        now_ms: i64,
    ) -> Result<Applied>;

    /// A capture, void or refund ([`PaymentStep`], as the methods above) keeping `answer` of
    /// its result in the same transaction, as [`IssuerStore::authorize_answered`].
    async fn payment_step_answered(
        &self,
        merchant_id: &str,
        order_id: &OrderId,
        step: &PaymentStep,
        now_ms: i64,
        answer: &Answer<Applied>,
    ) -> Result<(Applied, Option<StoredResponse>)>;

    /// The sum of every ledger entry (zero when the books balance).
    async fn ledger_sum(&self) -> Result<i64>;

    /// The balance of one ledger account.
    async fn ledger_balance(&self, account: &str) -> Result<i64>;

    /// How many movements do not sum to zero (zero when the books balance).
    async fn unbalanced_movements(&self) -> Result<u64>;

    /// The entries of one account, oldest first.
    async fn ledger_entries(&self, account: &str) -> Result<Vec<LedgerEntry>>;

    /// A merchant's captures and refunds by UTC day.
    async fn settlement_report(&self, merchant_id: &str) -> Result<Vec<SettlementDay>>;

    /// Cards, ordered by card id (for the issuer's dashboard; numbers stay [`Secret`]s).
    ///
    /// [`Secret`]: warifu_core::secret::Secret
    async fn list_cards(&self, limit: u32, offset: u32) -> Result<Vec<CardRecord>>;

    /// Authorizations, newest first.
    async fn list_authorizations(
        &self,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<AuthorizationRecord>>;

    /// Checks the books: the ledger sums to zero, every movement balances, and each card's
    /// available credit equals limit − holds − captures + refunds and its ledger balance.
    async fn audit(&self) -> Result<Audit>;

    /// How many authorizations there are by payment state and decline code (none for an
    /// approval), for the issuer's metrics.
    async fn count_authorizations(
        &self,
    ) -> Result<Vec<(AuthorizationStatus, Option<DeclineCode>, u64)>>;

    /// Authorization decisions made since `since_ms`, by `bucket_ms`-wide bucket and decline
    /// code (`approved` for an approval).
    async fn authorization_buckets(&self, since_ms: i64, bucket_ms: i64) -> Result<Vec<Bucket>>;
}

/// The carrier's aggregate: shipments and their events.
#[async_trait]
pub trait CarrierStore: PartyStore {
    /// Accepts a shipment in status [`ShipmentStatus::Accepted`]. Unique on (merchant, order):
    /// a retry returns the stored shipment (and its tracking number) with `created: false`.
    async fn accept_shipment(&self, s: &NewShipment) -> Result<Inserted<ShipmentRecord>>;

    /// The shipment for a merchant's order.
    async fn get_shipment(
        &self,
        merchant_id: &str,
        order_id: &OrderId,
    ) -> Result<Option<ShipmentRecord>>;

    /// The shipment with a tracking number.
    async fn shipment_by_tracking(&self, tracking_number: &str) -> Result<Option<ShipmentRecord>>;

    /// Moves a shipment from `from` to `to` (compare-and-set) and records the event, with the
    /// delivery event to push to the merchant (see [`rules::shipment_pushed`]) in the same
    /// transaction; returns whether it applied. [`StoreError::Conflict`] for a move [`rules::shipment_move`]
    /// refuses (a cancelled or returning shipment is never delivered). A move to
    /// [`ShipmentStatus::Delivered`] also records its time
    /// ([`ShipmentRecord::delivered_at_ms`], the time under the proof of delivery).
    /// [`StoreError::NotFound`] if there is no such shipment.
    async fn advance_shipment(
        &self,
        tracking_number: &str,
        from: ShipmentStatus,
        to: ShipmentStatus,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<bool>;

    /// The merchant cancels its order's shipment (see [`rules::shipment_cancel`]): accepted
    /// → cancelled, picked up or in transit → returning, unchanged if already cancelled,
    /// returning or returned (`applied: false`); [`StoreError::Conflict`] if delivered. If the
    /// carrier holds no shipment for the order, it records a cancelled tombstone under
    /// `tombstone_tracking` (no destination), so a later [`CarrierStore::accept_shipment`]
    /// returns it instead of a new shipment.
    async fn cancel_shipment(
        &self,
        merchant_id: &str,
        order_id: &OrderId,
        tombstone_tracking: &str,
        now_ms: i64,
    ) -> Result<ShipmentCancel>;

    /// The sealed header's digest of a shipment (under its proof of delivery); `None` for a
    /// tombstone or a shipment stored before schema version 4.
    async fn shipment_header_digest(&self, tracking_number: &str) -> Result<Option<[u8; 32]>>;

    /// A shipment's history, oldest first.
    async fn shipment_events(&self, tracking_number: &str) -> Result<Vec<ShipmentEvent>>;

    /// Shipments, newest first.
    async fn list_shipments(&self, limit: u32, offset: u32) -> Result<Vec<ShipmentRecord>>;

    /// How many shipments are in each status, for the carrier's metrics.
    async fn count_shipments_by_status(&self) -> Result<Vec<(ShipmentStatus, u64)>>;

    /// Shipment events since `since_ms`, by `bucket_ms`-wide bucket and the status moved to.
    async fn shipment_event_buckets(&self, since_ms: i64, bucket_ms: i64) -> Result<Vec<Bucket>>;

    /// Claims up to `limit` due delivery events of the outbox (pending, `next_attempt_at_ms <=
    /// now_ms`, and no earlier event of the same shipment pending: one shipment's events are
    /// sent in order), oldest due first: each one's attempts grow by one and it is leased
    /// until `now_ms + lease_ms`. [`CarrierStore::advance_shipment`] enqueues them (see
    /// [`rules::shipment_pushed`]).
    async fn claim_pushes(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryPush>>;

    /// Records how an attempt of push `id` ended (only a pending push changes).
    /// [`StoreError::NotFound`] if there is no such push.
    async fn finish_push(&self, id: i64, outcome: &PushOutcome, now_ms: i64) -> Result<()>;

    /// Every delivery event of a shipment, oldest first.
    async fn pushes_for(&self, tracking_number: &str) -> Result<Vec<DeliveryPush>>;

    /// How many delivery events are pending.
    async fn pushes_pending(&self) -> Result<u64>;
}
