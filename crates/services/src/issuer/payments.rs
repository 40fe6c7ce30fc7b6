//! The payment's lifecycle for the order's merchant: read, capture, void and refunds, each
//! idempotent (a retry gets the first answer and moves no money twice), and a dispute answered
//! with the carrier's proof of delivery (only from the carrier the order names, over the
//! header digest recorded at authorization). For the order's carrier: whether the
//! authorization still stands, asked before it accepts a shipment.

use std::sync::Arc;
use warifu_core::OrderId;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::keysource::KeySource;
use warifu_core::order::PaymentMethod;
use warifu_core::{PartyId, Role};
use warifu_store::{
    Applied, AuthorizationBinding, AuthorizationRecord, AuthorizationStatus, PaymentStep,
    StoreError, rules,
};

use super::state::IssuerState;
use crate::attest;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::idempotency::Idempotent;
use crate::http::service::{fingerprint, store_error};
use crate::protocol::carrier_issuer::{AuthorizationLiveness, PATH_AUTHORIZATION_LIVE};
use crate::protocol::merchant_issuer::{
    CaptureRequest, DisputeAnswer, PATH_AUTHORIZATION, PATH_CAPTURE, PATH_PROOF_OF_DELIVERY,
    PATH_REFUNDS, PATH_VOID, PaymentReceipt, ProofOfDelivery, RefundRequest, VoidRequest,
};
use crate::session::server::{JsonBody, Peer};

/// How a payment method reads on a receipt or statement: `lump_sum`, `installments(N)`,
/// `revolving` or `bonus`.
pub fn payment_method_label(method: PaymentMethod) -> String {
    match method {
        PaymentMethod::LumpSum => "lump_sum".to_owned(),
        PaymentMethod::Installments { count } => format!("installments({count})"),
        PaymentMethod::Revolving => "revolving".to_owned(),
        PaymentMethod::Bonus => "bonus".to_owned(),
    }
}

/// The payment state of an authorization as answered on the wire: `authorized`, `declined`,
/// `captured`, `voided`, `refunded` or `partially_refunded`.
pub fn payment_state(a: &AuthorizationRecord) -> &'static str {
    match a.status {
        AuthorizationStatus::Declined => "declined",
        AuthorizationStatus::Held => "authorized",
        AuthorizationStatus::Captured if a.refunded > 0 => "partially_refunded",
        AuthorizationStatus::Captured => "captured",
        AuthorizationStatus::Voided => "voided",
        AuthorizationStatus::Refunded => "refunded",
        // Any status added later reads as its stored name.
        _ => a.status.as_str(),
    }
}

/// The receipt of an authorization.
pub fn receipt(a: &AuthorizationRecord) -> PaymentReceipt {
    PaymentReceipt {
        order_id: a.order_id.clone(),
        authorization_id: a.approved().then(|| a.authorization_id.clone()),
        state: payment_state(a).to_owned(),
        amount: a.amount,
        captured: a.captured,
        refunded: a.refunded,
        currency: a.currency.clone(),
        payment_method: payment_method_label(a.payment_method),
    }
}

fn merchant_only(peer: &PartyId) -> AppResult<()> {
    if peer.role() != Role::Merchant {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "only the order's merchant may read or move its payment",
        ));
    }
    Ok(())
}

fn unknown_order(order_id: &OrderId) -> AppError {
    AppError::new(
        ErrorCode::UnknownOrder,
        format!("no authorization of this merchant for order {order_id}"),
    )
}

/// A store failure of a lifecycle step as an answer: a step the payment's state does not
/// allow is `invalid_transition`; an unknown order `unknown_order`; a bad argument
/// `malformed_request`; anything else internal.
fn step_error(order_id: &OrderId, context: &'static str, e: StoreError) -> AppError {
    match e {
        StoreError::NotFound(_) => unknown_order(order_id),
        StoreError::Conflict(why) => AppError::new(ErrorCode::InvalidTransition, why),
        StoreError::Invalid(why) => AppError::new(ErrorCode::MalformedRequest, why),
        e => AppError::internal(context, &e),
    }
}

/// What a different request under the key of a step already taken is told.
const STEP_CONFLICT: &str =
    "this step was already taken with a different request under the same key";

/// The payment's routes (the order's merchant).
pub(super) fn routes() -> OpenApiRouter<Arc<IssuerState>> {
    OpenApiRouter::new()
        .routes(routes!(payment))
        .routes(routes!(capture))
        .routes(routes!(void))
        .routes(routes!(refund))
        .routes(routes!(dispute))
        .routes(routes!(liveness))
}

#[utoipa::path(get, path = PATH_AUTHORIZATION, responses((status = 200, description = "The order's payment", body = PaymentReceipt)))]
async fn payment(
    State(st): State<Arc<IssuerState>>,
    Peer(peer): Peer,
    Path(order_id): Path<OrderId>,
) -> AppResult<Json<PaymentReceipt>> {
    merchant_only(&peer)?;
    let a = st
        .store
        .get_authorization(peer.as_str(), &order_id)
        .await
        .map_err(store_error("reading an authorization"))?
        .ok_or_else(|| unknown_order(&order_id))?;
    Ok(Json(receipt(&a)))
}

