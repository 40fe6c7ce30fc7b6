//! The merchant (【0028】–【0042】): hands out order forms, receives the sealed bundle, opens
//! only its own part, forwards the issuer's part, and on approval forwards the carrier's part
//! with its delivery request.
//!
//! Routes: the handshake, `GET /healthz`, `GET /v1/catalog` (public, assigns nothing); in
//! a session with a cardholder `POST /v1/order-forms`, `POST /v1/orders`,
//! `GET /v1/orders/{order_id}` and `POST /v1/orders/{order_id}/cancel`; in a session with the
//! order's carrier `POST /v1/delivery-events` (the carrier pushes its shipment's moves); for its operator
//! (`crate::session::operator::Operator`) `GET /v1/admin/orders`, `POST /v1/admin/orders/{id}/cancel`,
//! `POST /v1/admin/orders/{id}/refund` and `POST /v1/admin/orders/{id}/dispute`.
//!
//! An order is a persisted state machine (`warifu_store::OrderState`): it is recorded as
//! `received` with its authorization message in the outbox in one transaction; every later
//! step (authorize, ship, capture, void, refund, track) is run by [`worker`], inline
//! for the request that caused it and by the outbox worker after a crash or an outage. Each
//! step is a compare-and-set committed with the message it causes, and the issuer and carrier
//! are idempotent on the order id (and refund id), so nothing is charged or shipped twice.
//!
//! Cancelling (see [`machine`] and `docs/LIFECYCLE.md`): before the carrier accepted anything
//! the hold is voided (`cancelled` → `voided`); after, the carrier is told (`cancelling`) and
//! its answer decides: `cancelled` → `voided` / `refunded`, `returning` → refunded once
//! `returned`, delivered → refused. A delivered order answers `invalid_transition`.

//!
//! - [`state`]: what the merchant sells ([`MerchantConfig`]) and holds ([`MerchantState`]).
//! - [`intake`]: the catalog, order forms and the sealed submission.
//! - [`lifecycle`]: an order's outcome as the cardholder reads it, and cancelling.
//! - [`delivery`]: the delivery events the order's carrier pushes.
//! - [`admin`]: the operator's routes (order list, cancel, refund, dispute).
//! - [`machine`]: the lifecycle: commands, events and the pure transition function.
//! - [`worker`]: the outbox worker and the order steps it shares with the handlers.
//! - [`dashboard`]: the operator's HTML dashboard.
//! - [`webhooks`]: the webhooks to the shop's backend: delivery worker and operator routes.
//! - [`links`]: payment links and their QR codes.

pub mod admin;
pub mod dashboard;
pub mod delivery;
pub mod intake;
pub mod lifecycle;
pub mod links;
pub mod machine;
pub mod state;
pub mod webhooks;
pub mod worker;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use warifu_core::Role;

pub use state::{MerchantConfig, MerchantState};

use crate::http::service;

/// The merchant's router.
pub fn app(state: Arc<MerchantState>) -> Router {
    let authenticated = intake::session_routes()
        .merge(lifecycle::routes())
        .merge(delivery::routes())
        .with_state(state.clone())
        .merge(crate::kem::routes(state.kem.clone()));
    let public = intake::public_routes()
        .merge(admin::routes())
        .merge(webhooks::routes())
        .merge(links::routes())
        .with_state(state.clone());
    let pages = dashboard::routes().with_state(state.clone());
    let c = &state.config;
    let peers = c
        .accepted_issuers
        .iter()
        .map(|i| (i.clone(), Role::Issuer))
        .chain(c.carrier.iter().map(|k| (k.clone(), Role::Carrier)));
    let ops = service::Ops::merchant(state.keys.clone(), state.store.clone())
        .with_peers(state.peers.directory().clone(), peers.collect::<Vec<_>>());
    service::assemble_with(state.guard.clone(), public, authenticated, pages, ops)
}

/// Serves the merchant on `listener` until `shutdown`.
pub async fn run(
    listener: TcpListener,
    state: Arc<MerchantState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    service::serve(listener, app(state), shutdown).await
}
