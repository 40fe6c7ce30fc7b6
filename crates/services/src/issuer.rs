//! The issuer (the patent's card manager, 【0040】–【0041】): opens the card part the merchant
//! forwards, authenticates the cardholder against its enrolled card, places a hold, and answers
//! a decision bound to the order, the amount and the currency.
//!
//! Routes: the handshake (see [`crate::auth`]), `GET /healthz`, and in a session
//! `POST /v1/authorizations` (merchants only); after it, the payment's lifecycle for the
//! order's merchant (capture, void, refunds, read, and a dispute answered with the carrier's
//! proof of delivery), and `GET /v1/statement` for a cardholder (its cards without their
//! numbers, its orders with payment method and instalments). Every lifecycle `POST` is
//! idempotent: a retry gets the first answer and moves no money twice.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Json, Router};
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::keysource::KeySource;
use warifu_core::order::PaymentMethod;
use warifu_core::sealed::{ForIssuer, View};
use warifu_core::{PartyId, Role};
use warifu_store::{
    Applied, AuthorizationRecord, AuthorizationStatus, DeclineCode, IssuerStore, StoreError,
    StoredResponse,
};

use crate::attest;
use crate::auth::{Guard, GuardLimits, JsonBody, Peer};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::{self, fingerprint, json_bytes, random_id, store_error, to_json};
use crate::wire::{
    AuthorizeRequest, CaptureRequest, Decision, DeclineReason, DisputeAnswer, Outcome,
    PaymentReceipt, ProofOfDelivery, RefundRequest, Statement, StatementCard, StatementEntry,
    VoidRequest,
};

/// The path of the authorization endpoint.
pub const PATH_AUTHORIZE: &str = "/v1/authorizations";
/// An order's payment (`GET`, merchant session) → `PaymentReceipt`.
pub const PATH_AUTHORIZATION: &str = "/v1/authorizations/{order_id}";
/// Capture (`POST CaptureRequest`, merchant session) → `PaymentReceipt`.
pub const PATH_CAPTURE: &str = "/v1/authorizations/{order_id}/capture";
/// Void (`POST VoidRequest`, merchant session) → `PaymentReceipt`.
pub const PATH_VOID: &str = "/v1/authorizations/{order_id}/void";
/// Refund (`POST RefundRequest`, merchant session) → `PaymentReceipt`.
pub const PATH_REFUNDS: &str = "/v1/authorizations/{order_id}/refunds";
/// A dispute answered with the carrier's proof (`POST ProofOfDelivery`, merchant session) →
/// `DisputeAnswer`.
pub const PATH_PROOF_OF_DELIVERY: &str = "/v1/disputes/{order_id}/proof-of-delivery";
/// The cardholder's statement (`GET`, cardholder session) → `Statement`.
pub const PATH_STATEMENT: &str = "/v1/statement";

/// One of the `PATH_*` templates above with its `{order_id}` filled in (order ids are the
/// merchant's URL-safe identifiers).
pub fn order_path(template: &str, order_id: &str) -> String {
    template.replace("{order_id}", order_id)
}

/// The issuer's state.
pub struct IssuerState {
    keys: Arc<dyn KeySource>,
    store: Arc<dyn IssuerStore>,
    guard: Arc<Guard>,
}

impl IssuerState {
    /// An issuer holding `keys` and keeping its books in `store`.
    pub fn new(keys: Arc<dyn KeySource>, store: Arc<dyn IssuerStore>) -> Arc<IssuerState> {
        Arc::new(IssuerState {
            guard: Arc::new(Guard::new(keys.clone(), GuardLimits::default())),
            keys,
            store,
        })
    }

    /// The issuer's identifier.
    pub fn id(&self) -> &PartyId {
        self.keys.owner()
    }

    /// Its session guard (also how it admits operators: `guard().operator().set(…)`).
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    /// Its store.
    pub fn store(&self) -> &Arc<dyn IssuerStore> {
        &self.store
    }
}

/// The issuer's router.
pub fn app(state: Arc<IssuerState>) -> Router {
    let authenticated = OpenApiRouter::new()
        .routes(routes!(authorize))
        .routes(routes!(payment))
        .routes(routes!(capture))
        .routes(routes!(void))
        .routes(routes!(refund))
        .routes(routes!(dispute))
        .routes(routes!(statement))
        .with_state(state.clone());
    let pages = crate::pages::issuer::routes().with_state(state.clone());
    let ops = service::Ops::issuer(state.keys.clone(), state.store.clone());
    service::assemble_with(
        state.guard.clone(),
        OpenApiRouter::new(),
        authenticated,
        pages,
        ops,
    )
}

/// Serves the issuer on `listener` until `shutdown`.
pub async fn run(
    listener: TcpListener,
    state: Arc<IssuerState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    service::serve(listener, app(state), shutdown).await
}

