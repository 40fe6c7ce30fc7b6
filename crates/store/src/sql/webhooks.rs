//! The merchant's webhook SQL: the event recorded in an order's transition (`on_transition`,
//! called from the merchant's `transition_in`), endpoints, claiming deliveries in order per
//! order, the attempt log, listing and replay.

use super::common::*;
use crate::error::{Result, StoreError};
use crate::sql::{check_id, short, to_i64, to_u64};
use crate::types::Transition;
use crate::webhooks::*;

/// Called in the transaction of an applied order transition: records the event it is (see
/// [`event_type`]; a transition that keeps the state records `order.refunded` when the
/// issuer's receipt shows more refunded than the order's last event) with one pending
/// delivery per enabled endpoint subscribed to its type. Nothing when no endpoint is enabled.
pub(crate) async fn on_transition(c: &mut Conn, t: &Transition) -> Result<()> {
    const OP: &str = "webhook_event";
    let q = query_scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE enabled = TRUE");
    if count(&mut *c, OP, q).await? == 0 {
        return Ok(());
    }
    let from = match t.from.as_slice() {
        [one] => Some(*one),
        many if !many.contains(&t.to) => None,
        _ => return Ok(()),
    };
    let q = query(
        "SELECT o.order_id, o.cardholder_id, o.amount, o.currency, o.state, o.decline_code, \
         o.authorization_id, o.tracking_number, f.body AS payment \
         FROM merchant_orders o LEFT JOIN merchant_order_facts f \
         ON f.order_id = o.order_id AND f.kind = 'payment' WHERE o.order_id = $1",
    )
    .bind(t.order_id.as_str());
    let mut ev = one(&mut *c, OP, q, |r| {
        let payment: Option<Vec<u8>> = get(r, "payment")?;
        let receipt: serde_json::Value = payment
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let money = |k: &str| receipt.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        Ok(WebhookEvent {
            seq: 0,
            event_id: String::new(),
            event_type: String::new(),
            order_id: get::<String>(r, "order_id")?.into(),
            previous_state: from.map(|s| s.as_str().to_owned()),
            state: get(r, "state")?,
            cardholder_id: get(r, "cardholder_id")?,
            amount: to_u64(get(r, "amount")?, "amount")?,
            currency: get(r, "currency")?,
            captured: money("captured"),
            refunded: money("refunded"),
            decline_code: get(r, "decline_code")?,
            authorization_id: get(r, "authorization_id")?,
            tracking_number: get(r, "tracking_number")?,
            created_at_ms: t.now_ms,
        })
    })
    .await?;
    let kind = match event_type(from, t.to) {
        Some(k) => k,
        None if from.is_none_or(|f| f == t.to) && ev.refunded > 0 => {
            let q = query_scalar(
                "SELECT refunded FROM webhook_events WHERE order_id = $1 ORDER BY seq DESC LIMIT 1",
            )
            .bind(t.order_id.as_str());
            let last: Option<i64> = scalar_opt(&mut *c, OP, q).await?;
            if last.unwrap_or(0) >= to_i64(ev.refunded, "refunded")? {
                return Ok(());
            }
            "order.refunded"
        }
        None => return Ok(()),
    };
    ev.event_type = kind.to_owned();
    ev.event_id = new_event_id()?;
    let q = query_scalar(
        "INSERT INTO webhook_events (event_id, order_id, event_type, previous_state, state, \
         cardholder_id, amount, currency, captured, refunded, decline_code, authorization_id, \
         tracking_number, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING seq",
    )
    .bind(&ev.event_id)
    .bind(ev.order_id.as_str())
    .bind(&ev.event_type)
    .bind(&ev.previous_state)
    .bind(&ev.state)
    .bind(&ev.cardholder_id)
    .bind(to_i64(ev.amount, "amount")?)
    .bind(&ev.currency)
    .bind(to_i64(ev.captured, "captured")?)
    .bind(to_i64(ev.refunded, "refunded")?)
    .bind(&ev.decline_code)
    .bind(&ev.authorization_id)
    .bind(&ev.tracking_number)
    .bind(ev.created_at_ms);
    let seq: i64 = scalar(&mut *c, OP, q).await?;
    let q = query(
        "INSERT INTO webhook_deliveries (seq, endpoint_id, order_id, status, attempts, \
         next_attempt_at_ms, created_at_ms) \
         SELECT $1, endpoint_id, $2, 'pending', 0, $3, $3 FROM webhook_endpoints \
         WHERE enabled = TRUE AND (events = '' OR (',' || events || ',') LIKE ('%,' || $4 || ',%'))",
    )
    .bind(seq)
    .bind(ev.order_id.as_str())
    .bind(ev.created_at_ms)
    .bind(&ev.event_type);
    exec(&mut *c, OP, q).await?;
    Ok(())
}

