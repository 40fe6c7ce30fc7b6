//! The issuer (the patent's card manager, 【0040】–【0041】): opens the card part the merchant
//! forwards, authenticates the cardholder against its enrolled card, places a hold, and answers
//! a decision bound to the order, the amount and the currency.
//!
//! Routes: the handshake (see `crate::session::server`), `GET /healthz`, and in a session
//! `POST /v1/authorizations` (merchants only); after it, the payment's lifecycle for the
//! order's merchant (capture, void, refunds, read, and a dispute answered with the carrier's
//! proof of delivery), and `GET /v1/statement` for a cardholder (its cards without their
//! numbers, its orders with payment method and instalments), and for the order's carrier
//! `GET /v1/authorizations/{merchant}/{order_id}/live` (whether the payment still stands).
//! Every lifecycle `POST` is idempotent: a retry gets the first answer and moves no money
//! twice. Refund ids are scoped to the order; a dispute accepts a proof of delivery only
//! from the carrier the order names, over the header digest recorded at authorization.

//!
//! - [`state`]: the issuer's keys, store and session guard.
//! - [`authorize`]: opening the card part and deciding, bound to the order.
//! - [`payments`]: the payment's lifecycle (capture, void, refunds), disputes, and the
//!   carrier's liveness question.
//! - [`statement`]: the cardholder's statement.
//! - [`cards`]: the operator's card administration (enroll, block, limit, list, statement,
//!   settlement) under `/v1/admin/…`.
//! - [`dashboard`]: the operator's HTML dashboard.

pub mod authorize;
pub mod cards;
pub mod dashboard;
pub mod payments;
pub mod state;
pub mod statement;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

pub use state::IssuerState;

use crate::http::service;

/// The issuer's router.
pub fn app(state: Arc<IssuerState>) -> Router {
    let authenticated = authorize::routes()
        .merge(payments::routes())
        .merge(statement::routes())
        .with_state(state.clone())
        .merge(crate::kem::routes(state.kem.clone()));
    let public = cards::routes().with_state(state.clone());
    let pages = dashboard::routes().with_state(state.clone());
    let ops = service::Ops::issuer(state.keys.clone(), state.store.clone());
    service::assemble_with(state.guard.clone(), public, authenticated, pages, ops)
}

/// Serves the issuer on `listener` until `shutdown`.
pub async fn run(
    listener: TcpListener,
    state: Arc<IssuerState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    service::serve(listener, app(state), shutdown).await
}
