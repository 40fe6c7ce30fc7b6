//! The merchant (【0028】–【0042】): hands out order forms, receives the sealed bundle, opens
//! only its own part, forwards the issuer's part, and on approval forwards the carrier's part
//! with its delivery request.
//!
//! Routes: the handshake, `GET /healthz`, `GET /v1/catalog` (public, assigns nothing); in
//! a session with a cardholder `POST /v1/order-forms`, `POST /v1/orders`,
//! `GET /v1/orders/{order_id}` and `POST /v1/orders/{order_id}/cancel`; for its operator
//! (`crate::operator::Operator`) `GET /v1/admin/orders`, `POST /v1/admin/orders/{id}/cancel`,
//! `POST /v1/admin/orders/{id}/refund` and `POST /v1/admin/orders/{id}/dispute`.
//!
//! An order is a persisted state machine (`warifu_store::OrderState`): it is recorded as
//! `received` with its authorization message in the outbox in one transaction; every later
//! step (authorize, ship, capture, void, refund, track) is run by [`crate::worker`], inline
//! for the request that caused it and by the outbox worker after a crash or an outage. Each
//! step is a compare-and-set committed with the message it causes, and the issuer and carrier
//! are idempotent on the order id (and refund id), so nothing is charged or shipped twice.
//!
//! Cancelling: `authorized` / `shipping_requested` → `cancelled` → `voided` (the hold is
//! released); `captured` / `delivered` → `cancelled` → `refunded` (in full); `received` and
//! `shipped` (a step in flight) answer `invalid_transition` — cancel again a moment later.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Json, Router};
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::keysource::KeySource;
use warifu_core::order::{CatalogItem, OrderForm};
use warifu_core::policy::Policy;
use warifu_core::sealed::{Disclosed, ForMerchant, SealedOrder, View};
use warifu_core::{PartyId, Role};
use warifu_store::{
    MerchantStore, NewOrder, NewOutboxMessage, OrderFilter, OrderFormRecord, OrderRecord,
    OrderState, StoredResponse, Transition,
};

use crate::auth::{Guard, GuardLimits, JsonBody, Peer};
use crate::directory::{DirectoryError, SharedDirectory};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::operator::Operator;
use crate::peer::{PeerClient, http_client};
use crate::service::{self, fingerprint, json_bytes, random_id, store_error, to_json};
use crate::wire::{
    AdminOrder, AdminOrderList, AuthorizeRequest, CancelRequest, CatalogView, Decision,
    DisputeAnswer, FormRequest, OperatorRefund, OrderOutcome, ProofOfDelivery, SubmitRequest,
    VoidRequest,
};
use crate::worker;

pub use crate::worker::{KIND_AUTHORIZE, KIND_SHIP};
/// Idempotency scope holding the first answer to a submission.
const SCOPE_SUBMIT: &str = "submit";
/// Idempotency scope pinning the first bundle submitted under an order id.
const SCOPE_BUNDLE: &str = "submit-bundle";
/// Idempotency scope holding the first answer to a cancellation.
const SCOPE_CANCEL: &str = "cancel";
/// Idempotency scope holding the first answer to an operator's refund.
const SCOPE_REFUND: &str = "operator-refund";

/// What a merchant sells and how.
#[derive(Debug, Clone)]
pub struct MerchantConfig {
    /// The catalog.
    pub catalog: Vec<CatalogItem>,
    /// ISO 4217 currency.
    pub currency: String,
    /// Issuers whose cards it accepts.
    pub accepted_issuers: Vec<PartyId>,
    /// The carrier it ships with (none: digital goods only).
    pub carrier: Option<PartyId>,
    /// The disclosure policy of its forms.
    pub policy: Policy,
    /// How long an order form stays valid, in seconds.
    pub form_ttl_secs: u64,
    /// The parcel description of its delivery requests.
    pub parcel: String,
    /// Where the carrier picks parcels up.
    pub pickup: String,
}