/// The reason shown outside the issuer: name and expiry mismatches are reported as a card
/// mismatch, so an answer does not tell which field was wrong.
pub fn public_reason(code: DeclineCode) -> DeclineReason {
    match code {
        DeclineCode::UnknownCardholder => DeclineReason::UnknownCardholder,
        DeclineCode::Expired => DeclineReason::Expired,
        DeclineCode::Blocked => DeclineReason::Blocked,
        DeclineCode::InsufficientCredit => DeclineReason::InsufficientCredit,
        DeclineCode::CurrencyMismatch => DeclineReason::CurrencyMismatch,
        DeclineCode::InvalidAmount => DeclineReason::InvalidAmount,
        // CardMismatch, NameMismatch, ExpiryMismatch, and any code added later.
        _ => DeclineReason::CardMismatch,
    }
}

#[utoipa::path(post, path = PATH_AUTHORIZE, request_body = AuthorizeRequest, responses((status = 200, description = "The decision, bound to the order (a decline is an answer)", body = Decision)))]
async fn authorize(
    State(st): State<Arc<IssuerState>>,
    Peer(peer): Peer,
    JsonBody(req): JsonBody<AuthorizeRequest>,
) -> AppResult<Response> {
    let header = req.forwarded.header.clone();
    let order_id = header.order_id.clone();
    if peer.role() != Role::Merchant || header.merchant != peer {
        tracing::warn!(%order_id, %peer, "authorization from a party not named as the merchant");
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "only the merchant named in the sealed order may forward it",
        ));
    }
    if &header.issuer != st.id() {
        return Err(AppError::new(
            ErrorCode::NotAddressedHere,
            format!("this order is for {}, not {}", header.issuer, st.id()),
        ));
    }
    AppError::check_scheme(header.scheme, st.keys.scheme())?;
    // The first answer for (merchant, order id) is final; a different request under the same
    // order id is a conflict, never a second hold.
    let scope = format!("authorize:{peer}");
    let policy_bytes = req.policy.encode();
    let fp = fingerprint(&[
        &req.forwarded.encode(),
        &policy_bytes,
        &req.amount.to_be_bytes(),
        req.currency.as_bytes(),
    ]);
    let idem = st
        .store
        .idempotency_get(&scope, &order_id)
        .await
        .map_err(store_error("reading an earlier answer"))?;
    if let Some(first) = idem {
        return replay_answer(first, &fp, &order_id);
    }
    let view: View<ForIssuer> =
        req.forwarded
            .open(&req.policy, st.keys.as_ref())
            .map_err(|_| {
                tracing::warn!(%order_id, merchant = %peer, "issuer part does not open");
                AppError::sealed()
            })?;
    let f = &view.fields;
    let (Some(amount), Some(currency), Some(card), Some(name), Some(method)) = (
        f.amount,
        f.currency.clone(),
        f.card.clone(),
        f.cardholder_name.clone(),
        f.payment_method,
    ) else {
        return Err(AppError::new(
            ErrorCode::OrderInvalid,
            "the disclosure policy withholds from the issuer a field it needs (name, card, amount or payment method)",
        ));
    };
    if amount != req.amount || currency != req.currency {
        tracing::warn!(%order_id, merchant = %peer, "merchant's amount differs from the sealed amount");
        return Err(AppError::new(
            ErrorCode::AmountMismatch,
            "the amount or currency in the request differs from what the cardholder sealed; nothing was held",
        ));
    }
    let authorization_id = random_id("auth_", 12)?;
    let inserted = st
        .store
        .authorize(&warifu_store::AuthorizeRequest {
            merchant_id: peer.to_string(),
            order_id: order_id.clone(),
            authorization_id,
            cardholder_id: header.cardholder.to_string(),
            holder_name: name,
            card_number: card.number,
            expiry: card.expiry,
            amount,
            currency: currency.clone(),
            payment_method: method,
            now_ms: crate::now_ms(),
        })
        .await
        .map_err(store_error("authorizing"))?;
    let rec = inserted.record;
    if rec.amount != amount || rec.currency != currency {
        return Err(AppError::new(
            ErrorCode::OrderConflict,
            "this order id was already authorized for another amount",
        ));
    }
    let approved = rec.approved();
    let mut decision = Decision {
        order_id: order_id.clone(),
        issuer: st.id().clone(),
        merchant: header.merchant.clone(),
        cardholder: header.cardholder.clone(),
        header_digest: header.digest(),
        outcome: if approved {
            Outcome::Approved
        } else {
            Outcome::Declined
        },
        reason: rec.decline_code.map(public_reason),
        amount,
        currency,
        authorization_id: approved.then(|| rec.authorization_id.clone()),
        cardholder_receipt: [0; 32],
        carrier_approval: None,
    };
    let attest_err = |e: attest::AttestError| AppError::internal("attesting a decision", &e);
    decision.cardholder_receipt =
        attest::cardholder_receipt(st.keys.as_ref(), &decision).map_err(attest_err)?;
    if approved && header.carrier.is_some() {
        decision.carrier_approval =
            Some(attest::carrier_approval(st.keys.as_ref(), &header).map_err(attest_err)?);
    }
    match decision.reason {
        None => tracing::info!(%order_id, merchant = %peer, amount, "authorized"),
        Some(reason) => tracing::info!(%order_id, merchant = %peer, %reason, "declined"),
    }
    let stored = st
        .store
        .idempotency_put(
            &scope,
            &order_id,
            &StoredResponse {
                status: 200,
                body: to_json(&decision)?,
                fingerprint: fp.clone(),
                created_at_ms: crate::now_ms(),
            },
        )
        .await
        .map_err(store_error("recording the answer"))?;
    replay_answer(stored, &fp, &order_id)
}

