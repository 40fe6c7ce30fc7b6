// The store's SQL, included once per backend by `sql/mod.rs` with `Db` and `SQLITE` set.
// (An included file cannot carry inner doc comments: the module docs are in `sql/mod.rs`.)

use sqlx::Row;
use warifu_core::order::{Expiry, PaymentMethod, year_month};
use warifu_core::secret::Secret;

use super::WriteFn;
use super::{check_id, normalize_name, same_secret, short, to_i64, to_u64};
use crate::error::{Result, StoreError};
use crate::open::Pools;
use crate::types::*;

type P = Pools<Db>;
type Conn = <Db as sqlx::Database>::Connection;
type DbRow = <Db as sqlx::Database>::Row;

const FOR_UPDATE: &str = if SQLITE { "" } else { " FOR UPDATE" };
const SKIP_LOCKED: &str = if SQLITE {
    ""
} else {
    " FOR UPDATE SKIP LOCKED"
};

fn err(op: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| StoreError::db(op, e)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Runs a write operation in a transaction: SQLite through the group-commit writer,
/// PostgreSQL in its own transaction. The result is returned only after the commit.
async fn write<T: Send + 'static>(p: &P, op: &'static str, f: WriteFn<Conn, T>) -> Result<T> {
    run_write(p, op, f).await
}

fn get<'r, T>(r: &'r DbRow, col: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    r.try_get(col).map_err(|_| StoreError::Corrupt(col))
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ------------------------------------------------------------------------------------------
// Common

pub(crate) async fn ping(p: &P) -> Result<()> {
    sqlx::query("SELECT 1")
        .execute(&p.reader)
        .await
        .map_err(err("ping"))?;
    Ok(())
}

fn stored_response(r: &DbRow) -> Result<StoredResponse> {
    let status: i64 = get(r, "status")?;
    Ok(StoredResponse {
        status: u16::try_from(status).map_err(|_| StoreError::Corrupt("status"))?,
        body: get(r, "body")?,
        fingerprint: get(r, "fingerprint")?,
        created_at_ms: get(r, "created_at_ms")?,
    })
}

const IDEM_GET: &str = "SELECT status, body, fingerprint, created_at_ms FROM idempotency \
                        WHERE scope = $1 AND key = $2";

pub(crate) async fn idempotency_get(
    p: &P,
    scope: &str,
    key: &str,
) -> Result<Option<StoredResponse>> {
    let row = sqlx::query(IDEM_GET)
        .bind(scope)
        .bind(key)
        .fetch_optional(&p.reader)
        .await
        .map_err(err("idempotency_get"))?;
    row.as_ref().map(stored_response).transpose()
}

async fn idempotency_put_in(
    c: &mut Conn,
    scope: &str,
    key: &str,
    resp: &StoredResponse,
) -> Result<StoredResponse> {
    check_id("idempotency scope", scope)?;
    check_id("idempotency key", key)?;
    const OP: &str = "idempotency_put";
    sqlx::query(
        "INSERT INTO idempotency (scope, key, status, body, fingerprint, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(scope)
    .bind(key)
    .bind(i64::from(resp.status))
    .bind(&resp.body)
    .bind(&resp.fingerprint)
    .bind(resp.created_at_ms)
    .execute(&mut *c)
    .await
    .map_err(err(OP))?;
    let row = sqlx::query(IDEM_GET)
        .bind(scope)
        .bind(key)
        .fetch_one(&mut *c)
        .await
        .map_err(err(OP))?;
    let stored = stored_response(&row)?;
    Ok(stored)
}

async fn idempotency_purge_in(c: &mut Conn, before_ms: i64) -> Result<u64> {
    let r = sqlx::query("DELETE FROM idempotency WHERE created_at_ms < $1")
        .bind(before_ms)
        .execute(&mut *c)
        .await
        .map_err(err("idempotency_purge"))?;
    Ok(r.rows_affected())
}

// ------------------------------------------------------------------------------------------
// Merchant

async fn put_order_form_in(c: &mut Conn, f: &OrderFormRecord) -> Result<()> {
    check_id("order id", &f.order_id)?;
    let r = sqlx::query(
        "INSERT INTO merchant_order_forms (order_id, form_json, expires_at_ms, created_at_ms) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&f.order_id)
    .bind(&f.form_json)
    .bind(f.expires_at_ms)
    .bind(f.created_at_ms)
    .execute(&mut *c)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(
            "an order form with this id exists".into(),
        )),
        Err(e) => Err(StoreError::db("put_order_form", e)),
    }
}