impl MerchantConfig {
    /// A small example shop: tea and cups in JPY, one issuer and one carrier, the patent's
    /// default policy.
    pub fn example(issuer: PartyId, carrier: Option<PartyId>) -> MerchantConfig {
        MerchantConfig {
            catalog: vec![
                CatalogItem {
                    product_number: "TEA-001".into(),
                    name: "Sencha green tea, 100 g".into(),
                    unit_price: 1200,
                },
                CatalogItem {
                    product_number: "CUP-002".into(),
                    name: "Arita porcelain cup".into(),
                    unit_price: 3500,
                },
                CatalogItem {
                    product_number: "EBOOK-003".into(),
                    name: "The Book of Tea (e-book)".into(),
                    unit_price: 800,
                },
            ],
            currency: "JPY".into(),
            accepted_issuers: vec![issuer],
            carrier,
            policy: Policy::patent_default(),
            form_ttl_secs: 3600,
            parcel: "box 60 size, 1 kg".into(),
            pickup: "shop counter, weekdays 10:00-17:00".into(),
        }
    }
}

/// The merchant's state.
pub struct MerchantState {
    keys: Arc<dyn KeySource>,
    config: MerchantConfig,
    store: Arc<dyn MerchantStore>,
    directory: Arc<SharedDirectory>,
    guard: Arc<Guard>,
    http: reqwest::Client,
    peers: Mutex<HashMap<PartyId, Arc<PeerClient>>>,
}

impl MerchantState {
    /// A merchant holding `keys`, selling by `config`, with orders in `store`, finding its
    /// issuers and carriers in `directory`.
    pub fn new(
        keys: Arc<dyn KeySource>,
        config: MerchantConfig,
        store: Arc<dyn MerchantStore>,
        directory: Arc<SharedDirectory>,
    ) -> Arc<MerchantState> {
        Arc::new(MerchantState {
            guard: Arc::new(Guard::new(keys.clone(), GuardLimits::default())),
            keys,
            config,
            store,
            directory,
            http: http_client(),
            peers: Mutex::new(HashMap::new()),
        })
    }

    /// The merchant's identifier.
    pub fn id(&self) -> &PartyId {
        self.keys.owner()
    }

    /// Its session guard (also how it admits operators: `guard().operator().set(…)`).
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    /// Its store.
    pub fn store(&self) -> &Arc<dyn MerchantStore> {
        &self.store
    }

    /// How many authenticated sessions it holds.
    pub fn sessions(&self) -> usize {
        self.guard.counts().0
    }

    /// What it sells and how.
    pub fn config(&self) -> &MerchantConfig {
        &self.config
    }

    /// The authenticated client for a peer listed in the directory in `role`.
    pub(crate) fn peer(&self, id: &PartyId, role: Role) -> AppResult<Arc<PeerClient>> {
        let dir = self.directory.get();
        let entry = dir.lookup(id, role).map_err(directory_error)?;
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = peers.get(id).filter(|c| c.endpoint() == entry.endpoint) {
            return Ok(c.clone());
        }
        let c = Arc::new(PeerClient::new(
            self.http.clone(),
            self.keys.clone(),
            id.clone(),
            &entry.endpoint,
        ));
        peers.insert(id.clone(), c.clone());
        Ok(c)
    }
}

fn directory_error(e: DirectoryError) -> AppError {
    AppError::new(ErrorCode::UnknownParty, e.to_string())
}

