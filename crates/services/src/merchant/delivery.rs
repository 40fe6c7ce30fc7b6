//! Delivery events pushed by the order's carrier (`POST /v1/delivery-events`): applied as the tracking poll applies them, once.
//!
//! Only the carrier named in the order (the session's peer) may tell of its shipment; any
//! other caller's event, or one for an order it does not carry, is `unknown_order` (nothing
//! about other orders is revealed). `delivered` and `returned` move the order exactly as the
//! `track` step does ([`super::worker`]: facts `delivery` and `proof`, events `TrackDelivered`
//! / `TrackReturned`, the refund of a returned parcel) and complete the pending `track`
//! poll in the same transaction; `picked_up` and `in_transit` are recorded as the delivery
//! fact. The same event again answers `applied: false`. An order that cannot take the event
//! yet (its delivery request, capture or cancellation still being answered) is
//! `order_not_ready`, which the carrier retries; one that never can is `invalid_transition`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::Role;
use warifu_store::{OrderRecord, OrderState, ShipmentStatus, Transition};

use super::machine::{self, Event, Kind, REFUND_RETURNED};
use super::state::MerchantState;
use super::worker::{self, Applied, FACT_DELIVERY, FACT_PROOF};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::service::{store_error, to_json};
use crate::protocol::carrier_merchant::{DeliveryEvent, DeliveryEventAck, PATH_DELIVERY_EVENTS};
use crate::session::server::{JsonBody, Peer};

/// The delivery events (in a carrier's session).
pub(super) fn routes() -> OpenApiRouter<Arc<MerchantState>> {
    OpenApiRouter::new().routes(routes!(delivery_event))
}

fn unknown() -> AppError {
    AppError::new(
        ErrorCode::UnknownOrder,
        "no such shipped order of this carrier",
    )
}

fn malformed(message: &str) -> AppError {
    AppError::new(ErrorCode::MalformedRequest, message)
}

/// Whether `s` is a usable identifier (1–256 bytes, no control characters).
fn usable(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control)
}

/// States in which an order may still come to take a delivered or returned parcel: its
/// delivery request, capture or cancellation is being answered.
fn not_ready_yet(state: OrderState) -> bool {
    matches!(
        state,
        OrderState::ShippingRequested | OrderState::Shipped | OrderState::Cancelling
    )
}

#[utoipa::path(post, path = PATH_DELIVERY_EVENTS, request_body = DeliveryEvent, responses((status = 200, description = "The event is applied (or was already known: `applied: false`)", body = DeliveryEventAck)))]
async fn delivery_event(
    State(st): State<Arc<MerchantState>>,
    Peer(peer): Peer,
    JsonBody(ev): JsonBody<DeliveryEvent>,
) -> AppResult<Json<DeliveryEventAck>> {
    if peer.role() != Role::Carrier {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "only the order's carrier sends delivery events",
        ));
    }
    let status = ShipmentStatus::parse(&ev.status)
        .filter(|s| warifu_store::rules::shipment_pushed(*s))
        .ok_or_else(|| {
            malformed("`status` is one of picked_up, in_transit, delivered, returned")
        })?;
    if !usable(&ev.event_id) || !usable(&ev.tracking_number) || !usable(&ev.order_id) {
        return Err(malformed(
            "the event id, order id and tracking number are 1–256 bytes without control characters",
        ));
    }
    let order = st
        .store()
        .get_order(&ev.order_id)
        .await
        .map_err(store_error("reading an order"))?
        .filter(|o| o.carrier_id.as_deref() == Some(peer.as_str()))
        .ok_or_else(|| {
            tracing::warn!(order_id = %ev.order_id, carrier = %peer, "delivery event for an order this carrier does not carry");
            unknown()
        })?;
    if order
        .tracking_number
        .as_deref()
        .is_some_and(|t| t != ev.tracking_number)
    {
        tracing::warn!(order_id = %ev.order_id, carrier = %peer, "delivery event for another shipment of the order");
        return Err(unknown());
    }
    let proof = match (&ev.proof_of_delivery, status) {
        (None, _) => None,
        (Some(p), ShipmentStatus::Delivered) => {
            let consistent = p.order_id == ev.order_id
                && &p.merchant == st.id()
                && p.carrier == peer
                && p.tracking_number == ev.tracking_number
                && p.issuer.as_str() == order.issuer_id;
            if !consistent {
                return Err(malformed(
                    "the proof of delivery is not about this order, merchant, carrier and shipment",
                ));
            }
            Some(to_json(p)?)
        }
        (Some(_), _) => return Err(malformed("only a delivery carries a proof of delivery")),
    };
    tracing::info!(order_id = %ev.order_id, carrier = %peer, event_id = %ev.event_id, %status, "delivery event");
    apply(&st, order, status, proof).await.map(Json)
}