pub(crate) async fn get_order_form(p: &P, order_id: &str) -> Result<Option<OrderFormRecord>> {
    let row = sqlx::query(
        "SELECT order_id, form_json, expires_at_ms, created_at_ms FROM merchant_order_forms \
         WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(&p.reader)
    .await
    .map_err(err("get_order_form"))?;
    row.map(|r| {
        Ok(OrderFormRecord {
            order_id: get(&r, "order_id")?,
            form_json: get(&r, "form_json")?,
            expires_at_ms: get(&r, "expires_at_ms")?,
            created_at_ms: get(&r, "created_at_ms")?,
        })
    })
    .transpose()
}

const ORDER_COLS: &str = "order_id, cardholder_id, issuer_id, carrier_id, merchant_view, amount, \
     currency, state, decline_code, authorization_id, tracking_number, carrier_part, version, \
     created_at_ms, updated_at_ms";

fn order_row(r: &DbRow) -> Result<OrderRecord> {
    let state: String = get(r, "state")?;
    Ok(OrderRecord {
        order_id: get(r, "order_id")?,
        cardholder_id: get(r, "cardholder_id")?,
        issuer_id: get(r, "issuer_id")?,
        carrier_id: get(r, "carrier_id")?,
        merchant_view: get(r, "merchant_view")?,
        amount: to_u64(get(r, "amount")?, "amount")?,
        currency: get(r, "currency")?,
        state: OrderState::decode(&state)?,
        decline_code: get(r, "decline_code")?,
        authorization_id: get(r, "authorization_id")?,
        tracking_number: get(r, "tracking_number")?,
        carrier_part: get(r, "carrier_part")?,
        version: get(r, "version")?,
        created_at_ms: get(r, "created_at_ms")?,
        updated_at_ms: get(r, "updated_at_ms")?,
    })
}

async fn enqueue(
    c: &mut Conn,
    order_id: &str,
    msgs: &[NewOutboxMessage],
    now_ms: i64,
    op: &'static str,
) -> Result<()> {
    for m in msgs {
        check_id("outbox kind", &m.kind)?;
        sqlx::query(
            "INSERT INTO merchant_outbox \
             (order_id, kind, payload, attempts, next_attempt_at_ms, done, created_at_ms) \
             VALUES ($1, $2, $3, 0, $4, FALSE, $4)",
        )
        .bind(order_id)
        .bind(&m.kind)
        .bind(&m.payload)
        .bind(now_ms)
        .execute(&mut *c)
        .await
        .map_err(err(op))?;
    }
    Ok(())
}

async fn insert_order_in(
    c: &mut Conn,
    o: &NewOrder,
    outbox: &[NewOutboxMessage],
) -> Result<Inserted<OrderRecord>> {
    const OP: &str = "insert_order";
    check_id("order id", &o.order_id)?;
    check_id("cardholder id", &o.cardholder_id)?;
    check_id("issuer id", &o.issuer_id)?;
    let amount = to_i64(o.amount, "amount")?;
    let r = sqlx::query(
        "INSERT INTO merchant_orders (order_id, cardholder_id, issuer_id, carrier_id, \
         merchant_view, amount, currency, state, decline_code, authorization_id, tracking_number, \
         carrier_part, version, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, $9, 1, $10, $10) \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(&o.order_id)
    .bind(&o.cardholder_id)
    .bind(&o.issuer_id)
    .bind(&o.carrier_id)
    .bind(&o.merchant_view)
    .bind(amount)
    .bind(&o.currency)
    .bind(OrderState::Received.as_str())
    .bind(&o.carrier_part)
    .bind(o.now_ms)
    .execute(&mut *c)
    .await
    .map_err(err(OP))?;
    if r.rows_affected() == 0 {
        let row = sqlx::query(&format!(
            "SELECT {ORDER_COLS} FROM merchant_orders WHERE order_id = $1"
        ))
        .bind(&o.order_id)
        .fetch_one(&mut *c)
        .await
        .map_err(err(OP))?;
        let record = order_row(&row)?;
        return Ok(Inserted {
            record,
            created: false,
        });
    }
    enqueue(c, &o.order_id, outbox, o.now_ms, OP).await?;
    Ok(Inserted {
        record: OrderRecord {
            order_id: o.order_id.clone(),
            cardholder_id: o.cardholder_id.clone(),
            issuer_id: o.issuer_id.clone(),
            carrier_id: o.carrier_id.clone(),
            merchant_view: o.merchant_view.clone(),
            amount: o.amount,
            currency: o.currency.clone(),
            state: OrderState::Received,
            decline_code: None,
            authorization_id: None,
            tracking_number: None,
            carrier_part: o.carrier_part.clone(),
            version: 1,
            created_at_ms: o.now_ms,
            updated_at_ms: o.now_ms,
        },
        created: true,
    })
}

pub(crate) async fn get_order(p: &P, order_id: &str) -> Result<Option<OrderRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {ORDER_COLS} FROM merchant_orders WHERE order_id = $1"
    ))
    .bind(order_id)
    .fetch_optional(&p.reader)
    .await
    .map_err(err("get_order"))?;
    row.as_ref().map(order_row).transpose()
}

pub(crate) async fn list_orders(p: &P, f: &OrderFilter) -> Result<Vec<OrderRecord>> {
    let mut sql = format!("SELECT {ORDER_COLS} FROM merchant_orders WHERE 1 = 1");
    let mut n = 1;
    if f.cardholder_id.is_some() {
        sql.push_str(&format!(" AND cardholder_id = ${n}"));
        n += 1;
    }
    if f.state.is_some() {
        sql.push_str(&format!(" AND state = ${n}"));
        n += 1;
    }
    sql.push_str(&format!(
        " ORDER BY created_at_ms DESC, order_id DESC LIMIT ${} OFFSET ${}",
        n,
        n + 1
    ));
    let mut q = sqlx::query(&sql);
    if let Some(c) = &f.cardholder_id {
        q = q.bind(c);
    }
    if let Some(s) = f.state {
        q = q.bind(s.as_str());
    }
    let rows = q
        .bind(i64::from(f.limit.unwrap_or(100)))
        .bind(i64::from(f.offset.unwrap_or(0)))
        .fetch_all(&p.reader)
        .await
        .map_err(err("list_orders"))?;
    rows.iter().map(order_row).collect()
}

async fn transition_in(c: &mut Conn, t: &Transition) -> Result<bool> {
    const OP: &str = "transition";
    if t.from.is_empty() {
        return Err(StoreError::Invalid(
            "a transition needs at least one from-state".into(),
        ));
    }
    let sql = format!(
        "UPDATE merchant_orders SET state = $2, decline_code = COALESCE($3, decline_code), \
         authorization_id = COALESCE($4, authorization_id), \
         tracking_number = COALESCE($5, tracking_number), \
         carrier_part = CASE WHEN $6 THEN NULL ELSE carrier_part END, \
         version = version + 1, updated_at_ms = $7 \
         WHERE order_id = $1 AND state IN ({})",
        placeholders(8, t.from.len())
    );
    let mut q = sqlx::query(&sql)
        .bind(&t.order_id)
        .bind(t.to.as_str())
        .bind(&t.decline_code)
        .bind(&t.authorization_id)
        .bind(&t.tracking_number)
        .bind(t.clear_carrier_part)
        .bind(t.now_ms);
    for s in &t.from {
        q = q.bind(s.as_str());
    }
    let r = q.execute(&mut *c).await.map_err(err(OP))?;
    if r.rows_affected() == 0 {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT version FROM merchant_orders WHERE order_id = $1")
                .bind(&t.order_id)
                .fetch_optional(&mut *c)
                .await
                .map_err(err(OP))?;
        return match exists {
            None => Err(StoreError::NotFound("order")),
            Some(_) => Ok(false),
        };
    }
    enqueue(c, &t.order_id, &t.outbox, t.now_ms, OP).await?;
    for id in &t.complete_outbox {
        sqlx::query("UPDATE merchant_outbox SET done = TRUE WHERE id = $1")
            .bind(id)
            .execute(&mut *c)
            .await
            .map_err(err(OP))?;
    }
    Ok(true)
}