/// The merchant's router.
pub fn app(state: Arc<MerchantState>) -> Router {
    let authenticated = OpenApiRouter::new()
        .routes(routes!(order_form))
        .routes(routes!(submit))
        .routes(routes!(order_status))
        .routes(routes!(cancel))
        .with_state(state.clone());
    let public = OpenApiRouter::new()
        .routes(routes!(catalog))
        .routes(routes!(admin_orders))
        .routes(routes!(admin_cancel))
        .routes(routes!(admin_refund))
        .routes(routes!(admin_dispute))
        .with_state(state.clone());
    let pages = crate::pages::merchant::routes().with_state(state.clone());
    let c = &state.config;
    let peers = c
        .accepted_issuers
        .iter()
        .map(|i| (i.clone(), Role::Issuer))
        .chain(c.carrier.iter().map(|k| (k.clone(), Role::Carrier)));
    let ops = service::Ops::merchant(state.keys.clone(), state.store.clone())
        .with_peers(state.directory.clone(), peers.collect::<Vec<_>>());
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

#[utoipa::path(get, path = "/v1/catalog", responses((status = 200, description = "The catalog (public; assigns nothing)", body = CatalogView)))]
async fn catalog(State(st): State<Arc<MerchantState>>) -> Json<CatalogView> {
    let c = &st.config;
    Json(CatalogView {
        merchant: st.id().clone(),
        currency: c.currency.clone(),
        catalog: c.catalog.clone(),
        carrier: c.carrier.clone(),
        accepted_issuers: c.accepted_issuers.clone(),
        policy: c.policy.clone(),
    })
}

fn require_cardholder(peer: &PartyId) -> AppResult<()> {
    if peer.role() != Role::Cardholder {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "only cardholders order from a merchant",
        ));
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/order-forms", request_body = FormRequest, responses((status = 200, description = "A fresh order form", body = crate::openapi::OrderFormDoc)))]
async fn order_form(
    State(st): State<Arc<MerchantState>>,
    Peer(peer): Peer,
    JsonBody(req): JsonBody<FormRequest>,
) -> AppResult<Json<OrderForm>> {
    require_cardholder(&peer)?;
    let c = &st.config;
    let now = crate::now_unix();
    let form = OrderForm {
        order_id: random_id("ord_", 12)?,
        merchant: st.id().clone(),
        carrier: if req.digital { None } else { c.carrier.clone() },
        accepted_issuers: c.accepted_issuers.clone(),
        currency: c.currency.clone(),
        catalog: c.catalog.clone(),
        expires_at: now.saturating_add(c.form_ttl_secs),
        policy: c.policy.clone(),
    };
    form.validate()
        .map_err(|e| AppError::internal("building an order form", &e))?;
    st.store
        .put_order_form(&OrderFormRecord {
            order_id: form.order_id.clone(),
            form_json: serde_json::to_string(&form)
                .map_err(|e| AppError::internal("encoding an order form", &e))?,
            expires_at_ms: i64::try_from(form.expires_at.saturating_mul(1000)).unwrap_or(i64::MAX),
            created_at_ms: crate::now_ms(),
        })
        .await
        .map_err(store_error("storing an order form"))?;
    tracing::info!(order_id = %form.order_id, cardholder = %peer, "order form issued");
    Ok(Json(form))
}

/// Checks the merchant's opened part against its form: known products, catalog names and
/// prices, line amounts adding up to the total, the form's currency.
fn check_view(form: &OrderForm, view: &Disclosed) -> AppResult<(u64, String)> {
    let bad = |m: &str| AppError::new(ErrorCode::OrderInvalid, m);
    let (Some(amount), Some(currency)) = (view.amount, view.currency.clone()) else {
        return Err(bad("the merchant's part carries no amount"));
    };
    if currency != form.currency {
        return Err(AppError::new(
            ErrorCode::AmountMismatch,
            "the order's currency is not the form's",
        ));
    }
    let lines = view.lines.as_deref().unwrap_or_default();
    if lines.is_empty() {
        return Err(bad("the order has no lines"));
    }
    let mut total = 0u64;
    for line in lines {
        let (Some(number), Some(quantity), Some(line_amount)) =
            (line.product_number.as_deref(), line.quantity, line.amount)
        else {
            return Err(bad(
                "the merchant's part lacks a product number, quantity or amount",
            ));
        };
        let item = form
            .item(number)
            .ok_or_else(|| bad("a product is not in the catalog"))?;
        if line.product_name.as_deref().is_some_and(|n| n != item.name) {
            return Err(bad("a product name does not match the catalog"));
        }
        if quantity == 0 || item.unit_price.checked_mul(u64::from(quantity)) != Some(line_amount) {
            return Err(AppError::new(
                ErrorCode::AmountMismatch,
                "a line amount is not the catalog price times the quantity",
            ));
        }
        total = total
            .checked_add(line_amount)
            .ok_or_else(|| bad("the amount overflows"))?;
    }
    if total != amount || amount == 0 {
        return Err(AppError::new(
            ErrorCode::AmountMismatch,
            "the total is not the sum of the lines",
        ));
    }
    Ok((amount, currency))
}

#[utoipa::path(post, path = "/v1/orders", request_body = SubmitRequest, responses((status = 200, description = "The order's outcome (an issuer's decline is an answer, not an error)", body = OrderOutcome)))]
async fn submit(
    State(st): State<Arc<MerchantState>>,
    Peer(peer): Peer,
    JsonBody(req): JsonBody<SubmitRequest>,
) -> AppResult<Response> {
    require_cardholder(&peer)?;
    let sealed: SealedOrder = req.sealed;
    let header = sealed.header.clone();
    let order_id = header.order_id.clone();
    if header.cardholder != peer {
        tracing::warn!(%order_id, %peer, "bundle sealed by another cardholder than the session's");
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "the bundle names another cardholder than the one in this session",
        ));
    }
    if &header.merchant != st.id() {
        return Err(AppError::new(
            ErrorCode::NotAddressedHere,
            format!("this order is for {}, not {}", header.merchant, st.id()),
        ));
    }
    AppError::check_scheme(header.scheme, st.keys.scheme())?;
    let fp = fingerprint(&[&sealed.encode()]);
    // A submission already answered gets its first answer again; another bundle under the
    // same order id is a conflict.
    if let Some(first) = st
        .store
        .idempotency_get(SCOPE_SUBMIT, &order_id)
        .await
        .map_err(store_error("reading an earlier answer"))?
    {
        return first_answer(first, &fp, &order_id);
    }
    let form_rec = st
        .store
        .get_order_form(&order_id)
        .await
        .map_err(store_error("reading an order form"))?
        .ok_or_else(|| AppError::new(ErrorCode::UnknownOrder, "no order form with this id"))?;
    let form: OrderForm = serde_json::from_str(&form_rec.form_json)
        .map_err(|e| AppError::internal("reading a stored order form", &e))?;
    let existing = st
        .store
        .get_order(&order_id)
        .await
        .map_err(store_error("reading an order"))?;
    if existing.is_none() && crate::now_unix() >= form.expires_at {
        return Err(AppError::new(
            ErrorCode::FormExpired,
            "the order form has expired; fetch a new one",
        ));
    }
    if header.carrier != form.carrier
        || !form.accepted_issuers.contains(&header.issuer)
        || header.policy_digest != form.policy.digest()
    {
        return Err(AppError::new(
            ErrorCode::OrderInvalid,
            "the bundle's carrier, issuer or disclosure policy is not the order form's",
        ));
    }
    // Every peer must be listed before anything is written.
    st.peer(&header.issuer, Role::Issuer)?;
    if let Some(c) = &header.carrier {
        st.peer(c, Role::Carrier)?;
    }
    let view: View<ForMerchant> = sealed.open(&form.policy, st.keys.as_ref()).map_err(|_| {
        tracing::warn!(%order_id, cardholder = %peer, "merchant part does not open");
        AppError::sealed()
    })?;
    let (amount, currency) = check_view(&form, &view.fields)?;
    let pinned = st
        .store
        .idempotency_put(
            SCOPE_BUNDLE,
            &order_id,
            &StoredResponse {
                status: 0,
                body: Vec::new(),
                fingerprint: fp.clone(),
                created_at_ms: crate::now_ms(),
            },
        )
        .await
        .map_err(store_error("recording a submission"))?;
    if pinned.fingerprint != fp {
        tracing::warn!(%order_id, "a different bundle for an order already submitted");
        return Err(AppError::new(
            ErrorCode::OrderConflict,
            "another bundle was already submitted under this order id",
        ));
    }
    let forward = |role| {
        sealed
            .forward(role)
            .map_err(|e| AppError::internal("extracting a part", &e))
    };
    let authorize = AuthorizeRequest {
        forwarded: forward(Role::Issuer)?,
        policy: form.policy.clone(),
        amount,
        currency: currency.clone(),
    };
    let carrier_part = match &header.carrier {
        Some(_) => Some(forward(Role::Carrier)?.encode()),
        None => None,
    };
    let inserted = st
        .store
        .insert_order(
            &NewOrder {
                order_id: order_id.clone(),
                cardholder_id: peer.to_string(),
                issuer_id: header.issuer.to_string(),
                carrier_id: header.carrier.as_ref().map(|c| c.to_string()),
                merchant_view: serde_json::to_string(&view.fields)
                    .map_err(|e| AppError::internal("encoding the merchant's view", &e))?,
                amount,
                currency,
                carrier_part,
                now_ms: crate::now_ms(),
            },
            &[NewOutboxMessage::new(KIND_AUTHORIZE, to_json(&authorize)?)],
        )
        .await
        .map_err(store_error("recording an order"))?;
    tracing::info!(
        %order_id,
        cardholder = %peer,
        amount,
        resumed = !inserted.created,
        "order received"
    );
    let order = worker::drive(&st, &inserted.record.order_id).await?;
    let outcome = outcome_of(&st, &order).await?;
    let stored = st
        .store
        .idempotency_put(
            SCOPE_SUBMIT,
            &order_id,
            &StoredResponse {
                status: 200,
                body: to_json(&outcome)?,
                fingerprint: fp.clone(),
                created_at_ms: crate::now_ms(),
            },
        )
        .await
        .map_err(store_error("recording the answer"))?;
    first_answer(stored, &fp, &order_id)
}

