//! The merchant lifecycle's SQL: the facts kept per order (receipts, delivery status, proofs).

use warifu_core::OrderId;
use super::common::*;
use crate::error::Result;
use crate::sql::check_id;
use crate::types::OrderFact;

pub(super) async fn put_order_fact_in(c: &mut Conn, f: &OrderFact) -> Result<()> {
    check_id("order id", &f.order_id)?;
    check_id("fact kind", &f.kind)?;
    let q = query(
        "INSERT INTO merchant_order_facts (order_id, kind, body, updated_at_ms) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (order_id, kind) \
         DO UPDATE SET body = excluded.body, updated_at_ms = excluded.updated_at_ms",
    )
    .bind(f.order_id.as_str())
    .bind(&f.kind)
    .bind(&f.body)
    .bind(f.updated_at_ms);
    exec(&mut *c, "put_order_fact", q).await?;
    Ok(())
}

write_op!(put_order_fact = put_order_fact_in(f: &OrderFact => f.clone()) -> ());

async fn put_order_fact_over_in(
    c: &mut Conn,
    f: &OrderFact,
    replaceable: &[Vec<u8>],
) -> Result<bool> {
    check_id("order id", &f.order_id)?;
    check_id("fact kind", &f.kind)?;
    let on_conflict = if replaceable.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        let slots: Vec<String> = (0..replaceable.len()).map(|i| format!("${}", i + 5)).collect();
        format!(
            "DO UPDATE SET body = excluded.body, updated_at_ms = excluded.updated_at_ms \
             WHERE merchant_order_facts.body IN ({})",
            slots.join(", ")
        )
    };
    let sql = format!(
        "INSERT INTO merchant_order_facts (order_id, kind, body, updated_at_ms) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (order_id, kind) {on_conflict}"
    );
    let mut q = query(&sql)
        .bind(f.order_id.as_str())
        .bind(&f.kind)
        .bind(&f.body)
        .bind(f.updated_at_ms);
    for body in replaceable {
        q = q.bind(body);
    }
    Ok(exec(&mut *c, "put_order_fact_over", q).await? == 1)
}

write_op!(put_order_fact_over = put_order_fact_over_in(f: &OrderFact => f.clone(),
    replaceable: &[Vec<u8>] => replaceable.to_vec()) -> bool);

pub(crate) async fn order_facts(p: &P, order_id: &OrderId) -> Result<Vec<OrderFact>> {
    let q = query(
        "SELECT order_id, kind, body, updated_at_ms FROM merchant_order_facts \
         WHERE order_id = $1 ORDER BY kind",
    )
    .bind(order_id.as_str());
    all(&p.reader, "order_facts", q, |r| {
        Ok(OrderFact {
            order_id: get::<String>(r, "order_id")?.into(),
            kind: get(r, "kind")?,
            body: get(r, "body")?,
            updated_at_ms: get(r, "updated_at_ms")?,
        })
    })
    .await
}
