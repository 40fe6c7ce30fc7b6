//! Shipments: accepted from the order's merchant only with the issuer's approval, moved by the
//! carrier's operator (accepted → picked up → in transit → delivered, or returned), and listed
//! for the operator.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::Role;
use warifu_core::order::Destination;
use warifu_core::sealed::{ForCarrier, View};
use warifu_store::{NewShipment, ShipmentRecord, ShipmentStatus};

use super::state::CarrierState;
use super::tracking::view;
use crate::attest;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::service::{random_id, store_error};
use crate::protocol::cardholder_carrier::TrackingView;
use crate::protocol::merchant_carrier::{PATH_SHIPMENTS, ShipmentReceipt, ShipmentRequest};
use crate::protocol::operator::{
    AdvanceRequest, PATH_ADMIN_SHIPMENT, PATH_ADMIN_SHIPMENTS, PATH_ADVANCE, ShipmentList,
    ShipmentSummary,
};
use crate::session::operator::Operator;
use crate::session::server::{JsonBody, Peer};

/// Accepting a shipment (in a merchant's session).
pub(super) fn session_routes() -> OpenApiRouter<Arc<CarrierState>> {
    OpenApiRouter::new().routes(routes!(ship))
}

/// The operator's routes.
pub(super) fn operator_routes() -> OpenApiRouter<Arc<CarrierState>> {
    OpenApiRouter::new()
        .routes(routes!(admin_list))
        .routes(routes!(admin_get))
        .routes(routes!(advance))
}

#[utoipa::path(post, path = PATH_SHIPMENTS, request_body = ShipmentRequest, responses((status = 200, description = "The shipment is accepted", body = ShipmentReceipt)))]
async fn ship(
    State(st): State<Arc<CarrierState>>,
    Peer(peer): Peer,
    JsonBody(req): JsonBody<ShipmentRequest>,
) -> AppResult<Json<ShipmentReceipt>> {
    let header = req.forwarded.header.clone();
    let order_id = header.order_id.clone();
    if peer.role() != Role::Merchant || header.merchant != peer {
        tracing::warn!(%order_id, %peer, "shipment request from a party not named as the merchant");
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "only the merchant named in the sealed order may request its delivery",
        ));
    }
    if header.carrier.as_ref() != Some(st.id()) {
        return Err(AppError::new(
            ErrorCode::NotAddressedHere,
            format!("this order is not addressed to {}", st.id()),
        ));
    }
    AppError::check_scheme(header.scheme, st.keys.scheme())?;
    if attest::verify_carrier_approval(st.keys.as_ref(), &header, &req.approval).is_err() {
        tracing::warn!(%order_id, merchant = %peer, "shipment without the issuer's approval refused");
        return Err(AppError::new(
            ErrorCode::AuthorizationRequired,
            format!(
                "no valid approval of {} for this order: the carrier ships only orders the issuer authorized",
                header.issuer
            ),
        ));
    }
    let view: View<ForCarrier> =
        req.forwarded
            .open(&req.policy, st.keys.as_ref())
            .map_err(|_| {
                tracing::warn!(%order_id, merchant = %peer, "carrier part does not open");
                AppError::sealed()
            })?;
    let Some(Destination { addressee, address }) = view.fields.destination.clone() else {
        return Err(AppError::new(
            ErrorCode::OrderInvalid,
            "the carrier's part holds no delivery destination",
        ));
    };
    let parcel = format!("{} / pickup: {}", req.delivery.parcel, req.delivery.pickup);
    if parcel.len() > 1024 {
        return Err(AppError::new(
            ErrorCode::MalformedRequest,
            "the parcel description and pickup are longer than 1 KiB",
        ));
    }
    let inserted = st
        .store
        .accept_shipment(&NewShipment {
            merchant_id: peer.to_string(),
            order_id: order_id.clone(),
            cardholder_id: header.cardholder.to_string(),
            issuer_id: header.issuer.to_string(),
            tracking_number: random_id("WRF", 8)?.to_uppercase(),
            addressee,
            address,
            parcel,
            now_ms: crate::now_ms(),
        })
        .await
        .map_err(store_error("accepting a shipment"))?;
    let rec = inserted.record;
    tracing::info!(
        %order_id,
        merchant = %peer,
        tracking = %rec.tracking_number,
        created = inserted.created,
        "shipment accepted"
    );
    Ok(Json(ShipmentReceipt {
        order_id,
        tracking_number: rec.tracking_number,
        status: rec.status.as_str().to_owned(),
    }))
}