fn first_answer(first: StoredResponse, fp: &[u8], order_id: &str) -> AppResult<Response> {
    if first.fingerprint != fp {
        tracing::warn!(%order_id, "a different bundle for an order already answered");
        return Err(AppError::new(
            ErrorCode::OrderConflict,
            "another bundle was already submitted under this order id",
        ));
    }
    Ok(json_bytes(
        StatusCode::from_u16(first.status).unwrap_or(StatusCode::OK),
        first.body,
    ))
}

async fn outcome_of(st: &MerchantState, order: &OrderRecord) -> AppResult<OrderOutcome> {
    let decision = st
        .store
        .idempotency_get(worker::SCOPE_DECISION, &order.order_id)
        .await
        .map_err(store_error("reading a decision"))?
        .map(|r| serde_json::from_slice::<Decision>(&r.body))
        .transpose()
        .map_err(|e| AppError::internal("reading a stored decision", &e))?
        .map(|mut d| {
            d.carrier_approval = None;
            d
        });
    let facts = st
        .store
        .order_facts(&order.order_id)
        .await
        .map_err(store_error("reading order facts"))?;
    let fact = |kind: &str| facts.iter().find(|f| f.kind == kind).map(|f| &f.body);
    Ok(OrderOutcome {
        order_id: order.order_id.clone(),
        state: order.state.as_str().to_owned(),
        decision,
        carrier: order
            .carrier_id
            .as_deref()
            .and_then(|c| PartyId::parse(c).ok()),
        tracking_number: order.tracking_number.clone(),
        payment: fact(worker::FACT_PAYMENT).and_then(|b| serde_json::from_slice(b).ok()),
        // Until the worker learns more, a shipment is as the carrier accepted it.
        delivery: fact(worker::FACT_DELIVERY)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .or_else(|| {
                order
                    .tracking_number
                    .as_ref()
                    .map(|_| "accepted".to_owned())
            }),
    })
}

