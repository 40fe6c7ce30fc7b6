//! The merchant (【0028】–【0042】): hands out order forms, receives the sealed bundle, opens
//! only its own part, forwards the issuer's part, and on approval forwards the carrier's part
//! with its delivery request.
//!
//! Routes: the handshake, `GET /healthz`, `GET /v1/catalog` (public, assigns nothing), and in
//! a session with a cardholder `POST /v1/order-forms`, `POST /v1/orders` and
//! `GET /v1/orders/{order_id}`.
//!
//! An order is a persisted state machine (`warifu_store::OrderState`): it is recorded as
//! `received` with its authorization message in the outbox in one transaction, then moves to
//! `authorized` / `declined` (and `shipping_requested` → `shipped` with a carrier). Each step
//! is a compare-and-set, and the issuer and carrier are idempotent on the order id, so a
//! resubmitted bundle resumes an interrupted order and never charges or ships twice.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use warifu_core::keysource::KeySource;
use warifu_core::order::{CatalogItem, OrderForm};
use warifu_core::policy::Policy;
use warifu_core::sealed::{Disclosed, ForMerchant, ForwardedPart, SealedOrder, View};
use warifu_core::{PartyId, Role};
use warifu_store::{
    MerchantStore, NewOrder, NewOutboxMessage, OrderFormRecord, OrderRecord, OrderState,
    StoredResponse, Transition,
};

use crate::auth::{Guard, GuardLimits, JsonBody, Peer};
use crate::carrier::PATH_SHIPMENTS;
use crate::directory::{DirectoryError, SharedDirectory};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::issuer::PATH_AUTHORIZE;
use crate::peer::{ClientError, PeerClient, http_client};
use crate::service::{self, fingerprint, json_bytes, peer_error, random_id, store_error, to_json};
use crate::wire::{
    AuthorizeRequest, CatalogView, Decision, DeliveryRequest, FormRequest, OrderOutcome,
    ShipmentReceipt, ShipmentRequest, SubmitRequest,
};

/// Outbox kind of the authorization request.
pub const KIND_AUTHORIZE: &str = "authorize";
/// Outbox kind of the delivery request.
pub const KIND_SHIP: &str = "ship";
/// Idempotency scope holding the first answer to a submission.
const SCOPE_SUBMIT: &str = "submit";
/// Idempotency scope pinning the first bundle submitted under an order id.
const SCOPE_BUNDLE: &str = "submit-bundle";
/// Idempotency scope holding the issuer's decision of an order.
const SCOPE_DECISION: &str = "decision";

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

    /// The authenticated client for a peer listed in the directory in `role`.
    fn peer(&self, id: &PartyId, role: Role) -> AppResult<Arc<PeerClient>> {
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
    let authenticated = Router::new()
        .route("/v1/order-forms", post(order_form))
        .route("/v1/orders", post(submit))
        .route("/v1/orders/{order_id}", get(order_status))
        .with_state(state.clone());
    let public = Router::new()
        .route("/healthz", get(health))
        .merge(crate::pages::merchant::routes())
        .route("/v1/catalog", get(catalog))
        .with_state(state.clone());
    service::assemble(state.guard.clone(), public, authenticated)
}

/// Serves the merchant on `listener` until `shutdown`.
pub async fn run(
    listener: TcpListener,
    state: Arc<MerchantState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    service::serve(listener, app(state), shutdown).await
}

async fn health(State(st): State<Arc<MerchantState>>) -> AppResult<Json<serde_json::Value>> {
    service::health(&*st.store, st.id()).await
}

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
    let order = drive(&st, &form, inserted.record).await?;
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

/// Drives an order through its steps until it rests (declined, authorized without carrier,
/// shipped, failed), or a peer is down (the order stays where it is, to be resumed).
async fn drive(
    st: &MerchantState,
    form: &OrderForm,
    mut order: OrderRecord,
) -> AppResult<OrderRecord> {
    for _ in 0..8 {
        let applied = match order.state {
            OrderState::Received => step_authorize(st, form, &order).await?,
            OrderState::ShippingRequested => step_ship(st, &order).await?,
            _ => return Ok(order),
        };
        if !applied {
            tracing::debug!(order_id = %order.order_id, "another request moved the order first");
        }
        order = st
            .store
            .get_order(&order.order_id)
            .await
            .map_err(store_error("reading an order"))?
            .ok_or_else(|| AppError::internal("reading an order", &"it vanished"))?;
    }
    Ok(order)
}