#[utoipa::path(post, path = PATH_CAPTURE, request_body = CaptureRequest, responses((status = 200, description = "The payment after the capture", body = PaymentReceipt)))]
async fn capture(
    State(st): State<Arc<IssuerState>>,
    Peer(peer): Peer,
    Path(order_id): Path<OrderId>,
    JsonBody(req): JsonBody<CaptureRequest>,
) -> AppResult<Response> {
    merchant_only(&peer)?;
    if req.amount == Some(0) {
        return Err(AppError::new(
            ErrorCode::MalformedRequest,
            "a capture amount must be more than zero (omit it to capture the whole hold)",
        ));
    }
    let amount_bytes = req.amount.map(u64::to_be_bytes);
    let fp = fingerprint(&[
        b"capture",
        amount_bytes.as_ref().map_or(&[][..], |a| &a[..]),
    ]);
    let step = Step {
        payment: PaymentStep::Capture { amount: req.amount },
        scope: format!("capture:{peer}"),
        key: order_id.to_string(),
        fp,
    };
    step.take(&st, &peer, &order_id).await
}

#[utoipa::path(post, path = PATH_VOID, request_body = VoidRequest, responses((status = 200, description = "The payment after the void", body = PaymentReceipt)))]
async fn void(
    State(st): State<Arc<IssuerState>>,
    Peer(peer): Peer,
    Path(order_id): Path<OrderId>,
    JsonBody(VoidRequest {}): JsonBody<VoidRequest>,
) -> AppResult<Response> {
    merchant_only(&peer)?;
    let step = Step {
        payment: PaymentStep::Void,
        scope: format!("void:{peer}"),
        key: order_id.to_string(),
        fp: fingerprint(&[b"void"]),
    };
    step.take(&st, &peer, &order_id).await
}

/// The longest refund id accepted.
const MAX_REFUND_ID: usize = 128;

#[utoipa::path(post, path = PATH_REFUNDS, request_body = RefundRequest, responses((status = 200, description = "The payment after the refund", body = PaymentReceipt)))]
async fn refund(
    State(st): State<Arc<IssuerState>>,
    Peer(peer): Peer,
    Path(order_id): Path<OrderId>,
    JsonBody(req): JsonBody<RefundRequest>,
) -> AppResult<Response> {
    merchant_only(&peer)?;
    if req.refund_id.is_empty()
        || req.refund_id.len() > MAX_REFUND_ID
        || !req
            .refund_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return Err(AppError::new(
            ErrorCode::MalformedRequest,
            "a refund id is 1–128 characters of A–Z, a–z, 0–9, '-', '_', '.', ':'",
        ));
    }
    if req.amount == 0 {
        return Err(AppError::new(
            ErrorCode::MalformedRequest,
            "a refund amount must be more than zero",
        ));
    }
    let step = Step {
        scope: format!("refund:{peer}"),
        // Refund ids are the merchant's, scoped to the order (as in the store): "cancel" on
        // two orders is two refunds.
        key: format!("{order_id}/{}", req.refund_id),
        fp: fingerprint(&[b"refund", order_id.as_bytes(), &req.amount.to_be_bytes()]),
        payment: PaymentStep::Refund {
            refund_id: req.refund_id,
            amount: req.amount,
        },
    };
    step.take(&st, &peer, &order_id).await
}

/// One payment step of the order's merchant under its idempotency key: an earlier identical
/// request gets the first answer and moves nothing; otherwise the step is applied, logged
/// and its receipt kept as the first answer in the step's own transaction.
struct Step {
    /// The step.
    payment: PaymentStep,
    /// The idempotency scope (`capture:<merchant>`, …).
    scope: String,
    /// The key in the scope (the order id, `<order id>/<refund id>`).
    key: String,
    /// The request's fingerprint.
    fp: Vec<u8>,
}

impl Step {
    async fn take(
        &self,
        st: &IssuerState,
        merchant: &PartyId,
        order_id: &OrderId,
    ) -> AppResult<Response> {
        let step = Idempotent {
            scope: &self.scope,
            key: &self.key,
            fp: &self.fp,
            conflict: STEP_CONFLICT,
        };
        if let Some(r) = step.earlier(st.store.as_ref()).await? {
            return Ok(r);
        }
        let answer = step.keep(st.clock().now_ms(), |done: &Applied| {
            serde_json::to_vec(&receipt(&done.authorization)).ok()
        });
        let (done, kept) = match st
            .store
            .payment_step_answered(
                merchant.as_str(),
                order_id,
                &self.payment,
                st.clock().now_ms(),
                &answer,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(self.refused(st, merchant, order_id, e).await),
        };
        let a = &done.authorization;
        let what = match self.payment {
            PaymentStep::Capture { .. } => "captured",
            PaymentStep::Void => "voided",
            PaymentStep::Refund { .. } => "refunded",
        };
        tracing::info!(
            %order_id,
            %merchant,
            applied = done.applied,
            captured = a.captured,
            refunded = a.refunded,
            status = %a.status,
            "{what}"
        );
        match kept {
            Some(first) => step.replay(first),
            None => {
                step.answer(st.store.as_ref(), &receipt(a), st.clock().now_ms())
                    .await
            }
        }
    }

