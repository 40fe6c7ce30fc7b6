//! The traits implemented for [`Store`]: each call goes to the backend's SQL.

use async_trait::async_trait;
use warifu_core::OrderId;

use crate::open::Store;
use crate::types::*;
use crate::{CarrierStore, IssuerStore, MerchantStore, PartyStore, Result};

/// `dispatch!(self, f(args…))`: the backend's `sql::{sqlite,postgres}::f(pool, args…)`.
macro_rules! dispatch {
    ($s:ident, $f:ident($($a:expr),*)) => {
        match &$s.db {
            $crate::open::Db::Sqlite(p) => $crate::sql::sqlite::$f(p $(, $a)*).await,
            $crate::open::Db::Postgres(p) => $crate::sql::postgres::$f(p $(, $a)*).await,
        }
    };
}
pub(crate) use dispatch;

#[async_trait]
impl PartyStore for Store {
    fn backend(&self) -> Backend {
        self.backend_kind()
    }
    async fn ping(&self) -> Result<()> {
        dispatch!(self, ping())
    }
    async fn idempotency_get(&self, scope: &str, key: &str) -> Result<Option<StoredResponse>> {
        dispatch!(self, idempotency_get(scope, key))
    }
    async fn idempotency_put(
        &self,
        scope: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<StoredResponse> {
        dispatch!(self, idempotency_put(scope, key, response))
    }
    async fn idempotency_purge(&self, before_ms: i64) -> Result<u64> {
        dispatch!(self, idempotency_purge(before_ms))
    }
}

#[async_trait]
impl MerchantStore for Store {
    async fn put_order_form(&self, form: &OrderFormRecord) -> Result<()> {
        dispatch!(self, put_order_form(form))
    }
    async fn get_order_form(&self, order_id: &OrderId) -> Result<Option<OrderFormRecord>> {
        dispatch!(self, get_order_form(order_id))
    }
    async fn insert_order(
        &self,
        order: &NewOrder,
        outbox: &[NewOutboxMessage],
    ) -> Result<Inserted<OrderRecord>> {
        dispatch!(self, insert_order(order, outbox))
    }
    async fn insert_order_pinned(
        &self,
        pin: &Pin,
        order: &NewOrder,
        outbox: &[NewOutboxMessage],
    ) -> Result<Inserted<AppliedTransition>> {
        dispatch!(self, insert_order_pinned(pin, order, outbox))
    }
    async fn get_order(&self, order_id: &OrderId) -> Result<Option<OrderRecord>> {
        dispatch!(self, get_order(order_id))
    }
    async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<OrderRecord>> {
        dispatch!(self, list_orders(filter))
    }
    async fn transition(&self, t: &Transition) -> Result<bool> {
        Ok(dispatch!(self, transition(t))?.is_some())
    }
    async fn apply_transition(&self, t: &Transition) -> Result<Option<AppliedTransition>> {
        dispatch!(self, transition(t))
    }
    async fn claim_outbox(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>> {
        dispatch!(self, claim_outbox(now_ms, lease_ms, limit))
    }
    async fn complete_outbox(&self, id: i64) -> Result<()> {
        dispatch!(self, complete_outbox(id))
    }
    async fn hold_outbox(&self, id: i64, due_ms: i64) -> Result<bool> {
        dispatch!(self, hold_outbox(id, due_ms))
    }
    async fn retry_outbox(&self, id: i64, next_attempt_at_ms: i64, error: &str) -> Result<()> {
        dispatch!(self, retry_outbox(id, next_attempt_at_ms, error))
    }
    async fn outbox_for_order(&self, order_id: &OrderId) -> Result<Vec<OutboxMessage>> {
        dispatch!(self, outbox_for_order(order_id))
    }
    async fn outbox_pending(&self) -> Result<u64> {
        dispatch!(self, outbox_pending())
    }
    async fn count_orders_by_state(&self) -> Result<Vec<(OrderState, u64)>> {
        dispatch!(self, count_orders_by_state())
    }
    async fn order_buckets(&self, since_ms: i64, bucket_ms: i64) -> Result<Vec<Bucket>> {
        dispatch!(self, order_buckets(since_ms, bucket_ms))
    }
    async fn outbox_pending_buckets(&self, since_ms: i64, bucket_ms: i64) -> Result<Vec<Bucket>> {
        dispatch!(self, outbox_pending_buckets(since_ms, bucket_ms))
    }
    async fn put_order_fact(&self, fact: &OrderFact) -> Result<()> {
        dispatch!(self, put_order_fact(fact))
    }
    async fn put_order_fact_over(&self, fact: &OrderFact, replaceable: &[Vec<u8>]) -> Result<bool> {
        dispatch!(self, put_order_fact_over(fact, replaceable))
    }
    async fn order_facts(&self, order_id: &OrderId) -> Result<Vec<OrderFact>> {
        dispatch!(self, order_facts(order_id))
    }
}

#[async_trait]
impl IssuerStore for Store {
    async fn enroll_card(&self, card: &NewCard) -> Result<CardRecord> {
        dispatch!(self, enroll_card(card))
    }
    async fn get_card(&self, card_id: &str) -> Result<Option<CardRecord>> {
        dispatch!(self, get_card(card_id))
    }
    async fn cards_for_cardholder(&self, cardholder_id: &str) -> Result<Vec<CardRecord>> {
        dispatch!(self, cards_for_cardholder(cardholder_id))
    }
    async fn set_card_status(&self, card_id: &str, status: CardStatus) -> Result<bool> {
        dispatch!(self, set_card_status(card_id, status))
    }
    async fn authorize(&self, req: &AuthorizeRequest) -> Result<Inserted<AuthorizationRecord>> {
        dispatch!(self, authorize(req))
    }
    async fn authorize_answered(
        &self,
        req: &AuthorizeRequest,
        answer: &Answer<Inserted<AuthorizationRecord>>,
    ) -> Result<(Inserted<AuthorizationRecord>, Option<StoredResponse>)> {
        dispatch!(self, authorize_answered(req, answer))
    }
    async fn get_authorization(
        &self,
        merchant_id: &str,
        order_id: &OrderId,
    ) -> Result<Option<AuthorizationRecord>> {
        dispatch!(self, get_authorization(merchant_id, order_id))
    }
    async fn authorization_binding(
        &self,
        merchant_id: &str,
        order_id: &OrderId,
    ) -> Result<Option<AuthorizationBinding>> {
        dispatch!(self, authorization_binding(merchant_id, order_id))
    }
    async fn authorizations_for_cardholder(
        &self,
        cardholder_id: &str,
    ) -> Result<Vec<AuthorizationRecord>> {
        dispatch!(self, authorizations_for_cardholder(cardholder_id))
    }
    async fn capture(
        &self,
        merchant_id: &str,
        order_id: &OrderId,
        amount: Option<u64>,
        now_ms: i64,
    ) -> Result<Applied> {
        dispatch!(self, capture(merchant_id, order_id, amount, now_ms))
    }
    async fn void(&self, merchant_id: &str, order_id: &OrderId, now_ms: i64) -> Result<Applied> {
        dispatch!(self, void(merchant_id, order_id, now_ms))
    }
    async fn payment_step_answered(
        &self,
        merchant_id: &str,
        order_id: &OrderId,
        step: &PaymentStep,
        now_ms: i64,
        answer: &Answer<Applied>,
    ) -> Result<(Applied, Option<StoredResponse>)> {
        dispatch!(
            self,
            payment_step_answered(merchant_id, order_id, step, now_ms, answer)
        )
    }
    async fn refund(
        &self,
        merchant_id: &str,
        order_id: &OrderId,
        refund_id: &str,
        amount: u64,
        now_ms: i64,
    ) -> Result<Applied> {
        dispatch!(
            self,
            refund(merchant_id, order_id, refund_id, amount, now_ms)
        )
    }
    async fn ledger_sum(&self) -> Result<i64> {
        dispatch!(self, ledger_sum())
    }
    async fn ledger_balance(&self, account: &str) -> Result<i64> {
        dispatch!(self, ledger_balance(account))
    }
    async fn unbalanced_movements(&self) -> Result<u64> {
        dispatch!(self, unbalanced_movements())
    }
    async fn ledger_entries(&self, account: &str) -> Result<Vec<LedgerEntry>> {
        dispatch!(self, ledger_entries(account))
    }
    async fn settlement_report(&self, merchant_id: &str) -> Result<Vec<SettlementDay>> {
        dispatch!(self, settlement_report(merchant_id))
    }
    async fn list_cards(&self, limit: u32, offset: u32) -> Result<Vec<CardRecord>> {
        dispatch!(self, list_cards(limit, offset))
    }
    async fn list_authorizations(
        &self,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<AuthorizationRecord>> {
        dispatch!(self, list_authorizations(limit, offset))
    }
    async fn audit(&self) -> Result<Audit> {
        dispatch!(self, audit())
    }
    async fn count_authorizations(
        &self,
    ) -> Result<Vec<(AuthorizationStatus, Option<DeclineCode>, u64)>> {
        dispatch!(self, count_authorizations())
    }
    async fn authorization_buckets(&self, since_ms: i64, bucket_ms: i64) -> Result<Vec<Bucket>> {
        dispatch!(self, authorization_buckets(since_ms, bucket_ms))
    }
}

#[async_trait]
impl CarrierStore for Store {
    async fn accept_shipment(&self, s: &NewShipment) -> Result<Inserted<ShipmentRecord>> {
        dispatch!(self, accept_shipment(s))
    }
    async fn get_shipment(
        &self,
        merchant_id: &str,
        order_id: &OrderId,
    ) -> Result<Option<ShipmentRecord>> {
        dispatch!(self, get_shipment(merchant_id, order_id))
    }
    async fn shipment_by_tracking(&self, tracking_number: &str) -> Result<Option<ShipmentRecord>> {
        dispatch!(self, shipment_by_tracking(tracking_number))
    }
    async fn advance_shipment(
        &self,
        tracking_number: &str,
        from: ShipmentStatus,
        to: ShipmentStatus,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<bool> {
        dispatch!(
            self,
            advance_shipment(tracking_number, from, to, note, now_ms)
        )
    }
    async fn cancel_shipment(
        &self,
        merchant_id: &str,
        order_id: &OrderId,
        tombstone_tracking: &str,
        now_ms: i64,
    ) -> Result<ShipmentCancel> {
        dispatch!(
            self,
            cancel_shipment(merchant_id, order_id, tombstone_tracking, now_ms)
        )
    }
    async fn shipment_header_digest(&self, tracking_number: &str) -> Result<Option<[u8; 32]>> {
        dispatch!(self, shipment_header_digest(tracking_number))
    }
    async fn shipment_events(&self, tracking_number: &str) -> Result<Vec<ShipmentEvent>> {
        dispatch!(self, shipment_events(tracking_number))
    }
    async fn list_shipments(&self, limit: u32, offset: u32) -> Result<Vec<ShipmentRecord>> {
        dispatch!(self, list_shipments(limit, offset))
    }
    async fn count_shipments_by_status(&self) -> Result<Vec<(ShipmentStatus, u64)>> {
        dispatch!(self, count_shipments_by_status())
    }
    async fn shipment_event_buckets(&self, since_ms: i64, bucket_ms: i64) -> Result<Vec<Bucket>> {
        dispatch!(self, shipment_event_buckets(since_ms, bucket_ms))
    }
    async fn claim_pushes(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryPush>> {
        dispatch!(self, claim_pushes(now_ms, lease_ms, limit))
    }
    async fn finish_push(&self, id: i64, outcome: &PushOutcome, now_ms: i64) -> Result<()> {
        dispatch!(self, finish_push(id, outcome, now_ms))
    }
    async fn pushes_for(&self, tracking_number: &str) -> Result<Vec<DeliveryPush>> {
        dispatch!(self, pushes_for(tracking_number))
    }
    async fn pushes_pending(&self) -> Result<u64> {
        dispatch!(self, pushes_pending())
    }
}
