//! The carrier (the patent's distributor, 【0043】–【0044】): accepts a shipment only with the
//! issuer's approval, opens the delivery destination, and returns a tracking number. It never
//! sees card data or goods.
//!
//! Routes: the handshake, `GET /healthz`, and in a session `POST /v1/shipments` and
//! `POST /v1/shipments/{order_id}/cancel` (merchants) and
//! `GET /v1/shipments/{merchant}/{order_id}` (the order's merchant, or its cardholder,
//! who alone also sees the destination it sealed; both see the events and, once delivered,
//! the proof of delivery). Operator routes (the carrier's own staff, `crate::session::operator::Operator`):
//! `POST /v1/admin/shipments/{tracking_number}/advance`, `GET /v1/admin/shipments` and
//! `GET /v1/admin/shipments/{tracking_number}`.
//!
//! A shipment moves accepted → picked up → in transit → delivered, or from any of the first
//! three to returned; every other move is `invalid_transition`, and repeating the move
//! already made succeeds without a second event. The merchant's cancel takes an accepted
//! shipment to cancelled (final) and a picked-up or in-transit one to returning (then only
//! returned, never delivered); a delivered one refuses it. A cancel for an order without a
//! shipment leaves a cancelled tombstone that refuses a later shipment request. Before it
//! accepts a new shipment, the carrier asks the order's issuer whether the authorization
//! still stands (`crate::protocol::carrier_issuer`), and refuses a voided or refunded order.
//!
//! Each move to picked up, in transit, delivered or returned is committed with a delivery
//! event in the carrier's outbox, which [`push`] sends to the order's merchant in a session
//! (`POST /v1/delivery-events`, `crate::protocol::carrier_merchant`), retried while the
//! merchant is down: the merchant learns a delivery at once instead of polling for it.

//!
//! - [`state`]: the carrier's keys, store, session guard and issuer clients.
//! - [`shipments`]: accepting a shipment, cancelling it, moving it, and the operator's list.
//! - [`tracking`]: a shipment as its merchant, cardholder or operator sees it.
//! - [`push`]: the pusher of delivery events to the merchants.
//! - [`dashboard`]: the operator's HTML dashboard.

pub mod dashboard;
pub mod push;
pub mod shipments;
pub mod state;
pub mod tracking;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

pub use state::CarrierState;

use crate::http::service;

/// The carrier's router.
pub fn app(state: Arc<CarrierState>) -> Router {
    let authenticated = shipments::session_routes()
        .merge(tracking::routes())
        .with_state(state.clone())
        .merge(crate::kem::routes(state.kem.clone()));
    let public = shipments::operator_routes().with_state(state.clone());
    let pages = dashboard::routes().with_state(state.clone());
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
