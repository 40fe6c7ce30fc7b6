//! Shipments: accepted from the order's merchant only with the issuer's approval and while the
//! issuer says the authorization still stands, moved by the carrier's operator (accepted →
//! picked up → in transit → delivered, or returned), cancelled by the merchant (cancelled
//! before pick-up, returning after), and listed for the operator.

use std::sync::Arc;
use warifu_core::OrderId;

use axum::Json;
use axum::extract::{Path, Query, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::order::Destination;
use warifu_core::sealed::{ForCarrier, View};
use warifu_core::{PartyId, Role};
use warifu_store::{NewShipment, ShipmentRecord, ShipmentStatus, StoreError, rules};

use super::state::CarrierState;
use super::tracking::view;
use crate::attest;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::service::{peer_error, random_id, store_error};
use crate::protocol::cardholder_carrier::TrackingView;
use crate::protocol::carrier_issuer::{AuthorizationLiveness, live_path};
use crate::protocol::merchant_carrier::{
    CancelShipmentRequest, PATH_SHIPMENT_CANCEL, PATH_SHIPMENTS, ShipmentReceipt, ShipmentRequest,
};
use crate::protocol::operator::{
    AdvanceRequest, PATH_ADMIN_SHIPMENT, PATH_ADMIN_SHIPMENTS, PATH_ADVANCE, ShipmentList,
    ShipmentSummary,
};
use crate::session::client::ClientError;
use crate::session::operator::Operator;
use crate::session::server::{JsonBody, Peer};

/// Accepting and cancelling a shipment (in a merchant's session).
pub(super) fn session_routes() -> OpenApiRouter<Arc<CarrierState>> {
    OpenApiRouter::new()
        .routes(routes!(ship))
        .routes(routes!(cancel))
}

fn receipt(rec: ShipmentRecord) -> ShipmentReceipt {
    ShipmentReceipt {
        order_id: rec.order_id,
        tracking_number: rec.tracking_number,
        status: rec.status.as_str().to_owned(),
    }
}

fn cancelled_refusal(order_id: &OrderId) -> AppError {
    AppError::new(
        ErrorCode::InvalidTransition,
        format!("order {order_id} was cancelled by its merchant; it will not be shipped"),
    )
}

/// Asks the order's issuer whether its authorization still stands; refuses the shipment if not
/// (a voided or refunded order is not shipped). Without a directory the carrier cannot ask and
/// accepts on the approval alone.
async fn check_live(
    st: &CarrierState,
    issuer: &PartyId,
    merchant: &PartyId,
    order_id: &OrderId,
) -> AppResult<()> {
    let Some(issuers) = &st.peers else {
        tracing::warn!(%order_id, %issuer, "no directory: the authorization's liveness is not checked");
        return Ok(());
    };
    let client = issuers.get(issuer, Role::Issuer).map_err(|e| {
        AppError::new(
            ErrorCode::PeerUnavailable,
            format!("cannot find {issuer} to confirm the authorization: {e}"),
        )
    })?;
    let answer: AuthorizationLiveness = match client
        .get(&live_path(merchant.as_str(), order_id))
        .await
    {
        Ok(a) => a,
        Err(ClientError::Refused {
            code,
            verified: true,
            ..
        }) if code == ErrorCode::UnknownOrder.as_str() => {
            tracing::warn!(%order_id, %issuer, "issuer knows no authorization of this order for this carrier");
            return Err(AppError::new(
                ErrorCode::AuthorizationRequired,
                format!("{issuer} holds no authorization of this order for this carrier"),
            ));
        }
        Err(e) => return Err(peer_error(e)),
    };
    if answer.merchant != merchant.as_str() || answer.order_id != order_id {
        return Err(AppError::new(
            ErrorCode::PeerError,
            format!("{issuer} answered for another order"),
        ));
    }
    if !answer.live {
        tracing::warn!(%order_id, %issuer, state = %answer.state, "shipment of an order whose payment no longer stands refused");
        return Err(AppError::new(
            ErrorCode::InvalidTransition,
            format!(
                "the order's payment is {} at {issuer}; it will not be shipped",
                answer.state
            ),
        ));
    }
    Ok(())
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
    let approval = attest::verify_carrier_approval(st.keys.as_ref(), &header, &req.approval);
    if let Err(attest::AttestError::Key(warifu_core::Error::Revoked(id))) = &approval {
        tracing::warn!(%order_id, merchant = %peer, "shipment approved by a revoked issuer refused");
        return Err(AppError::revoked(id));
    }
    if approval.is_err() {
        tracing::warn!(%order_id, merchant = %peer, "shipment without the issuer's approval refused");
        return Err(AppError::new(
            ErrorCode::AuthorizationRequired,
            format!(
                "no valid approval of {} for this order: the carrier ships only orders the issuer authorized",
                header.issuer
            ),
        ));
    }
    let view: View<ForCarrier> = st
        .kem
        .open(&req.forwarded, &req.policy, st.keys.as_ref())
        .await
        .inspect_err(|e| {
            tracing::warn!(%order_id, merchant = %peer, code = e.code.as_str(), "carrier part does not open");
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
    // A retry of an accepted shipment gets its receipt again; a cancelled order is refused;
    // a new shipment only while the issuer says the payment stands.
    let existing = st
        .store
        .get_shipment(peer.as_str(), &order_id)
        .await
        .map_err(store_error("reading a shipment"))?;
    match existing {
        Some(rec) if rules::shipment_cancelled(rec.status) => {
            return Err(cancelled_refusal(&order_id));
        }
        Some(rec) => return Ok(Json(receipt(rec))),
        None => check_live(&st, &header.issuer, &peer, &order_id).await?,
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
            header_digest: header.digest(),
            now_ms: st.clock().now_ms(),
        })
        .await
        .map_err(store_error("accepting a shipment"))?;
    let rec = inserted.record;
    if rules::shipment_cancelled(rec.status) {
        // Cancelled while we asked the issuer.
        return Err(cancelled_refusal(&order_id));
    }
    tracing::info!(
        %order_id,
        merchant = %peer,
        tracking = %rec.tracking_number,
        created = inserted.created,
        "shipment accepted"
    );
    Ok(Json(receipt(rec)))
}

#[utoipa::path(post, path = PATH_SHIPMENT_CANCEL, request_body = CancelShipmentRequest, responses((status = 200, description = "The shipment after the cancellation: `cancelled` (never picked up, final), `returning` (on its way back, later `returned`) or `returned`", body = ShipmentReceipt)))]
async fn cancel(
    State(st): State<Arc<CarrierState>>,
    Peer(peer): Peer,
    Path(order_id): Path<OrderId>,
    JsonBody(CancelShipmentRequest {}): JsonBody<CancelShipmentRequest>,
) -> AppResult<Json<ShipmentReceipt>> {
    if peer.role() != Role::Merchant {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "only the order's merchant may cancel its shipment",
        ));
    }
    let tombstone = random_id("WRF", 8)?.to_uppercase();
    let done = match st
        .store
        .cancel_shipment(peer.as_str(), &order_id, &tombstone, st.clock().now_ms())
        .await
    {
        Ok(done) => done,
        Err(StoreError::Conflict(why)) => {
            return Err(AppError::new(ErrorCode::InvalidTransition, why));
        }
        Err(StoreError::Invalid(why)) => {
            return Err(AppError::new(ErrorCode::MalformedRequest, why));
        }
        Err(e) => return Err(AppError::internal("cancelling a shipment", &e)),
    };
    tracing::info!(
        %order_id,
        merchant = %peer,
        tracking = %done.record.tracking_number,
        status = %done.record.status,
        applied = done.applied,
        "shipment cancelled"
    );
    Ok(Json(receipt(done.record)))
}

/// Whether the carrier's operator may move a shipment from `from` to `to` (a cancelled
/// shipment never moves; a returning one only becomes returned). See
/// [`warifu_store::rules::shipment_move`].
pub fn allowed_move(from: ShipmentStatus, to: ShipmentStatus) -> bool {
    rules::shipment_move(from, to)
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
                st.clock().now_ms(),
            )
            .await
            .map_err(store_error("advancing a shipment"))?;
        tracing::info!(%tracking, from = %rec.status, %to, moved, "shipment advanced");
        if moved {
            // Its delivery event is in the outbox: push it now.
            st.wake.notify_one();
        }
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