fn replay_answer(first: StoredResponse, fp: &[u8], order_id: &str) -> AppResult<Response> {
    if first.fingerprint != fp {
        tracing::warn!(%order_id, "a different authorization request for a decided order");
        return Err(AppError::new(
            ErrorCode::OrderConflict,
            "this order was already decided on a different request",
        ));
    }
    let status = StatusCode::from_u16(first.status).unwrap_or(StatusCode::OK);
    Ok(json_bytes(status, first.body))
}

// ------------------------------------------------------------------------------------------
// The payment's lifecycle (issue 4)

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

fn unknown_order(order_id: &str) -> AppError {
    AppError::new(
        ErrorCode::UnknownOrder,
        format!("no authorization of this merchant for order {order_id}"),
    )
}

/// A store failure of a lifecycle step as an answer: a step the payment's state does not
/// allow is `invalid_transition`; an unknown order `unknown_order`; a bad argument
/// `malformed_request`; anything else internal.
fn step_error(order_id: &str, context: &'static str, e: StoreError) -> AppError {
    match e {
        StoreError::NotFound(_) => unknown_order(order_id),
        StoreError::Conflict(why) => AppError::new(ErrorCode::InvalidTransition, why),
        StoreError::Invalid(why) => AppError::new(ErrorCode::MalformedRequest, why),
        e => AppError::internal(context, &e),
    }
}

/// Answers a lifecycle step idempotently: the first answer stored under (`scope`, `key`) is
/// replayed to every retry with the same request (`fp`); a different request under the same
/// key is an `order_conflict`.
struct Step<'a> {
    st: &'a IssuerState,
    scope: String,
    key: String,
    fp: Vec<u8>,
}

impl Step<'_> {
    /// The stored first answer, if this request was answered before.
    async fn replay(&self) -> AppResult<Option<Response>> {
        let first = self
            .st
            .store
            .idempotency_get(&self.scope, &self.key)
            .await
            .map_err(store_error("reading an earlier answer"))?;
        match first {
            None => Ok(None),
            Some(f) if f.fingerprint == self.fp => Ok(Some(json_bytes(
                StatusCode::from_u16(f.status).unwrap_or(StatusCode::OK),
                f.body,
            ))),
            Some(_) => Err(AppError::new(
                ErrorCode::OrderConflict,
                "this step was already taken with a different request under the same key",
            )),
        }
    }

    /// Stores `answer` as the first answer (unless a concurrent call stored one) and replies
    /// with whichever is stored.
    async fn answer(&self, answer: &PaymentReceipt) -> AppResult<Response> {
        let stored = self
            .st
            .store
            .idempotency_put(
                &self.scope,
                &self.key,
                &StoredResponse {
                    status: 200,
                    body: to_json(answer)?,
                    fingerprint: self.fp.clone(),
                    created_at_ms: crate::now_ms(),
                },
            )
            .await
            .map_err(store_error("recording the answer"))?;
        if stored.fingerprint != self.fp {
            return Err(AppError::new(
                ErrorCode::OrderConflict,
                "this step was already taken with a different request under the same key",
            ));
        }
        Ok(json_bytes(StatusCode::OK, stored.body))
    }
}

