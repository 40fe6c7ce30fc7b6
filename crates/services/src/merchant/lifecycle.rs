//! An order after intake, as its cardholder sees it: its outcome (state, the issuer's decision,
//! payment and delivery) and cancelling (void before shipping, refund after capture).

use std::sync::Arc;
use warifu_core::OrderId;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::PartyId;
use warifu_store::{OrderRecord, Transition};

use super::machine::{Event, Kind};
use super::state::{BUNDLE_CONFLICT, MerchantState, require_cardholder};
use super::worker::{self, Applied};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::idempotency::Idempotent;
use crate::http::service::{fingerprint, store_error};
use crate::protocol::cardholder_merchant::{CancelRequest, OrderOutcome};
use crate::protocol::merchant_issuer::Decision;
use crate::session::server::{JsonBody, Peer};

/// Idempotency scope holding the first answer to a cancellation.
pub(super) const SCOPE_CANCEL: &str = "cancel";

/// An order's status and cancelling (in a cardholder's session).
pub(super) fn routes() -> OpenApiRouter<Arc<MerchantState>> {
    OpenApiRouter::new()
        .routes(routes!(order_status))
        .routes(routes!(cancel))
}

pub(super) async fn outcome_of(st: &MerchantState, order: &OrderRecord) -> AppResult<OrderOutcome> {
    let decision = st
        .store
        .idempotency_get(worker::SCOPE_DECISION, &order.order_id)
        .await
        .map_err(store_error("reading a decision"))?
        .map(|r| serde_json::from_slice::<Decision>(&r.body))
        .transpose()
        .map_err(|e| AppError::internal("reading a stored decision", &e))?
        .map(|mut d| {
            d.carrier_approval = None;
            d
        });
    let facts = st
        .store
        .order_facts(&order.order_id)
        .await
        .map_err(store_error("reading order facts"))?;
    let fact = |kind: &str| facts.iter().find(|f| f.kind == kind).map(|f| &f.body);
    Ok(OrderOutcome {
        order_id: order.order_id.clone(),
        state: order.state.as_str().to_owned(),
        decision,
        carrier: order
            .carrier_id
            .as_deref()
            .and_then(|c| PartyId::parse(c).ok()),
        tracking_number: order.tracking_number.clone(),
        payment: fact(worker::FACT_PAYMENT).and_then(|b| serde_json::from_slice(b).ok()),
        // Until the worker learns more, a shipment is as the carrier accepted it.
        delivery: fact(worker::FACT_DELIVERY)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .or_else(|| {
                order
                    .tracking_number
                    .as_ref()
                    .map(|_| "accepted".to_owned())
            }),
    })
}

async fn cardholders_order(
    st: &MerchantState,
    peer: &PartyId,
    order_id: &OrderId,
) -> AppResult<OrderRecord> {
    st.store
        .get_order(order_id)
        .await
        .map_err(store_error("reading an order"))?
        .filter(|o| o.cardholder_id == peer.as_str())
        .ok_or_else(|| AppError::new(ErrorCode::UnknownOrder, "no such order for this caller"))
}

#[utoipa::path(get, path = "/v1/orders/{order_id}", responses((status = 200, description = "The cardholder's order as the merchant sees it", body = OrderOutcome)))]
async fn order_status(
    State(st): State<Arc<MerchantState>>,
    Peer(peer): Peer,
    Path(order_id): Path<OrderId>,
) -> AppResult<Json<OrderOutcome>> {
    let order = cardholders_order(&st, &peer, &order_id).await?;
    outcome_of(&st, &order).await.map(Json)
}

pub(super) fn invalid(message: &str) -> AppError {
    AppError::new(ErrorCode::InvalidTransition, message)
}

/// Cancels an order as the lifecycle says (see [`super::machine`]): before the carrier
/// accepted anything the hold is voided (→ `voided`; a delivery request already sent is
/// withdrawn with `cancel_shipment`); after it accepted, the carrier is told first
/// (`cancelling`) and its answer decides: not picked up → `cancelled` → `voided` or
/// `refunded`; picked up → `returning`, refunded when the parcel is back; delivered → the
/// cancellation is refused (`invalid_transition`) and the order stays delivered. A digital
/// order after capture is refunded at once. A delivered order answers `invalid_transition`; a
/// cancelled one answers its current state again.
pub(super) async fn cancel_order(st: &MerchantState, order: OrderRecord) -> AppResult<OrderRecord> {
    let order_id = order.order_id.clone();
    // The messages the cancellation replaces; an authorization in flight stays (its approval
    // is then voided).
    let pending: Vec<i64> = st
        .store
        .outbox_for_order(&order_id)
        .await
        .map_err(store_error("reading the outbox"))?
        .into_iter()
        .filter(|m| !m.done && m.kind != Kind::Authorize.as_str())
        .map(|m| m.id)
        .collect();
    let from = order.state;
    let edit = move |mut t: Transition| {
        if t.to != from {
            for id in &pending {
                t = t.complete(*id);
            }
            t = t.clear_carrier_part();
        }
        t
    };
    match worker::advance(st, &order, &Event::Cancel, None, &edit, None).await? {
        Applied::To(a) if a.order.state != from => {
            tracing::info!(%order_id, %from, to = %a.order.state, "order cancelled");
        }
        Applied::To(_) => {}
        Applied::Refused(r) => return Err(invalid(r.message)),
        Applied::Moved => {
            return Err(invalid(
                "the order changed while being cancelled; try again",
            ));
        }
    }
    worker::drive(st, &order_id).await
}

#[utoipa::path(post, path = "/v1/orders/{order_id}/cancel", request_body = CancelRequest, responses((status = 200, description = "The cancelled order", body = OrderOutcome)))]
async fn cancel(
    State(st): State<Arc<MerchantState>>,
    Peer(peer): Peer,
    Path(order_id): Path<OrderId>,
    JsonBody(_): JsonBody<CancelRequest>,
) -> AppResult<Response> {
    require_cardholder(&peer)?;
    let order = cardholders_order(&st, &peer, &order_id).await?;
    let fp = fingerprint(&[peer.as_str().as_bytes()]);
    let once = Idempotent {
        scope: SCOPE_CANCEL,
        key: &order_id,
        fp: &fp,
        conflict: BUNDLE_CONFLICT,
    };
    if let Some(first) = once.earlier(st.store.as_ref()).await? {
        return Ok(first);
    }
    let order = cancel_order(&st, order).await?;
    let outcome = outcome_of(&st, &order).await?;
    once.answer(st.store.as_ref(), &outcome, st.clock().now_ms())
        .await
}

pub(super) async fn read_any_order(
    st: &MerchantState,
    order_id: &OrderId,
) -> AppResult<OrderRecord> {
    st.store
        .get_order(order_id)
        .await
        .map_err(store_error("reading an order"))?
        .ok_or_else(|| AppError::new(ErrorCode::UnknownOrder, "no such order"))
}