/// Whether the carrier may move a shipment from `from` to `to`.
pub fn allowed_move(from: ShipmentStatus, to: ShipmentStatus) -> bool {
    use ShipmentStatus::*;
    matches!(
        (from, to),
        (Accepted, PickedUp)
            | (PickedUp, InTransit)
            | (InTransit, Delivered)
            | (Accepted | PickedUp | InTransit, Returned)
    )
}

/// The longest note accepted on a move.
const MAX_NOTE: usize = 256;

fn no_such_tracking() -> AppError {
    AppError::new(
        ErrorCode::UnknownOrder,
        "no shipment with this tracking number",
    )
}

async fn by_tracking(st: &CarrierState, tracking: &str) -> AppResult<ShipmentRecord> {
    st.store
        .shipment_by_tracking(tracking)
        .await
        .map_err(store_error("reading a shipment"))?
        .ok_or_else(no_such_tracking)
}

#[utoipa::path(post, path = PATH_ADVANCE, request_body = AdvanceRequest, responses((status = 200, description = "The shipment after the move", body = TrackingView)))]
async fn advance(
    State(st): State<Arc<CarrierState>>,
    _: Operator,
    Path(tracking): Path<String>,
    JsonBody(req): JsonBody<AdvanceRequest>,
) -> AppResult<Json<TrackingView>> {
    let to = ShipmentStatus::parse(&req.to)
        .filter(|s| *s != ShipmentStatus::Accepted)
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::MalformedRequest,
                "`to` is one of picked_up, in_transit, delivered, returned",
            )
        })?;
    if req
        .note
        .as_ref()
        .is_some_and(|n| n.len() > MAX_NOTE || n.chars().any(char::is_control))
    {
        return Err(AppError::new(
            ErrorCode::MalformedRequest,
            "a note is at most 256 bytes without control characters",
        ));
    }
    let rec = by_tracking(&st, &tracking).await?;
    if rec.status != to {
        if !allowed_move(rec.status, to) {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                format!("a shipment that is {} cannot become {to}", rec.status),
            ));
        }
        let moved = st
            .store
            .advance_shipment(
                &tracking,
                rec.status,
                to,
                req.note.as_deref(),
                crate::now_ms(),
            )
            .await
            .map_err(store_error("advancing a shipment"))?;
        tracing::info!(%tracking, from = %rec.status, %to, moved, "shipment advanced");
    }
    let rec = by_tracking(&st, &tracking).await?;
    if rec.status != to {
        // Another operator moved it elsewhere meanwhile.
        return Err(AppError::new(
            ErrorCode::InvalidTransition,
            format!("the shipment is now {}, not {to}", rec.status),
        ));
    }
    view(&st, rec, None).await.map(Json)
}

/// Paging of an operator list (`?limit=&offset=`).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: Option<u32>,
}

#[utoipa::path(get, path = PATH_ADMIN_SHIPMENTS, params(
        ("limit" = Option<u32>, Query, description = "At most this many (default 100, at most 1000)"),
        ("offset" = Option<u32>, Query, description = "Skip this many")
    ), responses((status = 200, description = "Shipments, newest first (no destination)", body = ShipmentList)))]
async fn admin_list(
    State(st): State<Arc<CarrierState>>,
    _: Operator,
    Query(page): Query<Page>,
) -> AppResult<Json<ShipmentList>> {
    let limit = page.limit.unwrap_or(100).min(1000);
    let shipments = st
        .store
        .list_shipments(limit, page.offset.unwrap_or(0))
        .await
        .map_err(store_error("listing shipments"))?
        .into_iter()
        .map(|r| ShipmentSummary {
            tracking_number: r.tracking_number,
            merchant: r.merchant_id,
            order_id: r.order_id,
            issuer: r.issuer_id,
            status: r.status.as_str().to_owned(),
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        })
        .collect();
    Ok(Json(ShipmentList { shipments }))
}

#[utoipa::path(get, path = PATH_ADMIN_SHIPMENT, responses((status = 200, description = "One shipment", body = TrackingView)))]
async fn admin_get(
    State(st): State<Arc<CarrierState>>,
    _: Operator,
    Path(tracking): Path<String>,
) -> AppResult<Json<TrackingView>> {
    let rec = by_tracking(&st, &tracking).await?;
    view(&st, rec, None).await.map(Json)
}
