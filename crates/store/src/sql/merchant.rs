//! The merchant's SQL: order forms, orders and their state transitions, the outbox.

use warifu_core::OrderId;
use super::common::*;
use super::lifecycle::put_order_fact_in;
use crate::error::{Result, StoreError};
use crate::sql::{check_id, short, to_i64, to_u64};
use crate::types::*;

async fn put_order_form_in(c: &mut Conn, f: &OrderFormRecord) -> Result<()> {
    check_id("order id", &f.order_id)?;
    let q = query(
        "INSERT INTO merchant_order_forms (order_id, form_json, expires_at_ms, created_at_ms) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(f.order_id.as_str())
    .bind(&f.form_json)
    .bind(f.expires_at_ms)
    .bind(f.created_at_ms);
    insert_new(&mut *c, "put_order_form", q, "an order form").await
}

write_op!(put_order_form = put_order_form_in(f: &OrderFormRecord => f.clone()) -> ());

pub(crate) async fn get_order_form(p: &P, order_id: &OrderId) -> Result<Option<OrderFormRecord>> {
    let q = query(
        "SELECT order_id, form_json, expires_at_ms, created_at_ms FROM merchant_order_forms \
         WHERE order_id = $1",
    )
    .bind(order_id.as_str());
    optional(&p.reader, "get_order_form", q, |r| {
        Ok(OrderFormRecord {
            order_id: get::<String>(r, "order_id")?.into(),
            form_json: get(r, "form_json")?,
            expires_at_ms: get(r, "expires_at_ms")?,
            created_at_ms: get(r, "created_at_ms")?,
        })
    })
    .await
}

const ORDER_COLS: &str = "order_id, cardholder_id, issuer_id, carrier_id, merchant_view, amount, \
     currency, state, decline_code, authorization_id, tracking_number, carrier_part, version, \
     created_at_ms, updated_at_ms";

fn order_row(r: &DbRow) -> Result<OrderRecord> {
    let state: String = get(r, "state")?;
    Ok(OrderRecord {
        order_id: get::<String>(r, "order_id")?.into(),
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

fn order_by_id() -> String {
    format!("SELECT {ORDER_COLS} FROM merchant_orders WHERE order_id = $1")
}

/// Enqueues `msgs` for the order; returns them as stored.
async fn enqueue(
    c: &mut Conn,
    order_id: &OrderId,
    msgs: &[NewOutboxMessage],
    now_ms: i64,
    op: &'static str,
) -> Result<Vec<OutboxMessage>> {
    let sql = format!(
        "INSERT INTO merchant_outbox \
         (order_id, kind, payload, attempts, next_attempt_at_ms, done, created_at_ms) \
         VALUES ($1, $2, $3, 0, $4, FALSE, $5) RETURNING {OUTBOX_COLS}"
    );
    let mut out = Vec::with_capacity(msgs.len());
    for m in msgs {
        check_id("outbox kind", &m.kind)?;
        let q = query(&sql)
            .bind(order_id.as_str())
            .bind(&m.kind)
            .bind(&m.payload)
            .bind(now_ms.saturating_add(m.due_in_ms.max(0)))
            .bind(now_ms);
        out.push(one(&mut *c, op, q, outbox_row).await?);
    }
    Ok(out)
}

async fn insert_order_in(
    c: &mut Conn,
    o: &NewOrder,
    outbox: &[NewOutboxMessage],
) -> Result<Inserted<AppliedTransition>> {
    const OP: &str = "insert_order";
    check_id("order id", &o.order_id)?;
    check_id("cardholder id", &o.cardholder_id)?;
    check_id("issuer id", &o.issuer_id)?;
    let amount = to_i64(o.amount, "amount")?;
    let q = query(
        "INSERT INTO merchant_orders (order_id, cardholder_id, issuer_id, carrier_id, \
         merchant_view, amount, currency, state, decline_code, authorization_id, tracking_number, \
         carrier_part, version, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, $9, 1, $10, $10) \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(o.order_id.as_str())
    .bind(&o.cardholder_id)
    .bind(&o.issuer_id)
    .bind(&o.carrier_id)
    .bind(&o.merchant_view)
    .bind(amount)
    .bind(&o.currency)
    .bind(OrderState::Received.as_str())
    .bind(&o.carrier_part)
    .bind(o.now_ms);
    if exec(&mut *c, OP, q).await? == 0 {
        let sql = order_by_id();
        let order = one(&mut *c, OP, query(&sql).bind(o.order_id.as_str()), order_row).await?;
        return Ok(Inserted {
            record: AppliedTransition {
                order,
                outbox: Vec::new(),
            },
            created: false,
        });
    }
    let outbox = enqueue(c, &o.order_id, outbox, o.now_ms, OP).await?;
    Ok(Inserted {
        record: AppliedTransition {
            order: OrderRecord {
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
            outbox,
        },
        created: true,
    })
}

async fn insert_order_only(
    c: &mut Conn,
    o: &NewOrder,
    outbox: &[NewOutboxMessage],
) -> Result<Inserted<OrderRecord>> {
    let i = insert_order_in(c, o, outbox).await?;
    Ok(Inserted {
        record: i.record.order,
        created: i.created,
    })
}

write_op!(insert_order = insert_order_only(o: &NewOrder => o.clone(),
    outbox: &[NewOutboxMessage] => outbox.to_vec()) -> Inserted<OrderRecord>);

async fn insert_order_pinned_in(
    c: &mut Conn,
    pin: &Pin,
    o: &NewOrder,
    outbox: &[NewOutboxMessage],
) -> Result<Inserted<AppliedTransition>> {
    let first = idempotency_put_in(
        &mut *c,
        &pin.scope,
        &pin.key,
        &StoredResponse {
            status: 0,
            body: Vec::new(),
            fingerprint: pin.fingerprint.clone(),
            created_at_ms: o.now_ms,
        },
    )
    .await?;
    if first.fingerprint != pin.fingerprint {
        return Err(StoreError::Conflict(
            "another request was pinned under this key".into(),
        ));
    }
    insert_order_in(c, o, outbox).await
}

write_op!(insert_order_pinned = insert_order_pinned_in(pin: &Pin => pin.clone(),
    o: &NewOrder => o.clone(), outbox: &[NewOutboxMessage] => outbox.to_vec())
    -> Inserted<AppliedTransition>);

pub(crate) async fn get_order(p: &P, order_id: &OrderId) -> Result<Option<OrderRecord>> {
    let sql = order_by_id();
    optional(
        &p.reader,
        "get_order",
        query(&sql).bind(order_id.as_str()),
        order_row,
    )
    .await
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
    let mut q = query(&sql);
    if let Some(c) = &f.cardholder_id {
        q = q.bind(c);
    }
    if let Some(s) = f.state {
        q = q.bind(s.as_str());
    }
    let q = q
        .bind(i64::from(f.limit.unwrap_or(100)))
        .bind(i64::from(f.offset.unwrap_or(0)));
    all(&p.reader, "list_orders", q, order_row).await
}

/// Every change of an order's state passes here, inside its transaction: the compare-and-set,
/// the messages it enqueues and completes, the facts and answers it stores.
async fn transition_in(c: &mut Conn, t: &Transition) -> Result<Option<AppliedTransition>> {
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
         WHERE order_id = $1 AND version = COALESCE($8, version) AND state IN ({}) \
         RETURNING {ORDER_COLS}",
        placeholders(9, t.from.len())
    );
    let mut q = query(&sql)
        .bind(t.order_id.as_str())
        .bind(t.to.as_str())
        .bind(&t.decline_code)
        .bind(&t.authorization_id)
        .bind(&t.tracking_number)
        .bind(t.clear_carrier_part)
        .bind(t.now_ms)
        .bind(t.version);
    for s in &t.from {
        q = q.bind(s.as_str());
    }
    let Some(order) = optional(&mut *c, OP, q, order_row).await? else {
        let q = query_scalar("SELECT version FROM merchant_orders WHERE order_id = $1")
            .bind(t.order_id.as_str());
        let exists: Option<i64> = scalar_opt(&mut *c, OP, q).await?;
        return match exists {
            None => Err(StoreError::NotFound("order")),
            Some(_) => Ok(None),
        };
    };
    let outbox = enqueue(c, &t.order_id, &t.outbox, t.now_ms, OP).await?;
    for id in &t.complete_outbox {
        let q = query(COMPLETE).bind(*id).bind(Vec::<u8>::new());
        exec(&mut *c, OP, q).await?;
    }
    for f in &t.facts {
        put_order_fact_in(&mut *c, f).await?;
    }
    for (scope, key, response) in &t.records {
        idempotency_put_in(&mut *c, scope, key, response).await?;
    }
    super::webhooks::on_transition(c, t).await?;
    Ok(Some(AppliedTransition { order, outbox }))
}

write_op!(transition = transition_in(t: &Transition => t.clone()) -> Option<AppliedTransition>);

const OUTBOX_COLS: &str =
    "id, order_id, kind, payload, attempts, next_attempt_at_ms, done, last_error, created_at_ms";

fn outbox_row(r: &DbRow) -> Result<OutboxMessage> {
    let attempts: i64 = get(r, "attempts")?;
    Ok(OutboxMessage {
        id: get(r, "id")?,
        order_id: get::<String>(r, "order_id")?.into(),
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
    let sql = format!(
        "UPDATE merchant_outbox SET attempts = attempts + 1, next_attempt_at_ms = $2 \
         WHERE done = FALSE AND next_attempt_at_ms <= $1 AND id IN (\
           SELECT id FROM merchant_outbox WHERE done = FALSE AND next_attempt_at_ms <= $1 \
           ORDER BY next_attempt_at_ms, id LIMIT $3{SKIP_LOCKED}) \
         RETURNING {OUTBOX_COLS}"
    );
    let q = query(&sql)
        .bind(now_ms)
        .bind(now_ms.saturating_add(lease_ms.max(0)))
        .bind(i64::from(limit));
    let mut out = all(&mut *c, "claim_outbox", q, outbox_row).await?;
    out.sort_by_key(|m| m.id);
    Ok(out)
}

write_op!(claim_outbox = claim_outbox_in(now_ms: i64, lease_ms: i64, limit: u32)
    -> Vec<OutboxMessage>);

/// Marks a message done and erases the payload of the kinds that carry another party's
/// sealed part (`authorize`: the issuer's, `ship`: the carrier's): once the recipient has
/// answered, the merchant keeps no copy of it (issue 19, PROTOCOL.md §19.5). The other
/// kinds' payloads stay (the operator's refund ids are read back from them).
const COMPLETE: &str = "UPDATE merchant_outbox SET done = TRUE, payload = CASE WHEN kind IN \
     ('authorize', 'ship') THEN $2 ELSE payload END WHERE id = $1";

async fn complete_outbox_in(c: &mut Conn, id: i64) -> Result<()> {
    let q = query(COMPLETE).bind(id).bind(Vec::<u8>::new());
    if exec(&mut *c, "complete_outbox", q).await? == 0 {
        return Err(StoreError::NotFound("outbox message"));
    }
    Ok(())
}

write_op!(complete_outbox = complete_outbox_in(id: i64) -> ());

async fn hold_outbox_in(c: &mut Conn, id: i64, due_ms: i64) -> Result<bool> {
    let q = query(
        "UPDATE merchant_outbox SET next_attempt_at_ms = $2 \
         WHERE id = $1 AND done = FALSE AND next_attempt_at_ms < $2",
    )
    .bind(id)
    .bind(due_ms);
    Ok(exec(&mut *c, "hold_outbox", q).await? > 0)
}

write_op!(hold_outbox = hold_outbox_in(id: i64, due_ms: i64) -> bool);

async fn retry_outbox_in(c: &mut Conn, id: i64, next_ms: i64, error: &str) -> Result<()> {
    const OP: &str = "retry_outbox";
    let q = query(
        "UPDATE merchant_outbox SET next_attempt_at_ms = $2, last_error = $3 \
         WHERE id = $1 AND done = FALSE",
    )
    .bind(id)
    .bind(next_ms)
    .bind(short(error));
    if exec(&mut *c, OP, q).await? == 0 {
        let q = query_scalar("SELECT id FROM merchant_outbox WHERE id = $1").bind(id);
        let exists: Option<i64> = scalar_opt(&mut *c, OP, q).await?;
        if exists.is_none() {
            return Err(StoreError::NotFound("outbox message"));
        }
    }
    Ok(())
}

write_op!(retry_outbox = retry_outbox_in(id: i64, next_ms: i64,
    error: &str => error.to_owned()) -> ());

pub(crate) async fn outbox_for_order(p: &P, order_id: &OrderId) -> Result<Vec<OutboxMessage>> {
    let sql = format!("SELECT {OUTBOX_COLS} FROM merchant_outbox WHERE order_id = $1 ORDER BY id");
    let q = query(&sql).bind(order_id.as_str());
    all(&p.reader, "outbox_for_order", q, outbox_row).await
}

pub(crate) async fn outbox_pending(p: &P) -> Result<u64> {
    let q = query_scalar("SELECT COUNT(*) FROM merchant_outbox WHERE done = FALSE");
    count(&p.reader, "outbox_pending", q).await
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

bucket_query!(
    /// Orders by the bucket they were received in, under their outcome so far: the decline
    /// code of a declined order, `approved` once authorized, else the state.
    order_buckets = "SELECT (created_at_ms / $2) * $2 AS b, \
         CASE WHEN state = 'declined' THEN COALESCE(decline_code, state) \
              WHEN authorization_id IS NOT NULL THEN 'approved' ELSE state END AS k, \
         COUNT(*) AS n FROM merchant_orders WHERE created_at_ms >= $1 \
         GROUP BY b, k ORDER BY b, k"
);

bucket_query!(
    /// Messages not done, by the bucket they were enqueued in and their kind; those enqueued
    /// before `since_ms` count in its bucket.
    outbox_pending_buckets = "SELECT \
         ((CASE WHEN created_at_ms < $1 THEN $1 ELSE created_at_ms END) / $2) * $2 AS b, \
         kind AS k, COUNT(*) AS n FROM merchant_outbox WHERE done = FALSE \
         GROUP BY b, k ORDER BY b, k"
);
