//! The merchant operator's routes: the order list, and cancelling, refunding and disputing an
//! order (the dispute shows the issuer the carrier's proof of delivery).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::{PartyId, Role};
use warifu_store::{OrderFilter, OrderState, Transition};

use super::lifecycle::{SCOPE_CANCEL, cancel_order, invalid, outcome_of, read_any_order};
use super::state::{BUNDLE_CONFLICT, MerchantState};
use super::worker;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::idempotency::Idempotent;
use crate::http::service::{fingerprint, peer_error, store_error};
use crate::protocol::cardholder_merchant::{CancelRequest, OrderOutcome};
use crate::protocol::merchant_issuer::{
    DisputeAnswer, PATH_PROOF_OF_DELIVERY, ProofOfDelivery, order_path,
};
use crate::protocol::operator::{AdminOrder, AdminOrderList, OperatorRefund};
use crate::session::operator::Operator;
use crate::session::server::JsonBody;

/// Idempotency scope holding the first answer to an operator's refund.
const SCOPE_REFUND: &str = "operator-refund";

/// The operator's routes.
pub(super) fn routes() -> OpenApiRouter<Arc<MerchantState>> {
    OpenApiRouter::new()
        .routes(routes!(admin_orders))
        .routes(routes!(admin_cancel))
        .routes(routes!(admin_refund))
        .routes(routes!(admin_dispute))
}

/// The operator cancels an order (as the cardholder could); the body (`{}`) may be omitted.
#[utoipa::path(post, path = "/v1/admin/orders/{order_id}/cancel", request_body = CancelRequest, responses((status = 200, description = "The cancelled order", body = OrderOutcome)))]
async fn admin_cancel(
    State(st): State<Arc<MerchantState>>,
    _: Operator,
    Path(order_id): Path<String>,
    body: axum::body::Bytes,
) -> AppResult<Response> {
    if !body.is_empty() {
        serde_json::from_slice::<CancelRequest>(&body).map_err(|e| {
            AppError::new(
                ErrorCode::MalformedRequest,
                crate::error::redact_quoted(&e.to_string()),
            )
        })?;
    }
    let order = read_any_order(&st, &order_id).await?;
    let fp = fingerprint(&[order.cardholder_id.as_bytes()]);
    let once = Idempotent {
        scope: SCOPE_CANCEL,
        key: &order_id,
        fp: &fp,
        conflict: BUNDLE_CONFLICT,
    };
    if let Some(first) = once.earlier(st.store.as_ref()).await? {
        return Ok(first);
    }
    let order = cancel_order(&st, order).await?;
    let outcome = outcome_of(&st, &order).await?;
    once.answer(st.store.as_ref(), &outcome).await
}

/// The operator refunds all or part of a captured order. A full refund ends the order
/// `refunded`; a partial one leaves it where it is (the payment shows `partially_refunded`).
#[utoipa::path(post, path = "/v1/admin/orders/{order_id}/refund", request_body = OperatorRefund, responses((status = 200, description = "The refunded order", body = OrderOutcome)))]
async fn admin_refund(
    State(st): State<Arc<MerchantState>>,
    _: Operator,
    Path(order_id): Path<String>,
    JsonBody(req): JsonBody<OperatorRefund>,
) -> AppResult<Response> {
    let order = read_any_order(&st, &order_id).await?;
    let refund_id = match (&req.refund_id, req.amount) {
        (Some(id), _) => id.clone(),
        (None, None) => "op-full".to_owned(),
        (None, Some(a)) => format!("op-{a}"),
    };
    if refund_id.is_empty() || refund_id.len() > 64 || refund_id.chars().any(char::is_control) {
        return Err(AppError::new(
            ErrorCode::MalformedRequest,
            "a refund id is 1–64 characters",
        ));
    }
    let key = format!("{order_id}/{refund_id}");
    let fp = fingerprint(&[&req.amount.unwrap_or(0).to_be_bytes()]);
    let once = Idempotent {
        scope: SCOPE_REFUND,
        key: &key,
        fp: &fp,
        conflict: BUNDLE_CONFLICT,
    };
    if let Some(first) = once.earlier(st.store.as_ref()).await? {
        return Ok(first);
    }
    if !matches!(order.state, OrderState::Captured | OrderState::Delivered) {
        return Err(invalid(
            "only a captured or delivered order can be refunded",
        ));
    }
    let left = worker::refundable(&st, &order).await?;
    let amount = req.amount.unwrap_or(left);
    if amount == 0 || amount > left {
        return Err(invalid(&format!(
            "the refund must be between 1 and what is left of the capture ({left})"
        )));
    }
    let t = Transition::new(&order_id, order.state, order.state, crate::now_ms()).send(
        worker::KIND_REFUND,
        worker::refund_message(&refund_id, if req.amount.is_some() { amount } else { 0 })?,
    );
    if !st
        .store
        .transition(&t)
        .await
        .map_err(store_error("recording a refund"))?
    {
        return Err(invalid("the order changed meanwhile; try again"));
    }
    tracing::info!(%order_id, %refund_id, amount, "operator refund");
    let order = worker::drive(&st, &order_id).await?;
    let outcome = outcome_of(&st, &order).await?;
    once.answer(st.store.as_ref(), &outcome).await
}