const OUTBOX_COLS: &str =
    "id, order_id, kind, payload, attempts, next_attempt_at_ms, done, last_error, created_at_ms";

fn outbox_row(r: &DbRow) -> Result<OutboxMessage> {
    let attempts: i64 = get(r, "attempts")?;
    Ok(OutboxMessage {
        id: get(r, "id")?,
        order_id: get(r, "order_id")?,
        kind: get(r, "kind")?,
        payload: get(r, "payload")?,
        attempts: u32::try_from(attempts).map_err(|_| StoreError::Corrupt("attempts"))?,
        next_attempt_at_ms: get(r, "next_attempt_at_ms")?,
        done: get(r, "done")?,
        last_error: get(r, "last_error")?,
        created_at_ms: get(r, "created_at_ms")?,
    })
}

async fn claim_outbox_in(
    c: &mut Conn,
    now_ms: i64,
    lease_ms: i64,
    limit: u32,
) -> Result<Vec<OutboxMessage>> {
    const OP: &str = "claim_outbox";
    let sql = format!(
        "UPDATE merchant_outbox SET attempts = attempts + 1, next_attempt_at_ms = $2 \
         WHERE done = FALSE AND next_attempt_at_ms <= $1 AND id IN (\
           SELECT id FROM merchant_outbox WHERE done = FALSE AND next_attempt_at_ms <= $1 \
           ORDER BY next_attempt_at_ms, id LIMIT $3{SKIP_LOCKED}) \
         RETURNING {OUTBOX_COLS}"
    );
    let rows = sqlx::query(&sql)
        .bind(now_ms)
        .bind(now_ms.saturating_add(lease_ms.max(0)))
        .bind(i64::from(limit))
        .fetch_all(&mut *c)
        .await
        .map_err(err(OP))?;
    let mut out = rows.iter().map(outbox_row).collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|m| m.id);
    Ok(out)
}

async fn complete_outbox_in(c: &mut Conn, id: i64) -> Result<()> {
    let r = sqlx::query("UPDATE merchant_outbox SET done = TRUE WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(err("complete_outbox"))?;
    if r.rows_affected() == 0 {
        return Err(StoreError::NotFound("outbox message"));
    }
    Ok(())
}

async fn retry_outbox_in(c: &mut Conn, id: i64, next_ms: i64, error: &str) -> Result<()> {
    const OP: &str = "retry_outbox";
    let r = sqlx::query(
        "UPDATE merchant_outbox SET next_attempt_at_ms = $2, last_error = $3 \
         WHERE id = $1 AND done = FALSE",
    )
    .bind(id)
    .bind(next_ms)
    .bind(short(error))
    .execute(&mut *c)
    .await
    .map_err(err(OP))?;
    if r.rows_affected() == 0 {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM merchant_outbox WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *c)
                .await
                .map_err(err(OP))?;
        if exists.is_none() {
            return Err(StoreError::NotFound("outbox message"));
        }
    }
    Ok(())
}

pub(crate) async fn outbox_for_order(p: &P, order_id: &str) -> Result<Vec<OutboxMessage>> {
    let rows = sqlx::query(&format!(
        "SELECT {OUTBOX_COLS} FROM merchant_outbox WHERE order_id = $1 ORDER BY id"
    ))
    .bind(order_id)
    .fetch_all(&p.reader)
    .await
    .map_err(err("outbox_for_order"))?;
    rows.iter().map(outbox_row).collect()
}

pub(crate) async fn outbox_pending(p: &P) -> Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM merchant_outbox WHERE done = FALSE")
        .fetch_one(&p.reader)
        .await
        .map_err(err("outbox_pending"))?;
    to_u64(n, "count")
}

pub(crate) async fn count_orders_by_state(p: &P) -> Result<Vec<(OrderState, u64)>> {
    count_by(
        p,
        "SELECT state AS k, COUNT(*) AS n FROM merchant_orders GROUP BY state ORDER BY state",
        "count_orders_by_state",
        OrderState::decode,
    )
    .await
}

/// Runs a `SELECT k, COUNT(*) AS n … GROUP BY k` and decodes each group's text key.
async fn count_by<K>(
    p: &P,
    sql: &'static str,
    what: &'static str,
    decode: fn(&str) -> Result<K>,
) -> Result<Vec<(K, u64)>> {
    let rows = sqlx::query(sql)
        .fetch_all(&p.reader)
        .await
        .map_err(err(what))?;
    rows.iter()
        .map(|r| {
            let k: String = get(r, "k")?;
            Ok((decode(&k)?, to_u64(get(r, "n")?, "count")?))
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// Issuer

const CARD_COLS: &str = "card_id, cardholder_id, holder_name, number, expiry_year, expiry_month, \
     status, credit_limit, available, currency, created_at_ms";

fn card_row(r: &DbRow) -> Result<CardRecord> {
    let status: String = get(r, "status")?;
    let year: i64 = get(r, "expiry_year")?;
    let month: i64 = get(r, "expiry_month")?;
    let number: String = get(r, "number")?;
    Ok(CardRecord {
        card_id: get(r, "card_id")?,
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
    let mut q = sqlx::query(&sql).bind(movement_id).bind(kind).bind(now_ms);
    for (account, amount) in rows {
        q = q.bind(*account).bind(*amount);
    }
    q.execute(&mut *c).await.map_err(err(op))?;
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

async fn enroll_card_in(conn: &mut Conn, card: &NewCard) -> Result<CardRecord> {
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
    let r = sqlx::query(
        "INSERT INTO issuer_cards (card_id, cardholder_id, holder_name, number, expiry_year, \
         expiry_month, status, credit_limit, available, currency, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)",
    )
    .bind(&card.card_id)
    .bind(&card.cardholder_id)
    .bind(&card.holder_name)
    .bind(card.number.expose())
    .bind(i64::from(card.expiry.year))
    .bind(i64::from(card.expiry.month))
    .bind(CardStatus::Active.as_str())
    .bind(limit)
    .bind(&card.currency)
    .bind(card.now_ms)
    .execute(&mut *conn)
    .await;
    match r {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict("a card with this id exists".into()));
        }
        Err(e) => return Err(StoreError::db(OP, e)),
    }
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

pub(crate) async fn get_card(p: &P, card_id: &str) -> Result<Option<CardRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {CARD_COLS} FROM issuer_cards WHERE card_id = $1"
    ))
    .bind(card_id)
    .fetch_optional(&p.reader)
    .await
    .map_err(err("get_card"))?;
    row.as_ref().map(card_row).transpose()
}

pub(crate) async fn cards_for_cardholder(p: &P, cardholder_id: &str) -> Result<Vec<CardRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {CARD_COLS} FROM issuer_cards WHERE cardholder_id = $1 ORDER BY card_id"
    ))
    .bind(cardholder_id)
    .fetch_all(&p.reader)
    .await
    .map_err(err("cards_for_cardholder"))?;
    rows.iter().map(card_row).collect()
}

