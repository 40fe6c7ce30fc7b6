//! The carrier (the patent's distributor, 【0043】–【0044】): accepts a shipment only with the
//! issuer's approval, opens the delivery destination, and returns a tracking number. It never
//! sees card data or goods.
//!
//! Routes: the handshake, `GET /healthz`, and in a session `POST /v1/shipments` (merchants)
//! and `GET /v1/shipments/{merchant}/{order_id}` (the order's merchant, or its cardholder,
//! who alone also sees the destination it sealed; both see the events and, once delivered,
//! the proof of delivery). Operator routes (the carrier's own staff, `crate::session::operator::Operator`):
//! `POST /v1/admin/shipments/{tracking_number}/advance`, `GET /v1/admin/shipments` and
//! `GET /v1/admin/shipments/{tracking_number}`.
//!
//! A shipment moves accepted → picked up → in transit → delivered, or from any of the first
//! three to returned; every other move is `invalid_transition`, and repeating the move
//! already made succeeds without a second event.

//!
//! - [`state`]: the carrier's keys, store and session guard.
//! - [`shipments`]: accepting a shipment, moving it, and the operator's list.
//! - [`tracking`]: a shipment as its merchant, cardholder or operator sees it.
//! - [`dashboard`]: the operator's HTML dashboard.

pub mod dashboard;
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
        .with_state(state.clone());
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
