//! Taking an order: the public catalog, a fresh order form in the cardholder's session, and
//! the sealed bundle, submitted once (the merchant opens its own part, checks it against the
//! form and records the order with its authorization message in one transaction).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::Role;
use warifu_core::keysource::KeySource as _;
use warifu_core::order::OrderForm;
use warifu_core::sealed::{Disclosed, ForMerchant, SealedOrder, View};
use warifu_store::{NewOrder, NewOutboxMessage, OrderFormRecord, Pin, StoreError};

use super::lifecycle::outcome_of;
use super::machine::Kind;
use super::state::{BUNDLE_CONFLICT, MerchantState, require_cardholder};
use super::worker;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::idempotency::Idempotent;
use crate::http::service::{fingerprint, random_id, store_error, to_json};
use crate::protocol::cardholder_merchant::{CatalogView, FormRequest, OrderOutcome, SubmitRequest};
use crate::protocol::merchant_issuer::AuthorizeRequest;
use crate::session::server::{JsonBody, Peer};

/// Idempotency scope holding the first answer to a submission.
const SCOPE_SUBMIT: &str = "submit";

/// Idempotency scope pinning the first bundle submitted under an order id.
const SCOPE_BUNDLE: &str = "submit-bundle";

/// The catalog (public).
pub(super) fn public_routes() -> OpenApiRouter<Arc<MerchantState>> {
    OpenApiRouter::new().routes(routes!(catalog))
}

/// Order forms and the submission (in a cardholder's session).
pub(super) fn session_routes() -> OpenApiRouter<Arc<MerchantState>> {
    OpenApiRouter::new()
        .routes(routes!(order_form))
        .routes(routes!(submit))
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

#[utoipa::path(post, path = "/v1/order-forms", request_body = FormRequest, responses((status = 200, description = "A fresh order form", body = crate::protocol::schema::OrderFormDoc)))]
async fn order_form(
    State(st): State<Arc<MerchantState>>,
    Peer(peer): Peer,
    JsonBody(req): JsonBody<FormRequest>,
) -> AppResult<Json<OrderForm>> {
    require_cardholder(&peer)?;
    let c = &st.config;
    let now = st.clock().now_unix();
    let form = OrderForm {
        order_id: random_id("ord_", 12)?.into(),
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
            created_at_ms: st.clock().now_ms(),
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
        if item.ships && form.carrier.is_none() {
            return Err(AppError::new(
                ErrorCode::DeliveryRequired,
                format!("{number} is delivered by a carrier: order it on a form with delivery"),
            ));
        }
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
    let once = Idempotent {
        scope: SCOPE_SUBMIT,
        key: &order_id,
        fp: &fp,
        conflict: BUNDLE_CONFLICT,
    };
    if let Some(first) = once.earlier(st.store.as_ref()).await? {
        return Ok(first);
    }
    let form_rec = st
        .store
        .get_order_form(&order_id)
        .await
        .map_err(store_error("reading an order form"))?
        .ok_or_else(|| AppError::new(ErrorCode::UnknownOrder, "no order form with this id"))?;
    let form: OrderForm = serde_json::from_str(&form_rec.form_json)
        .map_err(|e| AppError::internal("reading a stored order form", &e))?;
    // An expired form still answers a resubmission of the order it became.
    if st.clock().now_unix() >= form.expires_at
        && st
            .store
            .get_order(&order_id)
            .await
            .map_err(store_error("reading an order"))?
            .is_none()
    {
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
    // Every peer must be listed, and not revoked, before anything is written (the keys are
    // the ones forwarding needs, so they stay in the cache).
    st.peer(&header.issuer, Role::Issuer)?;
    if let Some(c) = &header.carrier {
        st.peer(c, Role::Carrier)?;
    }
    for party in std::iter::once(&header.issuer).chain(header.carrier.as_ref()) {
        if let Err(warifu_core::Error::Revoked(id)) = st.keys.shared_secret(party) {
            tracing::warn!(%order_id, cardholder = %peer, "order naming a revoked party refused");
            return Err(AppError::revoked(&id));
        }
    }
    let own = sealed
        .forward(Role::Merchant)
        .map_err(|e| AppError::unopened(&e))?;
    let view: View<ForMerchant> = st
        .kem
        .open(&own, &form.policy, st.keys.as_ref())
        .await
        .inspect_err(|e| {
            tracing::warn!(%order_id, cardholder = %peer, code = e.code.as_str(), "merchant part does not open");
        })?;
    let (amount, currency) = check_view(&form, &view.fields)?;
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
    let now_ms = st.clock().now_ms();
    // The bundle's pin, the order and its authorization message in one transaction (this
    // request runs the message at once, holding it from the worker).
    let pin = Pin {
        scope: SCOPE_BUNDLE.to_owned(),
        key: order_id.to_string(),
        fingerprint: fp.clone(),
    };
    let new_order = NewOrder {
        order_id: order_id.clone(),
        cardholder_id: peer.to_string(),
        issuer_id: header.issuer.to_string(),
        carrier_id: header.carrier.as_ref().map(|c| c.to_string()),
        merchant_view: serde_json::to_string(&view.fields)
            .map_err(|e| AppError::internal("encoding the merchant's view", &e))?,
        amount,
        currency,
        carrier_part,
        now_ms,
    };
    let message = NewOutboxMessage::new(Kind::Authorize.as_str(), to_json(&authorize)?);
    let inserted = match st
        .store
        .insert_order_pinned(&pin, &new_order, &[message])
        .await
    {
        Ok(i) => i,
        Err(StoreError::Conflict(_)) => {
            tracing::warn!(%order_id, "a different bundle for an order already submitted");
            return Err(AppError::new(ErrorCode::OrderConflict, BUNDLE_CONFLICT));
        }
        Err(e) => return Err(store_error("recording an order")(e)),
    };
    tracing::info!(
        %order_id,
        cardholder = %peer,
        amount,
        resumed = !inserted.created,
        "order received"
    );
    let order = if inserted.created {
        worker::drive_from(&st, inserted.record).await?
    } else {
        worker::drive(&st, &order_id).await?
    };
    let outcome = outcome_of(&st, &order).await?;
    once.answer(st.store.as_ref(), &outcome, st.clock().now_ms())
        .await
}