async fn set_card_status_in(c: &mut Conn, card_id: &str, status: CardStatus) -> Result<bool> {
    let r = sqlx::query("UPDATE issuer_cards SET status = $2 WHERE card_id = $1")
        .bind(card_id)
        .bind(status.as_str())
        .execute(&mut *c)
        .await
        .map_err(err("set_card_status"))?;
    Ok(r.rows_affected() > 0)
}

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
        order_id: get(r, "order_id")?,
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
    order_id: &str,
    lock: bool,
    op: &'static str,
) -> Result<Option<AuthorizationRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {AUTH_COLS} FROM issuer_authorizations WHERE merchant_id = $1 AND order_id = $2{}",
        if lock { FOR_UPDATE } else { "" }
    ))
    .bind(merchant_id)
    .bind(order_id)
    .fetch_optional(&mut *c)
    .await
    .map_err(err(op))?;
    row.as_ref().map(auth_row).transpose()
}

/// The issuer's decision for a request given the cardholder's cards (all locked).
fn decide<'c>(
    req: &AuthorizeRequest,
    cards: &'c [CardRecord],
) -> core::result::Result<&'c CardRecord, (DeclineCode, Option<&'c CardRecord>)> {
    if cards.is_empty() {
        return Err((DeclineCode::UnknownCardholder, None));
    }
    let Some(card) = cards
        .iter()
        .find(|c| same_secret(c.number.expose(), req.card_number.expose()))
    else {
        return Err((DeclineCode::CardMismatch, None));
    };
    let decline = |code| Err((code, Some(card)));
    if normalize_name(&card.holder_name) != normalize_name(&req.holder_name) {
        return decline(DeclineCode::NameMismatch);
    }
    if card.expiry != req.expiry {
        return decline(DeclineCode::ExpiryMismatch);
    }
    if card.status == CardStatus::Blocked {
        return decline(DeclineCode::Blocked);
    }
    let now_s = u64::try_from(req.now_ms.max(0) / 1000).unwrap_or(0);
    let (y, m) = year_month(now_s);
    if card.status == CardStatus::Expired || (y, m) > (card.expiry.year, card.expiry.month) {
        return decline(DeclineCode::Expired);
    }
    if card.currency != req.currency {
        return decline(DeclineCode::CurrencyMismatch);
    }
    if req.amount == 0 || i64::try_from(req.amount).is_err() {
        return decline(DeclineCode::InvalidAmount);
    }
    if card.available < req.amount {
        return decline(DeclineCode::InsufficientCredit);
    }
    Ok(card)
}

async fn authorize_in(
    c: &mut Conn,
    req: &AuthorizeRequest,
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
    let rows = sqlx::query(&format!(
        "SELECT {CARD_COLS} FROM issuer_cards WHERE cardholder_id = $1 ORDER BY card_id{FOR_UPDATE}"
    ))
    .bind(&req.cardholder_id)
    .fetch_all(&mut *c)
    .await
    .map_err(err(OP))?;
    let cards = rows.iter().map(card_row).collect::<Result<Vec<_>>>()?;
    if let Some(existing) = auth_in_tx(c, &req.merchant_id, &req.order_id, false, OP).await? {
        return Ok(Inserted {
            record: existing,
            created: false,
        });
    }
    let decision = decide(req, &cards);
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
    let r = sqlx::query(
        "INSERT INTO issuer_authorizations (authorization_id, merchant_id, order_id, \
         cardholder_id, card_id, amount, currency, payment_method, decline_code, status, held, \
         captured, refunded, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, 0, $12, $12) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&req.authorization_id)
    .bind(&req.merchant_id)
    .bind(&req.order_id)
    .bind(&req.cardholder_id)
    .bind(&card_id)
    .bind(amount_col)
    .bind(&req.currency)
    .bind(&pm)
    .bind(decline.map(DeclineCode::as_str))
    .bind(status.as_str())
    .bind(held_col)
    .bind(req.now_ms)
    .execute(&mut *c)
    .await
    .map_err(err(OP))?;
    if r.rows_affected() == 0 {
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
        let u = sqlx::query(
            "UPDATE issuer_cards SET available = available - $1 \
             WHERE card_id = $2 AND available >= $1",
        )
        .bind(held_col)
        .bind(cid)
        .execute(&mut *c)
        .await
        .map_err(err(OP))?;
        if u.rows_affected() != 1 {
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

pub(crate) async fn get_authorization(
    p: &P,
    merchant_id: &str,
    order_id: &str,
) -> Result<Option<AuthorizationRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {AUTH_COLS} FROM issuer_authorizations WHERE merchant_id = $1 AND order_id = $2"
    ))
    .bind(merchant_id)
    .bind(order_id)
    .fetch_optional(&p.reader)
    .await
    .map_err(err("get_authorization"))?;
    row.as_ref().map(auth_row).transpose()
}

pub(crate) async fn authorizations_for_cardholder(
    p: &P,
    cardholder_id: &str,
) -> Result<Vec<AuthorizationRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {AUTH_COLS} FROM issuer_authorizations WHERE cardholder_id = $1 \
         ORDER BY created_at_ms DESC, authorization_id DESC"
    ))
    .bind(cardholder_id)
    .fetch_all(&p.reader)
    .await
    .map_err(err("authorizations_for_cardholder"))?;
    rows.iter().map(auth_row).collect()
}

/// Locks and loads an authorization for a lifecycle operation.
async fn lifecycle_start(
    c: &mut Conn,
    merchant_id: &str,
    order_id: &str,
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
    let r = sqlx::query("UPDATE issuer_cards SET available = available + $1 WHERE card_id = $2")
        .bind(delta)
        .bind(card_id)
        .execute(&mut *c)
        .await
        .map_err(err(op))?;
    if r.rows_affected() != 1 {
        return Err(StoreError::NotFound("card"));
    }
    Ok(())
}

