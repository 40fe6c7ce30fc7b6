//! The issuer's SQL: cards, authorizations and their capture, void and refund, the ledger.

use warifu_core::OrderId;
use warifu_core::order::{Expiry, PaymentMethod};
use warifu_core::secret::Secret;

use std::sync::Arc;

use super::common::*;
use super::datakeys::with_keys;
use crate::atrest::{CARD_NUMBER, Keyring, Sealed};
use crate::error::{Result, StoreError};
use crate::rules::{self, PriorRefund, Step};
use crate::sql::{check_id, to_i64, to_u64};
use crate::types::*;

const CARD_COLS: &str = "card_id, cardholder_id, holder_name, number, number_enc, key_id, \
     expiry_year, expiry_month, status, credit_limit, available, currency, created_at_ms";

/// A card row; its number decrypted with `ring` (a row from before schema version 5 that is
/// not encrypted yet keeps it in `number`).
fn card_row(ring: &Keyring, r: &DbRow) -> Result<CardRecord> {
    let status: String = get(r, "status")?;
    let year: i64 = get(r, "expiry_year")?;
    let month: i64 = get(r, "expiry_month")?;
    let card_id: String = get(r, "card_id")?;
    let number = match get::<Option<i64>>(r, "key_id")? {
        None => get::<String>(r, "number")?,
        Some(key_id) => {
            let blob: Vec<u8> = get(r, "number_enc")?;
            let plain = ring.open(CARD_NUMBER, &card_id, key_id, &blob)?;
            String::from_utf8(plain.to_vec()).map_err(|_| StoreError::Corrupt(CARD_NUMBER))?
        }
    };
    Ok(CardRecord {
        card_id,
        cardholder_id: get(r, "cardholder_id")?,
        holder_name: get(r, "holder_name")?,
        number: Secret::new(number),
        expiry: Expiry {
            year: u16::try_from(year).map_err(|_| StoreError::Corrupt("expiry_year"))?,
            month: u8::try_from(month).map_err(|_| StoreError::Corrupt("expiry_month"))?,
        },
        status: CardStatus::decode(&status)?,
        credit_limit: to_u64(get(r, "credit_limit")?, "credit_limit")?,
        available: to_u64(get(r, "available")?, "available")?,
        currency: get(r, "currency")?,
        created_at_ms: get(r, "created_at_ms")?,
    })
}

/// Books one movement: `entries` must sum to zero (checked); zero amounts are skipped.
async fn book(
    c: &mut Conn,
    movement_id: &str,
    kind: &str,
    entries: &[(&str, i64)],
    now_ms: i64,
    op: &'static str,
) -> Result<()> {
    let sum = entries
        .iter()
        .try_fold(0i64, |acc, (_, a)| acc.checked_add(*a))
        .ok_or(StoreError::OutOfRange("ledger movement"))?;
    if sum != 0 {
        return Err(StoreError::Invalid(format!(
            "ledger movement {kind} does not balance"
        )));
    }
    let rows: Vec<&(&str, i64)> = entries.iter().filter(|(_, a)| *a != 0).collect();
    if rows.is_empty() {
        return Ok(());
    }
    // One statement for the whole movement.
    let values = (0..rows.len())
        .map(|i| format!("($1, $2, ${}, ${}, $3)", 4 + 2 * i, 5 + 2 * i))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO issuer_ledger (movement_id, kind, account, amount, created_at_ms) VALUES {values}"
    );
    let mut q = query(&sql).bind(movement_id).bind(kind).bind(now_ms);
    for (account, amount) in rows {
        q = q.bind(*account).bind(*amount);
    }
    exec(&mut *c, op, q).await?;
    Ok(())
}

fn available_account(card_id: &str) -> String {
    format!("card:{card_id}:available")
}
fn held_account(card_id: &str) -> String {
    format!("card:{card_id}:held")
}
fn merchant_account(merchant_id: &str) -> String {
    format!("merchant:{merchant_id}")
}
const CREDIT_ACCOUNT: &str = "issuer:credit";

