//! Authorization (【0040】–【0041】): the issuer opens the card part the merchant forwards,
//! authenticates the cardholder against its enrolled card, places a hold, and answers a
//! decision bound to the order, the amount and the currency, with its receipts for the
//! cardholder and the carrier.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::keysource::KeySource;
use warifu_core::sealed::{ForIssuer, Header, View};
use warifu_core::{PartyId, Role};
use warifu_store::{AuthorizationRecord, DeclineCode, Inserted};

use super::state::IssuerState;
use crate::attest;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::idempotency::Idempotent;
use crate::http::service::{fingerprint, random_id, store_error};
use crate::protocol::merchant_issuer::{
    AuthorizeRequest, Decision, DeclineReason, Outcome, PATH_AUTHORIZE,
};
use crate::session::server::{JsonBody, Peer};

/// The authorization route (merchants).
pub(super) fn routes() -> OpenApiRouter<Arc<IssuerState>> {
    OpenApiRouter::new().routes(routes!(authorize))
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
    let once = Idempotent {
        scope: &scope,
        key: &order_id,
        fp: &fp,
        conflict: "this order was already decided on a different request",
    };
    if let Some(first) = once.earlier(st.store.as_ref()).await? {
        return Ok(first);
    }
    let view: View<ForIssuer> = st
        .kem
        .open(&req.forwarded, &req.policy, st.keys.as_ref())
        .await
        .inspect_err(|e| {
            tracing::warn!(%order_id, merchant = %peer, code = e.code.as_str(), "issuer part does not open");
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
    // The carrier's approval is made with K(issuer, carrier): a revoked carrier is refused
    // before anything is held (the key is cached for the approval below).
    if let Some(carrier) = &header.carrier
        && let Err(warifu_core::Error::Revoked(id)) = st.keys.shared_secret(carrier)
    {
        return Err(AppError::revoked(&id));
    }
    let authorization_id = random_id("auth_", 12)?;
    let decide = Arc::new(Decide {
        keys: st.keys.clone(),
        issuer: st.id().clone(),
        header,
        amount,
        currency: currency.clone(),
    });
    // The decision is kept with the authorization, in its transaction.
    let answer = once.keep(st.clock().now_ms(), {
        let decide = decide.clone();
        move |i: &Inserted<AuthorizationRecord>| {
            decide
                .decision(&i.record)
                .ok()
                .and_then(|d| serde_json::to_vec(&d).ok())
        }
    });
    let (inserted, kept) = st
        .store
        .authorize_answered(
            &warifu_store::AuthorizeRequest {
                merchant_id: peer.to_string(),
                order_id: order_id.clone(),
                authorization_id,
                cardholder_id: decide.header.cardholder.to_string(),
                holder_name: name,
                card_number: card.number,
                expiry: card.expiry,
                amount,
                currency,
                payment_method: method,
                carrier_id: decide.header.carrier.as_ref().map(ToString::to_string),
                header_digest: decide.header.digest(),
                now_ms: st.clock().now_ms(),
            },
            &answer,
        )
        .await
        .map_err(store_error("authorizing"))?;
    let rec = inserted.record;
    let answered = match kept {
        Some(first) => once.replay(first),
        // No answer kept (the decision failed): answer its error, or store it now.
        None => {
            let decision = decide.decision(&rec)?;
            once.answer(st.store.as_ref(), &decision, st.clock().now_ms())
                .await
        }
    }?;
    match rec.decline_code {
        None => tracing::info!(%order_id, merchant = %peer, amount, "authorized"),
        Some(code) => {
            tracing::info!(%order_id, merchant = %peer, reason = %public_reason(code), "declined");
        }
    }
    Ok(answered)
}

/// What the issuer's decision on an authorization is made of besides the stored record.
struct Decide {
    keys: Arc<dyn KeySource>,
    issuer: PartyId,
    header: Header,
    amount: u64,
    currency: String,
}

impl Decide {
    /// The decision on `rec`, with the receipts for the cardholder and (approved, shipping)
    /// the carrier; an order conflict if `rec` was authorized for another amount.
    fn decision(&self, rec: &AuthorizationRecord) -> AppResult<Decision> {
        if rec.amount != self.amount || rec.currency != self.currency {
            return Err(AppError::new(
                ErrorCode::OrderConflict,
                "this order id was already authorized for another amount",
            ));
        }
        let header = &self.header;
        let approved = rec.approved();
        let mut decision = Decision {
            order_id: header.order_id.clone(),
            issuer: self.issuer.clone(),
            merchant: header.merchant.clone(),
            cardholder: header.cardholder.clone(),
            header_digest: header.digest(),
            outcome: if approved {
                Outcome::Approved
            } else {
                Outcome::Declined
            },
            reason: rec.decline_code.map(public_reason),
            amount: self.amount,
            currency: self.currency.clone(),
            authorization_id: approved.then(|| rec.authorization_id.clone()),
            cardholder_receipt: [0; 32],
            carrier_approval: None,
        };
        let attest_err = |e: attest::AttestError| match e {
            attest::AttestError::Key(warifu_core::Error::Revoked(id)) => AppError::revoked(&id),
            e => AppError::internal("attesting a decision", &e),
        };
        decision.cardholder_receipt =
            attest::cardholder_receipt(self.keys.as_ref(), &decision).map_err(attest_err)?;
        if approved && header.carrier.is_some() {
            decision.carrier_approval =
                Some(attest::carrier_approval(self.keys.as_ref(), header).map_err(attest_err)?);
        }
        Ok(decision)
    }
}