async fn update_auth(c: &mut Conn, a: &AuthorizationRecord, op: &'static str) -> Result<()> {
    sqlx::query(
        "UPDATE issuer_authorizations SET status = $2, held = $3, captured = $4, refunded = $5, \
         updated_at_ms = $6 WHERE authorization_id = $1",
    )
    .bind(&a.authorization_id)
    .bind(a.status.as_str())
    .bind(to_i64(a.held, "held")?)
    .bind(to_i64(a.captured, "captured")?)
    .bind(to_i64(a.refunded, "refunded")?)
    .bind(a.updated_at_ms)
    .execute(&mut *c)
    .await
    .map_err(err(op))?;
    Ok(())
}

fn conflict(a: &AuthorizationRecord, what: &str) -> StoreError {
    StoreError::Conflict(format!(
        "cannot {what} an authorization that is {}",
        a.status
    ))
}

async fn capture_in(
    c: &mut Conn,
    merchant_id: &str,
    order_id: &str,
    amount: Option<u64>,
    now_ms: i64,
) -> Result<Applied> {
    const OP: &str = "capture";
    let mut a = lifecycle_start(c, merchant_id, order_id, OP).await?;
    match a.status {
        AuthorizationStatus::Held => {}
        AuthorizationStatus::Captured | AuthorizationStatus::Refunded
            if amount.is_none_or(|x| x == a.captured) =>
        {
            return Ok(Applied {
                authorization: a,
                applied: false,
            });
        }
        AuthorizationStatus::Captured | AuthorizationStatus::Refunded => {
            return Err(StoreError::Conflict(
                "already captured, with a different amount".into(),
            ));
        }
        _ => {
            return Err(conflict(&a, "capture"));
        }
    }
    let held = a.held;
    let cap = amount.unwrap_or(held);
    if cap == 0 || cap > held {
        return Err(StoreError::Conflict(
            "the capture amount must be more than zero and at most the amount held".into(),
        ));
    }
    let card_id = a.card_id.clone().ok_or(StoreError::Corrupt("card_id"))?;
    let (held_i, c_i) = (to_i64(held, "held")?, to_i64(cap, "amount")?);
    add_available(c, &card_id, held_i - c_i, OP).await?;
    a.status = AuthorizationStatus::Captured;
    a.held = 0;
    a.captured = cap;
    a.updated_at_ms = now_ms;
    update_auth(c, &a, OP).await?;
    book(
        c,
        &format!("{}:capture", a.authorization_id),
        "capture",
        &[
            (&held_account(&card_id), -held_i),
            (&available_account(&card_id), held_i - c_i),
            (&merchant_account(merchant_id), c_i),
        ],
        now_ms,
        OP,
    )
    .await?;
    Ok(Applied {
        authorization: a,
        applied: true,
    })
}

async fn void_in(c: &mut Conn, merchant_id: &str, order_id: &str, now_ms: i64) -> Result<Applied> {
    const OP: &str = "void";
    let mut a = lifecycle_start(c, merchant_id, order_id, OP).await?;
    match a.status {
        AuthorizationStatus::Held => {}
        AuthorizationStatus::Voided => {
            return Ok(Applied {
                authorization: a,
                applied: false,
            });
        }
        _ => {
            return Err(conflict(&a, "void"));
        }
    }
    let card_id = a.card_id.clone().ok_or(StoreError::Corrupt("card_id"))?;
    let held_i = to_i64(a.held, "held")?;
    add_available(c, &card_id, held_i, OP).await?;
    a.status = AuthorizationStatus::Voided;
    a.held = 0;
    a.updated_at_ms = now_ms;
    update_auth(c, &a, OP).await?;
    book(
        c,
        &format!("{}:void", a.authorization_id),
        "void",
        &[
            (&held_account(&card_id), -held_i),
            (&available_account(&card_id), held_i),
        ],
        now_ms,
        OP,
    )
    .await?;
    Ok(Applied {
        authorization: a,
        applied: true,
    })
}

async fn refund_in(
    c: &mut Conn,
    merchant_id: &str,
    order_id: &str,
    refund_id: &str,
    amount: u64,
    now_ms: i64,
) -> Result<Applied> {
    const OP: &str = "refund";
    check_id("refund id", refund_id)?;
    let r_i = to_i64(amount, "amount")?;
    let mut a = lifecycle_start(c, merchant_id, order_id, OP).await?;
    let prior = sqlx::query(
        "SELECT authorization_id, amount FROM issuer_refunds WHERE merchant_id = $1 AND refund_id = $2",
    )
    .bind(merchant_id)
    .bind(refund_id)
    .fetch_optional(&mut *c)
    .await
    .map_err(err(OP))?;
    if let Some(row) = prior {
        let aid: String = get(&row, "authorization_id")?;
        let amt: i64 = get(&row, "amount")?;
        if aid == a.authorization_id && amt == r_i {
            return Ok(Applied {
                authorization: a,
                applied: false,
            });
        }
        return Err(StoreError::Conflict(
            "this refund id was used for another refund".into(),
        ));
    }
    if !matches!(
        a.status,
        AuthorizationStatus::Captured | AuthorizationStatus::Refunded
    ) {
        return Err(conflict(&a, "refund"));
    }
    if amount == 0 || a.refunded.saturating_add(amount) > a.captured {
        return Err(StoreError::Conflict(
            "a refund must be more than zero and at most the captured amount not yet refunded"
                .into(),
        ));
    }
    let card_id = a.card_id.clone().ok_or(StoreError::Corrupt("card_id"))?;
    sqlx::query(
        "INSERT INTO issuer_refunds (merchant_id, refund_id, authorization_id, amount, \
         created_at_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(merchant_id)
    .bind(refund_id)
    .bind(&a.authorization_id)
    .bind(r_i)
    .bind(now_ms)
    .execute(&mut *c)
    .await
    .map_err(err(OP))?;
    add_available(c, &card_id, r_i, OP).await?;
    a.refunded += amount;
    if a.refunded == a.captured {
        a.status = AuthorizationStatus::Refunded;
    }
    a.updated_at_ms = now_ms;
    update_auth(c, &a, OP).await?;
    book(
        c,
        &format!("{}:refund:{refund_id}", a.authorization_id),
        "refund",
        &[
            (&merchant_account(merchant_id), -r_i),
            (&available_account(&card_id), r_i),
        ],
        now_ms,
        OP,
    )
    .await?;
    Ok(Applied {
        authorization: a,
        applied: true,
    })
}

pub(crate) async fn ledger_sum(p: &P) -> Result<i64> {
    sqlx::query_scalar("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM issuer_ledger")
        .fetch_one(&p.reader)
        .await
        .map_err(err("ledger_sum"))
}

pub(crate) async fn ledger_balance(p: &P, account: &str) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM issuer_ledger WHERE account = $1",
    )
    .bind(account)
    .fetch_one(&p.reader)
    .await
    .map_err(err("ledger_balance"))
}