async fn pending_message(
    st: &MerchantState,
    order_id: &str,
    kind: &str,
) -> AppResult<warifu_store::OutboxMessage> {
    st.store
        .outbox_for_order(order_id)
        .await
        .map_err(store_error("reading the outbox"))?
        .into_iter()
        .rev()
        .find(|m| m.kind == kind && !m.done)
        .ok_or_else(|| {
            AppError::internal("resuming an order", &format!("no pending {kind} message"))
        })
}

async fn step_authorize(
    st: &MerchantState,
    form: &OrderForm,
    order: &OrderRecord,
) -> AppResult<bool> {
    let order_id = order.order_id.as_str();
    let msg = pending_message(st, order_id, KIND_AUTHORIZE).await?;
    let req: AuthorizeRequest = serde_json::from_slice(&msg.payload)
        .map_err(|e| AppError::internal("reading an outbox message", &e))?;
    let header = &req.forwarded.header;
    let issuer = st.peer(&header.issuer, Role::Issuer)?;
    let decision: Decision = match issuer.post(PATH_AUTHORIZE, &req).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(%order_id, error = %e, "authorization failed");
            return Err(fail_on_refusal(st, order, msg.id, e, OrderState::Received).await);
        }
    };
    let consistent = decision.order_id == order_id
        && &decision.merchant == st.id()
        && decision.issuer == header.issuer
        && decision.cardholder == header.cardholder
        && decision.header_digest == header.digest()
        && decision.approved() == decision.reason.is_none();
    if !consistent {
        return Err(AppError::new(
            ErrorCode::PeerError,
            "the issuer's decision is not about this order",
        ));
    }
    let now = crate::now_ms();
    if decision.amount != order.amount || decision.currency != order.currency {
        tracing::error!(%order_id, "the issuer decided on another amount than the merchant's view");
        let t = Transition::new(order_id, OrderState::Received, OrderState::Failed, now)
            .decline_code(ErrorCode::AmountMismatch.as_str())
            .clear_carrier_part()
            .complete(msg.id);
        st.store
            .transition(&t)
            .await
            .map_err(store_error("recording a failure"))?;
        return Err(AppError::new(
            ErrorCode::AmountMismatch,
            "the issuer's decision is for another amount than this order's",
        ));
    }
    st.store
        .idempotency_put(
            SCOPE_DECISION,
            order_id,
            &StoredResponse {
                status: 200,
                body: to_json(&decision)?,
                fingerprint: Vec::new(),
                created_at_ms: now,
            },
        )
        .await
        .map_err(store_error("recording a decision"))?;
    let t = match (&decision.reason, &form.carrier) {
        (Some(reason), _) => {
            tracing::info!(%order_id, %reason, "declined by the issuer");
            Transition::new(order_id, OrderState::Received, OrderState::Declined, now)
                .decline_code(reason.as_str())
                .clear_carrier_part()
                .complete(msg.id)
        }
        (None, None) => {
            tracing::info!(%order_id, "authorized (no delivery)");
            Transition::new(order_id, OrderState::Received, OrderState::Authorized, now)
                .authorization_id(decision.authorization_id.clone().unwrap_or_default())
                .complete(msg.id)
        }
        (None, Some(_)) => {
            let part = order.carrier_part.as_deref().ok_or_else(|| {
                AppError::internal("requesting delivery", &"the carrier part is missing")
            })?;
            let forwarded = ForwardedPart::decode(part)
                .map_err(|e| AppError::internal("reading the stored carrier part", &e))?;
            let approval = decision.carrier_approval.ok_or_else(|| {
                AppError::new(
                    ErrorCode::PeerError,
                    "the issuer approved without an approval for the carrier",
                )
            })?;
            let ship = ShipmentRequest {
                forwarded,
                policy: req.policy.clone(),
                approval,
                delivery: DeliveryRequest {
                    parcel: st.config.parcel.clone(),
                    pickup: st.config.pickup.clone(),
                },
            };
            tracing::info!(%order_id, "authorized; requesting delivery");
            Transition::new(
                order_id,
                OrderState::Received,
                OrderState::ShippingRequested,
                now,
            )
            .authorization_id(decision.authorization_id.clone().unwrap_or_default())
            .send(KIND_SHIP, to_json(&ship)?)
            .complete(msg.id)
        }
    };
    st.store
        .transition(&t)
        .await
        .map_err(store_error("recording the decision"))
}