#[utoipa::path(get, path = PATH_AUTHORIZATION, responses((status = 200, description = "The order's payment", body = PaymentReceipt)))]
async fn payment(
    State(st): State<Arc<IssuerState>>,
    Peer(peer): Peer,
    Path(order_id): Path<String>,
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
    Path(order_id): Path<String>,
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
    let step = Step {
        st: &st,
        scope: format!("capture:{peer}"),
        key: order_id.clone(),
        fp: fingerprint(&[
            b"capture",
            amount_bytes.as_ref().map_or(&[][..], |a| &a[..]),
        ]),
    };
    if let Some(r) = step.replay().await? {
        return Ok(r);
    }
    let done = match st
        .store
        .capture(peer.as_str(), &order_id, req.amount, crate::now_ms())
        .await
    {
        Ok(done) => done,
        Err(StoreError::Conflict(why)) => {
            // Captured before with another amount: a conflicting request, not a bad step.
            let now = st
                .store
                .get_authorization(peer.as_str(), &order_id)
                .await
                .map_err(store_error("reading an authorization"))?;
            let code = match now.map(|a| a.status) {
                Some(AuthorizationStatus::Captured | AuthorizationStatus::Refunded) => {
                    ErrorCode::OrderConflict
                }
                _ => ErrorCode::InvalidTransition,
            };
            return Err(AppError::new(code, why));
        }
        Err(e) => return Err(step_error(&order_id, "capturing", e)),
    };
    log_step("captured", &peer, &order_id, &done);
    step.answer(&receipt(&done.authorization)).await
}

#[utoipa::path(post, path = PATH_VOID, request_body = VoidRequest, responses((status = 200, description = "The payment after the void", body = PaymentReceipt)))]
async fn void(
    State(st): State<Arc<IssuerState>>,
    Peer(peer): Peer,
    Path(order_id): Path<String>,
    JsonBody(VoidRequest {}): JsonBody<VoidRequest>,
) -> AppResult<Response> {
    merchant_only(&peer)?;
    let step = Step {
        st: &st,
        scope: format!("void:{peer}"),
        key: order_id.clone(),
        fp: fingerprint(&[b"void"]),
    };
    if let Some(r) = step.replay().await? {
        return Ok(r);
    }
    let done = st
        .store
        .void(peer.as_str(), &order_id, crate::now_ms())
        .await
        .map_err(|e| step_error(&order_id, "voiding", e))?;
    log_step("voided", &peer, &order_id, &done);
    step.answer(&receipt(&done.authorization)).await
}

/// The longest refund id accepted.
const MAX_REFUND_ID: usize = 128;

#[utoipa::path(post, path = PATH_REFUNDS, request_body = RefundRequest, responses((status = 200, description = "The payment after the refund", body = PaymentReceipt)))]
async fn refund(
    State(st): State<Arc<IssuerState>>,
    Peer(peer): Peer,
    Path(order_id): Path<String>,
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
    // Refund ids are the merchant's, unique across its orders (as in the store).
    let step = Step {
        st: &st,
        scope: format!("refund:{peer}"),
        key: req.refund_id.clone(),
        fp: fingerprint(&[b"refund", order_id.as_bytes(), &req.amount.to_be_bytes()]),
    };
    if let Some(r) = step.replay().await? {
        return Ok(r);
    }
    let done = st
        .store
        .refund(
            peer.as_str(),
            &order_id,
            &req.refund_id,
            req.amount,
            crate::now_ms(),
        )
        .await
        .map_err(|e| step_error(&order_id, "refunding", e))?;
    log_step("refunded", &peer, &order_id, &done);
    step.answer(&receipt(&done.authorization)).await
}

fn log_step(what: &'static str, merchant: &PartyId, order_id: &str, done: &Applied) {
    let a = &done.authorization;
    tracing::info!(
        %order_id,
        %merchant,
        applied = done.applied,
        captured = a.captured,
        refunded = a.refunded,
        status = %a.status,
        "{what}"
    );
}

#[utoipa::path(post, path = PATH_PROOF_OF_DELIVERY, request_body = ProofOfDelivery, responses((status = 200, description = "Whether the carrier's proof verifies", body = DisputeAnswer)))]
async fn dispute(
    State(st): State<Arc<IssuerState>>,
    Peer(peer): Peer,
    Path(order_id): Path<String>,
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
    st.store
        .get_authorization(peer.as_str(), &order_id)
        .await
        .map_err(store_error("reading an authorization"))?
        .ok_or_else(|| unknown_order(&order_id))?;
    let proof_valid = match attest::verify_proof_of_delivery(st.keys.as_ref(), &proof) {
        Ok(()) => true,
        Err(attest::AttestError::Invalid) => false,
        // No key for the named carrier: it cannot have attested.
        Err(attest::AttestError::Key(_)) => false,
    };
    tracing::info!(%order_id, merchant = %peer, carrier = %proof.carrier, proof_valid, "dispute: proof of delivery");
    Ok(Json(DisputeAnswer {
        order_id,
        proof_valid,
        delivered_at_ms: proof.delivered_at_ms,
    }))
}

/// The last four characters of a card number (the statement never shows more).
fn last4(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(4)..].iter().collect()
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
            last4: last4(c.number.expose()),
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