pub(crate) async fn unbalanced_movements(p: &P) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT movement_id FROM issuer_ledger GROUP BY movement_id \
         HAVING SUM(amount) <> 0) AS t",
    )
    .fetch_one(&p.reader)
    .await
    .map_err(err("unbalanced_movements"))?;
    to_u64(n, "count")
}

pub(crate) async fn ledger_entries(p: &P, account: &str) -> Result<Vec<LedgerEntry>> {
    let rows = sqlx::query(
        "SELECT id, movement_id, kind, account, amount, created_at_ms FROM issuer_ledger \
         WHERE account = $1 ORDER BY id",
    )
    .bind(account)
    .fetch_all(&p.reader)
    .await
    .map_err(err("ledger_entries"))?;
    rows.iter()
        .map(|r| {
            Ok(LedgerEntry {
                id: get(r, "id")?,
                movement_id: get(r, "movement_id")?,
                kind: get(r, "kind")?,
                account: get(r, "account")?,
                amount: get(r, "amount")?,
                created_at_ms: get(r, "created_at_ms")?,
            })
        })
        .collect()
}

pub(crate) async fn settlement_report(p: &P, merchant_id: &str) -> Result<Vec<SettlementDay>> {
    let rows = sqlx::query(
        "SELECT created_at_ms / 86400000 AS day, kind, CAST(SUM(amount) AS BIGINT) AS total \
         FROM issuer_ledger WHERE account = $1 GROUP BY created_at_ms / 86400000, kind \
         ORDER BY day",
    )
    .bind(merchant_account(merchant_id))
    .fetch_all(&p.reader)
    .await
    .map_err(err("settlement_report"))?;
    let mut out: Vec<SettlementDay> = Vec::new();
    for r in &rows {
        let day: i64 = get(r, "day")?;
        let kind: String = get(r, "kind")?;
        let total: i64 = get(r, "total")?;
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

pub(crate) async fn list_cards(p: &P, limit: u32, offset: u32) -> Result<Vec<CardRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {CARD_COLS} FROM issuer_cards ORDER BY card_id LIMIT $1 OFFSET $2"
    ))
    .bind(i64::from(limit))
    .bind(i64::from(offset))
    .fetch_all(&p.reader)
    .await
    .map_err(err("list_cards"))?;
    rows.iter().map(card_row).collect()
}

pub(crate) async fn list_authorizations(
    p: &P,
    limit: u32,
    offset: u32,
) -> Result<Vec<AuthorizationRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {AUTH_COLS} FROM issuer_authorizations \
         ORDER BY created_at_ms DESC, authorization_id DESC LIMIT $1 OFFSET $2"
    ))
    .bind(i64::from(limit))
    .bind(i64::from(offset))
    .fetch_all(&p.reader)
    .await
    .map_err(err("list_authorizations"))?;
    rows.iter().map(auth_row).collect()
}

pub(crate) async fn audit(p: &P) -> Result<Audit> {
    const OP: &str = "audit";
    // One read transaction: a consistent snapshot of cards, authorizations and ledger.
    let mut c = p.reader.begin().await.map_err(err(OP))?;
    let ledger_sum: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM issuer_ledger")
            .fetch_one(&mut *c)
            .await
            .map_err(err(OP))?;
    let unbalanced: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT movement_id FROM issuer_ledger GROUP BY movement_id \
         HAVING SUM(amount) <> 0) AS t",
    )
    .fetch_one(&mut *c)
    .await
    .map_err(err(OP))?;
    let rows = sqlx::query(
        "SELECT k.card_id, k.credit_limit, k.available, \
           CAST(COALESCE((SELECT SUM(a.held - a.refunded + a.captured) FROM issuer_authorizations a \
             WHERE a.card_id = k.card_id), 0) AS BIGINT) AS used, \
           CAST(COALESCE((SELECT SUM(l.amount) FROM issuer_ledger l \
             WHERE l.account = 'card:' || k.card_id || ':available'), 0) AS BIGINT) AS booked \
         FROM issuer_cards k ORDER BY k.card_id",
    )
    .fetch_all(&mut *c)
    .await
    .map_err(err(OP))?;
    let _ = c.rollback().await;
    let mut card_mismatches = Vec::new();
    for r in &rows {
        let id: String = get(r, "card_id")?;
        let limit: i64 = get(r, "credit_limit")?;
        let available: i64 = get(r, "available")?;
        let used: i64 = get(r, "used")?;
        let booked: i64 = get(r, "booked")?;
        if available != limit - used || available != booked {
            card_mismatches.push(id);
        }
    }
    Ok(Audit {
        ledger_sum,
        unbalanced_movements: to_u64(unbalanced, "count")?,
        cards: rows.len() as u64,
        card_mismatches,
    })
}

// ------------------------------------------------------------------------------------------
// Carrier

const SHIP_COLS: &str = "tracking_number, merchant_id, order_id, cardholder_id, addressee, address, \
     parcel, status, issuer_id, delivered_at_ms, created_at_ms, updated_at_ms";

fn ship_row(r: &DbRow) -> Result<ShipmentRecord> {
    let status: String = get(r, "status")?;
    let addressee: String = get(r, "addressee")?;
    let address: String = get(r, "address")?;
    Ok(ShipmentRecord {
        tracking_number: get(r, "tracking_number")?,
        merchant_id: get(r, "merchant_id")?,
        order_id: get(r, "order_id")?,
        cardholder_id: get(r, "cardholder_id")?,
        addressee: Secret::new(addressee),
        address: Secret::new(address),
        parcel: get(r, "parcel")?,
        status: ShipmentStatus::decode(&status)?,
        issuer_id: get(r, "issuer_id")?,
        delivered_at_ms: get(r, "delivered_at_ms")?,
        created_at_ms: get(r, "created_at_ms")?,
        updated_at_ms: get(r, "updated_at_ms")?,
    })
}