fn new_event_id() -> Result<String> {
    use warifu_core::rand::Randomness as _;
    let mut b = [0u8; 16];
    warifu_core::rand::OsRandom
        .fill(&mut b)
        .map_err(|_| StoreError::Invalid("no randomness for an event id".into()))?;
    Ok(format!(
        "evt_{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    ))
}

fn check_events(events: &[String]) -> Result<()> {
    if let Some(bad) = events.iter().find(|e| !is_event_type(e)) {
        return Err(StoreError::Invalid(format!("unknown event type {bad:?}")));
    }
    Ok(())
}

async fn add_webhook_endpoint_in(c: &mut Conn, e: &WebhookEndpoint) -> Result<()> {
    check_id("endpoint id", &e.endpoint_id)?;
    check_id("webhook URL", &e.url)?;
    check_events(&e.events)?;
    let q = query(
        "INSERT INTO webhook_endpoints (endpoint_id, url, events, secret_salt, enabled, \
         created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&e.endpoint_id)
    .bind(&e.url)
    .bind(e.events.join(","))
    .bind(&e.secret_salt)
    .bind(e.enabled)
    .bind(e.created_at_ms)
    .bind(e.updated_at_ms);
    insert_new(&mut *c, "add_webhook_endpoint", q, "a webhook endpoint").await
}

write_op!(add_webhook_endpoint = add_webhook_endpoint_in(e: &WebhookEndpoint => e.clone()) -> ());

async fn change_webhook_endpoint_in(
    c: &mut Conn,
    id: &str,
    ch: &EndpointChange,
    now_ms: i64,
) -> Result<bool> {
    let events = ch.events.as_ref().map(|e| e.join(","));
    if let Some(url) = &ch.url {
        check_id("webhook URL", url)?;
    }
    check_events(ch.events.as_deref().unwrap_or_default())?;
    let q = query(
        "UPDATE webhook_endpoints SET url = COALESCE($2, url), events = COALESCE($3, events), \
         enabled = COALESCE($4, enabled), secret_salt = COALESCE($5, secret_salt), \
         updated_at_ms = $6 WHERE endpoint_id = $1",
    )
    .bind(id)
    .bind(&ch.url)
    .bind(events)
    .bind(ch.enabled)
    .bind(&ch.secret_salt)
    .bind(now_ms);
    Ok(exec(&mut *c, "change_webhook_endpoint", q).await? > 0)
}

write_op!(change_webhook_endpoint = change_webhook_endpoint_in(id: &str => id.to_owned(),
    ch: &EndpointChange => ch.clone(), now_ms: i64) -> bool);

fn endpoint_row(r: &DbRow) -> Result<WebhookEndpoint> {
    let events: String = get(r, "events")?;
    Ok(WebhookEndpoint {
        endpoint_id: get(r, "endpoint_id")?,
        url: get(r, "url")?,
        events: events
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        secret_salt: get(r, "secret_salt")?,
        enabled: get(r, "enabled")?,
        created_at_ms: get(r, "created_at_ms")?,
        updated_at_ms: get(r, "updated_at_ms")?,
    })
}

pub(crate) async fn webhook_endpoints(p: &P) -> Result<Vec<WebhookEndpoint>> {
    let q = query(
        "SELECT endpoint_id, url, events, secret_salt, enabled, created_at_ms, updated_at_ms \
         FROM webhook_endpoints ORDER BY endpoint_id",
    );
    all(&p.reader, "webhook_endpoints", q, endpoint_row).await
}

const DELIVERY_COLS: &str = "d.delivery_id, d.endpoint_id, d.status, d.attempts, \
     d.next_attempt_at_ms, d.first_attempt_at_ms, d.last_status, d.last_error, \
     d.delivered_at_ms, d.created_at_ms AS d_created_at_ms, e.url, e.secret_salt, \
     v.seq, v.event_id, v.event_type, v.order_id, v.previous_state, v.state, v.cardholder_id, \
     v.amount, v.currency, v.captured, v.refunded, v.decline_code, v.authorization_id, \
     v.tracking_number, v.created_at_ms";

const DELIVERY_FROM: &str = "webhook_deliveries d \
     JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id \
     JOIN webhook_events v ON v.seq = d.seq";

fn delivery_row(r: &DbRow) -> Result<WebhookDelivery> {
    let status: String = get(r, "status")?;
    let last_status: Option<i64> = get(r, "last_status")?;
    let attempts: i64 = get(r, "attempts")?;
    Ok(WebhookDelivery {
        delivery_id: get(r, "delivery_id")?,
        event: WebhookEvent {
            seq: get(r, "seq")?,
            event_id: get(r, "event_id")?,
            event_type: get(r, "event_type")?,
            order_id: get::<String>(r, "order_id")?.into(),
            previous_state: get(r, "previous_state")?,
            state: get(r, "state")?,
            cardholder_id: get(r, "cardholder_id")?,
            amount: to_u64(get(r, "amount")?, "amount")?,
            currency: get(r, "currency")?,
            captured: to_u64(get(r, "captured")?, "captured")?,
            refunded: to_u64(get(r, "refunded")?, "refunded")?,
            decline_code: get(r, "decline_code")?,
            authorization_id: get(r, "authorization_id")?,
            tracking_number: get(r, "tracking_number")?,
            created_at_ms: get(r, "created_at_ms")?,
        },
        endpoint_id: get(r, "endpoint_id")?,
        url: get(r, "url")?,
        secret_salt: get(r, "secret_salt")?,
        status: DeliveryStatus::parse(&status).ok_or(StoreError::Corrupt("delivery status"))?,
        attempts: u32::try_from(attempts).map_err(|_| StoreError::Corrupt("attempts"))?,
        next_attempt_at_ms: get(r, "next_attempt_at_ms")?,
        first_attempt_at_ms: get(r, "first_attempt_at_ms")?,
        last_status: last_status.and_then(|s| u16::try_from(s).ok()),
        last_error: get(r, "last_error")?,
        delivered_at_ms: get(r, "delivered_at_ms")?,
        created_at_ms: get(r, "d_created_at_ms")?,
    })
}

/// PostgreSQL: lock the claimed deliveries only, skipping those another replica holds.
const LOCK_DELIVERIES: &str = if super::SQLITE {
    ""
} else {
    " FOR UPDATE OF d SKIP LOCKED"
};

async fn claim_webhooks_in(
    c: &mut Conn,
    now_ms: i64,
    lease_ms: i64,
    limit: u32,
) -> Result<Vec<WebhookDelivery>> {
    const OP: &str = "claim_webhooks";
    let sql = format!(
        "SELECT d.delivery_id FROM webhook_deliveries d \
         JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id \
         WHERE d.status = 'pending' AND d.next_attempt_at_ms <= $1 AND e.enabled = TRUE \
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries b WHERE b.endpoint_id = d.endpoint_id \
           AND b.order_id = d.order_id AND b.seq < d.seq AND b.status <> 'delivered') \
         ORDER BY d.next_attempt_at_ms, d.delivery_id LIMIT $2{LOCK_DELIVERIES}"
    );
    let q = query_scalar(&sql).bind(now_ms).bind(i64::from(limit));
    let ids: Vec<i64> = scalars(&mut *c, OP, q).await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let q = query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at_ms = $2, \
             first_attempt_at_ms = COALESCE(first_attempt_at_ms, $3) WHERE delivery_id = $1",
        )
        .bind(id)
        .bind(now_ms.saturating_add(lease_ms.max(0)))
        .bind(now_ms);
        exec(&mut *c, OP, q).await?;
        let sql = format!("SELECT {DELIVERY_COLS} FROM {DELIVERY_FROM} WHERE d.delivery_id = $1");
        out.push(one(&mut *c, OP, query(&sql).bind(id), delivery_row).await?);
    }
    Ok(out)
}

write_op!(claim_webhooks = claim_webhooks_in(now_ms: i64, lease_ms: i64, limit: u32)
    -> Vec<WebhookDelivery>);

async fn record_webhook_attempt_in(
    c: &mut Conn,
    a: &WebhookAttempt,
    outcome: AttemptOutcome,
) -> Result<()> {
    const OP: &str = "record_webhook_attempt";
    let error = a.error.as_deref().map(short);
    let q = query(
        "INSERT INTO webhook_attempts (delivery_id, attempt, at_ms, http_status, latency_ms, \
         error) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(a.delivery_id)
    .bind(i64::from(a.attempt))
    .bind(a.at_ms)
    .bind(a.http_status.map(i64::from))
    .bind(a.latency_ms)
    .bind(&error);
    exec(&mut *c, OP, q).await?;
    let (status, next, delivered) = match outcome {
        AttemptOutcome::Delivered => (DeliveryStatus::Delivered, None, Some(a.at_ms)),
        AttemptOutcome::Retry(at) => (DeliveryStatus::Pending, Some(at), None),
        AttemptOutcome::GiveUp => (DeliveryStatus::Failed, None, None),
    };
    let q = query(
        "UPDATE webhook_deliveries SET status = $2, \
         next_attempt_at_ms = COALESCE($3, next_attempt_at_ms), last_status = $4, \
         last_error = $5, delivered_at_ms = COALESCE($6, delivered_at_ms) \
         WHERE delivery_id = $1 AND status = 'pending'",
    )
    .bind(a.delivery_id)
    .bind(status.as_str())
    .bind(next)
    .bind(a.http_status.map(i64::from))
    .bind(&error)
    .bind(delivered);
    exec(&mut *c, OP, q).await?;
    Ok(())
}

write_op!(record_webhook_attempt = record_webhook_attempt_in(a: &WebhookAttempt => a.clone(),
    outcome: AttemptOutcome) -> ());

/// ` AND …` conditions of a filter, from placeholder `$n`.
fn filter_sql(f: &DeliveryFilter, mut n: usize) -> (String, usize) {
    let mut sql = String::new();
    for (set, col) in [
        (f.order_id.is_some(), "d.order_id"),
        (f.endpoint_id.is_some(), "d.endpoint_id"),
        (f.status.is_some(), "d.status"),
        (f.event_id.is_some(), "v.event_id"),
    ] {
        if set {
            sql.push_str(&format!(" AND {col} = ${n}"));
            n += 1;
        }
    }
    (sql, n)
}

fn bind_filter<'q>(mut q: Query<'q>, f: &'q DeliveryFilter) -> Query<'q> {
    for v in [f.order_id.as_deref(), f.endpoint_id.as_deref()].into_iter().flatten() {
        q = q.bind(v);
    }
    if let Some(s) = f.status {
        q = q.bind(s.as_str());
    }
    if let Some(e) = &f.event_id {
        q = q.bind(e);
    }
    q
}

pub(crate) async fn webhook_deliveries(p: &P, f: &DeliveryFilter) -> Result<Vec<WebhookDelivery>> {
    let (cond, n) = filter_sql(f, 1);
    let sql = format!(
        "SELECT {DELIVERY_COLS} FROM {DELIVERY_FROM} WHERE 1 = 1{cond} \
         ORDER BY d.delivery_id DESC LIMIT ${n} OFFSET ${}",
        n + 1
    );
    let q = bind_filter(query(&sql), f)
        .bind(i64::from(f.limit.unwrap_or(100)))
        .bind(i64::from(f.offset.unwrap_or(0)));
    all(&p.reader, "webhook_deliveries", q, delivery_row).await
}

pub(crate) async fn webhook_attempts(p: &P, delivery_id: i64) -> Result<Vec<WebhookAttempt>> {
    let q = query(
        "SELECT delivery_id, attempt, at_ms, http_status, latency_ms, error \
         FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt_id",
    )
    .bind(delivery_id);
    all(&p.reader, "webhook_attempts", q, |r| {
        let attempt: i64 = get(r, "attempt")?;
        let status: Option<i64> = get(r, "http_status")?;
        Ok(WebhookAttempt {
            delivery_id: get(r, "delivery_id")?,
            attempt: u32::try_from(attempt).map_err(|_| StoreError::Corrupt("attempt"))?,
            at_ms: get(r, "at_ms")?,
            http_status: status.and_then(|s| u16::try_from(s).ok()),
            latency_ms: get(r, "latency_ms")?,
            error: get(r, "error")?,
        })
    })
    .await
}

async fn replay_webhooks_in(c: &mut Conn, f: &DeliveryFilter, now_ms: i64) -> Result<u64> {
    let mut f = f.clone();
    if f.event_id.is_none() {
        f.status = Some(DeliveryStatus::Failed);
    }
    let (cond, n) = filter_sql(&f, 2);
    let sql = format!(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, \
         next_attempt_at_ms = $1, first_attempt_at_ms = NULL, delivered_at_ms = NULL \
         WHERE delivery_id IN (SELECT d.delivery_id FROM webhook_deliveries d \
           JOIN webhook_events v ON v.seq = d.seq WHERE 1 = 1{cond} LIMIT ${n})"
    );
    let q =
        bind_filter(query(&sql).bind(now_ms), &f).bind(i64::from(f.limit.unwrap_or(10_000)));
    exec(&mut *c, "replay_webhooks", q).await
}

write_op!(replay_webhooks = replay_webhooks_in(f: &DeliveryFilter => f.clone(), now_ms: i64)
    -> u64);

pub(crate) async fn count_webhooks_by_status(p: &P) -> Result<Vec<(DeliveryStatus, u64)>> {
    count_by(
        p,
        "SELECT status AS k, COUNT(*) AS n FROM webhook_deliveries GROUP BY status ORDER BY status",
        "count_webhooks_by_status",
        |s| DeliveryStatus::parse(s).ok_or(StoreError::Corrupt("delivery status")),
    )
    .await
}
