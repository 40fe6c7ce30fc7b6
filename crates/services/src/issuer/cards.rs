//! The issuer operator's card administration over HTTP (operator token): enroll, block and
//! unblock, change the limit, list cards (last four digits only), a cardholder's statement and
//! a merchant's settlement. `warifu issuer` runs the same functions on the database directly
//! or calls these routes with `--url`, so both follow one set of rules.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::order::Expiry;
use warifu_core::secret::Secret;
use warifu_core::{PartyId, Role};
use warifu_store::{CardRecord, CardStatus, IssuerStore, NewCard, StoreError};

use super::state::IssuerState;
use super::statement::statement_for;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::service::store_error;
use crate::protocol::cardholder_issuer::Statement;
use crate::protocol::operator::{
    AdminCard, AdminCardList, CardLimit, EnrollCard, PATH_ADMIN_CARD, PATH_ADMIN_CARDS,
    PATH_ADMIN_SETTLEMENT, PATH_ADMIN_STATEMENT, PATH_CARD_BLOCK, PATH_CARD_LIMIT,
    PATH_CARD_UNBLOCK, Settlement, SettlementDayView,
};
use crate::session::operator::Operator;
use crate::session::server::JsonBody;

/// The operator's card routes.
pub(super) fn routes() -> OpenApiRouter<Arc<IssuerState>> {
    OpenApiRouter::new()
        .routes(routes!(list, enroll_route))
        .routes(routes!(card))
        .routes(routes!(block))
        .routes(routes!(unblock))
        .routes(routes!(limit))
        .routes(routes!(statement))
        .routes(routes!(settlement))
}

fn malformed(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::MalformedRequest, message)
}

/// A party identifier of `role`, or `malformed_request` naming `what`.
pub fn party_of(role: Role, what: &str, s: &str) -> AppResult<PartyId> {
    let id = PartyId::parse(s).map_err(|e| malformed(format!("{what}: {e}")))?;
    if id.role() != role {
        return Err(malformed(format!("{id} is not a {role} identifier")));
    }
    Ok(id)
}

/// `YYYY-MM` with a month 01–12.
pub fn parse_expiry(s: &str) -> AppResult<Expiry> {
    let bad = || malformed("the expiry is YYYY-MM with a month 01–12");
    let (y, m) = s.split_once('-').ok_or_else(bad)?;
    let e = Expiry {
        year: y.parse().map_err(|_| bad())?,
        month: m.parse().map_err(|_| bad())?,
    };
    if !(1..=12).contains(&e.month) || y.len() != 4 {
        return Err(bad());
    }
    Ok(e)
}

/// The card to store for an enrollment request, checked as `warifu issuer enroll` checks it:
/// a cardholder identifier, an expiry `YYYY-MM`, a card number of 12–19 digits passing the
/// Luhn check (spaces and dashes ignored), a name, a card id, a currency of three letters.
pub fn new_card(req: &EnrollCard, now_ms: i64) -> AppResult<NewCard> {
    let cardholder = party_of(Role::Cardholder, "cardholder", &req.cardholder)?;
    let expiry = parse_expiry(&req.expiry)?;
    let number = Secret::new(req.number.replace([' ', '-'], ""));
    warifu_core::order::check_card_number(&number)
        .map_err(|_| malformed("the card number is not 12–19 digits passing the Luhn check"))?;
    if req.name.trim().is_empty() || req.card_id.trim().is_empty() {
        return Err(malformed("a card needs a card id and a name"));
    }
    if req.currency.len() != 3 || !req.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(malformed(
            "the currency is three capital letters (ISO 4217)",
        ));
    }
    Ok(NewCard {
        card_id: req.card_id.clone(),
        cardholder_id: cardholder.to_string(),
        holder_name: req.name.clone(),
        number,
        expiry,
        credit_limit: req.credit_limit,
        currency: req.currency.clone(),
        now_ms,
    })
}

/// A card as answered: the last four digits only.
pub fn admin_card(c: &CardRecord) -> AdminCard {
    AdminCard {
        card_id: c.card_id.clone(),
        cardholder: c.cardholder_id.clone(),
        name: c.holder_name.clone(),
        last4: warifu_core::card::last4(c.number.expose()).to_owned(),
        expiry: format!("{:04}-{:02}", c.expiry.year, c.expiry.month),
        status: c.status.as_str().to_owned(),
        credit_limit: c.credit_limit,
        available: c.available,
        currency: c.currency.clone(),
        created_at_ms: c.created_at_ms,
    }
}

fn store_err(context: &'static str) -> impl Fn(StoreError) -> AppError {
    move |e| match e {
        StoreError::Conflict(_) => {
            AppError::new(ErrorCode::AlreadyExists, "a card with this id exists")
        }
        StoreError::Invalid(m) => malformed(m),
        e => store_error(context)(e),
    }
}