/// The operator answers a dispute: the carrier's proof of delivery, kept when the worker
/// learned of the delivery, is shown to the issuer (it carries no address), which checks the
/// carrier's MAC and answers `DisputeAnswer`.
#[utoipa::path(post, path = "/v1/admin/orders/{order_id}/dispute", responses((status = 200, description = "The issuer's answer to the carrier's proof of delivery (which carries no address)", body = DisputeAnswer)))]
async fn admin_dispute(
    State(st): State<Arc<MerchantState>>,
    _: Operator,
    Path(order_id): Path<String>,
) -> AppResult<Json<DisputeAnswer>> {
    let order = read_any_order(&st, &order_id).await?;
    let facts = st
        .store
        .order_facts(&order_id)
        .await
        .map_err(store_error("reading order facts"))?;
    let proof: ProofOfDelivery = facts
        .iter()
        .find(|f| f.kind == worker::FACT_PROOF)
        .and_then(|f| serde_json::from_slice(&f.body).ok())
        .ok_or_else(|| invalid("no proof of delivery is known for this order"))?;
    let issuer = PartyId::parse(&order.issuer_id)
        .map_err(|e| AppError::internal("reading an order's issuer", &e))?;
    let client = st.peer(&issuer, Role::Issuer)?;
    let answer: DisputeAnswer = client
        .post(&order_path(PATH_PROOF_OF_DELIVERY, &order_id), &proof)
        .await
        .map_err(peer_error)?;
    tracing::info!(%order_id, proof_valid = answer.proof_valid, "dispute answered with the proof of delivery");
    Ok(Json(answer))
}

/// `?limit=&offset=&state=` of the operator's order list.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
    offset: Option<u32>,
    state: Option<String>,
}

#[utoipa::path(get, path = "/v1/admin/orders", params(
        ("limit" = Option<u32>, Query, description = "At most this many"),
        ("offset" = Option<u32>, Query, description = "Skip this many"),
        ("state" = Option<String>, Query, description = "Only orders in this state")
    ), responses((status = 200, description = "Orders, newest first (no card, no destination)", body = AdminOrderList)))]
async fn admin_orders(
    State(st): State<Arc<MerchantState>>,
    _: Operator,
    Query(q): Query<ListQuery>,
) -> AppResult<Json<AdminOrderList>> {
    let state = match q.state.as_deref() {
        Some(s) => Some(
            OrderState::parse(s)
                .ok_or_else(|| AppError::new(ErrorCode::MalformedRequest, "no such order state"))?,
        ),
        None => None,
    };
    let orders = st
        .store
        .list_orders(&OrderFilter {
            cardholder_id: None,
            state,
            limit: Some(q.limit.unwrap_or(100).min(1000)),
            offset: q.offset,
        })
        .await
        .map_err(store_error("listing orders"))?;
    let pending_messages = st
        .store
        .outbox_pending()
        .await
        .map_err(store_error("counting outbox messages"))?;
    Ok(Json(AdminOrderList {
        orders: orders
            .into_iter()
            .map(|o| AdminOrder {
                order_id: o.order_id,
                cardholder: o.cardholder_id,
                amount: o.amount,
                currency: o.currency,
                state: o.state.as_str().to_owned(),
                decline_code: o.decline_code,
                authorization_id: o.authorization_id,
                tracking_number: o.tracking_number,
                created_at_ms: o.created_at_ms,
                updated_at_ms: o.updated_at_ms,
            })
            .collect(),
        pending_messages,
    }))
}