    /// The answer to a step the store refused.
    async fn refused(
        &self,
        st: &IssuerState,
        merchant: &PartyId,
        order_id: &OrderId,
        e: StoreError,
    ) -> AppError {
        match (&self.payment, e) {
            // Captured before with another amount: a conflicting request, not a bad step.
            (PaymentStep::Capture { .. }, StoreError::Conflict(why)) => {
                let now = match st
                    .store
                    .get_authorization(merchant.as_str(), order_id)
                    .await
                {
                    Ok(now) => now,
                    Err(e) => return store_error("reading an authorization")(e),
                };
                let code = match now.map(|a| a.status) {
                    Some(AuthorizationStatus::Captured | AuthorizationStatus::Refunded) => {
                        ErrorCode::OrderConflict
                    }
                    _ => ErrorCode::InvalidTransition,
                };
                AppError::new(code, why)
            }
            (PaymentStep::Capture { .. }, e) => step_error(order_id, "capturing", e),
            (PaymentStep::Void, e) => step_error(order_id, "voiding", e),
            (PaymentStep::Refund { .. }, e) => step_error(order_id, "refunding", e),
        }
    }
}

#[utoipa::path(post, path = PATH_PROOF_OF_DELIVERY, request_body = ProofOfDelivery, responses((status = 200, description = "Whether the carrier's proof verifies", body = DisputeAnswer)))]
async fn dispute(
    State(st): State<Arc<IssuerState>>,
    Peer(peer): Peer,
    Path(order_id): Path<OrderId>,
    JsonBody(proof): JsonBody<ProofOfDelivery>,
) -> AppResult<Json<DisputeAnswer>> {
    merchant_only(&peer)?;
    if proof.order_id != order_id || proof.merchant != peer {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "the proof of delivery is for another order or merchant",
        ));
    }
    if &proof.issuer != st.id() {
        return Err(AppError::new(
            ErrorCode::NotAddressedHere,
            format!("this proof is for {}, not {}", proof.issuer, st.id()),
        ));
    }
    let binding = st
        .store
        .authorization_binding(peer.as_str(), &order_id)
        .await
        .map_err(store_error("reading an authorization"))?
        .ok_or_else(|| unknown_order(&order_id))?;
    let proof_valid = proof_accepted(st.keys.as_ref(), &proof, &binding);
    tracing::info!(%order_id, merchant = %peer, carrier = %proof.carrier, proof_valid, "dispute: proof of delivery");
    Ok(Json(DisputeAnswer {
        order_id,
        proof_valid,
        delivered_at_ms: proof.delivered_at_ms,
    }))
}

/// Whether a proof of delivery proves delivery of the order bound as `binding`: it comes from
/// the carrier the order names (none for an order without carrier, or one authorized before
/// the issuer recorded carriers), and its MAC verifies over the recorded header digest.
pub fn proof_accepted(
    issuer: &dyn KeySource,
    proof: &ProofOfDelivery,
    binding: &AuthorizationBinding,
) -> bool {
    let (Some(carrier), Some(digest)) = (&binding.carrier_id, &binding.header_digest) else {
        return false;
    };
    if proof.carrier.as_str() != carrier {
        return false;
    }
    // A wrong MAC, or no key for the named carrier: it did not attest.
    attest::verify_proof_of_delivery(issuer, proof, digest).is_ok()
}

#[utoipa::path(get, path = PATH_AUTHORIZATION_LIVE, responses((status = 200, description = "Whether the order's authorization still stands (the order's carrier only)", body = AuthorizationLiveness)))]
async fn liveness(
    State(st): State<Arc<IssuerState>>,
    Peer(peer): Peer,
    Path((merchant, order_id)): Path<(String, OrderId)>,
) -> AppResult<Json<AuthorizationLiveness>> {
    let unknown = || {
        AppError::new(
            ErrorCode::UnknownOrder,
            format!("no authorization of {merchant} for order {order_id} shipped by this caller"),
        )
    };
    if peer.role() != Role::Carrier {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "only the order's carrier may ask whether its authorization stands",
        ));
    }
    let binding = st
        .store
        .authorization_binding(&merchant, &order_id)
        .await
        .map_err(store_error("reading an authorization"))?
        .ok_or_else(unknown)?;
    if binding.carrier_id.as_deref() != Some(peer.as_str()) {
        return Err(unknown());
    }
    let a = st
        .store
        .get_authorization(&merchant, &order_id)
        .await
        .map_err(store_error("reading an authorization"))?
        .ok_or_else(unknown)?;
    let live = rules::live(a.status);
    tracing::info!(%order_id, %merchant, carrier = %peer, live, "liveness asked");
    Ok(Json(AuthorizationLiveness {
        merchant,
        order_id,
        state: payment_state(&a).to_owned(),
        live,
    }))
}