/// Enrolls a card at `now_ms` (the checks of [`new_card`]); `already_exists` if the card id
/// is taken.
pub async fn enroll(
    store: &dyn IssuerStore,
    req: &EnrollCard,
    now_ms: i64,
) -> AppResult<AdminCard> {
    let card = new_card(req, now_ms)?;
    let rec = store
        .enroll_card(&card)
        .await
        .map_err(store_err("enrolling a card"))?;
    tracing::info!(card_id = %rec.card_id, cardholder = %rec.cardholder_id, "card enrolled");
    Ok(admin_card(&rec))
}

async fn get(store: &dyn IssuerStore, card_id: &str) -> AppResult<CardRecord> {
    store
        .get_card(card_id)
        .await
        .map_err(store_error("reading a card"))?
        .ok_or_else(|| AppError::new(ErrorCode::UnknownCard, "no card with this id"))
}

/// Blocks (`true`) or unblocks a card. Blocking is allowed in any status and repeats; an
/// expired card cannot be unblocked (`invalid_transition`).
pub async fn set_blocked(
    store: &dyn IssuerStore,
    card_id: &str,
    blocked: bool,
) -> AppResult<AdminCard> {
    let card = get(store, card_id).await?;
    let to = match (blocked, card.status) {
        (true, _) => CardStatus::Blocked,
        (false, CardStatus::Active | CardStatus::Blocked) => CardStatus::Active,
        (false, _) => {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "only a blocked card can be unblocked",
            ));
        }
    };
    if to != card.status {
        store
            .set_card_status(card_id, to)
            .await
            .map_err(store_error("setting a card's status"))?;
        tracing::info!(%card_id, status = %to, "card status changed");
    }
    Ok(admin_card(&get(store, card_id).await?))
}

/// Sets a card's credit limit at `now_ms`; `invalid_transition` if it is below what the
/// card uses.
pub async fn set_limit(
    store: &dyn IssuerStore,
    card_id: &str,
    credit_limit: u64,
    now_ms: i64,
) -> AppResult<AdminCard> {
    match store.set_card_limit(card_id, credit_limit, now_ms).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(AppError::new(
                ErrorCode::UnknownCard,
                "no card with this id",
            ));
        }
        Err(StoreError::Conflict(m)) => {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                format!("the new limit is below what the card uses: {m}"),
            ));
        }
        Err(e) => return Err(store_error("changing a card's limit")(e)),
    }
    tracing::info!(%card_id, credit_limit, "card limit changed");
    Ok(admin_card(&get(store, card_id).await?))
}

/// Cards by card id (one cardholder's, if given).
pub async fn cards(
    store: &dyn IssuerStore,
    cardholder: Option<&str>,
    limit: u32,
    offset: u32,
) -> AppResult<AdminCardList> {
    let list = match cardholder {
        Some(c) => {
            let id = party_of(Role::Cardholder, "cardholder", c)?;
            store.cards_for_cardholder(id.as_str()).await
        }
        None => store.list_cards(limit.min(1000), offset).await,
    }
    .map_err(store_error("listing cards"))?;
    Ok(AdminCardList {
        cards: list.iter().map(admin_card).collect(),
    })
}

/// A merchant's settlement: captured and refunded by UTC day, and the totals.
pub async fn settlement_for(store: &dyn IssuerStore, merchant: &str) -> AppResult<Settlement> {
    let merchant = party_of(Role::Merchant, "merchant", merchant)?;
    let days = store
        .settlement_report(merchant.as_str())
        .await
        .map_err(store_error("reading a settlement"))?;
    let net = |c: u64, r: u64| i64::try_from(i128::from(c) - i128::from(r)).unwrap_or(i64::MIN);
    let (captured, refunded) = days.iter().fold((0u64, 0u64), |(c, r), d| {
        (c.saturating_add(d.captured), r.saturating_add(d.refunded))
    });
    Ok(Settlement {
        merchant: merchant.to_string(),
        days: days
            .iter()
            .map(|d| SettlementDayView {
                date: crate::http::dashboard::date(d.day),
                captured: d.captured,
                refunded: d.refunded,
                net: net(d.captured, d.refunded),
            })
            .collect(),
        captured,
        refunded,
        net: net(captured, refunded),
    })
}

/// A cardholder's statement (as `GET /v1/statement` answers it).
pub async fn statement_of(store: &dyn IssuerStore, cardholder: &str) -> AppResult<Statement> {
    let id = party_of(Role::Cardholder, "cardholder", cardholder)?;
    statement_for(store, &id)
        .await
        .map_err(store_error("reading a statement"))
}

/// `?cardholder=&limit=&offset=` of the card list.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CardQuery {
    cardholder: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

#[utoipa::path(get, path = PATH_ADMIN_CARDS, params(
        ("cardholder" = Option<String>, Query, description = "Only this cardholder's cards"),
        ("limit" = Option<u32>, Query, description = "At most this many (default 100)"),
        ("offset" = Option<u32>, Query, description = "Skip this many")
    ), responses((status = 200, description = "Cards by id (last four digits only)", body = AdminCardList)))]
