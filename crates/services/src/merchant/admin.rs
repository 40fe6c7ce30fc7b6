//! The merchant operator's routes: the order list, and cancelling, refunding and disputing an
//! order (the dispute shows the issuer the carrier's proof of delivery).

use std::sync::Arc;
use warifu_core::OrderId;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::{PartyId, Role};
use warifu_store::{OrderFilter, OrderState, Transition};

use super::lifecycle::{SCOPE_CANCEL, cancel_order, invalid, outcome_of, read_any_order};
use super::machine::{Command, Event};
use super::state::{BUNDLE_CONFLICT, MerchantState};
use super::worker::{self, Applied};
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
    Path(order_id): Path<OrderId>,
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
    once.answer(st.store.as_ref(), &outcome, st.clock().now_ms())
        .await
}

/// The operator refunds all or part of a captured order. A full refund ends the order
/// `refunded`; a partial one leaves it where it is (the payment shows `partially_refunded`).
/// Each request is a new refund, `op-<n>` (the order's next operator-refund number), so two
/// equal partial refunds are two refunds; a request with an `Idempotency-Key` header (or the
/// body's `refund_id`) is refunded once under `op-key-<key>`, and its retries answer the first.
#[utoipa::path(post, path = "/v1/admin/orders/{order_id}/refund", request_body = OperatorRefund,
    params(("Idempotency-Key" = Option<String>, Header, description = "Refund once under this key (1–60 characters)")),
    responses((status = 200, description = "The refunded order", body = OrderOutcome)))]
async fn admin_refund(
    State(st): State<Arc<MerchantState>>,
    _: Operator,
    headers: HeaderMap,
    Path(order_id): Path<OrderId>,
    JsonBody(req): JsonBody<OperatorRefund>,
) -> AppResult<Response> {
    let order = read_any_order(&st, &order_id).await?;
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| AppError::new(ErrorCode::MalformedRequest, "a bad Idempotency-Key"))?
                .to_owned(),
        ),
        None => req.refund_id.clone(),
    };
    if let Some(k) = &key
        && (k.is_empty()
            || k.len() > 60
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)))
    {
        return Err(AppError::new(
            ErrorCode::MalformedRequest,
            "an idempotency key (or refund id) is 1–60 characters of A–Z, a–z, 0–9, '-', '_', '.' or ':'",
        ));
    }
    let fp = fingerprint(&[&req.amount.unwrap_or(0).to_be_bytes()]);
    let scoped = key.as_ref().map(|k| format!("{order_id}/op-{k}"));
    let once = scoped.as_deref().map(|key| Idempotent {
        scope: SCOPE_REFUND,
        key,
        fp: &fp,
        conflict: BUNDLE_CONFLICT,
    });
    if let Some(once) = &once
        && let Some(first) = once.earlier(st.store.as_ref()).await?
    {
        return Ok(first);
    }
    // Keyed ids and numbered ids never meet: `op-key-<key>` and `op-<n>`.
    let sent = operator_refunds(&st, &order_id).await?;
    let refund_id = match &key {
        Some(k) => format!("op-key-{k}"),
        None => next_operator_refund(&sent),
    };
    let asked = req.amount.unwrap_or(0);
    // A keyed refund taken before whose answer was not stored (the issuer was down: the
    // refund waits in the outbox): a retry resumes it; another amount under the key is a
    // conflict, never a second refund.
    if key.is_some()
        && let Some((_, taken)) = sent.iter().find(|(id, _)| *id == refund_id)
    {
        if *taken != asked {
            return Err(AppError::new(
                ErrorCode::OrderConflict,
                "this refund key was already taken for another amount",
            ));
        }
        return refund_answer(&st, &order_id, once.as_ref()).await;
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
    let event = Event::OperatorRefund {
        refund_id: refund_id.clone(),
        amount: asked,
    };
    // At the version read: two refunds at once cannot take the same number.
    let version = order.version;
    let edit = move |t: Transition| t.at_version(version);
    match worker::advance(&st, &order, &event, None, &edit, None).await? {
        Applied::To(_) => {}
        Applied::Refused(r) => return Err(invalid(r.message)),
        Applied::Moved => return Err(invalid("the order changed meanwhile; try again")),
    }
    tracing::info!(%order_id, %refund_id, amount, "operator refund");
    refund_answer(&st, &order_id, once.as_ref()).await
}

/// Runs the order's pending steps and answers with its outcome, kept under the refund's key
/// if it has one.
async fn refund_answer(
    st: &MerchantState,
    order_id: &OrderId,
    once: Option<&Idempotent<'_>>,
) -> AppResult<Response> {
    let order = worker::drive(st, order_id).await?;
    let outcome = outcome_of(st, &order).await?;
    match once {
        Some(once) => {
            once.answer(st.store.as_ref(), &outcome, st.clock().now_ms())
                .await
        }
        None => Ok(Json(outcome).into_response()),
    }
}

/// The operator refunds the order's outbox holds (sent or waiting): each id with the amount
/// asked (0: the rest).
async fn operator_refunds(st: &MerchantState, order_id: &OrderId) -> AppResult<Vec<(String, u64)>> {
    Ok(st
        .store
        .outbox_for_order(order_id)
        .await
        .map_err(store_error("reading the outbox"))?
        .into_iter()
        .filter_map(|m| match Command::decode(&m.kind, &m.payload) {
            Ok(Command::Refund { refund_id, amount }) if refund_id.starts_with("op-") => {
                Some((refund_id, amount))
            }
            _ => None,
        })
        .collect())
}

/// The order's next operator-refund id, `op-<n>`: one more than the operator refunds it
/// already sent (skipping an id a key already took).
fn next_operator_refund(sent: &[(String, u64)]) -> String {
    let mut n = sent.len() + 1;
    while sent.iter().any(|(id, _)| *id == format!("op-{n}")) {
        n += 1;
    }
    format!("op-{n}")
}

/// The operator answers a dispute: the carrier's proof of delivery, kept when the worker
/// learned of the delivery, is shown to the issuer (it carries no address), which checks the
/// carrier's MAC and answers `DisputeAnswer`.
#[utoipa::path(post, path = "/v1/admin/orders/{order_id}/dispute", responses((status = 200, description = "The issuer's answer to the carrier's proof of delivery (which carries no address)", body = DisputeAnswer)))]
async fn admin_dispute(
    State(st): State<Arc<MerchantState>>,
    _: Operator,
    Path(order_id): Path<OrderId>,
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