async fn enroll_card_in(
    conn: &mut Conn,
    card: &NewCard,
    number: &Sealed,
    number_mac: &[u8],
) -> Result<CardRecord> {
    const OP: &str = "enroll_card";
    check_id("card id", &card.card_id)?;
    check_id("cardholder id", &card.cardholder_id)?;
    if !(1..=12).contains(&card.expiry.month) {
        return Err(StoreError::Invalid("expiry month must be 1–12".into()));
    }
    if card.number.is_blank() {
        return Err(StoreError::Invalid("the card number is empty".into()));
    }
    let limit = to_i64(card.credit_limit, "credit limit")?;
    let q = query(
        "INSERT INTO issuer_cards (card_id, cardholder_id, holder_name, number, expiry_year, \
         expiry_month, status, credit_limit, available, currency, created_at_ms, number_enc, \
         key_id, number_mac) \
         VALUES ($1, $2, $3, '', $4, $5, $6, $7, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&card.card_id)
    .bind(&card.cardholder_id)
    .bind(&card.holder_name)
    .bind(i64::from(card.expiry.year))
    .bind(i64::from(card.expiry.month))
    .bind(CardStatus::Active.as_str())
    .bind(limit)
    .bind(&card.currency)
    .bind(card.now_ms)
    .bind(&number.blob)
    .bind(number.key_id)
    .bind(number_mac);
    insert_new(&mut *conn, OP, q, "a card").await?;
    let avail = available_account(&card.card_id);
    book(
        conn,
        &format!("{}:limit", card.card_id),
        "limit",
        &[(&avail, limit), (CREDIT_ACCOUNT, -limit)],
        card.now_ms,
        OP,
    )
    .await?;
    Ok(CardRecord {
        card_id: card.card_id.clone(),
        cardholder_id: card.cardholder_id.clone(),
        holder_name: card.holder_name.clone(),
        number: card.number.clone(),
        expiry: card.expiry,
        status: CardStatus::Active,
        credit_limit: card.credit_limit,
        available: card.credit_limit,
        currency: card.currency.clone(),
        created_at_ms: card.now_ms,
    })
}

write_op!(enroll_card_tx = enroll_card_in(card: &NewCard => card.clone(),
    number: &Sealed => number.clone(), number_mac: &[u8] => number_mac.to_vec()) -> CardRecord);

/// Enrolls a card, its number encrypted under the active data key.
pub(crate) async fn enroll_card(p: &P, card: &NewCard) -> Result<CardRecord> {
    with_keys(p, |ring| async move {
        let number = card.number.expose();
        let sealed = ring.seal(CARD_NUMBER, &card.card_id, number.as_bytes())?;
        enroll_card_tx(p, card, &sealed, &ring.number_mac(number)).await
    })
    .await
}

pub(crate) async fn get_card(p: &P, card_id: &str) -> Result<Option<CardRecord>> {
    let sql = format!("SELECT {CARD_COLS} FROM issuer_cards WHERE card_id = $1");
    with_keys(p, |ring| {
        let q = query(&sql).bind(card_id);
        async move { optional(&p.reader, "get_card", q, |r| card_row(&ring, r)).await }
    })
    .await
}

pub(crate) async fn cards_for_cardholder(p: &P, cardholder_id: &str) -> Result<Vec<CardRecord>> {
    let sql =
        format!("SELECT {CARD_COLS} FROM issuer_cards WHERE cardholder_id = $1 ORDER BY card_id");
    with_keys(p, |ring| {
        let q = query(&sql).bind(cardholder_id);
        async move { all(&p.reader, "cards_for_cardholder", q, |r| card_row(&ring, r)).await }
    })
    .await
}

pub(crate) async fn list_cards(p: &P, limit: u32, offset: u32) -> Result<Vec<CardRecord>> {
    let sql = format!("SELECT {CARD_COLS} FROM issuer_cards ORDER BY card_id LIMIT $1 OFFSET $2");
    with_keys(p, |ring| {
        let q = query(&sql)
            .bind(i64::from(limit))
            .bind(i64::from(offset));
        async move { all(&p.reader, "list_cards", q, |r| card_row(&ring, r)).await }
    })
    .await
}

async fn set_card_status_in(c: &mut Conn, card_id: &str, status: CardStatus) -> Result<bool> {
    let q = query("UPDATE issuer_cards SET status = $2 WHERE card_id = $1")
        .bind(card_id)
        .bind(status.as_str());
    Ok(exec(&mut *c, "set_card_status", q).await? > 0)
}

write_op!(set_card_status = set_card_status_in(card_id: &str => card_id.to_owned(),
    status: CardStatus) -> bool);

const AUTH_COLS: &str = "authorization_id, merchant_id, order_id, cardholder_id, card_id, amount, \
     currency, payment_method, decline_code, status, held, captured, refunded, created_at_ms, \
     updated_at_ms";

fn auth_row(r: &DbRow) -> Result<AuthorizationRecord> {
    let pm: String = get(r, "payment_method")?;
    let status: String = get(r, "status")?;
    let decline: Option<String> = get(r, "decline_code")?;
    Ok(AuthorizationRecord {
        authorization_id: get(r, "authorization_id")?,
        merchant_id: get(r, "merchant_id")?,
        order_id: get::<String>(r, "order_id")?.into(),
        cardholder_id: get(r, "cardholder_id")?,
        card_id: get(r, "card_id")?,
        amount: to_u64(get(r, "amount")?, "amount")?,
        currency: get(r, "currency")?,
        payment_method: serde_json::from_str::<PaymentMethod>(&pm)
            .map_err(|_| StoreError::Corrupt("payment_method"))?,
        decline_code: decline.as_deref().map(DeclineCode::decode).transpose()?,
        status: AuthorizationStatus::decode(&status)?,
        held: to_u64(get(r, "held")?, "held")?,
        captured: to_u64(get(r, "captured")?, "captured")?,
        refunded: to_u64(get(r, "refunded")?, "refunded")?,
        created_at_ms: get(r, "created_at_ms")?,
        updated_at_ms: get(r, "updated_at_ms")?,
    })
}

async fn auth_in_tx(
    c: &mut Conn,
    merchant_id: &str,
    order_id: &OrderId,
    lock: bool,
    op: &'static str,
) -> Result<Option<AuthorizationRecord>> {
    let sql = format!(
        "SELECT {AUTH_COLS} FROM issuer_authorizations WHERE merchant_id = $1 AND order_id = $2{}",
        if lock { FOR_UPDATE } else { "" }
    );
    let q = query(&sql).bind(merchant_id).bind(order_id.as_str());
    optional(&mut *c, op, q, auth_row).await
}

async fn authorize_in(
    c: &mut Conn,
    req: &AuthorizeRequest,
    ring: &Keyring,
) -> Result<Inserted<AuthorizationRecord>> {
    const OP: &str = "authorize";
    check_id("merchant id", &req.merchant_id)?;
    check_id("order id", &req.order_id)?;
    check_id("authorization id", &req.authorization_id)?;
    check_id("cardholder id", &req.cardholder_id)?;
    let pm = serde_json::to_string(&req.payment_method)
        .map_err(|_| StoreError::Invalid("payment method".into()))?;
    // Lock the cardholder's cards first: concurrent authorizations against one card queue
    // here, and the one that waits then sees the other's hold and decision.
    let sql = format!(
        "SELECT {CARD_COLS} FROM issuer_cards WHERE cardholder_id = $1 ORDER BY card_id{FOR_UPDATE}"
    );
    let cards = all(
        &mut *c,
        OP,
        query(&sql).bind(&req.cardholder_id),
        |r| card_row(ring, r),
    )
    .await?;
    if let Some(existing) = auth_in_tx(c, &req.merchant_id, &req.order_id, false, OP).await? {
        return Ok(Inserted {
            record: existing,
            created: false,
        });
    }
    if let Some(carrier) = &req.carrier_id {
        check_id("carrier id", carrier)?;
    }
    let decision = rules::decide(req, &cards);
    let (card_id, decline, held) = match decision {
        Ok(card) => (Some(card.card_id.clone()), None, req.amount),
        Err((code, card)) => (card.map(|c| c.card_id.clone()), Some(code), 0),
    };
    let status = if decline.is_some() {
        AuthorizationStatus::Declined
    } else {
        AuthorizationStatus::Held
    };
    // A declined request may carry an amount that does not fit; store it clamped.
    let amount_col = i64::try_from(req.amount).unwrap_or(i64::MAX);
    let held_col = to_i64(held, "amount")?;
    let q = query(
        "INSERT INTO issuer_authorizations (authorization_id, merchant_id, order_id, \
         cardholder_id, card_id, amount, currency, payment_method, decline_code, status, held, \
         captured, refunded, created_at_ms, updated_at_ms, carrier_id, header_digest) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, 0, $12, $12, $13, $14) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&req.authorization_id)
    .bind(&req.merchant_id)
    .bind(req.order_id.as_str())
    .bind(&req.cardholder_id)
    .bind(&card_id)
    .bind(amount_col)
    .bind(&req.currency)
    .bind(&pm)
    .bind(decline.map(DeclineCode::as_str))
    .bind(status.as_str())
    .bind(held_col)
    .bind(req.now_ms)
    .bind(&req.carrier_id)
    .bind(&req.header_digest[..]);
    if exec(&mut *c, OP, q).await? == 0 {
        // Lost a race for this order (no card row to lock), or the authorization id is taken.
        let existing = auth_in_tx(c, &req.merchant_id, &req.order_id, false, OP).await?;
        return match existing {
            Some(record) => Ok(Inserted {
                record,
                created: false,
            }),
            None => Err(StoreError::Conflict(
                "the authorization id is already used for another order".into(),
            )),
        };
    }
    if let (None, Some(cid)) = (decline, card_id.as_deref()) {
        let q = query(
            "UPDATE issuer_cards SET available = available - $1 \
             WHERE card_id = $2 AND available >= $1",
        )
        .bind(held_col)
        .bind(cid);
        if exec(&mut *c, OP, q).await? != 1 {
            return Err(StoreError::Conflict(
                "the card changed during the authorization; retry".into(),
            ));
        }
        book(
            c,
            &format!("{}:hold", req.authorization_id),
            "hold",
            &[
                (&available_account(cid), -held_col),
                (&held_account(cid), held_col),
            ],
            req.now_ms,
            OP,
        )
        .await?;
    }
    Ok(Inserted {
        record: AuthorizationRecord {
            authorization_id: req.authorization_id.clone(),
            merchant_id: req.merchant_id.clone(),
            order_id: req.order_id.clone(),
            cardholder_id: req.cardholder_id.clone(),
            card_id,
            amount: to_u64(amount_col, "amount")?,
            currency: req.currency.clone(),
            payment_method: req.payment_method,
            decline_code: decline,
            status,
            held,
            captured: 0,
            refunded: 0,
            created_at_ms: req.now_ms,
            updated_at_ms: req.now_ms,
        },
        created: true,
    })
}

write_op!(authorize_tx = authorize_in(req: &AuthorizeRequest => req.clone(),
    ring: &Arc<Keyring> => ring.clone()) -> Inserted<AuthorizationRecord>);

/// Decides an authorization (the cardholder's cards decrypted with the store's keys).
pub(crate) async fn authorize(
    p: &P,
    req: &AuthorizeRequest,
) -> Result<Inserted<AuthorizationRecord>> {
    with_keys(p, |ring| async move { authorize_tx(p, req, &ring).await }).await
}

async fn authorize_answered_in(
    c: &mut Conn,
    req: &AuthorizeRequest,
    ring: &Keyring,
    answer: &Answer<Inserted<AuthorizationRecord>>,
) -> Result<(Inserted<AuthorizationRecord>, Option<StoredResponse>)> {
    let inserted = authorize_in(&mut *c, req, ring).await?;
    let kept = keep_answer(c, answer, &inserted).await?;
    Ok((inserted, kept))
}

write_op!(authorize_answered_tx = authorize_answered_in(req: &AuthorizeRequest => req.clone(),
    ring: &Arc<Keyring> => ring.clone(),
    answer: &Answer<Inserted<AuthorizationRecord>> => answer.clone())
    -> (Inserted<AuthorizationRecord>, Option<StoredResponse>));

/// [`authorize`] keeping `answer` of its result in the same transaction.
pub(crate) async fn authorize_answered(
    p: &P,
    req: &AuthorizeRequest,
    answer: &Answer<Inserted<AuthorizationRecord>>,
) -> Result<(Inserted<AuthorizationRecord>, Option<StoredResponse>)> {
    with_keys(p, |ring| async move { authorize_answered_tx(p, req, &ring, answer).await }).await
}

pub(crate) async fn get_authorization(
    p: &P,
    merchant_id: &str,
    order_id: &OrderId,
) -> Result<Option<AuthorizationRecord>> {
    let sql = format!(
        "SELECT {AUTH_COLS} FROM issuer_authorizations WHERE merchant_id = $1 AND order_id = $2"
    );
    let q = query(&sql).bind(merchant_id).bind(order_id.as_str());
    optional(&p.reader, "get_authorization", q, auth_row).await
}

pub(crate) async fn authorization_binding(
    p: &P,
    merchant_id: &str,
    order_id: &OrderId,
) -> Result<Option<AuthorizationBinding>> {
    let q = query(
        "SELECT carrier_id, header_digest FROM issuer_authorizations \
         WHERE merchant_id = $1 AND order_id = $2",
    )
    .bind(merchant_id)
    .bind(order_id.as_str());
    optional(&p.reader, "authorization_binding", q, |r| {
        let digest: Option<Vec<u8>> = get(r, "header_digest")?;
        Ok(AuthorizationBinding {
            carrier_id: get(r, "carrier_id")?,
            header_digest: digest
                .map(|d| <[u8; 32]>::try_from(d.as_slice()))
                .transpose()
                .map_err(|_| StoreError::Corrupt("header_digest"))?,
        })
    })
    .await
}

pub(crate) async fn authorizations_for_cardholder(
    p: &P,
    cardholder_id: &str,
) -> Result<Vec<AuthorizationRecord>> {
    let sql = format!(
        "SELECT {AUTH_COLS} FROM issuer_authorizations WHERE cardholder_id = $1 \
         ORDER BY created_at_ms DESC, authorization_id DESC"
    );
    let q = query(&sql).bind(cardholder_id);
    all(&p.reader, "authorizations_for_cardholder", q, auth_row).await
}

pub(crate) async fn list_authorizations(
    p: &P,
    limit: u32,
    offset: u32,
) -> Result<Vec<AuthorizationRecord>> {
    let sql = format!(
        "SELECT {AUTH_COLS} FROM issuer_authorizations \
         ORDER BY created_at_ms DESC, authorization_id DESC LIMIT $1 OFFSET $2"
    );
    let q = query(&sql)
        .bind(i64::from(limit))
        .bind(i64::from(offset));
    all(&p.reader, "list_authorizations", q, auth_row).await
}

/// Locks and loads an authorization for a lifecycle operation.
async fn lifecycle_start(
    c: &mut Conn,
    merchant_id: &str,
    order_id: &OrderId,
    op: &'static str,
) -> Result<AuthorizationRecord> {
    auth_in_tx(c, merchant_id, order_id, true, op)
        .await?
        .ok_or(StoreError::NotFound("authorization"))
}

async fn add_available(c: &mut Conn, card_id: &str, delta: i64, op: &'static str) -> Result<()> {
    if delta == 0 {
        return Ok(());
    }
    let q = query("UPDATE issuer_cards SET available = available + $1 WHERE card_id = $2")
        .bind(delta)
        .bind(card_id);
    if exec(&mut *c, op, q).await? != 1 {
        return Err(StoreError::NotFound("card"));
    }
    Ok(())
}

async fn update_auth(c: &mut Conn, a: &AuthorizationRecord, op: &'static str) -> Result<()> {
    let q = query(
        "UPDATE issuer_authorizations SET status = $2, held = $3, captured = $4, refunded = $5, \
         updated_at_ms = $6 WHERE authorization_id = $1",
    )
    .bind(&a.authorization_id)
    .bind(a.status.as_str())
    .bind(to_i64(a.held, "held")?)
    .bind(to_i64(a.captured, "captured")?)
    .bind(to_i64(a.refunded, "refunded")?)
    .bind(a.updated_at_ms);
    exec(&mut *c, op, q).await?;
    Ok(())
}

/// Stores a lifecycle operation's new authorization state and books its ledger movement
/// (`{authorization id}:{movement}`).
async fn apply(
    c: &mut Conn,
    mut a: AuthorizationRecord,
    movement: &str,
    kind: &str,
    entries: &[(String, i64)],
    now_ms: i64,
    op: &'static str,
) -> Result<Applied> {
    a.updated_at_ms = now_ms;
    update_auth(c, &a, op).await?;
    let entries: Vec<(&str, i64)> = entries.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let movement_id = format!("{}:{movement}", a.authorization_id);
    book(c, &movement_id, kind, &entries, now_ms, op).await?;
    Ok(Applied {
        authorization: a,
        applied: true,
    })
}

/// What an unchanged step answers: the authorization as it is.
fn repeat(a: AuthorizationRecord) -> Result<Applied> {
    Ok(Applied {
        authorization: a,
        applied: false,
    })
}

async fn capture_in(
    c: &mut Conn,
    merchant_id: &str,
    order_id: &OrderId,
    amount: Option<u64>,
    now_ms: i64,
) -> Result<Applied> {
    const OP: &str = "capture";
    let a = lifecycle_start(c, merchant_id, order_id, OP).await?;
    let next = match rules::capture(&a, amount)? {
        Step::Repeat => return repeat(a),
        Step::Apply(next) => next,
    };
    let card_id = a.card_id.clone().ok_or(StoreError::Corrupt("card_id"))?;
    let (held_i, c_i) = (to_i64(a.held, "held")?, to_i64(next.captured, "amount")?);
    add_available(c, &card_id, held_i - c_i, OP).await?;
    let entries = [
        (held_account(&card_id), -held_i),
        (available_account(&card_id), held_i - c_i),
        (merchant_account(merchant_id), c_i),
    ];
    apply(c, next, "capture", "capture", &entries, now_ms, OP).await
}

write_op!(capture = capture_in(merchant_id: &str => merchant_id.to_owned(),
    order_id: &OrderId => order_id.to_owned(), amount: Option<u64>, now_ms: i64) -> Applied);

async fn void_in(c: &mut Conn, merchant_id: &str, order_id: &OrderId, now_ms: i64) -> Result<Applied> {
    const OP: &str = "void";
    let a = lifecycle_start(c, merchant_id, order_id, OP).await?;
    let next = match rules::void(&a)? {
        Step::Repeat => return repeat(a),
        Step::Apply(next) => next,
    };
    let card_id = a.card_id.clone().ok_or(StoreError::Corrupt("card_id"))?;
    let held_i = to_i64(a.held, "held")?;
    add_available(c, &card_id, held_i, OP).await?;
    let entries = [
        (held_account(&card_id), -held_i),
        (available_account(&card_id), held_i),
    ];
    apply(c, next, "void", "void", &entries, now_ms, OP).await
}

write_op!(void = void_in(merchant_id: &str => merchant_id.to_owned(),
    order_id: &OrderId => order_id.to_owned(), now_ms: i64) -> Applied);

async fn refund_in(
    c: &mut Conn,
    merchant_id: &str,
    order_id: &OrderId,
    refund_id: &str,
    amount: u64,
    now_ms: i64,
) -> Result<Applied> {
    const OP: &str = "refund";
    check_id("refund id", refund_id)?;
    let r_i = to_i64(amount, "amount")?;
    let a = lifecycle_start(c, merchant_id, order_id, OP).await?;
    let q = query(
        "SELECT authorization_id, amount FROM issuer_refunds \
         WHERE merchant_id = $1 AND order_id = $2 AND refund_id = $3",
    )
    .bind(merchant_id)
    .bind(order_id.as_str())
    .bind(refund_id);
    let prior = optional(&mut *c, OP, q, |r| {
        Ok(PriorRefund {
            authorization_id: get(r, "authorization_id")?,
            amount: to_u64(get(r, "amount")?, "amount")?,
        })
    })
    .await?;
    let next = match rules::refund(&a, prior.as_ref(), amount)? {
        Step::Repeat => return repeat(a),
        Step::Apply(next) => next,
    };
    let card_id = a.card_id.clone().ok_or(StoreError::Corrupt("card_id"))?;
    let q = query(
        "INSERT INTO issuer_refunds (merchant_id, order_id, refund_id, authorization_id, amount, \
         created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(merchant_id)
    .bind(order_id.as_str())
    .bind(refund_id)
    .bind(&a.authorization_id)
    .bind(r_i)
    .bind(now_ms);
    exec(&mut *c, OP, q).await?;
    add_available(c, &card_id, r_i, OP).await?;
    let entries = [
        (merchant_account(merchant_id), -r_i),
        (available_account(&card_id), r_i),
    ];
    let movement = format!("refund:{refund_id}");
    apply(c, next, &movement, "refund", &entries, now_ms, OP).await
}

write_op!(refund = refund_in(merchant_id: &str => merchant_id.to_owned(),
    order_id: &OrderId => order_id.to_owned(), refund_id: &str => refund_id.to_owned(),
    amount: u64, now_ms: i64) -> Applied);

async fn payment_step_answered_in(
    c: &mut Conn,
    merchant_id: &str,
    order_id: &OrderId,
    step: &PaymentStep,
    now_ms: i64,
    answer: &Answer<Applied>,
) -> Result<(Applied, Option<StoredResponse>)> {
    let applied = match step {
        PaymentStep::Capture { amount } => {
            capture_in(&mut *c, merchant_id, order_id, *amount, now_ms).await?
        }
        PaymentStep::Void => void_in(&mut *c, merchant_id, order_id, now_ms).await?,
        PaymentStep::Refund { refund_id, amount } => {
            refund_in(&mut *c, merchant_id, order_id, refund_id, *amount, now_ms).await?
        }
    };
    let kept = keep_answer(c, answer, &applied).await?;
    Ok((applied, kept))
}

write_op!(payment_step_answered = payment_step_answered_in(
    merchant_id: &str => merchant_id.to_owned(), order_id: &OrderId => order_id.to_owned(),
    step: &PaymentStep => step.clone(), now_ms: i64, answer: &Answer<Applied> => answer.clone())
    -> (Applied, Option<StoredResponse>));

const LEDGER_SUM: &str = "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM issuer_ledger";
const UNBALANCED: &str = "SELECT COUNT(*) FROM (SELECT movement_id FROM issuer_ledger \
     GROUP BY movement_id HAVING SUM(amount) <> 0) AS t";

pub(crate) async fn ledger_sum(p: &P) -> Result<i64> {
    scalar(&p.reader, "ledger_sum", query_scalar(LEDGER_SUM)).await
}

pub(crate) async fn ledger_balance(p: &P, account: &str) -> Result<i64> {
    let q = query_scalar(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM issuer_ledger WHERE account = $1",
    )
    .bind(account);
    scalar(&p.reader, "ledger_balance", q).await
}

pub(crate) async fn unbalanced_movements(p: &P) -> Result<u64> {
    count(
        &p.reader,
        "unbalanced_movements",
        query_scalar(UNBALANCED),
    )
    .await
}

pub(crate) async fn ledger_entries(p: &P, account: &str) -> Result<Vec<LedgerEntry>> {
    let q = query(
        "SELECT id, movement_id, kind, account, amount, created_at_ms FROM issuer_ledger \
         WHERE account = $1 ORDER BY id",
    )
    .bind(account);
    all(&p.reader, "ledger_entries", q, |r| {
        Ok(LedgerEntry {
            id: get(r, "id")?,
            movement_id: get(r, "movement_id")?,
            kind: get(r, "kind")?,
            account: get(r, "account")?,
            amount: get(r, "amount")?,
            created_at_ms: get(r, "created_at_ms")?,
        })
    })
    .await
}

pub(crate) async fn settlement_report(p: &P, merchant_id: &str) -> Result<Vec<SettlementDay>> {
    let q = query(
        "SELECT created_at_ms / 86400000 AS day, kind, CAST(SUM(amount) AS BIGINT) AS total \
         FROM issuer_ledger WHERE account = $1 GROUP BY created_at_ms / 86400000, kind \
         ORDER BY day",
    )
    .bind(merchant_account(merchant_id));
    let rows = all(&p.reader, "settlement_report", q, |r| {
        Ok((
            get::<i64>(r, "day")?,
            get::<String>(r, "kind")?,
            get::<i64>(r, "total")?,
        ))
    })
    .await?;
    let mut out: Vec<SettlementDay> = Vec::new();
    for (day, kind, total) in rows {
        if out.last().is_none_or(|d| d.day != day) {
            out.push(SettlementDay {
                day,
                captured: 0,
                refunded: 0,
            });
        }
        let Some(d) = out.last_mut() else { continue };
        match kind.as_str() {
            "capture" => d.captured = to_u64(total, "captured")?,
            "refund" => d.refunded = to_u64(-total, "refunded")?,
            _ => {}
        }
    }
    Ok(out)
}

pub(crate) async fn audit(p: &P) -> Result<Audit> {
    const OP: &str = "audit";
    // One read transaction: a consistent snapshot of cards, authorizations and ledger.
    let mut c = p.reader.begin().await.map_err(err(OP))?;
    let ledger_sum: i64 = scalar(&mut *c, OP, query_scalar(LEDGER_SUM)).await?;
    let unbalanced = count(&mut *c, OP, query_scalar(UNBALANCED)).await?;
    let q = query(
        "SELECT k.card_id, k.credit_limit, k.available, \
           CAST(COALESCE((SELECT SUM(a.held - a.refunded + a.captured) FROM issuer_authorizations a \
             WHERE a.card_id = k.card_id), 0) AS BIGINT) AS used, \
           CAST(COALESCE((SELECT SUM(l.amount) FROM issuer_ledger l \
             WHERE l.account = 'card:' || k.card_id || ':available'), 0) AS BIGINT) AS booked \
         FROM issuer_cards k ORDER BY k.card_id",
    );
    let cards = all(&mut *c, OP, q, |r| {
        let id: String = get(r, "card_id")?;
        let limit: i64 = get(r, "credit_limit")?;
        let available: i64 = get(r, "available")?;
        let used: i64 = get(r, "used")?;
        let booked: i64 = get(r, "booked")?;
        let matches = available == limit - used && available == booked;
        Ok((id, matches))
    })
    .await?;
    let _ = c.rollback().await;
    Ok(Audit {
        ledger_sum,
        unbalanced_movements: unbalanced,
        cards: cards.len() as u64,
        card_mismatches: cards
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(id, _)| id)
            .collect(),
    })
}

pub(crate) async fn count_authorizations(
    p: &P,
) -> Result<Vec<(AuthorizationStatus, Option<DeclineCode>, u64)>> {
    let q = query(
        "SELECT status, decline_code, COUNT(*) AS n FROM issuer_authorizations \
         GROUP BY status, decline_code ORDER BY status, decline_code",
    );
    all(&p.reader, "count_authorizations", q, |r| {
        let status: String = get(r, "status")?;
        let code: Option<String> = get(r, "decline_code")?;
        Ok((
            AuthorizationStatus::decode(&status)?,
            code.as_deref().map(DeclineCode::decode).transpose()?,
            to_u64(get(r, "n")?, "count")?,
        ))
    })
    .await
}

bucket_query!(
    /// Authorization decisions by the bucket they were made in, under their decline code
    /// (`approved` for an approval).
    authorization_buckets = "SELECT (created_at_ms / $2) * $2 AS b, \
         COALESCE(decline_code, 'approved') AS k, COUNT(*) AS n FROM issuer_authorizations \
         WHERE created_at_ms >= $1 GROUP BY b, k ORDER BY b, k"
);