async fn list(
    State(st): State<Arc<IssuerState>>,
    _: Operator,
    Query(q): Query<CardQuery>,
) -> AppResult<Json<AdminCardList>> {
    let l = cards(
        st.store().as_ref(),
        q.cardholder.as_deref(),
        q.limit.unwrap_or(100),
        q.offset.unwrap_or(0),
    )
    .await?;
    Ok(Json(l))
}

/// Enrolls a card, with the rules of `warifu issuer enroll`; the answer shows the last four
/// digits only.
#[utoipa::path(post, path = PATH_ADMIN_CARDS, request_body = EnrollCard, responses((status = 200, description = "The enrolled card (last four digits only)", body = AdminCard)))]
async fn enroll_route(
    State(st): State<Arc<IssuerState>>,
    _: Operator,
    JsonBody(req): JsonBody<EnrollCard>,
) -> AppResult<Json<AdminCard>> {
    enroll(st.store().as_ref(), &req, st.clock().now_ms())
        .await
        .map(Json)
}

#[utoipa::path(get, path = PATH_ADMIN_CARD, responses((status = 200, description = "The card (last four digits only)", body = AdminCard)))]
async fn card(
    State(st): State<Arc<IssuerState>>,
    _: Operator,
    Path(card_id): Path<String>,
) -> AppResult<Json<AdminCard>> {
    Ok(Json(admin_card(&get(st.store().as_ref(), &card_id).await?)))
}

/// Blocks a card: every new authorization on it is declined `blocked`; holds stay.
#[utoipa::path(post, path = PATH_CARD_BLOCK, responses((status = 200, description = "The blocked card", body = AdminCard)))]
async fn block(
    State(st): State<Arc<IssuerState>>,
    _: Operator,
    Path(card_id): Path<String>,
) -> AppResult<Json<AdminCard>> {
    set_blocked(st.store().as_ref(), &card_id, true)
        .await
        .map(Json)
}

#[utoipa::path(post, path = PATH_CARD_UNBLOCK, responses((status = 200, description = "The active card", body = AdminCard)))]
async fn unblock(
    State(st): State<Arc<IssuerState>>,
    _: Operator,
    Path(card_id): Path<String>,
) -> AppResult<Json<AdminCard>> {
    set_blocked(st.store().as_ref(), &card_id, false)
        .await
        .map(Json)
}

/// Changes the credit limit; the available credit moves by the difference (booked in the
/// ledger). A limit below what the card already uses is `invalid_transition`.
#[utoipa::path(post, path = PATH_CARD_LIMIT, request_body = CardLimit, responses((status = 200, description = "The card with its new limit", body = AdminCard)))]
async fn limit(
    State(st): State<Arc<IssuerState>>,
    _: Operator,
    Path(card_id): Path<String>,
    JsonBody(req): JsonBody<CardLimit>,
) -> AppResult<Json<AdminCard>> {
    set_limit(
        st.store().as_ref(),
        &card_id,
        req.credit_limit,
        st.clock().now_ms(),
    )
    .await
    .map(Json)
}

#[utoipa::path(get, path = PATH_ADMIN_STATEMENT, responses((status = 200, description = "The cardholder's statement (cards by last four digits; orders with captured and refunded amounts)", body = Statement)))]
async fn statement(
    State(st): State<Arc<IssuerState>>,
    _: Operator,
    Path(cardholder): Path<String>,
) -> AppResult<Json<Statement>> {
    statement_of(st.store().as_ref(), &cardholder)
        .await
        .map(Json)
}

#[utoipa::path(get, path = PATH_ADMIN_SETTLEMENT, responses((status = 200, description = "The merchant's captures and refunds by UTC day", body = Settlement)))]
async fn settlement(
    State(st): State<Arc<IssuerState>>,
    _: Operator,
    Path(merchant): Path<String>,
) -> AppResult<Json<Settlement>> {
    settlement_for(st.store().as_ref(), &merchant)
        .await
        .map(Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> EnrollCard {
        EnrollCard {
            card_id: "c1".into(),
            cardholder: "cardholder:hanako@mail.example".into(),
            name: "Hanako Yamada".into(),
            number: "4111 1111 1111 1111".into(),
            expiry: "2035-07".into(),
            credit_limit: 100_000,
            currency: "JPY".into(),
        }
    }

    #[test]
    fn enrollment_rules() {
        let c = new_card(&req(), 1).expect("valid");
        assert_eq!(c.number.expose(), "4111111111111111");
        for bad in [
            EnrollCard {
                cardholder: "merchant:shop.example".into(),
                ..req()
            },
            EnrollCard {
                expiry: "2035-13".into(),
                ..req()
            },
            EnrollCard {
                expiry: "July".into(),
                ..req()
            },
            EnrollCard {
                number: "4111111111111112".into(),
                ..req()
            },
            EnrollCard {
                name: " ".into(),
                ..req()
            },
        ] {
            let e = new_card(&bad, 1).expect_err("refused");
            assert_eq!(e.code, ErrorCode::MalformedRequest);
            assert!(!e.message.contains("4111"), "{}", e.message);
        }
        assert!(!format!("{:?}", req()).contains("4111"));
    }
}
