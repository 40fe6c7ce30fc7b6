//! The issuer (the patent's card manager, 【0040】–【0041】): opens the card part the merchant
//! forwards, authenticates the cardholder against its enrolled card, places a hold, and answers
//! a decision bound to the order, the amount and the currency.
//!
//! Routes: the handshake (see [`crate::auth`]), `GET /healthz`, and in a session
//! `POST /v1/authorizations` (merchants only).

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use warifu_core::keysource::KeySource;
use warifu_core::sealed::{ForIssuer, View};
use warifu_core::{PartyId, Role};
use warifu_store::{DeclineCode, IssuerStore, StoredResponse};

use crate::attest;
use crate::auth::{Guard, GuardLimits, JsonBody, Peer};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::{self, fingerprint, json_bytes, random_id, store_error, to_json};
use crate::wire::{AuthorizeRequest, Decision, DeclineReason, Outcome};

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
    let authenticated = Router::new()
        .route(PATH_AUTHORIZE, post(authorize))
        .with_state(state.clone());
    let public = Router::new()
        .route("/healthz", get(health))
        .merge(crate::pages::issuer::routes())
        .with_state(state.clone());
    service::assemble(state.guard.clone(), public, authenticated)
}

/// Serves the issuer on `listener` until `shutdown`.
pub async fn run(
    listener: TcpListener,
    state: Arc<IssuerState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    service::serve(listener, app(state), shutdown).await
}

async fn health(State(st): State<Arc<IssuerState>>) -> AppResult<Json<serde_json::Value>> {
    service::health(&*st.store, st.id()).await
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