async fn cardholders_order(
    st: &MerchantState,
    peer: &PartyId,
    order_id: &str,
) -> AppResult<OrderRecord> {
    st.store
        .get_order(order_id)
        .await
        .map_err(store_error("reading an order"))?
        .filter(|o| o.cardholder_id == peer.as_str())
        .ok_or_else(|| AppError::new(ErrorCode::UnknownOrder, "no such order for this caller"))
}

#[utoipa::path(get, path = "/v1/orders/{order_id}", responses((status = 200, description = "The cardholder's order as the merchant sees it", body = OrderOutcome)))]
async fn order_status(
    State(st): State<Arc<MerchantState>>,
    Peer(peer): Peer,
    Path(order_id): Path<String>,
) -> AppResult<Json<OrderOutcome>> {
    let order = cardholders_order(&st, &peer, &order_id).await?;
    outcome_of(&st, &order).await.map(Json)
}

/// Stores `outcome` as the first answer under `scope`/`key` and answers the stored one.
async fn answer_once(
    st: &MerchantState,
    scope: &str,
    key: &str,
    fp: &[u8],
    outcome: &OrderOutcome,
) -> AppResult<Response> {
    let stored = st
        .store
        .idempotency_put(
            scope,
            key,
            &StoredResponse {
                status: 200,
                body: to_json(outcome)?,
                fingerprint: fp.to_vec(),
                created_at_ms: crate::now_ms(),
            },
        )
        .await
        .map_err(store_error("recording the answer"))?;
    first_answer(stored, fp, key)
}

/// The first answer stored under `scope`/`key`, if any.
async fn earlier_answer(
    st: &MerchantState,
    scope: &str,
    key: &str,
    fp: &[u8],
) -> AppResult<Option<Response>> {
    match st
        .store
        .idempotency_get(scope, key)
        .await
        .map_err(store_error("reading an earlier answer"))?
    {
        Some(first) => first_answer(first, fp, key).map(Some),
        None => Ok(None),
    }
}