async fn add_event(
    c: &mut Conn,
    tracking: &str,
    status: ShipmentStatus,
    note: Option<&str>,
    at_ms: i64,
    op: &'static str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO carrier_events (tracking_number, status, note, at_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(tracking)
    .bind(status.as_str())
    .bind(note.map(short))
    .bind(at_ms)
    .execute(&mut *c)
    .await
    .map_err(err(op))?;
    Ok(())
}

async fn accept_shipment_in(c: &mut Conn, s: &NewShipment) -> Result<Inserted<ShipmentRecord>> {
    const OP: &str = "accept_shipment";
    check_id("merchant id", &s.merchant_id)?;
    check_id("order id", &s.order_id)?;
    check_id("tracking number", &s.tracking_number)?;
    check_id("issuer id", &s.issuer_id)?;
    let r = sqlx::query(
        "INSERT INTO carrier_shipments (tracking_number, merchant_id, order_id, cardholder_id, \
         addressee, address, parcel, status, created_at_ms, updated_at_ms, issuer_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) ON CONFLICT DO NOTHING",
    )
    .bind(&s.tracking_number)
    .bind(&s.merchant_id)
    .bind(&s.order_id)
    .bind(&s.cardholder_id)
    .bind(s.addressee.expose())
    .bind(s.address.expose())
    .bind(&s.parcel)
    .bind(ShipmentStatus::Accepted.as_str())
    .bind(s.now_ms)
    .bind(&s.issuer_id)
    .execute(&mut *c)
    .await
    .map_err(err(OP))?;
    if r.rows_affected() == 0 {
        let row = sqlx::query(&format!(
            "SELECT {SHIP_COLS} FROM carrier_shipments WHERE merchant_id = $1 AND order_id = $2"
        ))
        .bind(&s.merchant_id)
        .bind(&s.order_id)
        .fetch_optional(&mut *c)
        .await
        .map_err(err(OP))?;
        return match row {
            Some(row) => Ok(Inserted {
                record: ship_row(&row)?,
                created: false,
            }),
            None => Err(StoreError::Conflict(
                "the tracking number is already used for another shipment".into(),
            )),
        };
    }
    add_event(
        c,
        &s.tracking_number,
        ShipmentStatus::Accepted,
        None,
        s.now_ms,
        OP,
    )
    .await?;
    Ok(Inserted {
        record: ShipmentRecord {
            tracking_number: s.tracking_number.clone(),
            merchant_id: s.merchant_id.clone(),
            order_id: s.order_id.clone(),
            cardholder_id: s.cardholder_id.clone(),
            addressee: s.addressee.clone(),
            address: s.address.clone(),
            parcel: s.parcel.clone(),
            status: ShipmentStatus::Accepted,
            issuer_id: Some(s.issuer_id.clone()),
            delivered_at_ms: None,
            created_at_ms: s.now_ms,
            updated_at_ms: s.now_ms,
        },
        created: true,
    })
}

pub(crate) async fn get_shipment(
    p: &P,
    merchant_id: &str,
    order_id: &str,
) -> Result<Option<ShipmentRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {SHIP_COLS} FROM carrier_shipments WHERE merchant_id = $1 AND order_id = $2"
    ))
    .bind(merchant_id)
    .bind(order_id)
    .fetch_optional(&p.reader)
    .await
    .map_err(err("get_shipment"))?;
    row.as_ref().map(ship_row).transpose()
}

pub(crate) async fn shipment_by_tracking(p: &P, tracking: &str) -> Result<Option<ShipmentRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {SHIP_COLS} FROM carrier_shipments WHERE tracking_number = $1"
    ))
    .bind(tracking)
    .fetch_optional(&p.reader)
    .await
    .map_err(err("shipment_by_tracking"))?;
    row.as_ref().map(ship_row).transpose()
}

async fn advance_shipment_in(
    c: &mut Conn,
    tracking: &str,
    from: ShipmentStatus,
    to: ShipmentStatus,
    note: Option<&str>,
    now_ms: i64,
) -> Result<bool> {
    const OP: &str = "advance_shipment";
    let r = sqlx::query(
        "UPDATE carrier_shipments SET status = $3, updated_at_ms = $4, \
         delivered_at_ms = COALESCE(delivered_at_ms, $5) \
         WHERE tracking_number = $1 AND status = $2",
    )
    .bind(tracking)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(now_ms)
    .bind((to == ShipmentStatus::Delivered).then_some(now_ms))
    .execute(&mut *c)
    .await
    .map_err(err(OP))?;
    if r.rows_affected() == 0 {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT status FROM carrier_shipments WHERE tracking_number = $1")
                .bind(tracking)
                .fetch_optional(&mut *c)
                .await
                .map_err(err(OP))?;
        return match exists {
            None => Err(StoreError::NotFound("shipment")),
            Some(_) => Ok(false),
        };
    }
    add_event(c, tracking, to, note, now_ms, OP).await?;
    Ok(true)
}

pub(crate) async fn shipment_events(p: &P, tracking: &str) -> Result<Vec<ShipmentEvent>> {
    let rows = sqlx::query(
        "SELECT status, note, at_ms FROM carrier_events WHERE tracking_number = $1 ORDER BY id",
    )
    .bind(tracking)
    .fetch_all(&p.reader)
    .await
    .map_err(err("shipment_events"))?;
    rows.iter()
        .map(|r| {
            let s: String = get(r, "status")?;
            Ok(ShipmentEvent {
                status: ShipmentStatus::decode(&s)?,
                at_ms: get(r, "at_ms")?,
                note: get(r, "note")?,
            })
        })
        .collect()
}

pub(crate) async fn list_shipments(p: &P, limit: u32, offset: u32) -> Result<Vec<ShipmentRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {SHIP_COLS} FROM carrier_shipments \
         ORDER BY created_at_ms DESC, tracking_number DESC LIMIT $1 OFFSET $2"
    ))
    .bind(i64::from(limit))
    .bind(i64::from(offset))
    .fetch_all(&p.reader)
    .await
    .map_err(err("list_shipments"))?;
    rows.iter().map(ship_row).collect()
}

// ------------------------------------------------------------------------------------------
// Write operations: each clones its arguments into a job run by `write`.

