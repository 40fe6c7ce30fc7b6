//! What a shipment shows: to its merchant, to its cardholder (who alone also sees the
//! destination it sealed) and to the operator; its events and, once delivered, the carrier's
//! proof of delivery.

use std::sync::Arc;
use warifu_core::OrderId;

use axum::Json;
use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::PartyId;
use warifu_core::order::Destination;
use warifu_store::{ShipmentRecord, ShipmentStatus};

use super::state::CarrierState;
use crate::attest;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::service::store_error;
use crate::protocol::cardholder_carrier::{PATH_TRACK, TrackingEvent, TrackingView};
use crate::protocol::merchant_issuer::ProofOfDelivery;
use crate::session::server::Peer;

/// Tracking (in a merchant's or cardholder's session).
pub(super) fn routes() -> OpenApiRouter<Arc<CarrierState>> {
    OpenApiRouter::new().routes(routes!(track))
}

#[utoipa::path(get, path = PATH_TRACK, responses((status = 200, description = "The shipment (the destination only for its cardholder)", body = TrackingView)))]
async fn track(
    State(st): State<Arc<CarrierState>>,
    Peer(peer): Peer,
    Path((merchant, order_id)): Path<(String, OrderId)>,
) -> AppResult<Json<TrackingView>> {
    let unknown = || AppError::new(ErrorCode::UnknownOrder, "no such shipment for this caller");
    let rec = st
        .store
        .get_shipment(&merchant, &order_id)
        .await
        .map_err(store_error("reading a shipment"))?
        .ok_or_else(unknown)?;
    let destination = if rec.cardholder_id == peer.as_str() {
        Some(Destination {
            addressee: rec.addressee.clone(),
            address: rec.address.clone(),
        })
    } else if rec.merchant_id == peer.as_str() {
        None
    } else {
        return Err(unknown());
    };
    view(&st, rec, destination).await.map(Json)
}

/// A shipment as shown to its merchant, its cardholder (with `destination`) or an operator:
/// its events and, once delivered, the proof of delivery.
pub(super) async fn view(
    st: &CarrierState,
    rec: ShipmentRecord,
    destination: Option<Destination>,
) -> AppResult<TrackingView> {
    let events = st
        .store
        .shipment_events(&rec.tracking_number)
        .await
        .map_err(store_error("reading a shipment's events"))?
        .into_iter()
        .map(|e| TrackingEvent {
            status: e.status.as_str().to_owned(),
            at_ms: e.at_ms,
            note: e.note,
        })
        .collect();
    let proof_of_delivery = proof(st, &rec).await?;
    Ok(TrackingView {
        order_id: rec.order_id,
        tracking_number: rec.tracking_number,
        status: rec.status.as_str().to_owned(),
        destination,
        events,
        proof_of_delivery,
    })
}

/// The proof of delivery of a delivered shipment (recomputed from the stored issuer, header
/// digest and delivery time: the MAC is deterministic). `None` before delivery, or for a
/// shipment stored before the carrier recorded issuers and header digests.
async fn proof(st: &CarrierState, rec: &ShipmentRecord) -> AppResult<Option<ProofOfDelivery>> {
    let (ShipmentStatus::Delivered, Some(issuer), Some(at)) =
        (rec.status, rec.issuer_id.as_deref(), rec.delivered_at_ms)
    else {
        return Ok(None);
    };
    let (Ok(issuer), Ok(merchant)) = (PartyId::parse(issuer), PartyId::parse(&rec.merchant_id))
    else {
        tracing::warn!(tracking = %rec.tracking_number, "stored party identifier does not parse; no proof");
        return Ok(None);
    };
    let Some(digest) = st
        .store
        .shipment_header_digest(&rec.tracking_number)
        .await
        .map_err(store_error("reading a shipment's header digest"))?
    else {
        tracing::warn!(tracking = %rec.tracking_number, "shipment stored without its header digest; no proof");
        return Ok(None);
    };
    attest::proof_of_delivery(
        st.keys.as_ref(),
        &issuer,
        &merchant,
        &rec.order_id,
        &rec.tracking_number,
        at,
        &digest,
    )
    .map(Some)
    .map_err(|e| AppError::internal("attesting a delivery", &e))
}