/// The answer: the order as it is, and whether this event changed it.
fn ack(order: &OrderRecord, applied: bool) -> DeliveryEventAck {
    DeliveryEventAck {
        order_id: order.order_id.clone(),
        state: order.state.as_str().to_owned(),
        applied,
    }
}

/// The delivery status the merchant last recorded for the order.
async fn seen(st: &MerchantState, order: &OrderRecord) -> AppResult<Option<Vec<u8>>> {
    Ok(st
        .store()
        .order_facts(&order.order_id)
        .await
        .map_err(store_error("reading order facts"))?
        .into_iter()
        .find(|f| f.kind == FACT_DELIVERY)
        .map(|f| f.body))
}

/// Applies a pushed status to `order` (re-read if another writer moved it meanwhile).
async fn apply(
    st: &MerchantState,
    mut order: OrderRecord,
    status: ShipmentStatus,
    proof: Option<Vec<u8>>,
) -> AppResult<DeliveryEventAck> {
    let name = status.as_str();
    for _ in 0..4 {
        let event = match status {
            ShipmentStatus::Delivered => Event::TrackDelivered,
            ShipmentStatus::Returned => Event::TrackReturned,
            _ => {
                // On its way: recorded while the parcel is out, unless a later status is.
                let out = matches!(
                    order.state,
                    OrderState::ShippingRequested
                        | OrderState::Shipped
                        | OrderState::Captured
                        | OrderState::Cancelling
                        | OrderState::Returning
                );
                if !out {
                    return Ok(ack(&order, false));
                }
                let noted = worker::note_parcel(st, &order.order_id, name).await?;
                return Ok(ack(&order, noted));
            }
        };
        if seen(st, &order).await?.as_deref() == Some(name.as_bytes()) {
            // The same event again (or the poll learned it first).
            return Ok(ack(&order, false));
        }
        let facts = worker::facts_of(st, &order).await?;
        if let Err(r) = machine::next(order.state, facts, &event) {
            if not_ready_yet(order.state) {
                return Err(AppError::new(
                    ErrorCode::OrderNotReady,
                    format!(
                        "the order is {}: it cannot take a {name} parcel yet; send it again later",
                        order.state
                    ),
                ));
            }
            tracing::warn!(order_id = %order.order_id, state = %order.state, %status, reason = r.message, "pushed delivery event refused by the lifecycle");
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                format!("the order is {}: {}", order.state, r.message),
            ));
        }
        // The poll still pending is done with the transition.
        let polls: Vec<i64> = st
            .store()
            .outbox_for_order(&order.order_id)
            .await
            .map_err(store_error("reading the outbox"))?
            .into_iter()
            .filter(|m| !m.done && m.kind == Kind::Track.as_str())
            .map(|m| m.id)
            .collect();
        let returned = status == ShipmentStatus::Returned;
        let proof = proof.clone();
        let edit = move |t: Transition| {
            let mut t = t.fact(FACT_DELIVERY, name.as_bytes().to_vec());
            if let Some(p) = &proof {
                t = t.fact(FACT_PROOF, p.clone());
            }
            if returned {
                t = t.decline_code(REFUND_RETURNED);
            }
            polls.iter().fold(t, |t, id| t.complete(*id))
        };
        match worker::advance(st, &order, &event, None, &edit, None).await? {
            Applied::To(a) => return Ok(ack(&a.order, true)),
            Applied::Refused(r) => {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!("the order is {}: {}", order.state, r.message),
                ));
            }
            Applied::Moved => {
                order = st
                    .store()
                    .get_order(&order.order_id)
                    .await
                    .map_err(store_error("reading an order"))?
                    .ok_or_else(unknown)?;
            }
        }
    }
    Err(AppError::new(
        ErrorCode::Busy,
        "the order keeps changing; send the event again",
    ))
}
