//! The cardholder's statement: its cards (last four digits, never the number) and its orders
//! with payment state, method and instalments.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::order::PaymentMethod;
use warifu_core::{PartyId, Role};
use warifu_store::{IssuerStore, StoreError};

use super::payments::{payment_method_label, payment_state};
use super::state::IssuerState;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::service::store_error;
use crate::protocol::cardholder_issuer::{
    PATH_STATEMENT, Statement, StatementCard, StatementEntry,
};
use crate::session::server::Peer;

/// The statement route (cardholders).
pub(super) fn routes() -> OpenApiRouter<Arc<IssuerState>> {
    OpenApiRouter::new().routes(routes!(statement))
}

#[utoipa::path(get, path = PATH_STATEMENT, responses((status = 200, description = "The cardholder's cards and orders (never a full card number)", body = Statement)))]
async fn statement(
    State(st): State<Arc<IssuerState>>,
    Peer(peer): Peer,
) -> AppResult<Json<Statement>> {
    if peer.role() != Role::Cardholder {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "only a cardholder has a statement",
        ));
    }
    statement_for(st.store.as_ref(), &peer)
        .await
        .map(Json)
        .map_err(store_error("reading a statement"))
}

/// A cardholder's statement from the issuer's store: its cards (last four digits, never the
/// number) and its orders, newest first, with payment state, method and instalments of what
/// is owed (`GET /v1/statement`, and `warifu issuer statement`).
pub async fn statement_for(
    store: &dyn IssuerStore,
    cardholder: &PartyId,
) -> Result<Statement, StoreError> {
    let cards = store
        .cards_for_cardholder(cardholder.as_str())
        .await?
        .into_iter()
        .map(|c| StatementCard {
            last4: warifu_core::card::last4(c.number.expose()).to_owned(),
            card_id: c.card_id,
            status: c.status.as_str().to_owned(),
            credit_limit: c.credit_limit,
            available: c.available,
            currency: c.currency,
        })
        .collect();
    let entries = store
        .authorizations_for_cardholder(cardholder.as_str())
        .await?
        .into_iter()
        .map(|a| {
            let schedule = a.schedule();
            let instalments = if matches!(a.payment_method, PaymentMethod::Installments { .. })
                && schedule.iter().any(|x| *x > 0)
            {
                schedule
            } else {
                Vec::new()
            };
            StatementEntry {
                state: payment_state(&a).to_owned(),
                payment_method: payment_method_label(a.payment_method),
                instalments,
                order_id: a.order_id,
                merchant: a.merchant_id,
                amount: a.amount,
                captured: a.captured,
                refunded: a.refunded,
                currency: a.currency,
                created_at_ms: a.created_at_ms,
            }
        })
        .collect();
    Ok(Statement {
        cardholder: cardholder.clone(),
        cards,
        entries,
    })
}
