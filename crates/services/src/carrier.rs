//! The carrier (the patent's distributor, 【0043】–【0044】): accepts a shipment only with the
//! issuer's approval, opens the delivery destination, and returns a tracking number. It never
//! sees card data or goods.
//!
//! Routes: the handshake, `GET /healthz`, and in a session `POST /v1/shipments` (merchants)
//! and `GET /v1/shipments/{merchant}/{order_id}` (the order's merchant, or its cardholder,
//! who alone also sees the destination it sealed; both see the events and, once delivered,
//! the proof of delivery). Operator routes (the carrier's own staff, [`Operator`]):
//! `POST /v1/admin/shipments/{tracking_number}/advance`, `GET /v1/admin/shipments` and
//! `GET /v1/admin/shipments/{tracking_number}`.
//!
//! A shipment moves accepted → picked up → in transit → delivered, or from any of the first
//! three to returned; every other move is `invalid_transition`, and repeating the move
//! already made succeeds without a second event.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::{Json, Router};
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::keysource::KeySource;
use warifu_core::order::Destination;
use warifu_core::sealed::{ForCarrier, View};
use warifu_core::{PartyId, Role};
use warifu_store::{CarrierStore, NewShipment, ShipmentRecord, ShipmentStatus};

use crate::attest;
use crate::auth::{Guard, GuardLimits, JsonBody, Peer};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::operator::Operator;
use crate::service::{self, random_id, store_error};
use crate::wire::{
    AdvanceRequest, ProofOfDelivery, ShipmentList, ShipmentReceipt, ShipmentRequest,
    ShipmentSummary, TrackingEvent, TrackingView,
};

/// The path of the shipment endpoint.
pub const PATH_SHIPMENTS: &str = "/v1/shipments";
/// A shipment's tracking view (`GET`, the order's merchant or cardholder) → `TrackingView`.
pub const PATH_TRACK: &str = "/v1/shipments/{merchant}/{order_id}";
/// The operator's list of shipments (`GET ?limit=&offset=`) → `ShipmentList`.
pub const PATH_ADMIN_SHIPMENTS: &str = "/v1/admin/shipments";
/// The operator advances a shipment (`POST AdvanceRequest`) → `TrackingView`.
pub const PATH_ADVANCE: &str = "/v1/admin/shipments/{tracking_number}/advance";
/// The operator's view of one shipment (`GET`) → `TrackingView` (without the destination).
pub const PATH_ADMIN_SHIPMENT: &str = "/v1/admin/shipments/{tracking_number}";

/// The tracking path of a merchant's order.
pub fn track_path(merchant: &str, order_id: &str) -> String {
    PATH_TRACK
        .replace("{merchant}", merchant)
        .replace("{order_id}", order_id)
}

/// The operator's path of a tracking number.
pub fn admin_shipment_path(tracking_number: &str) -> String {
    PATH_ADMIN_SHIPMENT.replace("{tracking_number}", tracking_number)
}

/// The advance path of a tracking number.
pub fn advance_path(tracking_number: &str) -> String {
    PATH_ADVANCE.replace("{tracking_number}", tracking_number)
}

/// The carrier's state.
pub struct CarrierState {
    keys: Arc<dyn KeySource>,
    store: Arc<dyn CarrierStore>,
    guard: Arc<Guard>,
}

impl CarrierState {
    /// A carrier holding `keys` with its shipments in `store`.
    pub fn new(keys: Arc<dyn KeySource>, store: Arc<dyn CarrierStore>) -> Arc<CarrierState> {
        Arc::new(CarrierState {
            guard: Arc::new(Guard::new(keys.clone(), GuardLimits::default())),
            keys,
            store,
        })
    }

    /// The carrier's identifier.
    pub fn id(&self) -> &PartyId {
        self.keys.owner()
    }

    /// Its session guard (also how it admits operators: `guard().operator().set(…)`).
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    /// Its store.
    pub fn store(&self) -> &Arc<dyn CarrierStore> {
        &self.store
    }
}

/// The carrier's router.
pub fn app(state: Arc<CarrierState>) -> Router {
    let authenticated = OpenApiRouter::new()
        .routes(routes!(ship))
        .routes(routes!(track))
        .with_state(state.clone());
    let public = OpenApiRouter::new()
        .routes(routes!(admin_list))
        .routes(routes!(admin_get))
        .routes(routes!(advance))
        .with_state(state.clone());
    let pages = crate::pages::carrier::routes().with_state(state.clone());
    let ops = service::Ops::carrier(state.keys.clone(), state.store.clone());
    service::assemble_with(state.guard.clone(), public, authenticated, pages, ops)
}

/// Serves the carrier on `listener` until `shutdown`.
pub async fn run(
    listener: TcpListener,
    state: Arc<CarrierState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    service::serve(listener, app(state), shutdown).await
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

#[utoipa::path(get, path = PATH_TRACK, responses((status = 200, description = "The shipment (the destination only for its cardholder)", body = TrackingView)))]
async fn track(
    State(st): State<Arc<CarrierState>>,
    Peer(peer): Peer,
    Path((merchant, order_id)): Path<(String, String)>,
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
async fn view(
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
    let proof_of_delivery = proof(st, &rec)?;
    Ok(TrackingView {
        order_id: rec.order_id,
        tracking_number: rec.tracking_number,
        status: rec.status.as_str().to_owned(),
        destination,
        events,
        proof_of_delivery,
    })
}

/// The proof of delivery of a delivered shipment (recomputed from the stored issuer and
/// delivery time: the MAC is deterministic). `None` before delivery, or for a shipment stored
/// before the carrier recorded issuers.
fn proof(st: &CarrierState, rec: &ShipmentRecord) -> AppResult<Option<ProofOfDelivery>> {
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
    attest::proof_of_delivery(
        st.keys.as_ref(),
        &issuer,
        &merchant,
        &rec.order_id,
        &rec.tracking_number,
        at,
    )
    .map(Some)
    .map_err(|e| AppError::internal("attesting a delivery", &e))
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