macro_rules! write_op {
    ($name:ident, $inner:ident, ($($arg:ident: $ty:ty => $own:expr),*) -> $ret:ty) => {
        pub(crate) async fn $name(p: &P, $($arg: $ty),*) -> Result<$ret> {
            $(let $arg = $own;)*
            write(
                p,
                stringify!($name),
                Box::new(move |c: &mut Conn| Box::pin(async move { $inner(c, $(&$arg),*).await })),
            )
            .await
        }
    };
}

write_op!(idempotency_put, idempotency_put_in,
    (scope: &str => scope.to_owned(), key: &str => key.to_owned(),
     resp: &StoredResponse => resp.clone()) -> StoredResponse);
write_op!(put_order_form, put_order_form_in, (f: &OrderFormRecord => f.clone()) -> ());
write_op!(insert_order, insert_order_in,
    (o: &NewOrder => o.clone(), outbox: &[NewOutboxMessage] => outbox.to_vec())
    -> Inserted<OrderRecord>);
write_op!(transition, transition_in, (t: &Transition => t.clone()) -> bool);
write_op!(enroll_card, enroll_card_in, (card: &NewCard => card.clone()) -> CardRecord);
write_op!(authorize, authorize_in,
    (req: &AuthorizeRequest => req.clone()) -> Inserted<AuthorizationRecord>);
pub(crate) async fn void(p: &P, merchant_id: &str, order_id: &str, now_ms: i64) -> Result<Applied> {
    let (m, o) = (merchant_id.to_owned(), order_id.to_owned());
    write(
        p,
        "void",
        Box::new(move |c: &mut Conn| Box::pin(async move { void_in(c, &m, &o, now_ms).await })),
    )
    .await
}
write_op!(accept_shipment, accept_shipment_in,
    (s: &NewShipment => s.clone()) -> Inserted<ShipmentRecord>);

pub(crate) async fn idempotency_purge(p: &P, before_ms: i64) -> Result<u64> {
    write(
        p,
        "idempotency_purge",
        Box::new(move |c: &mut Conn| {
            Box::pin(async move { idempotency_purge_in(c, before_ms).await })
        }),
    )
    .await
}

pub(crate) async fn claim_outbox(
    p: &P,
    now_ms: i64,
    lease_ms: i64,
    limit: u32,
) -> Result<Vec<OutboxMessage>> {
    write(
        p,
        "claim_outbox",
        Box::new(move |c: &mut Conn| {
            Box::pin(async move { claim_outbox_in(c, now_ms, lease_ms, limit).await })
        }),
    )
    .await
}

pub(crate) async fn complete_outbox(p: &P, id: i64) -> Result<()> {
    write(
        p,
        "complete_outbox",
        Box::new(move |c: &mut Conn| Box::pin(async move { complete_outbox_in(c, id).await })),
    )
    .await
}

pub(crate) async fn retry_outbox(p: &P, id: i64, next_ms: i64, error: &str) -> Result<()> {
    let error = error.to_owned();
    write(
        p,
        "retry_outbox",
        Box::new(move |c: &mut Conn| {
            Box::pin(async move { retry_outbox_in(c, id, next_ms, &error).await })
        }),
    )
    .await
}

pub(crate) async fn set_card_status(p: &P, card_id: &str, status: CardStatus) -> Result<bool> {
    let card_id = card_id.to_owned();
    write(
        p,
        "set_card_status",
        Box::new(move |c: &mut Conn| {
            Box::pin(async move { set_card_status_in(c, &card_id, status).await })
        }),
    )
    .await
}

pub(crate) async fn capture(
    p: &P,
    merchant_id: &str,
    order_id: &str,
    amount: Option<u64>,
    now_ms: i64,
) -> Result<Applied> {
    let (m, o) = (merchant_id.to_owned(), order_id.to_owned());
    write(
        p,
        "capture",
        Box::new(move |c: &mut Conn| {
            Box::pin(async move { capture_in(c, &m, &o, amount, now_ms).await })
        }),
    )
    .await
}

pub(crate) async fn refund(
    p: &P,
    merchant_id: &str,
    order_id: &str,
    refund_id: &str,
    amount: u64,
    now_ms: i64,
) -> Result<Applied> {
    let (m, o, r) = (
        merchant_id.to_owned(),
        order_id.to_owned(),
        refund_id.to_owned(),
    );
    write(
        p,
        "refund",
        Box::new(move |c: &mut Conn| {
            Box::pin(async move { refund_in(c, &m, &o, &r, amount, now_ms).await })
        }),
    )
    .await
}

pub(crate) async fn advance_shipment(
    p: &P,
    tracking: &str,
    from: ShipmentStatus,
    to: ShipmentStatus,
    note: Option<&str>,
    now_ms: i64,
) -> Result<bool> {
    let (t, n) = (tracking.to_owned(), note.map(str::to_owned));
    write(
        p,
        "advance_shipment",
        Box::new(move |c: &mut Conn| {
            Box::pin(
                async move { advance_shipment_in(c, &t, from, to, n.as_deref(), now_ms).await },
            )
        }),
    )
    .await
}

// ------------------------------------------------------------------------------------------
// Counts for metrics

pub(crate) async fn count_authorizations(
    p: &P,
) -> Result<Vec<(AuthorizationStatus, Option<DeclineCode>, u64)>> {
    let rows = sqlx::query(
        "SELECT status, decline_code, COUNT(*) AS n FROM issuer_authorizations \
         GROUP BY status, decline_code ORDER BY status, decline_code",
    )
    .fetch_all(&p.reader)
    .await
    .map_err(err("count_authorizations"))?;
    rows.iter()
        .map(|r| {
            let status: String = get(r, "status")?;
            let code: Option<String> = get(r, "decline_code")?;
            Ok((
                AuthorizationStatus::decode(&status)?,
                code.as_deref().map(DeclineCode::decode).transpose()?,
                to_u64(get(r, "n")?, "count")?,
            ))
        })
        .collect()
}

pub(crate) async fn count_shipments_by_status(p: &P) -> Result<Vec<(ShipmentStatus, u64)>> {
    count_by(
        p,
        "SELECT status AS k, COUNT(*) AS n FROM carrier_shipments GROUP BY status ORDER BY status",
        "count_shipments_by_status",
        ShipmentStatus::decode,
    )
    .await
}