async fn step_ship(st: &MerchantState, order: &OrderRecord) -> AppResult<bool> {
    let order_id = order.order_id.as_str();
    let msg = pending_message(st, order_id, KIND_SHIP).await?;
    let req: ShipmentRequest = serde_json::from_slice(&msg.payload)
        .map_err(|e| AppError::internal("reading an outbox message", &e))?;
    let carrier_id =
        req.forwarded.header.carrier.clone().ok_or_else(|| {
            AppError::internal("requesting delivery", &"the order has no carrier")
        })?;
    let carrier = st.peer(&carrier_id, Role::Carrier)?;
    let receipt: ShipmentReceipt = match carrier.post(PATH_SHIPMENTS, &req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(%order_id, error = %e, "delivery request failed");
            return Err(fail_on_refusal(st, order, msg.id, e, OrderState::ShippingRequested).await);
        }
    };
    if receipt.order_id != order_id {
        return Err(AppError::new(
            ErrorCode::PeerError,
            "the carrier's receipt is not about this order",
        ));
    }
    tracing::info!(%order_id, tracking = %receipt.tracking_number, "shipped");
    let t = Transition::new(
        order_id,
        OrderState::ShippingRequested,
        OrderState::Shipped,
        crate::now_ms(),
    )
    .tracking_number(receipt.tracking_number)
    .clear_carrier_part()
    .complete(msg.id);
    st.store
        .transition(&t)
        .await
        .map_err(store_error("recording the shipment"))
}

/// A peer's authenticated refusal is final for the order (it moves to `failed` with the
/// peer's code); an outage or an unauthenticated answer leaves it to be resumed.
async fn fail_on_refusal(
    st: &MerchantState,
    order: &OrderRecord,
    msg_id: i64,
    e: ClientError,
    from: OrderState,
) -> AppError {
    if let ClientError::Refused {
        code,
        verified: true,
        ..
    } = &e
    {
        let t = Transition::new(&order.order_id, from, OrderState::Failed, crate::now_ms())
            .decline_code(code.clone())
            .clear_carrier_part()
            .complete(msg_id);
        if let Err(err) = st.store.transition(&t).await {
            return AppError::internal("recording a failure", &err);
        }
    }
    peer_error(e)
}

async fn outcome_of(st: &MerchantState, order: &OrderRecord) -> AppResult<OrderOutcome> {
    let decision = st
        .store
        .idempotency_get(SCOPE_DECISION, &order.order_id)
        .await
        .map_err(store_error("reading a decision"))?
        .map(|r| serde_json::from_slice::<Decision>(&r.body))
        .transpose()
        .map_err(|e| AppError::internal("reading a stored decision", &e))?
        .map(|mut d| {
            d.carrier_approval = None;
            d
        });
    Ok(OrderOutcome {
        order_id: order.order_id.clone(),
        state: order.state.as_str().to_owned(),
        decision,
        carrier: order
            .carrier_id
            .as_deref()
            .and_then(|c| PartyId::parse(c).ok()),
        tracking_number: order.tracking_number.clone(),
    })
}

async fn order_status(
    State(st): State<Arc<MerchantState>>,
    Peer(peer): Peer,
    Path(order_id): Path<String>,
) -> AppResult<Json<OrderOutcome>> {
    let order = st
        .store
        .get_order(&order_id)
        .await
        .map_err(store_error("reading an order"))?
        .filter(|o| o.cardholder_id == peer.as_str())
        .ok_or_else(|| AppError::new(ErrorCode::UnknownOrder, "no such order for this caller"))?;
    outcome_of(&st, &order).await.map(Json)
}