fn invalid(message: &str) -> AppError {
    AppError::new(ErrorCode::InvalidTransition, message)
}

/// Cancels an order: before shipping the authorization is voided (→ `voided`); after capture
/// (or delivery) the capture is refunded in full (→ `refunded`). While the authorization or
/// the capture is in flight (`received`, `shipped`) it answers `invalid_transition`: cancel
/// again a moment later. A cancelled order answers its current state again.
async fn cancel_order(st: &MerchantState, order: OrderRecord) -> AppResult<OrderRecord> {
    let order_id = order.order_id.clone();
    let pending: Vec<i64> = st
        .store
        .outbox_for_order(&order_id)
        .await
        .map_err(store_error("reading the outbox"))?
        .into_iter()
        .filter(|m| !m.done)
        .map(|m| m.id)
        .collect();
    let now = crate::now_ms();
    let mut t = match order.state {
        OrderState::Authorized | OrderState::ShippingRequested => {
            Transition::new(&order_id, order.state, OrderState::Cancelled, now)
                .clear_carrier_part()
                .send(worker::KIND_VOID, to_json(&VoidRequest {})?)
        }
        OrderState::Captured | OrderState::Delivered => {
            Transition::new(&order_id, order.state, OrderState::Cancelled, now)
                .send(worker::KIND_REFUND, worker::refund_message("cancel", 0)?)
        }
        OrderState::Cancelled | OrderState::Voided | OrderState::Refunded => {
            return worker::drive(st, &order_id).await;
        }
        OrderState::Received => {
            return Err(invalid(
                "the order is being authorized; cancel again in a moment",
            ));
        }
        OrderState::Shipped => {
            return Err(invalid(
                "the payment is being captured; cancel again in a moment (the order is then refunded)",
            ));
        }
        _ => return Err(invalid("this order can no longer be cancelled")),
    };
    for id in pending {
        t = t.complete(id);
    }
    let applied = st
        .store
        .transition(&t)
        .await
        .map_err(store_error("recording a cancellation"))?;
    if !applied {
        return Err(invalid(
            "the order changed while being cancelled; try again",
        ));
    }
    tracing::info!(%order_id, from = %order.state, "order cancelled");
    worker::drive(st, &order_id).await
}

#[utoipa::path(post, path = "/v1/orders/{order_id}/cancel", request_body = CancelRequest, responses((status = 200, description = "The cancelled order", body = OrderOutcome)))]
async fn cancel(
    State(st): State<Arc<MerchantState>>,
    Peer(peer): Peer,
    Path(order_id): Path<String>,
    JsonBody(_): JsonBody<CancelRequest>,
) -> AppResult<Response> {
    require_cardholder(&peer)?;
    let order = cardholders_order(&st, &peer, &order_id).await?;
    let fp = fingerprint(&[peer.as_str().as_bytes()]);
    if let Some(first) = earlier_answer(&st, SCOPE_CANCEL, &order_id, &fp).await? {
        return Ok(first);
    }
    let order = cancel_order(&st, order).await?;
    let outcome = outcome_of(&st, &order).await?;
    answer_once(&st, SCOPE_CANCEL, &order_id, &fp, &outcome).await
}

async fn read_any_order(st: &MerchantState, order_id: &str) -> AppResult<OrderRecord> {
    st.store
        .get_order(order_id)
        .await
        .map_err(store_error("reading an order"))?
        .ok_or_else(|| AppError::new(ErrorCode::UnknownOrder, "no such order"))
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
    if let Some(first) = earlier_answer(&st, SCOPE_CANCEL, &order_id, &fp).await? {
        return Ok(first);
    }
    let order = cancel_order(&st, order).await?;
    let outcome = outcome_of(&st, &order).await?;
    answer_once(&st, SCOPE_CANCEL, &order_id, &fp, &outcome).await
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
    if let Some(first) = earlier_answer(&st, SCOPE_REFUND, &key, &fp).await? {
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
    answer_once(&st, SCOPE_REFUND, &key, &fp, &outcome).await
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
        .post(
            &crate::issuer::order_path(crate::issuer::PATH_PROOF_OF_DELIVERY, &order_id),
            &proof,
        )
        .await
        .map_err(crate::service::peer_error)?;
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
